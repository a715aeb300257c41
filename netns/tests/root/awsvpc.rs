//! awsvpc mode: addresses, reachability, egress NAT, published ports.

use std::net::{Ipv4Addr, SocketAddrV4};

use berth_netns::{NetworkConfig, NetworkManager, Protocol};

use crate::harness::*;

#[test]
fn two_tasks_get_distinct_addresses_and_reach_each_other() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = NetworkManager::new(h.config()).unwrap();
        let base = h.counts();
        let a_ip = m.subnet().allocate(|_| false, None).unwrap();
        let b_ip = m.subnet().allocate(|ip| ip == a_ip, Some(a_ip)).unwrap();
        assert_ne!(a_ip, b_ip);
        let a = m.setup_task(&awsvpc(h, "taska", a_ip, vec![])).unwrap();
        let b = m.setup_task(&awsvpc(h, "taskb", b_ip, vec![])).unwrap();
        let ia = a.network.endpoints[0].interface.clone().unwrap();
        let ib = b.network.endpoints[0].interface.clone().unwrap();
        assert_eq!(ia.private_ipv4_address, a_ip);
        assert_ne!(ia.mac_address, ib.mac_address);
        assert_ne!(ia.network_interface_id, ib.network_interface_id);
        assert_eq!(ia.subnet_id, ib.subnet_id);
        assert_eq!(
            (ia.gateway, ia.prefix_length),
            (Ipv4Addr::new(10, 229, 0, 1), 20)
        );

        // inside: lo and eth0 up, the address, the default route, the MAC we chose
        let ns = h.netns_path("taska").display().to_string();
        let links = h.sh(&format!("nsenter --net={ns} ip -br link"));
        assert!(links.contains("lo ") && links.contains("eth0@"), "{links}");
        let addr = h.sh(&format!("nsenter --net={ns} ip -br -4 addr show eth0"));
        assert!(
            addr.contains(&format!("{a_ip}/20")) && addr.contains("UP"),
            "{addr}"
        );
        let route = h.sh(&format!("nsenter --net={ns} ip route show default"));
        assert!(
            route.starts_with("default via 10.229.0.1 dev eth0"),
            "{route}"
        );
        assert!(
            h.sh(&format!("nsenter --net={ns} ip link show eth0"))
                .contains(&ia.mac_address)
        );
        // host side: the veth is on the bridge, with its owner recorded
        let host_if = h.sh(&format!("ip -d link show {}", ia.host_interface));
        assert!(
            host_if.contains("master berth0") && host_if.contains("alias berth:berth0:taska:task"),
            "{host_if}"
        );
        let v6 = h.sh(&format!("ip -6 -o addr show dev {}", ia.host_interface));
        assert!(v6.is_empty(), "no IPv6 address on a bridge port: {v6}");

        // a reaches b by address, and b sees a's own address (no NAT between tasks)
        let server = tcp_server(&h.netns_path("taskb"), 7000, "b");
        let got = tcp_get_in(&h.netns_path("taska"), SocketAddrV4::new(b_ip, 7000)).unwrap();
        assert!(got.starts_with(&format!("b from {a_ip}:")), "{got}");
        // the host reaches tasks by address too
        assert!(
            tcp_get(SocketAddrV4::new(b_ip, 7000))
                .unwrap()
                .starts_with("b from 10.229.0.1:")
        );
        drop(server);

        m.teardown_task(&a.network).unwrap();
        m.teardown_task(&b.network).unwrap();
        assert_eq!(
            h.attached_berth_veths(),
            0,
            "teardown detaches veths at once"
        );
        h.settle_veths(base.0);
        // the bridge and its address remain: one address more than the bare fake host
        let after = h.counts();
        assert_eq!((after.0, after.1, after.2, after.3), (base.0, 0, 0, 0));
        assert_eq!(after.4, base.4 + 1);
    });
}

