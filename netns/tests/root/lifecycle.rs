//! Conflicts and rollback, teardown, repetition, reconciliation and the loopback guard.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

use berth_netns::{
    EndpointRequest, ErrorKind, NetworkConfig, NetworkManager, NetworkMode, Protocol,
    TaskNetworkRequest, VethTeardown,
};

use crate::harness::*;

#[test]
fn a_taken_host_port_fails_setup_and_leaves_nothing() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        // a host process has 8081
        let squatter = TcpListener::bind("127.0.0.1:8081").unwrap();
        let req = awsvpc(
            h,
            "t1",
            task_ip(2),
            vec![
                mapping(8080, None, Protocol::Tcp),
                mapping(8081, None, Protocol::Tcp),
            ],
        );
        let e = m.setup_task(&req).unwrap_err();
        assert_eq!(e.class(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            "host port 127.0.0.1:8081/tcp is already in use on the host"
        );
        assert_eq!(h.counts(), base, "nothing half-set-up");
        assert!(
            TcpListener::bind("127.0.0.1:8080").is_ok(),
            "the first hold was released"
        );
        drop(squatter);

        // another task has 8082
        let a = m
            .setup_task(&awsvpc(
                h,
                "t2",
                task_ip(3),
                vec![mapping(8082, None, Protocol::Tcp)],
            ))
            .unwrap();
        let with_a = h.counts();
        let e = m
            .setup_task(&awsvpc(
                h,
                "t3",
                task_ip(4),
                vec![mapping(8082, None, Protocol::Tcp)],
            ))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "host port 8082/tcp is already published by another task"
        );
        assert_eq!(h.counts(), with_a);
        // even when the other task's holder is gone, berth's table still refuses the port
        // (this time at the last step, so the rollback undoes a namespace and a veth)
        drop(a.port_holds);
        let e = m
            .setup_task(&awsvpc(
                h,
                "t4",
                task_ip(5),
                vec![mapping(8082, None, Protocol::Tcp)],
            ))
            .unwrap_err();
        assert_eq!(e.class(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            "host port 8082/tcp is already published by another task"
        );
        assert_eq!(h.attached_berth_veths(), 1);
        h.settle_veths(with_a.0);
        assert_eq!(h.counts(), with_a);
        m.teardown_task(&a.network).unwrap();
        h.settle_veths(base.0);
        assert_eq!(h.counts(), base);
    });
}

#[test]
fn a_failure_in_a_later_endpoint_rolls_back_the_earlier_ones() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        // the second endpoint's namespace file is in the way
        std::fs::write(h.netns_path("rb-b"), "").unwrap();
        let ep = |name: &str, n: u8| EndpointRequest {
            name: name.into(),
            netns_path: Some(h.netns_path(&format!("rb-{name}"))),
            address: Some(task_ip(n)),
            port_mappings: vec![mapping(80, None, Protocol::Tcp)],
        };
        let req = TaskNetworkRequest {
            task_id: "rb".into(),
            mode: NetworkMode::Bridge,
            endpoints: vec![ep("a", 30), ep("b", 31)],
        };
        let e = m.setup_task(&req).unwrap_err();
        assert_eq!(e.class(), ErrorKind::Conflict, "{e}");
        assert!(e.to_string().contains("already exists"), "{e}");
        std::fs::remove_file(h.netns_path("rb-b")).unwrap();
        h.settle_veths(base.0);
        assert_eq!(h.counts(), base);
        let ports: Vec<_> = (49153..49160)
            .filter(|p| TcpListener::bind(("127.0.0.1", *p)).is_err())
            .collect();
        assert!(ports.is_empty(), "holds released: {ports:?}");
    });
}

#[test]
fn teardown_is_idempotent_and_cleans_the_host_when_the_namespace_is_gone() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        let s = m
            .setup_task(&awsvpc(
                h,
                "gone",
                task_ip(6),
                vec![mapping(7070, None, Protocol::Udp)],
            ))
            .unwrap();
        // the namespace disappears behind berth's back
        let ns = h.netns_path("gone");
        nix::mount::umount2(&ns, nix::mount::MntFlags::MNT_DETACH).unwrap();
        std::fs::remove_file(&ns).unwrap();
        m.teardown_task(&s.network).unwrap();
        m.teardown_task(&s.network).unwrap();
        assert_eq!(h.published(), 0);
        assert_eq!(h.attached_berth_veths(), 0);
        h.settle_veths(base.0);
        assert_eq!(h.counts(), base);
    });
}

