//! The shim end to end, without the daemon: real cgroups, namespaces and libcontainer,
//! driven through the `berth shim` binary exactly as the daemon drives it.
//!
//! Needs root and the `berth` binary (built by `cargo build -p berth`; found next to
//! the test executable or through `BERTH_BIN`). With `BERTH_TEST_ROOT=1` a missing
//! prerequisite fails the test instead of skipping it.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_runtime::cgroup::{
    BerthCgroups, CgroupHost, CgroupVersion, ProcCgroups, TaskCgroupLimits,
};
use berth_runtime::shim::{
    self, Condition, ContainerStatus, LogSettings, RunStatus, ShimContainer, ShimDependency,
    ShimHealthCheck, ShimState, ShimTask, StopCode,
};
use berth_runtime::spec::{self, ContainerPlan, Namespace, SpecContext};

fn required() -> bool {
    std::env::var("BERTH_TEST_ROOT").as_deref() == Ok("1")
}

fn berth_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("BERTH_BIN") {
        return Some(p.into());
    }
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("berth");
    p.exists().then_some(p)
}

/// Skips (or fails under BERTH_TEST_ROOT=1) when the test cannot run here.
macro_rules! prerequisites {
    () => {{
        let root = nix::unistd::geteuid().is_root();
        let bin = berth_bin();
        let busybox = Path::new("/bin/busybox").exists();
        if !root || bin.is_none() || !busybox {
            let why = format!("root={root} berth-bin={bin:?} /bin/busybox={busybox}");
            if required() {
                panic!("BERTH_TEST_ROOT=1 but prerequisites are missing: {why}");
            }
            eprintln!("skipping: {why}");
            return;
        }
        bin.unwrap()
    }};
}

struct Fixture {
    dir: tempfile::TempDir,
    cgroups: BerthCgroups,
    created: Vec<PathBuf>,
    bin: PathBuf,
    task_id: String,
    v2_dir: Option<PathBuf>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.cgroups.remove_task(&self.task_id);
        self.cgroups.release(&self.created);
        if let Some(dir) = &self.v2_dir {
            berth_tests::daemon::remove_empty_cgroups(dir);
        }
    }
}

fn busybox_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "sleep", "cat", "true", "false", "trap", "id", "head", "tail", "ls",
    ] {
        let _ = symlink("busybox", dir.join("bin").join(applet));
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nweb:x:101:102::/home/web:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nweb:x:102:\n").unwrap();
}

