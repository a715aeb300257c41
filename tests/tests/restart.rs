//! ECS's container `restartPolicy`, on the real kernel: a container that ran for its
//! attempt period is started again in place; an early exit, an ignored exit code and a
//! stopping task are not.

use std::time::Duration;

use berth_tests::daemon::{APPLETS, Daemon, busybox_layout, named};
use berth_tests::require_e2e;
use serde_json::json;

#[test]
fn restart_policy_restarts_in_place_after_the_attempt_period_and_only_then() {
    require_e2e!();
    let d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    let container = |name: &str, command: &str, policy: serde_json::Value, essential: bool| {
        json!({"name": name, "image": image, "memory": 32, "essential": essential,
               "stopTimeout": 2, "entryPoint": ["sh", "-c"], "command": [command],
               "restartPolicy": policy})
    };
    // ECS's smallest attempt period is 60 s: the long-running ones exit just after it.
    let period = json!({"enabled": true, "restartAttemptPeriod": 60});
    let app = container(
        "app",
        // The writable layer survives the restart: the second run finds the marker.
        "test -f /run-once && echo second-run || { touch /run-once; echo first-run; }; sleep 61; exit 3",
        period.clone(),
        true,
    );
    let early = container("early", "exit 5", period, false);
    let ignored = container(
        "ignored",
        "sleep 61; exit 0",
        json!({"enabled": true, "restartAttemptPeriod": 60, "ignoredExitCodes": [0]}),
        false,
    );
    let td =
        d.register(json!({"family": "restart", "containerDefinitions": [app, early, ignored]}));
    let id = d.run_task(&td);
    d.wait_running(&id);

    // Failing before the period: its exit counts (non-essential: the task runs on).
    let t = d.wait_task(&id, Duration::from_secs(30), "early stopped", |t| {
        named(t, "early")["lastStatus"] == "STOPPED"
    });
    assert_eq!(named(&t, "early")["exitCode"], 5, "{t:#}");
    assert!(
        named(&t, "early").get("berthRestartCount").is_none(),
        "{t:#}"
    );

    // After the period: app restarts (count 1, same writable layer); ignored's exit 0
    // counts.
    let t = d.wait_task(&id, Duration::from_secs(120), "app restarted", |t| {
        named(t, "app")["berthRestartCount"] == 1 || t["lastStatus"] == "STOPPED"
    });
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    let t = d.wait_task(&id, Duration::from_secs(30), "ignored stopped", |t| {
        named(t, "ignored")["lastStatus"] == "STOPPED"
    });
    assert_eq!(named(&t, "ignored")["exitCode"], 0, "{t:#}");
    assert!(
        named(&t, "ignored").get("berthRestartCount").is_none(),
        "{t:#}"
    );
    let app = named(&t, "app");
    assert_eq!(app["lastStatus"], "RUNNING", "{t:#}");
    let out = d.logs(&id, "app");
    assert!(
        out.contains("first-run") && out.contains("second-run"),
        "{out}"
    );

    // A stopping task restarts nothing.
    d.ok("StopTask", json!({"task": id}));
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(named(&t, "app")["berthRestartCount"], 1, "{t:#}");
    assert_eq!(t["stopCode"], "UserInitiated", "{t:#}");
    d.assert_clean();
}
