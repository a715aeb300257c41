//! bridge, host and none modes.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::MetadataExt;

use berth_netns::{EPHEMERAL_PORTS, EndpointRequest, NetworkMode, Protocol, TaskNetworkRequest};

use crate::harness::*;

#[test]
fn bridge_mode_gives_each_container_a_namespace_and_distinct_dynamic_ports() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        let ep = |name: &str, n: u8, mappings| EndpointRequest {
            name: name.into(),
            netns_path: Some(h.netns_path(&format!("br1-{name}"))),
            address: Some(task_ip(n)),
            port_mappings: mappings,
        };
        let req = TaskNetworkRequest {
            task_id: "br1".into(),
            mode: NetworkMode::Bridge,
            endpoints: vec![
                ep(
                    "web",
                    20,
                    vec![
                        mapping(80, None, Protocol::Tcp),
                        mapping(81, None, Protocol::Tcp),
                    ],
                ),
                ep(
                    "api",
                    21,
                    vec![
                        mapping(80, None, Protocol::Tcp),
                        mapping(9000, Some(9001), Protocol::Tcp),
                    ],
                ),
            ],
        };
        let s = m.setup_task(&req).unwrap();
        let net = &s.network;
        assert_eq!(net.endpoints.len(), 2);
        let hosts: Vec<String> = net
            .endpoints
            .iter()
            .map(|e| e.interface.as_ref().unwrap().host_interface.clone())
            .collect();
        assert_eq!(hosts, vec!["bthbr100".to_owned(), "bthbr101".to_owned()]);
        let ports: Vec<u16> = net.bindings().map(|b| b.host_port).collect();
        assert_eq!(
            ports.iter().collect::<BTreeSet<_>>().len(),
            4,
            "distinct host ports: {ports:?}"
        );
        assert!(
            ports[..3].iter().all(|p| EPHEMERAL_PORTS.contains(p)),
            "{ports:?}"
        );
        assert_eq!(ports[3], 9001);
        assert_eq!(s.port_holds.len(), 4);
        // each container answers on its own published ports
        let _web = tcp_server(&h.netns_path("br1-web"), 80, "web");
        let _api80 = tcp_server(&h.netns_path("br1-api"), 80, "api");
        let _api = tcp_server(&h.netns_path("br1-api"), 9000, "api9000");
        let at = |p: u16| tcp_get(SocketAddrV4::new(Ipv4Addr::LOCALHOST, p)).unwrap();
        assert!(at(ports[0]).starts_with("web from"));
        assert!(at(ports[2]).starts_with("api from"));
        assert!(at(9001).starts_with("api9000 from"));
        assert_eq!(h.published(), 4);
        drop((_web, _api80, _api));
        m.teardown_task(net).unwrap();
        drop(s.port_holds);
        h.settle_veths(base.0);
        assert_eq!(h.counts(), base);
    });
}

#[test]
fn host_mode_creates_nothing_and_reports_mappings() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        let req = TaskNetworkRequest {
            task_id: "hostmode".into(),
            mode: NetworkMode::Host,
            endpoints: vec![EndpointRequest {
                name: "web".into(),
                netns_path: None,
                address: None,
                port_mappings: vec![
                    mapping(8080, None, Protocol::Tcp),
                    mapping(53, Some(53), Protocol::Udp),
                ],
            }],
        };
        let s = m.setup_task(&req).unwrap();
        let b: Vec<_> = s
            .network
            .bindings()
            .map(|b| (b.bind_ip, b.host_port, b.protocol, b.target))
            .collect();
        assert_eq!(
            b,
            vec![
                (Ipv4Addr::UNSPECIFIED, 8080, Protocol::Tcp, None),
                (Ipv4Addr::UNSPECIFIED, 53, Protocol::Udp, None)
            ]
        );
        assert!(
            s.port_holds.is_empty(),
            "the container binds its ports itself"
        );
        assert_eq!(h.counts(), base);
        // the container can bind them
        assert!(std::net::TcpListener::bind("0.0.0.0:8080").is_ok());
        m.teardown_task(&s.network).unwrap();
        // an unequal host port is refused with ECS's words
        let mut bad = req.clone();
        bad.endpoints[0].port_mappings[0].host_port = std::num::NonZeroU16::new(9090);
        let e = m.setup_task(&bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "When networkMode=host, the host ports and container ports in port mappings must match."
        );
    });
}

