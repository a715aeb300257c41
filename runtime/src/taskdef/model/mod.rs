//! The task-definition wire model: every member of ECS's `RegisterTaskDefinition`
//! request and `TaskDefinition` shape, in ECS's camelCase, typed at the edge.
//!
//! One struct, [`TaskDefinition`], reads both forms users have on disk: the
//! `register-task-definition --cli-input-json` input and the object
//! `describe-task-definition` returns. The members only ECS writes
//! (`taskDefinitionArn`, `revision`, `status`, `requiresAttributes`,
//! `compatibilities`, `registeredAt`, `registeredBy`, `deregisteredAt`,
//! `deleteRequestedAt`) are accepted in any JSON form and ignored; they are never
//! serialized from here (the registry writes its own, see [`super::output`]).
//!
//! Everything else is checked for shape by serde (unknown members and wrong JSON types
//! are errors naming their path) and for meaning by [`super::validate()`].

mod container;
mod enums;
mod volume;
mod wire;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

pub use container::{
    ContainerDefinition, ContainerDependency, ContainerRestartPolicy, Device, EnvironmentFile,
    FirelensConfiguration, HealthCheck, HostEntry, KernelCapabilities, LinuxParameters,
    LogConfiguration, MountPoint, NvidiaMpsAllocation, PortMapping, RepositoryCredentials,
    ResourceRequirement, Secret, SharingStrategy, SystemControl, Tmpfs, Ulimit, VolumeFrom,
};
pub use enums::{
    ApplicationProtocol, Compatibility, ContainerCondition, CpuArchitecture,
    DeviceCgroupPermission, EfsAuthorizationConfigIam, EfsTransitEncryption, EnvironmentFileType,
    FirelensConfigurationType, IpcMode, IsolationMode, LogDriver, NetworkMode, OsFamily, PidMode,
    ProxyConfigurationType, ResourceType, Scope, SortOrder, TaskDefinitionFamilyStatus,
    TaskDefinitionPlacementConstraintType, TaskDefinitionStatus, TransportProtocol, UlimitName,
    UnknownValue, VersionConsistency,
};
pub use volume::{
    DockerVolumeConfiguration, EfsAuthorizationConfig, EfsVolumeConfiguration,
    FsxWindowsFileServerAuthorizationConfig, FsxWindowsFileServerVolumeConfiguration,
    HostVolumeProperties, S3FilesVolumeConfiguration, Volume, VolumeKind,
};
pub use wire::{HostPort, Port};

use wire::{is_empty, null_as_default, string_or_number};

/// A task definition as users write it and as ECS describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDefinition {
    /// Required by validation: up to 255 letters, numbers, hyphens and underscores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// Absent means ECS's default (bridge) for validation; see
    /// [`super::ValidatedTaskDefinition::effective_network_mode`] for how berth runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_empty"
    )]
    pub container_definitions: Vec<ContainerDefinition>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_empty"
    )]
    pub volumes: Vec<Volume>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_empty"
    )]
    pub placement_constraints: Vec<TaskDefinitionPlacementConstraint>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_empty"
    )]
    pub requires_compatibilities: Vec<Compatibility>,
    /// CPU units or vCPUs as written ("1024", "1 vCPU"); normalized to units on
    /// registration.
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu: Option<String>,
    /// MiB or GB as written ("512", "1 GB"); normalized to MiB on registration.
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<String>,
    /// Register-time tags. Not part of the stored definition: the registry keeps tags
    /// apart (they change with TagResource), so this is never serialized.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing)]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<PidMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<IpcMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_configuration: Option<ProxyConfiguration>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_empty"
    )]
    pub inference_accelerators: Vec<InferenceAccelerator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_fault_injection: Option<bool>,
    /// botocore ≥ 1.44 (ECS Managed Instances only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_execution_configuration: Option<TrustedExecutionConfiguration>,

    // Output-only members of `describe-task-definition`: accepted, ignored.
    #[serde(default, skip_serializing)]
    task_definition_arn: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    revision: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    status: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    requires_attributes: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    compatibilities: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    registered_at: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    registered_by: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    deregistered_at: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    delete_requested_at: Option<IgnoredAny>,
}

impl TaskDefinition {
    /// The family (empty only before validation).
    pub fn family(&self) -> &str {
        self.family.as_deref().unwrap_or_default()
    }

    /// The container called `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.container_definitions.iter().find(|c| c.name() == name)
    }

    /// The volume called `name`.
    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name() == name)
    }
}

