//! Task networking through `berth daemon` (issue 5), awsvpc mode: addresses, localhost
//! between a task's containers, published ports and the publish address, egress NAT to a
//! LAN peer, port conflicts, cleanup after many tasks, and a daemon killed with SIGKILL.
//! Every daemon runs in its own fake host; `network_modes.rs` covers bridge, host and none.

mod net_support;

use std::time::Duration;

use berth_tests::daemon::{Daemon, DaemonOptions};
use berth_tests::require_e2e;
use net_support::*;
use serde_json::json;

#[test]
fn awsvpc_tasks_get_distinct_addresses_shown_as_enis_and_reach_each_other_by_ip() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let server = d.register(
        json!({"family": "bF-alpha", "networkMode": "awsvpc", "containerDefinitions": [
            container("web", &image, &httpd_cmd(80, "alpha"))
        ]}),
    );
    let a = d.run_task(&server);
    let b = d.run_task(&server);
    let (ta, tb) = (d.wait_running(&a), d.wait_running(&b));
    let (ipa, ipb) = (task_ip(&ta), task_ip(&tb));
    assert_ne!(ipa, ipb, "two tasks share an address");
    for (t, ip) in [(&ta, ipa), (&tb, ipb)] {
        assert!(
            SUBNET_PREFIX.iter().zip(ip.octets()).all(|(a, b)| *a == b),
            "{ip} is not in berth's task subnet"
        );
        let att = &t["attachments"][0];
        assert_eq!(att["type"], "ElasticNetworkInterface", "{t:#}");
        assert_eq!(att["status"], "ATTACHED", "{t:#}");
        assert!(detail(t, "networkInterfaceId").starts_with("eni-"), "{t:#}");
        assert!(detail(t, "subnetId").starts_with("subnet-"), "{t:#}");
        let o = ip.octets();
        assert_eq!(
            detail(t, "macAddress"),
            format!("02:b7:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
        );
        assert_eq!(
            detail(t, "privateDnsName"),
            format!("ip-{}-{}-{}-{}", o[0], o[1], o[2], o[3])
        );
        let ni = &t["containers"][0]["networkInterfaces"][0];
        assert_eq!(ni["privateIpv4Address"], ip.to_string(), "{t:#}");
        assert_eq!(ni["attachmentId"], att["id"], "{t:#}");
        assert_eq!(t["containers"][0]["networkBindings"], json!([]), "{t:#}");
    }
    // Each task answers on its own address from the host, and a third task reaches
    // both by IP (as inside one VPC security group).
    assert_eq!(
        fetch_until(&d.host, &format!("http://{ipa}/")).trim(),
        "alpha"
    );
    let client = d.register(json!({"family": "bF-client", "networkMode": "awsvpc", "containerDefinitions": [
        container("c", &image, &format!("{} && {}", retry_wget(&format!("http://{ipa}/")), retry_wget(&format!("http://{ipb}/"))))
    ]}));
    let c = d.run_task(&client);
    let tc = d.wait_stopped(&c, Duration::from_secs(60));
    assert_eq!(
        tc["containers"][0]["exitCode"],
        0,
        "{tc:#}\n{}",
        d.logs(&c, "c")
    );
    assert_eq!(d.logs(&c, "c").matches("alpha").count(), 2);
    assert_ne!(task_ip(&tc), ipa);
    assert_ne!(task_ip(&tc), ipb);
    // After stop the ENI shows as deleted, as in ECS.
    assert_eq!(tc["attachments"][0]["status"], "DELETED", "{tc:#}");
    stop(&d, &a);
    stop(&d, &b);
    d.assert_clean();
    assert_no_leases(&d);
}

