//! Names and identifiers: host interface names, ownership tags, MAC addresses, and the ECS-style
//! ids (`eni-…`, `subnet-…`, attachment UUIDs). See the crate docs for the naming scheme.

use std::net::Ipv4Addr;

use crate::ipam::Ipv4Net;

/// Prefix of every host-side veth berth creates.
pub const VETH_PREFIX: &str = "bth";
/// Prefix of the interface alias that records a veth's owner.
const ALIAS_PREFIX: &str = "berth:";
/// Longest interface name the kernel accepts (`IFNAMSIZ - 1`).
pub(crate) const IFNAME_MAX: usize = 15;
/// Longest interface alias the kernel accepts (`IFALIASZ - 1`).
const ALIAS_MAX: usize = 255;
/// Longest comment we put on an nftables element (the kernel allows 256 bytes of user data).
const COMMENT_MAX: usize = 200;

/// Whether `id` is a valid task id: 1 to 64 ASCII letters, digits, `-` or `_`.
pub(crate) fn valid_task_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `name` is a valid endpoint (container) name: ECS allows 1 to 255 letters, digits,
/// `-` and `_`.
pub(crate) fn valid_endpoint_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The host end of endpoint `index` of task `task_id`: `bth`, the first ten letters or digits
/// of the task id (lower-cased), and the endpoint index in two hex digits — so an operator can
/// tell from `ip link` which task an interface belongs to.
pub(crate) fn host_veth_name(task_id: &str, index: usize) -> String {
    let stem: String = task_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(IFNAME_MAX - VETH_PREFIX.len() - 2)
        .collect();
    format!("{VETH_PREFIX}{stem}{:02x}", index & 0xff)
}

/// The alias recording which bridge and task own a veth: `berth:<bridge>:<task-id>:<endpoint>`.
pub(crate) fn veth_alias(bridge: &str, task_id: &str, endpoint: &str) -> String {
    let mut alias = format!("{ALIAS_PREFIX}{bridge}:{task_id}:{endpoint}");
    truncate(&mut alias, ALIAS_MAX);
    alias
}

/// The (bridge, task id) an alias made by [`veth_alias`] names.
pub(crate) fn parse_veth_alias(alias: &str) -> Option<(&str, &str)> {
    let rest = alias.strip_prefix(ALIAS_PREFIX)?;
    let mut parts = rest.splitn(3, ':');
    Some((parts.next()?, parts.next()?))
}

/// The comment on an nftables element, naming its owner: `<task-id>/<endpoint>`.
pub(crate) fn element_comment(task_id: &str, endpoint: &str) -> String {
    let mut c = format!("{task_id}/{endpoint}");
    truncate(&mut c, COMMENT_MAX);
    c
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// A locally administered unicast MAC derived from an address: `02:b7:` and the four octets.
/// Deriving it from the address means a reused address comes back with the same MAC, so ARP
/// caches of other tasks stay right.
pub(crate) fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0xb7, a, b, c, d]
}

/// `aa:bb:cc:dd:ee:ff`.
pub(crate) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source does not fail on Linux once the pool is initialised; if it ever
    // did, ids would merely be less random (they are labels, not secrets).
    if getrandom::fill(&mut buf).is_err() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (fnv1a(&[&seed.to_le_bytes()[..], &i.to_le_bytes()[..]]) & 0xff) as u8;
        }
    }
    buf
}

/// A random (version 4) UUID.
pub(crate) fn random_uuid() -> String {
    let mut b: [u8; 16] = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A random `eni-` id with ECS's 17 hex digits.
pub(crate) fn random_eni_id() -> String {
    let b: [u8; 9] = random_bytes();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("eni-{}", &h[..17])
}

/// The `subnet-` id of berth's subnet: stable for a given bridge and subnet, so it does not
/// change across daemon restarts.
pub(crate) fn subnet_id(bridge: &str, net: Ipv4Net) -> String {
    let text = format!("{bridge}/{net}");
    let a = fnv1a(&[text.as_bytes()]);
    let b = fnv1a(&[b"subnet", text.as_bytes()]);
    format!("subnet-{:016x}{:x}", a, b & 0xf)
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_ifnamsiz_and_show_the_task() {
        let n = host_veth_name("8F03E41243824aea923aca126495f665", 0);
        assert_eq!(n, "bth8f03e4124300");
        assert_eq!(n.len(), IFNAME_MAX);
        assert_eq!(host_veth_name("8f03e41243824aea", 3), "bth8f03e4124303");
        assert_eq!(host_veth_name("a-b", 255), "bthabff");
        assert_ne!(host_veth_name("t1", 0), host_veth_name("t1", 1));
    }

    #[test]
    fn aliases_and_comments_round_trip_the_owner() {
        let a = veth_alias("berth0", "8f03e412", "web");
        assert_eq!(a, "berth:berth0:8f03e412:web");
        assert_eq!(parse_veth_alias(&a), Some(("berth0", "8f03e412")));
        assert_eq!(parse_veth_alias("something else"), None);
        let long = veth_alias("berth0", &"t".repeat(64), &"c".repeat(255));
        assert_eq!(long.len(), 255);
        assert_eq!(parse_veth_alias(&long).map(|(_, t)| t.len()), Some(64));
        assert_eq!(element_comment("8f03e412", "task"), "8f03e412/task");
        assert!(element_comment(&"t".repeat(64), &"c".repeat(255)).len() <= 200);
    }

    #[test]
    fn ids_have_ecs_shapes() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(random_uuid(), u);
        let e = random_eni_id();
        assert!(e.starts_with("eni-") && e.len() == 21, "{e}");
        let net: Ipv4Net = "10.229.0.0/20".parse().unwrap();
        let s = subnet_id("berth0", net);
        assert!(s.starts_with("subnet-") && s.len() == 24, "{s}");
        assert_eq!(s, subnet_id("berth0", net));
        assert_ne!(s, subnet_id("berth1", net));
    }

    #[test]
    fn macs_are_local_unicast_and_follow_the_address() {
        let m = mac_for(Ipv4Addr::new(10, 229, 0, 2));
        assert_eq!(format_mac(m), "02:b7:0a:e5:00:02");
        assert_eq!(m[0] & 0x01, 0, "unicast");
        assert_eq!(m[0] & 0x02, 2, "locally administered");
    }

    #[test]
    fn ids_are_validated() {
        assert!(valid_task_id("8f03e41243824aea923aca126495f665"));
        assert!(!valid_task_id(""));
        assert!(!valid_task_id("../x"));
        assert!(!valid_task_id(&"a".repeat(65)));
        assert!(valid_endpoint_name("web_1-a"));
        assert!(!valid_endpoint_name("web/1"));
    }
}
