//! API benchmark driver for `bench/api.sh`: drives a running `berth daemon` with many
//! concurrent clients over keep-alive HTTP/1.1 connections (the unix socket, or TCP
//! with SigV4 signatures as the SDKs send them) and prints latency percentiles and
//! throughput, plus the time until 100 concurrently started tasks are RUNNING.
//!
//! ```text
//! api_bench --socket RUN_ROOT/berth.sock --image REF [--tcp 127.0.0.1:5450 --key K --secret S]
//!           [--clients 50] [--seconds 5] [--burst 100] [--phases burst,describe,list,runtask]
//! ```
//!
//! Run it in the daemon's network namespace when `--tcp` is used. It registers its own
//! task definition family (`bench`) and stops every task it started.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";

#[derive(Clone)]
struct Opts {
    socket: PathBuf,
    tcp: Option<String>,
    key: String,
    secret: String,
    image: String,
    clients: usize,
    seconds: f64,
    burst: usize,
    phases: Vec<String>,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        socket: PathBuf::from("/run/berth/berth.sock"),
        tcp: None,
        key: String::new(),
        secret: String::new(),
        image: String::new(),
        clients: 50,
        seconds: 5.0,
        burst: 100,
        phases: vec![
            "burst".into(),
            "describe".into(),
            "list".into(),
            "runtask".into(),
        ],
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--socket" => o.socket = v.into(),
            "--tcp" => o.tcp = Some(v),
            "--key" => o.key = v,
            "--secret" => o.secret = v,
            "--image" => o.image = v,
            "--clients" => o.clients = v.parse().expect("--clients N"),
            "--seconds" => o.seconds = v.parse().expect("--seconds S"),
            "--burst" => o.burst = v.parse().expect("--burst N"),
            "--phases" => o.phases = v.split(',').map(str::to_owned).collect(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    assert!(!o.image.is_empty(), "--image REF is required");
    o
}

// ---------- a minimal keep-alive HTTP/1.1 client ----------

enum Stream {
    Unix(BufReader<UnixStream>),
    Tcp(BufReader<std::net::TcpStream>),
}

impl Stream {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Stream::Unix(r) => r.get_mut(),
            Stream::Tcp(r) => r.get_mut(),
        }
    }
    fn reader(&mut self) -> &mut dyn BufRead {
        match self {
            Stream::Unix(r) => r,
            Stream::Tcp(r) => r,
        }
    }
}

struct Client {
    stream: Stream,
    opts: Opts,
    tcp: bool,
}

impl Client {
    fn unix(opts: &Opts) -> Client {
        let s = UnixStream::connect(&opts.socket).expect("connecting to the daemon socket");
        Client {
            stream: Stream::Unix(BufReader::new(s)),
            opts: opts.clone(),
            tcp: false,
        }
    }

    fn tcp(opts: &Opts) -> Client {
        let addr = opts.tcp.clone().expect("--tcp");
        let s = std::net::TcpStream::connect(&addr).expect("connecting to the daemon");
        s.set_nodelay(true).unwrap();
        Client {
            stream: Stream::Tcp(BufReader::new(s)),
            opts: opts.clone(),
            tcp: true,
        }
    }

    fn new(opts: &Opts, tcp: bool) -> Client {
        if tcp {
            Client::tcp(opts)
        } else {
            Client::unix(opts)
        }
    }