#[test]
fn containers_of_one_awsvpc_task_talk_over_localhost() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    // The server listens on loopback only: only a container sharing its network stack
    // can reach it.
    let mut server = container(
        "server",
        &image,
        "mkdir -p /www && echo from-the-sidecar > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www",
    );
    server["essential"] = json!(false);
    let mut client = container(
        "client",
        &image,
        &format!(
            "{} && ip -o -4 addr show eth0",
            retry_wget("http://localhost:8080/")
        ),
    );
    client["dependsOn"] = json!([{"containerName": "server", "condition": "START"}]);
    let td =
        d.register(json!({"family": "bF-localhost", "containerDefinitions": [server, client]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    let out = d.logs(&id, "client");
    assert_eq!(named(&t, "client")["exitCode"], 0, "{t:#}\n{out}");
    assert!(out.contains("from-the-sidecar"), "{out}");
    // Both containers show the task's one interface.
    let ip = task_ip(&t);
    assert!(out.contains(&format!("inet {ip}/")), "{out}");
    assert_eq!(
        named(&t, "server")["networkInterfaces"],
        named(&t, "client")["networkInterfaces"]
    );
    d.assert_clean();
}

#[test]
fn a_published_port_answers_on_the_publish_address_only() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let peer = d.host.add_lan_peer(HOST_LAN, PEER_LAN).expect("LAN peer");
    let td = d.register(
        json!({"family": "bF-published", "networkMode": "awsvpc", "containerDefinitions": [{
            "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
            "command": [httpd_cmd(8080, "published")],
            "portMappings": [{"containerPort": 8080}]
        }]}),
    );
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    assert_eq!(
        t["containers"][0]["networkBindings"],
        json!([{"bindIP": "127.0.0.1", "containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]),
        "{t:#}"
    );
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8080/").trim(),
        "published"
    );
    // Not on the host's other addresses, and not from the LAN.
    assert_eq!(fetch(&d.host, &format!("http://{HOST_LAN}:8080/")), None);
    assert_eq!(fetch(&peer, &format!("http://{HOST_LAN}:8080/")), None);
    // Nor directly on the task's address, even for a LAN peer that routes berth's
    // subnet through the host: only published ports come in.
    let ip = task_ip(&t);
    assert_eq!(
        fetch_until(&d.host, &format!("http://{ip}:8080/")).trim(),
        "published"
    );
    let out = peer
        .output("ip", &["route", "add", "10.229.0.0/20", "via", HOST_LAN])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fetch(&peer, &format!("http://{ip}:8080/")), None);
    // On the host, only the hold has the port, and only on the publish address: a
    // socket that never accepts (DNAT takes the port's traffic to the task first).
    let listening = d.host.output("ss", &["-Hltn"]).unwrap();
    let listening = String::from_utf8_lossy(&listening.stdout);
    let on_port: Vec<&str> = listening.lines().filter(|l| l.contains(":8080 ")).collect();
    assert_eq!(on_port.len(), 1, "{listening}");
    assert!(on_port[0].contains(" 127.0.0.1:8080 "), "{listening}");
    // The port is held: a host process cannot take it (and silently lose its traffic).
    assert!(!host_can_bind(&d, 8080));
    stop(&d, &id);
    // The port is free again on the host once the task is gone.
    assert_eq!(fetch(&d.host, "http://127.0.0.1:8080/"), None);
    assert!(host_can_bind(&d, 8080));
    d.assert_clean();
    drop(peer);
}

#[test]
fn publish_address_0_0_0_0_serves_the_lan() {
    require_e2e!();
    let (d, image) = setup(Daemon::start_with(DaemonOptions {
        args: vec!["--publish-address".into(), "0.0.0.0".into()],
        ..Default::default()
    }));
    let peer = d.host.add_lan_peer(HOST_LAN, PEER_LAN).expect("LAN peer");
    let td = d.register(
        json!({"family": "bF-lan", "networkMode": "awsvpc", "containerDefinitions": [{
            "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
            "command": [httpd_cmd(8080, "lan")],
            "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]
        }]}),
    );
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    assert_eq!(
        t["containers"][0]["networkBindings"][0]["bindIP"], "0.0.0.0",
        "{t:#}"
    );
    assert_eq!(
        fetch_until(&peer, &format!("http://{HOST_LAN}:8080/")).trim(),
        "lan"
    );
    assert_eq!(
        fetch_until(&d.host, &format!("http://{HOST_LAN}:8080/")).trim(),
        "lan"
    );
    assert_eq!(fetch_until(&d.host, "http://127.0.0.1:8080/").trim(), "lan");
    stop(&d, &id);
    assert_eq!(fetch(&peer, &format!("http://{HOST_LAN}:8080/")), None);
    d.assert_clean();
}

#[test]
fn egress_reaches_the_lan_through_nat_with_the_host_address() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let peer = d.host.add_lan_peer(HOST_LAN, PEER_LAN).expect("LAN peer");
    let www = d.scratch().join("bF-peer-www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from the LAN\n").unwrap();
    let log = d.scratch().join("bF-peer-httpd.log");
    let server = peer
        .command("busybox")
        .args(["httpd", "-f", "-vv", "-p", "9000", "-h"])
        .arg(&www)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .map(Reaped)
        .unwrap();
    fetch_until(&peer, "http://127.0.0.1:9000/");
    let td = d.register(json!({"family": "bF-egress", "containerDefinitions": [
        container("c", &image, &retry_wget(&format!("http://{PEER_LAN}:9000/")))
    ]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    let out = d.logs(&id, "c");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}\n{out}");
    assert!(out.contains("hello from the LAN"), "{out}");
    drop(server);
    // The peer saw the host's LAN address, not the task's.
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains(&format!("{HOST_LAN}]")), "{seen}");
    assert!(!seen.contains(&task_ip(&t).to_string()), "{seen}");
    d.assert_clean();
}

#[test]
fn an_awsvpc_host_port_other_than_the_container_port_is_rejected_at_registration() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    for (mode, msg) in [
        (
            "awsvpc",
            "When networkMode=awsvpc, the host ports and container ports in port mappings must match.",
        ),
        (
            "host",
            "When networkMode=host, the host ports and container ports in port mappings must match.",
        ),
    ] {
        let e = d
            .call(
                "RegisterTaskDefinition",
                &json!({"family": "bF-mismatch", "networkMode": mode, "containerDefinitions": [{
                    "name": "web", "image": image, "memory": 32,
                    "portMappings": [{"containerPort": 80, "hostPort": 8080}]
                }]}),
            )
            .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "ClientException"),
            "{e:?}"
        );
        assert!(e.message.contains(msg), "{e:?}");
        assert!(
            e.message
                .contains("containerDefinitions[0].portMappings[0].hostPort"),
            "{e:?}"
        );
    }
    let e = d
        .call(
            "RegisterTaskDefinition",
            &json!({"family": "bF-none", "networkMode": "none", "containerDefinitions": [{
                "name": "web", "image": image, "memory": 32, "portMappings": [{"containerPort": 80}]
            }]}),
        )
        .unwrap_err();
    assert_eq!(e.code, "ClientException", "{e:?}");
    assert!(e.message.contains("portMappings"), "{e:?}");
    // Nothing was registered.
    let v = d.ok("ListTaskDefinitions", json!({}));
    assert_eq!(v["taskDefinitionArns"], json!([]), "{v:#}");
}

