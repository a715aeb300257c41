//! RunTask/StartTask `overrides`: the shapes, their validation, and the effective
//! per-task definition they produce.
//!
//! Semantics, as ECS documents them: `command` replaces the container's command;
//! `environment` entries add to or replace (by name) the container's variables;
//! `environmentFiles` and `resourceRequirements` replace the container's lists;
//! `cpu`, `memory`, `memoryReservation` replace the container's values; task `cpu`,
//! `memory`, `taskRoleArn`, `executionRoleArn` and `ephemeralStorage` replace the
//! task's. The result is validated again with every registration rule, so an override
//! cannot produce a task the registry would have refused.

use serde::{Deserialize, Serialize};

use super::Warning;
use super::model::{EnvironmentFile, EphemeralStorage, KeyValuePair, ResourceRequirement};
use super::validate::{ValidatedTaskDefinition, ValidationError, rule, validate};

/// ECS's limit on the size of a task's overrides, in characters of JSON.
pub const MAX_OVERRIDES_JSON: usize = 8192;

/// `overrides` of RunTask / StartTask (ECS `TaskOverride`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskOverride {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_overrides: Vec<ContainerOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inference_accelerator_overrides: Vec<InferenceAcceleratorOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
}

/// One `containerOverrides` entry (ECS `ContainerOverride`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerOverride {
    /// The container to override; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValuePair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

/// One `inferenceAcceleratorOverrides` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InferenceAcceleratorOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
}

