//! The `TaskDefinition` object berth returns from Register/Describe/Deregister/Delete:
//! what the user registered, plus what ECS fills in.
//!
//! ECS adds, and so does berth: `taskDefinitionArn`, `revision`, `status`,
//! `registeredAt` (epoch seconds, fractional), `registeredBy`, `deregisteredAt`,
//! `deleteRequestedAt`, `compatibilities`, `requiresAttributes`; empty `volumes` and
//! `placementConstraints`; `host: {}` on a volume with no source; per container
//! `cpu: 0`, `essential: true` and empty `portMappings`, `environment`, `mountPoints`,
//! `volumesFrom`, `systemControls`; `protocol: tcp` on port mappings and, in awsvpc and
//! host mode, `hostPort` equal to `containerPort`; the health check's default
//! `interval` (30), `timeout` (5) and `retries` (3). `cpu`/`memory` are the normalized
//! unit strings. `networkMode` is left out when it was not registered (see the module
//! docs of [`super`]).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::model::{
    Compatibility, HealthCheck, LogDriver, NetworkMode, TaskDefinition, TaskDefinitionStatus,
    VolumeKind,
};
use super::units;

/// Registry facts about one revision, for the output form.
#[derive(Debug, Clone, PartialEq)]
pub struct RevisionMeta<'a> {
    pub arn: &'a str,
    pub revision: u32,
    pub status: TaskDefinitionStatus,
    pub registered_at: SystemTime,
    pub registered_by: Option<&'a str>,
    pub deregistered_at: Option<SystemTime>,
    pub delete_requested_at: Option<SystemTime>,
}

/// Epoch seconds with millisecond precision, as ECS's JSON protocol writes timestamps.
pub fn epoch_seconds(t: SystemTime) -> Value {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    serde_json::Number::from_f64(ms as f64 / 1000.0).map_or(Value::Null, Value::Number)
}

/// The ECS `TaskDefinition` output object for `def` at `meta`.
pub fn describe_json(def: &TaskDefinition, meta: &RevisionMeta<'_>) -> Value {
    let mut v = serde_json::to_value(def).unwrap_or_else(|_| Value::Object(Map::new()));
    let Value::Object(obj) = &mut v else { return v };
    obj.insert("taskDefinitionArn".into(), json!(meta.arn));
    obj.insert("revision".into(), json!(meta.revision));
    obj.insert("status".into(), json!(meta.status.as_str()));
    obj.insert("registeredAt".into(), epoch_seconds(meta.registered_at));
    if let Some(by) = meta.registered_by {
        obj.insert("registeredBy".into(), json!(by));
    }
    if let Some(t) = meta.deregistered_at {
        obj.insert("deregisteredAt".into(), epoch_seconds(t));
    }
    if let Some(t) = meta.delete_requested_at {
        obj.insert("deleteRequestedAt".into(), epoch_seconds(t));
    }
    obj.insert(
        "compatibilities".into(),
        json!(
            compatibilities(def)
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
        ),
    );
    obj.insert(
        "requiresAttributes".into(),
        Value::Array(
            requires_attributes(def)
                .into_iter()
                .map(|n| json!({ "name": n }))
                .collect(),
        ),
    );
    obj.entry("volumes").or_insert_with(|| json!([]));
    obj.entry("placementConstraints")
        .or_insert_with(|| json!([]));
    if let Some(Value::Array(volumes)) = obj.get_mut("volumes") {
        for (vol, model) in volumes.iter_mut().zip(&def.volumes) {
            if model.kind() == VolumeKind::Scratch
                && model.host.is_none()
                && let Value::Object(o) = vol
            {
                o.insert("host".into(), json!({}));
            }
        }
    }
    let mode = def.network_mode;
    if let Some(Value::Array(containers)) = obj.get_mut("containerDefinitions") {
        for c in containers.iter_mut() {
            if let Value::Object(c) = c {
                fill_container(c, mode);
            }
        }
    }
    v
}

fn fill_container(c: &mut Map<String, Value>, mode: Option<NetworkMode>) {
    c.entry("cpu").or_insert_with(|| json!(0));
    c.entry("essential").or_insert_with(|| json!(true));
    for list in [
        "portMappings",
        "environment",
        "mountPoints",
        "volumesFrom",
        "systemControls",
    ] {
        c.entry(list).or_insert_with(|| json!([]));
    }
    let static_ports = matches!(mode, Some(NetworkMode::Awsvpc | NetworkMode::Host));
    if let Some(Value::Array(pms)) = c.get_mut("portMappings") {
        for pm in pms.iter_mut() {
            let Value::Object(pm) = pm else { continue };
            pm.entry("protocol").or_insert_with(|| json!("tcp"));
            if static_ports
                && let Some(cp) = pm.get("containerPort").cloned()
                && pm.get("hostPort").is_none_or(|h| h == &json!(0))
            {
                pm.insert("hostPort".into(), cp);
            }
        }
    }
    if let Some(Value::Object(hc)) = c.get_mut("healthCheck") {
        hc.entry("interval")
            .or_insert_with(|| json!(HealthCheck::DEFAULT_INTERVAL));
        hc.entry("timeout")
            .or_insert_with(|| json!(HealthCheck::DEFAULT_TIMEOUT));
        hc.entry("retries")
            .or_insert_with(|| json!(HealthCheck::DEFAULT_RETRIES));
    }
}

