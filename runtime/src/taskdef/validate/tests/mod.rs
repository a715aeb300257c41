//! Every rule with its exact message; plus normalization, warnings and start order.

use serde_json::{Value, json};

use super::*;
use crate::taskdef::EcsException;

mod mounts_ports_and_warnings;

fn base() -> Value {
    json!({"family": "f", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]})
}

/// `base()` with top-level members replaced.
fn task(patch: Value) -> Value {
    let mut v = base();
    let Value::Object(members) = patch else {
        panic!("patch must be an object")
    };
    for (k, val) in members {
        v[k] = val;
    }
    v
}

/// `base()` with members of the first container replaced (null removes one).
fn ctr(patch: Value) -> Value {
    let mut v = base();
    let c = v["containerDefinitions"][0].as_object_mut().unwrap();
    let Value::Object(members) = patch else {
        panic!("patch must be an object")
    };
    for (k, val) in members {
        if val.is_null() {
            c.remove(&k);
        } else {
            c.insert(k, val);
        }
    }
    v
}

/// A container called `name` with 64 MiB and extra members.
fn c(name: &str, extra: Value) -> Value {
    let mut v = json!({"name": name, "image": "busybox", "memory": 64});
    let Value::Object(members) = extra else {
        panic!("extra must be an object")
    };
    for (k, val) in members {
        v[k] = val;
    }
    v
}

fn containers(list: Value) -> Value {
    let mut patch = serde_json::Map::new();
    patch.insert("containerDefinitions".into(), list);
    task(Value::Object(patch))
}

fn run(v: Value) -> Result<ValidatedTaskDefinition, ValidationError> {
    let text = v.to_string();
    let def: TaskDefinition = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}: {text}"));
    validate(def)
}

#[track_caller]
fn assert_rules(cases: Vec<(Value, &str)>, exception: EcsException) {
    for (v, want) in cases {
        let err = run(v.clone()).expect_err(want);
        assert_eq!(err.to_string(), want, "input: {v}");
        assert!(
            want.starts_with(err.field()),
            "field {:?} is not the start of {want:?}",
            err.field()
        );
        assert_eq!(err.ecs_exception(), exception, "{want}");
        assert_eq!(err.class(), ErrorClass::Invalid);
    }
}

