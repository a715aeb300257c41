//! Running ECS task definitions through `berth daemon`: the process settings, exit
//! semantics, cgroup limits and cleanup of issue 3, on the real kernel.

use std::time::{Duration, Instant};

use berth_tests::daemon::{APPLETS, Daemon, busybox_layout};
use berth_tests::images::{ImageBuilder, Layer};
use berth_tests::require_e2e;
use serde_json::{Value, json};

fn setup() -> (Daemon, String) {
    let d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    (d, image)
}

fn container(name: &str, image: &str, command: &str) -> Value {
    json!({"name": name, "image": image, "memory": 64, "entryPoint": ["sh", "-c"], "command": [command]})
}

fn cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

#[test]
fn the_seed_sample_web_page_is_served_on_the_published_port() {
    require_e2e!();
    let (d, image) = setup();
    // The ECS sample task from the seed documents, on busybox httpd.
    let td = d.register(json!({
        "family": "sample-fargate-app",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{
            "name": "fargate-app",
            "image": image,
            "essential": true,
            "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
            "entryPoint": ["sh", "-c"],
            "command": ["mkdir -p /www && echo '<html><head><title>Amazon ECS Sample App</title></head><body><h1>Amazon ECS Sample App</h1><p>Your application is now running on a container in Amazon ECS.</p></body></html>' > /www/index.html && httpd -f -p 80 -h /www"]
        }]
    }));
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    assert_eq!(t["containers"][0]["networkBindings"][0]["hostPort"], 80);
    let mut page = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let out = d
            .host
            .output(
                "busybox",
                &["wget", "-q", "-O", "-", "http://127.0.0.1:80/"],
            )
            .unwrap();
        page = String::from_utf8_lossy(&out.stdout).into_owned();
        if page.contains("Amazon ECS Sample App") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        page.contains("Your application is now running"),
        "page: {page:?}\n{}",
        d.log()
    );
    d.kill_task(&id);
    d.wait_stopped(&id, Duration::from_secs(30));
    d.assert_clean();
}

#[test]
fn process_settings_from_the_definition_are_applied_inside_the_container() {
    require_e2e!();
    let (d, image) = setup();
    let td = d.register(json!({
        "family": "settings",
        "containerDefinitions": [{
            "name": "c",
            "image": image,
            "memory": 64,
            "entryPoint": ["sh", "-c"],
            "command": ["echo cwd=$(pwd); echo uid=$(id -u) gid=$(id -g); echo greeting=$GREETING; echo host=$(hostname); touch /probe 2>/dev/null && echo rw || echo ro; touch /tmp/x && echo tmp-ok"],
            "environment": [{"name": "GREETING", "value": "hello world"}],
            "workingDirectory": "/tmp",
            "user": "nobody",
            "readonlyRootFilesystem": true,
            "linuxParameters": {"tmpfs": [{"containerPath": "/tmp", "size": 16}]}
        }]
    }));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}");
    let out = d.logs(&id, "c");
    assert!(out.contains("cwd=/tmp"), "{out}");
    assert!(out.contains("uid=65534 gid=65534"), "{out}");
    assert!(out.contains("greeting=hello world"), "{out}");
    assert!(out.contains("host=ip-"), "{out}");
    assert!(
        out.contains("\nro") || out.starts_with("ro"),
        "root should be read-only: {out}"
    );
    assert!(out.contains("tmp-ok"), "{out}");
    d.assert_clean();
}