impl Fixture {
    fn new(bin: PathBuf) -> Fixture {
        let mut dir = tempfile::tempdir().unwrap();
        if std::env::var_os("BERTH_TEST_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let host = CgroupHost::detect().unwrap();
        let own = ProcCgroups::of_self().unwrap();
        let task_id = format!(
            "t{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        // One base per fixture: tests run in parallel and each releases its own.
        let name = format!("berth-shimtest-{task_id}");
        // On v2 the subtree is a fresh child cgroup of this test's own (the test process
        // moves into a leaf once, see berth_tests::daemon::daemon_cgroup); nothing is
        // moved into its `daemon` leaf (pid 0). On v1 it nests under the test's cgroups.
        let (cgroups, created, v2_dir) = match berth_tests::daemon::daemon_cgroup(&name) {
            Some(dir) => {
                let path = format!("/{}", dir.strip_prefix("/sys/fs/cgroup").unwrap().display());
                let own = ProcCgroups {
                    unified: Some(path),
                    ..Default::default()
                };
                let (cg, created) = BerthCgroups::establish(host, &own, &name, 0).unwrap();
                (cg, created, Some(dir))
            }
            None => {
                let (cg, created) =
                    BerthCgroups::establish(host, &own, &name, std::process::id()).unwrap();
                (cg, created, None)
            }
        };
        Fixture {
            v2_dir,
            dir,
            cgroups,
            created,
            bin,
            task_id,
        }
    }

    fn container(
        &self,
        name: &str,
        command: &[&str],
        tweak: impl FnOnce(&mut ContainerPlan, &mut ShimContainer),
    ) -> ShimContainer {
        self.container_in(name, command, Namespace::New, tweak)
    }

    /// A container whose pid namespace is `pid` (`Namespace::Host`: pidMode host).
    fn container_in(
        &self,
        name: &str,
        command: &[&str],
        pid: Namespace,
        tweak: impl FnOnce(&mut ContainerPlan, &mut ShimContainer),
    ) -> ShimContainer {
        let bundle = self.dir.path().join("bundles").join(name);
        let rootfs = bundle.join("rootfs");
        busybox_rootfs(&rootfs);
        let mut plan = ContainerPlan {
            name: name.into(),
            command: Some(command.iter().map(|s| s.to_string()).collect()),
            hostname: name.into(),
            no_new_privileges: true,
            pids_limit: Some(1024),
            ..Default::default()
        };
        let mut sc = ShimContainer {
            name: name.into(),
            runtime_id: format!("{}-{name}", self.task_id),
            bundle: bundle.clone(),
            essential: true,
            depends_on: vec![],
            start_timeout_secs: 30,
            stop_timeout_secs: 5,
            stop_signal: libc::SIGTERM,
            health_check: None,
            log_path: self.dir.path().join("logs").join(format!("{name}.log")),
            cgroup_path: self.cgroups.container_path(&self.task_id, name),
            init_process: false,
            terminal: false,
            interactive: false,
            restart_policy: None,
            seccomp_program: None,
        };
        tweak(&mut plan, &mut sc);
        struct Dir<'a>(&'a Path);
        impl spec::RootfsFiles for Dir<'_> {
            fn read_to_string(&self, p: &str) -> Option<String> {
                std::fs::read_to_string(self.0.join(p.trim_start_matches('/'))).ok()
            }
        }
        let process = spec::process_settings(&plan, None, &Dir(&rootfs)).unwrap();
        let ctx = SpecContext {
            rootfs: &rootfs,
            cgroups_path: sc.cgroup_path.clone(),
            cgroup_version: self.cgroups.host().version(),
            network: Namespace::New,
            pid,
            ipc: Namespace::New,
            dev_shm: true,
        };
        let config = spec::generate(&plan, &process, &ctx).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        sc
    }

