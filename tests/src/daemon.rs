//! A `berth daemon` under test: its own fake host (network namespace), its own data and
//! run roots in a temp dir, its own cgroup name (v1) or cgroup (v2), and helpers to call
//! the API, run the CLI, drive the `aws` CLI and check for leaks.
//!
//! Needs root and the `berth` binary (`BERTH_BIN`, or next to the test executable in
//! the cargo target dir). With `BERTH_TEST_ROOT=1`, a missing prerequisite fails the
//! test; otherwise the test prints why it is skipped and passes.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::host::{FakeHost, unique};

/// Whether prerequisites must be present (CI).
pub fn required() -> bool {
    std::env::var("BERTH_TEST_ROOT").as_deref() == Ok("1")
}

/// The berth binary under test.
pub fn berth_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BERTH_BIN") {
        return Some(p.into());
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("berth");
    p.exists().then_some(p)
}

/// `Some(reason)` when end-to-end tests cannot run here.
pub fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if berth_bin().is_none() {
        return Some("the berth binary is not built (cargo build -p berth)".into());
    }
    for tool in ["ip", "nsenter", "nft"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// Skips the calling test (returns from it) unless end-to-end tests can run; fails
/// instead under `BERTH_TEST_ROOT=1`.
#[macro_export]
macro_rules! require_e2e {
    () => {
        if let Some(why) = $crate::daemon::missing_prerequisite() {
            if $crate::daemon::required() {
                panic!("BERTH_TEST_ROOT=1 but end-to-end prerequisites are missing: {why}");
            }
            eprintln!("skipping: {why}");
            return;
        }
    };
}

fn cgroup2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

static V2_SPLIT: Once = Once::new();

/// On cgroup v2, a daemon needs a cgroup of its own with controllers available. The
/// test process moves into a leaf (`<own>/runner`) once, its own cgroup enables
/// controllers for children, and each daemon gets `<own>/<name>`.
pub fn daemon_cgroup(name: &str) -> Option<PathBuf> {
    if !cgroup2() {
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))?;
    let own = own.trim_end_matches("/runner").to_owned();
    let dir = Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/'));
    V2_SPLIT.call_once(|| {
        let runner = dir.join("runner");
        let _ = std::fs::create_dir(&runner);
        let _ = std::fs::write(runner.join("cgroup.procs"), std::process::id().to_string());
        let controllers =
            std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let enable: Vec<String> = controllers
            .split_whitespace()
            .map(|c| format!("+{c}"))
            .collect();
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), enable.join(" "));
    });
    let cg = dir.join(name);
    std::fs::create_dir_all(&cg).ok()?;
    Some(cg)
}

/// Options for [`Daemon::start_with`].
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Extra `berth daemon` flags.
    pub args: Vec<String>,
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    pub host: FakeHost,
    dir: tempfile::TempDir,
    bin: PathBuf,
    name: String,
    cgroup: Option<PathBuf>,
    child: Option<Child>,
    options: DaemonOptions,
}

