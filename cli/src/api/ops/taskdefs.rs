//! Task definition operations over the registry (`berth_runtime::taskdef`).

use std::time::SystemTime;

use berth_runtime::engine::EngineError;
use berth_runtime::taskdef::registry::{
    self, ListTaskDefinitionFamilies, ListTaskDefinitions, RegistryError,
};
use berth_runtime::taskdef::{self, Tag};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{engine_error, parse_error};
use crate::api::ApiError;
use crate::daemon::Daemon;

fn registry_error(e: RegistryError) -> ApiError {
    engine_error(EngineError::Registry(e))
}

/// RegisterTaskDefinition. The response adds berth's warnings about fields it accepts
/// but cannot honour (`berthWarnings`; SDKs ignore members they do not model).
pub(super) async fn register(d: &Daemon, body: &[u8]) -> Result<Value, ApiError> {
    super::require_object(body)?;
    let def = taskdef::parse_task_definition(body).map_err(|e| parse_error(&e))?;
    let validated = taskdef::validate(def).map_err(|e| engine_error(EngineError::Validation(e)))?;
    let warnings: Vec<String> = validated
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    let scope = d.engine.taskdef_scope();
    let (stored, tags) = d
        .engine
        .db()
        .call(move |db| {
            registry::in_transaction(db, "registering a task definition", |tx| {
                registry::register(tx, &scope, validated, None, SystemTime::now())
            })
        })
        .await
        .map_err(registry_error)?;
    for w in &warnings {
        tracing::warn!(task_definition = %stored.arn, "{w}");
    }
    Ok(json!({"taskDefinition": stored.to_ecs_json(), "tags": tags, "berthWarnings": warnings}))
}

/// Validation without storing: what `berth run FILE.json` shows before registering.
pub(super) fn validate_only(body: &[u8]) -> Result<Value, ApiError> {
    let def = taskdef::parse_task_definition_file(body).map_err(|e| parse_error(&e))?;
    let validated = taskdef::validate(def).map_err(|e| engine_error(EngineError::Validation(e)))?;
    let warnings: Vec<String> = validated
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    let (def, _) = validated.into_parts();
    Ok(json!({"taskDefinition": def, "warnings": warnings}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DeregisterTaskDefinition {
    task_definition: String,
}

pub(super) async fn deregister(d: &Daemon, r: DeregisterTaskDefinition) -> Result<Value, ApiError> {
    let scope = d.engine.taskdef_scope();
    let stored = d
        .engine
        .db()
        .call(move |db| {
            registry::in_transaction(db, "deregistering a task definition", |tx| {
                registry::deregister(tx, &scope, &r.task_definition, SystemTime::now())
            })
        })
        .await
        .map_err(registry_error)?;
    Ok(json!({"taskDefinition": stored.to_ecs_json()}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DeleteTaskDefinitions {
    task_definitions: Vec<String>,
}

pub(super) async fn delete(d: &Daemon, r: DeleteTaskDefinitions) -> Result<Value, ApiError> {
    let scope = d.engine.taskdef_scope();
    let out = d
        .engine
        .db()
        .call(move |db| {
            registry::in_transaction(db, "deleting task definitions", |tx| {
                registry::delete(tx, &scope, &r.task_definitions, SystemTime::now())
            })
        })
        .await
        .map_err(registry_error)?;
    let defs: Vec<Value> = out
        .task_definitions
        .iter()
        .map(|t| t.to_ecs_json())
        .collect();
    Ok(json!({"taskDefinitions": defs, "failures": out.failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DescribeTaskDefinition {
    task_definition: String,
    #[serde(default)]
    include: Vec<String>,
}

pub(super) async fn describe(d: &Daemon, r: DescribeTaskDefinition) -> Result<Value, ApiError> {
    let scope = d.engine.taskdef_scope();
    let with_tags = r.include.iter().any(|i| i == "TAGS");
    let (stored, tags) = d
        .engine
        .db()
        .call(move |db| -> Result<_, RegistryError> {
            let td = registry::describe(db.conn(), &scope, &r.task_definition)?;
            let tags: Vec<Tag> = if with_tags {
                registry::list_tags(db.conn(), &scope, &td.arn)?
            } else {
                Vec::new()
            };
            Ok((td, tags))
        })
        .await
        .map_err(registry_error)?;
    let mut out = json!({"taskDefinition": stored.to_ecs_json()});
    if with_tags {
        out["tags"] = json!(tags);
    }
    Ok(out)
}

pub(super) async fn list(d: &Daemon, r: ListTaskDefinitions) -> Result<Value, ApiError> {
    let scope = d.engine.taskdef_scope();
    let page = d
        .engine
        .db()
        .call(move |db| registry::list_task_definitions(db.conn(), &scope, &r))
        .await
        .map_err(registry_error)?;
    Ok(json!({"taskDefinitionArns": page.items, "nextToken": page.next_token}))
}

pub(super) async fn list_families(
    d: &Daemon,
    r: ListTaskDefinitionFamilies,
) -> Result<Value, ApiError> {
    let page = d
        .engine
        .db()
        .call(move |db| registry::list_families(db.conn(), &r))
        .await
        .map_err(registry_error)?;
    Ok(json!({"families": page.items, "nextToken": page.next_token}))
}