    /// Runs the task through `berth shim` and returns its final state.
    fn run(
        &self,
        containers: Vec<ShimContainer>,
        limits: TaskCgroupLimits,
        during: impl FnOnce(&Path),
    ) -> ShimState {
        let run_dir = self.dir.path().join("run");
        std::fs::create_dir_all(&run_dir).unwrap();
        self.cgroups.create_task(&self.task_id, &limits).unwrap();
        let task = ShimTask {
            task_id: self.task_id.clone(),
            cgroup_base: self.cgroups.base().to_owned(),
            container_state_root: self.dir.path().join("state"),
            containers,
            log: LogSettings::default(),
            shared_namespaces: Vec::new(),
        };
        std::fs::write(
            run_dir.join(shim::TASK_FILE),
            serde_json::to_vec(&task).unwrap(),
        )
        .unwrap();
        // The shim's end shows in state.json and in its pid going away. It starts the
        // task on the daemon's begin, sent here.
        self.start_shim(&run_dir);
        shim::ShimClient::connect(&run_dir)
            .unwrap()
            .begin()
            .unwrap();
        during(&run_dir);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stopped =
                shim::read_state(&run_dir).is_some_and(|s| s.status == RunStatus::Stopped);
            if stopped && !shim::shim_alive(&run_dir) {
                break;
            }
            let log = std::fs::read_to_string(run_dir.join(shim::LOG_FILE)).unwrap_or_default();
            assert!(Instant::now() < deadline, "shim did not finish:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Shown when a test fails.
        eprintln!(
            "--- shim.log ---\n{}",
            std::fs::read_to_string(run_dir.join(shim::LOG_FILE)).unwrap_or_default()
        );
        for e in std::fs::read_dir(self.dir.path().join("logs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            eprintln!(
                "--- {} ---\n{}",
                e.path().display(),
                std::fs::read_to_string(e.path()).unwrap_or_default()
            );
        }
        shim::read_state(&run_dir).expect("state.json")
    }

    /// Starts `berth shim <run_dir>`, logging to its shim.log. `berth shim` detaches
    /// (it forks away at once): the process started here exits once the shim listens.
    fn start_shim(&self, run_dir: &Path) {
        let log = std::fs::File::create(run_dir.join(shim::LOG_FILE)).unwrap();
        let status = Command::new(&self.bin)
            .arg("shim")
            .arg(run_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap();
        assert!(status.success(), "berth shim failed to start: {status}");
    }

    fn log_text(&self, name: &str) -> String {
        let (entries, _) = shim::logs::read_log(
            &self.dir.path().join("logs").join(format!("{name}.log")),
            &Default::default(),
        )
        .unwrap();
        entries.iter().map(|e| e.log.as_str()).collect()
    }
}

fn wait_for(run_dir: &Path, what: &str, f: impl Fn(&ShimState) -> bool) -> ShimState {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = shim::read_state(run_dir)
            && f(&s)
        {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exit_codes_propagate_and_logs_are_captured() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let c = f.container(
        "main",
        &["sh", "-c", "echo hello; echo oops >&2; id -u; exit 7"],
        |_, _| {},
    );
    let st = f.run(vec![c], TaskCgroupLimits::default(), |_| {});
    assert_eq!(st.status, RunStatus::Stopped);
    let c = &st.containers[0];
    assert_eq!(c.exit_code, Some(7));
    assert_eq!(
        st.stop.as_ref().unwrap().code,
        StopCode::EssentialContainerExited
    );
    let log = f.log_text("main");
    assert!(
        log.contains("hello\n") && log.contains("oops\n") && log.contains("0\n"),
        "{log}"
    );
}

#[test]
fn a_bad_entrypoint_fails_the_task_to_start_with_the_reason() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let c = f.container("main", &["/no/such/binary"], |_, _| {});
    let st = f.run(vec![c], TaskCgroupLimits::default(), |_| {});
    let stop = st.stop.unwrap();
    assert_eq!(stop.code, StopCode::TaskFailedToStart);
    assert_eq!(
        stop.reason,
        "CannotStartContainerError: executable '/no/such/binary' not found in $PATH"
    );
}

#[test]
fn memory_limit_oom_kill_reports_137_and_the_ecs_reason() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let c = f.container("hog", &["sh", "-c", "exec tail /dev/zero"], |p, _| {
        p.memory_mib = Some(16)
    });
    let st = f.run(vec![c], TaskCgroupLimits::default(), |_| {});
    let c = &st.containers[0];
    assert_eq!(c.exit_code, Some(137));
    assert!(c.oom_killed);
    assert_eq!(c.reason.as_deref(), Some(shim::OOM_REASON));
}

#[test]
fn a_container_ignoring_sigterm_is_killed_after_its_stop_timeout_not_before() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let stubborn = f.container(
        "stubborn",
        &["sh", "-c", "trap '' TERM; while true; do sleep 1; done"],
        |_, s| {
            s.stop_timeout_secs = 2;
        },
    );
    let started = Instant::now();
    let mut signalled = Instant::now();
    let st = f.run(vec![stubborn], TaskCgroupLimits::default(), |run_dir| {
        wait_for(run_dir, "running", |s| s.status == RunStatus::Running);
        let mut client = shim::ShimClient::connect(run_dir).unwrap();
        signalled = Instant::now();
        client.stop("test stop", None).unwrap();
    });
    let took = signalled.elapsed();
    assert!(took >= Duration::from_secs(2), "killed too early: {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?} (started {:?} ago)",
        started.elapsed()
    );
    assert_eq!(st.containers[0].exit_code, Some(137));
    assert_eq!(st.stop.unwrap().code, StopCode::UserInitiated);
}

