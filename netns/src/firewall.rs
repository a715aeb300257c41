//! berth's nftables table: egress NAT, published ports, the loopback guard, and task isolation.
//!
//! One table of berth's own (`ip berth` by default), replaced atomically as a whole when the
//! daemon starts (and on reconcile), so that it never drifts; per task only *elements* of the
//! `publish` map are added and removed, which keeps the per-task cost flat however many tasks
//! run. With the defaults (bridge `berth0`, subnet `10.229.0.0/20`, publish address
//! `127.0.0.1`) `nft list table ip berth` prints:
//!
//! ```text
//! table ip berth {
//!     comment "managed by berth: replaced on daemon start, do not edit"
//!     map publish {
//!         type inet_proto . inet_service : ipv4_addr . inet_service
//!         elements = { tcp . 8080 comment "<task-id>/task" : 10.229.0.2 . 8080 }
//!     }
//!     chain guard {
//!         type filter hook prerouting priority raw; policy accept;
//!         iifname != "lo" ip daddr 127.0.0.0/8 counter drop comment "CVE-2020-8558 ..."
//!     }
//!     chain prerouting {
//!         type nat hook prerouting priority dstnat; policy accept;
//!         iifname "berth0" ip daddr 169.254.170.2 tcp dport 80 dnat to 10.229.0.1:51679
//!             comment "task role credentials: ..."   (with the metadata endpoint's port)
//!         # publish 0.0.0.0:  fib daddr type local dnat ip to meta l4proto . th dport map @publish
//!         # publish a.b.c.d:  ip daddr a.b.c.d dnat ...; loopback: nothing (the guard drops it)
//!     }
//!     chain output {
//!         type nat hook output priority -100; policy accept;
//!         ip daddr 127.0.0.1 dnat ip to meta l4proto . th dport map @publish
//!     }
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         ip saddr 10.229.0.0/20 oifname != "berth0" masquerade
//!         ip saddr 127.0.0.0/8 oifname "berth0" masquerade
//!         oifname "berth0" ip saddr 10.229.0.0/20 ct status dnat masquerade
//!     }
//!     chain forward {
//!         type filter hook forward priority filter; policy accept;
//!         oifname "berth0" ct state established,related accept
//!         oifname "berth0" ct status dnat accept
//!         oifname "berth0" iifname != "berth0" counter drop
//!     }
//! }
//! ```
//!
//! * **Egress**: task traffic leaving through any interface but the bridge is masqueraded.
//! * **Publishing**: the `publish` map sends `protocol . host port` to `task address . container
//!   port`. Traffic from the host itself goes through `output`, from elsewhere through
//!   `prerouting`; only packets addressed to the publish address match, so nothing is reachable
//!   on a host address the user did not choose.
//! * **Loopback publishing** (the default) needs DNAT of locally generated packets to a
//!   non-loopback interface, so the bridge has `route_localnet=1`, and the `127.0.0.0/8` source
//!   is masqueraded behind the gateway address. `route_localnet` alone would let anything on
//!   the bridge reach the host's loopback services (CVE-2020-8558); the `guard` chain drops any
//!   packet addressed to `127.0.0.0/8` that did not arrive on `lo`, before conntrack and NAT see
//!   it (priority raw), like the guard rule of ecs-init.
//! * **Hairpin**: a task reaching a published port of another task through a host address is
//!   masqueraded, so replies come back the same way.
//! * **Task role credentials**: SDKs fetch `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` from
//!   `169.254.170.2:80`, which a task reaches through its default route to the gateway; that
//!   connection is sent to the daemon's endpoint on the gateway (the ECS agent does the same
//!   with a DNAT to its port 51679). Nothing listens on port 80 of the host.
//! * **Isolation** ("one security group"): tasks reach each other directly on the bridge, the
//!   host reaches them, replies and published ports pass, and nothing else is forwarded into the
//!   bridge (the LAN cannot route to task addresses).
//!
//! The base chains all have policy accept: berth adds restrictions for its own traffic only
//! and never decides for other traffic. A firewall that drops forwarded packets in its own
//! base chain (Docker sets iptables' `FORWARD` policy to drop) still wins, since netfilter
//! drops a packet any base chain drops; such hosts need an accept rule for berth's subnet there.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::error::ErrorKind;
use crate::ipam::Ipv4Net;
use crate::nft::{
    Batch, Chain, Element, Expr, Hook, Map, NF_ACCEPT, NF_DROP, NftError, NftSocket, REG_1,
    REG32_01, Rule,
};
use crate::ports::Protocol;