/// A `name`/`value` pair (environment variables, proxy properties).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValuePair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl KeyValuePair {
    /// A pair with both members set.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> KeyValuePair {
        KeyValuePair {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }
}

/// A resource tag (lower-case `key`/`value`, as ECS spells them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Tag {
    /// A tag with both members set.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Tag {
        Tag {
            key: Some(key.into()),
            value: Some(value.into()),
        }
    }
}

/// `placementConstraints[]` of a task definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDefinitionPlacementConstraint {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TaskDefinitionPlacementConstraintType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// `proxyConfiguration` (App Mesh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyConfiguration {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProxyConfigurationType>,
    pub container_name: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_empty"
    )]
    pub properties: Vec<KeyValuePair>,
}

/// `inferenceAccelerators[]` (Elastic Inference, retired by AWS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InferenceAccelerator {
    pub device_name: String,
    pub device_type: String,
}

/// `ephemeralStorage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EphemeralStorage {
    /// 21–200.
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: i32,
}

/// `runtimePlatform`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimePlatform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<CpuArchitecture>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system_family: Option<OsFamily>,
}

/// `trustedExecutionConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedExecutionConfiguration {
    pub isolation_mode: IsolationMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_policy: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_output_members_are_accepted_and_not_written_back() {
        let td: TaskDefinition = serde_json::from_str(
            r#"{"taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/f:3",
                "family": "f", "revision": 3, "status": "ACTIVE",
                "requiresAttributes": [{"name": "ecs.capability.task-eni"}],
                "compatibilities": ["EC2"], "registeredAt": "2024-04-17T10:00:00.123000+00:00",
                "registeredBy": "arn:aws:iam::1:root", "deregisteredAt": 1713364207.068,
                "containerDefinitions": [{"name": "a", "image": "busybox"}]}"#,
        )
        .unwrap();
        let back = serde_json::to_value(&td).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "busybox"}]})
        );
    }

    #[test]
    fn nulls_are_absent_and_numbers_are_accepted_for_task_cpu_and_memory() {
        let td: TaskDefinition = serde_json::from_str(
            r#"{"family": "f", "cpu": 256, "memory": null, "volumes": null,
                "containerDefinitions": [{"name": "a", "links": null, "hostname": null}]}"#,
        )
        .unwrap();
        assert_eq!(td.cpu.as_deref(), Some("256"));
        assert_eq!(td.memory, None);
        assert!(td.volumes.is_empty());
    }

    #[test]
    fn container_definition_has_all_42_members_of_the_ecs_model() {
        let all: serde_json::Value = serde_json::from_str(
            r#"{
            "name": "a", "image": "i", "repositoryCredentials": {"credentialsParameter": "p"},
            "cpu": 1, "memory": 6, "memoryReservation": 6, "links": ["b"],
            "portMappings": [{"containerPort": 1}], "essential": true,
            "restartPolicy": {"enabled": true}, "entryPoint": ["e"], "command": ["c"],
            "environment": [{"name": "n", "value": "v"}],
            "environmentFiles": [{"value": "/x.env", "type": "s3"}],
            "mountPoints": [{"sourceVolume": "v"}], "volumesFrom": [{"sourceContainer": "b"}],
            "linuxParameters": {"initProcessEnabled": true},
            "secrets": [{"name": "s", "valueFrom": "arn"}],
            "dependsOn": [{"containerName": "b", "condition": "START"}],
            "startTimeout": 1, "stopTimeout": 1, "versionConsistency": "enabled",
            "hostname": "h", "user": "u", "workingDirectory": "/", "disableNetworking": false,
            "privileged": false, "readonlyRootFilesystem": false, "dnsServers": ["1.1.1.1"],
            "dnsSearchDomains": ["d"], "extraHosts": [{"hostname": "h", "ipAddress": "1.2.3.4"}],
            "dockerSecurityOptions": ["no-new-privileges"], "interactive": false,
            "pseudoTerminal": false, "dockerLabels": {"k": "v"},
            "ulimits": [{"name": "nofile", "softLimit": 1, "hardLimit": 2}],
            "logConfiguration": {"logDriver": "json-file"},
            "healthCheck": {"command": ["CMD", "true"]},
            "systemControls": [{"namespace": "net.core.somaxconn", "value": "1"}],
            "resourceRequirements": [{"type": "GPU", "value": "1"}],
            "firelensConfiguration": {"type": "fluentbit"}, "credentialSpecs": ["c"]
        }"#,
        )
        .unwrap();
        assert_eq!(all.as_object().unwrap().len(), 42);
        let c: ContainerDefinition = serde_json::from_value(all.clone()).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), all);
    }
}