#[test]
fn task_level_rules() {
    let eleven: Vec<Value> = (0..11).map(|i| c(&format!("c{i}"), json!({}))).collect();
    let long = "a".repeat(256);
    assert_rules(
        vec![
            (
                json!({"containerDefinitions": base()["containerDefinitions"]}),
                "family is required",
            ),
            (
                task(json!({"family": "my app"})),
                "family \"my app\" is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed",
            ),
            (
                task(json!({ "family": long })),
                &format!(
                    "family \"{long}\" is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed"
                ),
            ),
            (
                task(json!({"containerDefinitions": []})),
                "containerDefinitions must contain at least one container definition",
            ),
            (
                containers(json!(eleven)),
                "containerDefinitions has 11 containers; at most 10 are allowed",
            ),
            (
                task(json!({"cpu": "abc"})),
                "cpu \"abc\" is invalid: use CPU units (e.g. \"1024\") or vCPUs (e.g. \"1 vCPU\")",
            ),
            (
                task(json!({"cpu": "0.3 vCPU"})),
                "cpu \"0.3 vCPU\" is not a whole number of CPU units (1 vCPU is 1024 units)",
            ),
            (
                task(json!({"cpu": "64"})),
                "cpu (64 units) must be between 128 and 196608 CPU units (0.125 to 192 vCPUs)",
            ),
            (
                task(json!({"cpu": "200 vCPU"})),
                "cpu (204800 units) must be between 128 and 196608 CPU units (0.125 to 192 vCPUs)",
            ),
            (
                task(json!({"memory": "1 TB"})),
                "memory \"1 TB\" is invalid: use MiB (e.g. \"512\") or GB (e.g. \"1 GB\")",
            ),
            (
                task(json!({"memory": "512 MiB"})),
                "memory \"512 MiB\" is invalid: use MiB (e.g. \"512\") or GB (e.g. \"1 GB\")",
            ),
            (
                task(json!({"memory": "0.001 GB"})),
                "memory \"0.001 GB\" is not a whole number of MiB (1 GB is 1024 MiB)",
            ),
            (
                task(json!({"memory": "4"})),
                "memory (4 MiB) must be at least 6 MiB",
            ),
            (
                containers(json!([
                    c("a", json!({"essential": false})),
                    c("b", json!({"essential": false}))
                ])),
                "containerDefinitions must have at least one essential container (essential defaults to true)",
            ),
            (
                task(
                    json!({"cpu": "256", "containerDefinitions": [c("a", json!({"cpu": 200})), c("b", json!({"cpu": 100}))]}),
                ),
                "containerDefinitions cpu values add up to 300 units, more than the task cpu (256 units)",
            ),
            (
                task(json!({"memory": "128", "containerDefinitions": [
                    c("a", json!({"memory": null, "memoryReservation": 100})), c("b", json!({"memory": 100}))]})),
                "containerDefinitions reserve 200 MiB (memoryReservation, or memory where no reservation is set), more than the task memory (128 MiB)",
            ),
            (
                task(
                    json!({"placementConstraints": vec![json!({"type": "memberOf", "expression": "x"}); 11]}),
                ),
                "placementConstraints has 11 constraints; at most 10 are allowed",
            ),
            (
                task(json!({"placementConstraints": [{"expression": "x"}]})),
                "placementConstraints[0].type is required",
            ),
            (
                task(json!({"placementConstraints": [{"type": "memberOf"}]})),
                "placementConstraints[0].expression is required for a memberOf constraint",
            ),
            (
                task(
                    json!({"networkMode": "awsvpc", "proxyConfiguration": {"containerName": "envoy"}}),
                ),
                "proxyConfiguration.containerName \"envoy\" is not a container in this task definition",
            ),
            (
                task(json!({"proxyConfiguration": {"containerName": "app"}})),
                "proxyConfiguration requires networkMode awsvpc (networkMode is bridge)",
            ),
            (
                task(
                    json!({"inferenceAccelerators": [{"deviceName": "d", "deviceType": "t"}, {"deviceName": "d", "deviceType": "t"}]}),
                ),
                "inferenceAccelerators[1].deviceName \"d\" is already used by inferenceAccelerators[0]",
            ),
            (
                task(json!({"ephemeralStorage": {"sizeInGiB": 10}})),
                "ephemeralStorage.sizeInGiB (10) must be between 21 and 200",
            ),
            (
                task(
                    json!({"trustedExecutionConfiguration": {"isolationMode": "CONFIDENTIAL_SANDBOX"}}),
                ),
                "trustedExecutionConfiguration.attestationPolicy is required when isolationMode is CONFIDENTIAL_SANDBOX",
            ),
        ],
        EcsException::ClientException,
    );
}