fn effective_caps(d: &Daemon, family: &str, extra: Value) -> (Value, String) {
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    let mut c = container("c", &image, "grep CapEff /proc/self/status");
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let td = d.register(json!({"family": family, "containerDefinitions": [c]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    let out = d.logs(&id, "c");
    (t, out)
}

#[test]
fn privileged_and_added_capabilities_stay_within_the_hosts_bounding_set() {
    require_e2e!();
    let d = Daemon::start();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    let eff = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
            .unwrap_or_else(|| panic!("no CapEff in {out:?}"))
    };
    // Docker's default set.
    let (t, out) = effective_caps(&d, "caps-default", json!({}));
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}\n{out}");
    assert_eq!(eff(&out), 0xa80425fb & bounding, "{out}");
    // A privileged container gets everything the host lets berth hold.
    let (t, out) = effective_caps(&d, "caps-privileged", json!({"privileged": true}));
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}\n{out}");
    assert_eq!(eff(&out), bounding, "{out}");
    // NET_ADMIN (bit 12) added by name.
    let (t, out) = effective_caps(
        &d,
        "caps-add",
        json!({"linuxParameters": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]}}}),
    );
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}\n{out}");
    assert_eq!(eff(&out), (0xa80425fb | 1 << 12) & !(1 << 27) & bounding);
    // A capability the host withholds from berth is refused by name, not with EPERM.
    if bounding & (1 << 24) == 0 {
        let (t, _) = effective_caps(
            &d,
            "caps-missing",
            json!({"linuxParameters": {"capabilities": {"add": ["SYS_RESOURCE"]}}}),
        );
        assert_eq!(t["stopCode"], "TaskFailedToStart");
        let reason = t["stoppedReason"].as_str().unwrap_or_default();
        assert!(reason.contains("CAP_SYS_RESOURCE"), "{t:#}");
    }
    d.assert_clean();
}

#[test]
fn the_default_seccomp_profile_filters_containers_and_their_health_checks() {
    require_e2e!();
    let (d, image) = setup();
    let probe = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; \
                 busybox unshare -n true 2>/dev/null && echo unshare-allowed || echo unshare-refused; \
                 sleep 600";
    let mut c = container("c", &image, probe);
    // Healthy only where the check's own process runs filtered.
    c["healthCheck"] = json!({
        "command": ["CMD-SHELL", "grep -q '^Seccomp:[[:space:]]*2' /proc/self/status"],
        "interval": 5, "timeout": 2, "retries": 1
    });
    let p = container("p", &image, probe);
    let mut p = p;
    p["privileged"] = json!(true);
    p["essential"] = json!(false);
    let td = d.register(json!({"family": "seccomp", "containerDefinitions": [c, p]}));
    let id = d.run_task(&td);
    let t = d.wait_task(&id, Duration::from_secs(60), "healthy", |t| {
        t["containers"][0]["healthStatus"] == "HEALTHY"
    });
    let wait_logs = |name: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = d.logs(&id, name);
            if out.contains("unshare-") || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let out = wait_logs("c");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}\n{t:#}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains("unshare-refused"),
        "a namespace-creating call got through: {out}"
    );
    // A privileged container runs without the profile, as with Docker.
    let out = wait_logs("p");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("unshare-allowed"), "{out}");
    d.kill_task(&id);
    d.wait_stopped(&id, Duration::from_secs(30));
    d.assert_clean();
}

