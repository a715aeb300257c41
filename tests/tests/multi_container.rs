//! Multi-container tasks through `berth daemon` on the real kernel (issue 6): dependsOn
//! conditions (START, COMPLETE, SUCCESS, HEALTHY) and startTimeout, health checks and
//! health aggregation, reverse-order shutdown with per-container stopTimeouts, the
//! task's lifecycle states and timestamps, and task-wide PID and IPC namespaces.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_tests::daemon::{APPLETS, Daemon, busybox_layout, named};
use berth_tests::images::ImageBuilder;
use berth_tests::require_e2e;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn applets() -> Vec<&'static str> {
    let mut a = APPLETS.to_vec();
    a.extend(["readlink", "cut", "sort"]);
    a
}

fn setup() -> (Daemon, String) {
    let d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), &applets());
    (d, image)
}

fn container(name: &str, image: &str, command: &str) -> Value {
    json!({"name": name, "image": image, "memory": 64, "entryPoint": ["sh", "-c"], "command": [command]})
}

/// A task scratch volume `shared` mounted at /shared in each of `containers`.
fn with_shared(mut containers: Vec<Value>) -> Vec<Value> {
    for c in &mut containers {
        c["mountPoints"] = json!([{"sourceVolume": "shared", "containerPath": "/shared"}]);
    }
    containers
}

#[test]
fn an_init_container_gates_the_app_with_success() {
    require_e2e!();
    let (d, image) = setup();
    let mut init = container(
        "init",
        &image,
        "sleep 3; echo prepared > /shared/config; echo init-done",
    );
    init["essential"] = json!(false);
    let mut app = container(
        "app",
        &image,
        "cat /shared/config || echo started-too-early; sleep 600",
    );
    app["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    let td = d.register(json!({
        "family": "initgate",
        "volumes": [{"name": "shared"}],
        "containerDefinitions": with_shared(vec![app, init])
    }));
    let id = d.run_task(&td);
    // While init runs, the app waits in PENDING and so does the task.
    let t = d.wait_task(&id, WAIT, "init running", |t| {
        named(t, "init")["lastStatus"] == "RUNNING" || t["lastStatus"] == "STOPPED"
    });
    assert_eq!(named(&t, "app")["lastStatus"], "PENDING", "{t:#}");
    assert_ne!(t["lastStatus"], "RUNNING", "{t:#}");
    let t = d.wait_running(&id);
    assert_eq!(named(&t, "init")["lastStatus"], "STOPPED", "{t:#}");
    assert_eq!(named(&t, "init")["exitCode"], 0);
    assert_eq!(named(&t, "app")["lastStatus"], "RUNNING");
    let out = (0..50)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            d.logs(&id, "app")
        })
        .find(|o| !o.is_empty())
        .unwrap_or_default();
    assert_eq!(out, "prepared\n");
    d.kill_task(&id);
    let t = d.wait_stopped(&id, WAIT);
    assert_eq!(t["stopCode"], "UserInitiated", "{t:#}");
    d.assert_clean();
}

