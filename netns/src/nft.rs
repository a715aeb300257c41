//! nf_tables over netlink, hand-rolled: the handful of messages and expressions berth's table
//! needs (see `firewall.rs` for the table itself).
//!
//! Everything is sent as one nfnetlink *batch* per change, which the kernel applies as a
//! transaction: all of it or none of it. The encodings mirror what `nft --debug=netlink`
//! prints for the equivalent script (the tests compare against `nft list` output).

use crate::netlink::{
    Attrs, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
    NLMSG_HDRLEN, NetlinkError, NlSocket, align4,
};

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NLA_F_NESTED: u16 = 0x8000;
/// `NFPROTO_IPV4`: the `ip` table family.
pub(crate) const FAMILY_IP: u8 = 2;

// nf_tables message types
const NEWTABLE: u8 = 0;
const DELTABLE: u8 = 2;
const NEWCHAIN: u8 = 3;
const NEWRULE: u8 = 6;
const NEWSET: u8 = 9;
const NEWSETELEM: u8 = 12;
const GETSETELEM: u8 = 13;
const DELSETELEM: u8 = 14;

// registers
pub(crate) const REG_VERDICT: u32 = 0;
/// The first 16-byte register, which is also the first 32-bit register.
pub(crate) const REG_1: u32 = 1;
/// The second 32-bit register (what a concatenation's second field lands in).
pub(crate) const REG32_01: u32 = 9;

// verdicts
pub(crate) const NF_DROP: i32 = 0;
pub(crate) const NF_ACCEPT: i32 = 1;

/// Netfilter hooks a base chain attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hook {
    Prerouting = 0,
    Forward = 2,
    Output = 3,
    Postrouting = 4,
}

/// Errors of nf_tables operations.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The netfilter netlink socket could not be opened.
    #[error("open nftables netlink socket")]
    Open(#[source] NetlinkError),
    /// The kernel refused a command of a batch (the whole batch was rolled back).
    #[error("nftables: {what}")]
    Command {
        /// The command, e.g. `add element tcp 8080 to map ip berth publish`.
        what: String,
        /// The kernel's answer.
        #[source]
        source: NetlinkError,
    },
    /// The batch as a whole failed.
    #[error("nftables: apply {what}")]
    Batch {
        /// What the batch was for.
        what: String,
        /// The kernel's answer.
        #[source]
        source: NetlinkError,
    },
    /// A dump could not be decoded.
    #[error("nftables: decode {what}: {detail}")]
    Decode {
        /// What was dumped.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

impl NftError {
    /// The kernel's errno, when the kernel refused.
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            NftError::Command { source, .. }
            | NftError::Batch { source, .. }
            | NftError::Open(source) => source.errno(),
            NftError::Decode { .. } => None,
        }
    }
}

/// Writes netlink attributes into a buffer, with nesting.
#[derive(Debug)]
pub(crate) struct AttrWriter<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> AttrWriter<'a> {
    /// Appends attributes to `buf`.
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Self {
        AttrWriter { buf }
    }
}

impl AttrWriter<'_> {
    pub(crate) fn bytes(&mut self, ty: u16, value: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// A NUL-terminated string, as nf_tables expects names.
    pub(crate) fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.bytes(ty, &v)
    }

    /// A 32-bit value in network byte order (every nf_tables integer attribute is).
    pub(crate) fn be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    pub(crate) fn nest(&mut self, ty: u16, f: impl FnOnce(&mut AttrWriter<'_>)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(&mut AttrWriter { buf: self.buf });
        let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// `NFTA_DATA_VALUE` nested in `ty`.
    pub(crate) fn data(&mut self, ty: u16, value: &[u8]) -> &mut Self {
        self.nest(ty, |w| {
            w.bytes(1, value);
        })
    }
}

/// The user-data TLV nft uses for comments (`NFTNL_UDATA_*_COMMENT`, type 0, NUL-terminated).
pub(crate) fn comment_udata(comment: &str) -> Vec<u8> {
    let mut v = vec![0u8, 0u8];
    v.extend_from_slice(comment.as_bytes());
    v.push(0);
    v[1] = u8::try_from(v.len() - 2).unwrap_or(u8::MAX);
    v
}

fn comment_of_udata(udata: &[u8]) -> Option<String> {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (ty, len) = (rest[0], usize::from(rest[1]));
        let value = rest.get(2..2 + len)?;
        if ty == 0 {
            let s = value.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(s).into_owned());
        }
        rest = &rest[2 + len..];
    }
    None
}

