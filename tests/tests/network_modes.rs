//! The other network modes through `berth daemon` (issue 5): bridge (a namespace and an
//! address per container, dynamic host ports, links, extraHosts), host (the host's
//! interfaces, informational mappings, no bridge touched), none (loopback only), and the
//! `/etc` files every container gets.

mod net_support;

use std::time::Duration;

use berth_tests::daemon::Daemon;
use berth_tests::require_e2e;
use net_support::*;
use serde_json::{Value, json};

fn bindings(c: &Value) -> Vec<(u64, u64, String)> {
    c["networkBindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["bindIP"], "127.0.0.1", "{b}");
            (
                b["containerPort"].as_u64().unwrap(),
                b["hostPort"].as_u64().unwrap(),
                b["protocol"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn container_ip(c: &Value) -> String {
    c["networkInterfaces"][0]["privateIpv4Address"]
        .as_str()
        .unwrap_or_else(|| panic!("no address: {c:#}"))
        .to_owned()
}

fn netns_files(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.run_root().join("netns"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn host_links(d: &Daemon) -> String {
    let out = d.host.output("ip", &["-o", "link", "show"]).unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bridge_mode_gives_each_container_a_namespace_dynamic_ports_links_and_extra_hosts() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let web = json!({"name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
        "command": [httpd_cmd(80, "web")], "hostname": "webhost",
        "portMappings": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 0, "protocol": "udp"}]});
    let api = json!({"name": "api", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
        "command": [httpd_cmd(80, "api")],
        "portMappings": [{"containerPort": 80}, {"containerPort": 80, "hostPort": 8085}]});
    let client = json!({"name": "client", "image": image, "memory": 32, "essential": false,
    "entryPoint": ["sh", "-c"], "hostname": "clienthost",
    "links": ["web:frontend", "api"],
    "extraHosts": [{"hostname": "db.example", "ipAddress": "10.1.2.3"}],
    "dnsServers": ["10.0.0.2"], "dnsSearchDomains": ["corp.example"],
    "dependsOn": [{"containerName": "web", "condition": "START"}, {"containerName": "api", "condition": "START"}],
    "command": [format!(
        "echo host=$(hostname); cat /etc/hosts /etc/resolv.conf; ip -o -4 addr show eth0; echo links=$(ip -o link | wc -l); {} && {} && echo CLIENT-DONE; exec sleep 600",
        retry_wget("http://frontend/"), retry_wget("http://api/")
    )]});
    let td = d.register(json!({"family": "bF-bridge", "networkMode": "bridge", "containerDefinitions": [web, api, client]}));
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    // ECS shows no ENI for bridge tasks.
    assert_eq!(t["attachments"], json!([]), "{t:#}");

    // A namespace, a veth and an address per container.
    let files = netns_files(&d);
    assert_eq!(
        files,
        (0..3).map(|i| format!("{id}-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        host_links(&d)
            .lines()
            .filter(|l| l.contains(": bth"))
            .count(),
        3
    );
    let ips: Vec<String> = ["web", "api", "client"]
        .iter()
        .map(|n| container_ip(named(&t, n)))
        .collect();
    let mut distinct = ips.clone();
    distinct.dedup();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{ips:?}");

    // Dynamic host ports, distinct, from the ephemeral range; the fixed one as asked.
    let wb = bindings(named(&t, "web"));
    let ab = bindings(named(&t, "api"));
    assert_eq!(wb.len(), 2, "{t:#}");
    assert_eq!(ab.len(), 2, "{t:#}");
    assert_eq!((wb[0].0, wb[0].2.as_str()), (80, "tcp"));
    assert_eq!((wb[1].0, wb[1].2.as_str()), (81, "udp"));
    assert_eq!(ab[1], (80, 8085, "tcp".to_owned()));
    let dynamic = [wb[0].1, wb[1].1, ab[0].1];
    for p in dynamic {
        assert!((49153..=65535).contains(&p), "{p} is not ephemeral: {t:#}");
    }
    assert!(
        dynamic[0] != dynamic[1] && dynamic[1] != dynamic[2] && dynamic[0] != dynamic[2],
        "{dynamic:?}"
    );
    assert_eq!(named(&t, "client")["networkBindings"], json!([]));
    assert_eq!(
        fetch_until(&d.host, &format!("http://127.0.0.1:{}/", wb[0].1)).trim(),
        "web"
    );
    assert_eq!(
        fetch_until(&d.host, &format!("http://127.0.0.1:{}/", ab[0].1)).trim(),
        "api"
    );
    assert_eq!(fetch_until(&d.host, "http://127.0.0.1:8085/").trim(), "api");
    assert_eq!(publish_elements(&d), 4);

    // Inside the client: its own address and hostname, links and extraHosts in
    // /etc/hosts, resolv.conf from dnsServers and dnsSearchDomains.
    let out = wait_log(&d, &id, "client", "CLIENT-DONE");
    assert!(out.contains("host=clienthost"), "{out}");
    assert!(out.contains(&format!("inet {}/20", ips[2])), "{out}");
    assert!(out.contains("links=2"), "lo and eth0 only: {out}");
    let hosts_line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().skip(1).any(|n| n == name))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
    };
    assert_eq!(
        hosts_line("frontend").as_deref(),
        Some(ips[0].as_str()),
        "{out}"
    );
    assert_eq!(hosts_line("web").as_deref(), Some(ips[0].as_str()), "{out}");
    assert_eq!(hosts_line("api").as_deref(), Some(ips[1].as_str()), "{out}");
    assert_eq!(
        hosts_line("db.example").as_deref(),
        Some("10.1.2.3"),
        "{out}"
    );
    assert_eq!(
        hosts_line("clienthost").as_deref(),
        Some(ips[2].as_str()),
        "{out}"
    );
    assert_eq!(
        hosts_line("localhost").as_deref(),
        Some("127.0.0.1"),
        "{out}"
    );
    assert!(out.contains("nameserver 10.0.0.2"), "{out}");
    assert!(out.contains("search corp.example"), "{out}");

    stop(&d, &id);
    d.assert_clean();
    assert_no_leases(&d);
}

#[test]
fn host_mode_uses_the_host_network_and_touches_no_bridge() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let peer = d.host.add_lan_peer(HOST_LAN, PEER_LAN).expect("LAN peer");
    let td = d.register(
        json!({"family": "bF-host", "networkMode": "host", "containerDefinitions": [{
            "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
            "command": [format!("ip -o -4 addr; {}", httpd_cmd(8086, "hostweb"))],
            "portMappings": [{"containerPort": 8086}]
        }]}),
    );
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    assert_eq!(t["attachments"], json!([]), "{t:#}");
    let c = &t["containers"][0];
    assert_eq!(c["networkInterfaces"], json!([]), "{t:#}");
    assert_eq!(
        c["networkBindings"],
        json!([{"bindIP": "0.0.0.0", "containerPort": 8086, "hostPort": 8086, "protocol": "tcp"}]),
        "{t:#}"
    );
    // The container binds on the host itself: the LAN reaches it directly.
    assert_eq!(
        fetch_until(&peer, &format!("http://{HOST_LAN}:8086/")).trim(),
        "hostweb"
    );
    let out = d.logs(&id, "web");
    assert!(out.contains(&format!("inet {HOST_LAN}/24")), "{out}");
    // No namespace, no bridge, no table, nothing published.
    assert_eq!(netns_files(&d), Vec::<String>::new());
    assert!(!host_links(&d).contains("berth0"), "{}", host_links(&d));
    let table = d.host.output("nft", &["list", "tables"]).unwrap();
    assert!(
        !String::from_utf8_lossy(&table.stdout).contains("berth"),
        "{table:?}"
    );
    // The mapping still reserves the port: a second copy is refused, as on ECS.
    let v = d.ok("RunTask", json!({"taskDefinition": td}));
    assert_eq!(v["failures"][0]["reason"], "RESOURCE:PORTS", "{v:#}");
    stop(&d, &id);
    d.assert_clean();
    assert_no_leases(&d);
}

#[test]
fn none_mode_has_loopback_only() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let peer = d.host.add_lan_peer(HOST_LAN, PEER_LAN).expect("LAN peer");
    let td = d.register(json!({"family": "bF-none", "networkMode": "none", "containerDefinitions": [
        container("c", &image, &format!(
            "ip -o link; ip -o -4 addr; wget -q -O - http://{PEER_LAN}:9/ || echo no-egress; cat /etc/hosts; echo host=$(hostname)"
        ))
    ]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    let out = d.logs(&id, "c");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}\n{out}");
    assert_eq!(t["attachments"], json!([]), "{t:#}");
    assert_eq!(t["containers"][0]["networkInterfaces"], json!([]), "{t:#}");
    assert_eq!(t["containers"][0]["networkBindings"], json!([]), "{t:#}");
    let links: Vec<&str> = out.lines().filter(|l| l.contains("mtu")).collect();
    assert_eq!(links.len(), 1, "{out}");
    assert!(
        links[0].contains(": lo:") && links[0].contains("UP"),
        "{out}"
    );
    assert!(out.contains("inet 127.0.0.1/8"), "{out}");
    assert!(out.contains("no-egress"), "{out}");
    assert!(
        out.contains("127.0.0.1\tlocalhost") || out.contains("127.0.0.1 localhost"),
        "{out}"
    );
    // A none-mode host needs no bridge.
    assert!(!host_links(&d).contains("berth0"), "{}", host_links(&d));
    d.assert_clean();
    drop(peer);
}

#[test]
fn awsvpc_containers_get_the_task_hostname_hosts_and_resolv_conf() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let show =
        "echo host=$(hostname); echo file=$(cat /etc/hostname); cat /etc/hosts /etc/resolv.conf";
    let mut custom = container("custom", &image, show);
    custom["dnsServers"] = json!(["10.0.0.2", "10.0.0.3"]);
    custom["dnsSearchDomains"] = json!(["corp.example", "example.com"]);
    custom["essential"] = json!(false);
    let td = d.register(
        json!({"family": "bF-etc", "networkMode": "awsvpc", "containerDefinitions": [
            container("plain", &image, &format!("{show}; sleep 1")), custom
        ]}),
    );
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    let ip = task_ip(&t);
    let o = ip.octets();
    let name = format!("ip-{}-{}-{}-{}", o[0], o[1], o[2], o[3]);
    for c in ["plain", "custom"] {
        let out = d.logs(&id, c);
        assert!(out.contains(&format!("host={name}\n")), "{c}: {out}");
        assert!(out.contains(&format!("file={name}\n")), "{c}: {out}");
        assert!(
            out.lines().any(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some(&ip.to_string()) && w.any(|n| n == name)
            }),
            "{c}: {out}"
        );
        assert!(
            out.lines().any(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some("127.0.0.1") && w.any(|n| n == "localhost")
            }),
            "{c}: {out}"
        );
    }
    let custom = d.logs(&id, "custom");
    assert!(
        custom.contains("nameserver 10.0.0.2\nnameserver 10.0.0.3"),
        "{custom}"
    );
    assert!(
        custom.contains("search corp.example example.com"),
        "{custom}"
    );
    // Without dnsServers: the host's resolvers, never a loopback stub the task cannot
    // reach from its namespace.
    let plain = d.logs(&id, "plain");
    for l in plain.lines().filter(|l| l.starts_with("nameserver")) {
        assert!(!l.contains(" 127."), "{plain}");
    }
    d.assert_clean();
}

#[test]
fn a_definition_without_network_mode_publishes_bridge_style_mappings_and_resolves_links() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    // What ECS runs in bridge mode; berth runs it with one namespace per task.
    let td = d.register(json!({"family": "bF-default", "containerDefinitions": [
        {"name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
         "command": [format!("echo host=$(hostname); {}", httpd_cmd(80, "default-mode"))],
         "hostname": "webhost",
         "portMappings": [{"containerPort": 80, "hostPort": 8087}, {"containerPort": 80, "hostPort": 0}]},
        {"name": "client", "image": image, "memory": 32, "essential": false, "entryPoint": ["sh", "-c"],
         "links": ["web:frontend"],
         "command": [format!("{} && echo CLIENT-DONE; exec sleep 600", retry_wget("http://frontend/"))]}
    ]}));
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    // A task ENI as in awsvpc; the mappings as ECS's bridge mode reads them: hostPort
    // → containerPort, and 0 for a dynamic port.
    task_ip(&t);
    let wb = bindings(named(&t, "web"));
    assert_eq!(wb[0], (80, 8087, "tcp".to_owned()), "{t:#}");
    assert_eq!(wb[1].0, 80, "{t:#}");
    assert!((49153..=65535).contains(&wb[1].1), "{t:#}");
    for port in [8087, wb[1].1] {
        assert_eq!(
            fetch_until(&d.host, &format!("http://127.0.0.1:{port}/")).trim(),
            "default-mode"
        );
    }
    // links resolve to the shared namespace; hostname is honoured.
    let out = wait_log(&d, &id, "client", "CLIENT-DONE");
    assert!(out.contains("default-mode"), "{out}");
    assert!(d.logs(&id, "web").contains("host=webhost"));
    stop(&d, &id);
    d.assert_clean();

    // Two containers mapping one container port cannot share a namespace: RunTask
    // says so instead of starting a task that cannot work.
    let td = d.register(json!({"family": "bF-default-clash", "containerDefinitions": [
        {"name": "a", "image": image, "memory": 16, "portMappings": [{"containerPort": 80, "hostPort": 8090}]},
        {"name": "b", "image": image, "memory": 16, "portMappings": [{"containerPort": 80, "hostPort": 8091}]}
    ]}));
    let e = d
        .call("RunTask", &json!({"taskDefinition": td}))
        .unwrap_err();
    assert_eq!(e.code, "ClientException", "{e:?}");
    assert!(
        e.message
            .contains("containerDefinitions[1].portMappings[0]"),
        "{e:?}"
    );
    assert!(e.message.contains("networkMode"), "{e:?}");
    let v = d.ok("ListTasks", json!({"desiredStatus": "RUNNING"}));
    assert_eq!(v["taskArns"], json!([]), "{v:#}");
}

