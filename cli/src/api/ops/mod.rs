//! Operation dispatch: ECS operations by name, berth's own operations, and the shared
//! parsing, paging and error mapping.

mod berth;
mod clusters;
mod exec;
mod secrets;
mod services;
mod taskdefs;
mod tasks;

use base64::Engine as _;
use berth_runtime::engine::EngineError;
use berth_runtime::state::model::TaskRecord;
use berth_runtime::taskdef::{EcsException, ParseError};
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ApiError, Reply};
use crate::daemon::Daemon;

/// Dispatches an ECS operation. Exhaustive over what berth implements; everything else
/// is a clean UnsupportedFeatureException naming the operation.
pub(crate) async fn ecs(d: &Daemon, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "CreateCluster" => clusters::create(d, parse(body)?).await,
        "DescribeClusters" => clusters::describe(d, parse(body)?).await,
        "ListClusters" => clusters::list(d, parse(body)?).await,
        "DeleteCluster" => clusters::delete(d, parse(body)?).await,
        "RegisterTaskDefinition" => taskdefs::register(d, body).await,
        "DeregisterTaskDefinition" => taskdefs::deregister(d, parse(body)?).await,
        "DeleteTaskDefinitions" => taskdefs::delete(d, parse(body)?).await,
        "DescribeTaskDefinition" => taskdefs::describe(d, parse(body)?).await,
        "ListTaskDefinitions" => taskdefs::list(d, parse(body)?).await,
        "ListTaskDefinitionFamilies" => taskdefs::list_families(d, parse(body)?).await,
        "RunTask" => tasks::run(d, body).await,
        "StartTask" => tasks::start(d, body).await,
        "StopTask" => tasks::stop(d, parse(body)?).await,
        "DescribeTasks" => tasks::describe(d, parse(body)?).await,
        "ListTasks" => tasks::list(d, parse(body)?).await,
        "CreateService" => services::create(d, parse(body)?).await,
        "DescribeServices" => services::describe(d, parse(body)?).await,
        "ListServices" => services::list(d, parse(body)?).await,
        "UpdateService" => services::update(d, parse(body)?).await,
        "DeleteService" => services::delete(d, parse(body)?).await,
        "TagResource" => clusters::tag(d, parse(body)?).await,
        "UntagResource" => clusters::untag(d, parse(body)?).await,
        "ListTagsForResource" => clusters::list_tags(d, parse(body)?).await,
        "DescribeContainerInstances" => clusters::describe_instances(d, parse(body)?).await,
        "ListContainerInstances" => clusters::list_instances(d, parse(body)?).await,
        other => Err(ApiError::unsupported(format!(
            "berth does not implement the ECS operation {other} on a single host"
        ))),
    }
}

/// `Berth.Exec` on a connection the client asked to upgrade (`-i`, `-t`).
pub(crate) async fn exec_attached(
    d: &Daemon,
    body: &[u8],
    upgrade: hyper::upgrade::OnUpgrade,
) -> Result<Reply, ApiError> {
    exec::attach(d, parse(body)?, upgrade).await
}

