//! Secrets and task role credentials through `berth daemon`: `berth secret put` values
//! become the variables a container's `secrets` name (Secrets Manager ARNs with and
//! without JSON keys, parameter names); a task with a `taskRoleArn` reads what
//! `berth role put` stored from `169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
//! (awsvpc) or `$AWS_CONTAINER_CREDENTIALS_FULL_URI` (host); a missing secret fails the
//! start with a reason that names it; listings and the daemon's log never show a value.

mod net_support;

use std::time::Duration;

use berth_tests::daemon::Daemon;
use berth_tests::require_e2e;
use net_support::*;
use serde_json::json;

const ROLE: &str = "arn:aws:iam::123456789012:role/app";

/// `berth ARGS…` that must succeed; its standard output.
fn cli_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn secrets_become_variables_and_the_task_role_reads_its_credentials() {
    require_e2e!();
    let (d, image) = setup(Daemon::start());
    cli_ok(&d, &["secret", "put", "db-pass", "--value", "hunter2"]);
    let file = d.scratch().join("app-config.json");
    std::fs::write(&file, r#"{"user":"ada","port":5432}"#).unwrap();
    cli_ok(
        &d,
        &[
            "secret",
            "put",
            "app-config",
            "--from-file",
            file.to_str().unwrap(),
        ],
    );
    cli_ok(&d, &["secret", "put", "/app/token", "--value", "t0k"]);
    let put = cli_ok(
        &d,
        &[
            "role",
            "put",
            ROLE,
            "--access-key-id",
            "AKIATEST",
            "--secret-access-key",
            "s3cr3t",
            "--session-token",
            "sess10n",
        ],
    );
    assert!(put.contains("stored"), "{put}");
    let listed = cli_ok(&d, &["secret", "ls"]);
    assert!(
        listed.contains("db-pass") && listed.contains("/app/token") && listed.contains("7 B"),
        "{listed}"
    );
    let roles = cli_ok(&d, &["role", "ls"]);
    assert!(
        roles.contains(ROLE) && roles.contains("AKIATEST"),
        "{roles}"
    );
    for secret in ["hunter2", "ada", "t0k", "s3cr3t", "sess10n"] {
        assert!(
            !listed.contains(secret) && !roles.contains(secret),
            "{secret}"
        );
    }

    let read = "echo DB=$DB_PASSWORD; echo USER=$DB_USER; echo PORT=$DB_PORT; echo TOKEN=$APP_TOKEN; \
        echo REL=$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; echo FULL=$AWS_CONTAINER_CREDENTIALS_FULL_URI; \
        U=${AWS_CONTAINER_CREDENTIALS_FULL_URI:-http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}; \
        echo CREDS=$(wget -q -O - $U); wget -q -O - ${U%-*}-00000000 || echo GUESS-REFUSED; \
        echo DONE; exec sleep 600";
    for mode in ["awsvpc", "host"] {
        let mut app = container("app", &image, read);
        app["secrets"] = json!([
            {"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-pass-AbCdEf"},
            {"name": "DB_USER", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-config:user::"},
            {"name": "DB_PORT", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-config:port:AWSCURRENT:"},
            {"name": "APP_TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/app/token"},
        ]);
        let td = d.register(json!({"family": format!("bS-{mode}"), "networkMode": mode,
            "taskRoleArn": ROLE, "containerDefinitions": [app]}));
        let id = d.run_task(&td);
        d.wait_running(&id);
        let out = wait_log(&d, &id, "app", "DONE");
        for want in [
            "DB=hunter2",
            "USER=ada",
            "PORT=5432",
            "TOKEN=t0k",
            "GUESS-REFUSED",
        ] {
            assert!(out.lines().any(|l| l == want), "{want} in:\n{out}");
        }
        let creds = printed_json(&out, "CREDS=");
        assert_eq!(creds["RoleArn"], ROLE, "{creds:#}");
        assert_eq!(creds["AccessKeyId"], "AKIATEST");
        assert_eq!(creds["SecretAccessKey"], "s3cr3t");
        assert_eq!(creds["Token"], "sess10n");
        assert!(
            creds["Expiration"].as_str().unwrap().ends_with('Z'),
            "{creds:#}"
        );
        if mode == "awsvpc" {
            assert!(out.contains("REL=/v2/credentials/"), "{out}");
            assert!(out.lines().any(|l| l == "FULL="), "{out}");
        } else {
            assert!(out.lines().any(|l| l == "REL="), "{out}");
            assert!(
                out.contains("FULL=http://127.0.0.1:51679/v2/credentials/"),
                "{out}"
            );
            // What an SDK makes of it: botocore's container provider, alone in the chain.
            let uri = out.lines().find_map(|l| l.strip_prefix("FULL=")).unwrap();
            let sdk = d
                .host
                .command("python3")
                .args([
                    "-c",
                    "import botocore.session as s; c = s.Session().get_credentials(); \
                     f = c.get_frozen_credentials(); print(c.method, f.access_key, f.secret_key, f.token)",
                ])
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_SESSION_TOKEN")
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .env("AWS_CONFIG_FILE", d.scratch().join("none"))
                .env("AWS_SHARED_CREDENTIALS_FILE", d.scratch().join("none"))
                .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&sdk.stdout).trim(),
                "container-role AKIATEST s3cr3t sess10n",
                "{}",
                String::from_utf8_lossy(&sdk.stderr)
            );
        }
        let described = d.describe(&id).to_string();
        assert!(!described.contains("hunter2"), "{described}");
        d.kill_task(&id);
        d.wait_stopped(&id, Duration::from_secs(60));
    }

    // Credentials go with the task's end, and with `berth role rm`.
    cli_ok(&d, &["role", "rm", ROLE]);
    let mut app = container(
        "app",
        &image,
        "wget -q -O - http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || echo NO-CREDS; \
         echo DONE; exec sleep 600",
    );
    app["essential"] = json!(true);
    let td = d.register(json!({"family": "bS-norole", "taskRoleArn": ROLE,
        "networkMode": "awsvpc", "containerDefinitions": [app]}));
    let id = d.run_task(&td);
    let out = wait_log(&d, &id, "app", "DONE");
    assert!(out.contains("NO-CREDS"), "{out}");
    d.kill_task(&id);
    d.wait_stopped(&id, Duration::from_secs(60));

    // A secret that is not stored fails the start, naming it and the fix.
    let mut app = container("app", &image, "echo never");
    app["secrets"] = json!([{"name": "API_KEY",
        "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-AbCdEf"}]);
    let td = d.register(json!({"family": "bS-missing", "containerDefinitions": [app]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.starts_with("ResourceInitializationError: unable to pull secrets")
            && reason.contains("variable API_KEY")
            && reason.contains("berth secret put api-key`"),
        "{reason}"
    );

    cli_ok(&d, &["secret", "rm", "db-pass"]);
    let gone = d.cli(&["secret", "rm", "db-pass"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("db-pass is not in berth's secret store")
    );
    let bad = d.cli(&["secret", "put", "bad name", "--value", "x"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("InvalidParameterException"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(!d.log().contains("hunter2"));
    d.assert_clean();
}
