//! RunTask, StartTask, StopTask, DescribeTasks, ListTasks.

use berth_runtime::engine::RunTaskRequest;
use berth_runtime::state::model::Tag;
use berth_runtime::state::repo::TaskFilter;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{decode_token, encode_token, engine_error, max_results, missing, parse};
use crate::api::ApiError;
use crate::daemon::Daemon;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunTask {
    task_definition: String,
    cluster: Option<String>,
    count: Option<i64>,
    overrides: Option<Value>,
    started_by: Option<String>,
    group: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    client_token: Option<String>,
    propagate_tags: Option<String>,
    enable_ecs_managed_tags: Option<bool>,
    enable_execute_command: Option<bool>,
    launch_type: Option<String>,
    network_configuration: Option<Value>,
    #[serde(default)]
    capacity_provider_strategy: Vec<Value>,
    #[serde(default)]
    placement_constraints: Vec<Value>,
    #[serde(default)]
    placement_strategy: Vec<Value>,
    platform_version: Option<String>,
    reference_id: Option<String>,
    #[serde(default)]
    volume_configurations: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartTask {
    task_definition: String,
    container_instances: Vec<String>,
    cluster: Option<String>,
    overrides: Option<Value>,
    started_by: Option<String>,
    group: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    propagate_tags: Option<String>,
    enable_ecs_managed_tags: Option<bool>,
    enable_execute_command: Option<bool>,
    network_configuration: Option<Value>,
    reference_id: Option<String>,
    #[serde(default)]
    volume_configurations: Vec<Value>,
}

fn check_common(
    started_by: Option<&String>,
    launch_type: Option<&String>,
    propagate: Option<&String>,
) -> Result<(), ApiError> {
    if let Some(s) = started_by
        && s.len() > 128
    {
        return Err(ApiError::invalid(
            "startedBy: up to 128 characters are allowed",
        ));
    }
    if let Some(l) = launch_type
        && !["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"].contains(&l.as_str())
    {
        return Err(ApiError::invalid(format!(
            "launchType: {l:?} is not one of EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES"
        )));
    }
    if let Some(p) = propagate
        && !["TASK_DEFINITION", "SERVICE", "NONE"].contains(&p.as_str())
    {
        return Err(ApiError::invalid(format!(
            "propagateTags: {p:?} is not one of TASK_DEFINITION, SERVICE, NONE"
        )));
    }
    Ok(())
}

fn overrides(v: Option<&Value>) -> Result<Option<berth_runtime::taskdef::TaskOverride>, ApiError> {
    match v {
        None => Ok(None),
        Some(v) => {
            let bytes = serde_json::to_vec(v).map_err(|e| ApiError::invalid(e.to_string()))?;
            berth_runtime::taskdef::parse_task_override(&bytes)
                .map(Some)
                .map_err(|e| ApiError::invalid(format!("overrides.{e}")))
        }
    }
}

fn run_output(r: berth_runtime::engine::RunTaskResult) -> Value {
    json!({"tasks": r.tasks, "failures": r.failures})
}

pub(super) async fn run(d: &Daemon, body: &[u8]) -> Result<Value, ApiError> {
    let r: RunTask = parse(body)?;
    check_common(
        r.started_by.as_ref(),
        r.launch_type.as_ref(),
        r.propagate_tags.as_ref(),
    )?;
    let _ = (
        &r.enable_ecs_managed_tags,
        &r.enable_execute_command,
        &r.network_configuration,
        &r.capacity_provider_strategy,
        &r.placement_constraints,
        &r.placement_strategy,
        &r.platform_version,
        &r.reference_id,
        &r.volume_configurations,
    );
    let count = r.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid(format!(
            "count must be between 1 and 10 (got {count})"
        )));
    }
    // The idempotency digest covers the whole request except the token itself.
    let mut hashed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(m) = hashed.as_object_mut() {
        m.remove("clientToken");
    }
    let request_hash = hex::encode(Sha256::digest(hashed.to_string().as_bytes()));
    let req = RunTaskRequest {
        cluster: r.cluster,
        task_definition: r.task_definition,
        count: count as u32,
        overrides: overrides(r.overrides.as_ref())?,
        started_by: r.started_by,
        group: r.group,
        tags: r.tags,
        propagate_task_definition_tags: r.propagate_tags.as_deref() == Some("TASK_DEFINITION"),
        client_token: r.client_token,
        for_service: false,
        request_hash,
    };
    d.engine
        .run_task(req)
        .await
        .map(run_output)
        .map_err(engine_error)
}

