//! Who may use the API: SigV4 with the generated key pair on TCP, the unix socket by
//! its file mode, `--insecure-no-auth` only on loopback.

mod api_support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use api_support::{aws_with, ecs_headers, python, setup, setup_with, tcp_post};
use berth_tests::daemon::{DaemonOptions, berth_bin};
use berth_tests::host::FakeHost;
use berth_tests::require_e2e;
use serde_json::json;

fn headers(op: &str) -> Vec<(&'static str, String)> {
    ecs_headers(op)
}

fn as_refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn sigv4_with_the_generated_key_is_accepted_and_everything_else_refused() {
    require_e2e!();
    let (d, _image) = setup();
    // The key pair is root-only on disk.
    let mode = std::fs::metadata(d.data_root().join("auth/credentials.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "credentials file mode {mode:o}");
    let (key, secret) = d.credentials();
    assert!(key.len() >= 16 && secret.len() >= 32);

    // The aws CLI with the generated key; with a wrong secret or key it is refused.
    let ok = aws_with(&d, &[], &["list-clusters"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let wrong = aws_with(
        &d,
        &[(
            "AWS_SECRET_ACCESS_KEY",
            "not-the-secret-not-the-secret-not-the-s",
        )],
        &["list-clusters"],
    );
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "a wrong secret was accepted");
    assert!(err.contains("InvalidSignatureException"), "{err}");
    let unknown = aws_with(
        &d,
        &[("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")],
        &["list-clusters"],
    );
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success());
    assert!(err.contains("UnrecognizedClientException"), "{err}");

    // Request by request with botocore's signer: tampering, stale dates, the wrong
    // service, no signature.
    let out = python(&d, "sigv4_probe.py", &[]);
    assert!(!out.contains("BAD"), "{out}");

    // Unsigned TCP is refused; the unix socket needs no signature.
    let h = headers("ListClusters");
    let raw = tcp_post(&d.host, &as_refs(&h), b"{}");
    assert_eq!(raw.status, 403, "{raw:?}");
    assert_eq!(raw.body["__type"], "MissingAuthenticationTokenException");
    d.ok("ListClusters", json!({}));
    let sock = std::fs::metadata(d.run_root().join("berth.sock")).unwrap();
    assert_eq!(sock.permissions().mode() & 0o777, 0o660);
    // Refusals are not 5xx (the SDKs would retry them).
    assert!(!d.log().contains("ServerException"));
}

#[test]
fn insecure_no_auth_accepts_unsigned_requests_for_loopback_host_names_only() {
    require_e2e!();
    let (d, _image) = setup_with(DaemonOptions {
        args: vec!["--insecure-no-auth".into()],
        ..Default::default()
    });
    assert!(d.log().contains("authentication is OFF"), "{}", d.log());
    let h = headers("ListClusters");
    let raw = tcp_post(&d.host, &as_refs(&h), b"{}");
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(
        raw.body["clusterArns"][0],
        "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    );
    let mut h = headers("ListClusters");
    h[0].1 = "localhost:5450".into();
    assert_eq!(tcp_post(&d.host, &as_refs(&h), b"{}").status, 200);
    // A browser steered here by DNS rebinding sends its own Host name.
    h[0].1 = "attacker.example:5450".into();
    let raw = tcp_post(&d.host, &as_refs(&h), b"{}");
    assert_eq!(raw.status, 403, "{raw:?}");
    assert_eq!(raw.body["__type"], "AccessDeniedException");
    // The SDKs still work (their signatures are ignored).
    let out = aws_with(
        &d,
        &[("AWS_SECRET_ACCESS_KEY", "anything-at-all")],
        &["list-clusters"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_non_loopback_listener_without_authentication_is_refused_at_startup() {
    require_e2e!();
    let host = FakeHost::new("bEa").unwrap();
    let dir = tempfile::Builder::new()
        .prefix("bE-auth-")
        .tempdir()
        .unwrap();
    for listen in ["0.0.0.0:5450", "10.1.2.3:5450", "[::]:5450"] {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", host.path().display()))
            .arg("--")
            .arg(berth_bin().unwrap())
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--run-root")
            .arg(dir.path().join("run"))
            .args(["daemon", "--listen", listen, "--insecure-no-auth"])
            .env("BERTH_LOG", "warn")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{listen}: the daemon started: {err}");
        assert!(
            err.contains("refusing") && err.contains("without authentication"),
            "{listen}: {err}"
        );
    }
    // Nothing was created on the way out.
    assert!(!dir.path().join("run/berth.sock").exists());

    // With authentication on, any address is allowed.
    let (d, _image) = setup_with(DaemonOptions {
        args: vec!["--listen".into(), "0.0.0.0:5450".into()],
        ..Default::default()
    });
    let out = aws_with(&d, &[], &["list-clusters"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = headers("ListClusters");
    assert_eq!(tcp_post(&d.host, &as_refs(&h), b"{}").status, 403);
}
