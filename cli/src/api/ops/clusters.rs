//! Clusters, tags and the container-instance view.

use berth_runtime::ErrorClass;
use berth_runtime::db::Db;
use berth_runtime::engine::EngineError;
use berth_runtime::state::model::Tag;
use berth_runtime::taskdef::registry;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{decode_token, encode_token, engine_error, max_results, missing};
use crate::api::ApiError;
use crate::daemon::Daemon;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CreateCluster {
    cluster_name: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    settings: Vec<Value>,
    configuration: Option<Value>,
    #[serde(default)]
    capacity_providers: Vec<String>,
    #[serde(default)]
    default_capacity_provider_strategy: Vec<Value>,
    service_connect_defaults: Option<Value>,
}

pub(super) async fn create(d: &Daemon, r: CreateCluster) -> Result<Value, ApiError> {
    let _ = (
        &r.settings,
        &r.configuration,
        &r.capacity_providers,
        &r.default_capacity_provider_strategy,
        &r.service_connect_defaults,
    );
    let name = r.cluster_name.unwrap_or_else(|| "default".into());
    let c = d
        .engine
        .create_cluster(&name, r.tags)
        .await
        .map_err(engine_error)?;
    Ok(json!({"cluster": c}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DescribeClusters {
    #[serde(default)]
    clusters: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

pub(super) async fn describe(d: &Daemon, r: DescribeClusters) -> Result<Value, ApiError> {
    let with_tags = r.include.iter().any(|i| i == "TAGS");
    let (found, missing_names) = d
        .engine
        .describe_clusters(r.clusters, with_tags)
        .await
        .map_err(engine_error)?;
    let failures: Vec<Value> = missing_names
        .iter()
        .map(|n| {
            let arn = if n.starts_with("arn:") {
                n.clone()
            } else {
                d.engine.arn().cluster(n)
            };
            missing(&arn)
        })
        .collect();
    Ok(json!({"clusters": found, "failures": failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ListClusters {
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub(super) async fn list(d: &Daemon, r: ListClusters) -> Result<Value, ApiError> {
    let limit = max_results(r.max_results)?;
    let after = match &r.next_token {
        Some(t) => decode_token(t)?
            .get("after")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    };
    let mut page = d
        .engine
        .list_clusters(after, limit + 1)
        .await
        .map_err(engine_error)?;
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        encode_token(&json!({"after": page.last().map(|c| c.cluster_name.clone())}))
    });
    let arns: Vec<&str> = page.iter().map(|c| c.cluster_arn.as_str()).collect();
    Ok(json!({"clusterArns": arns, "nextToken": next}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DeleteCluster {
    cluster: String,
}

pub(super) async fn delete(d: &Daemon, r: DeleteCluster) -> Result<Value, ApiError> {
    if berth_runtime::engine::arn::cluster_name(Some(&r.cluster)) == "default" {
        return Err(ApiError::invalid(
            "the default cluster cannot be deleted on berth",
        ));
    }
    let name = berth_runtime::engine::arn::cluster_name(Some(&r.cluster));
    if d.engine
        .active_services_count(&name)
        .await
        .map_err(engine_error)?
        > 0
    {
        return Err(ApiError::new(
            "ClusterContainsServicesException",
            StatusCode::BAD_REQUEST,
            "The Cluster cannot be deleted while Services are active.",
        ));
    }
    match d.engine.delete_cluster(&r.cluster).await {
        Ok(c) => Ok(json!({"cluster": c})),
        Err(berth_runtime::engine::EngineError::Conflict(m)) => Err(ApiError::new(
            "ClusterContainsTasksException",
            http::StatusCode::BAD_REQUEST,
            m,
        )),
        Err(e) => Err(engine_error(e)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct TagResource {
    resource_arn: String,
    tags: Vec<Tag>,
}

fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    let as_td: Vec<berth_runtime::taskdef::Tag> = tags
        .iter()
        .map(|t| berth_runtime::taskdef::Tag {
            key: Some(t.key.clone()),
            value: Some(t.value.clone()),
        })
        .collect();
    berth_runtime::taskdef::validate::validate_tags(&as_td, "tags")
        .map_err(|e| ApiError::invalid(e.to_string()))
}

fn td_tags(tags: &[Tag]) -> Vec<berth_runtime::taskdef::Tag> {
    tags.iter()
        .map(|t| berth_runtime::taskdef::Tag {
            key: Some(t.key.clone()),
            value: Some(t.value.clone()),
        })
        .collect()
}

/// What the tag operations answer for a resource that does not exist: ECS's
/// ClusterNotFoundException for clusters, ResourceNotFoundException otherwise.
fn tag_error(arn: &str, e: EngineError) -> ApiError {
    match e.class() {
        ErrorClass::NotFound if arn.contains(":cluster/") => ApiError::cluster_not_found(),
        ErrorClass::NotFound => ApiError::new(
            "ResourceNotFoundException",
            StatusCode::BAD_REQUEST,
            e.to_string(),
        ),
        _ => engine_error(e),
    }
}

/// Runs a task definition tag operation on the database thread.
async fn td_tag_op<R: Send + 'static>(
    d: &Daemon,
    arn: &str,
    f: impl FnOnce(&mut Db, &registry::ArnScope, &str) -> Result<R, registry::RegistryError>
    + Send
    + 'static,
) -> Result<R, ApiError> {
    let scope = d.engine.taskdef_scope();
    let arn2 = arn.to_owned();
    d.engine
        .db()
        .call(move |db| f(db, &scope, &arn2))
        .await
        .map_err(|e| tag_error(arn, EngineError::Registry(e)))
}

pub(super) async fn tag(d: &Daemon, r: TagResource) -> Result<Value, ApiError> {
    check_tags(&r.tags)?;
    if registry::is_task_definition_arn(&r.resource_arn) {
        let tags = td_tags(&r.tags);
        td_tag_op(d, &r.resource_arn, move |db, scope, arn| {
            registry::in_transaction(db, "tagging", |tx| registry::tag(tx, scope, arn, &tags))
        })
        .await?;
        return Ok(json!({}));
    }
    d.engine
        .tag_resource(&r.resource_arn, r.tags)
        .await
        .map_err(|e| tag_error(&r.resource_arn, e))?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct UntagResource {
    resource_arn: String,
    tag_keys: Vec<String>,
}

pub(super) async fn untag(d: &Daemon, r: UntagResource) -> Result<Value, ApiError> {
    if registry::is_task_definition_arn(&r.resource_arn) {
        let keys = r.tag_keys.clone();
        td_tag_op(d, &r.resource_arn, move |db, scope, arn| {
            registry::in_transaction(db, "untagging", |tx| registry::untag(tx, scope, arn, &keys))
        })
        .await?;
        return Ok(json!({}));
    }
    d.engine
        .untag_resource(&r.resource_arn, r.tag_keys)
        .await
        .map_err(|e| tag_error(&r.resource_arn, e))?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ListTagsForResource {
    resource_arn: String,
}

pub(super) async fn list_tags(d: &Daemon, r: ListTagsForResource) -> Result<Value, ApiError> {
    if registry::is_task_definition_arn(&r.resource_arn) {
        let tags = td_tag_op(d, &r.resource_arn, |db, scope, arn| {
            registry::list_tags(db.conn(), scope, arn)
        })
        .await?;
        return Ok(json!({"tags": tags}));
    }
    let tags = d
        .engine
        .list_tags(&r.resource_arn)
        .await
        .map_err(|e| tag_error(&r.resource_arn, e))?;
    Ok(json!({"tags": tags}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DescribeContainerInstances {
    cluster: Option<String>,
    container_instances: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

pub(super) async fn describe_instances(
    d: &Daemon,
    r: DescribeContainerInstances,
) -> Result<Value, ApiError> {
    let _ = &r.include;
    let cluster = cluster_of(d, r.cluster.as_deref()).await?;
    let me = d.engine.container_instance_arn(&cluster);
    let id = me.rsplit('/').next().unwrap_or_default().to_owned();
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for ci in r.container_instances {
        if ci == me || ci == id {
            found.push(
                d.engine
                    .container_instance(&cluster)
                    .await
                    .map_err(engine_error)?,
            );
        } else {
            failures.push(missing(&ci));
        }
    }
    Ok(json!({"containerInstances": found, "failures": failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ListContainerInstances {
    cluster: Option<String>,
    filter: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    status: Option<String>,
}

pub(super) async fn list_instances(
    d: &Daemon,
    r: ListContainerInstances,
) -> Result<Value, ApiError> {
    let _ = (&r.filter, &r.next_token);
    max_results(r.max_results)?;
    let cluster = cluster_of(d, r.cluster.as_deref()).await?;
    let arns = match r.status.as_deref() {
        None | Some("ACTIVE") => vec![d.engine.container_instance_arn(&cluster)],
        Some(_) => vec![],
    };
    Ok(json!({"containerInstanceArns": arns}))
}

async fn cluster_of(d: &Daemon, reference: Option<&str>) -> Result<String, ApiError> {
    let (found, _) = d
        .engine
        .describe_clusters(
            vec![berth_runtime::engine::arn::cluster_name(reference)],
            false,
        )
        .await
        .map_err(engine_error)?;
    match found.into_iter().next() {
        Some(c) if c.status == "ACTIVE" => Ok(c.cluster_name),
        _ => Err(ApiError::cluster_not_found()),
    }
}