#[test]
fn published_port_answers_on_the_publish_address_only() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = NetworkManager::new(h.config()).unwrap();
        let ip = task_ip(2);
        let setup = m
            .setup_task(&awsvpc(
                h,
                "web",
                ip,
                vec![mapping(8080, None, Protocol::Tcp)],
            ))
            .unwrap();
        let b = &setup.network.endpoints[0].network_bindings[0];
        assert_eq!(
            (b.bind_ip, b.host_port, b.container_port, b.target),
            (Ipv4Addr::LOCALHOST, 8080, 8080, Some(ip))
        );
        assert_eq!(setup.port_holds.len(), 1);

        // busybox httpd inside the task namespace, as a container would run it
        let www = h.root.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), "hello from the task\n").unwrap();
        let ns = h.netns_path("web").display().to_string();
        let www = www.display().to_string();
        h.spawn(&[
            "nsenter",
            &format!("--net={ns}"),
            "busybox",
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            &www,
        ]);
        let get = |url: &str| h.try_sh(&format!("busybox wget -q -O - {url}"));
        let mut ok = None;
        for _ in 0..100 {
            let out = get("http://127.0.0.1:8080/");
            if out.status.success() {
                ok = Some(String::from_utf8_lossy(&out.stdout).into_owned());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            ok.as_deref(),
            Some("hello from the task\n"),
            "published on 127.0.0.1:8080"
        );
        // not on the host's other addresses: the uplink, the bridge's gateway address
        for other in [
            format!("http://{UPLINK}:8080/"),
            "http://10.229.0.1:8080/".to_owned(),
        ] {
            assert!(!get(&other).status.success(), "{other} must not answer");
        }
        // not from the LAN either, even pointed at the host's address
        let lan = h.lan.display().to_string();
        let from_lan = h.try_sh(&format!(
            "nsenter --net={lan} busybox wget -q -O - http://{UPLINK}:8080/"
        ));
        assert!(!from_lan.status.success());
        // the only socket on the port is berth's hold (a listener with backlog 0, as
        // docker-proxy listens): DNAT takes the traffic before it could reach it, and
        // nothing listens on any other address
        let listening = h.sh("ss -Hltn 'sport = :8080' | wc -l");
        assert_eq!(listening.trim(), "1", "only berth's hold on 8080");
        let elsewhere = h.sh("ss -Hltn 'sport = :8080' | grep -vc '127.0.0.1:8080' || true");
        assert_eq!(elsewhere.trim(), "0", "no listener on other addresses");
        // and no host process can grab the port while the task runs
        assert!(std::net::TcpListener::bind("0.0.0.0:8080").is_err());
        assert!(std::net::TcpListener::bind("127.0.0.1:8080").is_err());

        m.teardown_task(&setup.network).unwrap();
        drop(setup.port_holds);
        assert!(
            std::net::TcpListener::bind("127.0.0.1:8080").is_ok(),
            "released with the holds"
        );
    });
}

#[test]
fn udp_and_everywhere_publishing_reach_the_task_from_the_lan() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let cfg = NetworkConfig {
            publish_address: Ipv4Addr::UNSPECIFIED,
            ..h.config()
        };
        let m = NetworkManager::new(cfg).unwrap();
        let ip = task_ip(9);
        let setup = m
            .setup_task(&awsvpc(
                h,
                "edge",
                ip,
                vec![
                    mapping(5353, None, Protocol::Udp),
                    mapping(8443, Some(8443), Protocol::Tcp),
                ],
            ))
            .unwrap();
        let ns = h.netns_path("edge");
        let _udp = udp_server(&ns, 5353, "pong");
        let _tcp = tcp_server(&ns, 8443, "edge");
        // from the LAN to the host's address
        let lan = h.lan.clone();
        let got = berth_netns::run_in_namespace(&lan, || {
            (
                udp_ask(SocketAddrV4::new(UPLINK, 5353)),
                tcp_get(SocketAddrV4::new(UPLINK, 8443)),
            )
        })
        .unwrap();
        assert_eq!(got.0.as_deref(), Ok("pong"));
        assert!(
            got.1
                .unwrap()
                .starts_with(&format!("edge from {LAN_PEER}:")),
            "DNAT keeps the client address"
        );
        // from the host itself on loopback and on its own address
        assert_eq!(
            udp_ask(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5353)).as_deref(),
            Ok("pong")
        );
        assert!(
            tcp_get(SocketAddrV4::new(UPLINK, 8443))
                .unwrap()
                .starts_with("edge from")
        );
        // from another task, through the host (hairpin)
        let other = m
            .setup_task(&awsvpc(h, "other", task_ip(10), vec![]))
            .unwrap();
        let hair = tcp_get_in(&h.netns_path("other"), SocketAddrV4::new(UPLINK, 8443)).unwrap();
        assert!(
            hair.starts_with("edge from 10.229.0.1:"),
            "hairpin is masqueraded: {hair}"
        );
        m.teardown_task(&other.network).unwrap();
        m.teardown_task(&setup.network).unwrap();
    });
}

