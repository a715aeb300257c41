//! The daemon dies (`kill -9`) or stops (SIGTERM) at bad moments and starts again:
//! running tasks keep running and stay manageable, exits that happened while it was
//! down are recorded with their exit codes, half-started tasks end STOPPED with a
//! reason, a RunTask retry with the same clientToken returns the same tasks, and
//! nothing leaks once everything is stopped.

mod api_support;

use std::path::Path;
use std::time::{Duration, Instant};

use api_support::{
    HostRegistry, alive, container, setup, setup_with, task_arns, task_id, wait_for,
    with_host_registry,
};
use berth_tests::daemon::{APPLETS, Daemon};
use berth_tests::images::ImageBuilder;
use berth_tests::proxy::Rule;
use berth_tests::require_e2e;
use serde_json::{Value, json};

/// A container that exits 0 on SIGTERM (so stopping it is quick).
fn sleeper(name: &str, image: &str) -> Value {
    container(
        name,
        image,
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    )
}

fn pid_of(t: &Value) -> i64 {
    t["containers"][0]["runtimeId"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no runtimeId pid: {t:#}"))
}

/// Every task reaches RUNNING or STOPPED, and STOPPED ones say why.
fn settle(d: &Daemon, ids: &[String]) -> Vec<Value> {
    ids.iter()
        .map(|id| {
            let t = d.wait_task(id, Duration::from_secs(60), "RUNNING or STOPPED", |t| {
                t["lastStatus"] == "RUNNING" || t["lastStatus"] == "STOPPED"
            });
            if t["lastStatus"] == "STOPPED" {
                assert!(t["stopCode"].is_string(), "{t:#}");
                assert!(
                    !t["stoppedReason"].as_str().unwrap_or_default().is_empty(),
                    "{t:#}"
                );
                assert!(t["stoppedAt"].is_number(), "{t:#}");
            }
            t
        })
        .collect()
}

fn stop_all(d: &Daemon, ids: &[String]) {
    for id in ids {
        d.kill_task(id);
    }
    for id in ids {
        d.wait_stopped(id, Duration::from_secs(30));
    }
}

#[test]
fn kill9_while_tasks_run_loses_nothing_and_exits_while_down_are_recorded() {
    require_e2e!();
    let (mut d, image) = setup();
    d.register(json!({"family": "long", "containerDefinitions": [sleeper("main", &image)]}));
    d.register(api_support::sh_def("brief", &image, "sleep 3; exit 5"));
    let mut hog = container("hog", &image, "sleep 3; exec tail /dev/zero");
    hog["memory"] = json!(16);
    d.register(json!({"family": "oomlater", "containerDefinitions": [hog]}));

    let run = d.ok(
        "RunTask",
        json!({"taskDefinition": "long", "count": 2, "clientToken": "before-crash"}),
    );
    let long: Vec<String> = task_arns(&run).iter().map(|a| task_id(a)).collect();
    let brief = d.run_task("brief");
    let oom = d.run_task("oomlater");
    let pids: Vec<i64> = long.iter().map(|id| pid_of(&d.wait_running(id))).collect();
    let brief_pid = pid_of(&d.wait_running(&brief));
    let oom_pid = pid_of(&d.wait_running(&oom));

    d.kill9();
    // While berth is down, the brief task exits 5 and the hog is OOM-killed.
    wait_for(Duration::from_secs(30), "the short tasks to exit", || {
        (!alive(brief_pid) && !alive(oom_pid)).then_some(())
    });
    for p in &pids {
        assert!(alive(*p), "a task process died with the daemon");
    }
    d.restart();

    for (id, pid) in long.iter().zip(&pids) {
        let t = d.describe(id);
        assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
        assert_eq!(pid_of(&t), *pid, "the task was restarted instead of kept");
    }
    let t = d.wait_stopped(&brief, Duration::from_secs(30));
    assert_eq!(t["containers"][0]["exitCode"], 5, "{t:#}");
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    let t = d.wait_stopped(&oom, Duration::from_secs(30));
    assert_eq!(t["containers"][0]["exitCode"], 137, "{t:#}");
    assert_eq!(
        t["containers"][0]["reason"],
        "OutOfMemoryError: Container killed due to memory usage"
    );

    // The retry of the RunTask that was answered before the crash.
    let again = d.ok(
        "RunTask",
        json!({"taskDefinition": "long", "count": 2, "clientToken": "before-crash"}),
    );
    assert_eq!(task_arns(&again), task_arns(&run));
    // The surviving tasks are managed: listed, described, stopped with a reason.
    let v = d.ok("ListTasks", json!({"family": "long"}));
    assert_eq!(v["taskArns"].as_array().unwrap().len(), 2, "{v}");
    d.ok(
        "StopTask",
        json!({"task": long[0], "reason": "after the crash"}),
    );
    let t = d.wait_stopped(&long[0], Duration::from_secs(30));
    assert_eq!(t["stoppedReason"], "after the crash");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}");
    assert!(!alive(pids[0]));
    // A second crash with one task still running changes nothing either.
    d.kill9();
    d.restart();
    assert_eq!(d.describe(&long[1])["lastStatus"], "RUNNING");
    stop_all(&d, &long[1..]);
    d.assert_clean();
}

/// The daemon's spare shims (started ahead of any task, not yet taken).
fn spares(d: &Daemon) -> Vec<u32> {
    let spare_dir = d.run_root().join("spare-shims");
    d.shims()
        .into_iter()
        .filter(|s| s.work_dir.starts_with(&spare_dir))
        .map(|s| s.pid)
        .collect()
}

#[test]
fn a_spare_shim_becomes_the_next_tasks_shim_and_a_restarted_daemon_finds_it() {
    require_e2e!();
    let (mut d, image) = setup();
    d.register(json!({"family": "long", "containerDefinitions": [sleeper("main", &image)]}));
    let first = wait_for(Duration::from_secs(10), "a spare shim", || {
        let s = spares(&d);
        (s.len() == 1).then(|| s[0])
    });

    let id = d.run_task("long");
    let pid = pid_of(&d.wait_running(&id));
    // The task's shim is the spare that was waiting, working in the task's directory
    // (its command line still names the spare's).
    let run_dir = d.run_root().join("tasks").join(&id);
    let shim: u32 = std::fs::read_to_string(run_dir.join("shim.pid"))
        .expect("shim.pid")
        .trim()
        .parse()
        .expect("a pid");
    assert_eq!(shim, first, "the task did not take the spare shim");
    let taken = d
        .shims()
        .into_iter()
        .find(|s| s.pid == shim)
        .expect("the task's shim runs");
    assert!(
        taken.dir.starts_with(d.run_root().join("spare-shims")),
        "{taken:?}"
    );
    assert_eq!(taken.work_dir, run_dir, "{taken:?}");
    // A new spare waits for the next task.
    let second = wait_for(Duration::from_secs(10), "the next spare shim", || {
        let s = spares(&d);
        (s.len() == 1 && s[0] != first).then(|| s[0])
    });

    // The spare goes with the daemon; the task's shim stays and is found again.
    d.kill9();
    wait_for(Duration::from_secs(10), "the spare shim to exit", || {
        exited(second).then_some(())
    });
    assert!(
        alive(i64::from(shim)),
        "the task's shim died with the daemon"
    );
    d.restart();
    let t = d.describe(&id);
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    assert_eq!(pid_of(&t), pid, "the task was restarted instead of kept");
    wait_for(
        Duration::from_secs(10),
        "a spare shim of the new daemon",
        || (spares(&d).len() == 1).then_some(()),
    );
    d.ok("StopTask", json!({"task": id, "reason": "done"}));
    let t = d.wait_stopped(&id, Duration::from_secs(30));
    assert_eq!(t["stoppedReason"], "done", "{t:#}");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}");
    assert!(exited(shim), "the task's shim outlived its task");
    d.assert_clean();
}

