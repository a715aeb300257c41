//! A service as ECS shows it (`Service`, `Deployment`, `ServiceEvent`), and what the
//! scheduler keeps beside it. Stored as one JSON document per service.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::model::Tag;

/// The most events a service keeps (ECS shows the latest 100).
pub(crate) const MAX_EVENTS: usize = 100;

/// ECS `Service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    pub load_balancers: Vec<Value>,
    pub service_registries: Vec<Value>,
    /// ACTIVE, DRAINING (deleted, tasks stopping) or INACTIVE.
    pub status: String,
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub launch_type: String,
    pub task_definition: String,
    pub deployment_configuration: DeploymentConfiguration,
    pub deployments: Vec<Deployment>,
    /// Newest first.
    pub events: Vec<ServiceEvent>,
    pub created_at: f64,
    pub placement_constraints: Vec<Value>,
    pub placement_strategy: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<u32>,
    pub scheduling_strategy: String,
    pub deployment_controller: Value,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: String,
    pub enable_execute_command: bool,
    /// Shown only when DescribeServices asks for TAGS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// ECS `DeploymentConfiguration` (the members a single host honours, and the rest
/// kept as given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    pub deployment_circuit_breaker: CircuitBreaker,
    pub maximum_percent: u32,
    pub minimum_healthy_percent: u32,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Default for DeploymentConfiguration {
    fn default() -> Self {
        DeploymentConfiguration {
            deployment_circuit_breaker: CircuitBreaker::default(),
            maximum_percent: 200,
            minimum_healthy_percent: 100,
            other: BTreeMap::new(),
        }
    }
}

/// A `DeploymentConfiguration` as a CreateService or UpdateService request gives it:
/// what it leaves out keeps its current value (the defaults, for a new service).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentConfigurationUpdate {
    pub deployment_circuit_breaker: Option<CircuitBreaker>,
    pub maximum_percent: Option<u32>,
    pub minimum_healthy_percent: Option<u32>,
    /// Members a single host has no use for, kept as given.
    pub other: BTreeMap<String, Value>,
}

impl DeploymentConfigurationUpdate {
    /// `base` with this update applied.
    pub fn apply(self, base: &DeploymentConfiguration) -> DeploymentConfiguration {
        let mut c = base.clone();
        if let Some(b) = self.deployment_circuit_breaker {
            c.deployment_circuit_breaker = b;
        }
        if let Some(m) = self.maximum_percent {
            c.maximum_percent = m;
        }
        if let Some(m) = self.minimum_healthy_percent {
            c.minimum_healthy_percent = m;
        }
        c.other.extend(self.other);
        c
    }
}

/// ECS `DeploymentCircuitBreaker`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

/// ECS `Deployment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/` and 19 digits; the `startedBy` of its tasks.
    pub id: String,
    /// PRIMARY (the newest) or ACTIVE (an older one whose tasks are being replaced).
    pub status: String,
    pub task_definition: String,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    pub created_at: f64,
    pub updated_at: f64,
    pub launch_type: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: String,
    pub rollout_state_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
}

/// ECS `ServiceEvent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    pub created_at: f64,
    pub message: String,
}

/// A service and the scheduler's bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    pub service: Service,
    /// Tasks the scheduler started and has not yet seen STOPPED: task id → deployment
    /// id. How it notices a task that failed to start, or stopped.
    #[serde(default)]
    pub tracked: BTreeMap<String, String>,
    /// Tasks of the primary deployment in a row that stopped before they ran.
    #[serde(default)]
    pub failed_starts: u32,
    /// No task is started before this time (the start throttle).
    #[serde(default)]
    pub next_start_at: f64,
    /// The task definition of the last deployment that completed (for a circuit
    /// breaker's rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed_task_definition: Option<String>,
    /// Whether the steady-state event was written since the last change.
    #[serde(default)]
    pub steady: bool,
    /// The request that created the service, for an idempotent retry (clientToken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl ServiceRecord {
    /// Adds an event (newest first), keeping the latest [`MAX_EVENTS`].
    pub(crate) fn event(&mut self, at: f64, message: String) {
        tracing::info!(service = %self.service.service_name, "{message}");
        self.service.events.insert(
            0,
            ServiceEvent {
                id: super::super::arn::uuid(),
                created_at: at,
                message,
            },
        );
        self.service.events.truncate(MAX_EVENTS);
    }

    /// The deployment new tasks start in.
    pub(crate) fn primary(&self) -> Option<&Deployment> {
        self.service.deployments.first()
    }

    /// `(service NAME)`, how ECS's event messages begin.
    pub(crate) fn who(&self) -> String {
        format!("(service {})", self.service.service_name)
    }
}
