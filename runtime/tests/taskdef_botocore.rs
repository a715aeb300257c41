//! berth's task definition output and stored input, checked against botocore's own
//! ECS model and parsers by `taskdef_botocore.py` (needs python3 with botocore, which
//! the API tests need anyway: `pip install boto3`).

// The json! literal of a definition using every member nests deeply.
#![recursion_limit = "256"]

use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use berth_runtime::db::Db;
use berth_runtime::taskdef::registry::{self, ArnScope};
use berth_runtime::taskdef::{parse_task_definition_file, validate};
use serde_json::{Value, json};

/// Uses nearly every member of the model (botocore 1.43: no trustedExecution or GPU
/// sharing, which come with 1.44).
fn everything_awsvpc() -> Value {
    json!({
        "family": "everything", "networkMode": "awsvpc", "cpu": "1 vCPU", "memory": "2 GB",
        "taskRoleArn": "arn:aws:iam::1:role/task", "executionRoleArn": "arn:aws:iam::1:role/exec",
        "pidMode": "task", "ipcMode": "task", "enableFaultInjection": false,
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "requiresCompatibilities": ["EC2"],
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "ephemeralStorage": {"sizeInGiB": 30},
        "proxyConfiguration": {"type": "APPMESH", "containerName": "envoy", "properties": [{"name": "AppPorts", "value": "8080"}]},
        "inferenceAccelerators": [{"deviceName": "d0", "deviceType": "eia2.medium"}],
        "tags": [{"key": "team", "value": "berth"}],
        "volumes": [
            {"name": "scratch"},
            {"name": "host", "host": {"sourcePath": "/srv/data"}},
            {"name": "named", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local",
                "driverOpts": {"type": "tmpfs"}, "labels": {"a": "b"}}},
            {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "/", "transitEncryption": "ENABLED",
                "transitEncryptionPort": 2049, "authorizationConfig": {"accessPointId": "fsap-1", "iam": "ENABLED"}}},
            {"name": "fsx", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "fs-2", "rootDirectory": "share",
                "authorizationConfig": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:1:secret:x", "domain": "corp"}}},
            {"name": "s3files", "s3filesVolumeConfiguration": {"fileSystemArn": "arn:aws:s3files:us-east-1:1:fs/x",
                "rootDirectory": "/", "transitEncryptionPort": 2049}},
            {"name": "ebs", "configuredAtLaunch": true}
        ],
        "containerDefinitions": [
            {
                "name": "app", "image": "registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:1:secret:reg"},
                "cpu": 512, "memory": 1024, "memoryReservation": 512, "essential": true,
                "restartPolicy": {"enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60},
                "entryPoint": ["/app"], "command": ["serve"], "workingDirectory": "/srv", "user": "1000:1000",
                "environment": [{"name": "MODE", "value": "prod"}],
                "environmentFiles": [{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}, {"value": "/etc/app.env", "type": "s3"}],
                "secrets": [{"name": "DB_PASS", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}],
                "portMappings": [{"containerPort": 8080, "protocol": "tcp", "name": "web", "appProtocol": "http"},
                                 {"containerPortRange": "9000-9010", "protocol": "udp"}],
                "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": false},
                                {"sourceVolume": "host", "containerPath": "/data", "readOnly": true}],
                "volumesFrom": [{"sourceContainer": "envoy", "readOnly": true}],
                "linuxParameters": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                    "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse", "permissions": ["read", "write"]}],
                    "initProcessEnabled": true, "sharedMemorySize": 64,
                    "tmpfs": [{"containerPath": "/run", "size": 16, "mountOptions": ["nosuid", "mode=1777"]}],
                    "maxSwap": 0, "swappiness": 10},
                "dependsOn": [{"containerName": "envoy", "condition": "HEALTHY"}, {"containerName": "init", "condition": "SUCCESS"}],
                "startTimeout": 60, "stopTimeout": 20, "versionConsistency": "disabled",
                "disableNetworking": false, "privileged": false, "readonlyRootFilesystem": true,
                "dnsServers": ["10.0.0.2"], "dnsSearchDomains": ["corp.local"],
                "dockerSecurityOptions": ["no-new-privileges"], "interactive": true, "pseudoTerminal": true,
                "dockerLabels": {"com.example.role": "app"},
                "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-stream-prefix": "p"},
                    "secretOptions": [{"name": "token", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/t"}]},
                "healthCheck": {"command": ["CMD-SHELL", "wget -q -O- localhost:8080/health || exit 1"], "startPeriod": 10},
                "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
                "resourceRequirements": [{"type": "GPU", "value": "1"}, {"type": "InferenceAccelerator", "value": "d0"}],
                "credentialSpecs": ["credentialspec:arn:aws:ssm:us-east-1:1:parameter/spec"]
            },
            {
                "name": "envoy", "image": "envoyproxy/envoy:v1.29", "memoryReservation": 128,
                "healthCheck": {"command": ["CMD", "/bin/true"], "interval": 10, "timeout": 3, "retries": 2},
                "firelensConfiguration": {"type": "fluentbit", "options": {"enable-ecs-log-metadata": "true"}}
            },
            {"name": "init", "image": "busybox", "essential": false, "memory": 16, "command": ["true"]}
        ]
    })
}

