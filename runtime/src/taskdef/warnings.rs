//! Fields berth accepts, stores and echoes, but cannot honour on a single Linux host.
//!
//! Each is reported once, with the path of the field and what berth does instead. The
//! decision per field follows the "local" column of the reference (§2.1/§2.2): `Y`
//! fields are honoured and never warned about; `E`/`S`/`N` fields that need AWS
//! (IAM, Secrets Manager, SSM, S3, EFS/FSx/EBS, App Mesh, FireLens, CloudWatch,
//! accelerators, placement) are listed here.

use std::collections::HashSet;

use super::Warning;
use super::model::{
    ContainerDefinition, IsolationMode, LogDriver, NetworkMode, OsFamily, ResourceType,
    TaskDefinition,
};

/// An `environmentFiles[].value` berth reads itself: an absolute path or a `file://`
/// URL with an absolute path.
pub(crate) fn is_local_env_file(value: &str) -> bool {
    value.starts_with('/')
        || value
            .strip_prefix("file://")
            .is_some_and(|p| p.starts_with('/'))
}

/// Every warning for `def`, in field order, without duplicates.
pub(crate) fn collect(def: &TaskDefinition) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut w = |field: String, message: String| out.push(Warning { field, message });
    task_level(def, &mut w);
    for (i, v) in def.volumes.iter().enumerate() {
        let f = |field: &str| format!("volumes[{i}].{field}");
        let stand_in = "containers get an empty task-scoped directory in its place";
        if v.efs_volume_configuration.is_some() {
            w(
                f("efsVolumeConfiguration"),
                format!("Amazon EFS cannot be mounted on this host; {stand_in}"),
            );
        }
        if v.fsx_windows_file_server_volume_configuration.is_some() {
            w(
                f("fsxWindowsFileServerVolumeConfiguration"),
                format!(
                    "Amazon FSx for Windows File Server cannot be mounted on this host; {stand_in}"
                ),
            );
        }
        if v.s3files_volume_configuration.is_some() {
            w(
                f("s3filesVolumeConfiguration"),
                format!("Amazon S3 Files cannot be mounted on this host; {stand_in}"),
            );
        }
        if v.configured_at_launch == Some(true) {
            w(
                f("configuredAtLaunch"),
                format!("Amazon EBS volumes cannot be attached on this host; {stand_in}"),
            );
        }
        if let Some(d) = &v.docker_volume_configuration {
            if let Some(driver) = d.driver.as_deref().filter(|d| *d != "local") {
                w(
                    f("dockerVolumeConfiguration.driver"),
                    format!(
                        "volume driver {driver:?} is not available; berth creates a local volume"
                    ),
                );
            }
            let local = matches!(d.driver.as_deref(), None | Some("" | "local"));
            if !local && !d.driver_opts.is_empty() {
                w(
                    f("dockerVolumeConfiguration.driverOpts"),
                    "options of another volume driver are not applied; berth creates a plain local directory".into(),
                );
            }
            let unknown: Vec<&str> = d
                .driver_opts
                .keys()
                .map(String::as_str)
                .filter(|k| !matches!(*k, "type" | "device" | "o"))
                .collect();
            if local && !unknown.is_empty() {
                w(
                    f("dockerVolumeConfiguration.driverOpts"),
                    format!(
                        "{} not an option of the local driver (type, device, o); tasks using this volume fail to start",
                        unknown.join(", ") + if unknown.len() == 1 { " is" } else { " are" }
                    ),
                );
            }
        }
    }
    for (i, c) in def.container_definitions.iter().enumerate() {
        container(i, c, def.network_mode == Some(NetworkMode::None), &mut w);
    }
    let mut seen = HashSet::new();
    out.retain(|warning| seen.insert(warning.clone()));
    out
}

fn task_level(def: &TaskDefinition, w: &mut impl FnMut(String, String)) {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if set(&def.task_role_arn) {
        w(
            "taskRoleArn".into(),
            "berth does not assume IAM roles; the credentials endpoint serves what `berth role put` stored for the role".into(),
        );
    }
    if set(&def.execution_role_arn) {
        w(
            "executionRoleArn".into(),
            "berth does not assume IAM roles; images are pulled with berth's own registry credentials".into(),
        );
    }
    if !def.placement_constraints.is_empty() {
        w(
            "placementConstraints".into(),
            "not evaluated; berth places every task on this host".into(),
        );
    }
    if def.proxy_configuration.is_some() {
        w(
            "proxyConfiguration".into(),
            "App Mesh proxy configuration is not applied".into(),
        );
    }
    if !def.inference_accelerators.is_empty() {
        w(
            "inferenceAccelerators".into(),
            "Elastic Inference accelerators are not available".into(),
        );
    }
    if def.ephemeral_storage.is_some() {
        w(
            "ephemeralStorage".into(),
            "not enforced; a task's writable layers are limited only by the host's disk".into(),
        );
    }
    if def.enable_fault_injection == Some(true) {
        w(
            "enableFaultInjection".into(),
            "fault injection endpoints are not served".into(),
        );
    }
    if let Some(te) = &def.trusted_execution_configuration
        && (te.isolation_mode != IsolationMode::Shared || te.attestation_policy.is_some())
    {
        w(
            "trustedExecutionConfiguration".into(),
            format!(
                "isolation mode {} is not available; tasks run in namespaces on this host",
                te.isolation_mode
            ),
        );
    }
    let os = def
        .runtime_platform
        .as_ref()
        .and_then(|p| p.operating_system_family);
    if let Some(os) = os.filter(|os| *os != OsFamily::Linux) {
        w(
            "runtimePlatform.operatingSystemFamily".into(),
            format!("{os} containers cannot run here; berth runs Linux containers only"),
        );
    }
}

