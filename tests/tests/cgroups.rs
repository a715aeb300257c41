//! The limits berth promises, checked in the kernel's cgroup files on the host side:
//! task-level cpu and memory, the default pids limit, berth's cgroups nested beneath
//! the daemon's own (the daemon itself in a leaf on v2), and cleanup. Runs on this
//! host (v1) and in the cgroup-v2 VM (scripts/vm/tests.txt).

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_tests::daemon::{APPLETS, Daemon, DaemonOptions, busybox_layout};
use berth_tests::require_e2e;
use serde_json::{Value, json};

fn v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The task's cgroup directory for `controller` (ignored on v2).
fn task_cgroup(d: &Daemon, id: &str, controller: &str) -> PathBuf {
    let info = d.ok("Berth.Info", json!({}));
    let base = info["cgroup"]["base"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_owned();
    let root = if v2() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        Path::new("/sys/fs/cgroup").join(controller)
    };
    root.join(base).join("task").join(id)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
        .trim()
        .to_owned()
}

fn start() -> (Daemon, String) {
    let d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    (d, image)
}

#[test]
fn task_level_cpu_and_memory_limit_the_whole_task() {
    require_e2e!();
    let (d, image) = start();
    let td = d.register(json!({
        "family": "tasklimits",
        "cpu": "512",
        "memory": "48",
        "containerDefinitions": [
            {"name": "idle", "image": image, "essential": false, "entryPoint": ["sh", "-c"], "command": ["sleep 600"]},
            {"name": "hog", "image": image, "entryPoint": ["sh", "-c"], "command": ["sleep 1; exec tail /dev/zero"]}
        ]
    }));
    let id = d.run_task(&td);
    d.wait_running(&id);
    if v2() {
        let dir = task_cgroup(&d, &id, "");
        assert_eq!(read(&dir.join("memory.max")), (48u64 << 20).to_string());
        assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
    } else {
        assert_eq!(
            read(&task_cgroup(&d, &id, "memory").join("memory.limit_in_bytes")),
            (48u64 << 20).to_string()
        );
        assert_eq!(
            read(&task_cgroup(&d, &id, "cpu").join("cpu.cfs_quota_us")),
            "50000"
        );
        assert_eq!(
            read(&task_cgroup(&d, &id, "cpu").join("cpu.cfs_period_us")),
            "100000"
        );
    }
    // The hog has no limit of its own: the task's 48 MiB stop it.
    let t = d.wait_stopped(&id, Duration::from_secs(120));
    let hog = t["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hog")
        .unwrap()
        .clone();
    assert_eq!(hog["exitCode"], 137, "{t:#}");
    assert_eq!(
        hog["reason"],
        "OutOfMemoryError: Container killed due to memory usage"
    );
    assert!(
        !task_cgroup(&d, &id, "memory").exists(),
        "task cgroup left behind"
    );
    d.assert_clean();
}

