//! bridge, host and none modes.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use berth_netns::{
    EPHEMERAL_PORTS, EndpointRequest, NetworkManager, NetworkMode, Protocol, TaskNetworkRequest,
};

use crate::harness::*;

#[test]
fn bridge_mode_gives_each_container_a_namespace_and_distinct_dynamic_ports() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = NetworkManager::new(h.config()).unwrap();
        m.reconcile(&[]).unwrap();
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
        let m = NetworkManager::new(h.config()).unwrap();
        m.reconcile(&[]).unwrap();
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

#[test]
fn none_mode_has_loopback_only() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = NetworkManager::new(h.config()).unwrap();
        m.reconcile(&[]).unwrap();
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