#[test]
fn exit_codes_propagate_and_essential_exit_stops_the_task() {
    require_e2e!();
    let (d, image) = setup();
    let td = d.register(json!({"family": "exit7", "containerDefinitions": [container("main", &image, "echo bye; exit 7")]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 7);
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(t["desiredStatus"], "STOPPED");
    for k in [
        "createdAt",
        "pullStartedAt",
        "pullStoppedAt",
        "startedAt",
        "stoppingAt",
        "executionStoppedAt",
        "stoppedAt",
    ] {
        assert!(t[k].is_number(), "{k} missing: {t:#}");
    }
    let order: Vec<f64> = [
        "createdAt",
        "pullStartedAt",
        "pullStoppedAt",
        "startedAt",
        "stoppingAt",
        "stoppedAt",
    ]
    .iter()
    .map(|k| t[k].as_f64().unwrap())
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "timestamps out of order: {order:?}"
    );
    // `berth run` in the foreground exits with the essential container's code.
    let out = d.cli(&["run", "exit7"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("main | bye"));
    d.assert_clean();
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed_with_the_ecs_reason() {
    require_e2e!();
    let (d, image) = setup();
    let mut c = container("hog", &image, "exec tail /dev/zero");
    c["memory"] = json!(16);
    let td = d.register(json!({"family": "oom", "containerDefinitions": [c]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 137, "{t:#}");
    assert_eq!(
        t["containers"][0]["reason"],
        "OutOfMemoryError: Container killed due to memory usage"
    );
    d.assert_clean();
}

#[test]
fn cpu_shares_split_a_contended_cpu_about_four_to_one() {
    require_e2e!();
    let (d, image) = setup();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let usage = if cgroup_v2() {
        "$(grep usage_usec /sys/fs/cgroup/cpu.stat | cut -d' ' -f2)"
    } else {
        "$(( $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage) / 1000 ))"
    };
    // Each container runs one busy loop pinned to CPU 0, so the two compete for that CPU
    // and the scheduler splits it by weight, whatever else (other tests) runs on the
    // host: other load slows both alike. A barrier on a shared volume lines the two
    // measurement windows up (container starts can be seconds apart under emulation).
    let script = |me: &str| {
        format!(
            "touch /sync/{me}; while [ ! -f /sync/big ] || [ ! -f /sync/small ]; do sleep 0.1; done; \
             taskset -c 0 sh -c 'while :; do :; done' & sleep 1; a={usage}; sleep 4; b={usage}; \
             echo usage=$((b - a)); kill $(jobs -p) 2>/dev/null; exit 0"
        )
    };
    let sync = json!([{"sourceVolume": "sync", "containerPath": "/sync"}]);
    // 4:1, scaled to fit the host's registered CPU units (1024 per CPU).
    let units = 1024 * cpus as u64;
    let mut big = container("big", &image, &script("big"));
    big["cpu"] = json!(units * 3 / 4);
    big["essential"] = json!(false);
    big["mountPoints"] = sync.clone();
    let mut small = container("small", &image, &script("small"));
    small["cpu"] = json!(units * 3 / 16);
    small["mountPoints"] = sync;
    let td = d.register(json!({"family": "shares", "containerDefinitions": [big, small], "volumes": [{"name": "sync"}]}));
    let id = d.run_task(&td);
    d.wait_stopped(&id, Duration::from_secs(180));
    let parse = |name: &str| -> f64 {
        let out = d.logs(&id, name);
        out.lines()
            .find_map(|l| l.strip_prefix("usage="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name}: {out}"))
    };
    let ratio = parse("big") / parse("small");
    assert!(
        (3.0..=5.0).contains(&ratio),
        "cpu time ratio {ratio:.2} outside 3..5"
    );
    d.assert_clean();
}

#[test]
fn memory_limits_and_reservations_are_visible_in_the_container_cgroup() {
    require_e2e!();
    let (d, image) = setup();
    let files = if cgroup_v2() {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.low /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/pids.max"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max"
    };
    let mut c = container("c", &image, files);
    c["memory"] = json!(96);
    c["memoryReservation"] = json!(48);
    c["cpu"] = json!(512);
    let td = d.register(
        json!({"family": "limits", "memory": "256", "cpu": "1024", "containerDefinitions": [c]}),
    );
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 0, "{}", d.logs(&id, "c"));
    let out = d.logs(&id, "c");
    let lines: Vec<&str> = out.lines().collect();
    let cpu = if cgroup_v2() { "50" } else { "512" };
    assert_eq!(
        lines,
        [
            (96u64 << 20).to_string().as_str(),
            (48u64 << 20).to_string().as_str(),
            cpu,
            "4096"
        ],
        "{out}"
    );
    d.assert_clean();
}

#[test]
fn a_container_ignoring_sigterm_is_killed_after_its_stop_timeout_not_before() {
    require_e2e!();
    let (d, image) = setup();
    let mut c = container(
        "stubborn",
        &image,
        "trap '' TERM; echo ready; while true; do sleep 1; done",
    );
    c["stopTimeout"] = json!(3);
    let td = d.register(json!({"family": "stubborn", "containerDefinitions": [c]}));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let asked = Instant::now();
    d.ok(
        "StopTask",
        json!({"task": id, "reason": "testing stopTimeout"}),
    );
    let t = d.wait_stopped(&id, Duration::from_secs(30));
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "killed before stopTimeout: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(t["containers"][0]["exitCode"], 137);
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "testing stopTimeout");
    d.assert_clean();
}

#[test]
fn a_non_essential_container_exit_leaves_the_task_running() {
    require_e2e!();
    let (d, image) = setup();
    let mut side = container("side", &image, "exit 3");
    side["essential"] = json!(false);
    let main = container("main", &image, "sleep 600");
    let td = d.register(json!({"family": "nonessential", "containerDefinitions": [side, main]}));
    let id = d.run_task(&td);
    let t = d.wait_task(&id, Duration::from_secs(60), "side stopped", |t| {
        t["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "side" && c["lastStatus"] == "STOPPED")
    });
    std::thread::sleep(Duration::from_millis(500));
    let t2 = d.describe(&id);
    assert_eq!(t2["lastStatus"], "RUNNING", "{t:#}");
    let side = t2["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "side")
        .unwrap()
        .clone();
    assert_eq!(side["exitCode"], 3);
    d.kill_task(&id);
    d.wait_stopped(&id, Duration::from_secs(30));
    d.assert_clean();
}

#[test]
fn a_bad_entrypoint_fails_the_task_to_start() {
    require_e2e!();
    let (d, image) = setup();
    let td = d.register(json!({"family": "badentry", "containerDefinitions": [{"name": "c", "image": image, "memory": 32, "entryPoint": ["/no/such/program"]}]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.starts_with("CannotStartContainerError:") && reason.contains("/no/such/program"),
        "{reason}"
    );
    d.assert_clean();
}

#[test]
fn an_image_that_cannot_be_pulled_fails_the_task_with_the_pull_error() {
    require_e2e!();
    let (d, _image) = setup();
    let td = d.register(json!({"family": "nopull", "containerDefinitions": [{"name": "c", "image": "oci-layout:/nonexistent/layout:latest", "memory": 32}]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .starts_with("CannotPullContainerError:"),
        "{t:#}"
    );
    d.assert_clean();
}

#[test]
fn awslogs_group_and_stream_names_find_the_container_log() {
    require_e2e!();
    let (d, image) = setup();
    let mut c = container("app", &image, "echo to-cloudwatch");
    c["logConfiguration"] = json!({"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/demo", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs"}});
    let td = d.register(json!({"family": "awslogs", "containerDefinitions": [c]}));
    let id = d.run_task(&td);
    d.wait_stopped(&id, Duration::from_secs(60));
    let stream = format!("ecs/app/{id}");
    let out = d.cli(&["logs", "/ecs/demo", "--stream", &stream]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "to-cloudwatch");
    let missing = d.cli(&["logs", "/ecs/demo", "--stream", "ecs/app/nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("log stream does not exist"));
    d.assert_clean();
}

#[test]
fn a_pseudo_terminal_container_writes_to_a_tty_whose_output_is_logged_and_exec_still_works() {
    require_e2e!();
    let (d, image) = setup();
    let mut tty = container(
        "tty",
        &image,
        "test -t 1 && echo stdout-is-a-tty; test -t 0 && echo stdin-is-a-tty; echo to-stderr >&2; touch /tmp/up; sleep 600",
    );
    tty["pseudoTerminal"] = json!(true);
    tty["stopTimeout"] = json!(2);
    tty["healthCheck"] = json!({
        "command": ["CMD-SHELL", "test -f /tmp/up"],
        "interval": 5, "timeout": 2, "retries": 3
    });
    let mut plain = container("plain", &image, "test -t 1 || echo stdout-is-a-pipe");
    plain["essential"] = json!(false);
    let td = d.register(json!({"family": "pty", "containerDefinitions": [tty, plain]}));
    let id = d.run_task(&td);
    let t = d.wait_task(&id, Duration::from_secs(60), "tty healthy", |t| {
        t["containers"][0]["healthStatus"] == "HEALTHY" || t["lastStatus"] == "STOPPED"
    });
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    let out = d.logs(&id, "tty");
    assert!(out.contains("stdout-is-a-tty"), "{out}");
    assert!(out.contains("stdin-is-a-tty"), "{out}");
    // One terminal carries both streams, as with `docker run -t`.
    assert!(out.contains("to-stderr"), "{out}");
    let out = d.logs(&id, "plain");
    assert!(out.contains("stdout-is-a-pipe"), "{out}");
    d.ok("StopTask", json!({"task": id}));
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 137, "{t:#}");
    d.assert_clean();
}

#[test]
fn an_interactive_container_keeps_an_open_stdin_and_the_others_read_end_of_file() {
    require_e2e!();
    let (d, image) = setup();
    // `docker run -i`: stdin is a pipe that stays open, so `read` waits instead of
    // returning at once.
    let mut open = container(
        "open",
        &image,
        "echo waiting; read line; echo read-returned-$?; sleep 600",
    );
    open["interactive"] = json!(true);
    open["stopTimeout"] = json!(2);
    let mut closed = container("closed", &image, "read line || echo stdin-at-eof");
    closed["essential"] = json!(false);
    let td = d.register(json!({"family": "stdin", "containerDefinitions": [open, closed]}));
    let id = d.run_task(&td);
    let t = d.wait_task(&id, Duration::from_secs(60), "closed stopped", |t| {
        t["containers"][1]["lastStatus"] == "STOPPED" || t["lastStatus"] == "STOPPED"
    });
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    assert_eq!(t["containers"][1]["exitCode"], 0, "{t:#}");
    assert!(d.logs(&id, "closed").contains("stdin-at-eof"));
    std::thread::sleep(Duration::from_millis(500));
    let out = d.logs(&id, "open");
    assert!(out.contains("waiting"), "{out}");
    assert!(!out.contains("read-returned"), "{out}");
    assert_eq!(d.describe(&id)["containers"][0]["lastStatus"], "RUNNING");
    d.ok("StopTask", json!({"task": id}));
    d.wait_stopped(&id, Duration::from_secs(60));
    d.assert_clean();
}

/// The shim's resident memory, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn an_idle_shim_drops_what_starting_the_container_faulted_in_and_still_stops_the_task() {
    require_e2e!();
    let (d, image) = setup();
    let mut main = container("main", &image, "sleep 600");
    main["stopTimeout"] = json!(2);
    let td = d.register(json!({"family": "idle-shim", "containerDefinitions": [main]}));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let pid: u32 = std::fs::read_to_string(d.run_root().join("tasks").join(&id).join("shim.pid"))
        .expect("shim.pid")
        .trim()
        .parse()
        .expect("a pid");
    // Right after a start the shim holds 8-10 MiB of the berth binary; idle, about 2.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rss = rss_kib(pid).expect("the shim runs");
    while rss > 4096 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        rss = rss_kib(pid).expect("the shim runs");
    }
    assert!(rss <= 4096, "idle shim RSS {rss} KiB");
    // The dropped pages come back when used: the shim still stops the task (`sh` as
    // PID 1 ignores SIGTERM, so this also runs the stop timeout and the kill).
    d.ok("StopTask", json!({"task": id, "reason": "done"}));
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "UserInitiated", "{t:#}");
    assert_eq!(t["containers"][0]["exitCode"], 137, "{t:#}");
    d.assert_clean();
}

/// `berth logs --follow` streams what a task writes while it runs (it never misses a line
/// written between two reads, nor one written just before the task stops), and ends when
/// the task stops, even while other tasks keep changing.
#[test]
fn logs_follow_streams_a_running_task_until_it_stops() {
    require_e2e!();
    let (d, image) = setup();
    d.register(json!({"family": "ticker", "containerDefinitions": [
        container("main", &image, "for i in 1 2 3 4 5 6 7 8; do echo tick$i; sleep 0.1; done; echo last")
    ]}));
    d.register(
        json!({"family": "noise", "containerDefinitions": [container("main", &image, "true")]}),
    );
    let id = d.run_task("ticker");
    d.wait_running(&id);
    let follower = std::process::Command::new(berth_tests::daemon::berth_bin().unwrap())
        .args(["--data-root", &d.data_root().display().to_string()])
        .args(["--run-root", &d.run_root().display().to_string()])
        .args(["logs", "--follow", &id, "main"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Other tasks change while it follows.
    for _ in 0..3 {
        let other = d.run_task("noise");
        d.wait_stopped(&other, Duration::from_secs(30));
    }
    let started = Instant::now();
    let out = follower.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "logs --follow did not end with the task"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let want: Vec<String> = (1..=8)
        .map(|i| format!("tick{i}"))
        .chain(["last".to_owned()])
        .collect();
    assert_eq!(lines, want, "{text}");
    assert_eq!(
        d.wait_stopped(&id, Duration::from_secs(10))["lastStatus"],
        "STOPPED"
    );
    d.assert_clean();
}

#[test]
fn mount_points_an_image_lacks_come_from_its_layer_and_what_it_has_stays_its_own() {
    require_e2e!();
    let mut d = Daemon::start();
    let layout = |name: &str, image: ImageBuilder| {
        let dir = d.scratch().join("images").join(name);
        image.build().write_layout(&dir, "latest").unwrap();
        format!("oci-layout:{}:latest", dir.display())
    };
    // Every mount point deleted by the top layer (whiteouts), so berth's layer makes
    // them all; and an image whose /etc is a symlink, which berth must not shadow.
    let bare = layout(
        "bare",
        ImageBuilder::busybox(APPLETS).cmd(&["sh"]).layer(
            Layer::new()
                .whiteout("proc")
                .whiteout("sys")
                .whiteout("dev")
                .whiteout("etc"),
        ),
    );
    let linked = layout(
        "linked",
        ImageBuilder::busybox(APPLETS).cmd(&["sh"]).layer(
            Layer::new()
                .whiteout("etc")
                .dir("usr", 0o755)
                .dir("usr/etc", 0o755)
                .file("usr/etc/marker", b"from-the-image\n", 0o644)
                .symlink("etc", "/usr/etc"),
        ),
    );
    let run = |family: &str, image: &str, command: &str| {
        let td = d.register(json!({
            "family": family,
            "containerDefinitions": [container("c", image, command)]
        }));
        let id = d.run_task(&td);
        let t = d.wait_stopped(&id, Duration::from_secs(60));
        assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}");
        d.logs(&id, "c")
    };
    let out = run(
        "bare",
        &bare,
        "test -e /etc/passwd || echo no-passwd; grep -q \"$(hostname)\" /etc/hosts && echo hosts; \
         test -r /proc/self/status && echo proc; test -c /dev/null && echo dev; \
         test -d /sys/fs/cgroup && echo sys",
    );
    for word in ["no-passwd", "hosts", "proc", "dev", "sys"] {
        assert!(out.lines().any(|l| l == word), "{word} missing: {out}");
    }
    let out = run(
        "linked",
        &linked,
        "test -L /etc && echo link; cat /etc/marker; test -f /usr/etc/hosts && echo hosts-in-usr",
    );
    for word in ["link", "from-the-image", "hosts-in-usr"] {
        assert!(out.lines().any(|l| l == word), "{word} missing: {out}");
    }
    // One layer per image on the run root: the bare image's holds every mount point,
    // the linked image's nothing (its /etc is left to the runtime, as before).
    let mut layers: Vec<Vec<String>> = std::fs::read_dir(d.run_root().join("mountpoints"))
        .unwrap()
        .map(|e| {
            let mut names: Vec<String> = std::fs::read_dir(e.unwrap().path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        })
        .collect();
    layers.sort();
    assert_eq!(layers, [vec![], vec!["dev", "etc", "proc", "sys"]]);
    // A restarted daemon keeps the layers running tasks mount and removes the others.
    let td = d.register(json!({
        "family": "bare-sleep",
        "containerDefinitions": [container("c", &bare, "sleep 600")]
    }));
    let id = d.run_task(&td);
    d.wait_running(&id);
    d.kill9();
    d.restart();
    let left: Vec<_> = std::fs::read_dir(d.run_root().join("mountpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].join("proc").is_dir(), "{left:?}");
    d.ok("Berth.StopTask", json!({"task": id, "timeoutSecs": 0}));
    d.wait_stopped(&id, Duration::from_secs(60));
    d.assert_clean();
}