#[test]
fn the_default_pids_limit_stops_fork_bombs() {
    require_e2e!();
    let d = Daemon::start_with(DaemonOptions {
        args: vec!["--pids-limit".into(), "20".into()],
        ..Default::default()
    });
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    let (max, current) = if v2() {
        ("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids.current")
    } else {
        (
            "/sys/fs/cgroup/pids/pids.max",
            "/sys/fs/cgroup/pids/pids.current",
        )
    };
    // Builtins only after the forks: at the limit, `$(…)` could not fork either.
    let script = format!(
        "read m < {max}; echo max=$m; (i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i + 1)); done); read c < {current}; echo current=$c; exit 0"
    );
    let td = d.register(json!({"family": "pids", "containerDefinitions": [
        {"name": "c", "image": image, "memory": 64, "entryPoint": ["sh", "-c"], "command": [script]}
    ]}));
    let id = d.run_task(&td);
    d.wait_stopped(&id, Duration::from_secs(120));
    let log = d.cli(&["logs", &id, "c"]);
    let out =
        String::from_utf8_lossy(&log.stdout).into_owned() + &String::from_utf8_lossy(&log.stderr);
    assert!(out.contains("max=20"), "{out}");
    assert!(
        out.contains("can't fork"),
        "forks beyond the limit should fail: {out}"
    );
    let current: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("current="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(current <= 20, "pids.current {current} above the limit");
    d.assert_clean();
}

#[test]
fn berth_cgroups_nest_beneath_the_daemon_and_are_removed() {
    require_e2e!();
    let (d, image) = start();
    let info: Value = d.ok("Berth.Info", json!({}));
    let version = info["cgroup"]["version"].as_str().unwrap().to_owned();
    assert_eq!(version, if v2() { "v2" } else { "v1" });
    for c in ["cpu", "memory", "pids"] {
        assert!(
            info["cgroup"]["controllers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == c),
            "{info:#}"
        );
    }
    let base = info["cgroup"]["base"].as_str().unwrap().to_owned();
    let pid = d.pid().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    if v2() {
        let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        assert_eq!(
            path,
            format!("{base}/daemon"),
            "the daemon is not in its leaf"
        );
    } else {
        let mem = own
            .lines()
            .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_owned()))
            .unwrap();
        assert!(
            base.starts_with(&mem),
            "base {base} is not beneath the daemon's memory cgroup {mem}"
        );
    }
    let td = d.register(json!({"family": "nest", "containerDefinitions": [
        {"name": "c", "image": image, "memory": 32, "entryPoint": ["sh", "-c"], "command": ["cat /proc/self/cgroup; sleep 600"]}
    ]}));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let dir = task_cgroup(&d, &id, "memory");
    assert!(
        dir.join("c").is_dir(),
        "container cgroup {} missing",
        dir.join("c").display()
    );
    d.kill_task(&id);
    d.wait_stopped(&id, Duration::from_secs(60));
    assert!(!dir.exists(), "{} left behind", dir.display());
    d.assert_clean();
}

#[test]
fn memory_reservation_becomes_the_soft_limit() {
    require_e2e!();
    let (d, image) = start();
    let td = d.register(json!({"family": "soft", "containerDefinitions": [
        {"name": "c", "image": image, "memoryReservation": 40, "entryPoint": ["sh", "-c"], "command": ["sleep 600"]}
    ]}));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let (file, dir) = if v2() {
        ("memory.low", task_cgroup(&d, &id, "").join("c"))
    } else {
        (
            "memory.soft_limit_in_bytes",
            task_cgroup(&d, &id, "memory").join("c"),
        )
    };
    assert_eq!(read(&dir.join(file)), (40u64 << 20).to_string());
    d.kill_task(&id);
    d.wait_stopped(&id, Duration::from_secs(60));
    d.assert_clean();
}

/// A host block device the container must not open even though it may create the node
/// (CAP_MKNOD is in Docker's default set): the device allowlist is enforced by the
/// devices cgroup on v1 and by an eBPF program on v2.
#[test]
fn containers_cannot_open_host_devices_they_create() {
    require_e2e!();
    let Some(dev) = std::fs::read_dir("/sys/dev/block")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
    else {
        eprintln!("skipping: no block device on this host");
        return;
    };
    let (major, minor) = dev.split_once(':').unwrap();
    let (d, image) = start();
    let script = format!(
        "mknod /tmp/disk b {major} {minor} && echo created; dd if=/tmp/disk of=/dev/null bs=1 count=1 2>&1; echo rc=$?"
    );
    let td = d.register(json!({"family": "devices", "containerDefinitions": [
        {"name": "c", "image": image, "memory": 32, "entryPoint": ["sh", "-c"], "command": [script]}
    ]}));
    let id = d.run_task(&td);
    d.wait_stopped(&id, Duration::from_secs(120));
    let log = d.cli(&["logs", &id, "c"]);
    let out =
        String::from_utf8_lossy(&log.stdout).into_owned() + &String::from_utf8_lossy(&log.stderr);
    assert!(out.contains("created"), "{out}");
    assert!(
        out.contains("Operation not permitted"),
        "the container read a host block device {dev}:\n{out}"
    );
    assert!(!out.contains("rc=0"), "{out}");
    d.assert_clean();
}
