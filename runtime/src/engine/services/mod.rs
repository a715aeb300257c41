//! ECS services: CreateService, DescribeServices, ListServices, UpdateService and
//! DeleteService, and the scheduler that keeps each service's desired count of tasks
//! running (`scheduler.rs`): it replaces tasks that stop or fail their health checks,
//! throttles tasks that keep failing to start, rolls a new task definition out within
//! `maximumPercent` / `minimumHealthyPercent` (`plan.rs`), trips a deployment circuit
//! breaker, and writes ECS's service events. A service's tasks are ordinary tasks with
//! `group: service:NAME` and `startedBy: <deployment id>`; the services live in the
//! database, so a restarted daemon goes on where it stopped.

pub mod model;
mod plan;
mod scheduler;
mod store;

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Engine, EngineError, Failure, now};
use crate::db::DbError;
use crate::state::model::Tag;
use crate::taskdef;
use model::ServiceRecord;
pub use model::{
    CircuitBreaker, Deployment, DeploymentConfiguration, DeploymentConfigurationUpdate, Service,
    ServiceEvent,
};

/// How long a deleted service stays visible as INACTIVE.
const INACTIVE_TTL_SECS: f64 = 3600.0;

/// A service operation's error, with the ECS exception it is answered with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("Service not found.")]
    NotFound,
    #[error("Service was not ACTIVE.")]
    NotActive,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        ServiceError::Engine(e.into())
    }
}

impl From<taskdef::registry::RegistryError> for ServiceError {
    fn from(e: taskdef::registry::RegistryError) -> Self {
        ServiceError::Engine(e.into())
    }
}

impl ServiceError {
    /// The ECS exception, for the errors that are the service's own.
    pub fn ecs_exception(&self) -> Option<&'static str> {
        match self {
            ServiceError::NotFound => Some("ServiceNotFoundException"),
            ServiceError::NotActive => Some("ServiceNotActiveException"),
            ServiceError::Invalid(_) => Some("InvalidParameterException"),
            ServiceError::Engine(_) => None,
        }
    }
}

/// CreateService's input, parsed.
#[derive(Debug, Clone, Default)]
pub struct CreateService {
    pub cluster: Option<String>,
    pub service_name: String,
    pub task_definition: String,
    pub desired_count: Option<u32>,
    pub launch_type: Option<String>,
    /// REPLICA (the default) or DAEMON (one task: this host is the one instance).
    pub scheduling_strategy: Option<String>,
    pub deployment_configuration: Option<DeploymentConfigurationUpdate>,
    pub network_configuration: Option<Value>,
    pub health_check_grace_period_seconds: Option<u32>,
    pub placement_constraints: Vec<Value>,
    pub placement_strategy: Vec<Value>,
    pub tags: Vec<Tag>,
    /// TASK_DEFINITION, SERVICE or NONE.
    pub propagate_tags: Option<String>,
    pub enable_ecs_managed_tags: bool,
    pub enable_execute_command: bool,
    pub client_token: Option<String>,
}

/// UpdateService's input, parsed.
#[derive(Debug, Clone, Default)]
pub struct UpdateService {
    pub cluster: Option<String>,
    pub service: String,
    pub desired_count: Option<u32>,
    pub task_definition: Option<String>,
    pub force_new_deployment: bool,
    pub deployment_configuration: Option<DeploymentConfigurationUpdate>,
    pub network_configuration: Option<Value>,
    pub health_check_grace_period_seconds: Option<u32>,
    pub propagate_tags: Option<String>,
    pub enable_execute_command: Option<bool>,
}

/// The scheduler's shared state: one lock for every change to services (API and
/// scheduler passes), and the wake-up for the scheduler.
#[derive(Debug, Default)]
pub(crate) struct Services {
    lock: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
}

/// A service name as ECS accepts it.
fn check_name(name: &str) -> Result<(), ServiceError> {
    super::check_resource_name("serviceName", name).map_err(ServiceError::Invalid)
}