#[test]
fn dynamic_ports_avoid_ports_other_tasks_have_reserved_but_not_bound_yet() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let bridge = d.register(
        json!({"family": "bF-dyn", "networkMode": "bridge", "containerDefinitions": [{
            "name": "web", "image": image, "memory": 16, "entryPoint": ["sh", "-c"],
            "command": ["sleep 600"], "portMappings": [{"containerPort": 80}]
        }]}),
    );
    let port_of = |id: &str| {
        d.wait_running(id)["containers"][0]["networkBindings"][0]["hostPort"]
            .as_u64()
            .unwrap() as u16
    };
    let first = d.run_task(&bridge);
    let p = port_of(&first);
    stop(&d, &first);
    // A host-mode task reserves the port the search would try next; its container
    // binds it itself, later (here: never).
    let next = if p == 65535 { 49153 } else { p + 1 };
    let host = d.register(
        json!({"family": "bF-dyn-host", "networkMode": "host", "containerDefinitions": [{
            "name": "app", "image": image, "memory": 16, "entryPoint": ["sh", "-c"],
            "command": ["sleep 600"], "portMappings": [{"containerPort": next}]
        }]}),
    );
    let h = d.run_task(&host);
    d.wait_running(&h);
    let second = d.run_task(&bridge);
    let q = port_of(&second);
    assert_ne!(q, next, "a dynamic port took a port another task reserved");
    assert!(port_recorded(&d, q));
    stop(&d, &second);
    stop(&d, &h);
    d.assert_clean();
    assert_no_leases(&d);
}

