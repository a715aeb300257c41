//! RunTask through the API: count, overrides, startedBy/group and the ListTasks
//! filters, clientToken idempotency, and ECS's RESOURCE:* failures when the host is
//! short of CPU, memory or a host port.

mod api_support;

use std::time::Duration;

use api_support::{
    HostRegistry, aws_err, aws_ok, container, setup, setup_with, task_arns, task_id,
    with_host_registry,
};
use berth_tests::daemon::{APPLETS, Daemon};
use berth_tests::images::ImageBuilder;
use berth_tests::proxy::Auth;
use berth_tests::require_e2e;
use serde_json::{Value, json};

fn logs(d: &Daemon, id: &str, container: &str) -> String {
    let out = d.cli(&["logs", id, container]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn list(d: &Daemon, body: Value) -> Vec<String> {
    let v = d.ok("ListTasks", body);
    sorted(
        v["taskArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect(),
    )
}

fn stop_and_wait(d: &Daemon, arns: &[String]) {
    for a in arns {
        d.kill_task(&task_id(a));
    }
    for a in arns {
        d.wait_stopped(&task_id(a), Duration::from_secs(30));
    }
}

#[test]
fn count_overrides_started_by_and_group_reach_the_tasks() {
    require_e2e!();
    let (d, image) = setup();
    let mut main = container("main", &image, "echo base; sleep 600");
    main["environment"] =
        json!([{"name": "KEEP", "value": "k"}, {"name": "CHANGE", "value": "old"}]);
    d.register(json!({"family": "ovr", "containerDefinitions": [main]}));

    // count: 3 tasks, each its own id, all with the request's startedBy and group.
    let v = d.ok(
        "RunTask",
        json!({"taskDefinition": "ovr", "count": 3, "startedBy": "batch-7", "group": "nightly"}),
    );
    let three = task_arns(&v);
    assert_eq!(three.len(), 3, "{v:#}");
    assert_eq!(
        sorted(three.clone())
            .windows(2)
            .filter(|w| w[0] == w[1])
            .count(),
        0
    );
    for t in v["tasks"].as_array().unwrap() {
        assert_eq!(t["startedBy"], "batch-7");
        assert_eq!(t["group"], "nightly");
        assert_eq!(t["desiredStatus"], "RUNNING");
        assert_eq!(
            t["taskDefinitionArn"],
            "arn:aws:ecs:us-east-1:000000000000:task-definition/ovr:1"
        );
    }
    for a in &three {
        d.wait_running(&task_id(a));
    }
    // count is bounded as in ECS.
    for bad in [0, 11] {
        let e = d
            .call("RunTask", &json!({"taskDefinition": "ovr", "count": bad}))
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException", "{e:?}");
        assert!(e.message.contains("count"), "{e:?}");
    }

    // Overrides: command, environment (merged by name), cpu and memory, task level too.
    let v = d.ok(
        "RunTask",
        json!({
            "taskDefinition": "ovr",
            "overrides": {
                "cpu": "512",
                "memory": "256",
                "containerOverrides": [{
                    "name": "main",
                    "command": ["echo cmd=overridden KEEP=$KEEP CHANGE=$CHANGE NEW=$NEW; exit 0"],
                    "environment": [{"name": "CHANGE", "value": "new"}, {"name": "NEW", "value": "n"}],
                    "cpu": 256,
                    "memory": 128
                }]
            }
        }),
    );
    let t = &v["tasks"][0];
    assert_eq!(t["cpu"], "512", "{t:#}");
    assert_eq!(t["memory"], "256", "{t:#}");
    assert_eq!(t["containers"][0]["cpu"], "256");
    assert_eq!(t["containers"][0]["memory"], "128");
    assert_eq!(t["overrides"]["containerOverrides"][0]["name"], "main");
    assert_eq!(t["overrides"]["cpu"], "512");
    let id = task_id(t["taskArn"].as_str().unwrap());
    let stopped = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(stopped["containers"][0]["exitCode"], 0, "{stopped:#}");
    let out = logs(&d, &id, "main");
    assert!(
        out.contains("cmd=overridden KEEP=k CHANGE=new NEW=n"),
        "{out:?}"
    );
    // The group defaults to the family.
    let v = d.ok("RunTask", json!({"taskDefinition": "ovr"}));
    assert_eq!(v["tasks"][0]["group"], "family:ovr");
    assert!(v["tasks"][0].get("startedBy").is_none());
    let plain = task_arns(&v);

    // Overrides naming an unknown container or with a wrong type are refused.
    let e = d
        .call(
            "RunTask",
            &json!({"taskDefinition": "ovr", "overrides": {"containerOverrides": [{"name": "ghost", "command": ["x"]}]}}),
        )
        .unwrap_err();
    assert!(
        e.code.ends_with("Exception") && e.status == 400 && e.message.contains("ghost"),
        "{e:?}"
    );
    let e = d
        .call(
            "RunTask",
            &json!({"taskDefinition": "ovr", "overrides": {"containerOverrides": [{"name": "main", "memory": "lots"}]}}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException", "{e:?}");
    assert!(e.message.contains("memory"), "{e:?}");

    // The same through the aws CLI, with the overrides as JSON.
    let v = aws_ok(
        &d,
        &[
            "run-task",
            "--task-definition",
            "ovr",
            "--overrides",
            r#"{"containerOverrides":[{"name":"main","command":["echo from-cli; exit 5"]}]}"#,
            "--started-by",
            "cli",
        ],
    );
    let cli_id = task_id(&task_arns(&v)[0]);
    let t = d.wait_stopped(&cli_id, Duration::from_secs(60));
    assert_eq!(t["containers"][0]["exitCode"], 5);
    assert!(logs(&d, &cli_id, "main").contains("from-cli"));

    stop_and_wait(&d, &three);
    stop_and_wait(&d, &plain);
    d.assert_clean();
}

#[test]
fn list_tasks_filters_by_family_desired_status_and_started_by() {
    require_e2e!();
    let (d, image) = setup();
    d.register(json!({"family": "alpha", "containerDefinitions": [container("main", &image, "sleep 600")]}));
    d.register(
        json!({"family": "beta", "containerDefinitions": [container("main", &image, "sleep 600")]}),
    );
    d.register(
        json!({"family": "gamma", "containerDefinitions": [container("main", &image, "exit 0")]}),
    );
    let a = task_arns(&d.ok(
        "RunTask",
        json!({"taskDefinition": "alpha", "count": 2, "startedBy": "me"}),
    ));
    let b = task_arns(&d.ok(
        "RunTask",
        json!({"taskDefinition": "beta", "startedBy": "you"}),
    ));
    let g = task_arns(&d.ok(
        "RunTask",
        json!({"taskDefinition": "gamma", "startedBy": "me"}),
    ));
    d.wait_stopped(&task_id(&g[0]), Duration::from_secs(60));

    let running = sorted([a.clone(), b.clone()].concat());
    assert_eq!(list(&d, json!({})), running);
    assert_eq!(list(&d, json!({"desiredStatus": "RUNNING"})), running);
    assert_eq!(list(&d, json!({"desiredStatus": "STOPPED"})), g);
    assert_eq!(list(&d, json!({"family": "alpha"})), sorted(a.clone()));
    assert_eq!(list(&d, json!({"family": "gamma"})), Vec::<String>::new());
    assert_eq!(
        list(&d, json!({"family": "gamma", "desiredStatus": "STOPPED"})),
        g
    );
    assert_eq!(list(&d, json!({"startedBy": "me"})), sorted(a.clone()));
    assert_eq!(
        list(&d, json!({"startedBy": "me", "desiredStatus": "STOPPED"})),
        g
    );
    assert_eq!(list(&d, json!({"startedBy": "you"})), b);
    assert_eq!(
        list(&d, json!({"startedBy": "nobody"})),
        Vec::<String>::new()
    );
    // The aws CLI's flags map onto the same filters.
    let v = aws_ok(
        &d,
        &["list-tasks", "--family", "beta", "--started-by", "you"],
    );
    assert_eq!(v["taskArns"], json!(b));
    let e = d
        .call("ListTasks", &json!({"desiredStatus": "SLEEPING"}))
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    assert!(e.message.contains("desiredStatus"), "{e:?}");

    stop_and_wait(&d, &running);
    assert_eq!(list(&d, json!({})), Vec::<String>::new());
    assert_eq!(
        list(&d, json!({"desiredStatus": "STOPPED"})),
        sorted([running, g].concat())
    );
    d.assert_clean();
}

#[test]
fn a_client_token_makes_run_task_idempotent() {
    require_e2e!();
    let (d, image) = setup();
    d.register(
        json!({"family": "idem", "containerDefinitions": [container("main", &image, "sleep 600")]}),
    );
    let req = json!({"taskDefinition": "idem", "count": 2, "clientToken": "token-1"});
    let first = task_arns(&d.ok("RunTask", req.clone()));
    assert_eq!(first.len(), 2);
    let second = d.ok("RunTask", req.clone());
    assert_eq!(
        task_arns(&second),
        first,
        "a retry must return the same tasks"
    );
    assert_eq!(second["failures"], json!([]));
    assert_eq!(list(&d, json!({"family": "idem"})).len(), 2);

    // The same token with different parameters is an error, not new tasks.
    let e = d
        .call(
            "RunTask",
            &json!({"taskDefinition": "idem", "count": 1, "clientToken": "token-1"}),
        )
        .unwrap_err();
    assert!(
        matches!(
            e.code.as_str(),
            "ConflictException" | "InvalidParameterException" | "ClientException"
        ) && e.status == 400,
        "{e:?}"
    );
    assert!(e.message.contains("token-1"), "{e:?}");
    // The token is scoped to the cluster and other tokens run new tasks.
    let other = task_arns(&d.ok(
        "RunTask",
        json!({"taskDefinition": "idem", "count": 2, "clientToken": "token-2"}),
    ));
    assert_eq!(other.len(), 2);
    assert!(other.iter().all(|a| !first.contains(a)));
    // Through the aws CLI as well.
    let v1 = aws_ok(
        &d,
        &[
            "run-task",
            "--task-definition",
            "idem",
            "--client-token",
            "cli-token",
        ],
    );
    let v2 = aws_ok(
        &d,
        &[
            "run-task",
            "--task-definition",
            "idem",
            "--client-token",
            "cli-token",
        ],
    );
    assert_eq!(task_arns(&v1), task_arns(&v2));
    let err = aws_err(
        &d,
        &[
            "run-task",
            "--task-definition",
            "idem",
            "--client-token",
            "cli-token",
            "--started-by",
            "x",
        ],
    );
    assert!(err.contains("Exception)"), "{err}");
    // A bad token is a parameter error.
    let e = d
        .call(
            "RunTask",
            &json!({"taskDefinition": "idem", "clientToken": "x".repeat(65)}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException", "{e:?}");
    assert!(e.message.contains("clientToken"), "{e:?}");

    stop_and_wait(&d, &[first, other, task_arns(&v1)].concat());
    // After the tasks stopped, the retry still answers with the same (stopped) tasks.
    let again = d.ok("RunTask", req);
    assert_eq!(
        sorted(task_arns(&again)),
        sorted(task_arns(&second)),
        "{again:#}"
    );
    d.assert_clean();
}

fn failures(v: &Value) -> Vec<String> {
    v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn run_task_reports_resource_failures_as_ecs_does() {
    require_e2e!();
    let (d, image) = setup();
    let host = d.ok(
        "DescribeContainerInstances",
        json!({"containerInstances": [
            d.ok("ListContainerInstances", json!({}))["containerInstanceArns"][0].clone()
        ]}),
    );
    let regs = &host["containerInstances"][0]["registeredResources"];
    let get = |name: &str| -> i64 {
        regs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["integerValue"]
            .as_i64()
            .unwrap()
    };
    let (cpu, mem) = (get("CPU"), get("MEMORY"));

    // CPU: each task takes more than half of the host's units; the second does not fit.
    let half = cpu / 2 + 1;
    d.register(json!({"family": "cpuhog", "cpu": half.to_string(), "memory": "32", "containerDefinitions": [container("main", &image, "sleep 600")]}));
    let v = d.ok("RunTask", json!({"taskDefinition": "cpuhog", "count": 2}));
    assert_eq!(task_arns(&v).len(), 1, "{v:#}");
    assert_eq!(failures(&v), ["RESOURCE:CPU"]);
    let f = &v["failures"][0];
    assert!(
        f["arn"]
            .as_str()
            .unwrap()
            .contains(":container-instance/default/"),
        "{f}"
    );
    let cpu_task = task_arns(&v);
    // An override beyond the host is refused the same way.
    let v = d.ok(
        "RunTask",
        json!({"taskDefinition": "cpuhog", "overrides": {"cpu": (cpu * 2).to_string()}}),
    );
    assert_eq!(failures(&v), ["RESOURCE:CPU"], "{v:#}");
    assert_eq!(v["tasks"], json!([]));

    // Memory.
    d.register(json!({"family": "memhog", "containerDefinitions": [
        {"name": "main", "image": image, "memory": mem + 1, "entryPoint": ["sh", "-c"], "command": ["sleep 600"]}
    ]}));
    let v = d.ok("RunTask", json!({"taskDefinition": "memhog"}));
    assert_eq!(failures(&v), ["RESOURCE:MEMORY"], "{v:#}");
    let v = d.ok(
        "RunTask",
        json!({"taskDefinition": "cpuhog", "overrides": {"cpu": "128", "memory": (mem + 1).to_string()}}),
    );
    assert_eq!(failures(&v), ["RESOURCE:MEMORY"], "{v:#}");

    // Ports: a fixed host port is held by the first task.
    d.register(json!({"family": "porty", "networkMode": "bridge", "containerDefinitions": [{
        "name": "main", "image": image, "memory": 16, "entryPoint": ["sh", "-c"], "command": ["sleep 600"],
        "portMappings": [{"containerPort": 80, "hostPort": 8081}]
    }]}));
    let v = d.ok("RunTask", json!({"taskDefinition": "porty", "count": 3}));
    assert_eq!(task_arns(&v).len(), 1, "{v:#}");
    assert_eq!(failures(&v), ["RESOURCE:PORTS", "RESOURCE:PORTS"]);
    let port_task = task_arns(&v);
    d.wait_running(&task_id(&port_task[0]));
    let v = aws_ok(&d, &["run-task", "--task-definition", "porty"]);
    assert_eq!(failures(&v), ["RESOURCE:PORTS"]);

    // Once the holders stop, the resources are free again.
    stop_and_wait(&d, &[cpu_task, port_task].concat());
    let v = d.ok("RunTask", json!({"taskDefinition": "porty"}));
    assert_eq!(failures(&v), Vec::<String>::new(), "{v:#}");
    let again = task_arns(&v);
    let v = d.ok("RunTask", json!({"taskDefinition": "cpuhog"}));
    assert_eq!(failures(&v), Vec::<String>::new(), "{v:#}");
    stop_and_wait(&d, &[again, task_arns(&v)].concat());
    d.assert_clean();
}

#[test]
fn concurrent_retries_with_one_client_token_start_the_tasks_once() {
    require_e2e!();
    let (d, image) = setup();
    d.register(
        json!({"family": "race", "containerDefinitions": [container("main", &image, "sleep 600")]}),
    );
    // A client that timed out and retried while its first call was still being
    // processed: the calls overlap.
    for round in 0..3 {
        let token = format!("race-{round}");
        let answers: Vec<Vec<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (d, token) = (&d, token.clone());
                    s.spawn(move || {
                        sorted(task_arns(&d.ok(
                            "RunTask",
                            json!({"taskDefinition": "race", "count": 2, "clientToken": token}),
                        )))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for a in &answers {
            assert_eq!(a, &answers[0], "round {round}: retries got different tasks");
            assert_eq!(a.len(), 2);
        }
    }
    let all = list(&d, json!({"family": "race"}));
    assert_eq!(all.len(), 6, "{all:?}");
    stop_and_wait(&d, &all);
    d.assert_clean();
}

/// A container's `repositoryCredentials` name a secret in berth's store holding
/// `{"username", "password"}`: its image is pulled with that login, which the registry
/// requires (without it the pull is refused and the task fails to start).
#[test]
fn repository_credentials_pull_a_private_image_with_the_stored_login() {
    require_e2e!();
    let (d, _image) = setup_with(with_host_registry());
    let reg = HostRegistry::start(&d.host);
    let image = ImageBuilder::busybox(APPLETS)
        .cmd(&["sh", "-c", "echo from-a-private-image"])
        .build();
    let reference = reg.push(&d.host, &image, "private/app:v1");
    reg.proxy.set_auth(Auth::Basic {
        user: "ada".into(),
        password: "pw".into(),
    });

    d.register(json!({"family": "private-anon", "containerDefinitions": [
        {"name": "app", "image": reference, "memory": 32}]}));
    let id = d.run_task("private-anon");
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.starts_with("CannotPullContainerError") && reason.contains("repositoryCredentials"),
        "{reason}"
    );

    // A wrong password is refused as such; the secret, replaced, then works.
    let put = |login: &str| {
        let out = d.cli(&["secret", "put", "registry-login", "--value", login]);
        assert!(out.status.success(), "{out:?}");
    };
    put(r#"{"username":"ada","password":"wrong"}"#);
    d.register(json!({"family": "private", "containerDefinitions": [
        {"name": "app", "image": reference, "memory": 32, "repositoryCredentials": {
            "credentialsParameter": "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-login-AbCdEf"}}]}));
    let id = d.run_task("private");
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.contains("refused the credentials berth sent"),
        "{reason}"
    );
    put(r#"{"username":"ada","password":"pw"}"#);
    let id = d.run_task("private");
    let t = d.wait_stopped(&id, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{t:#}");
    assert!(logs(&d, &id, "app").contains("from-a-private-image"));
    assert!(
        reg.proxy
            .requests()
            .iter()
            .any(|r| r.path.contains("/manifests/")
                && r.header("authorization")
                    .is_some_and(|a| a.starts_with("Basic "))),
        "no authenticated manifest request"
    );
    d.assert_clean();
}
