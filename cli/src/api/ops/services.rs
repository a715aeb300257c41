//! CreateService, DescribeServices, ListServices, UpdateService, DeleteService.
//!
//! Fields a single host has nothing to do with are accepted and kept (placement,
//! network configuration, platform version, capacity providers) or refused by name when
//! honouring them is the point (load balancers, service discovery, Service Connect,
//! another deployment controller).

use berth_runtime::engine::services::{
    CircuitBreaker, CreateService as Create, DeploymentConfigurationUpdate, ServiceError,
    UpdateService as Update,
};
use berth_runtime::state::model::Tag;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{decode_token, encode_token, engine_error, max_results};
use crate::api::ApiError;
use crate::daemon::Daemon;

fn service_error(e: ServiceError) -> ApiError {
    match (e.ecs_exception(), e) {
        (_, ServiceError::Engine(e)) => engine_error(e),
        (Some("InvalidParameterException"), e) => ApiError::invalid(e.to_string()),
        (Some(code), e) => ApiError::new(code, StatusCode::BAD_REQUEST, e.to_string()),
        (None, e) => ApiError::server(e.to_string()),
    }
}

/// Members berth cannot honour on one host and will not pretend to: the first one set
/// is refused by name.
fn refuse_unsupported(members: &[(&str, &Option<Value>)]) -> Result<(), ApiError> {
    for (name, v) in members {
        let set = match v {
            None | Some(Value::Null) => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => o.get("enabled") != Some(&Value::Bool(false)),
            Some(_) => true,
        };
        if set {
            return Err(ApiError::new(
                "UnsupportedFeatureException",
                StatusCode::BAD_REQUEST,
                format!(
                    "{name} is not supported by berth on a single host (no load balancers or Cloud Map)"
                ),
            ));
        }
    }
    Ok(())
}

/// The members CreateService and UpdateService share that berth refuses when set:
/// the integrations of a cluster of hosts, and deployment controllers other than ECS.
struct Integrations<'a> {
    load_balancers: &'a Option<Value>,
    service_registries: &'a Option<Value>,
    service_connect: &'a Option<Value>,
    volume_configurations: &'a Option<Value>,
    vpc_lattice: &'a Option<Value>,
    deployment_controller: &'a Option<Value>,
}

fn refuse_integrations(i: Integrations<'_>) -> Result<(), ApiError> {
    refuse_unsupported(&[
        ("loadBalancers", i.load_balancers),
        ("serviceRegistries", i.service_registries),
        ("serviceConnectConfiguration", i.service_connect),
        ("volumeConfigurations", i.volume_configurations),
        ("vpcLatticeConfigurations", i.vpc_lattice),
    ])?;
    check_controller(i.deployment_controller)
}

/// ECS `DeploymentConfiguration` as given: the engine keeps the current (or default)
/// value of what is left out.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentConfigurationIn {
    deployment_circuit_breaker: Option<CircuitBreakerIn>,
    maximum_percent: Option<u32>,
    minimum_healthy_percent: Option<u32>,
    #[serde(flatten)]
    other: std::collections::BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CircuitBreakerIn {
    enable: bool,
    rollback: bool,
}