/// The launch types this definition is valid for, as ECS reports them: EXTERNAL
/// unless awsvpc (ECS Anywhere has no awsvpc), always EC2, and FARGATE for an awsvpc
/// definition of a Fargate task size that uses no host-only features.
pub fn compatibilities(def: &TaskDefinition) -> Vec<Compatibility> {
    let awsvpc = def.network_mode == Some(NetworkMode::Awsvpc);
    let mut out = Vec::new();
    if !awsvpc {
        out.push(Compatibility::External);
    }
    out.push(Compatibility::Ec2);
    let size = match (def.cpu.as_deref(), def.memory.as_deref()) {
        (Some(c), Some(m)) => match (units::parse_cpu_units(c), units::parse_memory_mib(m)) {
            (Ok(c), Ok(m)) => units::is_fargate_size(c, m),
            _ => false,
        },
        _ => false,
    };
    let host_only = def
        .volumes
        .iter()
        .any(|v| matches!(v.kind(), VolumeKind::HostPath(_) | VolumeKind::Named(_)))
        || def.container_definitions.iter().any(|c| {
            c.privileged == Some(true)
                || c.linux_parameters
                    .as_ref()
                    .is_some_and(|lp| !lp.devices.is_empty())
        });
    if awsvpc && size && !host_only {
        out.push(Compatibility::Fargate);
    }
    out
}

/// Agent capabilities ECS would require of a container instance for `def`
/// (informational: this host has them all).
pub fn requires_attributes(def: &TaskDefinition) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    const CAP: &str = "com.amazonaws.ecs.capability";
    if def.network_mode == Some(NetworkMode::Awsvpc) {
        add("ecs.capability.task-eni".into());
    }
    if def.task_role_arn.as_deref().is_some_and(|s| !s.is_empty()) {
        add(format!("{CAP}.task-iam-role"));
    }
    for c in &def.container_definitions {
        if !c.docker_labels.is_empty() || !c.ulimits.is_empty() || c.log_configuration.is_some() {
            add(format!("{CAP}.docker-remote-api.1.18"));
        }
        if let Some(log) = &c.log_configuration {
            add(format!("{CAP}.logging-driver.{}", log.log_driver));
            if log.log_driver == LogDriver::Awslogs {
                add(format!("{CAP}.docker-remote-api.1.19"));
                if def.execution_role_arn.is_some() {
                    add("ecs.capability.execution-role-awslogs".into());
                }
            }
        }
        if c.health_check.is_some() {
            add("ecs.capability.container-health-check".into());
        }
        if !c.depends_on.is_empty() || c.start_timeout.is_some() || c.stop_timeout.is_some() {
            add("ecs.capability.container-ordering".into());
        }
        if c.linux_parameters
            .as_ref()
            .and_then(|lp| lp.init_process_enabled)
            == Some(true)
        {
            add(format!("{CAP}.docker-remote-api.1.25"));
        }
        if c.repository_credentials.is_some() {
            add(format!(
                "{CAP}.private-registry-authentication.secretsmanager"
            ));
        }
        for s in &c.secrets {
            if s.value_from.contains(":secretsmanager:") {
                add("ecs.capability.secrets.asm.environment-variables".into());
            } else {
                add("ecs.capability.secrets.ssm.environment-variables".into());
            }
        }
        if !c.environment_files.is_empty() {
            add("ecs.capability.env-files.s3".into());
        }
        if let Some(fl) = &c.firelens_configuration {
            add(format!("ecs.capability.firelens.{}", fl.kind));
        }
    }
    if def
        .volumes
        .iter()
        .any(|v| v.efs_volume_configuration.is_some())
    {
        add("ecs.capability.efsAuth".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::parse_task_definition;

    fn meta(arn: &str) -> RevisionMeta<'_> {
        RevisionMeta {
            arn,
            revision: 1,
            status: TaskDefinitionStatus::Active,
            registered_at: UNIX_EPOCH + std::time::Duration::from_millis(1_713_364_207_068),
            registered_by: None,
            deregistered_at: None,
            delete_requested_at: None,
        }
    }

    #[test]
    fn fills_what_ecs_fills() {
        let def = parse_task_definition(
            br#"{"family": "web", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                 "volumes": [{"name": "scratch"}],
                 "containerDefinitions": [{"name": "app", "image": "busybox",
                   "portMappings": [{"containerPort": 80}],
                   "healthCheck": {"command": ["CMD", "true"]}}]}"#,
        )
        .unwrap();
        let v = describe_json(
            &def,
            &meta("arn:aws:ecs:us-east-1:000000000000:task-definition/web:1"),
        );
        assert_eq!(v["registeredAt"], json!(1_713_364_207.068));
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["compatibilities"], json!(["EC2", "FARGATE"]));
        assert_eq!(
            v["requiresAttributes"],
            json!([{"name": "ecs.capability.task-eni"}, {"name": "ecs.capability.container-health-check"}])
        );
        assert_eq!(v["volumes"], json!([{"name": "scratch", "host": {}}]));
        assert_eq!(v["placementConstraints"], json!([]));
        let c = &v["containerDefinitions"][0];
        assert_eq!(c["cpu"], 0);
        assert_eq!(c["essential"], true);
        assert_eq!(
            c["portMappings"],
            json!([{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}])
        );
        assert_eq!(c["environment"], json!([]));
        assert_eq!(
            c["healthCheck"],
            json!({"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3})
        );
        assert!(v.get("networkMode").is_some());
        assert!(v.get("tags").is_none());
    }

    #[test]
    fn unset_network_mode_stays_unset_and_bridge_ports_stay_dynamic() {
        let def = parse_task_definition(
            br#"{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": 64,
                 "portMappings": [{"containerPort": 80}]}]}"#,
        )
        .unwrap();
        let v = describe_json(&def, &meta("arn"));
        assert!(v.get("networkMode").is_none());
        assert_eq!(v["compatibilities"], json!(["EXTERNAL", "EC2"]));
        assert_eq!(
            v["containerDefinitions"][0]["portMappings"],
            json!([{"containerPort": 80, "protocol": "tcp"}])
        );
    }
}
