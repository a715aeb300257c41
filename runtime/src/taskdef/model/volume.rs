//! `volumes[]`: task-level data volumes and how berth provides each kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::enums::{EfsAuthorizationConfigIam, EfsTransitEncryption, Scope};
use super::wire::null_as_default;

/// One task volume. At most one of the source members may be set; none means a
/// runtime-managed scratch directory (ECS: "the Docker daemon assigns a host path").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostVolumeProperties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
    #[serde(
        rename = "s3filesVolumeConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub s3files_volume_configuration: Option<S3FilesVolumeConfiguration>,
    #[serde(
        rename = "fsxWindowsFileServerVolumeConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fsx_windows_file_server_volume_configuration:
        Option<FsxWindowsFileServerVolumeConfiguration>,
    /// An EBS volume supplied at RunTask/CreateService time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_at_launch: Option<bool>,
}

impl Volume {
    /// The volume's name (empty only before validation).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// How berth provides this volume on the host.
    pub fn kind(&self) -> VolumeKind<'_> {
        if let Some(path) = self.host.as_ref().and_then(|h| h.source_path.as_deref())
            && !path.is_empty()
        {
            return VolumeKind::HostPath(path);
        }
        if let Some(docker) = &self.docker_volume_configuration {
            return VolumeKind::Named(docker);
        }
        if self.efs_volume_configuration.is_some()
            || self.s3files_volume_configuration.is_some()
            || self.fsx_windows_file_server_volume_configuration.is_some()
            || self.configured_at_launch == Some(true)
        {
            return VolumeKind::RemoteStandIn;
        }
        VolumeKind::Scratch
    }

    /// The member names of the sources that are set, for the "only one" rule.
    pub(crate) fn sources(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        if self.host.is_some() {
            s.push("host");
        }
        if self.docker_volume_configuration.is_some() {
            s.push("dockerVolumeConfiguration");
        }
        if self.efs_volume_configuration.is_some() {
            s.push("efsVolumeConfiguration");
        }
        if self.s3files_volume_configuration.is_some() {
            s.push("s3filesVolumeConfiguration");
        }
        if self.fsx_windows_file_server_volume_configuration.is_some() {
            s.push("fsxWindowsFileServerVolumeConfiguration");
        }
        if self.configured_at_launch == Some(true) {
            s.push("configuredAtLaunch");
        }
        s
    }
}

/// What a volume is on this host, for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKind<'a> {
    /// Bind-mount this absolute host path (created if missing, kept after the task).
    HostPath(&'a str),
    /// A directory berth creates for the task and removes with it; shared by every
    /// container that mounts the volume.
    Scratch,
    /// A named local volume (`dockerVolumeConfiguration`): task-scoped or shared.
    Named(&'a DockerVolumeConfiguration),
    /// EFS, FSx, S3 Files or an EBS volume configured at launch: not reachable from a
    /// single host; berth provides an empty task-scoped directory in its place and
    /// registration lists a warning.
    RemoteStandIn,
}

/// `host`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostVolumeProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
}

/// `dockerVolumeConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DockerVolumeConfiguration {
    /// Defaults to `task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Create a shared volume if missing (shared scope only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoprovision: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

impl DockerVolumeConfiguration {
    /// The scope, `task` when unset.
    pub fn scope(&self) -> Scope {
        self.scope.unwrap_or(Scope::Task)
    }
}

/// `efsVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EfsVolumeConfiguration {
    pub file_system_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption: Option<EfsTransitEncryption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_config: Option<EfsAuthorizationConfig>,
}

/// `efsVolumeConfiguration.authorizationConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EfsAuthorizationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<EfsAuthorizationConfigIam>,
}

/// `s3filesVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3FilesVolumeConfiguration {
    pub file_system_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_arn: Option<String>,
}

/// `fsxWindowsFileServerVolumeConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsxWindowsFileServerVolumeConfiguration {
    pub file_system_id: String,
    pub root_directory: String,
    pub authorization_config: FsxWindowsFileServerAuthorizationConfig,
}

/// `fsxWindowsFileServerVolumeConfiguration.authorizationConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsxWindowsFileServerAuthorizationConfig {
    pub credentials_parameter: String,
    pub domain: String,
}