#[test]
fn a_failed_success_dependency_stops_the_task_naming_both_containers() {
    require_e2e!();
    let (d, image) = setup();
    let mut init = container("migrate", &image, "echo migration failed >&2; exit 3");
    init["essential"] = json!(false);
    let mut app = container("web", &image, "echo should-not-run; sleep 600");
    app["dependsOn"] = json!([{"containerName": "migrate", "condition": "SUCCESS"}]);
    let td = d.register(json!({"family": "initfail", "containerDefinitions": [init, app]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.contains("web") && reason.contains("migrate"),
        "{reason}"
    );
    assert!(
        reason.contains("SUCCESS") && reason.contains("exited with code 3"),
        "{reason}"
    );
    assert_eq!(named(&t, "migrate")["exitCode"], 3);
    let web = named(&t, "web");
    assert_eq!(web["lastStatus"], "STOPPED");
    assert!(web["exitCode"].is_null(), "web never ran: {web:#}");
    assert_eq!(d.logs(&id, "web"), "");
    assert!(t["startedAt"].is_null(), "the task never ran: {t:#}");
    d.assert_clean();
}

#[test]
fn complete_starts_the_app_whatever_the_dependency_exit_code() {
    require_e2e!();
    let (d, image) = setup();
    let mut warm = container("warm", &image, "echo warmed > /shared/w; exit 4");
    warm["essential"] = json!(false);
    let mut app = container("app", &image, "cat /shared/w; sleep 600");
    app["dependsOn"] = json!([{"containerName": "warm", "condition": "COMPLETE"}]);
    let td = d.register(json!({
        "family": "complete",
        "volumes": [{"name": "shared"}],
        "containerDefinitions": with_shared(vec![warm, app])
    }));
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    assert_eq!(named(&t, "warm")["exitCode"], 4);
    let out = (0..50)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            d.logs(&id, "app")
        })
        .find(|o| !o.is_empty())
        .unwrap_or_default();
    assert_eq!(out, "warmed\n");
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    d.assert_clean();
}

#[test]
fn healthy_gates_the_app_until_the_sidecar_passes_its_health_check() {
    require_e2e!();
    let (d, image) = setup();
    // The sidecar becomes ready after 2 s; its check records in the shared volume the
    // first time it passes. The app, gated on HEALTHY, must find that record.
    let mut db = container("db", &image, "sleep 2; touch /tmp/ready; sleep 600");
    db["healthCheck"] = json!({
        "command": ["CMD-SHELL", "test -f /tmp/ready && { [ -f /shared/passed ] || touch /shared/passed; } && echo db-ok"],
        "interval": 5, "timeout": 2, "retries": 3
    });
    let mut app = container(
        "app",
        &image,
        "test -f /shared/passed && echo gated-ok || echo started-too-early; sleep 600",
    );
    app["dependsOn"] = json!([{"containerName": "db", "condition": "HEALTHY"}]);
    let td = d.register(json!({
        "family": "healthygate",
        "volumes": [{"name": "shared"}],
        "containerDefinitions": with_shared(vec![db, app])
    }));
    let id = d.run_task(&td);
    let t = d.wait_task(&id, WAIT, "db running", |t| {
        named(t, "db")["lastStatus"] == "RUNNING" || t["lastStatus"] == "STOPPED"
    });
    assert_eq!(named(&t, "app")["lastStatus"], "PENDING", "{t:#}");
    let t = d.wait_running(&id);
    assert_eq!(named(&t, "db")["healthStatus"], "HEALTHY", "{t:#}");
    let out = (0..50)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            d.logs(&id, "app")
        })
        .find(|o| !o.is_empty())
        .unwrap_or_default();
    assert_eq!(out, "gated-ok\n");
    // The check's output is visible with the container.
    let db = named(&t, "db");
    assert!(
        db["berthHealth"]["output"]
            .as_str()
            .is_some_and(|o| o.contains("db-ok")),
        "{db:#}"
    );
    assert!(db["berthHealth"]["statusSince"].is_number(), "{db:#}");
    // The app has no health check: the task stays UNKNOWN (ECS: essential containers
    // without checks count as UNKNOWN).
    assert_eq!(t["healthStatus"], "UNKNOWN");
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    d.assert_clean();
}