#[test]
fn a_port_conflict_fails_cleanly_and_publishes_nothing() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let td = d.register(
        json!({"family": "bF-conflict", "networkMode": "awsvpc", "containerDefinitions": [{
            "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
            "command": [httpd_cmd(8083, "first")],
            "portMappings": [{"containerPort": 8083}]
        }]}),
    );
    let first = d.run_task(&td);
    d.wait_running(&first);
    // Another task wanting the same host port is refused at RunTask, as on ECS.
    let v = d.ok("RunTask", json!({"taskDefinition": td}));
    assert_eq!(v["tasks"], json!([]), "{v:#}");
    assert_eq!(v["failures"][0]["reason"], "RESOURCE:PORTS", "{v:#}");
    assert!(
        v["failures"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("8083"),
        "{v:#}"
    );
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8083/").trim(),
        "first"
    );
    assert_eq!(publish_elements(&d), 1);
    stop(&d, &first);

    // A host process already has the port: the task fails with a clear reason.
    let www = d.scratch().join("bF-host-www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "host process\n").unwrap();
    let mut host_server = d
        .host
        .command("busybox")
        .args(["httpd", "-f", "-p", "8083", "-h"])
        .arg(&www)
        .spawn()
        .map(Reaped)
        .unwrap();
    // (Checked without connecting: a connection the server closes leaves the port in
    // TIME_WAIT, which also keeps berth from holding it for a minute.)
    wait_listening(&d, 8083);
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("127.0.0.1:8083") && reason.contains("already in use"),
        "{t:#}"
    );
    assert_eq!(t["containers"][0]["networkBindings"], json!([]), "{t:#}");
    // The host process keeps its port, and nothing of the task is left.
    assert!(host_server.0.try_wait().unwrap().is_none());
    wait_listening(&d, 8083);
    d.assert_clean();
    assert_no_leases(&d);
    drop(host_server);
    // With the port free again, the same definition runs.
    let id = d.run_task(&td);
    d.wait_running(&id);
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8083/").trim(),
        "first"
    );
    stop(&d, &id);
    d.assert_clean();
}

