//! Every rule with its exact message; plus normalization, warnings and start order.

use serde_json::{Value, json};

use super::*;
use crate::taskdef::EcsException;

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

#[test]
fn mount_and_volume_rules() {
    let vol = json!([{"name": "data"}]);
    let with = |mounts: Value| {
        task(
            json!({"volumes": vol, "containerDefinitions": [c("app", json!({ "mountPoints": mounts }))]}),
        )
    };
    let p = "containerDefinitions[0]";
    let vols = |v: Value| task(json!({ "volumes": v }));
    assert_rules(
        vec![
            (
                with(json!([{"containerPath": "/d"}])),
                &format!("{p}.mountPoints[0].sourceVolume is required"),
            ),
            (
                with(json!([{"sourceVolume": "logs", "containerPath": "/d"}])),
                &format!(
                    "{p}.mountPoints[0].sourceVolume \"logs\" is not a volume of this task definition (declare it in volumes)"
                ),
            ),
            (
                with(json!([{"sourceVolume": "data"}])),
                &format!("{p}.mountPoints[0].containerPath is required"),
            ),
            (
                with(json!([{"sourceVolume": "data", "containerPath": "d"}])),
                &format!("{p}.mountPoints[0].containerPath \"d\" must be an absolute path"),
            ),
            (
                with(
                    json!([{"sourceVolume": "data", "containerPath": "/d"}, {"sourceVolume": "data", "containerPath": "/d/"}]),
                ),
                &format!(
                    "{p}.mountPoints[1].containerPath \"/d/\" is already mounted by mountPoints[0]"
                ),
            ),
            (
                task(
                    json!({"volumes": vol, "containerDefinitions": [c("app", json!({
                    "mountPoints": [{"sourceVolume": "data", "containerPath": "/tmp"}],
                    "linuxParameters": {"tmpfs": [{"containerPath": "/tmp", "size": 8}]}}))]}),
                ),
                &format!(
                    "{p}.linuxParameters.tmpfs[0].containerPath \"/tmp\" is already mounted by mountPoints[0]"
                ),
            ),
            (
                ctr(json!({"volumesFrom": [{"readOnly": true}]})),
                &format!("{p}.volumesFrom[0].sourceContainer is required"),
            ),
            (
                ctr(json!({"volumesFrom": [{"sourceContainer": "app"}]})),
                &format!(
                    "{p}.volumesFrom[0].sourceContainer \"app\": a container cannot mount volumes from itself"
                ),
            ),
            (
                ctr(json!({"volumesFrom": [{"sourceContainer": "db"}]})),
                &format!(
                    "{p}.volumesFrom[0].sourceContainer \"db\" is not a container in this task definition"
                ),
            ),
            (
                containers(json!([
                    c("a", json!({"volumesFrom": [{"sourceContainer": "b"}]})),
                    c("b", json!({"volumesFrom": [{"sourceContainer": "a"}]}))
                ])),
                "containerDefinitions[0].volumesFrom forms a cycle: a -> b -> a",
            ),
            (vols(json!([{"host": {}}])), "volumes[0].name is required"),
            (
                vols(json!([{"name": "my data"}])),
                "volumes[0].name \"my data\" is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed",
            ),
            (
                vols(json!([{"name": "d"}, {"name": "d"}])),
                "volumes[1].name \"d\" is already used by volumes[0]",
            ),
            (
                vols(
                    json!([{"name": "d", "host": {"sourcePath": "/srv"}, "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]),
                ),
                "volumes[0] must set only one of host, dockerVolumeConfiguration, efsVolumeConfiguration, s3filesVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration and configuredAtLaunch (it sets host and efsVolumeConfiguration)",
            ),
            (
                vols(json!([{"name": "d", "host": {"sourcePath": "srv"}}])),
                "volumes[0].host.sourcePath \"srv\" must be an absolute path",
            ),
            (
                vols(json!([{"name": "d", "dockerVolumeConfiguration": {"autoprovision": true}}])),
                "volumes[0].dockerVolumeConfiguration.autoprovision can only be true when scope is shared",
            ),
            (
                vols(
                    json!([{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "/x",
                    "transitEncryption": "ENABLED", "authorizationConfig": {"accessPointId": "fsap-1"}}}]),
                ),
                "volumes[0].efsVolumeConfiguration.rootDirectory must be omitted or \"/\" when authorizationConfig.accessPointId is set",
            ),
            (
                vols(
                    json!([{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}]),
                ),
                "volumes[0].efsVolumeConfiguration.transitEncryption must be ENABLED when an access point or IAM authorization is used",
            ),
            (
                vols(
                    json!([{"name": "d", "s3filesVolumeConfiguration": {"fileSystemArn": "arn", "accessPointArn": "ap", "rootDirectory": "/x"}}]),
                ),
                "volumes[0].s3filesVolumeConfiguration.rootDirectory must be omitted or \"/\" when accessPointArn is set",
            ),
            (
                vols(
                    json!([{"name": "a", "configuredAtLaunch": true}, {"name": "b", "configuredAtLaunch": true}]),
                ),
                "volumes[1].configuredAtLaunch cannot be true: only one volume can be configured at launch (volumes[0] is)",
            ),
        ],
        EcsException::ClientException,
    );
}

#[test]
fn ulimit_sysctl_and_resource_rules() {
    let p = "containerDefinitions[0]";
    let ul = |u: Value| ctr(json!({ "ulimits": u }));
    let sc = |s: Value| ctr(json!({ "systemControls": s }));
    let rr = |r: Value| ctr(json!({ "resourceRequirements": r }));
    assert_rules(
        vec![
            (
                ul(
                    json!([{"name": "nofile", "softLimit": 1, "hardLimit": 2}, {"name": "nofile", "softLimit": 1, "hardLimit": 2}]),
                ),
                &format!("{p}.ulimits[1].name nofile is already set by ulimits[0]"),
            ),
            (
                ul(json!([{"name": "nofile", "softLimit": 2048, "hardLimit": 1024}])),
                &format!("{p}.ulimits[0].softLimit (2048) cannot be greater than hardLimit (1024)"),
            ),
            (
                ul(json!([{"name": "memlock", "softLimit": -1, "hardLimit": 1024}])),
                &format!("{p}.ulimits[0].softLimit (-1) cannot be greater than hardLimit (1024)"),
            ),
            (
                ul(json!([{"name": "core", "softLimit": -2, "hardLimit": 0}])),
                &format!(
                    "{p}.ulimits[0].softLimit (-2) must be -1 (unlimited) or a non-negative number"
                ),
            ),
            (
                sc(json!([{"value": "1"}])),
                &format!("{p}.systemControls[0].namespace is required"),
            ),
            (
                sc(json!([{"namespace": "vm.swappiness", "value": "1"}])),
                &format!(
                    "{p}.systemControls[0].namespace \"vm.swappiness\" is not a namespaced kernel parameter (kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, fs.mqueue.*, net.*)"
                ),
            ),
            (
                {
                    let mut v = sc(json!([{"namespace": "kernel.shmmax", "value": "1"}]));
                    v["ipcMode"] = json!("host");
                    v
                },
                &format!(
                    "{p}.systemControls[0].namespace \"kernel.shmmax\" is not supported when ipcMode is host"
                ),
            ),
            (
                {
                    let mut v = sc(json!([{"namespace": "net.core.somaxconn", "value": "1"}]));
                    v["networkMode"] = json!("host");
                    v
                },
                &format!(
                    "{p}.systemControls[0].namespace \"net.core.somaxconn\" is not supported when networkMode is host"
                ),
            ),
            (
                sc(json!([{"namespace": "net.core.somaxconn"}])),
                &format!("{p}.systemControls[0].value is required"),
            ),
            (
                rr(json!([{"type": "GPU", "value": "0"}])),
                &format!(
                    "{p}.resourceRequirements[0].value \"0\" must be a positive number of GPUs or ALL"
                ),
            ),
            (
                rr(
                    json!([{"type": "GPU", "value": "1", "sharingStrategy": {"nvidiaMps": {"memory": 1}}}]),
                ),
                &format!(
                    "{p}.resourceRequirements[0] must set exactly one of value and sharingStrategy for type GPU"
                ),
            ),
            (
                rr(json!([{"type": "InferenceAccelerator", "value": "d"}])),
                &format!(
                    "{p}.resourceRequirements[0].value must be the deviceName of one of the task's inferenceAccelerators"
                ),
            ),
            (
                rr(json!([{"type": "NeuronDevice", "value": "1"}])),
                &format!("{p}.resourceRequirements[0].value must be ALL for type NeuronDevice"),
            ),
            (
                rr(json!([{"type": "NeuronDevice", "value": "ALL", "sharingStrategy": {}}])),
                &format!(
                    "{p}.resourceRequirements[0].sharingStrategy is only allowed for type GPU"
                ),
            ),
            (
                rr(json!([{"type": "GPU", "value": "1"}, {"type": "GPU", "value": "2"}])),
                &format!(
                    "{p}.resourceRequirements[1].type GPU is already requested by resourceRequirements[0]"
                ),
            ),
        ],
        EcsException::ClientException,
    );
}

#[test]
fn port_mapping_rules() {
    let pm = |mode: Option<&str>, list: Value| {
        let mut v = ctr(json!({ "portMappings": list }));
        if let Some(m) = mode {
            v["networkMode"] = json!(m);
        }
        v
    };
    let two = |mode: &str, a: Value, b: Value| {
        task(
            json!({"networkMode": mode, "containerDefinitions": [c("a", json!({"portMappings": a})), c("b", json!({"portMappings": b}))]}),
        )
    };
    let p = "containerDefinitions[0].portMappings";
    let ranges: Vec<Value> = (0..101)
        .map(|i| json!({"containerPortRange": format!("{}-{}", 1000 + i * 2, 1001 + i * 2)}))
        .collect();
    assert_rules(
        vec![
            (
                pm(Some("none"), json!([{"containerPort": 80}])),
                &format!("{p} must be empty when networkMode is none"),
            ),
            (
                pm(None, json!([{"hostPort": 80}])),
                &format!("{p}[0].containerPort is required"),
            ),
            (
                pm(
                    None,
                    json!([{"containerPort": 80, "containerPortRange": "80-90"}]),
                ),
                &format!("{p}[0] must set either containerPort or containerPortRange, not both"),
            ),
            (
                pm(None, json!([{"containerPortRange": "90-80"}])),
                &format!(
                    "{p}[0].containerPortRange \"90-80\" must be \"first-last\" with 1 <= first < last <= 65535"
                ),
            ),
            (
                pm(Some("host"), json!([{"containerPortRange": "80-90"}])),
                &format!(
                    "{p}[0].containerPortRange is only supported when networkMode is bridge or awsvpc (networkMode is host)"
                ),
            ),
            (
                pm(
                    None,
                    json!([{"containerPortRange": "80-90", "hostPort": 80}]),
                ),
                &format!("{p}[0].hostPort must be empty when containerPortRange is set"),
            ),
            (
                pm(
                    Some("awsvpc"),
                    json!([{"containerPort": 80, "hostPort": 8080}]),
                ),
                &format!(
                    "{p}[0].hostPort (8080) must be empty or equal to containerPort (80): When networkMode=awsvpc, the host ports and container ports in port mappings must match."
                ),
            ),
            (
                pm(Some("host"), json!([{"containerPort": 80, "hostPort": 81}])),
                &format!(
                    "{p}[0].hostPort (81) must be empty or equal to containerPort (80): When networkMode=host, the host ports and container ports in port mappings must match."
                ),
            ),
            (
                pm(None, json!([{"containerPort": 80, "name": "Web"}])),
                &format!(
                    "{p}[0].name \"Web\" is invalid: up to 64 lowercase letters, numbers, underscores and hyphens, not starting with a hyphen"
                ),
            ),
            (
                two(
                    "bridge",
                    json!([{"containerPort": 80, "name": "web"}]),
                    json!([{"containerPort": 81, "name": "web"}]),
                ),
                "containerDefinitions[1].portMappings[0].name \"web\" is already used by containerDefinitions[0].portMappings[0]",
            ),
            (
                two(
                    "bridge",
                    json!([{"containerPort": 80, "hostPort": 8080}]),
                    json!([{"containerPort": 81, "hostPort": 8080}]),
                ),
                "containerDefinitions[1].portMappings[0] maps tcp host port 8080 that containerDefinitions[0].portMappings[0] already maps in this task",
            ),
            (
                two(
                    "awsvpc",
                    json!([{"containerPort": 80}]),
                    json!([{"containerPort": 80}]),
                ),
                "containerDefinitions[1].portMappings[0] maps tcp host port 80 that containerDefinitions[0].portMappings[0] already maps in this task",
            ),
            (
                pm(
                    Some("awsvpc"),
                    json!([{"containerPort": 53, "protocol": "udp"}, {"containerPort": 53, "protocol": "udp"}]),
                ),
                &format!("{p}[1] maps udp container port 53 that portMappings[0] already maps"),
            ),
            (
                pm(
                    None,
                    json!([{"containerPortRange": "8000-8010"}, {"containerPort": 8005}]),
                ),
                &format!("{p}[1] maps tcp container port 8005 that portMappings[0] already maps"),
            ),
            (
                two(
                    "awsvpc",
                    json!([{"containerPortRange": "8000-8010"}]),
                    json!([{"containerPortRange": "8010-8020"}]),
                ),
                "containerDefinitions[1].portMappings[0] maps tcp host port range 8010-8020 that containerDefinitions[0].portMappings[0] already maps in this task",
            ),
            (
                pm(None, json!(ranges)),
                &format!("{p} has 101 containerPortRange mappings; at most 100 are allowed"),
            ),
        ],
        EcsException::ClientException,
    );
    // Allowed: tcp and udp on one port; bridge dynamic ports; bridge maps one container port twice.
    assert!(run(pm(Some("awsvpc"), json!([{"containerPort": 53}, {"containerPort": 53, "protocol": "udp"}, {"containerPort": 80, "hostPort": 80}]))).is_ok());
    assert!(
        run(two(
            "bridge",
            json!([{"containerPort": 80}]),
            json!([{"containerPort": 80, "hostPort": 0}])
        ))
        .is_ok()
    );
    assert!(run(pm(None, json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8081}]))).is_ok());
}