#[test]
fn a_healthy_dependency_that_turns_unhealthy_stops_the_task_naming_both() {
    require_e2e!();
    let (d, image) = setup();
    let mut db = container("db", &image, "sleep 600");
    db["healthCheck"] = json!({
        "command": ["CMD-SHELL", "echo not ready; exit 1"], "interval": 5, "retries": 1
    });
    let mut app = container("app", &image, "sleep 600");
    app["dependsOn"] = json!([{"containerName": "db", "condition": "HEALTHY"}]);
    let td = d.register(json!({"family": "neverhealthy", "containerDefinitions": [db, app]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.contains("app") && reason.contains("db") && reason.contains("UNHEALTHY"),
        "{reason}"
    );
    assert_eq!(named(&t, "db")["healthStatus"], "UNHEALTHY");
    d.assert_clean();
}

#[test]
fn an_unhealthy_essential_container_shows_in_container_and_task_health_and_ps() {
    require_e2e!();
    let (d, image) = setup();
    let mut web = container("web", &image, "sleep 600");
    web["healthCheck"] = json!({
        "command": ["CMD-SHELL", "echo web check failing; exit 1"],
        "interval": 5, "timeout": 2, "retries": 1
    });
    let mut ok = container("ok", &image, "sleep 600");
    ok["healthCheck"] = json!({"command": ["CMD", "true"], "interval": 5});
    let td = d.register(json!({"family": "unhealthy", "containerDefinitions": [web, ok]}));
    let id = d.run_task(&td);
    let t = d.wait_running(&id);
    assert_eq!(t["healthStatus"], "UNKNOWN", "not yet checked: {t:#}");
    let t = d.wait_task(&id, WAIT, "unhealthy", |t| {
        t["healthStatus"] == "UNHEALTHY" && named(t, "ok")["healthStatus"] == "HEALTHY"
    });
    let web = named(&t, "web");
    assert_eq!(web["healthStatus"], "UNHEALTHY");
    assert!(
        web["berthHealth"]["output"]
            .as_str()
            .is_some_and(|o| o.contains("web check failing")),
        "{web:#}"
    );
    // A task run by hand keeps running whatever its health (ECS).
    assert_eq!(t["lastStatus"], "RUNNING");
    let out = d.cli(&["ps"]);
    let ps = String::from_utf8_lossy(&out.stdout);
    let row = ps
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(
        row.contains("UNHEALTHY")
            && row.contains("web:RUNNING[UNHEALTHY]")
            && row.contains("ok:RUNNING[HEALTHY]"),
        "{ps}"
    );
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    d.assert_clean();
}

#[test]
fn start_timeout_stops_the_task_with_a_reason_naming_both_containers() {
    require_e2e!();
    let (d, image) = setup();
    // The check would fail, but the long start period keeps db UNKNOWN: db's
    // startTimeout (ECS: set on the container depended on) runs out first.
    let mut db = container("db", &image, "sleep 600");
    db["healthCheck"] = json!({
        "command": ["CMD-SHELL", "exit 1"], "interval": 5, "retries": 1, "startPeriod": 300
    });
    db["stopTimeout"] = json!(2);
    db["startTimeout"] = json!(2);
    let mut app = container("app", &image, "sleep 600");
    app["dependsOn"] = json!([{"containerName": "db", "condition": "HEALTHY"}]);
    let td = d.register(json!({"family": "starttimeout", "containerDefinitions": [db, app]}));
    let id = d.run_task(&td);
    let started = Instant::now();
    let t = d.wait_stopped(&id, WAIT);
    assert!(started.elapsed() < Duration::from_secs(30), "{t:#}");
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.contains("app") && reason.contains("db") && reason.contains("startTimeout"),
        "{reason}"
    );
    assert_eq!(named(&t, "db")["healthStatus"], "UNKNOWN");
    d.assert_clean();
}

#[test]
fn shutdown_goes_in_reverse_dependency_order_with_each_stop_timeout() {
    require_e2e!();
    let (d, image) = setup();
    // db <- app <- proxy. Each records when it gets SIGTERM in a host directory; the
    // app ignores it and is killed after its own 2 s stopTimeout.
    let record = d.scratch().join("bG-order");
    std::fs::create_dir_all(&record).unwrap();
    let term = |name: &str| {
        format!(
            "trap 'echo {name} $(cat /proc/uptime | cut -d\" \" -f1) >> /rec/order; exit 0' TERM; echo up; while :; do sleep 0.1; done"
        )
    };
    let mut db = container("db", &image, &term("db"));
    db["stopTimeout"] = json!(10);
    let mut app = container(
        "app",
        &image,
        "trap 'echo app $(cat /proc/uptime | cut -d\" \" -f1) >> /rec/order' TERM; echo up; while :; do sleep 0.1; done",
    );
    app["dependsOn"] = json!([{"containerName": "db", "condition": "START"}]);
    app["stopTimeout"] = json!(2);
    let mut proxy = container("proxy", &image, &term("proxy"));
    proxy["dependsOn"] = json!([{"containerName": "app", "condition": "START"}]);
    proxy["stopTimeout"] = json!(10);
    let mut defs = vec![db, app, proxy];
    for c in &mut defs {
        c["mountPoints"] = json!([{"sourceVolume": "rec", "containerPath": "/rec"}]);
    }
    let td = d.register(json!({
        "family": "stoporder",
        "volumes": [{"name": "rec", "host": {"sourcePath": record}}],
        "containerDefinitions": defs
    }));
    let id = d.run_task(&td);
    d.wait_running(&id);
    for name in ["db", "app", "proxy"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d.logs(&id, name).contains("up") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let asked = Instant::now();
    d.ok("StopTask", json!({"task": id, "reason": "ordered stop"}));
    let t = d.wait_stopped(&id, WAIT);
    let took = asked.elapsed();
    let order = std::fs::read_to_string(record.join("order")).unwrap();
    let names: Vec<&str> = order
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["proxy", "app", "db"], "{order}");
    let at: BTreeMap<&str, f64> = order
        .lines()
        .map(|l| {
            let (n, t) = l.split_once(' ').unwrap();
            (n, t.parse().unwrap())
        })
        .collect();
    // db was signalled only once the app had been killed, after its 2 s.
    assert!(at["db"] - at["app"] >= 1.9, "{order}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(named(&t, "proxy")["exitCode"], 0, "{t:#}");
    assert_eq!(named(&t, "app")["exitCode"], 137, "{t:#}");
    assert_eq!(named(&t, "db")["exitCode"], 0, "{t:#}");
    assert_eq!(t["stoppedReason"], "ordered stop");
    d.assert_clean();
}

#[test]
fn the_task_moves_through_the_lifecycle_states_with_ordered_timestamps() {
    require_e2e!();
    let (d, image) = setup();
    let mut init = container("init", &image, "sleep 2");
    init["essential"] = json!(false);
    let mut app = container("app", &image, "sleep 1; exit 0");
    app["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    // PID 1 ignores SIGTERM: the task stays STOPPING for its 2 s stopTimeout, long
    // enough for the polling below to see it (a task whose containers have all exited
    // passes through STOPPING in a millisecond).
    let mut lingering = container("lingering", &image, "sleep 600");
    lingering["essential"] = json!(false);
    lingering["stopTimeout"] = json!(2);
    let td =
        d.register(json!({"family": "lifecycle", "containerDefinitions": [init, app, lingering]}));
    let arn = d.ok("RunTask", json!({"taskDefinition": td}))["tasks"][0].clone();
    assert_eq!(arn["lastStatus"], "PROVISIONING", "{arn:#}");
    assert_eq!(arn["desiredStatus"], "RUNNING");
    let id = arn["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // Poll fast and keep every distinct (task status, container statuses) seen.
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let mut versions = Vec::new();
    let deadline = Instant::now() + WAIT;
    let last = loop {
        let t = d.describe(&id);
        let row = (
            t["lastStatus"].as_str().unwrap().to_owned(),
            named(&t, "init")["lastStatus"].as_str().unwrap().to_owned(),
            named(&t, "app")["lastStatus"].as_str().unwrap().to_owned(),
        );
        if seen.last() != Some(&row) {
            seen.push(row);
        }
        versions.push(t["version"].as_i64().unwrap());
        if t["lastStatus"] == "STOPPED" {
            break t;
        }
        assert!(Instant::now() < deadline, "{seen:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    const ORDER: &[&str] = &[
        "PROVISIONING",
        "PENDING",
        "ACTIVATING",
        "RUNNING",
        "DEACTIVATING",
        "STOPPING",
        "DEPROVISIONING",
        "STOPPED",
    ];
    let rank = |s: &str| {
        ORDER
            .iter()
            .position(|o| *o == s)
            .unwrap_or_else(|| panic!("{s}"))
    };
    let statuses: Vec<usize> = seen.iter().map(|r| rank(&r.0)).collect();
    assert!(
        statuses.windows(2).all(|w| w[0] <= w[1]),
        "went backwards: {seen:?}"
    );
    for must in ["RUNNING", "STOPPED"] {
        assert!(seen.iter().any(|r| r.0 == must), "{must}: {seen:?}");
    }
    assert!(
        seen.iter()
            .any(|r| r.0 == "STOPPING" || r.0 == "DEPROVISIONING"),
        "{seen:?}"
    );
    // The app waits while init runs, and the task is not RUNNING before it starts.
    assert!(
        seen.iter()
            .any(|r| r.1 == "RUNNING" && r.2 == "PENDING" && r.0 != "RUNNING"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .filter(|r| r.0 == "RUNNING")
            .all(|r| r.2 != "PENDING"),
        "{seen:?}"
    );
    let cstat = |r: &(String, String, String), i: usize| {
        let s = if i == 1 { &r.1 } else { &r.2 };
        ["PENDING", "RUNNING", "STOPPED"]
            .iter()
            .position(|o| o == s)
            .unwrap()
    };
    for i in [1, 2] {
        let v: Vec<usize> = seen.iter().map(|r| cstat(r, i)).collect();
        assert!(
            v.windows(2).all(|w| w[0] <= w[1]),
            "container went backwards: {seen:?}"
        );
    }
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "version decreased: {versions:?}"
    );
    let keys = [
        "createdAt",
        "pullStartedAt",
        "pullStoppedAt",
        "startedAt",
        "stoppingAt",
        "executionStoppedAt",
        "stoppedAt",
    ];
    let ts: Vec<f64> = keys
        .iter()
        .map(|k| {
            last[k]
                .as_f64()
                .unwrap_or_else(|| panic!("{k} missing: {last:#}"))
        })
        .collect();
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "timestamps out of order: {:?}",
        keys.iter().zip(&ts).collect::<Vec<_>>()
    );
    // startedAt is when the app (the last container) started, after init's 2 s.
    assert!(ts[3] - ts[2] >= 1.9, "{last:#}");
    assert_eq!(last["stopCode"], "EssentialContainerExited");
    assert_eq!(last["desiredStatus"], "STOPPED");
    d.assert_clean();
}

#[test]
fn pid_mode_task_puts_every_container_in_one_pid_namespace() {
    require_e2e!();
    let (d, image) = setup();
    // The first container to start exits at once: the namespace must outlive it.
    let mut first = container("first", &image, "readlink /proc/self/ns/pid");
    first["essential"] = json!(false);
    let mut a = container(
        "a",
        &image,
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; exec sleep 4242",
    );
    let mut b = container(
        "b",
        &image,
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; while ! ps | grep -q '[s]leep 4242'; do sleep 0.1; done; echo sees-a; sleep 600",
    );
    a["dependsOn"] = json!([{"containerName": "first", "condition": "COMPLETE"}]);
    b["dependsOn"] = json!([{"containerName": "a", "condition": "START"}]);
    let td = d.register(json!({
        "family": "pidtask", "pidMode": "task", "ipcMode": "task",
        "containerDefinitions": [first, a, b]
    }));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let out_b = (0..100)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            d.logs(&id, "b")
        })
        .find(|o| o.contains("sees-a"))
        .unwrap_or_else(|| panic!("b cannot see a's processes: {}", d.logs(&id, "b")));
    let out_a = d.logs(&id, "a");
    let out_first = d.logs(&id, "first");
    let ns = |s: &str, kind: &str| {
        s.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("{s}"))
            .to_owned()
    };
    assert_eq!(ns(&out_a, "pid:"), ns(&out_b, "pid:"));
    assert_eq!(ns(&out_first, "pid:"), ns(&out_a, "pid:"));
    assert_eq!(ns(&out_a, "ipc:"), ns(&out_b, "ipc:"));
    let host_pid = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_ne!(ns(&out_a, "pid:"), host_pid.to_str().unwrap());
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    d.assert_clean();

    // Without pidMode, containers have namespaces of their own.
    let a = container("a", &image, "readlink /proc/self/ns/pid; sleep 600");
    let b = container("b", &image, "readlink /proc/self/ns/pid; sleep 600");
    let td = d.register(json!({"family": "pidown", "containerDefinitions": [a, b]}));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let (mut a, mut b) = (String::new(), String::new());
    for _ in 0..50 {
        a = d.logs(&id, "a");
        b = d.logs(&id, "b");
        if !a.is_empty() && !b.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(a.starts_with("pid:") && b.starts_with("pid:"), "{a} {b}");
    assert_ne!(a, b);
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    d.assert_clean();
}

#[test]
fn an_image_healthcheck_is_used_only_when_asked() {
    require_e2e!();
    let d = Daemon::start();
    let image = ImageBuilder::busybox(&applets())
        .healthcheck(&["CMD-SHELL", "echo image-check; exit 1"], 5, 1)
        .cmd(&["sleep", "600"])
        .build();
    let layout = d.scratch().join("hc-layout");
    image.write_layout(&layout, "latest").unwrap();
    let image = format!("oci-layout:{}:latest", layout.display());
    let plain = json!({"name": "plain", "image": image, "memory": 32});
    let asked = json!({"name": "asked", "image": image, "memory": 32,
        "dockerLabels": {"berth.healthcheck": "image"}});
    let td = d.register(json!({"family": "imagehc", "containerDefinitions": [plain, asked]}));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let t = d.wait_task(&id, WAIT, "asked unhealthy", |t| {
        named(t, "asked")["healthStatus"] == "UNHEALTHY"
    });
    assert_eq!(named(&t, "plain")["healthStatus"], "UNKNOWN", "{t:#}");
    assert!(
        named(&t, "asked")["berthHealth"]["output"]
            .as_str()
            .is_some_and(|o| o.contains("image-check")),
        "{t:#}"
    );
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    d.assert_clean();
}

#[test]
fn health_checks_run_as_the_container_user_in_its_working_directory() {
    require_e2e!();
    let (d, image) = setup();
    let mut app = container("app", &image, "sleep 600");
    app["user"] = json!("nobody");
    app["workingDirectory"] = json!("/tmp");
    app["healthCheck"] = json!({
        "command": ["CMD-SHELL", "echo as=$(id -u):$(id -g) in=$(pwd) greeting=$GREETING"],
        "interval": 5
    });
    app["environment"] = json!([{"name": "GREETING", "value": "hi"}]);
    let td = d.register(json!({"family": "healthuser", "containerDefinitions": [app]}));
    let id = d.run_task(&td);
    let t = d.wait_task(&id, WAIT, "checked", |t| {
        named(t, "app")["healthStatus"] != "UNKNOWN" || t["lastStatus"] == "STOPPED"
    });
    let app = named(&t, "app");
    assert_eq!(app["healthStatus"], "HEALTHY", "{app:#}");
    assert_eq!(
        app["berthHealth"]["output"].as_str().map(str::trim),
        Some("as=65534:65534 in=/tmp greeting=hi"),
        "{app:#}"
    );
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    d.assert_clean();
}