/// Whether `pid` is gone, or a zombie that the host's init has not reaped yet.
fn exited(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.is_empty()
        || stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
}

#[test]
fn kill9_while_tasks_are_starting_leaves_every_task_in_a_defined_state() {
    require_e2e!();
    let (mut d, image) = setup();
    d.register(json!({"family": "burst", "containerDefinitions": [sleeper("main", &image)]}));
    // Load the image once, so the burst spends its time in provisioning.
    let warm = d.run_task("burst");
    d.wait_running(&warm);
    let mut all = vec![warm];
    for (round, delay_ms) in [0u64, 40, 150, 400].into_iter().enumerate() {
        let token = format!("burst-{round}");
        let run = d.ok(
            "RunTask",
            json!({"taskDefinition": "burst", "count": 10, "clientToken": token}),
        );
        let ids: Vec<String> = task_arns(&run).iter().map(|a| task_id(a)).collect();
        assert_eq!(ids.len(), 10);
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.kill9();
        d.restart();
        let tasks = settle(&d, &ids);
        let running = tasks
            .iter()
            .filter(|t| t["lastStatus"] == "RUNNING")
            .count();
        for t in &tasks {
            if t["lastStatus"] == "RUNNING" {
                assert!(alive(pid_of(t)), "{t:#}");
            } else {
                assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
            }
        }
        eprintln!("round {round} (kill after {delay_ms} ms): {running}/10 running");
        // The same RunTask after the restart answers with the same tasks.
        let again = d.ok(
            "RunTask",
            json!({"taskDefinition": "burst", "count": 10, "clientToken": token}),
        );
        assert_eq!(task_arns(&again), task_arns(&run));
        all.extend(ids);
    }
    stop_all(&d, &all);
    d.assert_clean();
}