/// An nf_tables expression (one step of a rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// `meta load <key> => dreg` (6 iifname, 7 oifname, 16 l4proto).
    Meta { key: u32, dreg: u32 },
    /// `payload load <len>b @ <base> header + <offset> => dreg` (base 1 network, 2 transport).
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// `cmp <op> sreg <data>` (op 0 eq, 1 neq).
    Cmp { sreg: u32, op: u32, data: Vec<u8> },
    /// `bitwise reg = (reg & mask) ^ xor`.
    Bitwise {
        reg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// `lookup sreg set <name> [dreg]`.
    Lookup {
        set: String,
        set_id: u32,
        sreg: u32,
        dreg: Option<u32>,
    },
    /// `dnat ip addr_min <addr> proto_min <proto>`.
    Dnat { addr: u32, proto: u32 },
    /// `masq`.
    Masquerade,
    /// `counter`.
    Counter,
    /// `immediate reg 0 <verdict>`.
    Verdict(i32),
    /// `immediate reg <dreg> <data>`: a constant into a data register.
    Immediate { dreg: u32, data: Vec<u8> },
    /// `ct load <key> => dreg` (0 state, 2 status).
    Ct { key: u32, dreg: u32 },
    /// `fib <flags> <result> => dreg` (flags 2 daddr; result 3 addrtype).
    Fib { flags: u32, result: u32, dreg: u32 },
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta { .. } => "meta",
            Expr::Payload { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Lookup { .. } => "lookup",
            Expr::Dnat { .. } => "nat",
            Expr::Masquerade => "masq",
            Expr::Counter => "counter",
            Expr::Verdict(_) | Expr::Immediate { .. } => "immediate",
            Expr::Ct { .. } => "ct",
            Expr::Fib { .. } => "fib",
        }
    }

    fn encode(&self, w: &mut AttrWriter<'_>) {
        match self {
            Expr::Meta { key, dreg } => {
                w.be32(1, *dreg).be32(2, *key);
            }
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                w.be32(1, *dreg)
                    .be32(2, *base)
                    .be32(3, *offset)
                    .be32(4, *len);
            }
            Expr::Cmp { sreg, op, data } => {
                w.be32(1, *sreg).be32(2, *op).data(3, data);
            }
            Expr::Bitwise { reg, mask, xor } => {
                let len = u32::try_from(mask.len()).unwrap_or(u32::MAX);
                w.be32(1, *reg)
                    .be32(2, *reg)
                    .be32(3, len)
                    .data(4, mask)
                    .data(5, xor);
            }
            Expr::Lookup {
                set,
                set_id,
                sreg,
                dreg,
            } => {
                w.str(1, set).be32(2, *sreg).be32(4, *set_id);
                if let Some(d) = dreg {
                    w.be32(3, *d);
                }
            }
            Expr::Dnat { addr, proto } => {
                // NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED
                w.be32(1, 1)
                    .be32(2, u32::from(FAMILY_IP))
                    .be32(3, *addr)
                    .be32(5, *proto)
                    .be32(7, 0x3);
            }
            Expr::Masquerade | Expr::Counter => {}
            Expr::Verdict(code) => {
                w.be32(1, REG_VERDICT).nest(2, |d| {
                    d.nest(2, |v| {
                        v.bytes(1, &code.to_be_bytes());
                    });
                });
            }
            Expr::Immediate { dreg, data } => {
                w.be32(1, *dreg).data(2, data);
            }
            Expr::Ct { key, dreg } => {
                w.be32(1, *dreg).be32(2, *key);
            }
            Expr::Fib {
                flags,
                result,
                dreg,
            } => {
                w.be32(1, *dreg).be32(2, *result).be32(3, *flags);
            }
        }
    }
}