/// Applies `overrides` to `def` and validates the result: the definition the task
/// actually runs, with its warnings (those of the definition plus any the overrides
/// add).
pub fn apply_overrides(
    def: &ValidatedTaskDefinition,
    overrides: &TaskOverride,
) -> Result<ValidatedTaskDefinition, ValidationError> {
    let size = serde_json::to_string(overrides)
        .map(|s| s.len())
        .unwrap_or(0);
    if size > MAX_OVERRIDES_JSON {
        return Err(rule(
            "overrides",
            format!("are {size} characters of JSON; at most {MAX_OVERRIDES_JSON} are allowed"),
        ));
    }
    let mut td = def.definition().clone();
    let mut seen: Vec<&str> = Vec::new();
    for (i, co) in overrides.container_overrides.iter().enumerate() {
        let field = format!("overrides.containerOverrides[{i}].name");
        let Some(name) = co.name.as_deref() else {
            return Err(rule(field, "is required"));
        };
        if seen.contains(&name) {
            return Err(rule(
                field,
                format!("{name:?} is overridden more than once"),
            ));
        }
        seen.push(name);
        let Some(c) = td
            .container_definitions
            .iter_mut()
            .find(|c| c.name() == name)
        else {
            return Err(rule(
                field,
                format!(
                    "{name:?} is not a container in task definition {}",
                    def.family()
                ),
            ));
        };
        if let Some(cmd) = &co.command {
            c.command = Some(cmd.clone());
        }
        for (j, kv) in co.environment.iter().enumerate() {
            let Some(var) = kv.name.as_deref() else {
                return Err(rule(
                    format!("overrides.containerOverrides[{i}].environment[{j}].name"),
                    "is required",
                ));
            };
            match c
                .environment
                .iter_mut()
                .find(|e| e.name.as_deref() == Some(var))
            {
                Some(existing) => existing.value = kv.value.clone(),
                None => c.environment.push(kv.clone()),
            }
        }
        if let Some(files) = &co.environment_files {
            c.environment_files = files.clone();
        }
        if let Some(rr) = &co.resource_requirements {
            c.resource_requirements = rr.clone();
        }
        c.cpu = co.cpu.or(c.cpu);
        c.memory = co.memory.or(c.memory);
        c.memory_reservation = co.memory_reservation.or(c.memory_reservation);
    }
    if let Some(cpu) = &overrides.cpu {
        td.cpu = Some(cpu.clone());
    }
    if let Some(memory) = &overrides.memory {
        td.memory = Some(memory.clone());
    }
    if let Some(role) = &overrides.task_role_arn {
        td.task_role_arn = Some(role.clone());
    }
    if let Some(role) = &overrides.execution_role_arn {
        td.execution_role_arn = Some(role.clone());
    }
    if let Some(es) = &overrides.ephemeral_storage {
        td.ephemeral_storage = Some(es.clone());
    }
    let mut effective = validate(td).map_err(|e| {
        let message = format!("overrides make the task invalid: {}", e.message());
        ValidationError::Client {
            field: e.field().to_owned(),
            message,
        }
    })?;
    if !overrides.inference_accelerator_overrides.is_empty() {
        effective.push_warning(Warning {
            field: "overrides.inferenceAcceleratorOverrides".into(),
            message: "Elastic Inference accelerators are not available".into(),
        });
    }
    Ok(effective)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::{parse_task_definition, parse_task_override};

    fn base() -> ValidatedTaskDefinition {
        validate(
            parse_task_definition(
                br#"{"family": "f", "memory": "512", "containerDefinitions": [
                    {"name": "app", "image": "busybox", "command": ["sleep", "1"], "memory": 128,
                     "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "side", "image": "busybox", "essential": false}]}"#,
            )
            .unwrap(),
        )
        .unwrap()
    }

    fn ov(json: &str) -> TaskOverride {
        parse_task_override(json.as_bytes()).unwrap()
    }

    #[test]
    fn overrides_replace_and_merge_as_ecs_documents() {
        let eff = apply_overrides(
            &base(),
            &ov(
                r#"{"cpu": "1 vCPU", "memory": "1 GB", "taskRoleArn": "arn:aws:iam::1:role/r",
                   "containerOverrides": [{"name": "app", "command": ["echo", "hi"], "memory": 256,
                     "environment": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
                     "environmentFiles": [{"value": "/etc/app.env", "type": "s3"}]}]}"#,
            ),
        )
        .unwrap();
        let app = eff.container("app").unwrap();
        assert_eq!(
            app.command.as_deref(),
            Some(&["echo".to_string(), "hi".to_string()][..])
        );
        assert_eq!(app.memory, Some(256));
        let env: Vec<_> = app
            .environment
            .iter()
            .map(|e| (e.name.clone().unwrap(), e.value.clone().unwrap()))
            .collect();
        assert_eq!(
            env,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two".into()),
                ("C".into(), "3".into())
            ]
        );
        assert_eq!(app.environment_files.len(), 1);
        assert_eq!(eff.task_cpu_units(), Some(1024));
        assert_eq!(eff.task_memory_mib(), Some(1024));
        assert_eq!(eff.definition().cpu.as_deref(), Some("1024"));
        assert!(eff.warnings().iter().any(|w| w.field == "taskRoleArn"));
        assert_eq!(
            eff.container("side").unwrap(),
            base().container("side").unwrap()
        );
    }

    #[test]
    fn override_errors_name_the_field() {
        let table = [
            (
                r#"{"containerOverrides": [{"command": ["x"]}]}"#,
                "overrides.containerOverrides[0].name is required",
            ),
            (
                r#"{"containerOverrides": [{"name": "nope"}]}"#,
                "overrides.containerOverrides[0].name \"nope\" is not a container in task definition f",
            ),
            (
                r#"{"containerOverrides": [{"name": "app"}, {"name": "app"}]}"#,
                "overrides.containerOverrides[1].name \"app\" is overridden more than once",
            ),
            (
                r#"{"containerOverrides": [{"name": "app", "memoryReservation": 256}]}"#,
                "overrides make the task invalid: containerDefinitions[0].memory (128 MiB) must be greater than or equal to memoryReservation (256 MiB)",
            ),
            (
                r#"{"memory": "256", "containerOverrides": [{"name": "app", "memory": 300}]}"#,
                "overrides make the task invalid: containerDefinitions[0].memory (300 MiB) cannot be greater than the task memory (256 MiB)",
            ),
            (
                r#"{"cpu": "lots"}"#,
                "overrides make the task invalid: cpu \"lots\" is invalid: use CPU units (e.g. \"1024\") or vCPUs (e.g. \"1 vCPU\")",
            ),
        ];
        for (json, want) in table {
            let err = apply_overrides(&base(), &ov(json)).unwrap_err();
            assert_eq!(err.to_string(), want, "{json}");
            assert_eq!(
                err.ecs_exception(),
                crate::taskdef::EcsException::ClientException
            );
        }
        let big = format!(
            r#"{{"containerOverrides": [{{"name": "app", "command": ["{}"]}}]}}"#,
            "x".repeat(9000)
        );
        let err = apply_overrides(&base(), &ov(&big)).unwrap_err();
        assert!(err.to_string().starts_with("overrides are 90"), "{err}");
    }

    #[test]
    fn unknown_override_members_are_rejected_by_shape() {
        let err = parse_task_override(br#"{"containerOverrides": [{"name": "a", "image": "x"}]}"#)
            .unwrap_err();
        assert_eq!(err.field(), "containerOverrides[0].image");
    }
}