/// An ECS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Daemon {
    /// Starts a daemon with default options.
    pub fn start() -> Daemon {
        Daemon::start_with(DaemonOptions::default())
    }

    /// Starts a daemon in a fresh fake host.
    pub fn start_with(options: DaemonOptions) -> Daemon {
        let host = FakeHost::new("bt").expect("creating a fake host namespace");
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("temp dir");
        let name = unique("berth-e2e-");
        let cgroup = daemon_cgroup(&name);
        let mut d = Daemon {
            host,
            dir,
            bin: berth_bin().expect("berth binary"),
            name,
            cgroup,
            child: None,
            options,
        };
        d.spawn();
        d
    }

    /// The data root.
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The run root.
    pub fn run_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The daemon's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut args: Vec<String> = vec![
            "--data-root".into(),
            self.data_root().display().to_string(),
            "--run-root".into(),
            self.run_root().display().to_string(),
        ];
        for r in &self.options.insecure_registries {
            args.push("--insecure-registry".into());
            args.push(r.clone());
        }
        args.extend(["daemon".into(), "--cgroup-name".into(), self.name.clone()]);
        args.extend(self.options.args.iter().cloned());
        let quoted: Vec<String> = args
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let enter_cgroup = match &self.cgroup {
            Some(cg) => format!("echo $$ > '{}/cgroup.procs' && ", cg.display()),
            None => String::new(),
        };
        let script = format!(
            "{enter_cgroup}exec nsenter --net='{}' -- '{}' {}",
            self.host.path().display(),
            self.bin.display(),
            quoted.join(" ")
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .env(
                "BERTH_LOG",
                std::env::var("BERTH_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting berth daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // An answer, not just a connection: after a kill -9, a process the old
            // daemon was spawning (a vfork child that has not exec'd yet) can still hold
            // its listening socket for a moment. Connections then queue on it and are
            // reset when that process lets go.
            if http_unix(&self.run_root().join("berth.sock"), "Berth.Info", "{}").is_ok() {
                break;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "berth daemon exited with {status} while starting:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "berth daemon did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Kills the daemon with SIGKILL (its tasks keep running under their shims).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon with SIGTERM and waits for it.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again (after [`kill9`](Self::kill9) or [`terminate`](Self::terminate)).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Calls an operation over the unix socket: `target` is `Op` (ECS) or `Berth.Op`.
    pub fn call(&self, target: &str, body: &Value) -> Result<Value, ApiError> {
        let target = if target.contains('.') {
            target.to_owned()
        } else {
            format!("AmazonEC2ContainerServiceV20141113.{target}")
        };
        let (status, body) = http_unix(
            &self.run_root().join("berth.sock"),
            &target,
            &body.to_string(),
        )
        .unwrap_or_else(|e| panic!("calling {target}: {e}\n{}", self.log()));
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
        if status >= 300 {
            return Err(ApiError {
                status,
                code: v["__type"].as_str().unwrap_or_default().to_owned(),
                message: v["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(v)
    }

    /// [`call`](Self::call), panicking on an error answer.
    pub fn ok(&self, target: &str, body: Value) -> Value {
        self.call(target, &body)
            .unwrap_or_else(|e| panic!("{target} failed: {e:?}\n{}", self.log()))
    }

    /// A container's log as `berth logs TASK CONTAINER` prints it (stdout, then stderr).
    pub fn logs(&self, id: &str, container: &str) -> String {
        let out = self.cli(&["logs", id, container]);
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// The fixture's temp dir (parent of the data and run roots): test files live here.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Runs `berth ARGS…` with this daemon's roots (outside the fake host).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--run-root")
            .arg(self.run_root())
            .args(args)
            .output()
            .expect("running berth")
    }

    /// The generated SigV4 key pair.
    pub fn credentials(&self) -> (String, String) {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(self.data_root().join("auth/credentials.json"))
                .expect("credentials file"),
        )
        .expect("credentials json");
        (
            v["accessKeyId"].as_str().unwrap().to_owned(),
            v["secretAccessKey"].as_str().unwrap().to_owned(),
        )
    }

    /// Environment for the AWS CLI / boto3 to talk to this daemon over TCP.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        let (k, s) = self.credentials();
        vec![
            ("AWS_ACCESS_KEY_ID".into(), k),
            ("AWS_SECRET_ACCESS_KEY".into(), s),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ]
    }

    /// Runs `aws ecs ARGS… --endpoint-url http://127.0.0.1:5450` inside the fake host.
    pub fn aws(&self, args: &[&str]) -> Output {
        let mut c = self.host.command("aws");
        c.arg("ecs").args(args).args([
            "--endpoint-url",
            "http://127.0.0.1:5450",
            "--output",
            "json",
        ]);
        for (k, v) in self.aws_env() {
            c.env(k, v);
        }
        c.output().expect("running the aws CLI")
    }

    /// Registers a task definition; returns its ARN.
    pub fn register(&self, def: Value) -> String {
        let v = self.ok("RegisterTaskDefinition", def);
        v["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Runs one task; returns its id.
    pub fn run_task(&self, task_definition: &str) -> String {
        let v = self.ok("RunTask", json!({"taskDefinition": task_definition}));
        assert!(
            v["failures"].as_array().is_none_or(|f| f.is_empty()),
            "RunTask failures: {v}"
        );
        let arn = v["tasks"][0]["taskArn"].as_str().unwrap().to_owned();
        arn.rsplit('/').next().unwrap().to_owned()
    }

    /// The task as DescribeTasks shows it.
    pub fn describe(&self, id: &str) -> Value {
        let v = self.ok("DescribeTasks", json!({"tasks": [id]}));
        v["tasks"][0].clone()
    }

    /// Waits until `pred` holds for the task (or panics after `timeout`).
    pub fn wait_task(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.describe(id);
            if pred(&t) {
                return t;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for task {id} to be {what}; last seen:\n{t:#}\n--- daemon log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for RUNNING (panics if it stops first).
    pub fn wait_running(&self, id: &str) -> Value {
        let t = self.wait_task(id, Duration::from_secs(60), "RUNNING", |t| {
            t["lastStatus"] == "RUNNING" || t["lastStatus"] == "STOPPED"
        });
        assert_eq!(
            t["lastStatus"], "RUNNING",
            "task stopped instead of running: {t:#}"
        );
        t
    }

    /// Waits for STOPPED.
    pub fn wait_stopped(&self, id: &str, timeout: Duration) -> Value {
        self.wait_task(id, timeout, "STOPPED", |t| t["lastStatus"] == "STOPPED")
    }

    /// Stops a task with a zero stop timeout.
    pub fn kill_task(&self, id: &str) {
        let _ = self.call(
            "Berth.StopTask",
            &json!({"task": id, "reason": "test cleanup", "timeoutSecs": 0}),
        );
    }

    /// Stops every task and waits for them to be STOPPED.
    pub fn stop_all(&self) {
        let Ok(v) = self.call("ListTasks", &json!({})) else {
            return;
        };
        let ids: Vec<String> = v["taskArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                a.as_str()
                    .and_then(|a| a.rsplit('/').next())
                    .map(str::to_owned)
            })
            .collect();
        for id in &ids {
            self.kill_task(id);
        }
        for id in &ids {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.wait_stopped(id, Duration::from_secs(30))
            }));
        }
    }

    /// What berth still holds on the host for tasks that are all STOPPED: mounts under
    /// its roots (besides its own executable and netns directory), namespace files,
    /// task cgroups, veths, published-port elements. Empty when nothing leaked.
    pub fn leaks(&self) -> Vec<String> {
        let mut out = Vec::new();
        let run = self.run_root();
        let data = self.data_root();
        let keep = [run.join("berth-exe"), run.join("netns")];
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mountinfo.lines() {
            if let Some(p) = line.split(' ').nth(4) {
                let p = PathBuf::from(p);
                if (p.starts_with(&run) || p.starts_with(&data)) && !keep.contains(&p) {
                    out.push(format!("mount {}", p.display()));
                }
            }
        }
        for e in std::fs::read_dir(run.join("netns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(format!("netns file {}", e.path().display()));
        }
        // A task's run directory goes just after it is STOPPED, on a thread of the lowest
        // priority: a moment's grace, longer on a busy host.
        out.extend(still_there_after(Duration::from_secs(10), || {
            std::fs::read_dir(run.join("tasks"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| format!("task run dir {}", e.path().display()))
                .collect()
        }));
        if let Ok(info) = self.call("Berth.Info", &json!({})) {
            let base = info["cgroup"]["base"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned();
            let dirs: Vec<PathBuf> = if cgroup2() {
                vec![Path::new("/sys/fs/cgroup").join(&base).join("task")]
            } else {
                [
                    "cpu", "memory", "pids", "cpuset", "devices", "freezer", "blkio", "cpuacct",
                ]
                .iter()
                .map(|c| Path::new("/sys/fs/cgroup").join(c).join(&base).join("task"))
                .collect()
            };
            for d in dirs {
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        out.push(format!("cgroup {}", e.path().display()));
                    }
                }
            }
        }
        // Shims of this daemon's tasks (a task's shim exits before the task is STOPPED;
        // one that was never begun exits when the daemon hangs up): a moment's grace.
        // The spare shim waiting for the next task is none of them.
        let tasks_dir = run.join("tasks");
        out.extend(still_there_after(Duration::from_secs(2), || {
            self.shims()
                .into_iter()
                .filter(|s| s.work_dir.starts_with(&tasks_dir))
                .map(|s| format!("shim process {}", s.pid))
                .collect()
        }));
        // The kernel destroys a task's veth pair asynchronously once its namespace is
        // gone (berth detaches the host end at once): give it a moment.
        out.extend(still_there_after(Duration::from_secs(5), || {
            self.host
                .output("ip", &["-o", "link", "show"])
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .filter(|l| l.contains(": bth"))
                        .map(|l| format!("veth {}", l.split(':').nth(1).unwrap_or_default().trim()))
                        .collect()
                })
                .unwrap_or_default()
        }));
        if let Ok(o) = self
            .host
            .output("nft", &["list", "map", "ip", "berth", "publish"])
        {
            let text = String::from_utf8_lossy(&o.stdout);
            if text.contains("elements") {
                out.push(format!("nft publish elements: {}", text.trim()));
            }
        }
        out
    }

    /// This daemon's shim processes: its tasks' shims, and the spare waiting for the
    /// next task. A spare taken by a task keeps its `spare-shims` argument but works in
    /// the task's run directory.
    pub fn shims(&self) -> Vec<ShimProcess> {
        let run = self.run_root();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                if args.get(1) != Some(&&b"shim"[..]) {
                    return None;
                }
                let dir = PathBuf::from(std::ffi::OsStr::from_bytes(args.get(2)?));
                if !dir.starts_with(&run) {
                    return None;
                }
                let work_dir = std::fs::read_link(e.path().join("cwd")).unwrap_or(dir.clone());
                Some(ShimProcess { pid, dir, work_dir })
            })
            .collect()
    }

    /// Asserts nothing leaked (see [`leaks`](Self::leaks)).
    pub fn assert_clean(&self) {
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "berth left kernel objects or files behind:\n{}",
            leaks.join("\n")
        );
    }
}

/// A shim process of a [`Daemon`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimProcess {
    pub pid: u32,
    /// The directory on its command line.
    pub dir: PathBuf,
    /// Its working directory: the run directory it works in now.
    pub work_dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_all();
        }
        self.terminate();
        // What the daemon does not remove at shutdown: its executable mount and the
        // netns directory mount.
        let run = self.run_root();
        let mounts: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
            .filter(|p| p.starts_with(self.dir.path()))
            .collect();
        for m in mounts.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = run;
        // The daemon's cgroup and what is left in it once every task is gone: the
        // `daemon` leaf it moved itself into (v2).
        if let Some(cg) = &self.cgroup {
            remove_empty_cgroups(cg);
        }
    }
}