impl From<DeploymentConfigurationIn> for DeploymentConfigurationUpdate {
    fn from(c: DeploymentConfigurationIn) -> Self {
        DeploymentConfigurationUpdate {
            deployment_circuit_breaker: c.deployment_circuit_breaker.map(|b| CircuitBreaker {
                enable: b.enable,
                rollback: b.rollback,
            }),
            maximum_percent: c.maximum_percent,
            minimum_healthy_percent: c.minimum_healthy_percent,
            other: c.other,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CreateService {
    cluster: Option<String>,
    service_name: String,
    task_definition: Option<String>,
    desired_count: Option<u32>,
    launch_type: Option<String>,
    scheduling_strategy: Option<String>,
    deployment_configuration: Option<DeploymentConfigurationIn>,
    network_configuration: Option<Value>,
    health_check_grace_period_seconds: Option<u32>,
    #[serde(default)]
    placement_constraints: Vec<Value>,
    #[serde(default)]
    placement_strategy: Vec<Value>,
    #[serde(default)]
    tags: Vec<Tag>,
    propagate_tags: Option<String>,
    #[serde(rename = "enableECSManagedTags", default)]
    enable_ecs_managed_tags: bool,
    #[serde(default)]
    enable_execute_command: bool,
    client_token: Option<String>,
    deployment_controller: Option<Value>,
    load_balancers: Option<Value>,
    service_registries: Option<Value>,
    service_connect_configuration: Option<Value>,
    volume_configurations: Option<Value>,
    vpc_lattice_configurations: Option<Value>,
    platform_version: Option<String>,
    role: Option<String>,
    capacity_provider_strategy: Option<Value>,
    availability_zone_rebalancing: Option<String>,
}

fn check_controller(v: &Option<Value>) -> Result<(), ApiError> {
    match v
        .as_ref()
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
    {
        None | Some("ECS") => Ok(()),
        Some(other) => Err(ApiError::invalid(format!(
            "deploymentController.type {other} is not supported by berth (only ECS rolling updates)"
        ))),
    }
}

pub(super) async fn create(d: &Daemon, r: CreateService) -> Result<Value, ApiError> {
    refuse_integrations(Integrations {
        load_balancers: &r.load_balancers,
        service_registries: &r.service_registries,
        service_connect: &r.service_connect_configuration,
        volume_configurations: &r.volume_configurations,
        vpc_lattice: &r.vpc_lattice_configurations,
        deployment_controller: &r.deployment_controller,
    })?;
    let _ = (
        &r.platform_version,
        &r.role,
        &r.capacity_provider_strategy,
        &r.availability_zone_rebalancing,
    );
    let task_definition = r
        .task_definition
        .ok_or_else(|| ApiError::invalid("taskDefinition is required"))?;
    let req = Create {
        cluster: r.cluster,
        service_name: r.service_name,
        task_definition,
        desired_count: r.desired_count,
        launch_type: r.launch_type,
        scheduling_strategy: r.scheduling_strategy,
        deployment_configuration: r.deployment_configuration.map(Into::into),
        network_configuration: r.network_configuration,
        health_check_grace_period_seconds: r.health_check_grace_period_seconds,
        placement_constraints: r.placement_constraints,
        placement_strategy: r.placement_strategy,
        tags: r.tags,
        propagate_tags: r.propagate_tags,
        enable_ecs_managed_tags: r.enable_ecs_managed_tags,
        enable_execute_command: r.enable_execute_command,
        client_token: r.client_token,
    };
    let service = d.engine.create_service(req).await.map_err(service_error)?;
    Ok(json!({"service": service}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DescribeServices {
    cluster: Option<String>,
    services: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

pub(super) async fn describe(d: &Daemon, r: DescribeServices) -> Result<Value, ApiError> {
    if r.services.is_empty() || r.services.len() > 10 {
        return Err(ApiError::invalid(
            "services must name between 1 and 10 services",
        ));
    }
    let tags = r.include.iter().any(|i| i == "TAGS");
    let (services, failures) = d
        .engine
        .describe_services(r.cluster.as_deref(), &r.services, tags)
        .await
        .map_err(service_error)?;
    Ok(json!({"services": services, "failures": failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ListServices {
    cluster: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    launch_type: Option<String>,
    scheduling_strategy: Option<String>,
    resource_management_type: Option<String>,
}

pub(super) async fn list(d: &Daemon, r: ListServices) -> Result<Value, ApiError> {
    let _ = &r.resource_management_type;
    // ECS pages services by 10 unless told otherwise.
    let limit = match r.max_results {
        None => 10,
        some => max_results(some)?,
    };
    let after = match &r.next_token {
        Some(t) => decode_token(t)?
            .get("after")
            .and_then(Value::as_str)
            .map(str::to_owned),
        None => None,
    };
    let mut page = d
        .engine
        .list_services(
            r.cluster.as_deref(),
            r.scheduling_strategy.as_deref(),
            r.launch_type.as_deref(),
            after.as_deref(),
            limit + 1,
        )
        .await
        .map_err(service_error)?;
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        encode_token(&json!({"after": page.last().map(|(name, _)| name.clone())}))
    });
    let arns: Vec<&str> = page.iter().map(|(_, arn)| arn.as_str()).collect();
    Ok(json!({"serviceArns": arns, "nextToken": next}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct UpdateService {
    cluster: Option<String>,
    service: String,
    desired_count: Option<u32>,
    task_definition: Option<String>,
    #[serde(default)]
    force_new_deployment: bool,
    deployment_configuration: Option<DeploymentConfigurationIn>,
    network_configuration: Option<Value>,
    health_check_grace_period_seconds: Option<u32>,
    propagate_tags: Option<String>,
    enable_execute_command: Option<bool>,
    #[serde(default)]
    placement_constraints: Vec<Value>,
    #[serde(default)]
    placement_strategy: Vec<Value>,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
    load_balancers: Option<Value>,
    service_registries: Option<Value>,
    service_connect_configuration: Option<Value>,
    volume_configurations: Option<Value>,
    vpc_lattice_configurations: Option<Value>,
    platform_version: Option<String>,
    capacity_provider_strategy: Option<Value>,
    availability_zone_rebalancing: Option<String>,
    deployment_controller: Option<Value>,
}

pub(super) async fn update(d: &Daemon, r: UpdateService) -> Result<Value, ApiError> {
    refuse_integrations(Integrations {
        load_balancers: &r.load_balancers,
        service_registries: &r.service_registries,
        service_connect: &r.service_connect_configuration,
        volume_configurations: &r.volume_configurations,
        vpc_lattice: &r.vpc_lattice_configurations,
        deployment_controller: &r.deployment_controller,
    })?;
    let _ = (
        &r.placement_constraints,
        &r.placement_strategy,
        &r.enable_ecs_managed_tags,
        &r.platform_version,
        &r.capacity_provider_strategy,
        &r.availability_zone_rebalancing,
    );
    let req = Update {
        cluster: r.cluster,
        service: r.service,
        desired_count: r.desired_count,
        task_definition: r.task_definition,
        force_new_deployment: r.force_new_deployment,
        deployment_configuration: r.deployment_configuration.map(Into::into),
        network_configuration: r.network_configuration,
        health_check_grace_period_seconds: r.health_check_grace_period_seconds,
        propagate_tags: r.propagate_tags,
        enable_execute_command: r.enable_execute_command,
    };
    let service = d.engine.update_service(req).await.map_err(service_error)?;
    Ok(json!({"service": service}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DeleteService {
    cluster: Option<String>,
    service: String,
    #[serde(default)]
    force: bool,
}

pub(super) async fn delete(d: &Daemon, r: DeleteService) -> Result<Value, ApiError> {
    let service = d
        .engine
        .delete_service(r.cluster.as_deref(), &r.service, r.force)
        .await
        .map_err(service_error)?;
    Ok(json!({"service": service}))
}