#[test]
fn a_non_essential_exit_leaves_the_task_running() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let side = f.container("side", &["sh", "-c", "exit 3"], |_, s| s.essential = false);
    let main = f.container("main", &["sh", "-c", "sleep 60"], |_, _| {});
    let st = f.run(vec![side, main], TaskCgroupLimits::default(), |run_dir| {
        let s = wait_for(run_dir, "side exited", |s| {
            s.containers[0].status == ContainerStatus::Stopped
        });
        assert_eq!(s.containers[0].exit_code, Some(3));
        std::thread::sleep(Duration::from_millis(300));
        let s = shim::read_state(run_dir).unwrap();
        assert_eq!(s.status, RunStatus::Running);
        assert_eq!(s.containers[1].status, ContainerStatus::Running);
        shim::ShimClient::connect(run_dir)
            .unwrap()
            .stop("done", Some(1))
            .unwrap();
    });
    assert_eq!(st.status, RunStatus::Stopped);
}

#[test]
fn success_dependency_and_health_gating_order_the_start() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let init = f.container(
        "init",
        &["sh", "-c", "echo ready > /tmp/x; exit 0"],
        |_, s| s.essential = false,
    );
    let db = f.container(
        "db",
        &["sh", "-c", "sleep 1; touch /tmp/healthy; sleep 60"],
        |_, s| {
            s.health_check = Some(ShimHealthCheck {
                argv: vec!["/bin/sh".into(), "-c".into(), "test -f /tmp/healthy".into()],
                interval_secs: 1,
                timeout_secs: 2,
                retries: 3,
                start_period_secs: 0,
            });
        },
    );
    let app = f.container(
        "app",
        &["sh", "-c", "echo app started; sleep 60"],
        |_, s| {
            s.depends_on = vec![
                ShimDependency {
                    container: "init".into(),
                    condition: Condition::Success,
                },
                ShimDependency {
                    container: "db".into(),
                    condition: Condition::Healthy,
                },
            ];
        },
    );
    let st = f.run(
        vec![init, db, app],
        TaskCgroupLimits::default(),
        |run_dir| {
            let s = wait_for(run_dir, "app running", |s| {
                s.containers[2].status == ContainerStatus::Running
            });
            let db_healthy = s.containers[1].health_since.unwrap();
            assert!(s.containers[2].started_at.unwrap() >= db_healthy);
            assert!(s.containers[2].started_at.unwrap() >= s.containers[0].finished_at.unwrap());
            shim::ShimClient::connect(run_dir)
                .unwrap()
                .stop("done", Some(1))
                .unwrap();
        },
    );
    // Reverse order on the way down: app stops before db.
    assert!(st.containers[2].finished_at.unwrap() <= st.containers[1].finished_at.unwrap());
    assert!(f.log_text("app").contains("app started"));
}

#[test]
fn a_failed_success_dependency_stops_the_task_naming_both_containers() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let init = f.container("init", &["sh", "-c", "exit 4"], |_, s| s.essential = false);
    let app = f.container("app", &["sh", "-c", "sleep 60"], |_, s| {
        s.depends_on = vec![ShimDependency {
            container: "init".into(),
            condition: Condition::Success,
        }];
    });
    let st = f.run(vec![init, app], TaskCgroupLimits::default(), |_| {});
    let stop = st.stop.unwrap();
    assert_eq!(stop.code, StopCode::TaskFailedToStart);
    assert!(
        stop.reason.contains("app")
            && stop.reason.contains("init")
            && stop.reason.contains("code 4"),
        "{}",
        stop.reason
    );
    assert_eq!(st.containers[1].started_at, None);
}

