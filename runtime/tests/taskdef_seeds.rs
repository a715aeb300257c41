//! The task definitions printed in the project's seed documents parse and validate
//! (after the syntax fixes their authors' readers would make, each step asserted), and
//! register and describe as ECS would show them. Provenance: tests/data/seeds/README.md.

use std::time::SystemTime;

use berth_runtime::db::Db;
use berth_runtime::taskdef::registry::{self, ArnScope};
use berth_runtime::taskdef::{
    NetworkMode, ValidatedTaskDefinition, VolumeKind, parse_task_definition_file, validate,
};
use serde_json::{Value, json};

fn read(name: &str) -> String {
    let path = format!("{}/tests/data/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Removes the commas before `}` and `]` that the seed documents print.
fn without_trailing_commas(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        if ch == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}' | ']')) {
                continue;
            }
        }
        out.push(ch);
    }
    out
}

fn valid(json: &str) -> ValidatedTaskDefinition {
    validate(parse_task_definition_file(json.as_bytes()).unwrap()).unwrap()
}

fn describe(def: ValidatedTaskDefinition) -> Value {
    let mut db = Db::open_in_memory().unwrap();
    let scope = ArnScope::new("us-east-1", "000000000000");
    let tx = db.conn_mut().transaction().unwrap();
    let (stored, _) = registry::register(&tx, &scope, def, None, SystemTime::now()).unwrap();
    tx.commit().unwrap();
    let again = registry::describe(db.conn(), &scope, &stored.arn).unwrap();
    assert_eq!(
        again, stored,
        "what is read back equals what was registered"
    );
    stored.to_ecs_json()
}

#[test]
fn taskdef_sample_fargate_from_the_certification_post() {
    let td = valid(&read("sample-fargate.json"));
    assert_eq!(td.family(), "sample-fargate");
    assert_eq!(
        (td.task_cpu_units(), td.task_memory_mib()),
        (Some(256), Some(512))
    );
    assert_eq!(td.effective_network_mode(), NetworkMode::Awsvpc);
    assert!(td.warnings().is_empty(), "{:?}", td.warnings());
    let c = &td.containers()[0];
    assert_eq!(
        c.entry_point.as_deref(),
        Some(&["sh".to_string(), "-c".to_string()][..])
    );
    assert!(c.command.as_ref().unwrap()[0].contains("httpd-foreground"));
    let out = describe(td);
    assert_eq!(out["compatibilities"], json!(["EC2", "FARGATE"]));
    assert_eq!(out["requiresCompatibilities"], json!(["FARGATE"]));
    assert_eq!(
        out["requiresAttributes"],
        json!([{"name": "ecs.capability.task-eni"}])
    );
    assert_eq!(
        out["containerDefinitions"][0]["portMappings"],
        json!([{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}])
    );
    assert_eq!(
        (out["cpu"].clone(), out["memory"].clone()),
        (json!("256"), json!("512"))
    );
}

#[test]
fn taskdef_webserver_example_as_printed_and_fixed() {
    let as_written = read("webserver.as-written.json");
    let err = parse_task_definition_file(as_written.as_bytes()).unwrap_err();
    assert_eq!(err.to_string(), "trailing comma at line 10 column 3");

    let commas_fixed = without_trailing_commas(&as_written);
    let err = parse_task_definition_file(commas_fixed.as_bytes()).unwrap_err();
    assert_eq!(err.field(), "containerDefinitions[0].memory");
    assert_eq!(
        err.to_string(),
        "containerDefinitions[0].memory: invalid type: string \"100\", expected i32 at line 7 column 21"
    );

    let numbers = commas_fixed
        .replace("\"memory\": \"100\"", "\"memory\": 100")
        .replace("\"cpu\": \"99\"", "\"cpu\": 99");
    let td = valid(&numbers);
    assert_eq!(td.containers()[0].memory, Some(100));
    assert_eq!(td.containers()[0].cpu, Some(99));
    assert!(td.warnings().is_empty());
}

#[test]
fn taskdef_fargate_console_tutorial_definition() {
    let td = valid(&read("fargate-task-definition.json"));
    let warnings: Vec<String> = td.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "executionRoleArn: berth does not assume IAM roles; images are pulled with berth's own registry credentials",
            "containerDefinitions[0].logConfiguration.options: awslogs options awslogs-region are not used; logs stay on this host, named by awslogs-group and awslogs-stream-prefix",
        ]
    );
    let out = describe(td);
    assert_eq!(
        out["requiresAttributes"],
        json!([
            {"name": "ecs.capability.task-eni"},
            {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
            {"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"},
            {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.19"},
            {"name": "ecs.capability.execution-role-awslogs"},
        ])
    );
}

#[test]
fn taskdef_two_database_containers_share_a_scratch_volume() {
    let as_written = read("database-scratch.as-written.json");
    let err = parse_task_definition_file(as_written.as_bytes()).unwrap_err();
    assert_eq!(err.to_string(), "trailing comma at line 12 column 5");

    let fixed = without_trailing_commas(&as_written);
    let err = validate(parse_task_definition_file(fixed.as_bytes()).unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "family is required");

    let mut v: Value = serde_json::from_str(&fixed).unwrap();
    v["family"] = json!("database");
    let err = validate(serde_json::from_value(v.clone()).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "containerDefinitions[0].memory is required: container \"database1\" must set memory or memoryReservation when the task has no memory"
    );

    v["memory"] = json!("512");
    let td = valid(&v.to_string());
    assert!(td.warnings().is_empty());
    assert_eq!(
        td.definition().volume("database_scratch").unwrap().kind(),
        VolumeKind::Scratch
    );
    for c in td.containers() {
        let mp = &c.mount_points[0];
        assert_eq!(
            (mp.source_volume.as_deref(), mp.container_path.as_deref()),
            (Some("database_scratch"), Some("/var/scratch"))
        );
    }
    let out = describe(td);
    assert_eq!(
        out["volumes"],
        json!([{"name": "database_scratch", "host": {}}])
    );
    assert_eq!(out["compatibilities"], json!(["EXTERNAL", "EC2"]));
    assert!(out.get("networkMode").is_none());
}

#[test]
fn taskdef_busybox_sample_web_page() {
    let td = valid(&read("sample-web-busybox.json"));
    assert!(td.warnings().is_empty());
    assert!(
        td.containers()[0].command.as_ref().unwrap()[0].ends_with("exec httpd -f -p 80 -h /www")
    );
    let out = describe(td);
    assert_eq!(
        out["containerDefinitions"][0]["portMappings"][0]["hostPort"],
        json!(80)
    );
}