#[test]
fn depends_on_rules() {
    let dep =
        |name: &str, cond: &str| json!({"dependsOn": [{"containerName": name, "condition": cond}]});
    let hc = json!({"healthCheck": {"command": ["CMD", "true"]}});
    assert_rules(
        vec![
            (
                containers(json!([c("a", dep("db", "START"))])),
                "containerDefinitions[0].dependsOn[0].containerName \"db\" is not a container in this task definition",
            ),
            (
                containers(json!([c("a", dep("a", "START"))])),
                "containerDefinitions[0].dependsOn[0].containerName \"a\": a container cannot depend on itself",
            ),
            (
                containers(json!([
                    c(
                        "a",
                        json!({"dependsOn": [{"containerName": "b", "condition": "START"}, {"containerName": "b", "condition": "HEALTHY"}]})
                    ),
                    c("b", hc.clone())
                ])),
                "containerDefinitions[0].dependsOn[1].containerName \"b\" is already a dependency in dependsOn[0]",
            ),
            (
                containers(json!([
                    c("a", dep("init", "COMPLETE")),
                    c("init", json!({}))
                ])),
                "containerDefinitions[0].dependsOn[0].condition COMPLETE cannot be used on essential container \"init\" (set its essential to false)",
            ),
            (
                containers(json!([
                    c("a", dep("init", "SUCCESS")),
                    c("init", json!({"essential": true}))
                ])),
                "containerDefinitions[0].dependsOn[0].condition SUCCESS cannot be used on essential container \"init\" (set its essential to false)",
            ),
            (
                containers(json!([c("a", dep("db", "HEALTHY")), c("db", json!({}))])),
                "containerDefinitions[0].dependsOn[0].condition HEALTHY requires container \"db\" to have a healthCheck",
            ),
            (
                containers(json!([
                    c("a", dep("b", "START")),
                    c("b", dep("c", "START")),
                    c("c", dep("a", "START"))
                ])),
                "containerDefinitions[0].dependsOn forms a cycle: a -> b -> c -> a",
            ),
        ],
        EcsException::ClientException,
    );
    let ok = run(containers(json!([
        c("web", json!({"dependsOn": [{"containerName": "db", "condition": "HEALTHY"}, {"containerName": "init", "condition": "SUCCESS"}]})),
        c("db", hc),
        c("init", json!({"essential": false})),
        c("side", json!({})),
    ])))
    .unwrap();
    let order: Vec<&str> = ok.start_order().iter().map(|c| c.name()).collect();
    assert_eq!(order, ["db", "init", "web", "side"]);
}