#[test]
fn cgroup_limits_are_visible_in_the_container_cgroup() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let v = f.cgroups.host().version();
    let script = match v {
        CgroupVersion::V1 => {
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares"
        }
        CgroupVersion::V2 => {
            "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.low /sys/fs/cgroup/cpu.weight"
        }
    };
    let c = f.container("main", &["sh", "-c", script], |p, _| {
        p.memory_mib = Some(64);
        p.memory_reservation_mib = Some(32);
        p.cpu_units = Some(512);
    });
    let st = f.run(
        vec![c],
        TaskCgroupLimits {
            memory_mib: Some(128),
            ..Default::default()
        },
        |_| {},
    );
    assert_eq!(
        st.containers[0].exit_code,
        Some(0),
        "{}",
        f.log_text("main")
    );
    let out: Vec<String> = f.log_text("main").lines().map(str::to_owned).collect();
    let weight_or_shares = match v {
        CgroupVersion::V1 => "512",
        CgroupVersion::V2 => "50",
    };
    assert_eq!(
        out,
        [
            (64u64 << 20).to_string(),
            (32u64 << 20).to_string(),
            weight_or_shares.to_string()
        ]
    );
}

#[test]
fn the_init_process_reaps_and_forwards_signals() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    // Without an init, sh as PID 1 ignores SIGTERM (no handler); with the init,
    // SIGTERM reaches sh as an ordinary process and kills it at once.
    let c = f.container("main", &["sh", "-c", "sleep 60 & wait"], |_, s| {
        s.init_process = true;
        s.stop_timeout_secs = 20;
    });
    let mut signalled = Instant::now();
    let st = f.run(vec![c], TaskCgroupLimits::default(), |run_dir| {
        wait_for(run_dir, "running", |s| s.status == RunStatus::Running);
        signalled = Instant::now();
        shim::ShimClient::connect(run_dir)
            .unwrap()
            .stop("bye", None)
            .unwrap();
    });
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!(st.containers[0].exit_code, Some(143));
}

/// With pidMode host a container's exit does not end its children (no pid namespace
/// of its own for the kernel to empty): what it left in the task's cgroups is killed
/// when the task stops, and the cgroups go.
#[test]
fn processes_a_container_leaves_behind_are_killed_with_the_task() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let c = f.container_in(
        "main",
        &[
            "sh",
            "-c",
            "sleep 300 </dev/null >/dev/null 2>&1 & echo left=$!",
        ],
        Namespace::Host,
        |_, _| {},
    );
    let st = f.run(vec![c], TaskCgroupLimits::default(), |_| {});
    assert_eq!(st.containers[0].exit_code, Some(0));
    let log = f.log_text("main");
    let pid: u32 = log
        .lines()
        .find_map(|l| l.strip_prefix("left="))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in the log: {log}"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("sleep"),
        "the container's sleep (pid {pid}) outlived the task"
    );
    assert!(
        !f.cgroups.task_ids().contains(&f.task_id),
        "the task's cgroups are still there"
    );
}

/// The daemon starts a task's shim before the task is prepared. A shim whose begin
/// never comes (the daemon hung up: it died, or the task was stopped while it was being
/// prepared) exits without starting anything or writing a state.
#[test]
fn a_shim_whose_daemon_hangs_up_before_begin_starts_nothing() {
    let bin = prerequisites!();
    let f = Fixture::new(bin);
    let run_dir = f.dir.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    f.start_shim(&run_dir);
    let daemon = shim::ShimClient::connect(&run_dir).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(shim::shim_alive(&run_dir), "the shim waits for its begin");
    drop(daemon);
    let deadline = Instant::now() + Duration::from_secs(10);
    while shim::shim_alive(&run_dir) {
        assert!(Instant::now() < deadline, "the shim did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(shim::read_state(&run_dir).is_none(), "nothing was started");
    assert!(!run_dir.join(shim::SOCKET_FILE).exists());
    let log = std::fs::read_to_string(run_dir.join(shim::LOG_FILE)).unwrap();
    assert!(log.contains("not begun"), "{log}");
}
