//! rtnetlink operations (links, addresses, routes) over [`NlSocket`], typed with
//! `netlink-packet-route`.
//!
//! A [`Rtnl`] acts on the network namespace its socket was opened in: the host's when opened
//! on the caller's thread, a task's when opened through `netns::open_route_socket_in`.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;

use crate::error::ErrorKind;
use crate::ipam::Ipv4Net;
use crate::netlink::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkError,
    NlSocket,
};

/// Errors of rtnetlink operations; the message names the operation and the object.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The kernel refused or the transport failed.
    #[error("{what}")]
    Netlink {
        /// The operation and the object, e.g. `create veth pair bth1234/eth0`.
        what: String,
        /// The kernel's answer.
        #[source]
        source: NetlinkError,
    },
    /// The kernel's answer could not be decoded.
    #[error("decode rtnetlink reply to {what}: {detail}")]
    Decode {
        /// The operation.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

impl RouteError {
    /// The error's class.
    pub fn class(&self) -> ErrorKind {
        match self {
            RouteError::Netlink { source, .. } if source.is_exists() => ErrorKind::Conflict,
            RouteError::Netlink { source, .. } if source.is_not_found() => ErrorKind::NotFound,
            RouteError::Netlink { source, .. }
                if matches!(source.errno(), Some(libc::EPERM | libc::EOPNOTSUPP)) =>
            {
                ErrorKind::Unsupported
            }
            RouteError::Netlink { .. } | RouteError::Decode { .. } => ErrorKind::Internal,
        }
    }

    /// Whether the kernel said the object does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, RouteError::Netlink { source, .. } if source.is_not_found())
    }

    /// Whether the kernel said the object already exists.
    pub(crate) fn is_exists(&self) -> bool {
        matches!(self, RouteError::Netlink { source, .. } if source.is_exists())
    }
}

/// What we need to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) index: u32,
    pub(crate) name: String,
    /// `IFLA_INFO_KIND` ("veth", "bridge"); `None` for physical devices and `lo`.
    pub(crate) kind: Option<String>,
    /// The bridge (or other controller) the link is attached to.
    pub(crate) master: Option<u32>,
    pub(crate) alias: Option<String>,
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) up: bool,
}

/// One side of a veth pair to create.
#[derive(Debug)]
pub(crate) struct VethSpec<'a> {
    /// Name of the host end.
    pub(crate) host_name: &'a str,
    /// Bridge the host end is attached to.
    pub(crate) master: u32,
    /// Name of the end created directly in the task namespace.
    pub(crate) peer_name: &'a str,
    pub(crate) peer_mac: [u8; 6],
    /// The task namespace the peer is created in.
    pub(crate) peer_netns: BorrowedFd<'a>,
    pub(crate) mtu: Option<u32>,
}

/// An rtnetlink socket with typed operations.
#[derive(Debug)]
pub(crate) struct Rtnl {
    sock: NlSocket,
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open() -> Result<Self, RouteError> {
        NlSocket::open(NETLINK_ROUTE)
            .map(|sock| Rtnl { sock })
            .map_err(|source| RouteError::Netlink {
                what: "open rtnetlink socket".into(),
                source,
            })
    }

    fn encode(&mut self, msg: RouteNetlinkMessage, flags: u16) -> (Vec<u8>, u32) {
        let seq = self.sock.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        (buf, seq)
    }

    fn ack(
        &mut self,
        what: impl FnOnce() -> String,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), RouteError> {
        let (buf, seq) = self.encode(msg, flags | NLM_F_ACK);
        self.sock
            .request_ack(&buf, seq)
            .map_err(|source| RouteError::Netlink {
                what: what(),
                source,
            })
    }