fn check_deployment_configuration(c: &DeploymentConfiguration) -> Result<(), ServiceError> {
    if c.minimum_healthy_percent > 100 {
        return Err(ServiceError::Invalid(format!(
            "deploymentConfiguration.minimumHealthyPercent must be at most 100 (got {})",
            c.minimum_healthy_percent
        )));
    }
    if c.maximum_percent > 200 || c.maximum_percent < c.minimum_healthy_percent {
        return Err(ServiceError::Invalid(format!(
            "deploymentConfiguration.maximumPercent must be between minimumHealthyPercent and 200 (got {})",
            c.maximum_percent
        )));
    }
    Ok(())
}

fn check_propagate_tags(p: Option<&str>) -> Result<String, ServiceError> {
    match p.unwrap_or("NONE") {
        v @ ("TASK_DEFINITION" | "SERVICE" | "NONE") => Ok(v.to_owned()),
        other => Err(ServiceError::Invalid(format!(
            "propagateTags must be TASK_DEFINITION, SERVICE or NONE (got {other:?})"
        ))),
    }
}

/// A new deployment id: `ecs-svc/` and 19 digits, as ECS's.
fn deployment_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    let n = u64::from_le_bytes(b) % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    format!("ecs-svc/{n}")
}

fn new_deployment(td: &str, desired: u32, launch_type: &str, net: Option<Value>) -> Deployment {
    let t = now();
    Deployment {
        id: deployment_id(),
        status: "PRIMARY".into(),
        task_definition: td.to_owned(),
        desired_count: desired,
        pending_count: 0,
        running_count: 0,
        failed_tasks: 0,
        created_at: t,
        updated_at: t,
        launch_type: launch_type.to_owned(),
        rollout_state: "IN_PROGRESS".into(),
        rollout_state_reason: "ECS deployment in progress.".into(),
        network_configuration: net,
    }
}

/// Makes `d` the primary deployment; the others become ACTIVE (being replaced).
fn push_deployment(rec: &mut ServiceRecord, d: Deployment) {
    for old in &mut rec.service.deployments {
        old.status = "ACTIVE".into();
    }
    rec.service.deployments.insert(0, d);
    rec.failed_starts = 0;
    rec.next_start_at = 0.0;
    rec.steady = false;
}

impl Engine {
    /// The services' shared state.
    fn services(&self) -> &Services {
        &self.inner().services
    }

    /// Asks the scheduler for a pass now.
    fn wake_scheduler(&self) {
        self.services().wake.notify_one();
    }

