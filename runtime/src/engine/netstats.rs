//! Network counters for the metadata endpoint's stats: Docker's `networks` member
//! (per interface, as the container sees it) and the agent's `network_rate_stats`.
//!
//! A task's interface is one end of a veth pair whose other end is in berth's own
//! network namespace, so the counters are read there, from `/proc/self/net/dev`
//! (which follows the daemon's network namespace, unlike `/sys/class/net`, which
//! follows the namespace sysfs was mounted in), without entering the task's namespace.
//! What the host end receives, the container sent: the directions swap.

use std::collections::HashMap;

use serde_json::{Value, json};

/// One interface's counters, as `/proc/net/dev` and Docker's stats name them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LinkCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

impl LinkCounters {
    /// The counters of the veth's other end: received and sent swapped.
    pub(crate) fn seen_from_peer(self) -> LinkCounters {
        LinkCounters {
            rx_bytes: self.tx_bytes,
            rx_packets: self.tx_packets,
            rx_errors: self.tx_errors,
            rx_dropped: self.tx_dropped,
            tx_bytes: self.rx_bytes,
            tx_packets: self.rx_packets,
            tx_errors: self.rx_errors,
            tx_dropped: self.rx_dropped,
        }
    }

    /// Docker's `networks.<interface>` object.
    pub(crate) fn to_docker(self) -> Value {
        json!({
            "rx_bytes": self.rx_bytes, "rx_packets": self.rx_packets,
            "rx_errors": self.rx_errors, "rx_dropped": self.rx_dropped,
            "tx_bytes": self.tx_bytes, "tx_packets": self.tx_packets,
            "tx_errors": self.tx_errors, "tx_dropped": self.tx_dropped,
        })
    }
}

/// The counters of every interface in `/proc/net/dev`'s text, by name.
pub(crate) fn parse_proc_net_dev(text: &str) -> HashMap<String, LinkCounters> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            // Receive: bytes packets errs drop fifo frame compressed multicast;
            // transmit: bytes packets errs drop fifo colls carrier compressed.
            (v.len() >= 16).then(|| {
                (
                    name.trim().to_owned(),
                    LinkCounters {
                        rx_bytes: v[0],
                        rx_packets: v[1],
                        rx_errors: v[2],
                        rx_dropped: v[3],
                        tx_bytes: v[8],
                        tx_packets: v[9],
                        tx_errors: v[10],
                        tx_dropped: v[11],
                    },
                )
            })
        })
        .collect()
}

/// The daemon's network namespace's interfaces.
pub(crate) fn read_host_links() -> HashMap<String, LinkCounters> {
    std::fs::read_to_string("/proc/self/net/dev")
        .map(|text| parse_proc_net_dev(&text))
        .unwrap_or_default()
}

/// A container's interface: its name inside the task's namespace and the host end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerLink {
    pub interface: String,
    pub host_interface: String,
}

/// The interfaces container `name` sees, from the task's network record (`TaskNetwork`
/// as stored): the task's own endpoint (awsvpc, and bridge publishing for the whole
/// task) or the container's. None in host and none mode.
pub(crate) fn container_links(network: Option<&Value>, name: &str) -> Vec<ContainerLink> {
    let Some(network) =
        network.and_then(|n| serde_json::from_value::<berth_netns::TaskNetwork>(n.clone()).ok())
    else {
        return Vec::new();
    };
    network
        .endpoints
        .iter()
        .filter(|e| e.name == "task" || e.name == name)
        .filter_map(|e| e.interface.as_ref())
        .map(|i| ContainerLink {
            interface: i.interface_name.clone(),
            host_interface: i.host_interface.clone(),
        })
        .collect()
}

/// Bytes per second received and sent between two readings `seconds` apart.
pub(crate) fn rates(prev: (u64, u64), now: (u64, u64), seconds: f64) -> (f64, f64) {
    if seconds <= 0.0 {
        return (0.0, 0.0);
    }
    let per_sec = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
    (per_sec(prev.0, now.0), per_sec(prev.1, now.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
bth1a2b3c4d: 5000      40    1    2    0     0          0         0     9000      70    3    4    0     0       0          0
";

    #[test]
    fn proc_net_dev_rows_parse_by_interface() {
        let links = parse_proc_net_dev(PROC_NET_DEV);
        assert_eq!(links.len(), 2);
        let veth = links["bth1a2b3c4d"];
        assert_eq!(
            (
                veth.rx_bytes,
                veth.rx_packets,
                veth.rx_errors,
                veth.rx_dropped
            ),
            (5000, 40, 1, 2)
        );
        assert_eq!(
            (
                veth.tx_bytes,
                veth.tx_packets,
                veth.tx_errors,
                veth.tx_dropped
            ),
            (9000, 70, 3, 4)
        );
    }

    #[test]
    fn the_containers_view_of_a_veth_swaps_directions() {
        let host_end = parse_proc_net_dev(PROC_NET_DEV)["bth1a2b3c4d"];
        let inside = host_end.seen_from_peer();
        assert_eq!((inside.rx_bytes, inside.tx_bytes), (9000, 5000));
        assert_eq!(inside.to_docker()["rx_dropped"], 4);
    }

    #[test]
    fn rates_are_per_second_and_never_negative() {
        assert_eq!(rates((100, 0), (300, 50), 2.0), (100.0, 25.0));
        assert_eq!(rates((300, 0), (100, 0), 1.0), (0.0, 0.0));
        assert_eq!(rates((0, 0), (10, 10), 0.0), (0.0, 0.0));
    }

    #[test]
    fn host_and_none_tasks_have_no_links() {
        assert!(container_links(None, "web").is_empty());
        assert!(container_links(Some(&json!({"bogus": 1})), "web").is_empty());
    }
}