/// awslogs options berth uses (to name the local log group and stream).
const AWSLOGS_USED: &[&str] = &["awslogs-group", "awslogs-stream-prefix"];

fn container(
    i: usize,
    c: &ContainerDefinition,
    none_mode: bool,
    w: &mut impl FnMut(String, String),
) {
    let f = |field: &str| format!("containerDefinitions[{i}].{field}");
    for (j, ef) in c.environment_files.iter().enumerate() {
        if !is_local_env_file(&ef.value) {
            w(
                f(&format!("environmentFiles[{j}]")),
                "S3 environment files are not read (berth reads local files given as an absolute path or file:// URL)"
                    .into(),
            );
        }
    }
    if let Some(log) = &c.log_configuration {
        let unused = |used: &[&str]| -> Vec<String> {
            log.options
                .keys()
                .filter(|k| !used.contains(&k.as_str()))
                .cloned()
                .collect()
        };
        match log.log_driver {
            LogDriver::Awslogs => {
                let unused = unused(AWSLOGS_USED);
                if !unused.is_empty() {
                    w(
                        f("logConfiguration.options"),
                        format!(
                            "awslogs options {} are not used; logs stay on this host, named by awslogs-group and awslogs-stream-prefix",
                            unused.join(", ")
                        ),
                    );
                }
            }
            LogDriver::JsonFile => {
                let unused = unused(&[]);
                if !unused.is_empty() {
                    w(
                        f("logConfiguration.options"),
                        format!(
                            "json-file options {} are not used; berth rotates logs with its own limits",
                            unused.join(", ")
                        ),
                    );
                }
            }
            other => w(
                f("logConfiguration.logDriver"),
                format!(
                    "the {other} log driver is not available; berth captures stdout and stderr to its local log store"
                ),
            ),
        }
        if !log.secret_options.is_empty() {
            w(
                f("logConfiguration.secretOptions"),
                "log driver secrets are not fetched".into(),
            );
        }
    }
    if c.firelens_configuration.is_some() {
        w(
            f("firelensConfiguration"),
            "FireLens log routing is not set up; the container runs as an ordinary container"
                .into(),
        );
    }
    for (j, rr) in c.resource_requirements.iter().enumerate() {
        let what = match rr.kind {
            ResourceType::Gpu => {
                "GPUs are not assigned to containers (linuxParameters.devices can pass a device through)"
            }
            ResourceType::InferenceAccelerator => {
                "Elastic Inference accelerators are not available"
            }
            ResourceType::NeuronDevice => "Neuron devices are not assigned to containers",
        };
        w(f(&format!("resourceRequirements[{j}]")), what.into());
    }
    if !c.credential_specs.is_empty() {
        w(
            f("credentialSpecs"),
            "Active Directory credential specs are not applied".into(),
        );
    }
    for (j, opt) in c.docker_security_options.iter().enumerate() {
        if opt != "no-new-privileges" {
            w(
                f(&format!("dockerSecurityOptions[{j}]")),
                format!(
                    "{opt:?} is not applied; berth sets no AppArmor, SELinux or credential spec options"
                ),
            );
        }
    }
    for (j, pm) in c.port_mappings.iter().enumerate() {
        if pm.app_protocol.is_some() {
            w(
                f(&format!("portMappings[{j}].appProtocol")),
                "Service Connect is not available; the port is mapped without protocol-specific handling".into(),
            );
        }
    }
    // none mode has no network to disable; elsewhere the container shares its task's
    // (awsvpc) or its endpoint's (bridge) namespace, which berth does not take away.
    if c.disable_networking == Some(true) && !none_mode {
        w(
            f("disableNetworking"),
            "not applied: the container gets the task's network; use networkMode none for a task without one"
                .into(),
        );
    }
    if let Some(lp) = &c.linux_parameters
        && lp.swappiness.is_some()
        && lp.max_swap.is_none()
    {
        w(
            f("linuxParameters.swappiness"),
            "ignored because maxSwap is not set (as on ECS)".into(),
        );
    }
}
