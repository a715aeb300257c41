//! ECS services on the real kernel: the scheduler keeps the desired count running,
//! replaces stopped tasks, scales, rolls a new task definition out, trips the circuit
//! breaker and rolls back, survives a daemon restart, and drains on delete.

use std::time::{Duration, Instant};

use berth_tests::daemon::{APPLETS, Daemon, busybox_layout};
use berth_tests::require_e2e;
use serde_json::{Value, json};

/// Polls DescribeServices until `ok` holds for the service (60 s at most).
fn wait_service(d: &Daemon, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = d.ok("DescribeServices", json!({"services": [name]}))["services"][0].clone();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "service {name} never got to {what}: {s:#}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn running_tasks(d: &Daemon, service: &str) -> Vec<String> {
    let arns = d.ok("ListTasks", json!({"serviceName": service}))["taskArns"].clone();
    let arns: Vec<String> = serde_json::from_value(arns).unwrap();
    if arns.is_empty() {
        return arns;
    }
    let tasks = d.ok("DescribeTasks", json!({"tasks": arns}))["tasks"].clone();
    tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .map(|t| {
            t["taskArn"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn events(s: &Value) -> String {
    s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned() + "\n")
        .collect()
}

fn settled(s: &Value, desired: u64, td: &str) -> bool {
    s["runningCount"] == desired
        && s["pendingCount"] == 0
        && s["deployments"].as_array().unwrap().len() == 1
        && s["deployments"][0]["rolloutState"] == "COMPLETED"
        && s["taskDefinition"].as_str().unwrap().ends_with(td)
}

#[test]
fn a_service_keeps_its_tasks_scales_rolls_out_and_drains() {
    require_e2e!();
    let mut d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    let app = |marker: &str| {
        json!({"name": "app", "image": image, "memory": 32, "stopTimeout": 1,
            "entryPoint": ["sh", "-c"], "command": [format!("echo {marker}; exec sleep 600")]})
    };
    d.register(json!({"family": "svc", "containerDefinitions": [app("v1")]}));
    d.register(json!({"family": "svc", "containerDefinitions": [app("v2")]}));
    let broken = json!({"name": "app", "image": "127.0.0.1:9/nowhere/nothing:1", "memory": 32});
    d.register(json!({"family": "svc", "containerDefinitions": [broken]}));

    // Created: the desired count starts, the deployment completes, the service settles.
    let created = d.ok(
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "svc:1", "desiredCount": 2,
            "deploymentConfiguration": {"minimumHealthyPercent": 50,
                "deploymentCircuitBreaker": {"enable": true, "rollback": true}},
            "tags": [{"key": "team", "value": "edge"}], "propagateTags": "SERVICE"}),
    )["service"]
        .clone();
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["schedulingStrategy"], "REPLICA");
    assert!(
        created["serviceArn"]
            .as_str()
            .unwrap()
            .ends_with(":service/default/web")
    );
    let first = created["deployments"][0]["id"].as_str().unwrap().to_owned();
    assert!(first.starts_with("ecs-svc/"), "{first}");
    let s = wait_service(&d, "web", "2 running", |s| settled(s, 2, "svc:1"));
    let ev = events(&s);
    assert!(ev.contains("(service web) has started 2 tasks"), "{ev}");
    assert!(
        ev.contains("(service web) has reached a steady state."),
        "{ev}"
    );
    let tasks = running_tasks(&d, "web");
    assert_eq!(tasks.len(), 2);
    let t = d.describe(&tasks[0]);
    assert_eq!(t["group"], "service:web");
    assert_eq!(t["startedBy"], first.as_str());
    let tags = d.ok("ListTagsForResource", json!({"resourceArn": t["taskArn"]}));
    assert_eq!(tags["tags"], json!([{"key": "team", "value": "edge"}]));
    // The AWS CLI's waiter sees it stable.
    let out = d.aws(&["wait", "services-stable", "--services", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A task that stops is replaced.
    d.ok("StopTask", json!({"task": tasks[0]}));
    let gone = tasks[0].clone();
    // (Counts are the scheduler's last pass: the tasks themselves must show it.)
    let s = wait_service(&d, "web", "the task replaced", |s| {
        let running = running_tasks(&d, "web");
        settled(s, 2, "svc:1") && running.len() == 2 && !running.contains(&gone)
    });
    assert_eq!(d.describe(&gone)["stopCode"], "UserInitiated");
    assert!(events(&s).contains("has started 1 tasks"), "{}", events(&s));

    // Scaled in: the scheduler stops one, saying why.
    let before = running_tasks(&d, "web");
    d.ok(
        "UpdateService",
        json!({"service": "web", "desiredCount": 1}),
    );
    wait_service(&d, "web", "1 running", |s| settled(s, 1, "svc:1"));
    let after = running_tasks(&d, "web");
    let stopped: Vec<&String> = before.iter().filter(|t| !after.contains(t)).collect();
    assert_eq!(stopped.len(), 1);
    let t = d.wait_stopped(stopped[0], Duration::from_secs(30));
    assert_eq!(t["stopCode"], "ServiceSchedulerInitiated");
    assert_eq!(
        t["stoppedReason"],
        format!("Scaling activity initiated by (deployment {first})")
    );

    // A new task definition rolls out: a new deployment replaces the old one's task.
    let old = after[0].clone();
    let s = d.ok(
        "UpdateService",
        json!({"service": "web", "taskDefinition": "svc:2"}),
    )["service"]
        .clone();
    assert_eq!(s["deployments"].as_array().unwrap().len(), 2);
    assert_eq!(s["deployments"][0]["status"], "PRIMARY");
    assert_eq!(s["deployments"][1]["status"], "ACTIVE");
    wait_service(&d, "web", "svc:2 deployed", |s| settled(s, 1, "svc:2"));
    let now_running = running_tasks(&d, "web");
    assert!(!now_running.contains(&old));
    assert!(d.logs(&now_running[0], "app").contains("v2"));

    // A restarted daemon goes on keeping the count.
    d.kill9();
    d.restart();
    d.ok("StopTask", json!({"task": now_running[0]}));
    wait_service(&d, "web", "replaced after a restart", |s| {
        let running = running_tasks(&d, "web");
        settled(s, 1, "svc:2") && running.len() == 1 && !running.contains(&now_running[0])
    });

    // A task definition whose tasks cannot start: the circuit breaker fails the
    // deployment after 3 and rolls back to the last completed one.
    d.ok(
        "UpdateService",
        json!({"service": "web", "taskDefinition": "svc:3"}),
    );
    let s = wait_service(&d, "web", "rolled back", |s| {
        settled(s, 1, "svc:2") && events(s).contains("rolling back to task definition")
    });
    let ev = events(&s);
    assert!(
        ev.contains("deployment failed: tasks failed to start."),
        "{ev}"
    );

    // Deleting: refused while scaled above 0, then forced; it drains to INACTIVE.
    let e = d
        .call("DeleteService", &json!({"service": "web"}))
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    assert!(e.message.contains("scaled above 0"), "{}", e.message);
    let s = d.ok("DeleteService", json!({"service": "web", "force": true}))["service"].clone();
    assert_eq!(s["status"], "DRAINING");
    wait_service(&d, "web", "INACTIVE", |s| s["status"] == "INACTIVE");
    assert!(running_tasks(&d, "web").is_empty());
    let listed = d.ok("ListServices", json!({}));
    assert_eq!(listed["serviceArns"], json!([]));
    let e = d
        .call(
            "UpdateService",
            &json!({"service": "web", "desiredCount": 1}),
        )
        .unwrap_err();
    assert_eq!(e.code, "ServiceNotActiveException");

    // Errors in ECS's words.
    let missing = d.ok("DescribeServices", json!({"services": ["nope"]}));
    assert_eq!(missing["failures"][0]["reason"], "MISSING");
    let e = d
        .call(
            "UpdateService",
            &json!({"service": "nope", "desiredCount": 1}),
        )
        .unwrap_err();
    assert_eq!(e.code, "ServiceNotFoundException");
    let e = d
        .call(
            "CreateService",
            &json!({"serviceName": "x", "taskDefinition": "svc:1"}),
        )
        .unwrap_err();
    assert!(e.message.contains("desiredCount"), "{}", e.message);
    let e = d
        .call(
            "CreateService",
            &json!({"serviceName": "x", "taskDefinition": "svc:1", "desiredCount": 1, "bogus": 1}),
        )
        .unwrap_err();
    assert!(e.message.contains("bogus"), "{}", e.message);
    let e = d
        .call(
            "CreateService",
            &json!({"serviceName": "x", "taskDefinition": "svc:1", "desiredCount": 1,
                "loadBalancers": [{"targetGroupArn": "arn:x", "containerName": "app", "containerPort": 80}]}),
        )
        .unwrap_err();
    assert_eq!(e.code, "UnsupportedFeatureException");

    // A cluster with an active service cannot be deleted.
    d.ok("CreateCluster", json!({"clusterName": "edge"}));
    d.ok(
        "CreateService",
        json!({"cluster": "edge", "serviceName": "idle", "taskDefinition": "svc:1", "desiredCount": 0}),
    );
    let e = d
        .call("DeleteCluster", &json!({"cluster": "edge"}))
        .unwrap_err();
    assert_eq!(e.code, "ClusterContainsServicesException");
    d.ok(
        "DeleteService",
        json!({"cluster": "edge", "service": "idle"}),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while d
        .call("DeleteCluster", &json!({"cluster": "edge"}))
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the drained service kept the cluster"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    d.assert_clean();
}

#[test]
fn berth_service_commands_create_list_scale_roll_out_and_remove() {
    require_e2e!();
    let d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    let file = d.scratch().join("cli-svc.json");
    let def = |marker: &str| {
        json!({"family": "cli-svc", "containerDefinitions": [{"name": "app", "image": image,
            "memory": 32, "stopTimeout": 1, "entryPoint": ["sh", "-c"],
            "command": [format!("echo {marker}; exec sleep 600")]}]})
    };
    std::fs::write(&file, def("one").to_string()).unwrap();
    let cli = |args: &[&str]| {
        let out = d.cli(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "berth {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let arn = cli(&[
        "service",
        "create",
        "api",
        file.to_str().unwrap(),
        "-n",
        "2",
    ]);
    assert!(arn.trim().ends_with(":service/default/api"), "{arn}");
    let listed = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let table = cli(&["service", "ls"]);
            if table.lines().any(|l| {
                l.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .starts_with(want)
            }) {
                return table;
            }
            assert!(Instant::now() < deadline, "never {want:?}:\n{table}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let table = listed("api ACTIVE 2 2 0 cli-svc:1 cli-svc:1:COMPLETED");
    assert!(table.starts_with("SERVICE"), "{table}");
    cli(&["service", "scale", "api", "1"]);
    listed("api ACTIVE 1 1 0 cli-svc:1 cli-svc:1:COMPLETED");
    std::fs::write(&file, def("two").to_string()).unwrap();
    let deployment = cli(&["service", "update", "api", file.to_str().unwrap()]);
    assert!(deployment.starts_with("ecs-svc/"), "{deployment}");
    listed("api ACTIVE 1 1 0 cli-svc:2 cli-svc:2:COMPLETED");
    // The same definition again, forced: a new deployment replaces the task.
    let running = running_tasks(&d, "api");
    let forced = cli(&["service", "update", "api", "--force"]);
    assert!(
        forced.starts_with("ecs-svc/") && forced != deployment,
        "{forced}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = running_tasks(&d, "api");
        let s = d.ok("DescribeServices", json!({"services": ["api"]}))["services"][0].clone();
        if settled(&s, 1, "cli-svc:2") && now.len() == 1 && now != running {
            assert_eq!(s["deployments"][0]["id"], forced.trim());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the forced deployment never replaced the task"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A revision deregistered since still scales the service that runs it (as on ECS).
    d.ok(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "cli-svc:2"}),
    );
    cli(&["service", "scale", "api", "2"]);
    listed("api ACTIVE 2 2 0 cli-svc:2 cli-svc:2:COMPLETED");
    let events = cli(&["service", "events", "api"]);
    assert!(events.contains("deployment completed."), "{events}");
    assert!(
        events.lines().last().unwrap().contains("steady state"),
        "{events}"
    );
    let out = d.cli(&["service", "update", "api"]);
    assert!(!out.status.success());
    cli(&["service", "rm", "api"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cli(&["service", "ls"])
        .lines()
        .skip(1)
        .all(|l| l.trim().is_empty())
    {
        assert!(Instant::now() < deadline, "the service never went away");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cli(&["ps"]).lines().skip(1).all(|l| l.trim().is_empty()));
    d.assert_clean();
}

#[test]
fn a_task_that_fails_its_health_checks_is_replaced() {
    require_e2e!();
    let d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), APPLETS);
    let app = json!({"name": "app", "image": image, "memory": 32, "stopTimeout": 1,
        "entryPoint": ["sh", "-c"], "command": ["touch /tmp/healthy; exec sleep 600"],
        "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/healthy"],
            "interval": 5, "timeout": 2, "retries": 1}});
    d.register(json!({"family": "checked", "containerDefinitions": [app]}));
    d.ok(
        "CreateService",
        json!({"serviceName": "checked", "taskDefinition": "checked", "desiredCount": 1}),
    );
    let healthy = |d: &Daemon| {
        let running = running_tasks(d, "checked");
        (running.len() == 1 && d.describe(&running[0])["healthStatus"] == "HEALTHY")
            .then(|| running[0].clone())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Some(id) = healthy(&d) {
            break id;
        }
        assert!(Instant::now() < deadline, "the task never got healthy");
        std::thread::sleep(Duration::from_millis(200));
    };

    // Its check starts failing: the scheduler stops it and starts another.
    let out = d.cli(&["exec", &first, "--", "rm", "/tmp/healthy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = d.wait_stopped(&first, Duration::from_secs(60));
    assert_eq!(t["stopCode"], "ServiceSchedulerInitiated");
    assert_eq!(t["stoppedReason"], "Task failed container health checks");
    let deadline = Instant::now() + Duration::from_secs(60);
    while healthy(&d).is_none_or(|id| id == first) {
        assert!(Instant::now() < deadline, "no healthy replacement");
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = d.ok("DescribeServices", json!({"services": ["checked"]}))["services"][0].clone();
    assert!(
        events(&s).contains("has stopped 1 running tasks"),
        "{}",
        events(&s)
    );
    d.ok(
        "DeleteService",
        json!({"service": "checked", "force": true}),
    );
    wait_service(&d, "checked", "INACTIVE", |s| s["status"] == "INACTIVE");
    d.assert_clean();
}