#[test]
fn a_hundred_setups_and_teardowns_return_to_baseline() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        for i in 0..100u16 {
            let task = format!("loop{i:03}");
            let s = m
                .setup_task(&awsvpc(
                    h,
                    &task,
                    task_ip(2 + (i % 50) as u8),
                    vec![mapping(8000 + i, None, Protocol::Tcp)],
                ))
                .unwrap();
            m.teardown_task(&s.network).unwrap();
        }
        assert_eq!(h.attached_berth_veths(), 0);
        h.settle_veths(base.0);
        assert_eq!(h.counts(), base);
    });
}

#[test]
fn the_same_task_can_be_set_up_again_at_once_in_both_teardown_modes() {
    if !enabled() {
        return;
    }
    for mode in [VethTeardown::Detach, VethTeardown::Delete] {
        fake_host(|h| {
            let m = prepared(
                h,
                NetworkConfig {
                    veth_teardown: mode,
                    ..h.config()
                },
            );
            let base = h.counts();
            for _ in 0..3 {
                let s = m
                    .setup_task(&awsvpc(h, "again", task_ip(7), vec![]))
                    .unwrap();
                m.teardown_task(&s.network).unwrap();
                if mode == VethTeardown::Delete {
                    assert_eq!(h.veth_count(), base.0, "deleted synchronously");
                }
            }
            h.settle_veths(base.0);
            assert_eq!(h.counts(), base);
        });
    }
}

#[test]
fn reconcile_removes_orphans_keeps_live_tasks_and_restores_a_flushed_table() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let base = h.counts();
        // a veth that is not berth's, though its name looks like one
        h.sh("ip link add bthforeign type veth peer name bthforeign2");
        let live = m
            .setup_task(&awsvpc(
                h,
                "live",
                task_ip(8),
                vec![mapping(8090, None, Protocol::Tcp)],
            ))
            .unwrap();
        let orphan = m
            .setup_task(&awsvpc(
                h,
                "orphan",
                task_ip(9),
                vec![mapping(8091, None, Protocol::Tcp)],
            ))
            .unwrap();
        std::fs::write(h.netns_path("stray"), "").unwrap();
        let _srv = tcp_server(&h.netns_path("live"), 8090, "live");

        // a daemon restart: only `live` is in the records
        let m = NetworkManager::new(h.config()).unwrap();
        let r = m.reconcile(std::slice::from_ref(&live.network)).unwrap();
        let mut removed = r.namespaces_removed.clone();
        removed.sort();
        assert_eq!(removed, vec![h.netns_path("orphan"), h.netns_path("stray")]);
        assert_eq!(r.interfaces_removed, vec!["bthorphan00".to_owned()]);
        assert_eq!(r.ports_unpublished, vec![(Protocol::Tcp, 8091)]);
        assert!(
            r.ports_restored.is_empty() && r.missing.is_empty() && r.errors.is_empty(),
            "{r:?}"
        );
        assert!(
            h.sh("ip -o link").contains("bthforeign"),
            "foreign interfaces are left alone"
        );
        let at = || tcp_get(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8090));
        assert!(
            at().unwrap().starts_with("live from"),
            "the live task still works"
        );

        // another tool flushes the ruleset: reconcile puts berth's table back
        h.sh("nft flush ruleset");
        assert!(at().is_err());
        let r = m.reconcile(std::slice::from_ref(&live.network)).unwrap();
        assert_eq!(r.ports_restored, vec![(Protocol::Tcp, 8090)]);
        assert!(at().unwrap().starts_with("live from"));

        drop(_srv);
        drop(orphan);
        m.teardown_task(&live.network).unwrap();
        h.sh("ip link del bthforeign");
        h.settle_veths(base.0);
        assert_eq!(h.counts(), base);
    });
}

