//! Shared helpers of the `api_*` end-to-end tests: a daemon with a busybox image,
//! the `aws` CLI and boto3 scripts inside the daemon's fake host, raw HTTP to the TCP
//! listener, the seed task definitions, and a registry that lives in the fake host.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use berth_tests::daemon::{APPLETS, Daemon, DaemonOptions, busybox_layout};
use berth_tests::host::FakeHost;
use serde_json::{Value, json};

/// A daemon with default options and the busybox image as an `oci-layout:` reference.
pub(crate) fn setup() -> (Daemon, String) {
    setup_with(DaemonOptions::default())
}

/// A daemon with `options` and the busybox image.
pub(crate) fn setup_with(options: DaemonOptions) -> (Daemon, String) {
    let d = Daemon::start_with(options);
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    (d, image)
}

/// A container that runs `script` with `sh -c`.
pub(crate) fn container(name: &str, image: &str, script: &str) -> Value {
    json!({"name": name, "image": image, "memory": 32, "entryPoint": ["sh", "-c"], "command": [script]})
}

/// A one-container definition running `script`.
pub(crate) fn sh_def(family: &str, image: &str, script: &str) -> Value {
    json!({"family": family, "containerDefinitions": [container("main", image, script)]})
}

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A seed task definition (`runtime/tests/data/seeds/NAME`) as text.
pub(crate) fn seed_text(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("runtime/tests/data/seeds").join(name))
        .unwrap_or_else(|e| panic!("seed {name}: {e}"))
}

/// A seed task definition, with the printed documents' trailing commas removed.
pub(crate) fn seed(name: &str) -> Value {
    let text = seed_text(name);
    let mut fixed = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut in_string = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' && (i == 0 || chars[i - 1] != '\\') {
            in_string = !in_string;
        }
        if !in_string && c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                i += 1;
                continue;
            }
        }
        fixed.push(c);
        i += 1;
    }
    serde_json::from_str(&fixed).unwrap_or_else(|e| panic!("seed {name}: {e}"))
}

/// The id at the end of a task ARN.
pub(crate) fn task_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_owned()
}

/// The task ARNs of a RunTask answer.
pub(crate) fn task_arns(v: &Value) -> Vec<String> {
    v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["taskArn"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `aws ecs ARGS…` with `env` replacing the daemon's credentials.
pub(crate) fn aws_with(d: &Daemon, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = d.host.command("aws");
    c.arg("ecs").args(args).args([
        "--endpoint-url",
        "http://127.0.0.1:5450",
        "--output",
        "json",
    ]);
    for (k, v) in d.aws_env() {
        c.env(k, v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("running the aws CLI")
}

/// Runs `aws ecs ARGS…` and returns its JSON output, panicking on failure.
pub(crate) fn aws_ok(d: &Daemon, args: &[&str]) -> Value {
    let out = d.aws(args);
    assert!(
        out.status.success(),
        "aws ecs {args:?} failed: {}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("aws ecs {args:?}: {e}: {text}"))
}

/// Runs `aws ecs ARGS…` expecting failure; returns stderr (which names the exception).
pub(crate) fn aws_err(d: &Daemon, args: &[&str]) -> String {
    let out = d.aws(args);
    assert!(
        !out.status.success(),
        "aws ecs {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes `v` to a file the aws CLI can read (`file://…`).
pub(crate) fn json_file(d: &Daemon, name: &str, v: &Value) -> String {
    let p = d.scratch().join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    format!("file://{}", p.display())
}

/// Runs `python3 tests/python/SCRIPT ARGS…` inside the fake host with boto3 pointed at
/// the daemon; panics with its output unless it exits 0. Returns stdout.
pub(crate) fn python(d: &Daemon, script: &str, args: &[&str]) -> String {
    let path = repo_root().join("tests/python").join(script);
    let mut c = d.host.command("python3");
    c.arg(&path).args(args);
    for (k, v) in d.aws_env() {
        c.env(k, v);
    }
    c.env("BERTH_ENDPOINT", "http://127.0.0.1:5450");
    let out = c.output().expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}\n{}\n--- daemon log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    stdout
}

/// Runs `f` on a thread that has entered the fake host's network namespace: sockets it
/// opens and processes it starts live there (a registry the daemon can reach on its
/// loopback, a raw client of the TCP listener).
pub(crate) fn in_host<T: Send>(host: &FakeHost, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = std::fs::File::open(host.path()).expect("opening the fake host netns");
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("entering the fake host netns");
            f()
        })
        .join()
        .expect("fake host thread")
    })
}

/// A raw HTTP answer.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: Value,
}

/// One HTTP/1.1 POST to the daemon's TCP listener (inside the fake host) with exactly
/// these headers.
pub(crate) fn tcp_post(host: &FakeHost, headers: &[(&str, &str)], body: &[u8]) -> Raw {
    let body = body.to_vec();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    in_host(host, move || {
        let mut s = TcpStream::connect("127.0.0.1:5450").expect("connecting to the daemon");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "POST / HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let _ = s.write_all(&body);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Raw {
            status,
            headers: head.to_owned(),
            body: serde_json::from_str(rest).unwrap_or(Value::String(rest.to_owned())),
        }
    })
}

