//! Host preparation: refusals, and many setups at once.

use std::collections::BTreeSet;

use berth_netns::{ErrorKind, NetworkManager, Protocol};

use crate::harness::*;

#[test]
fn a_subnet_overlapping_a_host_route_is_refused() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        h.sh("ip addr add 10.229.8.1/21 dev up0");
        let m = NetworkManager::new(h.config()).unwrap();
        let e = m
            .setup_task(&awsvpc(h, "t", task_ip(2), vec![]))
            .unwrap_err();
        assert_eq!(e.class(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            "subnet 10.229.0.0/20 overlaps the host route to 10.229.8.0/21; choose another subnet"
        );
        assert!(
            !h.sh("ip -o link").contains("berth0"),
            "nothing was created"
        );
    });
}

#[test]
fn none_and_host_modes_leave_the_host_alone() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = NetworkManager::new(h.config()).unwrap();
        // a daemon start with no live tasks prepares nothing
        let r = m.reconcile(&[]).unwrap();
        assert_eq!(r.host, berth_netns::HostReport::default());
        let none = berth_netns::TaskNetworkRequest {
            task_id: "n1".into(),
            mode: berth_netns::NetworkMode::None,
            endpoints: vec![berth_netns::EndpointRequest {
                name: "task".into(),
                netns_path: Some(h.netns_path("n1")),
                address: None,
                port_mappings: vec![],
            }],
        };
        let s = m.setup_task(&none).unwrap();
        assert_eq!(
            h.sh("cat /proc/sys/net/ipv4/ip_forward").trim(),
            "0",
            "forwarding only as needed"
        );
        assert!(!h.sh("ip -o link").contains("berth0"));
        assert!(!h.try_sh("nft list table ip berth").status.success());
        m.teardown_task(&s.network).unwrap();
    });
}

#[test]
fn a_bridge_name_taken_by_another_kind_of_interface_is_refused() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        h.sh("ip link add berth0 type veth peer name berth0p");
        let m = NetworkManager::new(h.config()).unwrap();
        let e = m
            .setup_task(&awsvpc(h, "t", task_ip(2), vec![]))
            .unwrap_err();
        assert_eq!(e.class(), ErrorKind::Conflict);
        assert!(
            e.to_string()
                .starts_with("interface berth0 exists and is a veth, not a bridge"),
            "{e}"
        );
        assert_eq!(h.namespace_files(), 0);
    });
}

#[test]
fn concurrent_setups_and_teardowns_do_not_interfere() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        let h = &*h;
        let m = &m;
        let results: Vec<Vec<u16>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..6u8)
                .map(|w| {
                    s.spawn(move || {
                        let mut seen = Vec::new();
                        for i in 0..10u8 {
                            let task = format!("w{w}i{i}");
                            let ip = task_ip(10 + w * 20 + i);
                            // awsvpc publishes the container port: one per task
                            let port = 20000 + u16::from(w) * 100 + u16::from(i);
                            let req =
                                awsvpc(h, &task, ip, vec![mapping(port, None, Protocol::Tcp)]);
                            let s = m.setup_task(&req).unwrap();
                            seen.push(s.network.endpoints[0].network_bindings[0].host_port);
                            m.teardown_task(&s.network).unwrap();
                        }
                        seen
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let all: BTreeSet<u16> = results.into_iter().flatten().collect();
        assert_eq!(all.len(), 60);
        assert_eq!(h.attached_berth_veths(), 0);
        h.settle_veths(base.0);
        assert_eq!(h.counts(), base);
    });
}