#[test]
fn a_hundred_tasks_leave_namespaces_veths_rules_addresses_and_leases_at_baseline() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let awsvpc = d.register(
        json!({"family": "bF-many", "networkMode": "awsvpc", "containerDefinitions": [{
            "name": "c", "image": image, "memory": 16, "entryPoint": ["sh", "-c"],
            "command": ["ip -o -4 addr show eth0; sleep 0.3"],
            "portMappings": []
        }]}),
    );
    let bridge = d.register(json!({"family": "bF-many-bridge", "networkMode": "bridge", "containerDefinitions": [
        {"name": "a", "image": image, "memory": 16, "entryPoint": ["sh", "-c"], "command": ["sleep 0.3"],
         "portMappings": [{"containerPort": 80}, {"containerPort": 53, "protocol": "udp"}]},
        {"name": "b", "image": image, "memory": 16, "entryPoint": ["sh", "-c"], "command": ["sleep 0.3"],
         "essential": false, "portMappings": [{"containerPort": 80, "hostPort": 0}]}
    ]}));
    let mut baseline_addrs = None;
    let mut first_batch: Option<Vec<String>> = None;
    for batch in 0..10 {
        let td = if batch % 2 == 0 { &awsvpc } else { &bridge };
        let v = d.ok("RunTask", json!({"taskDefinition": td, "count": 10}));
        assert_eq!(v["failures"], json!([]), "batch {batch}: {v:#}");
        let ids: Vec<String> = v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t["taskArn"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 10);
        let mut addrs = Vec::new();
        for id in &ids {
            let t = d.wait_stopped(id, Duration::from_secs(120));
            assert_eq!(
                t["stopCode"], "EssentialContainerExited",
                "batch {batch}: {t:#}"
            );
            for c in t["containers"].as_array().unwrap() {
                addrs.push(
                    c["networkInterfaces"][0]["privateIpv4Address"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
        let mut distinct = addrs.clone();
        distinct.sort();
        distinct.dedup();
        if batch % 2 == 0 {
            assert_eq!(distinct.len(), 10, "batch {batch}: {addrs:?}");
            // Leases come back: every awsvpc batch gets the same ten addresses.
            match &first_batch {
                None => first_batch = Some(distinct),
                Some(f) => assert_eq!(f, &distinct, "batch {batch}"),
            }
        } else {
            assert_eq!(distinct.len(), 20, "batch {batch}: {addrs:?}");
        }
        d.assert_clean();
        assert_no_leases(&d);
        let now = host_addresses(&d);
        match &baseline_addrs {
            None => baseline_addrs = Some(now),
            Some(b) => assert_eq!(b, &now, "host addresses changed after batch {batch}"),
        }
    }
    // The host's links: lo and the bridge, nothing else.
    let links = d.host.output("ip", &["-o", "link", "show"]).unwrap();
    let links = String::from_utf8_lossy(&links.stdout).into_owned();
    assert_eq!(links.lines().count(), 2, "{links}");
    assert!(links.contains("berth0"), "{links}");
}

/// `net.ipv4.ip_forward` in the fake host.
fn forwarding(d: &Daemon) -> String {
    let out = d
        .host
        .output("cat", &["/proc/sys/net/ipv4/ip_forward"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_daemon_killed_with_sigkill_keeps_the_published_port_and_restores_what_is_missing() {
    require_e2e!();
    let (mut d, image) = setup(Daemon::start());
    let td = d.register(
        json!({"family": "bF-restart", "networkMode": "awsvpc", "containerDefinitions": [{
            "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
            "command": [httpd_cmd(8084, "survivor")],
            "portMappings": [{"containerPort": 8084}]
        }]}),
    );
    let id = d.run_task(&td);
    let before = d.wait_running(&id);
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8084/").trim(),
        "survivor"
    );
    d.kill9();
    // The task keeps running and answering without the daemon, and its shim keeps the
    // port held.
    assert_eq!(
        fetch(&d.host, "http://127.0.0.1:8084/").as_deref(),
        Some("survivor\n")
    );
    assert!(!host_can_bind(&d, 8084));
    // Someone flushes berth's table and turns forwarding off while it is down: the
    // restart restores both.
    let out = d
        .host
        .output("nft", &["delete", "table", "ip", "berth"])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(forwarding(&d), "1");
    let out = d
        .host
        .output("sysctl", &["-qw", "net.ipv4.ip_forward=0"])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fetch(&d.host, "http://127.0.0.1:8084/"), None);
    d.restart();
    let after = d.wait_running(&id);
    assert_eq!(forwarding(&d), "1");
    assert_eq!(task_ip(&after), task_ip(&before));
    assert_eq!(
        after["containers"][0]["networkBindings"],
        before["containers"][0]["networkBindings"]
    );
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8084/").trim(),
        "survivor"
    );
    assert_eq!(publish_elements(&d), 1);
    // A new task does not get the live task's address.
    let other = d.register(
        json!({"family": "bF-restart-other", "containerDefinitions": [
            container("c", &image, "sleep 0.2")
        ]}),
    );
    let o = d.run_task(&other);
    let to = d.wait_stopped(&o, Duration::from_secs(60));
    assert_ne!(task_ip(&to), task_ip(&before));
    stop(&d, &id);
    assert_eq!(fetch(&d.host, "http://127.0.0.1:8084/"), None);
    d.assert_clean();
    assert_no_leases(&d);
}

#[test]
fn a_restart_rebuilds_a_deleted_bridge_for_live_tasks_and_cleans_up_tasks_that_ended_meanwhile() {
    require_e2e!();
    let (mut d, image) = setup(Daemon::start());
    let web = |family: &str, mode: &str, port: u16, cmd: String| {
        d.register(
            json!({"family": family, "networkMode": mode, "containerDefinitions": [{
                "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
                "command": [cmd], "portMappings": [{"containerPort": port}]
            }]}),
        )
    };
    let a = web(
        "bF-live-awsvpc",
        "awsvpc",
        8088,
        httpd_cmd(8088, "live-awsvpc"),
    );
    let b = web("bF-live-bridge", "bridge", 80, httpd_cmd(80, "live-bridge"));
    let c = web(
        "bF-ends",
        "awsvpc",
        8089,
        "mkdir -p /www && echo ends > /www/index.html && httpd -p 8089 -h /www && sleep 3".into(),
    );
    let (a, b, c) = (d.run_task(&a), d.run_task(&b), d.run_task(&c));
    d.wait_running(&a);
    let tb = d.wait_running(&b);
    d.wait_running(&c);
    let b_port = tb["containers"][0]["networkBindings"][0]["hostPort"]
        .as_u64()
        .unwrap();
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8089/").trim(),
        "ends"
    );
    d.kill9();
    // While berth is down the bridge and the table go, and one task ends.
    let out = d.host.output("ip", &["link", "del", "berth0"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = d
        .host
        .output("nft", &["delete", "table", "ip", "berth"])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(Duration::from_secs(4));
    d.restart();
    let tc = d.wait_stopped(&c, Duration::from_secs(30));
    assert_eq!(tc["stopCode"], "EssentialContainerExited", "{tc:#}");
    d.wait_running(&a);
    d.wait_running(&b);
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8088/").trim(),
        "live-awsvpc"
    );
    assert_eq!(
        fetch_until(&d.host, &format!("http://127.0.0.1:{b_port}/")).trim(),
        "live-bridge"
    );
    assert_eq!(fetch(&d.host, "http://127.0.0.1:8089/"), None);
    assert_eq!(publish_elements(&d), 2);
    // Both live veths are on the re-created bridge; the ended task's are gone.
    let out = d
        .host
        .output("ip", &["-o", "link", "show", "master", "berth0"])
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "{out:?}"
    );
    assert_eq!(db_rows(&d, "ip_leases").lines().count(), 2);
    stop(&d, &a);
    stop(&d, &b);
    d.assert_clean();
    assert_no_leases(&d);
}

#[test]
fn a_task_cannot_reach_the_hosts_loopback_services_through_the_bridge() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    // Loopback publishing needs route_localnet on the bridge; the guard keeps a task
    // that routes 127.0.0.1 to the gateway away from the host's loopback-only services
    // (CVE-2020-8558). A task with NET_ADMIN can rewrite its own routes, so it tries.
    let www = d.scratch().join("bF-loopback-www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "host secret\n").unwrap();
    let _secret = d
        .host
        .command("busybox")
        .args(["httpd", "-f", "-p", "127.0.0.1:9999", "-h"])
        .arg(&www)
        .spawn()
        .map(Reaped)
        .unwrap();
    wait_listening(&d, 9999);
    let mut c = container(
        "probe",
        &image,
        "ip addr del 127.0.0.1/8 dev lo && ip route del local 127.0.0.1 table local; \
         ip route add 127.0.0.1/32 via 10.229.0.1 dev eth0 && echo ROUTED; \
         ip route get 127.0.0.1; \
         timeout 5 wget -q -O - http://127.0.0.1:9999/ && echo REACHED || echo BLOCKED",
    );
    c["linuxParameters"] = json!({"capabilities": {"add": ["NET_ADMIN"]}});
    c["systemControls"] = json!([{"namespace": "net.ipv4.conf.eth0.route_localnet", "value": "1"}]);
    let td = d.register(
        json!({"family": "bF-guard", "networkMode": "awsvpc", "containerDefinitions": [c]}),
    );
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    let out = d.logs(&id, "probe");
    assert!(
        out.contains("ROUTED"),
        "the probe could not set its route up:\n{out}\n{t:#}"
    );
    assert!(out.contains("BLOCKED"), "{out}");
    assert!(!out.contains("host secret"), "{out}");
    // The control: without the guard's rule the same probe gets through, so the guard
    // is what stopped it.
    let out = d
        .host
        .output("nft", &["flush", "chain", "ip", "berth", "guard"])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let id = d.run_task(&td);
    d.wait_stopped(&id, Duration::from_secs(60));
    let out = d.logs(&id, "probe");
    assert!(out.contains("host secret"), "{out}");
    d.assert_clean();
}

#[test]
fn a_task_failing_after_its_network_is_set_up_releases_everything() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    // The network is set up before images are prepared: a missing image fails the task
    // with its port published and its address leased, and both must come back.
    let missing = format!("{}-missing", image.trim_end_matches(":latest"));
    let td = d.register(json!({"family": "bF-late-failure", "networkMode": "bridge", "containerDefinitions": [
        {"name": "ok", "image": image, "memory": 16, "portMappings": [{"containerPort": 80, "hostPort": 8092}]},
        {"name": "broken", "image": format!("{missing}:latest"), "memory": 16, "portMappings": [{"containerPort": 80}]}
    ]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap_or_default()
            .contains("CannotPullContainerError"),
        "{t:#}"
    );
    d.assert_clean();
    assert_no_leases(&d);
    assert!(host_can_bind(&d, 8092));
}