#[test]
fn the_loopback_guard_stops_tasks_reaching_host_loopback_services() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = NetworkManager::new(h.config()).unwrap();
        // a service of the host that listens on loopback only
        let svc = TcpListener::bind("127.0.0.1:7777").unwrap();
        svc.set_nonblocking(true).unwrap();
        let s = m
            .setup_task(&awsvpc(
                h,
                "attacker",
                task_ip(10),
                vec![mapping(8080, None, Protocol::Tcp)],
            ))
            .unwrap();
        assert_eq!(
            h.sh("cat /proc/sys/net/ipv4/conf/berth0/route_localnet")
                .trim(),
            "1"
        );
        // The attack of CVE-2020-8558: from the task, send packets for 127.0.0.1 to the
        // gateway. (Root in the task namespace stands in for a container with CAP_NET_RAW;
        // route_localnet on the task's eth0 lets it accept the replies, for a full handshake.)
        let ns = h.netns_path("attacker").display().to_string();
        h.sh(&format!(
            "nsenter --net={ns} sh -c 'ip rule add pref 100 lookup local && ip rule del pref 0 && \
             ip rule add pref 50 to 127.0.0.1 lookup 100 && \
             ip route add 127.0.0.1/32 via 10.229.0.1 dev eth0 table 100 && \
             echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet'"
        ));
        let path = h.netns_path("attacker");
        let connects = || {
            berth_netns::run_in_namespace(&path, || {
                TcpStream::connect_timeout(
                    &"127.0.0.1:7777".parse().unwrap(),
                    Duration::from_secs(1),
                )
                .is_ok()
            })
            .unwrap()
        };
        assert!(
            !connects(),
            "the guard must drop routed packets for 127.0.0.0/8"
        );
        let chain = h.sh("nft list chain ip berth guard");
        assert!(
            !chain.contains("counter packets 0 "),
            "the guard counted the drops: {chain}"
        );

        // Without the guard the attack works: proof that the test exercises the real path.
        h.sh("nft flush chain ip berth guard");
        assert!(
            connects(),
            "without the guard the host's loopback service is reachable"
        );
        let mut peer = None;
        for _ in 0..100 {
            if let Ok((_, p)) = svc.accept() {
                peer = Some(p);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            peer.map(|p| p.ip()),
            Some(std::net::IpAddr::V4(task_ip(10)))
        );

        // reconcile restores the guard
        m.reconcile(std::slice::from_ref(&s.network)).unwrap();
        assert!(!connects());
        m.teardown_task(&s.network).unwrap();
    });
}

#[test]
fn a_udp_client_follows_the_port_to_the_next_task() {
    if !enabled() {
        return;
    }
    fake_host(|h| {
        let m = prepared(h, h.config());
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let ask = || {
            client.send_to(b"ping", "127.0.0.1:5300").unwrap();
            let mut buf = [0u8; 64];
            client
                .recv(&mut buf)
                .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
                .ok()
        };
        let a = m
            .setup_task(&awsvpc(
                h,
                "udpa",
                task_ip(50),
                vec![mapping(5300, None, Protocol::Udp)],
            ))
            .unwrap();
        let srv_a = udp_server(&h.netns_path("udpa"), 5300, "A");
        // the very first datagram gets through: the link is usable when setup returns
        assert_eq!(ask().as_deref(), Some("A"));

        // Without forgetting the old conntrack entry, the client's flow stays DNATed to the
        // stopped task: take task A down by hand, without berth's teardown...
        drop(srv_a);
        h.sh("nft delete element ip berth publish '{ udp . 5300 }'");
        let ns = h.netns_path("udpa");
        nix::mount::umount2(&ns, nix::mount::MntFlags::MNT_DETACH).unwrap();
        std::fs::remove_file(&ns).unwrap();
        drop(a.port_holds);
        let b = m
            .setup_task(&awsvpc(
                h,
                "udpb",
                task_ip(51),
                vec![mapping(5300, None, Protocol::Udp)],
            ))
            .unwrap();
        let _srv_b = udp_server(&h.netns_path("udpb"), 5300, "B");
        assert_eq!(ask(), None, "the flow is stuck on the old task");
        // ...and berth's teardown of task A (idempotent) releases it
        eprintln!(
            "BEFORE {}",
            h.sh("cat /proc/net/nf_conntrack | grep udp || true")
        );
        m.teardown_task(&a.network).unwrap();
        eprintln!(
            "AFTER {}",
            h.sh("cat /proc/net/nf_conntrack | grep udp || true")
        );
        let r = ask();
        eprintln!("ASK {r:?} {}", h.sh("cat /proc/net/nf_conntrack | grep udp || true; nft list map ip berth publish; ip neigh"));
        assert_eq!(ask().as_deref(), Some("B"));
        m.teardown_task(&b.network).unwrap();
    });
}