/// The map of published ports.
pub(crate) const PUBLISH_MAP: &str = "publish";
const TABLE_COMMENT: &str = "managed by berth: replaced on daemon start, do not edit";
const LOOPBACK: Ipv4Net = match Ipv4Net::const_new(Ipv4Addr::new(127, 0, 0, 0), 8) {
    Some(n) => n,
    None => unreachable!(),
};

/// Errors of berth's nftables table.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A host port is already in the `publish` map.
    #[error("host port {port}/{protocol} is already published by another task")]
    Published {
        /// The protocol.
        protocol: Protocol,
        /// The host port.
        port: u16,
    },
    /// berth's table or map is gone (another tool flushed the ruleset).
    #[error(
        "nftables table ip {table} is missing (was the ruleset flushed?); reconcile restores it"
    )]
    Missing {
        /// The table name.
        table: String,
        /// The kernel's answer.
        #[source]
        source: NftError,
    },
    /// Any other nftables failure.
    #[error("{what}")]
    Nft {
        /// What was being done.
        what: String,
        /// The failure.
        #[source]
        source: NftError,
    },
}

impl FirewallError {
    /// The error's class.
    pub fn class(&self) -> ErrorKind {
        match self {
            FirewallError::Published { .. } => ErrorKind::Conflict,
            FirewallError::Missing { .. } => ErrorKind::Internal,
            FirewallError::Nft { source, .. } => match source.errno() {
                Some(libc::EPERM | libc::EOPNOTSUPP | libc::EAFNOSUPPORT) => ErrorKind::Unsupported,
                _ => ErrorKind::Internal,
            },
        }
    }
}

/// A published port: an element of the `publish` map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Published {
    pub(crate) protocol: Protocol,
    pub(crate) host_port: u16,
    pub(crate) target: Ipv4Addr,
    pub(crate) target_port: u16,
    /// The owner, `<task-id>/<endpoint>` (the element's comment).
    pub(crate) owner: String,
}

impl Published {
    fn key(protocol: Protocol, host_port: u16) -> Vec<u8> {
        let [hi, lo] = host_port.to_be_bytes();
        vec![protocol.number(), 0, 0, 0, hi, lo, 0, 0]
    }

    fn element(&self) -> Element {
        let [a, b, c, d] = self.target.octets();
        let [hi, lo] = self.target_port.to_be_bytes();
        Element {
            key: Self::key(self.protocol, self.host_port),
            data: vec![a, b, c, d, hi, lo, 0, 0],
            comment: Some(self.owner.clone()),
        }
    }

    fn from_element(e: &Element) -> Option<Self> {
        let (k, d) = (e.key.as_slice(), e.data.as_slice());
        if k.len() != 8 || d.len() != 8 {
            return None;
        }
        Some(Published {
            protocol: Protocol::from_number(k[0])?,
            host_port: u16::from_be_bytes([k[4], k[5]]),
            target: Ipv4Addr::new(d[0], d[1], d[2], d[3]),
            target_port: u16::from_be_bytes([d[4], d[5]]),
            owner: e.comment.clone().unwrap_or_default(),
        })
    }
}

/// berth's table, described by the settings it depends on.
#[derive(Debug, Clone)]
pub(crate) struct Firewall {
    pub(crate) table: String,
    pub(crate) bridge: String,
    pub(crate) subnet: Ipv4Net,
    pub(crate) publish: Ipv4Addr,
    /// Where tasks' connections to the ECS credentials address go (the daemon's task
    /// metadata endpoint on the gateway), if anywhere.
    pub(crate) credentials_to: Option<SocketAddrV4>,
}

