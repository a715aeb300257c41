//! ECS's `Task`, `Container`, `Cluster` and `Attachment` shapes as berth stores and
//! serves them (camelCase, absent fields omitted, timestamps in epoch seconds), plus
//! the bookkeeping the engine keeps next to each task.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// ECS `Tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// ECS `KeyValuePair`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValuePair {
    pub name: String,
    pub value: String,
}

/// ECS `NetworkBinding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    #[serde(rename = "bindIP")]
    pub bind_ip: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: String,
}

/// ECS `NetworkInterface` (per container, awsvpc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    pub attachment_id: String,
    pub private_ipv4_address: String,
}

/// ECS `Attachment` (the task's elastic network interface in awsvpc mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub details: Vec<KeyValuePair>,
}

/// ECS `Container` (inside `Task`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    pub last_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub network_bindings: Vec<NetworkBinding>,
    pub network_interfaces: Vec<NetworkInterface>,
    pub health_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
    /// berth's extension: the container's last health check (only for a container that
    /// has one), as the task metadata endpoint's `Health` object shows it. SDKs ignore
    /// members their model does not have.
    #[serde(
        rename = "berthHealth",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub health: Option<ContainerHealth>,
    /// How often its `restartPolicy` restarted the container (the task metadata
    /// endpoint's `RestartCount`).
    #[serde(rename = "berthRestartCount", default, skip_serializing_if = "is_zero")]
    pub restart_count: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A container's health-check state: status, since when, and the last check's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerHealth {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_since: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// ECS `Task`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub container_instance_arn: String,
    pub last_status: String,
    pub desired_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub group: String,
    pub launch_type: String,
    pub availability_zone: String,
    pub connectivity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectivity_at: Option<f64>,
    pub version: i64,
    pub created_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    pub health_status: String,
    pub attachments: Vec<Attachment>,
    pub overrides: Value,
    pub enable_execute_command: bool,
    /// berth's extension: the essential container whose exit (or failure) stopped the
    /// task. SDKs ignore members their model does not have.
    #[serde(
        rename = "berthStoppedByContainer",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stopped_by_container: Option<String>,
    /// Only in DescribeTasks with `include: ["TAGS"]`; kept in `resource_tags`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// ECS `Cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_arn: String,
    pub cluster_name: String,
    pub status: String,
    pub registered_container_instances_count: i64,
    pub running_tasks_count: i64,
    pub pending_tasks_count: i64,
    pub active_services_count: i64,
    pub statistics: Vec<KeyValuePair>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub settings: Vec<Value>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<Value>,
}

/// What the engine keeps about a task besides its ECS shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskRuntime {
    /// The task definition with overrides applied: what actually runs.
    pub definition: Value,
    /// Network mode the task runs with (`awsvpc`, `bridge`, `host`, `none`).
    pub network_mode: String,
    /// The network as set up (netns path, addresses, veths, bindings), for teardown.
    #[serde(default)]
    pub network: Option<Value>,
    /// Per-container rootfs mount points, for unmounting.
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    /// Image snapshots the task's rootfs use (kept from garbage collection).
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// Whether the shim was started (a task without one never ran).
    #[serde(default)]
    pub shim_started: bool,
    /// The last shim state sequence number applied.
    #[serde(default)]
    pub shim_seq: u64,
    /// awslogs group/stream names per container, for `berth logs`.
    #[serde(default)]
    pub log_names: BTreeMap<String, LogStreamName>,
    /// Warnings about fields berth could not honour.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Each container's task metadata endpoint id (`ECS_CONTAINER_METADATA_URI_V4`
    /// ends in it): `<task-id>-<random>`, so the endpoint finds the task at once and
    /// no container can guess another's.
    #[serde(default)]
    pub metadata_ids: BTreeMap<String, String>,
    /// The task's credentials id when it has a `taskRoleArn`
    /// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` ends in it): `<task-id>-<random>`, as
    /// unguessable as the metadata ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_id: Option<String>,
    /// CPU units and MiB the task holds on the host while it is not STOPPED.
    #[serde(default)]
    pub reserved_cpu: u64,
    #[serde(default)]
    pub reserved_memory_mib: u64,
}

/// Where a container's log would be in CloudWatch Logs (`awslogs` driver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStreamName {
    pub group: String,
    pub stream: String,
}

/// A task row: the ECS shape and the engine's bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub id: String,
    pub cluster: String,
    pub family: String,
    pub task: Task,
    pub runtime: TaskRuntime,
}

/// ECS task `lastStatus` values, in lifecycle order.
pub mod status {
    pub const PROVISIONING: &str = "PROVISIONING";
    pub const PENDING: &str = "PENDING";
    pub const ACTIVATING: &str = "ACTIVATING";
    pub const RUNNING: &str = "RUNNING";
    pub const DEACTIVATING: &str = "DEACTIVATING";
    pub const STOPPING: &str = "STOPPING";
    pub const DEPROVISIONING: &str = "DEPROVISIONING";
    pub const STOPPED: &str = "STOPPED";

    /// Position in the lifecycle; a task never moves backwards.
    pub fn rank(s: &str) -> u8 {
        match s {
            PROVISIONING => 0,
            PENDING => 1,
            ACTIVATING => 2,
            RUNNING => 3,
            DEACTIVATING => 4,
            STOPPING => 5,
            DEPROVISIONING => 6,
            STOPPED => 7,
            _ => 0,
        }
    }
}