/// A base chain.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub(crate) name: &'static str,
    /// `"filter"` or `"nat"`.
    pub(crate) kind: &'static str,
    pub(crate) hook: Hook,
    pub(crate) priority: i32,
}

/// A rule appended to a chain.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) chain: &'static str,
    pub(crate) exprs: Vec<Expr>,
    pub(crate) comment: Option<&'static str>,
}

/// A map (or set) of the table.
#[derive(Debug, Clone)]
pub(crate) struct Map {
    pub(crate) name: &'static str,
    /// In-transaction id, referenced by lookups created in the same batch.
    pub(crate) id: u32,
    /// nft's datatype id of the key (concatenations: `(a << 6) | b`), for `nft list`.
    pub(crate) key_type: u32,
    pub(crate) key_len: u32,
    pub(crate) data_type: u32,
    pub(crate) data_len: u32,
}

/// An element of a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) key: Vec<u8>,
    pub(crate) data: Vec<u8>,
    pub(crate) comment: Option<String>,
}

/// One nfnetlink batch under construction: a transaction.
#[derive(Debug)]
pub(crate) struct Batch {
    buf: Vec<u8>,
    seqs: Vec<u32>,
    whats: Vec<String>,
    table: String,
}

impl Batch {
    pub(crate) fn new(sock: &mut NftSocket, table: &str) -> Self {
        let mut b = Batch {
            buf: Vec::with_capacity(1024),
            seqs: Vec::new(),
            whats: Vec::new(),
            table: table.to_owned(),
        };
        let seq = sock.sock.next_seq();
        b.header(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES.to_be(),
        );
        b
    }