/// What `find` still reports once it reports nothing or `grace` has passed: leftovers
/// the kernel or a process removes a moment after the task is STOPPED.
fn still_there_after(grace: Duration, find: impl Fn() -> Vec<String>) -> Vec<String> {
    let deadline = Instant::now() + grace;
    loop {
        let found = find();
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes `dir` and its child cgroups, deepest first (only empty ones go).
pub fn remove_empty_cgroups(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_cgroups(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// One HTTP/1.1 POST over a unix socket; returns (status, body).
fn http_unix(socket: &Path, target: &str, body: &str) -> io::Result<(u16, String)> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: {target}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no HTTP header"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("bad status line"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// A container of a DescribeTasks task by name.
pub fn named<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {t:#}"))
}

/// A busybox image for tasks, written as an OCI layout under `dir`; returns the
/// `oci-layout:` reference tasks can name.
pub fn busybox_layout(dir: &Path, applets: &[&str]) -> String {
    let image = crate::images::ImageBuilder::busybox(applets)
        .cmd(&["sh"])
        .build();
    let layout = dir.join("busybox-layout");
    image
        .write_layout(&layout, "latest")
        .expect("writing the busybox layout");
    format!("oci-layout:{}:latest", layout.display())
}

/// The applets most task tests use.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "sleep", "true", "false", "test", "mkdir", "touch", "id", "env",
    "hostname", "httpd", "wget", "nc", "head", "tail", "grep", "ps", "kill", "trap", "pwd", "ip",
    "ping", "wc", "date", "rm", "seq", "yes", "dd", "taskset",
];