/// The dynamic port is recorded as the task's while it runs.
fn port_recorded(d: &Daemon, port: u16) -> bool {
    db_rows(d, "host_ports")
        .lines()
        .any(|l| l.contains(&format!("|{port}|")))
}

#[test]
fn container_port_ranges_are_published_port_by_port() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    // awsvpc: every port of the range on itself.
    let td = d.register(json!({"family": "bF-range", "networkMode": "awsvpc", "containerDefinitions": [{
        "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
        "command": ["mkdir -p /a /b && echo first > /a/index.html && echo last > /b/index.html && httpd -p 8090 -h /a && exec httpd -f -p 8092 -h /b"],
        "portMappings": [{"containerPortRange": "8090-8092"}]
    }]}));
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    assert_eq!(
        bindings(&t["containers"][0]),
        (8090..=8092)
            .map(|p| (p, p, "tcp".to_owned()))
            .collect::<Vec<_>>(),
        "{t:#}"
    );
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8090/").trim(),
        "first"
    );
    assert_eq!(
        fetch_until(&d.host, "http://127.0.0.1:8092/").trim(),
        "last"
    );
    stop(&d, &id);

    // bridge: each port of the range on its own dynamic host port.
    let td = d.register(
        json!({"family": "bF-range-bridge", "networkMode": "bridge", "containerDefinitions": [{
            "name": "web", "image": image, "memory": 32, "entryPoint": ["sh", "-c"],
            "command": [httpd_cmd(8091, "middle")],
            "portMappings": [{"containerPortRange": "8090-8091"}]
        }]}),
    );
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    let b = bindings(&t["containers"][0]);
    assert_eq!(
        b.iter().map(|b| b.0).collect::<Vec<_>>(),
        [8090, 8091],
        "{t:#}"
    );
    assert!(b.iter().all(|b| b.1 >= 49153), "{t:#}");
    assert_ne!(b[0].1, b[1].1);
    assert_eq!(
        fetch_until(&d.host, &format!("http://127.0.0.1:{}/", b[1].1)).trim(),
        "middle"
    );
    stop(&d, &id);
    d.assert_clean();
}