/// The task's shim is started while the task is still being prepared, and waits for the
/// daemon's go. A StopTask during the image pull stops the task before it began: the
/// waiting shim exits without starting anything, and nothing is left behind.
#[test]
fn stop_task_while_the_image_pull_is_in_flight_stops_it_at_once_before_it_begins() {
    require_e2e!();
    let (d, _image) = setup_with(with_host_registry());
    let reg = HostRegistry::start(&d.host);
    let image = ImageBuilder::busybox(APPLETS).cmd(&["sh"]).build();
    let slow_ref = reg.push(&d.host, &image, "stop/slow:v1");
    // Blobs stall for longer than the stop may take: StopTask must not wait for the pull.
    reg.proxy
        .add_rule(Rule::path_contains("/blobs/").delay(Duration::from_secs(60)));
    d.register(json!({"family": "slow", "containerDefinitions": [sleeper("main", &slow_ref)]}));
    let id = d.run_task("slow");
    wait_for(
        Duration::from_secs(30),
        "the pull to reach the blobs",
        || {
            reg.proxy
                .requests()
                .iter()
                .any(|r| r.path.contains("/blobs/"))
                .then_some(())
        },
    );
    let pid_file = d.run_root().join("tasks").join(&id).join("shim.pid");
    let shim_pid = wait_for(
        Duration::from_secs(10),
        "the shim started alongside the pull",
        || std::fs::read_to_string(&pid_file).ok(),
    );
    let asked = std::time::Instant::now();
    d.ok("StopTask", json!({"task": id, "reason": "changed my mind"}));
    let t = d.wait_stopped(&id, Duration::from_secs(15));
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "the stop waited for the pull: {:?}",
        asked.elapsed()
    );
    reg.proxy.clear_rules();
    assert_eq!(t["stopCode"], "UserInitiated", "{t:#}");
    assert_eq!(t["stoppedReason"], "changed my mind", "{t:#}");
    assert!(t["containers"][0]["exitCode"].is_null(), "{t:#}");
    // Gone, or a zombie that the host's init has not reaped yet.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", shim_pid.trim()));
    assert!(
        stat.is_err()
            || stat.is_ok_and(|s| s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')),
        "the waiting shim {} outlived its task\n--- daemon log ---\n{}",
        shim_pid.trim(),
        d.log()
    );
    d.assert_clean();
}