    /// One call; returns the HTTP status and the JSON body.
    fn call(&mut self, op: &str, body: &Value) -> io::Result<(u16, Value)> {
        let target = if op.contains('.') {
            op.to_owned()
        } else {
            format!("{TARGET_PREFIX}{op}")
        };
        let body = body.to_string();
        let host = self.opts.tcp.clone().unwrap_or_else(|| "berth".into());
        let mut head = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        if self.tcp {
            let (date, auth) = sign(&self.opts, &host, &target, body.as_bytes());
            head.push_str(&format!("X-Amz-Date: {date}\r\nAuthorization: {auth}\r\n"));
        }
        head.push_str("\r\n");
        let w = self.stream.writer();
        w.write_all(head.as_bytes())?;
        w.write_all(body.as_bytes())?;
        w.flush()?;
        let r = self.stream.reader();
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut len = None;
        let mut chunked = false;
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse::<usize>().ok();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut buf = Vec::new();
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16).map_err(io::Error::other)?;
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        } else {
            let n = len.ok_or_else(|| io::Error::other("no content-length"))?;
            buf.resize(n, 0);
            r.read_exact(&mut buf)?;
        }
        let v = serde_json::from_slice(&buf).unwrap_or(Value::Null);
        Ok((status, v))
    }

    fn ok(&mut self, op: &str, body: &Value) -> Value {
        let (s, v) = self.call(op, body).unwrap_or_else(|e| panic!("{op}: {e}"));
        assert!(s == 200, "{op} answered {s}: {v}");
        v
    }
}

