//! IPv4 address management, as pure functions: the caller keeps the leases (in SQLite) and
//! asks for the next free address given the ones in use.
//!
//! The default subnet, `10.229.0.0/20` (4,093 task addresses), was chosen to stay clear of
//! Docker's `172.17.0.0/16` (and its `172.17–31.x` / `192.168.x` pools), Podman's
//! `10.88.0.0/16` and `10.89.x`, the ECS agent's `169.254.172.0/22`, Kubernetes' common pod
//! and service ranges (`10.42`, `10.43`, `10.96/12`, `10.244`), AWS's default VPC
//! `172.31.0.0/16`, home LANs (`192.168.x`) and CGNAT/Tailscale (`100.64.0.0/10`). It is a
//! setting; berth refuses to start when it overlaps a route of the host (see `manager`).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ErrorKind;

/// Errors of address management.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// A CIDR string could not be parsed.
    #[error("invalid IPv4 network {input:?}: {reason}")]
    Parse {
        /// What was given.
        input: String,
        /// Why it is wrong.
        reason: &'static str,
    },
    /// The subnet has no room for a gateway and a task.
    #[error("subnet {0} is too small: a /30 or larger is needed")]
    TooSmall(Ipv4Net),
    /// An address is outside the subnet.
    #[error("address {ip} is not in subnet {net}")]
    NotInSubnet {
        /// The address.
        ip: Ipv4Addr,
        /// The subnet.
        net: Ipv4Net,
    },
    /// An address is the subnet's network, broadcast or gateway address.
    #[error("address {ip} is the {what} address of subnet {net}")]
    Reserved {
        /// The address.
        ip: Ipv4Addr,
        /// "network", "broadcast" or "gateway".
        what: &'static str,
        /// The subnet.
        net: Ipv4Net,
    },
    /// Every address is leased.
    #[error("subnet {net} has no free address: all {capacity} task addresses are in use")]
    Exhausted {
        /// The subnet.
        net: Ipv4Net,
        /// How many task addresses it has.
        capacity: u32,
    },
}

impl IpamError {
    /// The error's class.
    pub fn class(&self) -> ErrorKind {
        match self {
            IpamError::Exhausted { .. } => ErrorKind::Conflict,
            IpamError::Parse { .. }
            | IpamError::TooSmall(_)
            | IpamError::NotInSubnet { .. }
            | IpamError::Reserved { .. } => ErrorKind::Invalid,
        }
    }
}