#[test]
fn kill9_while_an_image_pull_is_in_flight_stops_the_half_started_task_with_a_reason() {
    require_e2e!();
    let (mut d, _image) = setup_with(with_host_registry());
    let reg = HostRegistry::start(&d.host);
    let image = ImageBuilder::busybox(APPLETS).cmd(&["sh"]).build();
    let slow_ref = reg.push(&d.host, &image, "crash/slow:v1");
    let other = ImageBuilder::busybox(&["sh", "sleep", "true"])
        .cmd(&["sh"])
        .build();
    let other_ref = reg.push(&d.host, &other, "crash/other:v1");
    // Blobs stall: the pull is in flight when berth dies.
    reg.proxy
        .add_rule(Rule::path_contains("/blobs/").delay(Duration::from_secs(60)));
    d.register(json!({"family": "slow", "containerDefinitions": [sleeper("main", &slow_ref)]}));
    let id = d.run_task("slow");
    // A pull through the CLI is in flight too.
    let mut pull = std::process::Command::new(berth_tests::daemon::berth_bin().unwrap())
        .arg("--data-root")
        .arg(d.data_root())
        .arg("--run-root")
        .arg(d.run_root())
        .args(["pull", &other_ref])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "both pulls to reach the blobs",
        || {
            let blobs = reg
                .proxy
                .requests()
                .iter()
                .filter(|r| r.path.contains("/blobs/"))
                .map(|r| {
                    r.path
                        .split("/blobs/")
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect::<std::collections::BTreeSet<_>>();
            (blobs.len() >= 2).then_some(())
        },
    );
    let t = d.describe(&id);
    assert_eq!(t["lastStatus"], "ACTIVATING", "{t:#}");
    assert!(t["pullStartedAt"].is_number());

    d.kill9();
    let _ = pull.wait();
    reg.proxy.clear_rules();
    d.restart();
    let t = d.wait_stopped(&id, Duration::from_secs(30));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(reason.contains("restart"), "{reason}");
    // The interrupted pulls left nothing half-done behind: the images pull and run.
    let out = d.cli(&["pull", &other_ref]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id2 = d.run_task("slow");
    let t = d.wait_running(&id2);
    assert_eq!(
        t["containers"][0]["imageDigest"], image.manifest_digest,
        "{t:#}"
    );
    stop_all(&d, &[id2]);
    d.assert_clean();
}

#[test]
fn kill9_while_a_task_waits_for_its_registry_then_the_registry_recovers() {
    require_e2e!();
    let (mut d, _image) = setup_with(with_host_registry());
    let reg = HostRegistry::start(&d.host);
    let image = ImageBuilder::busybox(APPLETS).cmd(&["sh"]).build();
    let reference = reg.push(&d.host, &image, "crash/manifest:v1");
    // The manifest request itself stalls (a registry that accepted the connection and
    // went quiet).
    reg.proxy
        .add_rule(Rule::path_contains("/manifests/").delay(Duration::from_secs(60)));
    d.register(json!({"family": "stall", "containerDefinitions": [sleeper("main", &reference)]}));
    let run = d.ok(
        "RunTask",
        json!({"taskDefinition": "stall", "clientToken": "stalled"}),
    );
    let id = task_id(&task_arns(&run)[0]);
    wait_for(Duration::from_secs(30), "the manifest request", || {
        reg.proxy
            .requests()
            .iter()
            .any(|r| r.path.contains("/manifests/"))
            .then_some(())
    });
    d.kill9();
    reg.proxy.clear_rules();
    d.restart();
    let t = d.wait_stopped(&id, Duration::from_secs(30));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    // Same token, same (stopped) task; a new RunTask starts fine.
    let again = d.ok(
        "RunTask",
        json!({"taskDefinition": "stall", "clientToken": "stalled"}),
    );
    assert_eq!(task_arns(&again), task_arns(&run));
    let id2 = d.run_task("stall");
    d.wait_running(&id2);
    stop_all(&d, &[id2]);
    d.assert_clean();
}

#[test]
fn sigterm_leaves_tasks_running_and_a_restarted_daemon_manages_them() {
    require_e2e!();
    let (mut d, image) = setup();
    d.register(json!({"family": "keep", "containerDefinitions": [sleeper("main", &image)]}));
    d.register(api_support::sh_def("finish", &image, "sleep 2; exit 9"));
    let keep = d.run_task("keep");
    let finish = d.run_task("finish");
    let pid = pid_of(&d.wait_running(&keep));
    let fpid = pid_of(&d.wait_running(&finish));
    let asked = Instant::now();
    d.terminate();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?}",
        asked.elapsed()
    );
    assert!(d.log().contains("tasks keep running"), "{}", d.log());
    assert!(!d.run_root().join("berth.sock").exists());
    assert!(alive(pid), "SIGTERM of the daemon killed a task");
    wait_for(
        Duration::from_secs(20),
        "the finishing task to exit",
        || (!alive(fpid)).then_some(()),
    );
    d.restart();
    let t = d.describe(&keep);
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    assert_eq!(pid_of(&t), pid);
    let t = d.wait_stopped(&finish, Duration::from_secs(30));
    assert_eq!(t["containers"][0]["exitCode"], 9, "{t:#}");
    d.ok("StopTask", json!({"task": keep, "reason": "managed again"}));
    let t = d.wait_stopped(&keep, Duration::from_secs(30));
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "managed again");
    assert_eq!(t["containers"][0]["exitCode"], 0);
    d.assert_clean();
}