/// The address (port 80) the ECS agent serves task role credentials on, and SDKs fetch
/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` from.
pub const CREDENTIALS_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);

// nft datatype ids, for `nft list` to print the map readably
const TYPE_IPADDR: u32 = 7;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;

const MAP: Map = Map {
    name: PUBLISH_MAP,
    id: 1,
    key_type: (TYPE_INET_PROTOCOL << 6) | TYPE_INET_SERVICE,
    key_len: 8,
    data_type: (TYPE_IPADDR << 6) | TYPE_INET_SERVICE,
    data_len: 8,
};

const CHAINS: [Chain; 5] = [
    Chain {
        name: "guard",
        kind: "filter",
        hook: Hook::Prerouting,
        priority: -300,
    },
    Chain {
        name: "prerouting",
        kind: "nat",
        hook: Hook::Prerouting,
        priority: -100,
    },
    Chain {
        name: "output",
        kind: "nat",
        hook: Hook::Output,
        priority: -100,
    },
    Chain {
        name: "postrouting",
        kind: "nat",
        hook: Hook::Postrouting,
        priority: 100,
    },
    Chain {
        name: "forward",
        kind: "filter",
        hook: Hook::Forward,
        priority: 0,
    },
];

// expression helpers, named after the nft syntax they implement
fn ifname(key: u32, eq: bool, name: &str) -> [Expr; 2] {
    let mut data = name.as_bytes().to_vec();
    data.resize(16, 0);
    [
        Expr::Meta { key, dreg: REG_1 },
        Expr::Cmp {
            sreg: REG_1,
            op: u32::from(!eq),
            data,
        },
    ]
}
fn iifname(eq: bool, name: &str) -> [Expr; 2] {
    ifname(6, eq, name)
}
fn oifname(eq: bool, name: &str) -> [Expr; 2] {
    ifname(7, eq, name)
}
fn ip_in(offset: u32, net: Ipv4Net) -> [Expr; 3] {
    [
        Expr::Payload {
            base: 1,
            offset,
            len: 4,
            dreg: REG_1,
        },
        Expr::Bitwise {
            reg: REG_1,
            mask: net.netmask().octets().to_vec(),
            xor: vec![0; 4],
        },
        Expr::Cmp {
            sreg: REG_1,
            op: 0,
            data: net.network().octets().to_vec(),
        },
    ]
}
fn ip_saddr_in(net: Ipv4Net) -> [Expr; 3] {
    ip_in(12, net)
}
fn ip_daddr_in(net: Ipv4Net) -> [Expr; 3] {
    ip_in(16, net)
}
fn ip_daddr_eq(a: Ipv4Addr) -> [Expr; 2] {
    [
        Expr::Payload {
            base: 1,
            offset: 16,
            len: 4,
            dreg: REG_1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: 0,
            data: a.octets().to_vec(),
        },
    ]
}
/// `ct <key> <bits>`: any of `bits` set (host byte order, like the kernel's conntrack fields).
fn ct_any(key: u32, bits: u32) -> [Expr; 3] {
    [
        Expr::Ct { key, dreg: REG_1 },
        Expr::Bitwise {
            reg: REG_1,
            mask: bits.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        },
        Expr::Cmp {
            sreg: REG_1,
            op: 1,
            data: vec![0; 4],
        },
    ]
}
const CT_STATE: u32 = 0;
const CT_STATUS: u32 = 2;
const CT_ESTABLISHED_RELATED: u32 = 0x2 | 0x4;
const CT_STATUS_DNAT: u32 = 0x20;
fn fib_daddr_local() -> [Expr; 2] {
    // fib daddr type => reg 1; cmp eq reg 1 RTN_LOCAL
    [
        Expr::Fib {
            flags: 2,
            result: 3,
            dreg: REG_1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: 0,
            data: 2u32.to_ne_bytes().to_vec(),
        },
    ]
}
fn dnat_via_map() -> [Expr; 4] {
    [
        Expr::Meta {
            key: 16,
            dreg: REG_1,
        },
        Expr::Payload {
            base: 2,
            offset: 2,
            len: 2,
            dreg: REG32_01,
        },
        Expr::Lookup {
            set: PUBLISH_MAP.into(),
            set_id: MAP.id,
            sreg: REG_1,
            dreg: Some(REG_1),
        },
        Expr::Dnat {
            addr: REG_1,
            proto: REG32_01,
        },
    ]
}

/// `meta l4proto tcp th dport <port>`.
fn tcp_dport_eq(port: u16) -> [Expr; 4] {
    [
        Expr::Meta {
            key: 16,
            dreg: REG_1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: 0,
            data: vec![6],
        },
        Expr::Payload {
            base: 2,
            offset: 2,
            len: 2,
            dreg: REG_1,
        },
        Expr::Cmp {
            sreg: REG_1,
            op: 0,
            data: port.to_be_bytes().to_vec(),
        },
    ]
}

/// `dnat ip to <addr>:<port>`.
fn dnat_to(to: SocketAddrV4) -> [Expr; 3] {
    [
        Expr::Immediate {
            dreg: REG_1,
            data: to.ip().octets().to_vec(),
        },
        Expr::Immediate {
            dreg: REG32_01,
            data: to.port().to_be_bytes().to_vec(),
        },
        Expr::Dnat {
            addr: REG_1,
            proto: REG32_01,
        },
    ]
}

fn rule(chain: &'static str, parts: &[&[Expr]], comment: Option<&'static str>) -> Rule {
    Rule {
        chain,
        exprs: parts.iter().flat_map(|p| p.iter().cloned()).collect(),
        comment,
    }
}

impl Firewall {
    /// Whether published ports are reachable through loopback (which needs `route_localnet`
    /// on the bridge, and the guard).
    pub(crate) fn publishes_on_loopback(&self) -> bool {
        self.publish.is_loopback() || self.publish.is_unspecified()
    }

    pub(crate) fn rules(&self) -> Vec<Rule> {
        let (br, net) = (self.bridge.as_str(), self.subnet);
        let mut rules = vec![rule(
            "guard",
            &[
                &iifname(false, "lo"),
                &ip_daddr_in(LOOPBACK),
                &[Expr::Counter, Expr::Verdict(NF_DROP)],
            ],
            Some("CVE-2020-8558: nothing but lo may reach 127.0.0.0/8"),
        )];
        if self.publish.is_unspecified() {
            rules.push(rule(
                "prerouting",
                &[&fib_daddr_local(), &dnat_via_map()],
                None,
            ));
            rules.push(rule("output", &[&fib_daddr_local(), &dnat_via_map()], None));
        } else {
            if !self.publish.is_loopback() {
                rules.push(rule(
                    "prerouting",
                    &[&ip_daddr_eq(self.publish), &dnat_via_map()],
                    None,
                ));
            }
            rules.push(rule(
                "output",
                &[&ip_daddr_eq(self.publish), &dnat_via_map()],
                None,
            ));
        }
        if let Some(to) = self.credentials_to {
            rules.push(rule(
                "prerouting",
                &[
                    &iifname(true, br),
                    &ip_daddr_eq(CREDENTIALS_ADDRESS),
                    &tcp_dport_eq(80),
                    &dnat_to(to),
                ],
                Some("task role credentials: 169.254.170.2:80 is berth's endpoint"),
            ));
        }
        rules.push(rule(
            "postrouting",
            &[&ip_saddr_in(net), &oifname(false, br), &[Expr::Masquerade]],
            None,
        ));
        if self.publishes_on_loopback() {
            rules.push(rule(
                "postrouting",
                &[
                    &ip_saddr_in(LOOPBACK),
                    &oifname(true, br),
                    &[Expr::Masquerade],
                ],
                None,
            ));
        }
        rules.push(rule(
            "postrouting",
            &[
                &oifname(true, br),
                &ip_saddr_in(net),
                &ct_any(CT_STATUS, CT_STATUS_DNAT),
                &[Expr::Masquerade],
            ],
            None,
        ));
        rules.push(rule(
            "forward",
            &[
                &oifname(true, br),
                &ct_any(CT_STATE, CT_ESTABLISHED_RELATED),
                &[Expr::Verdict(NF_ACCEPT)],
            ],
            None,
        ));
        rules.push(rule(
            "forward",
            &[
                &oifname(true, br),
                &ct_any(CT_STATUS, CT_STATUS_DNAT),
                &[Expr::Verdict(NF_ACCEPT)],
            ],
            None,
        ));
        rules.push(rule(
            "forward",
            &[
                &oifname(true, br),
                &iifname(false, br),
                &[Expr::Counter, Expr::Verdict(NF_DROP)],
            ],
            Some("only tasks, the host and published ports reach tasks"),
        ));
        rules
    }

    /// Replaces the whole table, atomically, with one holding exactly `published`.
    pub(crate) fn rebuild(
        &self,
        sock: &mut NftSocket,
        published: &[Published],
    ) -> Result<(), FirewallError> {
        let mut b = Batch::new(sock, &self.table);
        // "add; delete; add" works whether or not the table exists, in one transaction.
        b.add_table(sock, TABLE_COMMENT);
        b.delete_table(sock);
        b.add_table(sock, TABLE_COMMENT);
        b.add_map(sock, &MAP);
        for c in &CHAINS {
            b.add_chain(sock, c);
        }
        for r in self.rules() {
            b.add_rule(sock, &r);
        }
        for p in published {
            b.add_element(
                sock,
                PUBLISH_MAP,
                &p.element(),
                element_what(p.protocol, p.host_port, "add"),
                false,
            );
        }
        sock.apply(b, &format!("table ip {}", self.table))
            .map_err(|source| FirewallError::Nft {
                what: format!("replace nftables table ip {}", self.table),
                source,
            })
    }

    /// Deletes the whole table, if it exists.
    pub(crate) fn remove(&self, sock: &mut NftSocket) -> Result<(), FirewallError> {
        let mut b = Batch::new(sock, &self.table);
        b.delete_table(sock);
        match sock.apply(b, "delete table") {
            Err(e) if e.errno() != Some(libc::ENOENT) => Err(FirewallError::Nft {
                what: format!("delete nftables table ip {}", self.table),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Adds `ports` to the map in one transaction; a port already there fails the whole
    /// transaction (nothing is added) with [`FirewallError::Published`].
    pub(crate) fn publish(
        &self,
        sock: &mut NftSocket,
        ports: &[Published],
    ) -> Result<(), FirewallError> {
        let mut b = Batch::new(sock, &self.table);
        for p in ports {
            b.add_element(
                sock,
                PUBLISH_MAP,
                &p.element(),
                element_what(p.protocol, p.host_port, "add"),
                true,
            );
        }
        sock.apply(b, "publish ports").map_err(|source| {
            if source.errno() == Some(libc::EEXIST) {
                // name the first port that was there already
                let taken = self.published(sock).unwrap_or_default();
                let p = ports
                    .iter()
                    .find(|p| {
                        taken
                            .iter()
                            .any(|t| t.protocol == p.protocol && t.host_port == p.host_port)
                    })
                    .unwrap_or(&ports[0]);
                return FirewallError::Published {
                    protocol: p.protocol,
                    port: p.host_port,
                };
            }
            self.classify(source, "publish ports")
        })
    }

    /// Removes `ports` from the map — each only if it still leads where the record says, so
    /// that tearing down an old record never unpublishes a port another task has since
    /// taken. Ports that are not there are fine (teardown is idempotent).
    pub(crate) fn unpublish(
        &self,
        sock: &mut NftSocket,
        ports: &[Published],
    ) -> Result<(), FirewallError> {
        let mut mine = Vec::with_capacity(ports.len());
        for p in ports {
            let key = Published::key(p.protocol, p.host_port);
            let current = sock
                .element(&self.table, PUBLISH_MAP, &key)
                .map_err(|e| self.classify(e, "unpublish ports"))?;
            match current.as_ref().and_then(Published::from_element) {
                Some(c) if c.target == p.target && c.target_port == p.target_port => {
                    mine.push((p.protocol, p.host_port));
                }
                Some(c) => tracing::debug!(
                    port = p.host_port, owner = %c.owner, "not unpublishing a port that is no longer ours"
                ),
                None => {}
            }
        }
        let batch = |sock: &mut NftSocket, ports: &[(Protocol, u16)]| {
            let mut b = Batch::new(sock, &self.table);
            for &(protocol, port) in ports {
                b.delete_element(
                    sock,
                    PUBLISH_MAP,
                    &Published::key(protocol, port),
                    element_what(protocol, port, "delete"),
                );
            }
            b
        };
        let b = batch(sock, &mine);
        match sock.apply(b, "unpublish ports") {
            Ok(()) => Ok(()),
            // One missing element aborts the whole transaction: retry one by one.
            Err(e) if e.errno() == Some(libc::ENOENT) => {
                for p in &mine {
                    let b = batch(sock, std::slice::from_ref(p));
                    match sock.apply(b, "unpublish port") {
                        Ok(()) => {}
                        Err(e) if e.errno() == Some(libc::ENOENT) => {}
                        Err(e) => return Err(self.classify(e, "unpublish ports")),
                    }
                }
                Ok(())
            }
            Err(e) => Err(self.classify(e, "unpublish ports")),
        }
    }

    /// The current content of the map.
    pub(crate) fn published(&self, sock: &mut NftSocket) -> Result<Vec<Published>, FirewallError> {
        let elements = sock
            .elements(&self.table, PUBLISH_MAP)
            .map_err(|e| self.classify(e, "list published ports"))?;
        Ok(elements
            .iter()
            .filter_map(Published::from_element)
            .collect())
    }

    fn classify(&self, source: NftError, what: &str) -> FirewallError {
        if source.errno() == Some(libc::ENOENT) {
            FirewallError::Missing {
                table: self.table.clone(),
                source,
            }
        } else {
            FirewallError::Nft {
                what: what.to_owned(),
                source,
            }
        }
    }
}

fn element_what(protocol: Protocol, port: u16, verb: &str) -> String {
    format!("{verb} element {protocol} . {port} of map {PUBLISH_MAP}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(publish: Ipv4Addr) -> Firewall {
        Firewall {
            table: "berth".into(),
            bridge: "berth0".into(),
            subnet: "10.229.0.0/20".parse().unwrap(),
            publish,
            credentials_to: None,
        }
    }

    #[test]
    fn credentials_address_is_sent_to_the_endpoint_only_from_the_bridge() {
        let to = SocketAddrV4::new(Ipv4Addr::new(10, 229, 0, 1), 51679);
        let rules = Firewall {
            credentials_to: Some(to),
            ..fw(Ipv4Addr::LOCALHOST)
        }
        .rules();
        let pre: Vec<&Rule> = rules.iter().filter(|r| r.chain == "prerouting").collect();
        assert_eq!(pre.len(), 1);
        let e = &pre[0].exprs;
        assert!(
            e.iter()
                .any(|x| matches!(x, Expr::Cmp { op: 0, data, .. } if data.starts_with(b"berth0")))
        );
        assert!(e.contains(&Expr::Cmp {
            sreg: REG_1,
            op: 0,
            data: vec![169, 254, 170, 2]
        }));
        assert!(e.contains(&Expr::Cmp {
            sreg: REG_1,
            op: 0,
            data: vec![0, 80]
        }));
        assert_eq!(
            e[e.len() - 3..],
            [
                Expr::Immediate {
                    dreg: REG_1,
                    data: vec![10, 229, 0, 1]
                },
                Expr::Immediate {
                    dreg: REG32_01,
                    data: 51679u16.to_be_bytes().to_vec()
                },
                Expr::Dnat {
                    addr: REG_1,
                    proto: REG32_01
                },
            ]
        );
    }

    #[test]
    fn elements_encode_like_nft_and_decode_back() {
        let p = Published {
            protocol: Protocol::Tcp,
            host_port: 8080,
            target: Ipv4Addr::new(10, 229, 0, 2),
            target_port: 8080,
            owner: "t1/task".into(),
        };
        let e = p.element();
        // as `nft --debug=netlink` prints it: 00000006 0000901f : 0200e50a 0000901f
        assert_eq!(e.key, [6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(e.data, [10, 229, 0, 2, 0x1f, 0x90, 0, 0]);
        assert_eq!(Published::from_element(&e), Some(p));
    }

    #[test]
    fn loopback_publishing_has_no_prerouting_dnat_but_masquerades_loopback() {
        let rules = fw(Ipv4Addr::LOCALHOST).rules();
        assert!(!rules.iter().any(|r| r.chain == "prerouting"));
        assert_eq!(rules.iter().filter(|r| r.chain == "output").count(), 1);
        assert_eq!(rules.iter().filter(|r| r.chain == "postrouting").count(), 3);
        let rules = fw(Ipv4Addr::new(192, 0, 2, 1)).rules();
        assert_eq!(rules.iter().filter(|r| r.chain == "prerouting").count(), 1);
        assert_eq!(rules.iter().filter(|r| r.chain == "postrouting").count(), 2);
        let rules = fw(Ipv4Addr::UNSPECIFIED).rules();
        let pre = rules.iter().find(|r| r.chain == "prerouting").unwrap();
        assert!(matches!(pre.exprs[0], Expr::Fib { .. }));
        // every chain with rules exists
        for r in &rules {
            assert!(CHAINS.iter().any(|c| c.name == r.chain));
        }
    }

    #[test]
    fn the_guard_comes_first_and_drops() {
        let rules = fw(Ipv4Addr::LOCALHOST).rules();
        assert_eq!(rules[0].chain, "guard");
        assert_eq!(rules[0].exprs.last(), Some(&Expr::Verdict(NF_DROP)));
    }
}