fn bridge_links() -> Value {
    json!({
        "family": "links", "pidMode": "host", "ipcMode": "none",
        "containerDefinitions": [
            {"name": "web", "image": "nginx", "memory": 128, "links": ["db:database"], "hostname": "web",
             "extraHosts": [{"hostname": "upstream", "ipAddress": "192.0.2.10"}],
             "portMappings": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 443}]},
            {"name": "db", "image": "postgres:16", "memory": 256, "essential": false,
             "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}}}
        ]
    })
}

/// `describe-task-definition` output is a valid task definition file: registering it
/// again gives the same definition (the defaults ECS fills are stable).
fn assert_describe_output_registers_again_unchanged(name: &str, describe: &Value) {
    let again = validate(parse_task_definition_file(describe.to_string().as_bytes()).unwrap())
        .unwrap_or_else(|e| panic!("{name}: describe output does not validate: {e}"));
    let mut db = Db::open_in_memory().unwrap();
    let tx = db.conn_mut().transaction().unwrap();
    let scope = ArnScope::new("us-east-1", "000000000000");
    let (stored, _) = registry::register(&tx, &scope, again, None, UNIX_EPOCH).unwrap();
    let mut second = stored.to_ecs_json();
    let mut first = describe.clone();
    for key in [
        "taskDefinitionArn",
        "revision",
        "status",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    ] {
        first.as_object_mut().unwrap().remove(key);
        second.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(
        first, second,
        "{name}: describe output changes when registered again"
    );
}

#[test]
fn taskdef_output_and_stored_input_match_botocores_ecs_model() {
    let seeds = format!("{}/tests/data/seeds", env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<(String, Value)> = vec![
        ("everything-awsvpc".into(), everything_awsvpc()),
        ("bridge-links".into(), bridge_links()),
    ];
    for file in [
        "sample-fargate.json",
        "fargate-task-definition.json",
        "sample-web-busybox.json",
    ] {
        let text = std::fs::read_to_string(format!("{seeds}/{file}")).unwrap();
        inputs.push((file.into(), serde_json::from_str(&text).unwrap()));
    }

    let scope = ArnScope::new("us-east-1", "000000000000");
    let mut db = Db::open_in_memory().unwrap();
    let mut cases = Vec::new();
    for (name, input) in inputs {
        let def = validate(parse_task_definition_file(input.to_string().as_bytes()).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut register = serde_json::to_value(def.definition()).unwrap();
        register["tags"] = serde_json::to_value(def.tags()).unwrap();
        let tx = db.conn_mut().transaction().unwrap();
        let (stored, tags) = registry::register(
            &tx,
            &scope,
            def,
            Some("arn:aws:iam::000000000000:root"),
            UNIX_EPOCH + Duration::from_millis(1_713_364_207_068),
        )
        .unwrap();
        // Walk INACTIVE/DELETE_IN_PROGRESS output too (deregisteredAt, deleteRequestedAt).
        let stored = if name == "bridge-links" {
            registry::deregister(
                &tx,
                &scope,
                &stored.arn,
                UNIX_EPOCH + Duration::from_secs(1_713_364_300),
            )
            .unwrap();
            let out = registry::delete(
                &tx,
                &scope,
                std::slice::from_ref(&stored.arn),
                UNIX_EPOCH + Duration::from_secs(1_713_364_400),
            )
            .unwrap();
            out.task_definitions.into_iter().next().unwrap()
        } else {
            stored
        };
        tx.commit().unwrap();
        let describe = stored.to_ecs_json();
        assert_describe_output_registers_again_unchanged(&name, &describe);
        cases.push(json!({"name": name, "describe": describe, "register": register, "tags": tags}));
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&cases).unwrap()).unwrap();
    let script = format!("{}/tests/taskdef_botocore.py", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(&script).arg(&path).output().unwrap_or_else(|e| {
        panic!("running python3 {script}: {e} (this test needs python3 with botocore: pip install boto3)")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "botocore rejected berth's JSON (or python3/botocore is missing: pip install boto3)\n{stdout}{stderr}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        cases.len(),
        "{stdout}"
    );
}