    async fn service_record(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<ServiceRecord>, ServiceError> {
        let (c, n) = (cluster.to_owned(), name.to_owned());
        Ok(self
            .db()
            .call(move |db| store::get(db.conn(), &c, &n))
            .await?)
    }

    async fn store_service(&self, rec: &ServiceRecord) -> Result<(), ServiceError> {
        let r = rec.clone();
        self.db()
            .call(move |db| store::put(db.conn(), &r, now()))
            .await?;
        Ok(())
    }

    /// CreateService.
    pub async fn create_service(&self, req: CreateService) -> Result<Service, ServiceError> {
        let cluster = self.require_cluster(req.cluster.as_deref()).await?;
        check_name(&req.service_name)?;
        let strategy = req.scheduling_strategy.as_deref().unwrap_or("REPLICA");
        let desired = match (strategy, req.desired_count) {
            ("REPLICA", Some(n)) => n,
            ("REPLICA", None) => {
                return Err(ServiceError::Invalid(
                    "desiredCount is required for a service with the REPLICA scheduling strategy"
                        .into(),
                ));
            }
            // This host is the cluster's one container instance.
            ("DAEMON", _) => 1,
            (other, _) => {
                return Err(ServiceError::Invalid(format!(
                    "schedulingStrategy must be REPLICA or DAEMON (got {other:?})"
                )));
            }
        };
        let config = req
            .deployment_configuration
            .clone()
            .unwrap_or_default()
            .apply(&DeploymentConfiguration::default());
        check_deployment_configuration(&config)?;
        let propagate_tags = check_propagate_tags(req.propagate_tags.as_deref())?;
        let scope = self.taskdef_scope();
        let reference = req.task_definition.clone();
        let td = self
            .db()
            .call(move |db| taskdef::registry::resolve_runnable(db.conn(), &scope, &reference))
            .await?;
        let launch_type = req.launch_type.clone().unwrap_or_else(|| "EC2".into());

        let _changing = self.services().lock.lock().await;
        if let Some(existing) = self.service_record(&cluster, &req.service_name).await?
            && existing.service.status != "INACTIVE"
        {
            // A retry of the same request answers what it created (as ECS, by clientToken).
            if req.client_token.is_some() && existing.client_token == req.client_token {
                return Ok(existing.service);
            }
            return Err(ServiceError::Invalid(
                "Creation of service was not idempotent.".into(),
            ));
        }
        let t = now();
        let deployment = new_deployment(
            &td.arn,
            desired,
            &launch_type,
            req.network_configuration.clone(),
        );
        let mut rec = ServiceRecord {
            service: Service {
                service_arn: self.arn().service(&cluster, &req.service_name),
                service_name: req.service_name.clone(),
                cluster_arn: self.arn().cluster(&cluster),
                load_balancers: Vec::new(),
                service_registries: Vec::new(),
                status: "ACTIVE".into(),
                desired_count: desired,
                running_count: 0,
                pending_count: 0,
                launch_type,
                task_definition: td.arn.clone(),
                deployment_configuration: config,
                deployments: Vec::new(),
                events: Vec::new(),
                created_at: t,
                placement_constraints: req.placement_constraints,
                placement_strategy: req.placement_strategy,
                network_configuration: req.network_configuration,
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                scheduling_strategy: strategy.to_owned(),
                deployment_controller: serde_json::json!({"type": "ECS"}),
                enable_ecs_managed_tags: req.enable_ecs_managed_tags,
                propagate_tags,
                enable_execute_command: req.enable_execute_command,
                tags: req.tags,
            },
            tracked: BTreeMap::new(),
            failed_starts: 0,
            next_start_at: 0.0,
            last_completed_task_definition: None,
            steady: false,
            client_token: req.client_token,
        };
        push_deployment(&mut rec, deployment);
        self.store_service(&rec).await?;
        drop(_changing);
        self.wake_scheduler();
        Ok(rec.service)
    }

    /// DescribeServices: the services found (tags only with `include_tags`), and a
    /// `MISSING` failure for each one that is not.
    pub async fn describe_services(
        &self,
        cluster: Option<&str>,
        references: &[String],
        include_tags: bool,
    ) -> Result<(Vec<Service>, Vec<Failure>), ServiceError> {
        let cluster = self.require_cluster(cluster).await?;
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for reference in references {
            let name = service_name(reference);
            match self.service_record(&cluster, name).await? {
                Some(mut rec) => {
                    if !include_tags {
                        rec.service.tags.clear();
                    }
                    found.push(rec.service);
                }
                None => failures.push(Failure {
                    arn: Some(if reference.starts_with("arn:") {
                        reference.clone()
                    } else {
                        self.arn().service(&cluster, name)
                    }),
                    reason: "MISSING".into(),
                    detail: None,
                }),
            }
        }
        Ok((found, failures))
    }

    /// ListServices: the ARNs of the cluster's ACTIVE and DRAINING services by name,
    /// after the name `after`.
    pub async fn list_services(
        &self,
        cluster: Option<&str>,
        scheduling_strategy: Option<&str>,
        launch_type: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let cluster = self.require_cluster(cluster).await?;
        let all = self
            .db()
            .call(move |db| store::list_live(db.conn(), Some(&cluster)))
            .await?;
        Ok(all
            .into_iter()
            .map(|r| r.service)
            .filter(|s| scheduling_strategy.is_none_or(|x| s.scheduling_strategy == x))
            .filter(|s| launch_type.is_none_or(|x| s.launch_type == x))
            .filter(|s| after.is_none_or(|a| s.service_name.as_str() > a))
            .take(limit)
            .map(|s| (s.service_name, s.service_arn))
            .collect())
    }

    /// UpdateService: a new desired count takes effect at once; a new task definition
    /// (or `forceNewDeployment`) starts a new deployment that replaces the tasks.
    pub async fn update_service(&self, req: UpdateService) -> Result<Service, ServiceError> {
        let cluster = self.require_cluster(req.cluster.as_deref()).await?;
        let name = service_name(&req.service).to_owned();
        let td = match &req.task_definition {
            Some(reference) => {
                let scope = self.taskdef_scope();
                let reference = reference.clone();
                Some(
                    self.db()
                        .call(move |db| {
                            taskdef::registry::resolve_runnable(db.conn(), &scope, &reference)
                        })
                        .await?
                        .arn,
                )
            }
            None => None,
        };
        let _changing = self.services().lock.lock().await;
        let mut rec = self
            .service_record(&cluster, &name)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if rec.service.status != "ACTIVE" {
            return Err(ServiceError::NotActive);
        }
        let s = &mut rec.service;
        if let Some(update) = req.deployment_configuration {
            let c = update.apply(&s.deployment_configuration);
            check_deployment_configuration(&c)?;
            s.deployment_configuration = c;
        }
        if let Some(g) = req.health_check_grace_period_seconds {
            s.health_check_grace_period_seconds = Some(g);
        }
        if let Some(p) = req.propagate_tags.as_deref() {
            s.propagate_tags = check_propagate_tags(Some(p))?;
        }
        if let Some(e) = req.enable_execute_command {
            s.enable_execute_command = e;
        }
        if req.network_configuration.is_some() {
            s.network_configuration = req.network_configuration.clone();
        }
        if let Some(n) = req.desired_count {
            if s.scheduling_strategy == "DAEMON" && n != 1 {
                return Err(ServiceError::Invalid(
                    "desiredCount cannot be changed for a service with the DAEMON scheduling strategy"
                        .into(),
                ));
            }
            if n != s.desired_count {
                s.desired_count = n;
                if let Some(primary) = s.deployments.first_mut() {
                    primary.desired_count = n;
                    primary.updated_at = now();
                }
                rec.steady = false;
                let msg = format!("{} desired count changed to {n}.", rec.who());
                rec.event(now(), msg);
            }
        }
        let s = &mut rec.service;
        let changed_td = td.as_ref().is_some_and(|t| *t != s.task_definition);
        if changed_td || req.force_new_deployment {
            let td = td.unwrap_or_else(|| s.task_definition.clone());
            s.task_definition = td.clone();
            let d = new_deployment(
                &td,
                s.desired_count,
                &s.launch_type,
                s.network_configuration.clone(),
            );
            let msg = format!("{} (deployment {}) deployment started.", rec.who(), d.id);
            push_deployment(&mut rec, d);
            rec.event(now(), msg);
        }
        self.store_service(&rec).await?;
        drop(_changing);
        self.wake_scheduler();
        Ok(rec.service)
    }

    /// DeleteService: the service goes DRAINING (its tasks stop), then INACTIVE.
    /// Refused while it is scaled above 0, unless `force`.
    pub async fn delete_service(
        &self,
        cluster: Option<&str>,
        reference: &str,
        force: bool,
    ) -> Result<Service, ServiceError> {
        let cluster = self.require_cluster(cluster).await?;
        let name = service_name(reference).to_owned();
        let _changing = self.services().lock.lock().await;
        let mut rec = self
            .service_record(&cluster, &name)
            .await?
            .filter(|r| r.service.status != "INACTIVE")
            .ok_or(ServiceError::NotFound)?;
        if rec.service.status == "DRAINING" {
            return Ok(rec.service);
        }
        if rec.service.desired_count > 0 && !force {
            return Err(ServiceError::Invalid(
                "The service cannot be stopped while it is scaled above 0.".into(),
            ));
        }
        rec.service.status = "DRAINING".into();
        rec.service.desired_count = 0;
        for d in &mut rec.service.deployments {
            d.desired_count = 0;
        }
        let msg = format!("{} was deleted; its tasks are stopping.", rec.who());
        rec.event(now(), msg);
        self.store_service(&rec).await?;
        drop(_changing);
        self.wake_scheduler();
        Ok(rec.service)
    }

    /// How many services of `cluster` are ACTIVE or DRAINING (DescribeClusters'
    /// `activeServicesCount`; a cluster with any cannot be deleted).
    pub async fn active_services_count(&self, cluster: &str) -> Result<usize, EngineError> {
        let c = cluster.to_owned();
        Ok(self
            .db()
            .call(move |db| store::count_live(db.conn(), &c))
            .await?)
    }

    /// Forgets services deleted more than an hour ago.
    pub(crate) async fn prune_services(&self) -> Result<(), EngineError> {
        let before = now() - INACTIVE_TTL_SECS;
        self.db()
            .call(move |db| store::prune_inactive(db.conn(), before))
            .await?;
        Ok(())
    }

    /// Starts the service scheduler (once, when the engine starts).
    pub(crate) fn spawn_service_scheduler(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move { scheduler::run(engine).await })
    }
}