/// The JSON a container printed on the log line starting with `prefix`.
#[test]
fn containers_read_their_task_metadata_from_the_v4_endpoint() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    let read = "echo URI=$ECS_CONTAINER_METADATA_URI_V4; echo EXEC=$AWS_EXECUTION_ENV; \
        echo C=$(wget -q -O - $ECS_CONTAINER_METADATA_URI_V4); \
        echo T=$(wget -q -O - $ECS_CONTAINER_METADATA_URI_V4/task); \
        wget -q -O - ${ECS_CONTAINER_METADATA_URI_V4%-*}-00000000 || echo GUESS-REFUSED; \
        echo DONE; exec sleep 600";
    for mode in ["awsvpc", "host"] {
        let mut app = container("app", &image, read);
        app["dockerLabels"] = json!({"team": "edge"});
        app["cpu"] = json!(256);
        app["logConfiguration"] = json!({"logDriver": "awslogs",
            "options": {"awslogs-group": "g", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "p"}});
        let td = d.register(json!({"family": format!("bF-meta-{mode}"), "networkMode": mode,
            "cpu": "512", "memory": "256", "containerDefinitions": [app, container("side", &image, "sleep 600")]}));
        let id = d.run_task(&td);
        let t = d.wait_running(&id);
        let out = wait_log(&d, &id, "app", "DONE");
        assert!(out.contains("EXEC=AWS_ECS_EC2"), "{out}");
        assert!(out.contains("GUESS-REFUSED"), "{out}");
        let c = printed_json(&out, "C=");
        assert_eq!(c["Name"], "app", "{c:#}");
        // Read at once, the container may still show as PENDING; by now it runs.
        let uri = out
            .lines()
            .find_map(|l| l.strip_prefix("URI="))
            .unwrap()
            .to_owned();
        let now: Value = serde_json::from_str(&fetch_until(&d.host, &uri)).unwrap();
        assert_eq!(now["KnownStatus"], "RUNNING", "{now:#}");
        assert_eq!(now["DockerId"], c["DockerId"]);
        // Docker's stats, from the container's cgroup; the second reading carries the
        // first as precpu_stats.
        let stats = |path: &str| -> Value {
            serde_json::from_str(&fetch_until(&d.host, &format!("{uri}{path}"))).unwrap()
        };
        let s1 = stats("/stats");
        assert_eq!(s1["id"], c["DockerId"], "{s1:#}");
        assert!(s1["memory_stats"]["usage"].as_u64().unwrap() > 0, "{s1:#}");
        assert_eq!(s1["memory_stats"]["limit"], 32 * 1024 * 1024, "{s1:#}");
        assert!(s1["pids_stats"]["current"].as_u64().unwrap() >= 1, "{s1:#}");
        assert!(s1["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
        let s2 = stats("/stats");
        assert_eq!(s2["preread"], s1["read"]);
        assert_eq!(s2["precpu_stats"], s1["cpu_stats"]);
        if mode == "awsvpc" {
            // The container's own view of eth0: it sent the requests above and
            // received the replies.
            let eth0 = &s2["networks"]["eth0"];
            assert!(eth0["tx_bytes"].as_u64().unwrap() > 0, "{s2:#}");
            assert!(eth0["rx_bytes"].as_u64().unwrap() > 0, "{s2:#}");
            assert!(eth0["rx_packets"].as_u64().unwrap() > 0, "{s2:#}");
            assert!(
                s2["network_rate_stats"]["rx_bytes_per_sec"]
                    .as_f64()
                    .is_some()
            );
        } else {
            assert!(s2.get("networks").is_none(), "{s2:#}");
        }
        let all = stats("/task/stats");
        assert_eq!(all.as_object().unwrap().len(), 2, "{all:#}");
        assert!(
            all[c["DockerId"].as_str().unwrap()]["cpu_stats"]["cpu_usage"]["total_usage"]
                .as_u64()
                .unwrap()
                > 0
        );
        assert_eq!(c["Type"], "NORMAL");
        assert_eq!(c["Limits"]["CPU"], 256);
        assert_eq!(c["Labels"]["team"], "edge");
        assert_eq!(c["Labels"]["com.amazonaws.ecs.task-arn"], t["taskArn"]);
        assert_eq!(c["LogDriver"], "awslogs");
        assert_eq!(c["LogOptions"]["awslogs-group"], "g");
        assert_eq!(c["ContainerARN"], t["containers"][0]["containerArn"]);
        assert!(c["CreatedAt"].as_str().unwrap().ends_with('Z'), "{c:#}");
        if mode == "awsvpc" {
            assert!(out.contains("URI=http://10.229.0.1:51679/v4/"), "{out}");
            // A LAN host routing berth's subnet through this one reaches the gateway
            // address, but the endpoint answers tasks only.
            let peer = d.host.add_lan_peer(HOST_LAN, PEER_LAN).expect("LAN peer");
            let route = peer
                .output("ip", &["route", "add", "10.229.0.0/20", "via", HOST_LAN])
                .unwrap();
            assert!(route.status.success(), "{route:?}");
            assert_eq!(fetch(&peer, &uri), None);
            assert_eq!(c["Networks"][0]["NetworkMode"], "awsvpc");
            assert_eq!(c["Networks"][0]["IPv4Addresses"][0], json!(task_ip(&t)));
        } else {
            assert!(out.contains("URI=http://127.0.0.1:51679/v4/"), "{out}");
            assert_eq!(c["Networks"][0]["NetworkMode"], "host");
        }
        let task = printed_json(&out, "T=");
        assert_eq!(task["TaskARN"], t["taskArn"], "{task:#}");
        assert_eq!(task["Cluster"], t["clusterArn"]);
        assert_eq!(task["Family"], format!("bF-meta-{mode}"));
        assert_eq!(task["Revision"], "1");
        assert_eq!(task["Limits"], json!({"CPU": 0.5, "Memory": 256}));
        assert_eq!(task["LaunchType"], "EC2");
        let names: Vec<&str> = task["Containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["app", "side"]);
        d.kill_task(&id);
        d.wait_stopped(&id, Duration::from_secs(60));
    }
    d.assert_clean();
}
