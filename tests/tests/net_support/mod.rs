//! Shared helpers of the networking end-to-end tests (`network.rs`, `network_modes.rs`):
//! fetching pages from inside a fake host or a LAN peer, task addresses as DescribeTasks
//! shows them, berth's nftables map and the lease tables.

#![allow(dead_code, unused_imports)]

use std::net::Ipv4Addr;
use std::process::Child;
use std::time::{Duration, Instant};

pub(crate) use berth_tests::daemon::named;
use berth_tests::daemon::{APPLETS, Daemon, busybox_layout};
use berth_tests::host::FakeHost;
use serde_json::{Value, json};

/// The fake host's LAN address and its peer's (each test has its own fake host).
pub(crate) const HOST_LAN: &str = "192.168.77.1";
pub(crate) const PEER_LAN: &str = "192.168.77.2";
/// berth's default task subnet is 10.229.0.0/20.
pub(crate) const SUBNET_PREFIX: [u8; 2] = [10, 229];

/// `d` with the busybox image as an `oci-layout:` reference.
pub(crate) fn setup(d: Daemon) -> (Daemon, String) {
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    (d, image)
}

/// A container running `command` with `sh -c`.
pub(crate) fn container(name: &str, image: &str, command: &str) -> Value {
    json!({"name": name, "image": image, "memory": 32, "entryPoint": ["sh", "-c"], "command": [command]})
}

/// A shell command serving `text` as `/` on `port` with busybox httpd, in the foreground.
pub(crate) fn httpd_cmd(port: u16, text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {port} -h /www")
}

/// A shell snippet fetching `url` (printing the body) and retrying for up to 10 s.
pub(crate) fn retry_wget(url: &str) -> String {
    format!(
        "(i=0; until wget -q -O - {url}; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.1; done)"
    )
}

/// One attempt at `url` from inside `ns` (busybox wget, 5 s at most): the body, or `None`.
pub(crate) fn fetch(ns: &FakeHost, url: &str) -> Option<String> {
    let out = ns
        .output("timeout", &["5", "busybox", "wget", "-q", "-O", "-", url])
        .expect("running busybox wget");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `url` from inside `ns`, retried for up to 10 s; panics if it never answers.
pub(crate) fn fetch_until(ns: &FakeHost, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(body) = fetch(ns, url) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer from {}",
            ns.name()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A detail of the task's ENI attachment.
pub(crate) fn detail(t: &Value, name: &str) -> String {
    t["attachments"][0]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|kv| kv["name"] == name)
        .and_then(|kv| kv["value"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The task's address from its ENI attachment (which must agree with the containers').
pub(crate) fn task_ip(t: &Value) -> Ipv4Addr {
    let ip: Ipv4Addr = detail(t, "privateIPv4Address")
        .parse()
        .unwrap_or_else(|_| panic!("no privateIPv4Address attachment detail: {t:#}"));
    for c in t["containers"].as_array().into_iter().flatten() {
        assert_eq!(
            c["networkInterfaces"][0]["privateIpv4Address"],
            ip.to_string(),
            "{t:#}"
        );
    }
    ip
}

/// Stops a task at once and waits for STOPPED.
pub(crate) fn stop(d: &Daemon, id: &str) -> Value {
    d.kill_task(id);
    d.wait_stopped(id, Duration::from_secs(30))
}

/// The elements of berth's `publish` map in the fake host.
pub(crate) fn publish_elements(d: &Daemon) -> usize {
    let out = d
        .host
        .output("nft", &["-j", "list", "map", "ip", "berth", "publish"])
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["map"]["elem"].as_array())
        .map(Vec::len)
        .sum()
}

/// Rows of a table in the daemon's database.
pub(crate) fn db_rows(d: &Daemon, table: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg("-readonly")
        .arg(d.data_root().join("berth.db"))
        .arg(format!("SELECT * FROM {table}"))
        .output()
        .expect("running sqlite3");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// No address lease and no host port is recorded.
pub(crate) fn assert_no_leases(d: &Daemon) {
    assert_eq!(db_rows(d, "ip_leases"), "", "address leases left");
    assert_eq!(db_rows(d, "host_ports"), "", "host ports left");
}

/// The fake host's addresses, one line each.
pub(crate) fn host_addresses(d: &Daemon) -> String {
    let out = d.host.output("ip", &["-o", "addr", "show"]).unwrap();
    // (Duplicate address detection flags come and go.)
    String::from_utf8_lossy(&out.stdout).replace(" tentative", "")
}

/// A child process killed and reaped on drop.
pub(crate) struct Reaped(pub(crate) Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something in the fake host listens on TCP `port`.
pub(crate) fn wait_listening(d: &Daemon, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = d.host.output("ss", &["-Hltn"]).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains(&format!(":{port} ")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port}: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process in the fake host can listen on TCP `port` (on every address).
pub(crate) fn host_can_bind(d: &Daemon, port: u16) -> bool {
    let mut nc = d
        .host
        .command("busybox")
        .args(["nc", "-l", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Reaped)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    nc.0.try_wait().unwrap().is_none()
}

/// Waits until the container's log contains `needle`.
pub(crate) fn wait_log(d: &Daemon, id: &str, container: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = d.logs(id, container);
        if out.contains(needle) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{container} never logged {needle:?}:\n{out}\n{:#}",
            d.describe(id)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The JSON a container printed after `prefix` on a line of its own.
pub(crate) fn printed_json(out: &str, prefix: &str) -> Value {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in: {out}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}