    fn header(&mut self, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, fixed in `end_message`
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&res_id.to_ne_bytes());
        self.end_message(start);
        start
    }

    fn end_message(&mut self, start: usize) {
        let len = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn command(
        &mut self,
        sock: &mut NftSocket,
        ty: u8,
        flags: u16,
        what: String,
        attrs: impl FnOnce(&mut AttrWriter<'_>),
    ) {
        let seq = sock.sock.next_seq();
        let start = self.header(
            (NFNL_SUBSYS_NFTABLES << 8) | u16::from(ty),
            NLM_F_REQUEST | NLM_F_ACK | flags,
            seq,
            FAMILY_IP,
            0,
        );
        attrs(&mut AttrWriter { buf: &mut self.buf });
        self.end_message(start);
        self.seqs.push(seq);
        self.whats.push(what);
    }

    /// `add table` (no error if it exists).
    pub(crate) fn add_table(&mut self, sock: &mut NftSocket, comment: &str) {
        let t = self.table.clone();
        self.command(
            sock,
            NEWTABLE,
            NLM_F_CREATE,
            format!("add table ip {t}"),
            |w| {
                w.str(1, &t).be32(2, 0).bytes(6, &comment_udata(comment));
            },
        );
    }

    /// `delete table` (an error if it does not exist).
    pub(crate) fn delete_table(&mut self, sock: &mut NftSocket) {
        let t = self.table.clone();
        self.command(sock, DELTABLE, 0, format!("delete table ip {t}"), |w| {
            w.str(1, &t);
        });
    }

    pub(crate) fn add_map(&mut self, sock: &mut NftSocket, map: &Map) {
        let t = self.table.clone();
        self.command(
            sock,
            NEWSET,
            NLM_F_CREATE | NLM_F_EXCL,
            format!("add map ip {t} {}", map.name),
            |w| {
                w.str(1, &t)
                    .str(2, map.name)
                    .be32(3, 0x8) // NFT_SET_MAP
                    .be32(4, map.key_type)
                    .be32(5, map.key_len)
                    .be32(6, map.data_type)
                    .be32(7, map.data_len)
                    .be32(10, map.id);
            },
        );
    }

    pub(crate) fn add_chain(&mut self, sock: &mut NftSocket, chain: &Chain) {
        let t = self.table.clone();
        self.command(
            sock,
            NEWCHAIN,
            NLM_F_CREATE | NLM_F_EXCL,
            format!("add chain ip {t} {}", chain.name),
            |w| {
                w.str(1, &t).str(3, chain.name);
                w.nest(4, |h| {
                    h.be32(1, chain.hook as u32)
                        .bytes(2, &chain.priority.to_be_bytes());
                });
                w.be32(5, NF_ACCEPT as u32).str(7, chain.kind);
            },
        );
    }

    pub(crate) fn add_rule(&mut self, sock: &mut NftSocket, rule: &Rule) {
        let t = self.table.clone();
        self.command(
            sock,
            NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            format!("add rule ip {t} {}", rule.chain),
            |w| {
                w.str(1, &t).str(2, rule.chain);
                w.nest(4, |list| {
                    for e in &rule.exprs {
                        list.nest(1, |x| {
                            x.str(1, e.name());
                            x.nest(2, |d| e.encode(d));
                        });
                    }
                });
                if let Some(c) = rule.comment {
                    w.bytes(7, &comment_udata(c));
                }
            },
        );
    }

    /// Adds one element; with `exclusive`, an existing key is an error (`EEXIST`).
    pub(crate) fn add_element(
        &mut self,
        sock: &mut NftSocket,
        map: &str,
        e: &Element,
        what: String,
        exclusive: bool,
    ) {
        let t = self.table.clone();
        let flags = if exclusive {
            NLM_F_CREATE | NLM_F_EXCL
        } else {
            NLM_F_CREATE
        };
        self.command(sock, NEWSETELEM, flags, what, |w| {
            w.str(1, &t).str(2, map);
            w.nest(3, |list| {
                list.nest(1, |el| {
                    el.data(1, &e.key).data(2, &e.data);
                    if let Some(c) = &e.comment {
                        el.bytes(6, &comment_udata(c));
                    }
                });
            });
        });
    }

    /// Deletes one element (an error if it does not exist).
    pub(crate) fn delete_element(
        &mut self,
        sock: &mut NftSocket,
        map: &str,
        key: &[u8],
        what: String,
    ) {
        let t = self.table.clone();
        self.command(sock, DELSETELEM, 0, what, |w| {
            w.str(1, &t).str(2, map);
            w.nest(3, |list| {
                list.nest(1, |el| {
                    el.data(1, key);
                });
            });
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

/// A netfilter netlink socket in the calling thread's network namespace.
#[derive(Debug)]
pub(crate) struct NftSocket {
    sock: NlSocket,
}

impl NftSocket {
    pub(crate) fn open() -> Result<Self, NftError> {
        Ok(NftSocket {
            sock: NlSocket::open(NETLINK_NETFILTER).map_err(NftError::Open)?,
        })
    }

    /// Sends `batch` as one transaction. On failure the kernel applied nothing, and the
    /// error names the first command it refused.
    pub(crate) fn apply(&mut self, mut batch: Batch, what: &str) -> Result<(), NftError> {
        if batch.is_empty() {
            return Ok(());
        }
        let seq = self.sock.next_seq();
        batch.header(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES.to_be(),
        );
        let outcomes = self
            .sock
            .request_batch(&batch.buf, &batch.seqs)
            .map_err(|source| NftError::Batch {
                what: what.to_owned(),
                source,
            })?;
        for (outcome, what) in outcomes.into_iter().zip(batch.whats) {
            if let Err(source) = outcome {
                return Err(NftError::Command { what, source });
            }
        }
        Ok(())
    }

    /// Every element of map `map` of table `table` (`ENOENT` if either is missing).
    pub(crate) fn elements(&mut self, table: &str, map: &str) -> Result<Vec<Element>, NftError> {
        self.fetch(table, map, None)
    }

    /// The element of `map` with `key`, if there is one.
    pub(crate) fn element(
        &mut self,
        table: &str,
        map: &str,
        key: &[u8],
    ) -> Result<Option<Element>, NftError> {
        match self.fetch(table, map, Some(key)) {
            Ok(mut v) => Ok(v.pop()),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Dumps the map, or gets the one element with `key`.
    fn fetch(
        &mut self,
        table: &str,
        map: &str,
        key: Option<&[u8]>,
    ) -> Result<Vec<Element>, NftError> {
        let what = format!("list map ip {table} {map}");
        let seq = self.sock.next_seq();
        let flags = if key.is_some() {
            NLM_F_REQUEST | NLM_F_ACK
        } else {
            NLM_F_REQUEST | NLM_F_DUMP
        };
        let mut buf = Vec::new();
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | u16::from(GETSETELEM)).to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[FAMILY_IP, 0, 0, 0]);
        let mut w = AttrWriter { buf: &mut buf };
        w.str(1, table).str(2, map);
        if let Some(key) = key {
            w.nest(3, |list| {
                list.nest(1, |el| {
                    el.data(1, key);
                });
            });
        }
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        buf[..4].copy_from_slice(&len.to_ne_bytes());
        let frames = if key.is_some() {
            self.sock.request_get(&buf, seq)
        } else {
            self.sock.request_dump(&buf, seq)
        }
        .map_err(|source| NftError::Command {
            what: what.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for f in &frames {
            let payload = f.get(NLMSG_HDRLEN + 4..).ok_or_else(|| NftError::Decode {
                what: what.clone(),
                detail: "short message".into(),
            })?;
            for (ty, v) in Attrs::new(payload) {
                if ty != 3 {
                    continue; // NFTA_SET_ELEM_LIST_ELEMENTS
                }
                for (_, el) in Attrs::new(v) {
                    let mut e = Element {
                        key: Vec::new(),
                        data: Vec::new(),
                        comment: None,
                    };
                    for (ty, v) in Attrs::new(el) {
                        match ty {
                            1 => e.key = data_value(v),
                            2 => e.data = data_value(v),
                            6 => e.comment = comment_of_udata(v),
                            _ => {}
                        }
                    }
                    out.push(e);
                }
            }
        }
        Ok(out)
    }
}

fn data_value(nested: &[u8]) -> Vec<u8> {
    Attrs::new(nested)
        .find(|(ty, _)| *ty == 1)
        .map(|(_, v)| v.to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_round_trip_through_udata() {
        let u = comment_udata("t1/task");
        assert_eq!(u, b"\x00\x08t1/task\x00");
        assert_eq!(comment_of_udata(&u).as_deref(), Some("t1/task"));
        assert_eq!(
            comment_of_udata(b"\x01\x01x\x00\x02a\x00").as_deref(),
            Some("a")
        );
        assert_eq!(comment_of_udata(b"\x00\x09short"), None);
    }

    #[test]
    fn nested_attributes_have_lengths_and_flags() {
        let mut buf = Vec::new();
        AttrWriter { buf: &mut buf }.nest(4, |w| {
            w.be32(1, 7).str(2, "ab");
        });
        // nest header + (4+4) + (4+3 padded to 8)
        assert_eq!(buf.len(), 4 + 8 + 8);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), 20);
        assert_eq!(u16::from_ne_bytes([buf[2], buf[3]]), 4 | NLA_F_NESTED);
        let inner: Vec<_> = Attrs::new(&buf[4..]).collect();
        assert_eq!(inner, vec![(1, &[0, 0, 0, 7][..]), (2, &b"ab\0"[..])]);
    }

    #[test]
    fn verdict_encoding_matches_the_kernel_layout() {
        let mut buf = Vec::new();
        Expr::Verdict(NF_DROP).encode(&mut AttrWriter { buf: &mut buf });
        let attrs: Vec<_> = Attrs::new(&buf).collect();
        assert_eq!(attrs[0], (1, &[0, 0, 0, 0][..]));
        let data: Vec<_> = Attrs::new(attrs[1].1).collect();
        assert_eq!(data[0].0, 2); // NFTA_DATA_VERDICT
        let code: Vec<_> = Attrs::new(data[0].1).collect();
        assert_eq!(code, vec![(1, &NF_DROP.to_be_bytes()[..])]);
    }
}