#[test]
fn fargate_rules() {
    let fargate = |extra: Value| {
        let mut v = task(
            json!({"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}),
        );
        for (k, val) in extra.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        v
    };
    assert!(run(fargate(json!({}))).is_ok());
    assert_rules(
        vec![
            (
                fargate(json!({"networkMode": "bridge"})),
                "networkMode must be awsvpc when requiresCompatibilities includes FARGATE",
            ),
            (
                fargate(json!({"cpu": null})),
                "cpu is required when requiresCompatibilities includes FARGATE",
            ),
            (
                fargate(json!({"memory": null})),
                "memory is required when requiresCompatibilities includes FARGATE",
            ),
            (
                fargate(json!({"memory": "4 GB"})),
                "memory (4096 MiB) with cpu (256 units) is not a Fargate task size when requiresCompatibilities includes FARGATE (see \"Task size\" in the ECS developer guide)",
            ),
        ],
        EcsException::ClientException,
    );
}

#[test]
fn tag_rules_are_invalid_parameter() {
    let tags = |t: Value| task(json!({ "tags": t }));
    let fifty_one: Vec<Value> = (0..51)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    assert_rules(
        vec![
            (
                tags(json!(fifty_one)),
                "tags has 51 tags; at most 50 are allowed",
            ),
            (tags(json!([{"value": "v"}])), "tags[0].key is required"),
            (
                tags(json!([{"key": "k".repeat(129)}])),
                "tags[0].key is longer than 128 characters",
            ),
            (
                tags(json!([{"key": "k", "value": "v".repeat(257)}])),
                "tags[0].value is longer than 256 characters",
            ),
            (
                tags(json!([{"key": "a*b"}])),
                "tags[0].key \"a*b\" may only contain letters, numbers, spaces and _ . : / = + - @",
            ),
            (
                tags(json!([{"key": "k", "value": "x;y"}])),
                "tags[0].value \"x;y\" may only contain letters, numbers, spaces and _ . : / = + - @",
            ),
            (
                tags(json!([{"key": "AWS:team"}])),
                "tags[0].key \"AWS:team\" uses the reserved prefix aws:",
            ),
            (
                tags(json!([{"key": "team"}, {"key": "team"}])),
                "tags[1].key \"team\" is already used by tags[0]",
            ),
        ],
        EcsException::InvalidParameterException,
    );
    let ok = run(tags(
        json!([{"key": "team", "value": "a b/c@d"}, {"key": "é"}]),
    ))
    .unwrap();
    assert_eq!(ok.tags().len(), 2);
    assert_eq!(ok.definition().tags, vec![]);
}

#[test]
fn container_identity_and_resources() {
    assert_rules(
        vec![
            (
                ctr(json!({"name": null})),
                "containerDefinitions[0].name is required",
            ),
            (
                ctr(json!({"name": "web.1"})),
                "containerDefinitions[0].name \"web.1\" is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed",
            ),
            (
                containers(json!([c("app", json!({})), c("app", json!({}))])),
                "containerDefinitions[1].name \"app\" is already used by containerDefinitions[0]",
            ),
            (
                ctr(json!({"image": null})),
                "containerDefinitions[0].image is required",
            ),
            (
                ctr(json!({"image": "my image"})),
                "containerDefinitions[0].image \"my image\" is not a valid image reference",
            ),
            (
                ctr(json!({"image": ""})),
                "containerDefinitions[0].image \"\" is not a valid image reference",
            ),
            (
                ctr(json!({"image": "busybox@sha256:abc"})),
                "containerDefinitions[0].image digest \"sha256:abc\" must be sha256: followed by 64 hexadecimal characters",
            ),
            (
                ctr(json!({"image": "r/".repeat(128)})),
                "containerDefinitions[0].image is longer than 255 characters (before any @digest)",
            ),
            (
                ctr(json!({"cpu": -1})),
                "containerDefinitions[0].cpu must not be negative",
            ),
            (
                task(
                    json!({"cpu": "256", "containerDefinitions": [c("app", json!({"cpu": 512}))]}),
                ),
                "containerDefinitions[0].cpu (512 units) cannot be greater than the task cpu (256 units)",
            ),
            (
                ctr(json!({"memory": 4})),
                "containerDefinitions[0].memory (4 MiB) must be at least 6 MiB",
            ),
            (
                ctr(json!({"memoryReservation": 0})),
                "containerDefinitions[0].memoryReservation (0 MiB) must be at least 6 MiB",
            ),
            (
                task(
                    json!({"memory": "512", "containerDefinitions": [c("app", json!({"memory": 1024}))]}),
                ),
                "containerDefinitions[0].memory (1024 MiB) cannot be greater than the task memory (512 MiB)",
            ),
            (
                containers(json!([
                    c("a", json!({})),
                    c("b", json!({"memory": 128, "memoryReservation": 256}))
                ])),
                "containerDefinitions[1].memory (128 MiB) must be greater than or equal to memoryReservation (256 MiB)",
            ),
            (
                ctr(json!({"memory": null})),
                "containerDefinitions[0].memory is required: container \"app\" must set memory or memoryReservation when the task has no memory",
            ),
            (
                ctr(json!({"stopTimeout": -1})),
                "containerDefinitions[0].stopTimeout must not be negative",
            ),
            (
                ctr(json!({"startTimeout": -5})),
                "containerDefinitions[0].startTimeout must not be negative",
            ),
            (
                ctr(json!({"restartPolicy": {"enabled": true, "ignoredExitCodes": vec![1; 51]}})),
                "containerDefinitions[0].restartPolicy.ignoredExitCodes has 51 exit codes; at most 50 are allowed",
            ),
            (
                ctr(json!({"restartPolicy": {"enabled": true, "restartAttemptPeriod": 30}})),
                "containerDefinitions[0].restartPolicy.restartAttemptPeriod (30) must be between 60 and 1800 seconds",
            ),
        ],
        EcsException::ClientException,
    );
    // ECS accepts memory equal to memoryReservation; a task memory makes container memory optional.
    assert!(run(ctr(json!({"memory": 128, "memoryReservation": 128}))).is_ok());
    assert!(
        run(task(
            json!({"memory": "1 GB", "containerDefinitions": [{"name": "a", "image": "i"}]})
        ))
        .is_ok()
    );
    assert!(run(ctr(json!({"memory": null, "memoryReservation": 32}))).is_ok());
}

#[test]
fn container_networking() {
    let awsvpc = |extra: Value| {
        let mut v = ctr(extra);
        v["networkMode"] = json!("awsvpc");
        v
    };
    assert_rules(
        vec![
            (
                task(
                    json!({"networkMode": "awsvpc", "containerDefinitions": [c("a", json!({"links": ["b"]})), c("b", json!({}))]}),
                ),
                "containerDefinitions[0].links is only supported when networkMode is bridge (networkMode is awsvpc)",
            ),
            (
                containers(json!([c("a", json!({"links": ["db:database"]}))])),
                "containerDefinitions[0].links[0] \"db:database\" refers to \"db\", which is not a container in this task definition",
            ),
            (
                ctr(json!({"links": ["app"]})),
                "containerDefinitions[0].links[0] \"app\": a container cannot link to itself",
            ),
            (
                awsvpc(json!({"hostname": "h"})),
                "containerDefinitions[0].hostname is not supported when networkMode is awsvpc",
            ),
            (
                awsvpc(json!({"extraHosts": [{"hostname": "h", "ipAddress": "1.2.3.4"}]})),
                "containerDefinitions[0].extraHosts is not supported when networkMode is awsvpc",
            ),
            (
                ctr(json!({"extraHosts": [{"hostname": "h", "ipAddress": "1.2.3"}]})),
                "containerDefinitions[0].extraHosts[0].ipAddress \"1.2.3\" is not an IP address",
            ),
            (
                ctr(json!({"extraHosts": [{"hostname": " ", "ipAddress": "::1"}]})),
                "containerDefinitions[0].extraHosts[0].hostname must not be empty",
            ),
            (
                ctr(json!({"dnsServers": ["8.8.8.8", "dns.google"]})),
                "containerDefinitions[0].dnsServers[1] \"dns.google\" is not an IP address",
            ),
        ],
        EcsException::ClientException,
    );
    // Unset network mode follows ECS's bridge rules.
    assert!(
        run(containers(json!([
            c("a", json!({"links": ["b:db"], "hostname": "x"})),
            c("b", json!({}))
        ])))
        .is_ok()
    );
}

#[test]
fn container_environment_and_process() {
    let files: Vec<Value> = (0..11)
        .map(|i| json!({"value": format!("/e{i}.env"), "type": "s3"}))
        .collect();
    assert_rules(
        vec![
            (
                ctr(json!({"environment": [{"value": "v"}]})),
                "containerDefinitions[0].environment[0].name is required",
            ),
            (
                ctr(json!({"environment": [{"name": "A=B", "value": "v"}]})),
                "containerDefinitions[0].environment[0].name \"A=B\" is not a valid environment variable name",
            ),
            (
                ctr(json!({"environment": [{"name": "", "value": "v"}]})),
                "containerDefinitions[0].environment[0].name \"\" is not a valid environment variable name",
            ),
            (
                ctr(json!({"secrets": [{"name": "", "valueFrom": "arn"}]})),
                "containerDefinitions[0].secrets[0].name \"\" is not a valid environment variable name",
            ),
            (
                ctr(json!({"secrets": [{"name": "S", "valueFrom": ""}]})),
                "containerDefinitions[0].secrets[0].valueFrom must not be empty",
            ),
            (
                ctr(json!({ "environmentFiles": files })),
                "containerDefinitions[0].environmentFiles has 11 files; at most 10 are allowed",
            ),
            (
                ctr(
                    json!({"environmentFiles": [{"value": "arn:aws:s3:::bucket/app.txt", "type": "s3"}]}),
                ),
                "containerDefinitions[0].environmentFiles[0].value \"arn:aws:s3:::bucket/app.txt\" must name a file with the .env extension",
            ),
            (
                ctr(json!({"environmentFiles": [{"value": "app.env", "type": "s3"}]})),
                "containerDefinitions[0].environmentFiles[0].value \"app.env\" must be an S3 object ARN (arn:aws:s3:::bucket/key.env) or, with berth, an absolute path or file:// URL",
            ),
            (
                ctr(json!({"user": "a:b:c"})),
                "containerDefinitions[0].user \"a:b:c\" is invalid: use user, user:group, uid, uid:gid, user:gid or uid:group",
            ),
            (
                ctr(json!({"user": ""})),
                "containerDefinitions[0].user \"\" is invalid: use user, user:group, uid, uid:gid, user:gid or uid:group",
            ),
            (
                ctr(json!({"workingDirectory": "app"})),
                "containerDefinitions[0].workingDirectory \"app\" must be an absolute path",
            ),
            (
                ctr(json!({"dockerSecurityOptions": ["seccomp=unconfined"]})),
                "containerDefinitions[0].dockerSecurityOptions[0] \"seccomp=unconfined\" is not supported: use no-new-privileges, apparmor:PROFILE, label:VALUE or credentialspec:PATH",
            ),
            (
                ctr(json!({"credentialSpecs": ["a", "b"]})),
                "containerDefinitions[0].credentialSpecs has 2 entries; at most 1 is allowed",
            ),
            (
                ctr(json!({"dockerLabels": {"": "x"}})),
                "containerDefinitions[0].dockerLabels must not have an empty key",
            ),
            (
                ctr(json!({"repositoryCredentials": {"credentialsParameter": ""}})),
                "containerDefinitions[0].repositoryCredentials.credentialsParameter must not be empty",
            ),
        ],
        EcsException::ClientException,
    );
    let ok = run(ctr(json!({"environmentFiles": [
        {"value": "/etc/app.env", "type": "s3"},
        {"value": "file:///srv/x.conf", "type": "s3"},
        {"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}]})))
    .unwrap();
    assert_eq!(ok.warnings().len(), 1, "{:?}", ok.warnings());
}

#[test]
fn health_check_rules() {
    let hc = |h: Value| ctr(json!({ "healthCheck": h }));
    assert_rules(
        vec![
            (
                hc(json!({"command": []})),
                "containerDefinitions[0].healthCheck.command must not be empty",
            ),
            (
                hc(json!({"command": ["NONE"]})),
                "containerDefinitions[0].healthCheck.command must start with CMD or CMD-SHELL, not \"NONE\"",
            ),
            (
                hc(json!({"command": ["CMD"]})),
                "containerDefinitions[0].healthCheck.command must have a command after CMD",
            ),
            (
                hc(json!({"command": ["CMD-SHELL", ""]})),
                "containerDefinitions[0].healthCheck.command must have a command after CMD-SHELL",
            ),
            (
                hc(json!({"command": ["CMD", "true"], "interval": 3})),
                "containerDefinitions[0].healthCheck.interval (3) must be between 5 and 300 seconds",
            ),
            (
                hc(json!({"command": ["CMD", "true"], "timeout": 61})),
                "containerDefinitions[0].healthCheck.timeout (61) must be between 2 and 60 seconds",
            ),
            (
                hc(json!({"command": ["CMD", "true"], "retries": 0})),
                "containerDefinitions[0].healthCheck.retries (0) must be between 1 and 10",
            ),
            (
                hc(json!({"command": ["CMD", "true"], "startPeriod": 301})),
                "containerDefinitions[0].healthCheck.startPeriod (301) must be between 0 and 300 seconds",
            ),
        ],
        EcsException::ClientException,
    );
    assert!(run(hc(json!({"command": ["CMD-SHELL", "wget -q -O- localhost || exit 1"], "interval": 5, "timeout": 2, "retries": 10, "startPeriod": 0}))).is_ok());
}

#[test]
fn linux_parameter_rules() {
    let lp = |l: Value| ctr(json!({ "linuxParameters": l }));
    let p = "containerDefinitions[0].linuxParameters";
    assert_rules(
        vec![
            (
                lp(json!({"capabilities": {"add": ["FOO"]}})),
                &format!(
                    "{p}.capabilities.add[0] \"FOO\" is not a Linux capability (use names such as NET_ADMIN without CAP_, or ALL)"
                ),
            ),
            (
                lp(json!({"capabilities": {"drop": ["NET_RAW", "CAP_NET_ADMIN"]}})),
                &format!(
                    "{p}.capabilities.drop[1] \"CAP_NET_ADMIN\" is not a Linux capability (use names such as NET_ADMIN without CAP_, or ALL)"
                ),
            ),
            (
                lp(json!({"devices": [{"hostPath": "dev/fuse"}]})),
                &format!("{p}.devices[0].hostPath \"dev/fuse\" must be an absolute path"),
            ),
            (
                lp(json!({"devices": [{"hostPath": "/dev/fuse", "containerPath": "fuse"}]})),
                &format!("{p}.devices[0].containerPath \"fuse\" must be an absolute path"),
            ),
            (
                lp(json!({"sharedMemorySize": 0})),
                &format!("{p}.sharedMemorySize (0) must be greater than 0 MiB"),
            ),
            (
                lp(json!({"tmpfs": [{"containerPath": "tmp", "size": 1}]})),
                &format!("{p}.tmpfs[0].containerPath \"tmp\" must be an absolute path"),
            ),
            (
                lp(json!({"tmpfs": [{"containerPath": "/tmp", "size": 0}]})),
                &format!("{p}.tmpfs[0].size (0) must be greater than 0 MiB"),
            ),
            (
                lp(
                    json!({"tmpfs": [{"containerPath": "/tmp", "size": 8, "mountOptions": ["noexec", "size=1g"]}]}),
                ),
                &format!("{p}.tmpfs[0].mountOptions[1] \"size=1g\" is not a tmpfs mount option"),
            ),
            (
                lp(json!({"maxSwap": -1})),
                &format!("{p}.maxSwap must not be negative"),
            ),
            (
                lp(json!({"maxSwap": 0, "swappiness": 101})),
                &format!("{p}.swappiness (101) must be between 0 and 100"),
            ),
        ],
        EcsException::ClientException,
    );
    assert!(run(lp(json!({"tmpfs": [{"containerPath": "/run", "size": 8, "mountOptions": ["mode=1777", "nosuid"]}],
        "capabilities": {"add": ["NET_ADMIN", "ALL"]}, "initProcessEnabled": true}))).is_ok());
}
