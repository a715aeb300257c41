//! `berth exec`: commands in a running task's container, through the daemon and the
//! task's shim, on the real kernel.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::daemon::{APPLETS, Daemon, berth_bin, busybox_layout};
use berth_tests::require_e2e;
use serde_json::json;

fn exec(d: &Daemon, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let out = d.cli(&all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_runs_in_the_container_returns_its_exit_code_and_dies_with_its_client() {
    require_e2e!();
    let d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    let app = json!({"name": "app", "image": image, "memory": 64, "stopTimeout": 2,
        "entryPoint": ["sh", "-c"], "command": ["exec sleep 600"],
        "environment": [{"name": "MARKER", "value": "from-the-definition"}],
        "workingDirectory": "/tmp"});
    let side = json!({"name": "side", "image": image, "memory": 32, "essential": false, "stopTimeout": 2,
        "entryPoint": ["sh", "-c"], "command": ["exec sleep 600"]});
    let td = d.register(json!({"family": "exec", "containerDefinitions": [app, side]}));
    let id = d.run_task(&td);
    d.wait_running(&id);

    // The container's environment and working directory; both streams; its exit code.
    let (code, out, err) = exec(
        &d,
        &[
            "-c",
            "app",
            &id,
            "--",
            "sh",
            "-c",
            "echo $MARKER; pwd; echo to-stderr >&2; exit 7",
        ],
    );
    assert_eq!(code, Some(7), "{out}{err}");
    assert_eq!(out, "from-the-definition\n/tmp\nto-stderr\n", "{err}");

    // Which container must be said when there are two; errors name what is wrong.
    let (code, _, err) = exec(&d, &[&id, "--", "true"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("more than one container"), "{err}");
    let (_, _, err) = exec(&d, &["-c", "nope", &id, "--", "true"]);
    assert!(
        err.contains("InvalidParameterException") && err.contains("nope"),
        "{err}"
    );
    let (_, _, err) = exec(&d, &["-c", "app", &id, "--", "/no/such/program"]);
    assert!(err.contains("/no/such/program"), "{err}");

    // A client that goes away takes its command with it.
    let mut client = Command::new(berth_bin().unwrap())
        .arg("--data-root")
        .arg(d.data_root())
        .arg("--run-root")
        .arg(d.run_root())
        .args(["exec", "-c", "side", &id, "--", "sleep", "321"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let running = |d: &Daemon| {
        let (_, ps, _) = exec(d, &["-c", "side", &id, "--", "ps"]);
        ps.contains("sleep 321")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running(&d) {
        assert!(Instant::now() < deadline, "the exec'd sleep never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    client.kill().unwrap();
    client.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(&d) {
        assert!(
            Instant::now() < deadline,
            "the exec'd sleep outlived its client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.describe(&id)["lastStatus"], "RUNNING");

    d.ok("StopTask", json!({"task": id}));
    d.wait_stopped(&id, Duration::from_secs(60));
    let (code, _, err) = exec(&d, &["-c", "app", &id, "--", "true"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not RUNNING"), "{err}");
    d.assert_clean();
}