/// ECS headers for operation `op` (no signature).
pub(crate) fn ecs_headers(op: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Host", "127.0.0.1:5450".into()),
        (
            "X-Amz-Target",
            format!("AmazonEC2ContainerServiceV20141113.{op}"),
        ),
        ("Content-Type", "application/x-amz-json-1.1".into()),
    ]
}

/// Waits until `f` returns `Some`, or panics with `what` after `timeout`.
pub(crate) fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid` exists.
pub(crate) fn alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A registry the daemon reaches at `127.0.0.1:5000` inside its fake host: Debian's
/// docker-registry behind the fault proxy, both living in the fake host, with a relay
/// on the fixed port (so the daemon can be started with `--insecure-registry
/// 127.0.0.1:5000` before the registry's own ports are known).
pub(crate) struct HostRegistry {
    pub(crate) registry: berth_tests::registry::Registry,
    pub(crate) proxy: berth_tests::proxy::Proxy,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The registry host the daemon sees.
pub(crate) const HOST_REGISTRY: &str = "127.0.0.1:5000";

/// Daemon options trusting [`HOST_REGISTRY`] over plain HTTP.
pub(crate) fn with_host_registry() -> DaemonOptions {
    DaemonOptions {
        insecure_registries: vec![HOST_REGISTRY.into()],
        ..Default::default()
    }
}

impl HostRegistry {
    /// Starts the registry, proxy and relay in `host`.
    pub(crate) fn start(host: &FakeHost) -> HostRegistry {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let (registry, proxy) = in_host(host, move || {
            let registry = berth_tests::registry::Registry::start().expect("docker-registry");
            let proxy = berth_tests::proxy::Proxy::start(registry.addr()).expect("proxy");
            let target = proxy.addr();
            let listener =
                std::net::TcpListener::bind(HOST_REGISTRY).expect("binding the relay port");
            listener.set_nonblocking(true).unwrap();
            // Threads started here stay in the fake host's network namespace.
            std::thread::spawn(move || {
                while !stop2.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            conn.set_nonblocking(false).unwrap();
                            std::thread::spawn(move || relay(conn, target));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            (registry, proxy)
        });
        HostRegistry {
            registry,
            proxy,
            stop,
        }
    }

    /// Pushes `image` as `repo_tag`; returns the reference the daemon pulls.
    pub(crate) fn push(
        &self,
        host: &FakeHost,
        image: &berth_tests::images::BuiltImage,
        repo_tag: &str,
    ) -> String {
        in_host(host, || self.registry.push(image, repo_tag).expect("push"));
        format!("{HOST_REGISTRY}/{repo_tag}")
    }
}

impl Drop for HostRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn relay(client: TcpStream, target: std::net::SocketAddr) {
    let Ok(upstream) = TcpStream::connect(target) else {
        return;
    };
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (mut c1, mut u1) = (client, upstream);
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut u1, &mut c1);
    let _ = c1.shutdown(std::net::Shutdown::Both);
    let _ = t.join();
}

/// Stops every task of `cluster` (the fixture's cleanup knows only `default`).
pub(crate) fn stop_cluster_tasks(d: &Daemon, cluster: &str) {
    let Ok(v) = d.call("ListTasks", &json!({"cluster": cluster})) else {
        return;
    };
    let arns: Vec<String> = v["taskArns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    for a in &arns {
        let _ = d.call(
            "Berth.StopTask",
            &json!({"cluster": cluster, "task": a, "reason": "test cleanup", "timeoutSecs": 0}),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let v = d.call("DescribeTasks", &json!({"cluster": cluster, "tasks": arns}));
        let done = v.as_ref().is_ok_and(|v| {
            v["tasks"]
                .as_array()
                .is_none_or(|t| t.iter().all(|t| t["lastStatus"] == "STOPPED"))
        });
        if done || v.is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops the tasks of these clusters when dropped, also when a test fails.
pub(crate) struct ClusterCleanup<'a> {
    pub(crate) d: &'a Daemon,
    pub(crate) clusters: &'a [&'a str],
}

impl Drop for ClusterCleanup<'_> {
    fn drop(&mut self) {
        for c in self.clusters {
            stop_cluster_tasks(self.d, c);
        }
    }
}