#[test]
fn egress_reaches_the_lan_through_nat() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = NetworkManager::new(h.config()).unwrap();
        assert_eq!(h.sh("cat /proc/sys/net/ipv4/ip_forward").trim(), "0");
        let setup = m
            .setup_task(&awsvpc(h, "client", task_ip(3), vec![]))
            .unwrap();
        assert_eq!(
            h.sh("cat /proc/sys/net/ipv4/ip_forward").trim(),
            "1",
            "forwarding enabled for egress"
        );
        let server = tcp_server(&h.lan.clone(), 9000, "lan");
        let got = tcp_get_in(&h.netns_path("client"), SocketAddrV4::new(LAN_PEER, 9000)).unwrap();
        assert!(
            got.starts_with(&format!("lan from {UPLINK}:")),
            "the peer sees the host's address: {got}"
        );
        // the LAN cannot route into the task subnet (one security group)
        h.sh(&format!(
            "nsenter --net={} ip route add 10.229.0.0/20 via {UPLINK}",
            h.lan.display()
        ));
        let _task = tcp_server(&h.netns_path("client"), 9001, "task");
        let direct = tcp_get_in(&h.lan, SocketAddrV4::new(task_ip(3), 9001));
        assert!(direct.is_err(), "LAN reached a task directly: {direct:?}");
        drop(server);
        drop(_task);
        m.teardown_task(&setup.network).unwrap();
    });
}

#[test]
fn host_settings_and_table_layout() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = NetworkManager::new(h.config()).unwrap();
        // what a daemon restart with one live awsvpc task does
        let live = m
            .setup_task(&awsvpc(h, "live", task_ip(3), vec![]))
            .unwrap();
        // (a daemon serves task role credentials on its metadata port)
        let m = NetworkManager::new(NetworkConfig {
            credentials_port: Some(51679),
            ..h.config()
        })
        .unwrap();
        h.sh("ip link del berth0 && echo 0 > /proc/sys/net/ipv4/ip_forward");
        let report = m.reconcile(std::slice::from_ref(&live.network)).unwrap();
        assert!(
            report.host.bridge_created && report.host.ip_forward_enabled,
            "{report:?}"
        );
        assert_eq!(report.interfaces_reattached, vec!["bthlive00".to_owned()]);
        let _srv = tcp_server(&h.netns_path("live"), 7100, "live");
        assert!(
            tcp_get(SocketAddrV4::new(task_ip(3), 7100))
                .unwrap()
                .starts_with("live from")
        );
        drop(_srv);
        assert_eq!(
            h.sh("cat /proc/sys/net/ipv6/conf/berth0/accept_ra").trim(),
            "0"
        );
        assert_eq!(
            h.sh("cat /proc/sys/net/ipv4/conf/berth0/route_localnet")
                .trim(),
            "1"
        );
        let br = h.sh("ip -br -4 addr show berth0");
        assert!(br.contains("10.229.0.1/20"), "{br}");
        assert!(h.sh("ip link show berth0").contains("02:b7:0a:e5:00:01"));
        // a task's namespace ignores router advertisements
        let s = m
            .setup_task(&awsvpc(
                h,
                "ra",
                task_ip(4),
                vec![mapping(80, None, Protocol::Tcp)],
            ))
            .unwrap();
        let ns = h.netns_path("ra").display().to_string();
        assert_eq!(
            h.sh(&format!(
                "nsenter --net={ns} cat /proc/sys/net/ipv6/conf/eth0/accept_ra"
            ))
            .trim(),
            "0"
        );
        m.teardown_task(&live.network).unwrap();
        let table = h.sh("nft list table ip berth");
        for line in [
            "type inet_proto . inet_service : ipv4_addr . inet_service",
            "elements = { tcp . 80 comment \"ra/task\" : 10.229.0.4 . 80 }",
            "type filter hook prerouting priority raw; policy accept;",
            "iifname != \"lo\" ip daddr 127.0.0.0/8 counter packets",
            "ip daddr 127.0.0.1 dnat ip to meta l4proto . th dport map @publish",
            "ip saddr 10.229.0.0/20 oifname != \"berth0\" masquerade",
            "ip saddr 127.0.0.0/8 oifname \"berth0\" masquerade",
            "oifname \"berth0\" ip saddr 10.229.0.0/20 ct status dnat masquerade",
            "oifname \"berth0\" ct state established,related accept",
            "oifname \"berth0\" ct status dnat accept",
            "oifname \"berth0\" iifname != \"berth0\" counter packets",
            "iifname \"berth0\" ip daddr 169.254.170.2 tcp dport 80 dnat to 10.229.0.1:51679",
        ] {
            assert!(table.contains(line), "missing `{line}` in\n{table}");
        }
        // berth's rules are in its table only
        let ruleset = h.sh("nft list ruleset");
        assert_eq!(ruleset.matches("table ").count(), 1, "{ruleset}");
        m.teardown_task(&s.network).unwrap();
    });
}