    fn dump(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, RouteError> {
        // A dump that raced with a change is retried; a few attempts are plenty in practice.
        let mut last = None;
        for _ in 0..5 {
            let (buf, seq) = self.encode(msg.clone(), NLM_F_DUMP);
            match self.sock.request_dump(&buf, seq) {
                Ok(frames) => return frames.iter().map(|f| decode(what, f)).collect(),
                Err(NetlinkError::Malformed(m)) if m == "dump interrupted" => {
                    last = Some(NetlinkError::Malformed(m));
                }
                Err(source) => {
                    return Err(RouteError::Netlink {
                        what: what.into(),
                        source,
                    });
                }
            }
        }
        Err(RouteError::Netlink {
            what: what.into(),
            source: last.unwrap_or(NetlinkError::Malformed("dump interrupted".into())),
        })
    }

    /// The link called `name`, or `None`.
    pub(crate) fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, RouteError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let what = || format!("get link {name}");
        let (buf, seq) = self.encode(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK);
        match self.sock.request_get(&buf, seq) {
            Ok(frames) => match frames.first() {
                Some(f) => match decode(&what(), f)? {
                    RouteNetlinkMessage::NewLink(m) => Ok(Some(link_of(&m))),
                    other => Err(unexpected(&what(), &other)),
                },
                None => Ok(None),
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(source) => Err(RouteError::Netlink {
                what: what(),
                source,
            }),
        }
    }

    /// Every link in the namespace.
    pub(crate) fn links(&mut self) -> Result<Vec<Link>, RouteError> {
        let what = "list links";
        let msgs = self.dump(what, RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        msgs.iter()
            .map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Ok(link_of(l)),
                other => Err(unexpected(what, other)),
            })
            .collect()
    }