/// The service name in a service reference (a name or an ARN
/// `…:service/CLUSTER/NAME`, or the old form `…:service/NAME`).
fn service_name(reference: &str) -> &str {
    if reference.starts_with("arn:") {
        reference.rsplit('/').next().unwrap_or(reference)
    } else {
        reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_ids_look_like_ecs() {
        let id = deployment_id();
        let digits = id.strip_prefix("ecs-svc/").unwrap();
        assert_eq!(digits.len(), 19, "{id}");
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{id}");
    }

    #[test]
    fn service_references_are_names_or_arns() {
        assert_eq!(service_name("web"), "web");
        assert_eq!(
            service_name("arn:aws:ecs:us-east-1:000000000000:service/default/web"),
            "web"
        );
        assert_eq!(
            service_name("arn:aws:ecs:us-east-1:000000000000:service/web"),
            "web"
        );
    }

    #[test]
    fn a_deployment_configuration_update_keeps_what_it_leaves_out() {
        let current = DeploymentConfigurationUpdate {
            minimum_healthy_percent: Some(50),
            deployment_circuit_breaker: Some(CircuitBreaker {
                enable: true,
                rollback: true,
            }),
            ..Default::default()
        }
        .apply(&DeploymentConfiguration::default());
        assert_eq!(
            (current.maximum_percent, current.minimum_healthy_percent),
            (200, 50)
        );
        let next = DeploymentConfigurationUpdate {
            maximum_percent: Some(150),
            ..Default::default()
        }
        .apply(&current);
        assert_eq!(
            (next.maximum_percent, next.minimum_healthy_percent),
            (150, 50)
        );
        assert!(next.deployment_circuit_breaker.rollback);
    }

    #[test]
    fn deployment_percentages_are_checked_with_the_field_named() {
        let ok = DeploymentConfiguration::default();
        assert!(check_deployment_configuration(&ok).is_ok());
        let mut bad = ok.clone();
        bad.minimum_healthy_percent = 150;
        let e = check_deployment_configuration(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("minimumHealthyPercent"), "{e}");
        let mut bad = ok;
        bad.maximum_percent = 300;
        let e = check_deployment_configuration(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("maximumPercent"), "{e}");
    }
}
