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
    assert_eq!(out, "from-the-definition\n/tmp\n", "{err}");
    assert_eq!(err, "to-stderr\n");

    // The plain API form (no upgrade) streams JSON lines: output, then the exit code.
    let lines = d.ok(
        "Berth.Exec",
        json!({"task": id, "container": "app", "command": ["sh", "-c", "echo $MARKER; exit 6"]}),
    );
    let lines = lines.as_str().unwrap_or_default();
    assert!(
        lines.contains(r#"{"output":"from-the-definition\n"}"#)
            && lines.ends_with("{\"exitCode\":6}\n"),
        "{lines}"
    );
    // Input and a terminal need the upgraded connection, and say so.
    let e = d
        .call(
            "Berth.Exec",
            &json!({"task": id, "container": "app", "command": ["cat"], "stdin": true}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    assert!(e.message.contains("Upgrade: berth-exec/1"), "{}", e.message);

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

/// Spawns `berth exec ARGS` with stdin piped.
fn exec_with_input(d: &Daemon, args: &[&str], input: Vec<u8>) -> (Option<i32>, Vec<u8>, String) {
    use std::io::Write;
    let mut child = Command::new(berth_bin().unwrap())
        .arg("--data-root")
        .arg(d.data_root())
        .arg("--run-root")
        .arg(d.run_root())
        .arg("exec")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exec_attaches_stdin_and_a_terminal_that_follows_the_clients_size() {
    require_e2e!();
    let d = Daemon::start();
    let mut applets = APPLETS.to_vec();
    applets.extend(["tty", "stty"]);
    let image = busybox_layout(&d.scratch().join("images"), &applets);
    let app = json!({"name": "app", "image": image, "memory": 64, "stopTimeout": 2,
        "entryPoint": ["sh", "-c"], "command": ["exec sleep 600"]});
    let td = d.register(json!({"family": "exec-attach", "containerDefinitions": [app]}));
    let id = d.run_task(&td);
    d.wait_running(&id);

    // -i: our input is the command's stdin, to its end; stdout and stderr stay apart.
    let (code, out, err) = exec_with_input(
        &d,
        &["-i", &id, "--", "sh", "-c", "cat; echo done >&2; exit 4"],
        b"line one\nline two\n".to_vec(),
    );
    assert_eq!(code, Some(4), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "line one\nline two\n");
    assert_eq!(err, "done\n");
    // Far more than any pipe holds, both ways at once.
    let big: Vec<u8> = (0..4 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    let (code, out, err) = exec_with_input(&d, &["-i", &id, "--", "cat"], big.clone());
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out == big,
        "cat returned {} of {} bytes",
        out.len(),
        big.len()
    );
    // Without -i the command reads nothing.
    let (code, out, _) = exec_with_input(&d, &[&id, "--", "cat"], b"ignored".to_vec());
    assert_eq!((code, out.as_slice()), (Some(0), &b""[..]));

    // -t alone: a terminal inside the container (its devpts), TERM set, one stream.
    let (code, out, err) = exec_with_input(
        &d,
        &[
            "-t",
            &id,
            "--",
            "sh",
            "-c",
            "tty; echo $TERM; echo to-stderr >&2; exit 3",
        ],
        Vec::new(),
    );
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(
        out.contains("xterm\r\n") && out.contains("to-stderr\r\n"),
        "{out:?}"
    );
    // -it needs a terminal to read from, as docker says.
    let (code, _, err) = exec_with_input(&d, &["-it", &id, "--", "sh"], Vec::new());
    assert_eq!(code, Some(1));
    assert!(err.contains("not a TTY"), "{err}");

    // -it on a terminal of 40x100: a shell driven by keystrokes, the size followed.
    let term = Terminal::open(40, 100);
    let mut client = term.spawn_session(&d, &["exec", "-it", &id, "--", "sh"]);
    term.type_until("stty size\n", "40 100");
    term.resize(50, 120);
    term.type_until("stty size\n", "50 120");
    term.type_keys("exit 5\n");
    let status = wait_with_deadline(&mut client, Duration::from_secs(20));
    assert_eq!(status.code(), Some(5), "{}", term.screen());
    assert!(
        term.is_canonical(),
        "the client left the terminal in raw mode"
    );

    d.ok("StopTask", json!({"task": id}));
    d.wait_stopped(&id, Duration::from_secs(60));
    d.assert_clean();
}

fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth exec did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pseudo-terminal standing in for a user's: the test types on its master and reads
/// what the session prints.
struct Terminal {
    master: std::fs::File,
    slave: std::os::fd::OwnedFd,
    screen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Terminal {
    fn open(rows: u16, cols: u16) -> Terminal {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let master = std::fs::File::from(pty.master);
        let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            master,
            slave: pty.slave,
            screen,
        }
    }

    /// `berth ARGS` with this terminal as its controlling terminal and stdio
    /// (util-linux `setsid --ctty`), so that resizes reach it as SIGWINCH.
    fn spawn_session(&self, d: &Daemon, args: &[&str]) -> std::process::Child {
        let stdio = || Stdio::from(self.slave.try_clone().unwrap());
        Command::new("setsid")
            .args(["--ctty", "--wait"])
            .arg(berth_bin().unwrap())
            .arg("--data-root")
            .arg(d.data_root())
            .arg("--run-root")
            .arg(d.run_root())
            .args(args)
            .stdin(stdio())
            .stdout(stdio())
            .stderr(stdio())
            .spawn()
            .unwrap()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    fn type_keys(&self, keys: &str) {
        use std::io::Write;
        (&self.master).write_all(keys.as_bytes()).unwrap();
    }

    /// Types `keys` (again every second) until `wanted` shows on the screen.
    fn type_until(&self, keys: &str, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut next_try = Instant::now();
        while !self.screen().contains(wanted) {
            assert!(
                Instant::now() < deadline,
                "{wanted:?} never showed; the screen:\n{}",
                self.screen()
            );
            if Instant::now() >= next_try {
                self.type_keys(keys);
                next_try = Instant::now() + Duration::from_secs(1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resizes the terminal the way a terminal emulator does (`stty` on the slave
    /// sets its size; the kernel signals the session's foreground group).
    fn resize(&self, rows: u16, cols: u16) {
        let path = nix::unistd::ttyname(&self.slave).unwrap();
        let st = Command::new("stty")
            .arg("-F")
            .arg(&path)
            .args(["rows", &rows.to_string(), "cols", &cols.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn is_canonical(&self) -> bool {
        let t = nix::sys::termios::tcgetattr(&self.slave).unwrap();
        t.local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON)
    }
}