// ---------- SigV4 (what botocore sends) ----------

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` for now (UTC), without a date library.
fn amz_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn sign(opts: &Opts, host: &str, target: &str, body: &[u8]) -> (String, String) {
    let date = amz_date();
    let day = &date[..8];
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:{host}\nx-amz-date:{date}\nx-amz-target:{target}\n\ncontent-type;host;x-amz-date;x-amz-target\n{}",
        hex::encode(Sha256::digest(body))
    );
    let scope = format!("{day}/us-east-1/ecs/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{}", opts.secret).as_bytes(), day.as_bytes());
    let k = hmac(&k, b"us-east-1");
    let k = hmac(&k, b"ecs");
    let k = hmac(&k, b"aws4_request");
    let sig = hex::encode(hmac(&k, to_sign.as_bytes()));
    (
        date,
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={sig}",
            opts.key
        ),
    )
}

// ---------- measurement ----------

struct Stats {
    name: String,
    latencies: Vec<Duration>,
    errors: usize,
    wall: Duration,
}

impl Stats {
    fn print(&mut self) {
        self.latencies.sort();
        let n = self.latencies.len();
        let pct = |p: f64| -> f64 {
            if n == 0 {
                return f64::NAN;
            }
            let i = ((p / 100.0) * (n as f64 - 1.0)).round() as usize;
            self.latencies[i].as_secs_f64() * 1000.0
        };
        println!(
            "{:<34} {:>7} {:>6} {:>9.1} {:>8.2} {:>8.2} {:>8.2}",
            self.name,
            n,
            self.errors,
            n as f64 / self.wall.as_secs_f64(),
            pct(50.0),
            pct(99.0),
            self.latencies
                .last()
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        );
    }
}

fn header() {
    println!(
        "{:<34} {:>7} {:>6} {:>9} {:>8} {:>8} {:>8}",
        "operation (clients)", "calls", "errors", "req/s", "p50 ms", "p99 ms", "max ms"
    );
}

/// `clients` threads, each on its own connection, calling `make(i, n)` for `seconds`
/// (or `per_client` calls when given).
fn load(
    opts: &Opts,
    name: &str,
    tcp: bool,
    per_client: Option<usize>,
    make: impl Fn(usize, usize) -> (String, Value) + Send + Sync + 'static,
) -> (Stats, Vec<Value>) {
    let make = Arc::new(make);
    let barrier = Arc::new(Barrier::new(opts.clients + 1));
    let deadline_secs = opts.seconds;
    let mut handles = Vec::new();
    for c in 0..opts.clients {
        let (opts, make, barrier) = (opts.clone(), make.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            let mut client = Client::new(&opts, tcp);
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut answers = Vec::new();
            barrier.wait();
            let start = Instant::now();
            let mut n = 0;
            loop {
                match per_client {
                    Some(k) if n >= k => break,
                    None if start.elapsed().as_secs_f64() >= deadline_secs => break,
                    _ => {}
                }
                let (op, body) = make(c, n);
                let t = Instant::now();
                match client.call(&op, &body) {
                    Ok((200, v)) => {
                        lat.push(t.elapsed());
                        answers.push(v);
                    }
                    Ok((s, v)) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("{op}: {s} {v}");
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("{op}: {e}");
                        client = Client::new(&opts, tcp);
                    }
                }
                n += 1;
            }
            (lat, errors, answers)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut stats = Stats {
        name: format!("{name} ({})", opts.clients),
        latencies: Vec::new(),
        errors: 0,
        wall: Duration::ZERO,
    };
    let mut answers = Vec::new();
    for h in handles {
        let (l, e, a) = h.join().expect("client thread");
        stats.latencies.extend(l);
        stats.errors += e;
        answers.extend(a);
    }
    stats.wall = start.elapsed();
    (stats, answers)
}

fn task_ids(v: &Value) -> Vec<String> {
    v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["taskArn"].as_str())
        .map(|a| a.rsplit('/').next().unwrap().to_owned())
        .collect()
}

/// Waits until every task is in `status` (or STOPPED); returns how long it took and
/// how many ended elsewhere.
fn wait_all(c: &mut Client, ids: &[String], status: &str, since: Instant) -> (Duration, usize) {
    loop {
        let mut done = 0;
        let mut other = 0;
        for chunk in ids.chunks(100) {
            let v = c.ok("DescribeTasks", &json!({"tasks": chunk}));
            for t in v["tasks"].as_array().unwrap() {
                if t["lastStatus"] == status {
                    done += 1;
                } else if t["lastStatus"] == "STOPPED" {
                    other += 1;
                }
            }
        }
        if done + other == ids.len() {
            return (since.elapsed(), other);
        }
        assert!(
            since.elapsed() < Duration::from_secs(300),
            "tasks did not reach {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_all(opts: &Opts, ids: &[String]) -> Duration {
    let start = Instant::now();
    let chunks: Vec<Vec<String>> = ids.chunks(10).map(<[String]>::to_vec).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let opts = opts.clone();
            std::thread::spawn(move || {
                let mut c = Client::unix(&opts);
                for id in chunk {
                    c.ok(
                        "Berth.StopTask",
                        &json!({"task": id, "reason": "benchmark done", "timeoutSecs": 0}),
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = Client::unix(opts);
    wait_all(&mut c, ids, "STOPPED", start).0
}

fn main() {
    let opts = parse_args();
    let mut admin = Client::unix(&opts);
    admin.ok(
        "RegisterTaskDefinition",
        &json!({"family": "bench", "containerDefinitions": [{
            "name": "main", "image": opts.image, "memory": 16, "cpu": 0,
            "entryPoint": ["sh", "-c"], "command": ["trap 'exit 0' TERM; while true; do sleep 1; done"]
        }]}),
    );
    // Load the image once: every later RunTask starts from an already-loaded image.
    let warm = task_ids(&admin.ok("RunTask", &json!({"taskDefinition": "bench"})));
    wait_all(&mut admin, &warm, "RUNNING", Instant::now());
    stop_all(&opts, &warm);

    let phases = opts.phases.clone();
    let has = |p: &str| phases.iter().any(|x| x == p);
    let mut running: Vec<String> = Vec::new();
    let mut rows: Vec<Stats> = Vec::new();

    if has("burst") {
        let n = opts.burst;
        let barrier = Arc::new(Barrier::new(n + 1));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (opts, barrier) = (opts.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut c = Client::unix(&opts);
                    barrier.wait();
                    let t = Instant::now();
                    let v = c.ok("RunTask", &json!({"taskDefinition": "bench"}));
                    (t.elapsed(), task_ids(&v))
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut lat = Vec::new();
        for h in handles {
            let (l, ids) = h.join().unwrap();
            lat.push(l);
            running.extend(ids);
        }
        let accepted = start.elapsed();
        let (all_running, failed) = wait_all(&mut admin, &running, "RUNNING", start);
        let mut s = Stats {
            name: format!("RunTask burst ({n})"),
            latencies: lat,
            errors: n - running.len(),
            wall: accepted,
        };
        println!("== {n} concurrent RunTask calls (one task each, image already loaded)");
        header();
        s.print();
        println!(
            "all {} accepted after {:.0} ms; all RUNNING after {:.2} s ({} stopped instead)",
            running.len(),
            accepted.as_secs_f64() * 1000.0,
            all_running.as_secs_f64(),
            failed
        );
        println!("BURST_RUNNING_SECS={:.3}", all_running.as_secs_f64());
        println!();
    }
    if running.is_empty() && (has("describe") || has("list")) {
        let v = admin.ok("RunTask", &json!({"taskDefinition": "bench", "count": 10}));
        running = task_ids(&v);
        wait_all(&mut admin, &running, "RUNNING", Instant::now());
    }
    let ids = Arc::new(running.clone());
    if has("describe") {
        for tcp in [false, true] {
            if tcp && opts.tcp.is_none() {
                continue;
            }
            let ids1 = ids.clone();
            let (s, _) = load(
                &opts,
                if tcp {
                    "DescribeTasks 1 task (tcp+sigv4)"
                } else {
                    "DescribeTasks 1 task (unix)"
                },
                tcp,
                None,
                move |c, n| {
                    let id = &ids1[(c * 7 + n) % ids1.len()];
                    ("DescribeTasks".into(), json!({"tasks": [id]}))
                },
            );
            rows.push(s);
        }
        let ids10 = ids.clone();
        let (s, _) = load(
            &opts,
            "DescribeTasks 10 tasks (unix)",
            false,
            None,
            move |c, n| {
                let start = (c * 7 + n) % ids10.len();
                let some: Vec<&String> = ids10.iter().cycle().skip(start).take(10).collect();
                ("DescribeTasks".into(), json!({"tasks": some}))
            },
        );
        rows.push(s);
    }
    if has("list") {
        let (s, _) = load(
            &opts,
            &format!("ListTasks {} tasks (unix)", ids.len()),
            false,
            None,
            |_, _| ("ListTasks".into(), json!({})),
        );
        rows.push(s);
        let (s, _) = load(
            &opts,
            "ListTasks maxResults=10 (unix)",
            false,
            None,
            |_, _| ("ListTasks".into(), json!({"maxResults": 10})),
        );
        rows.push(s);
    }
    if !rows.is_empty() {
        println!(
            "== {} concurrent clients, {} s each, {} tasks running",
            opts.clients,
            opts.seconds,
            ids.len()
        );
        header();
        for r in &mut rows {
            r.print();
        }
        println!();
    }
    if !running.is_empty() {
        let took = stop_all(&opts, &running);
        println!(
            "stopped {} tasks in {:.2} s (StopTask, stop timeout 0)",
            running.len(),
            took.as_secs_f64()
        );
        println!();
    }
    if has("runtask") {
        let per = 2;
        let (mut s, answers) = load(&opts, "RunTask (unix)", false, Some(per), |_, _| {
            ("RunTask".into(), json!({"taskDefinition": "bench"}))
        });
        let started: Vec<String> = answers.iter().flat_map(task_ids).collect();
        let (all_running, _) = wait_all(&mut admin, &started, "RUNNING", Instant::now());
        println!(
            "== RunTask: {} clients x {per} calls (image already loaded)",
            opts.clients
        );
        header();
        s.print();
        println!(
            "(then all {} RUNNING {:.2} s after the last call returned)",
            started.len(),
            all_running.as_secs_f64()
        );
        let took = stop_all(&opts, &started);
        println!(
            "stopped {} tasks in {:.2} s",
            started.len(),
            took.as_secs_f64()
        );
    }
}