/// An IPv4 network: an address with its host bits cleared, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// The network containing `addr` with `prefix` bits (host bits are cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, IpamError> {
        if prefix > 32 {
            return Err(IpamError::Parse {
                input: format!("{addr}/{prefix}"),
                reason: "prefix length above 32",
            });
        }
        Ok(Ipv4Net {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    /// [`Ipv4Net::new`] for constants; `None` when `prefix` is above 32.
    pub(crate) const fn const_new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        if prefix > 32 {
            return None;
        }
        Some(Ipv4Net {
            network: Ipv4Addr::from_bits(addr.to_bits() & mask(prefix)),
            prefix,
        })
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask, e.g. `255.255.240.0`.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
}

const fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = IpamError;

    /// Parses `a.b.c.d/n`; host bits must be clear, so that a typo is not silently widened.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| IpamError::Parse {
            input: s.to_owned(),
            reason,
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| err("expected a.b.c.d/prefix"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| err("not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| err("prefix length is not a number"))?;
        let net = Ipv4Net::new(addr, prefix).map_err(|_| err("prefix length above 32"))?;
        if net.network != addr {
            return Err(err("host bits are set"));
        }
        Ok(net)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// berth's task subnet: its first host address is the gateway (on the bridge), the others
/// are task addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    net: Ipv4Net,
}

impl Subnet {
    /// A task subnet; it needs room for a gateway and at least one task (a /30).
    pub fn new(net: Ipv4Net) -> Result<Self, IpamError> {
        if net.prefix > 30 {
            return Err(IpamError::TooSmall(net));
        }
        Ok(Subnet { net })
    }

    /// The network.
    pub fn net(&self) -> Ipv4Net {
        self.net
    }

    /// The gateway address (the bridge's), the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net.network) + 1)
    }

    /// How many task addresses the subnet has.
    pub fn capacity(&self) -> u32 {
        // hosts minus network, broadcast and gateway
        (1u32 << (32 - u32::from(self.net.prefix))) - 3
    }

    fn first(&self) -> u32 {
        u32::from(self.net.network) + 2
    }

    fn last(&self) -> u32 {
        u32::from(self.net.broadcast()) - 1
    }

    /// Checks that `ip` may be leased to a task.
    pub fn check_task_address(&self, ip: Ipv4Addr) -> Result<(), IpamError> {
        let net = self.net;
        if !net.contains(ip) {
            return Err(IpamError::NotInSubnet { ip, net });
        }
        let what = if ip == net.network {
            "network"
        } else if ip == net.broadcast() {
            "broadcast"
        } else if ip == self.gateway() {
            "gateway"
        } else {
            return Ok(());
        };
        Err(IpamError::Reserved { ip, what, net })
    }

    /// The next free task address after `after` (or from the start), wrapping around once.
    ///
    /// Handing out addresses in rotation rather than lowest-first keeps a just-released
    /// address unused for as long as possible, so stale conntrack entries and ARP caches of
    /// the previous holder have time to expire (what CNI's host-local IPAM does too).
    pub fn allocate(
        &self,
        in_use: impl Fn(Ipv4Addr) -> bool,
        after: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        let (first, last) = (self.first(), self.last());
        let start = match after {
            Some(a) if self.net.contains(a) && u32::from(a) >= first && u32::from(a) < last => {
                u32::from(a) + 1
            }
            _ => first,
        };
        (start..=last)
            .chain(first..start)
            .map(Ipv4Addr::from)
            .find(|&ip| !in_use(ip))
            .ok_or(IpamError::Exhausted {
                net: self.net,
                capacity: self.capacity(),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parse_display_and_arithmetic() {
        let n = net("10.229.0.0/20");
        assert_eq!(n.to_string(), "10.229.0.0/20");
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 229, 15, 255));
        assert!(n.contains(Ipv4Addr::new(10, 229, 15, 1)));
        assert!(!n.contains(Ipv4Addr::new(10, 229, 16, 1)));
        assert!(n.overlaps(&net("10.0.0.0/8")));
        assert!(net("10.0.0.0/8").overlaps(&n));
        assert!(!n.overlaps(&net("10.88.0.0/16")));
        assert!(net("0.0.0.0/0").overlaps(&n));
        assert_eq!(
            Ipv4Net::new(Ipv4Addr::new(10, 1, 2, 3), 16).unwrap(),
            net("10.1.0.0/16")
        );
    }

    #[test]
    fn parse_rejects_garbage_and_host_bits() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.1/8",
            "x/8",
            "10.0.0.0/x",
        ] {
            let e = bad.parse::<Ipv4Net>().unwrap_err();
            assert_eq!(e.class(), ErrorKind::Invalid, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn serde_round_trips_as_a_string() {
        let n = net("10.229.0.0/20");
        let j = serde_json::to_string(&n).unwrap();
        assert_eq!(j, "\"10.229.0.0/20\"");
        assert_eq!(serde_json::from_str::<Ipv4Net>(&j).unwrap(), n);
        assert!(serde_json::from_str::<Ipv4Net>("\"10.229.0.1/20\"").is_err());
    }

    #[test]
    fn subnet_reserves_network_gateway_and_broadcast() {
        let s = Subnet::new(net("10.229.0.0/20")).unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 229, 0, 1));
        assert_eq!(s.capacity(), 4093);
        s.check_task_address(Ipv4Addr::new(10, 229, 0, 2)).unwrap();
        for (ip, what) in [
            (Ipv4Addr::new(10, 229, 0, 0), "network"),
            (Ipv4Addr::new(10, 229, 0, 1), "gateway"),
            (Ipv4Addr::new(10, 229, 15, 255), "broadcast"),
        ] {
            let e = s.check_task_address(ip).unwrap_err();
            assert!(e.to_string().contains(what), "{e}");
        }
        let e = s
            .check_task_address(Ipv4Addr::new(10, 88, 0, 2))
            .unwrap_err();
        assert!(matches!(e, IpamError::NotInSubnet { .. }));
        assert!(Subnet::new(net("10.0.0.0/31")).is_err());
        assert_eq!(Subnet::new(net("10.0.0.0/30")).unwrap().capacity(), 1);
    }

    #[test]
    fn allocation_rotates_skips_used_and_wraps() {
        let s = Subnet::new(net("10.0.0.0/29")).unwrap(); // tasks .2 ..= .6
        let used: BTreeSet<Ipv4Addr> =
            [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 4)].into();
        let free = |ip| used.contains(&ip);
        assert_eq!(s.allocate(free, None).unwrap(), Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(
            s.allocate(free, Some(Ipv4Addr::new(10, 0, 0, 3))).unwrap(),
            Ipv4Addr::new(10, 0, 0, 5)
        );
        // after the last address, wrap to the first free one
        assert_eq!(
            s.allocate(free, Some(Ipv4Addr::new(10, 0, 0, 6))).unwrap(),
            Ipv4Addr::new(10, 0, 0, 3)
        );
        // a hint outside the subnet starts from the beginning
        assert_eq!(
            s.allocate(free, Some(Ipv4Addr::new(192, 0, 2, 1))).unwrap(),
            Ipv4Addr::new(10, 0, 0, 3)
        );
    }

    #[test]
    fn allocation_never_hands_out_an_address_twice_and_reports_exhaustion() {
        let s = Subnet::new(net("10.0.0.0/28")).unwrap();
        let mut used = BTreeSet::new();
        let mut last = None;
        for _ in 0..s.capacity() {
            let ip = s.allocate(|ip| used.contains(&ip), last).unwrap();
            s.check_task_address(ip).unwrap();
            assert!(used.insert(ip), "{ip} handed out twice");
            last = Some(ip);
        }
        let e = s.allocate(|ip| used.contains(&ip), last).unwrap_err();
        assert_eq!(e.class(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            "subnet 10.0.0.0/28 has no free address: all 13 task addresses are in use"
        );
    }
}
