//! Removing a stopped task's UDP conntrack entries (ctnetlink).
//!
//! A UDP client that keeps sending to a published port keeps its conntrack entry alive, and
//! with it the DNAT to the address of the task that had the port: when that task stops and
//! another one publishes the same port, the traffic would still go to the old address for as
//! long as the client sends (netavark's "stale conntrack" case). TCP does not have the
//! problem: its connections end with the task. So teardown deletes the UDP entries whose reply
//! comes from the task's address.

use std::net::Ipv4Addr;

use crate::netlink::{
    Attrs, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_HDRLEN, NetlinkError, NlSocket,
};
use crate::nft::AttrWriter;

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const AF_INET: u8 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const IPPROTO_UDP: u8 = 17;

/// One direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tuple {
    pub(crate) src: Option<Ipv4Addr>,
    pub(crate) dst: Option<Ipv4Addr>,
    pub(crate) proto: u8,
    pub(crate) sport: u16,
    pub(crate) dport: u16,
}

/// A conntrack entry, as much of it as we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Entry {
    pub(crate) orig: Tuple,
    pub(crate) reply: Tuple,
    pub(crate) zone: Option<u16>,
}

fn tuple(buf: &[u8]) -> Tuple {
    let mut t = Tuple::default();
    for (ty, v) in Attrs::new(buf) {
        match ty {
            CTA_TUPLE_IP => {
                for (ty, v) in Attrs::new(v) {
                    let ip = <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from);
                    match ty {
                        CTA_IP_V4_SRC => t.src = ip,
                        CTA_IP_V4_DST => t.dst = ip,
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (ty, v) in Attrs::new(v) {
                    match (ty, v) {
                        (CTA_PROTO_NUM, [n, ..]) => t.proto = *n,
                        (CTA_PROTO_SRC_PORT, [a, b, ..]) => t.sport = u16::from_be_bytes([*a, *b]),
                        (CTA_PROTO_DST_PORT, [a, b, ..]) => t.dport = u16::from_be_bytes([*a, *b]),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    t
}

/// Parses the attributes of one `IPCTNL_MSG_CT_NEW` message (after its `nfgenmsg`).
pub(crate) fn parse_entry(attrs: &[u8]) -> Entry {
    let mut e = Entry::default();
    for (ty, v) in Attrs::new(attrs) {
        match (ty, v) {
            (CTA_TUPLE_ORIG, _) => e.orig = tuple(v),
            (CTA_TUPLE_REPLY, _) => e.reply = tuple(v),
            (CTA_ZONE, [a, b, ..]) => e.zone = Some(u16::from_be_bytes([*a, *b])),
            _ => {}
        }
    }
    e
}

fn header(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32) {
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | ty).to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[AF_INET, 0, 0, 0]);
}

fn finish(buf: &mut [u8]) {
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    buf[..4].copy_from_slice(&len.to_ne_bytes());
}

/// The delete request for `e` (identified by its original tuple and zone).
pub(crate) fn delete_request(e: &Entry, seq: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    header(
        &mut buf,
        IPCTNL_MSG_CT_DELETE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
    );
    let mut w = AttrWriter::new(&mut buf);
    w.nest(CTA_TUPLE_ORIG, |t| {
        t.nest(CTA_TUPLE_IP, |ip| {
            if let Some(s) = e.orig.src {
                ip.bytes(CTA_IP_V4_SRC, &s.octets());
            }
            if let Some(d) = e.orig.dst {
                ip.bytes(CTA_IP_V4_DST, &d.octets());
            }
        });
        t.nest(CTA_TUPLE_PROTO, |p| {
            p.bytes(CTA_PROTO_NUM, &[e.orig.proto])
                .bytes(CTA_PROTO_SRC_PORT, &e.orig.sport.to_be_bytes())
                .bytes(CTA_PROTO_DST_PORT, &e.orig.dport.to_be_bytes());
        });
    });
    if let Some(z) = e.zone {
        w.bytes(CTA_ZONE, &z.to_be_bytes());
    }
    finish(&mut buf);
    buf
}

/// Deletes the UDP conntrack entries whose replies come from `addr`, in the calling thread's
/// namespace; returns how many were deleted. Entries that vanish meanwhile are fine.
pub(crate) fn forget_udp_peer(addr: Ipv4Addr) -> Result<usize, NetlinkError> {
    let mut sock = NlSocket::open(NETLINK_NETFILTER)?;
    let seq = sock.next_seq();
    let mut dump = Vec::new();
    header(
        &mut dump,
        IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
    );
    finish(&mut dump);
    let frames = sock.request_dump(&dump, seq)?;
    let mut deleted = 0;
    for f in &frames {
        let Some(attrs) = f.get(NLMSG_HDRLEN + 4..) else {
            continue;
        };
        let e = parse_entry(attrs);
        if e.orig.proto != IPPROTO_UDP || e.reply.src != Some(addr) {
            continue;
        }
        let seq = sock.next_seq();
        match sock.request_ack(&delete_request(&e, seq), seq) {
            Ok(()) => deleted += 1,
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_request_round_trips_through_the_parser() {
        let e = Entry {
            orig: Tuple {
                src: Some(Ipv4Addr::new(127, 0, 0, 1)),
                dst: Some(Ipv4Addr::new(127, 0, 0, 1)),
                proto: IPPROTO_UDP,
                sport: 40000,
                dport: 5353,
            },
            reply: Tuple::default(),
            zone: Some(3),
        };
        let req = delete_request(&e, 9);
        assert_eq!(
            u32::from_ne_bytes([req[0], req[1], req[2], req[3]]) as usize,
            req.len()
        );
        assert_eq!(u16::from_ne_bytes([req[4], req[5]]), 0x102);
        let back = parse_entry(&req[NLMSG_HDRLEN + 4..]);
        assert_eq!(back.orig, e.orig);
        assert_eq!(back.zone, Some(3));
    }
}