#[test]
fn normalization_and_network_modes() {
    let ok = run(task(json!({"cpu": "0.5 vCPU", "memory": "1 GB"}))).unwrap();
    assert_eq!(
        (ok.task_cpu_units(), ok.task_memory_mib()),
        (Some(512), Some(1024))
    );
    assert_eq!(ok.definition().cpu.as_deref(), Some("512"));
    assert_eq!(ok.definition().memory.as_deref(), Some("1024"));
    assert_eq!(ok.declared_network_mode(), NetworkMode::Bridge);
    assert_eq!(ok.effective_network_mode(), NetworkMode::Awsvpc);
    assert_eq!(ok.definition().network_mode, None);
    assert!(ok.warnings().is_empty());
    let host = run(task(json!({"networkMode": "host"}))).unwrap();
    assert_eq!(host.effective_network_mode(), NetworkMode::Host);
}

#[test]
fn every_unhonoured_field_is_warned_about_once() {
    let v = json!({
        "family": "everything", "networkMode": "awsvpc", "cpu": "1024", "memory": "2048",
        "taskRoleArn": "arn:aws:iam::1:role/task", "executionRoleArn": "arn:aws:iam::1:role/exec",
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "proxyConfiguration": {"type": "APPMESH", "containerName": "app", "properties": []},
        "inferenceAccelerators": [{"deviceName": "d0", "deviceType": "eia2.medium"}],
        "ephemeralStorage": {"sizeInGiB": 30}, "enableFaultInjection": true,
        "trustedExecutionConfiguration": {"isolationMode": "ISOLATED_SANDBOX"},
        "runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE", "cpuArchitecture": "X86_64"},
        "volumes": [
            {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}},
            {"name": "fsx", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "fs-2", "rootDirectory": "/",
                "authorizationConfig": {"credentialsParameter": "arn", "domain": "d"}}},
            {"name": "s3", "s3filesVolumeConfiguration": {"fileSystemArn": "arn"}},
            {"name": "ebs", "configuredAtLaunch": true},
            {"name": "nfs", "dockerVolumeConfiguration": {"scope": "shared", "driver": "rexray/ebs", "driverOpts": {"type": "nfs"}}},
            {"name": "plain", "dockerVolumeConfiguration": {"scope": "task", "driver": "local", "driverOpts": {"size": "1g"}}}
        ],
        "containerDefinitions": [{
            "name": "app", "image": "busybox",
            "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:1:secret:x"},
            "secrets": [{"name": "DB_PASS", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/p"},
                        {"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:k"}],
            "environmentFiles": [{"value": "arn:aws:s3:::b/app.env", "type": "s3"}, {"value": "/etc/local.env", "type": "s3"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "p", "awslogs-create-group": "true"},
                "secretOptions": [{"name": "k", "valueFrom": "arn"}]},
            "firelensConfiguration": {"type": "fluentbit"},
            "resourceRequirements": [{"type": "GPU", "value": "1"}, {"type": "InferenceAccelerator", "value": "d0"}],
            "credentialSpecs": ["credentialspec:arn"],
            "dockerSecurityOptions": ["no-new-privileges", "apparmor:docker-default"],
            "portMappings": [{"containerPort": 8080, "appProtocol": "http", "name": "web"}],
            "linuxParameters": {"swappiness": 10}
        }, {
            "name": "side", "image": "busybox", "essential": false, "disableNetworking": true,
            "logConfiguration": {"logDriver": "splunk", "options": {"splunk-url": "u"}}
        }, {
            "name": "json", "image": "busybox", "essential": false,
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}}
        }]
    });
    let ok = run(v).unwrap();
    let got: Vec<String> = ok.warnings().iter().map(|w| w.to_string()).collect();
    let want = [
        "taskRoleArn: berth does not assume IAM roles; the credentials endpoint serves what `berth role put` stored for the role",
        "executionRoleArn: berth does not assume IAM roles; images are pulled with berth's own registry credentials",
        "placementConstraints: not evaluated; berth places every task on this host",
        "proxyConfiguration: App Mesh proxy configuration is not applied",
        "inferenceAccelerators: Elastic Inference accelerators are not available",
        "ephemeralStorage: not enforced; a task's writable layers are limited only by the host's disk",
        "enableFaultInjection: fault injection endpoints are not served",
        "trustedExecutionConfiguration: isolation mode ISOLATED_SANDBOX is not available; tasks run in namespaces on this host",
        "runtimePlatform.operatingSystemFamily: WINDOWS_SERVER_2022_CORE containers cannot run here; berth runs Linux containers only",
        "volumes[0].efsVolumeConfiguration: Amazon EFS cannot be mounted on this host; containers get an empty task-scoped directory in its place",
        "volumes[1].fsxWindowsFileServerVolumeConfiguration: Amazon FSx for Windows File Server cannot be mounted on this host; containers get an empty task-scoped directory in its place",
        "volumes[2].s3filesVolumeConfiguration: Amazon S3 Files cannot be mounted on this host; containers get an empty task-scoped directory in its place",
        "volumes[3].configuredAtLaunch: Amazon EBS volumes cannot be attached on this host; containers get an empty task-scoped directory in its place",
        "volumes[4].dockerVolumeConfiguration.driver: volume driver \"rexray/ebs\" is not available; berth creates a local volume",
        "volumes[4].dockerVolumeConfiguration.driverOpts: options of another volume driver are not applied; berth creates a plain local directory",
        "volumes[5].dockerVolumeConfiguration.driverOpts: size is not an option of the local driver (type, device, o); tasks using this volume fail to start",
        "containerDefinitions[0].environmentFiles[0]: S3 environment files are not read (berth reads local files given as an absolute path or file:// URL)",
        "containerDefinitions[0].logConfiguration.options: awslogs options awslogs-create-group, awslogs-region are not used; logs stay on this host, named by awslogs-group and awslogs-stream-prefix",
        "containerDefinitions[0].logConfiguration.secretOptions: log driver secrets are not fetched",
        "containerDefinitions[0].firelensConfiguration: FireLens log routing is not set up; the container runs as an ordinary container",
        "containerDefinitions[0].resourceRequirements[0]: GPUs are not assigned to containers (linuxParameters.devices can pass a device through)",
        "containerDefinitions[0].resourceRequirements[1]: Elastic Inference accelerators are not available",
        "containerDefinitions[0].credentialSpecs: Active Directory credential specs are not applied",
        "containerDefinitions[0].dockerSecurityOptions[1]: \"apparmor:docker-default\" is not applied; berth sets no AppArmor, SELinux or credential spec options",
        "containerDefinitions[0].portMappings[0].appProtocol: Service Connect is not available; the port is mapped without protocol-specific handling",
        "containerDefinitions[0].linuxParameters.swappiness: ignored because maxSwap is not set (as on ECS)",
        "containerDefinitions[1].logConfiguration.logDriver: the splunk log driver is not available; berth captures stdout and stderr to its local log store",
        "containerDefinitions[1].disableNetworking: not applied: the container gets the task's network; use networkMode none for a task without one",
        "containerDefinitions[2].logConfiguration.options: json-file options max-size are not used; berth rotates logs with its own limits",
    ];
    assert_eq!(got, want);
    // Stored definitions produce the same warnings when loaded back.
    let reloaded = ValidatedTaskDefinition::from_stored(ok.definition().clone());
    assert_eq!(reloaded.warnings(), ok.warnings());
}