/// Right after a crash, a process the dead daemon was spawning (a vfork child that has not
/// exec'd yet) still holds the daemon's descriptors for a moment: the data-root lock, and
/// the listening socket, where connections queue and nobody answers. A restarted daemon
/// waits for the lock and takes over a socket nobody answers on, instead of refusing to
/// start (and needing a second restart).
#[test]
fn a_restarted_daemon_waits_out_what_the_dead_one_still_holds() {
    require_e2e!();
    let mut d = Daemon::start();
    d.kill9();
    let socket = d.run_root().join("berth.sock");
    let _ = std::fs::remove_file(&socket);
    let silent = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(d.data_root().join("daemon.lock"))
        .unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .unwrap();
    // Let go as that process does when it execs (sooner in reality).
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
        std::thread::sleep(Duration::from_millis(1200));
        drop(silent);
    });
    // Panics if the daemon exits while starting.
    d.restart();
    release.join().unwrap();
    d.ok("ListClusters", json!({}));
    d.assert_clean();
}

/// A second daemon pointed at a run root whose daemon answers refuses to start, and does so
/// before it touches anything there (the sealed executable's mount, the task cgroups and
/// network it would reconcile): the first daemon keeps serving.
#[test]
fn a_second_daemon_on_the_same_run_root_is_refused_before_it_touches_it() {
    require_e2e!();
    let d = Daemon::start();
    let run_root = d.run_root().display().to_string();
    let mounts_under_run_root = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&run_root))
            .count()
    };
    let before = mounts_under_run_root();
    let data2 = d.scratch().join("data2");
    let cgroup_name = format!("berth-e2e-second-{}", std::process::id());
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", d.host.path().display()))
        .arg("--")
        .arg(berth_tests::daemon::berth_bin().unwrap())
        .args(["--data-root", &data2.display().to_string()])
        .args(["--run-root", &run_root])
        .args(["daemon", "--listen", "none", "--cgroup-name", &cgroup_name])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("another berth daemon answers"), "{stderr}");
    assert_eq!(mounts_under_run_root(), before, "{stderr}");
    let made = cgroups_named(Path::new("/sys/fs/cgroup"), &cgroup_name, 8);
    assert!(made.is_empty(), "the refused daemon made cgroups: {made:?}");
    d.ok("ListClusters", json!({}));
    d.assert_clean();
}

/// The directories named `name` under `dir`, at most `depth` levels down.
fn cgroups_named(dir: &Path, name: &str, depth: usize) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if depth == 0 {
        return found;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if e.file_name() == name {
                found.push(e.path());
            } else {
                found.extend(cgroups_named(&e.path(), name, depth - 1));
            }
        }
    }
    found
}