/// StartTask: RunTask on the named container instances — on berth, this host.
pub(super) async fn start(d: &Daemon, body: &[u8]) -> Result<Value, ApiError> {
    let r: StartTask = parse(body)?;
    check_common(r.started_by.as_ref(), None, r.propagate_tags.as_ref())?;
    let _ = (
        &r.enable_ecs_managed_tags,
        &r.enable_execute_command,
        &r.network_configuration,
        &r.reference_id,
        &r.volume_configurations,
    );
    if r.container_instances.is_empty() || r.container_instances.len() > 10 {
        return Err(ApiError::invalid(
            "containerInstances must name 1 to 10 container instances",
        ));
    }
    let cluster = berth_runtime::engine::arn::cluster_name(r.cluster.as_deref());
    let me = d.engine.container_instance_arn(&cluster);
    let my_id = me.rsplit('/').next().unwrap_or_default().to_owned();
    let mut failures = Vec::new();
    let mut count = 0;
    for ci in &r.container_instances {
        if ci == &me || ci == &my_id {
            count += 1;
        } else {
            failures.push(missing(ci));
        }
    }
    let mut tasks = Vec::new();
    if count > 0 {
        let mut hashed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if let Some(m) = hashed.as_object_mut() {
            m.remove("containerInstances");
        }
        let req = RunTaskRequest {
            cluster: r.cluster,
            task_definition: r.task_definition,
            count,
            overrides: overrides(r.overrides.as_ref())?,
            started_by: r.started_by,
            group: r.group,
            tags: r.tags,
            propagate_task_definition_tags: r.propagate_tags.as_deref() == Some("TASK_DEFINITION"),
            client_token: None,
            for_service: false,
            request_hash: hex::encode(Sha256::digest(hashed.to_string().as_bytes())),
        };
        let out = d.engine.run_task(req).await.map_err(engine_error)?;
        tasks = out.tasks;
        failures.extend(
            out.failures
                .into_iter()
                .map(|f| serde_json::to_value(f).unwrap_or(Value::Null)),
        );
    }
    Ok(json!({"tasks": tasks, "failures": failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct StopTask {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

pub(super) async fn stop(d: &Daemon, r: StopTask) -> Result<Value, ApiError> {
    if r.reason.as_ref().is_some_and(|s| s.len() > 255) {
        return Err(ApiError::invalid(
            "reason: up to 255 characters are allowed",
        ));
    }
    let task = d
        .engine
        .stop_task(r.cluster.as_deref(), &r.task, r.reason, None)
        .await
        .map_err(engine_error)?;
    Ok(json!({"task": task}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DescribeTasks {
    cluster: Option<String>,
    tasks: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

pub(super) async fn describe(d: &Daemon, r: DescribeTasks) -> Result<Value, ApiError> {
    if r.tasks.len() > 100 {
        return Err(ApiError::invalid("tasks: up to 100 tasks per call"));
    }
    let with_tags = r.include.iter().any(|i| i == "TAGS");
    let (found, missing_refs) = d
        .engine
        .describe_tasks(r.cluster.as_deref(), r.tasks, with_tags)
        .await
        .map_err(engine_error)?;
    let cluster = berth_runtime::engine::arn::cluster_name(r.cluster.as_deref());
    let failures: Vec<Value> = missing_refs
        .iter()
        .map(|t| {
            let arn = if t.starts_with("arn:") {
                t.clone()
            } else {
                d.engine.arn().task(&cluster, t)
            };
            missing(&arn)
        })
        .collect();
    Ok(json!({"tasks": found, "failures": failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ListTasks {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<String>,
    launch_type: Option<String>,
    daemon_name: Option<String>,
}

pub(super) async fn list(d: &Daemon, r: ListTasks) -> Result<Value, ApiError> {
    let limit = max_results(r.max_results)?;
    if let Some(s) = &r.desired_status
        && !["RUNNING", "PENDING", "STOPPED"].contains(&s.as_str())
    {
        return Err(ApiError::invalid(format!(
            "desiredStatus: {s:?} is not one of RUNNING, PENDING, STOPPED"
        )));
    }
    if r.daemon_name.is_some() {
        // No ECS daemons on berth: nothing was started by one.
        return Ok(json!({"taskArns": []}));
    }
    let _ = (&r.container_instance, &r.launch_type);
    let after = match &r.next_token {
        Some(t) => {
            let v = decode_token(t)?;
            Some((
                v.get("tb")
                    .and_then(Value::as_u64)
                    .map(f64::from_bits)
                    .ok_or_else(|| ApiError::invalid("Invalid nextToken"))?,
                v.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ))
        }
        None => None,
    };
    let filter = TaskFilter {
        cluster: String::new(),
        family: r.family,
        started_by: r.started_by,
        group: r.service_name.map(|s| format!("service:{s}")),
        // ECS's default is RUNNING: tasks whose desired status is RUNNING.
        desired_status: Some(r.desired_status.unwrap_or_else(|| "RUNNING".into())),
    };
    let mut rows = d
        .engine
        .list_tasks(filter, r.cluster.as_deref(), after, limit + 1)
        .await
        .map_err(engine_error)?;
    let next = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        let (t, id, _) = rows.last().cloned().unwrap_or_default();
        // The timestamp's bits, not a JSON float: serde_json's float parsing is not
        // exact to the last bit, and a cursor one ulp late repeats the last row.
        encode_token(&json!({"tb": t.to_bits(), "id": id}))
    });
    let arns: Vec<String> = rows.into_iter().map(|(_, _, arn)| arn).collect();
    Ok(json!({"taskArns": arns, "nextToken": next}))
}