    /// Creates a bridge called `name`, up, with a fixed MAC (so that the bridge's address does
    /// not change as ports come and go, which confuses ARP caches).
    pub(crate) fn create_bridge(
        &mut self,
        name: &str,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<(), RouteError> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.ack(
            || format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Creates a veth pair in one request: the host end attached to its bridge and up, the
    /// peer created directly inside the task namespace (down). Creating the peer in place
    /// avoids moving it later, which costs an RCU barrier (perf-baselines §3).
    pub(crate) fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<(), RouteError> {
        // The peer cannot be created up: a veth refuses to open before it knows its peer
        // (ENOTCONN), which it does only once both ends exist. It is brought up from inside.
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.to_owned()));
        peer.attributes
            .push(LinkAttribute::Address(spec.peer_mac.to_vec()));
        peer.attributes
            .push(LinkAttribute::NetNsFd(spec.peer_netns.as_raw_fd()));
        let mut host = LinkMessage::default();
        host.header.flags = LinkFlags::Up;
        host.header.change_mask = LinkFlags::Up;
        host.attributes
            .push(LinkAttribute::IfName(spec.host_name.to_owned()));
        host.attributes.push(LinkAttribute::Controller(spec.master));
        if let Some(mtu) = spec.mtu {
            host.attributes.push(LinkAttribute::Mtu(mtu));
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        host.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.ack(
            || format!("create veth pair {}/{}", spec.host_name, spec.peer_name),
            RouteNetlinkMessage::NewLink(host),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Sets the interface alias (`ip link show` prints it), which records who owns a link.
    pub(crate) fn set_alias(
        &mut self,
        index: u32,
        name: &str,
        alias: &str,
    ) -> Result<(), RouteError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::IfAlias(alias.to_owned()));
        self.ack(
            || format!("set alias of {name}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// Brings a link up.
    pub(crate) fn set_up(&mut self, index: u32, name: &str) -> Result<(), RouteError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.ack(
            || format!("bring up {name}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// Detaches a link from its bridge and takes it down, in one request. This is cheap
    /// (no RCU barrier), unlike deleting a link.
    pub(crate) fn detach_and_down(&mut self, index: u32, name: &str) -> Result<(), RouteError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::empty();
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::Controller(0));
        self.ack(
            || format!("detach {name} from its bridge"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// Deletes a link (for a veth, both ends). Synchronous: the kernel waits for an RCU
    /// barrier before answering, about 20 ms on the reference machine.
    pub(crate) fn delete_link(&mut self, index: u32, name: &str) -> Result<(), RouteError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.ack(
            || format!("delete link {name}"),
            RouteNetlinkMessage::DelLink(msg),
            0,
        )
    }

    /// Adds `addr/prefix` to a link. With `replace`, an existing identical address is fine.
    pub(crate) fn add_address(
        &mut self,
        index: u32,
        name: &str,
        addr: Ipv4Addr,
        net: Ipv4Net,
        replace: bool,
    ) -> Result<(), RouteError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = net.prefix();
        msg.header.scope = AddressScope::Universe;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr.into()));
        msg.attributes.push(AddressAttribute::Address(addr.into()));
        msg.attributes
            .push(AddressAttribute::Broadcast(net.broadcast()));
        let flags = if replace {
            NLM_F_CREATE | NLM_F_REPLACE
        } else {
            NLM_F_CREATE | NLM_F_EXCL
        };
        self.ack(
            || format!("add address {addr}/{} to {name}", net.prefix()),
            RouteNetlinkMessage::NewAddress(msg),
            flags,
        )
    }

    /// The IPv4 addresses (with prefix lengths) of the link `index`.
    pub(crate) fn addresses(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, RouteError> {
        let what = "list addresses";
        let mut req = AddressMessage::default();
        req.header.family = AddressFamily::Inet;
        let msgs = self.dump(what, RouteNetlinkMessage::GetAddress(req))?;
        let mut out = Vec::new();
        for m in &msgs {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                return Err(unexpected(what, m));
            };
            if a.header.index != index {
                continue;
            }
            for attr in &a.attributes {
                if let AddressAttribute::Local(std::net::IpAddr::V4(ip)) = attr {
                    out.push((*ip, a.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// Adds the default route via `gateway`.
    pub(crate) fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), RouteError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.ack(
            || format!("add default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// The IPv4 unicast routes of the main table as (destination, output interface).
    pub(crate) fn main_routes(&mut self) -> Result<Vec<(Ipv4Net, Option<u32>)>, RouteError> {
        let what = "list routes";
        let mut req = RouteMessage::default();
        req.header.address_family = AddressFamily::Inet;
        let msgs = self.dump(what, RouteNetlinkMessage::GetRoute(req))?;
        let mut out = Vec::new();
        for m in &msgs {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                return Err(unexpected(what, m));
            };
            let mut table = u32::from(r.header.table);
            let mut dest = Ipv4Addr::UNSPECIFIED;
            let mut oif = None;
            for attr in &r.attributes {
                match attr {
                    RouteAttribute::Table(t) => table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => dest = *d,
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) || r.header.kind != RouteType::Unicast
            {
                continue;
            }
            if let Ok(net) = Ipv4Net::new(dest, r.header.destination_prefix_length) {
                out.push((net, oif));
            }
        }
        Ok(out)
    }
}

fn decode(what: &str, frame: &[u8]) -> Result<RouteNetlinkMessage, RouteError> {
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame).map_err(|e| {
        RouteError::Decode {
            what: what.into(),
            detail: e.to_string(),
        }
    })?;
    match msg.payload {
        NetlinkPayload::InnerMessage(m) => Ok(m),
        other => Err(RouteError::Decode {
            what: what.into(),
            detail: format!("unexpected netlink message type {}", other.message_type()),
        }),
    }
}

fn unexpected(what: &str, m: &RouteNetlinkMessage) -> RouteError {
    RouteError::Decode {
        what: what.into(),
        detail: format!("unexpected message {m:?}"),
    }
}

fn link_of(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        master: None,
        alias: None,
        mac: None,
        up: m.header.flags.contains(LinkFlags::Up),
    };
    for attr in &m.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name.clone_from(n),
            LinkAttribute::Controller(i) if *i != 0 => link.master = Some(*i),
            LinkAttribute::IfAlias(a) => link.alias = Some(a.clone()),
            LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}
