//! The ECS API driven by the real `aws` CLI over SigV4-signed TCP, as a user of ECS
//! would: the seed task definitions, run, `aws ecs wait`, describe, stop, paging,
//! tags, clusters and the container instance view.

mod api_support;

use std::time::{Duration, Instant};

use api_support::{aws_err, aws_ok, json_file, seed, setup, task_arns, task_id};
use berth_tests::require_e2e;
use serde_json::{Value, json};

#[test]
fn the_seed_definitions_register_and_the_sample_app_runs_waits_and_stops_through_the_aws_cli() {
    require_e2e!();
    let (d, image) = setup();

    // The seeds whose images exist only on Docker Hub register unchanged.
    for name in ["sample-fargate.json", "fargate-task-definition.json"] {
        let def = seed(name);
        let v = aws_ok(
            &d,
            &[
                "register-task-definition",
                "--cli-input-json",
                &json_file(&d, name, &def),
            ],
        );
        let td = &v["taskDefinition"];
        assert_eq!(td["family"], def["family"]);
        assert_eq!(td["revision"], 1);
        assert_eq!(td["status"], "ACTIVE");
        assert_eq!(td["networkMode"], "awsvpc");
        assert!(td["registeredAt"].is_number(), "{td:#}");
    }
    // The as-written ones, fixed the way their readers would (strings to numbers, a
    // family for the one printed without).
    let mut web = seed("webserver.as-written.json");
    web["containerDefinitions"][0]["memory"] = json!(100);
    web["containerDefinitions"][0]["cpu"] = json!(99);
    aws_ok(
        &d,
        &[
            "register-task-definition",
            "--cli-input-json",
            &json_file(&d, "web.json", &web),
        ],
    );
    let mut scratch = seed("database-scratch.as-written.json");
    scratch["family"] = json!("database-scratch");
    scratch["memory"] = json!("512");
    let v = aws_ok(
        &d,
        &[
            "register-task-definition",
            "--cli-input-json",
            &json_file(&d, "scratch.json", &scratch),
        ],
    );
    assert_eq!(
        v["taskDefinition"]["volumes"][0]["name"],
        "database_scratch"
    );

    // The sample web page, on busybox.
    let mut sample = seed("sample-web-busybox.json");
    sample["containerDefinitions"][0]["image"] = json!(image);
    // busybox httpd as PID 1 ignores SIGTERM: do not wait ECS's 30 s default to stop it.
    sample["containerDefinitions"][0]["stopTimeout"] = json!(2);
    aws_ok(
        &d,
        &[
            "register-task-definition",
            "--cli-input-json",
            &json_file(&d, "sample.json", &sample),
        ],
    );
    let families = aws_ok(&d, &["list-task-definition-families"]);
    let mut families: Vec<&str> = families["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    families.sort();
    assert_eq!(
        families,
        [
            "database-scratch",
            "fargate-task-definition",
            "sample-fargate",
            "sample-web",
            "webserver"
        ]
    );

    let run = aws_ok(
        &d,
        &[
            "run-task",
            "--task-definition",
            "sample-web",
            "--started-by",
            "aws-cli-test",
        ],
    );
    assert_eq!(run["failures"], json!([]));
    let arn = task_arns(&run).remove(0);
    assert!(
        arn.starts_with("arn:aws:ecs:us-east-1:000000000000:task/default/")
            && task_id(&arn).len() == 32,
        "{arn}"
    );
    let waited = Instant::now();
    aws_ok(&d, &["wait", "tasks-running", "--tasks", &arn]);
    assert!(waited.elapsed() < Duration::from_secs(60));
    let t = aws_ok(&d, &["describe-tasks", "--tasks", &arn]);
    let task = &t["tasks"][0];
    assert_eq!(task["lastStatus"], "RUNNING");
    assert_eq!(task["startedBy"], "aws-cli-test");
    assert_eq!(task["group"], "family:sample-web");
    assert_eq!(task["containers"][0]["lastStatus"], "RUNNING");
    assert_eq!(task["containers"][0]["networkBindings"][0]["hostPort"], 80);
    assert_eq!(task["attachments"][0]["status"], "ATTACHED");
    let mut body = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !body.contains("Amazon ECS Sample App") {
        let out = d
            .host
            .output(
                "busybox",
                &["wget", "-q", "-O", "-", "http://127.0.0.1:80/"],
            )
            .unwrap();
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(body.contains("Congratulations!"), "{body:?}");

    aws_ok(
        &d,
        &[
            "stop-task",
            "--task",
            &arn,
            "--reason",
            "done with the sample",
        ],
    );
    aws_ok(&d, &["wait", "tasks-stopped", "--tasks", &arn]);
    let t = aws_ok(&d, &["describe-tasks", "--tasks", &arn]);
    let task = &t["tasks"][0];
    assert_eq!(task["lastStatus"], "STOPPED");
    assert_eq!(task["desiredStatus"], "STOPPED");
    assert_eq!(task["stopCode"], "UserInitiated");
    assert_eq!(task["stoppedReason"], "done with the sample");
    assert!(task["stoppedAt"].is_number());
    d.assert_clean();
}

#[test]
fn the_tasks_running_waiter_fails_fast_on_a_missing_or_stopped_task() {
    require_e2e!();
    let (d, image) = setup();
    let missing =
        "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef";
    let err = aws_err(&d, &["wait", "tasks-running", "--tasks", missing]);
    assert!(err.contains("Waiter TasksRunning failed"), "{err}");
    let t = aws_ok(&d, &["describe-tasks", "--tasks", missing]);
    assert_eq!(
        t["failures"],
        json!([{"arn": missing, "reason": "MISSING"}])
    );
    assert_eq!(t["tasks"], json!([]));

    d.register(api_support::sh_def("quick", &image, "exit 4"));
    let arn = task_arns(&aws_ok(&d, &["run-task", "--task-definition", "quick"])).remove(0);
    aws_ok(&d, &["wait", "tasks-stopped", "--tasks", &arn]);
    let err = aws_err(&d, &["wait", "tasks-running", "--tasks", &arn]);
    assert!(err.contains("Waiter TasksRunning failed"), "{err}");
    let t = aws_ok(&d, &["describe-tasks", "--tasks", &arn]);
    assert_eq!(t["tasks"][0]["containers"][0]["exitCode"], 4);
    d.assert_clean();
}

fn arns(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn list_calls_page_with_max_items_page_size_and_starting_token() {
    require_e2e!();
    let (d, image) = setup();
    d.register(api_support::sh_def("pager", &image, "sleep 600"));
    let run = aws_ok(
        &d,
        &["run-task", "--task-definition", "pager", "--count", "5"],
    );
    let mut all = task_arns(&run);
    all.sort();
    assert_eq!(all.len(), 5);

    // --page-size makes the CLI fetch page after page; the result is complete.
    let v = aws_ok(&d, &["list-tasks", "--page-size", "2"]);
    let mut listed = arns(&v, "taskArns");
    listed.sort();
    assert_eq!(listed, all);

    // --max-items returns a resumable token.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec!["list-tasks", "--max-items", "2", "--page-size", "2"];
        if let Some(t) = &token {
            args.extend(["--starting-token", t.as_str()]);
        }
        let v = aws_ok(&d, &args);
        let page = arns(&v, "taskArns");
        assert!(page.len() <= 2, "{v}");
        seen.extend(page);
        match v["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, all, "paging lost or repeated tasks");

    // The server honours maxResults itself.
    let first = d.ok("ListTasks", json!({"maxResults": 3}));
    assert_eq!(first["taskArns"].as_array().unwrap().len(), 3);
    let next = first["nextToken"].as_str().expect("a nextToken");
    let second = d.ok("ListTasks", json!({"maxResults": 3, "nextToken": next}));
    assert_eq!(second["taskArns"].as_array().unwrap().len(), 2);
    assert!(
        second.get("nextToken").is_none_or(Value::is_null),
        "{second}"
    );

    // Task definitions, families and clusters page too.
    for i in 0..4 {
        d.register(api_support::sh_def(&format!("fam{i}"), &image, "true"));
        d.register(api_support::sh_def("fam0", &image, "true"));
    }
    let v = aws_ok(&d, &["list-task-definitions", "--page-size", "2"]);
    assert_eq!(arns(&v, "taskDefinitionArns").len(), 9);
    let v = aws_ok(
        &d,
        &[
            "list-task-definitions",
            "--family-prefix",
            "fam0",
            "--sort",
            "DESC",
            "--max-items",
            "2",
        ],
    );
    assert_eq!(
        arns(&v, "taskDefinitionArns"),
        [
            "arn:aws:ecs:us-east-1:000000000000:task-definition/fam0:5",
            "arn:aws:ecs:us-east-1:000000000000:task-definition/fam0:4"
        ]
    );
    assert!(v["NextToken"].is_string());
    let v = aws_ok(&d, &["list-task-definition-families", "--page-size", "1"]);
    assert_eq!(arns(&v, "families").len(), 5);
    for c in ["pa", "pb", "pc"] {
        aws_ok(&d, &["create-cluster", "--cluster-name", c]);
    }
    let v = aws_ok(&d, &["list-clusters", "--page-size", "1"]);
    let clusters = arns(&v, "clusterArns");
    assert_eq!(clusters.len(), 4, "{clusters:?}");
    let v = aws_ok(&d, &["list-clusters", "--max-items", "3"]);
    assert_eq!(arns(&v, "clusterArns").len(), 3);
    let v = aws_ok(
        &d,
        &[
            "list-clusters",
            "--max-items",
            "3",
            "--starting-token",
            v["NextToken"].as_str().unwrap(),
        ],
    );
    assert_eq!(arns(&v, "clusterArns").len(), 1);

    for a in &all {
        d.kill_task(&task_id(a));
    }
    for a in &all {
        d.wait_stopped(&task_id(a), Duration::from_secs(30));
    }
    d.assert_clean();
}

fn tags(v: &Value) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = v["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_owned(),
                t["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    t.sort();
    t
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn tags_on_clusters_tasks_and_task_definitions() {
    require_e2e!();
    let (d, image) = setup();
    let _cleanup = api_support::ClusterCleanup {
        d: &d,
        clusters: &["tagged"],
    };
    let c = aws_ok(
        &d,
        &[
            "create-cluster",
            "--cluster-name",
            "tagged",
            "--tags",
            "key=team,value=infra",
        ],
    );
    let cluster_arn = c["cluster"]["clusterArn"].as_str().unwrap().to_owned();
    let td = aws_ok(
        &d,
        &[
            "register-task-definition",
            "--cli-input-json",
            &json_file(
                &d,
                "td.json",
                &json!({
                    "family": "tagged",
                    "containerDefinitions": [api_support::container("main", &image, "sleep 600")],
                    "tags": [{"key": "from", "value": "definition"}]
                }),
            ),
        ],
    );
    let td_arn = td["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(tags(&td), kv(&[("from", "definition")]));
    let run = aws_ok(
        &d,
        &[
            "run-task",
            "--cluster",
            "tagged",
            "--task-definition",
            "tagged",
            "--tags",
            "key=run,value=yes",
            "--propagate-tags",
            "TASK_DEFINITION",
        ],
    );
    let task_arn = task_arns(&run).remove(0);
    assert!(task_arn.contains(":task/tagged/"), "{task_arn}");

    let v = aws_ok(&d, &["list-tags-for-resource", "--resource-arn", &task_arn]);
    assert_eq!(tags(&v), kv(&[("from", "definition"), ("run", "yes")]));

    for arn in [&cluster_arn, &task_arn, &td_arn] {
        aws_ok(
            &d,
            &[
                "tag-resource",
                "--resource-arn",
                arn,
                "--tags",
                "key=a,value=1",
                "key=b,value=2",
            ],
        );
        aws_ok(
            &d,
            &[
                "tag-resource",
                "--resource-arn",
                arn,
                "--tags",
                "key=a,value=3",
            ],
        );
        aws_ok(
            &d,
            &[
                "untag-resource",
                "--resource-arn",
                arn,
                "--tag-keys",
                "b",
                "nope",
            ],
        );
        let v = aws_ok(&d, &["list-tags-for-resource", "--resource-arn", arn]);
        let got = tags(&v);
        assert!(got.contains(&("a".into(), "3".into())), "{arn}: {got:?}");
        assert!(!got.iter().any(|(k, _)| k == "b"), "{arn}: {got:?}");
    }
    // Describe calls show tags only when asked.
    let v = aws_ok(&d, &["describe-clusters", "--clusters", "tagged"]);
    assert!(v["clusters"][0].get("tags").is_none_or(|t| t == &json!([])));
    let v = aws_ok(
        &d,
        &[
            "describe-clusters",
            "--clusters",
            "tagged",
            "--include",
            "TAGS",
        ],
    );
    assert_eq!(
        tags(&v["clusters"][0]),
        kv(&[("a", "3"), ("team", "infra")])
    );
    let v = aws_ok(
        &d,
        &[
            "describe-tasks",
            "--cluster",
            "tagged",
            "--tasks",
            &task_arn,
            "--include",
            "TAGS",
        ],
    );
    assert_eq!(
        tags(&v["tasks"][0]),
        kv(&[("a", "3"), ("from", "definition"), ("run", "yes")])
    );
    let v = aws_ok(
        &d,
        &[
            "describe-task-definition",
            "--task-definition",
            &td_arn,
            "--include",
            "TAGS",
        ],
    );
    assert_eq!(tags(&v), kv(&[("a", "3"), ("from", "definition")]));

    // Unknown resources are modeled errors.
    let err = aws_err(
        &d,
        &[
            "list-tags-for-resource",
            "--resource-arn",
            "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef",
        ],
    );
    assert!(err.contains("(ResourceNotFoundException)"), "{err}");
    let err = aws_err(
        &d,
        &[
            "tag-resource",
            "--resource-arn",
            "arn:aws:ecs:us-east-1:000000000000:task-definition/nope:1",
            "--tags",
            "key=a,value=1",
        ],
    );
    assert!(err.contains("(ResourceNotFoundException)"), "{err}");
    let err = aws_err(
        &d,
        &[
            "tag-resource",
            "--resource-arn",
            "arn:aws:ecs:us-east-1:000000000000:cluster/nope",
            "--tags",
            "key=a,value=1",
        ],
    );
    assert!(err.contains("(ClusterNotFoundException)"), "{err}");
    let err = aws_err(
        &d,
        &["list-tags-for-resource", "--resource-arn", "not-an-arn"],
    );
    assert!(err.contains("(InvalidParameterException)"), "{err}");
    let err = aws_err(
        &d,
        &[
            "tag-resource",
            "--resource-arn",
            &cluster_arn,
            "--tags",
            "key=aws:reserved,value=1",
        ],
    );
    assert!(err.contains("(InvalidParameterException)"), "{err}");

    d.ok(
        "Berth.StopTask",
        json!({"cluster": "tagged", "task": task_arn, "timeoutSecs": 0}),
    );
    api_support::wait_for(Duration::from_secs(30), "the tagged task to stop", || {
        let v = d.ok(
            "DescribeTasks",
            json!({"cluster": "tagged", "tasks": [task_arn]}),
        );
        (v["tasks"][0]["lastStatus"] == "STOPPED").then_some(())
    });
    d.assert_clean();
}

#[test]
fn clusters_are_created_described_listed_and_deleted_and_default_always_exists() {
    require_e2e!();
    let (d, image) = setup();
    let _cleanup = api_support::ClusterCleanup {
        d: &d,
        clusters: &["blue"],
    };
    let v = aws_ok(&d, &["describe-clusters"]);
    assert_eq!(v["clusters"][0]["clusterName"], "default");
    assert_eq!(v["clusters"][0]["status"], "ACTIVE");
    assert_eq!(
        v["clusters"][0]["clusterArn"],
        "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    );

    let v = aws_ok(&d, &["create-cluster", "--cluster-name", "blue"]);
    assert_eq!(v["cluster"]["status"], "ACTIVE");
    assert_eq!(v["cluster"]["registeredContainerInstancesCount"], 1);
    // CreateCluster of an existing cluster is idempotent.
    let again = aws_ok(&d, &["create-cluster", "--cluster-name", "blue"]);
    assert_eq!(again["cluster"]["clusterArn"], v["cluster"]["clusterArn"]);
    let err = aws_err(&d, &["create-cluster", "--cluster-name", "no spaces"]);
    assert!(err.contains("(InvalidParameterException)"), "{err}");

    let v = aws_ok(
        &d,
        &[
            "describe-clusters",
            "--clusters",
            "blue",
            "default",
            "arn:aws:ecs:us-east-1:000000000000:cluster/green",
        ],
    );
    let names: Vec<&str> = v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clusterName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blue", "default"]);
    assert_eq!(
        v["failures"],
        json!([{"arn": "arn:aws:ecs:us-east-1:000000000000:cluster/green", "reason": "MISSING"}])
    );

    // A cluster with a running task cannot be deleted; counts follow the task.
    d.register(api_support::sh_def("inblue", &image, "sleep 600"));
    let arn = task_arns(&aws_ok(
        &d,
        &[
            "run-task",
            "--cluster",
            "blue",
            "--task-definition",
            "inblue",
        ],
    ))
    .remove(0);
    aws_ok(
        &d,
        &[
            "wait",
            "tasks-running",
            "--cluster",
            "blue",
            "--tasks",
            &arn,
        ],
    );
    let v = aws_ok(&d, &["describe-clusters", "--clusters", "blue"]);
    assert_eq!(v["clusters"][0]["runningTasksCount"], 1);
    let err = aws_err(&d, &["delete-cluster", "--cluster", "blue"]);
    assert!(err.contains("(ClusterContainsTasksException)"), "{err}");
    // Tasks of one cluster are invisible in another.
    let v = aws_ok(&d, &["list-tasks"]);
    assert_eq!(v["taskArns"], json!([]));
    let v = aws_ok(&d, &["describe-tasks", "--tasks", &arn]);
    assert_eq!(v["failures"][0]["reason"], "MISSING");
    let err = aws_err(&d, &["list-tasks", "--cluster", "green"]);
    assert!(err.contains("(ClusterNotFoundException)"), "{err}");
    let err = aws_err(
        &d,
        &[
            "run-task",
            "--cluster",
            "green",
            "--task-definition",
            "inblue",
        ],
    );
    assert!(err.contains("(ClusterNotFoundException)"), "{err}");

    aws_ok(&d, &["stop-task", "--cluster", "blue", "--task", &arn]);
    aws_ok(
        &d,
        &[
            "wait",
            "tasks-stopped",
            "--cluster",
            "blue",
            "--tasks",
            &arn,
        ],
    );
    let v = aws_ok(&d, &["delete-cluster", "--cluster", "blue"]);
    assert_eq!(v["cluster"]["status"], "INACTIVE");
    let v = aws_ok(&d, &["list-clusters"]);
    assert_eq!(
        arns(&v, "clusterArns"),
        ["arn:aws:ecs:us-east-1:000000000000:cluster/default"]
    );
    let err = aws_err(&d, &["delete-cluster", "--cluster", "default"]);
    assert!(err.contains("Exception)"), "{err}");
    let v = aws_ok(&d, &["describe-clusters", "--clusters", "default"]);
    assert_eq!(v["clusters"][0]["status"], "ACTIVE");
    // A deleted cluster can be created again.
    let v = aws_ok(&d, &["create-cluster", "--cluster-name", "blue"]);
    assert_eq!(v["cluster"]["status"], "ACTIVE");
    d.assert_clean();
}

fn resource(resources: &Value, name: &str) -> Value {
    resources
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {resources}"))
        .clone()
}

#[test]
fn the_host_is_one_container_instance_with_registered_and_remaining_resources() {
    require_e2e!();
    let (d, image) = setup();
    let v = aws_ok(&d, &["list-container-instances"]);
    let ci = arns(&v, "containerInstanceArns");
    assert_eq!(ci.len(), 1);
    assert!(
        ci[0].starts_with("arn:aws:ecs:us-east-1:000000000000:container-instance/default/"),
        "{ci:?}"
    );
    let v = aws_ok(
        &d,
        &[
            "describe-container-instances",
            "--container-instances",
            &ci[0],
            "nope",
        ],
    );
    assert_eq!(v["failures"], json!([{"arn": "nope", "reason": "MISSING"}]));
    let inst = &v["containerInstances"][0];
    assert_eq!(inst["status"], "ACTIVE");
    assert_eq!(inst["agentConnected"], true);
    let cpus = std::thread::available_parallelism().unwrap().get() as i64;
    let reg_cpu = resource(&inst["registeredResources"], "CPU")["integerValue"]
        .as_i64()
        .unwrap();
    assert_eq!(reg_cpu, cpus * 1024);
    let reg_mem = resource(&inst["registeredResources"], "MEMORY")["integerValue"]
        .as_i64()
        .unwrap();
    assert!(reg_mem > 256, "{inst:#}");
    assert_eq!(
        resource(&inst["remainingResources"], "CPU")["integerValue"],
        reg_cpu
    );

    // A task reserving 512 CPU units and 300 MiB with a published port.
    d.register(json!({
        "family": "reserve",
        "cpu": "512",
        "memory": "300",
        "containerDefinitions": [{
            "name": "main", "image": image, "entryPoint": ["sh", "-c"], "command": ["sleep 600"],
            "portMappings": [{"containerPort": 8080, "hostPort": 8080}]
        }]
    }));
    let arn = task_arns(&aws_ok(&d, &["run-task", "--task-definition", "reserve"])).remove(0);
    aws_ok(&d, &["wait", "tasks-running", "--tasks", &arn]);
    let v = aws_ok(
        &d,
        &[
            "describe-container-instances",
            "--container-instances",
            &ci[0],
        ],
    );
    let inst = &v["containerInstances"][0];
    assert_eq!(
        resource(&inst["remainingResources"], "CPU")["integerValue"],
        reg_cpu - 512
    );
    assert_eq!(
        resource(&inst["remainingResources"], "MEMORY")["integerValue"],
        reg_mem - 300
    );
    let ports = resource(&inst["remainingResources"], "PORTS")["stringSetValue"].clone();
    assert!(
        ports.as_array().unwrap().contains(&json!("8080")),
        "{ports}"
    );
    assert_eq!(inst["runningTasksCount"], 1);
    // The instance id alone works too; another cluster's view has its own ARN.
    let id = task_id(&ci[0]);
    let v = aws_ok(
        &d,
        &["describe-container-instances", "--container-instances", &id],
    );
    assert_eq!(v["containerInstances"][0]["containerInstanceArn"], ci[0]);
    let err = aws_err(
        &d,
        &[
            "describe-container-instances",
            "--cluster",
            "nope",
            "--container-instances",
            &id,
        ],
    );
    assert!(err.contains("(ClusterNotFoundException)"), "{err}");

    aws_ok(&d, &["stop-task", "--task", &arn]);
    aws_ok(&d, &["wait", "tasks-stopped", "--tasks", &arn]);
    let v = aws_ok(
        &d,
        &[
            "describe-container-instances",
            "--container-instances",
            &ci[0],
        ],
    );
    assert_eq!(
        resource(&v["containerInstances"][0]["remainingResources"], "MEMORY")["integerValue"],
        reg_mem
    );
    d.assert_clean();
}