/// Dispatches a berth operation.
pub(crate) async fn berth(d: &Daemon, op: &str, body: &[u8]) -> Result<Reply, ApiError> {
    match op {
        "PullImage" => berth::pull(d, parse(body)?).await,
        "ListImages" => berth::images(d).await.map(Reply::Json),
        "RemoveImages" => berth::remove_images(d, parse(body)?).await.map(Reply::Json),
        "LoadImages" => berth::load(d, parse(body)?).await.map(Reply::Json),
        "SaveImages" => berth::save(d, parse(body)?).await.map(Reply::Json),
        "Logs" => berth::logs(d, parse(body)?).await,
        "Exec" => exec::exec(d, parse(body)?).await,
        "Info" => berth::info(d).await.map(Reply::Json),
        "ListVolumes" => berth::volumes(d).await.map(Reply::Json),
        "RemoveVolume" => berth::remove_volume(d, parse(body)?).await.map(Reply::Json),
        "ValidateTaskDefinition" => taskdefs::validate_only(body).map(Reply::Json),
        "StopTask" => berth::stop_task(d, parse(body)?).await.map(Reply::Json),
        "WaitTask" => berth::wait_task(d, parse(body)?).await.map(Reply::Json),
        "PutSecret" => secrets::put_secret(d, parse(body)?).await.map(Reply::Json),
        "ListSecrets" => secrets::list_secrets(d).await.map(Reply::Json),
        "DeleteSecret" => secrets::delete_secret(d, parse(body)?)
            .await
            .map(Reply::Json),
        "PutRoleCredentials" => secrets::put_role(d, parse(body)?).await.map(Reply::Json),
        "ListRoleCredentials" => secrets::list_roles(d).await.map(Reply::Json),
        "DeleteRoleCredentials" => secrets::delete_role(d, parse(body)?).await.map(Reply::Json),
        other => Err(ApiError::new(
            "UnknownOperationException",
            StatusCode::BAD_REQUEST,
            format!("unknown berth operation {other}"),
        )),
    }
}

/// Parses a request body (`{}` when empty), naming the offending field on error.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    require_object(body)?;
    berth_runtime::taskdef::from_json(body).map_err(|e| parse_error(&e))
}

/// Every ECS input is a JSON object; anything else is refused before the typed parse
/// (whose message would name berth's internal types).
pub(crate) fn require_object(body: &[u8]) -> Result<(), ApiError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ if std::str::from_utf8(body).is_err() => Err(ApiError::invalid(
            "the request body is not UTF-8 text (a JSON object is expected)",
        )),
        _ => Err(ApiError::invalid("the request body must be a JSON object")),
    }
}

pub(crate) fn parse_error(e: &ParseError) -> ApiError {
    ApiError::invalid(e.to_string())
}

fn exception(e: EcsException, message: String) -> ApiError {
    match e {
        EcsException::ClientException => ApiError::client(message),
        EcsException::InvalidParameterException => ApiError::invalid(message),
        EcsException::ServerException => ApiError::server(message),
    }
}

/// Maps an engine error to what ECS would answer.
pub(crate) fn engine_error(e: EngineError) -> ApiError {
    match &e {
        EngineError::ClusterNotFound => ApiError::cluster_not_found(),
        EngineError::Registry(r) => exception(r.ecs_exception(), r.to_string()),
        EngineError::Validation(v) => exception(v.ecs_exception(), v.to_string()),
        _ => ApiError::from_class(e.class(), berth_runtime::engine::chain(&e)),
    }
}

/// The task `reference` (an id or ARN) names in `cluster`: its id and record, or the
/// error ECS gives for a task it does not know.
pub(crate) async fn task_in_cluster(
    d: &Daemon,
    cluster: &str,
    reference: &str,
) -> Result<(String, TaskRecord), ApiError> {
    let (id, _) = berth_runtime::engine::arn::task_id(reference);
    let rec = d
        .engine
        .task(&id)
        .await
        .map_err(engine_error)?
        .filter(|t| t.cluster == cluster)
        .ok_or_else(|| {
            ApiError::invalid(format!("The referenced task was not found: {reference}"))
        })?;
    Ok((id, rec))
}

/// `maxResults` as ECS bounds it (1–100), defaulting to 100.
pub(crate) fn max_results(v: Option<i64>) -> Result<usize, ApiError> {
    match v {
        None => Ok(100),
        Some(n) if (1..=100).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(format!(
            "maxResults must be between 1 and 100 (got {n})"
        ))),
    }
}

/// Opaque paging tokens: base64 of a small JSON cursor.
pub(crate) fn encode_token(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

pub(crate) fn decode_token(t: &str) -> Result<Value, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::invalid("Invalid nextToken"))
}

/// ECS `Failure` for an unknown ARN in a Describe call.
pub(crate) fn missing(arn: &str) -> Value {
    serde_json::json!({"arn": arn, "reason": "MISSING"})
}