/// After the first, a task's namespace is a spare made in the background while the previous
/// one ran: each must still be a fresh namespace of its own, set up as a new one is. (The
/// tasks stay up until the end: the kernel reuses a freed namespace's inode number.)
#[test]
fn every_task_gets_a_fresh_namespace_made_ahead_or_not() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        let host_ns = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        let mut seen = BTreeSet::from([host_ns]);
        let mut live = Vec::new();
        for i in 0..4 {
            let task = format!("fresh{i}");
            let path = h.netns_path(&task);
            let s = m
                .setup_task(&TaskNetworkRequest {
                    task_id: task.clone(),
                    mode: NetworkMode::None,
                    endpoints: vec![EndpointRequest {
                        name: "task".into(),
                        netns_path: Some(path.clone()),
                        address: None,
                        port_mappings: vec![],
                    }],
                })
                .unwrap();
            let ino = std::fs::metadata(&path).unwrap().ino();
            assert!(seen.insert(ino), "task {i} got a namespace seen before");
            let inside = h.sh(&format!(
                "nsenter --net={} sh -c 'ip -o link; cat /proc/sys/net/ipv6/conf/default/accept_ra 2>/dev/null || echo 0'",
                path.display()
            ));
            assert_eq!(inside.lines().count(), 2, "{inside}");
            assert!(inside.contains("lo:") && inside.contains("UP"), "{inside}");
            assert_eq!(inside.lines().last(), Some("0"), "{inside}");
            // a spare is made while tasks 1 and 2 run (the daemon asks for one once a task
            // is set up): tasks 0 and 1 get new namespaces, 2 and 3 spares
            if i == 1 || i == 2 {
                m.make_spare_namespace();
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            live.push(s.network);
        }
        for n in &live {
            m.teardown_task(n).unwrap();
        }
        assert_eq!(h.counts(), base);
    });
}

#[test]
fn none_mode_has_loopback_only() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        let req = TaskNetworkRequest {
            task_id: "quiet".into(),
            mode: NetworkMode::None,
            endpoints: vec![EndpointRequest {
                name: "task".into(),
                netns_path: Some(h.netns_path("quiet")),
                address: None,
                port_mappings: vec![],
            }],
        };
        let s = m.setup_task(&req).unwrap();
        assert!(s.network.endpoints[0].interface.is_none());
        let ns = h.netns_path("quiet");
        let links = h.sh(&format!("nsenter --net={} ip -o link", ns.display()));
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.contains("lo:") && links.contains("UP"), "{links}");
        assert_eq!(h.veth_count(), base.0, "no veth for none mode");
        // loopback works inside, nothing outside is reachable
        let _srv = tcp_server(&ns, 6000, "self");
        assert!(
            tcp_get_in(&ns, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6000))
                .unwrap()
                .starts_with("self from 127.0.0.1")
        );
        assert!(tcp_get_in(&ns, SocketAddrV4::new(LAN_PEER, 9)).is_err());
        drop(_srv);
        m.teardown_task(&s.network).unwrap();
        assert_eq!(h.counts(), base);
        // port mappings are refused in none mode
        let mut bad = req.clone();
        bad.endpoints[0]
            .port_mappings
            .push(mapping(80, None, Protocol::Tcp));
        assert!(
            m.setup_task(&bad)
                .unwrap_err()
                .to_string()
                .contains("networkMode=none")
        );
    });
}

#[test]
fn bridge_mode_takes_a_host_port_the_caller_chose_and_recorded() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        // something on the host has the first ephemeral port; the caller's records have the next
        let _squat = std::net::TcpListener::bind("127.0.0.1:49153").unwrap();
        let recorded = |p: u16| p == 49154;
        let port = berth_netns::pick_ephemeral_port(0, recorded, |p| {
            berth_netns::host_port_available(
                Protocol::Tcp,
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, p),
            )
        })
        .unwrap();
        assert_eq!(port, 49155);
        let req = TaskNetworkRequest {
            task_id: "chosen".into(),
            mode: NetworkMode::Bridge,
            endpoints: vec![EndpointRequest {
                name: "app".into(),
                netns_path: Some(h.netns_path("chosen-app")),
                address: Some(task_ip(40)),
                port_mappings: vec![mapping(80, Some(port), Protocol::Tcp)],
            }],
        };
        let s = m.setup_task(&req).unwrap();
        assert_eq!(s.network.endpoints[0].network_bindings[0].host_port, 49155);
        m.teardown_task(&s.network).unwrap();
    });
}
