//! Generating a container's OCI runtime spec (`config.json`).
//!
//! The engine resolves a task definition into a [`ContainerPlan`] (overrides applied,
//! environment files merged, volumes turned into bind mounts) and the task-level
//! [`SpecContext`] (rootfs mount point, cgroup path, namespaces). [`generate`] merges
//! the plan with the image config the way Docker does and adds berth's secure
//! defaults ([`defaults`]). The spec is assembled as JSON — the same shape the
//! runtime reads — and checked by deserialising it into `oci_spec::runtime::Spec`.

pub mod defaults;
pub mod seccomp;
mod user;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use serde_json::{Value, json};

pub use user::{ResolvedUser, RootfsFiles, resolve_user};

use crate::cgroup::{CgroupVersion, cpu_shares_for_units, cpu_weight_from_shares};
use crate::error::ErrorClass;

/// The default `PATH` when the image sets none (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default `/dev/shm` size (Docker's 64 MiB).
const DEFAULT_SHM_MIB: u64 = 64;

/// Errors generating a spec. Each is a reason the container cannot start, reported as
/// `CannotStartContainerError: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    User(String),
    #[error(
        "no command specified: the image has no entrypoint or command and the container definition sets none"
    )]
    NoCommand,
    #[error("unknown capability {0:?}")]
    Capability(String),
    #[error(
        "capability {0} is not in this host's capability bounding set (berth runs without it), so no container can be given it"
    )]
    CapabilityUnavailable(String),
    #[error("unknown ulimit {0:?}")]
    Ulimit(String),
    #[error("invalid container path {path:?} for {what}: it must be absolute")]
    RelativePath { path: String, what: &'static str },
    #[error("generated OCI spec is invalid")]
    Invalid(#[source] serde_json::Error),
}

impl SpecError {
    /// The API class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            SpecError::User(_)
            | SpecError::NoCommand
            | SpecError::Capability(_)
            | SpecError::CapabilityUnavailable(_)
            | SpecError::Ulimit(_)
            | SpecError::RelativePath { .. } => ErrorClass::Invalid,
            SpecError::Invalid(_) => ErrorClass::Internal,
        }
    }
}

/// A resource limit (`ulimits[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    /// ECS name: `nofile`, `nproc`, `core`, …
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// A tmpfs mount (`linuxParameters.tmpfs[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    pub container_path: String,
    pub size_mib: u64,
    pub options: Vec<String>,
}

/// A bind mount into the container (volumes, `/etc/hosts`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// A host device exposed to the container (`linuxParameters.devices[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    pub host_path: PathBuf,
    pub container_path: String,
    /// Character `c` or block `b`.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    /// `r`, `w`, `m` letters.
    pub access: String,
    pub file_mode: u32,
}

/// Everything about one container that the task definition (with overrides) decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerPlan {
    pub name: String,
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// Task-definition environment (already merged over environment files).
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    pub hostname: String,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `no_new_privs`; berth's default is on.
    pub no_new_privileges: bool,
    pub ulimits: Vec<Rlimit>,
    pub tmpfs: Vec<TmpfsMount>,
    pub shm_size_mib: Option<u64>,
    pub sysctls: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub cpu_units: Option<u32>,
    pub memory_mib: Option<u64>,
    pub memory_reservation_mib: Option<u64>,
    /// `linuxParameters.maxSwap` in MiB (0 disables swap).
    pub max_swap_mib: Option<u64>,
    pub swappiness: Option<u64>,
    pub pids_limit: Option<i64>,
    pub devices: Vec<DeviceMapping>,
    pub mounts: Vec<BindMount>,
    pub terminal: bool,
}

/// A namespace the container creates, joins, or shares with the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    New,
    Join(PathBuf),
    Host,
}

/// Task-level facts the spec needs.
#[derive(Debug, Clone)]
pub struct SpecContext<'a> {
    /// The container's rootfs mount point (overlayfs merged dir).
    pub rootfs: &'a Path,
    /// The container's cgroup, hierarchy-relative.
    pub cgroups_path: String,
    pub cgroup_version: CgroupVersion,
    pub network: Namespace,
    pub pid: Namespace,
    pub ipc: Namespace,
    /// Whether the container gets a `/dev/shm` (Docker: not with `--ipc=none`; with
    /// `--ipc=host` it is the host's).
    pub dev_shm: bool,
}

/// The merged process settings, also used for health-check execs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
    pub capabilities: Vec<String>,
}

/// Merges the plan with the image config (Docker's rules) and resolves the user.
pub fn process_settings(
    plan: &ContainerPlan,
    image: Option<&ImageConfig>,
    files: &dyn RootfsFiles,
) -> Result<ProcessSettings, SpecError> {
    // Docker: a definition's entryPoint replaces the image's ENTRYPOINT *and* drops the
    // image's CMD; a command alone replaces CMD and keeps ENTRYPOINT.
    let args: Vec<String> = match &plan.entry_point {
        Some(ep) => ep
            .iter()
            .chain(plan.command.iter().flatten())
            .cloned()
            .collect(),
        None => {
            let ep = image
                .and_then(|c| c.entrypoint().clone())
                .unwrap_or_default();
            let cmd = match &plan.command {
                Some(c) => c.clone(),
                None => image.and_then(|c| c.cmd().clone()).unwrap_or_default(),
            };
            ep.into_iter().chain(cmd).collect()
        }
    };
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }

    let user_spec = plan
        .user
        .clone()
        .or_else(|| image.and_then(|c| c.user().clone()))
        .unwrap_or_default();
    let user = resolve_user(&user_spec, files)?;

    let mut env: Vec<(String, String)> = image
        .and_then(|c| c.env().clone())
        .unwrap_or_default()
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv, String::new()),
        })
        .collect();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(n, _)| n == k) {
        Some(entry) => entry.1 = v.to_owned(),
        None => env.push((k.to_owned(), v.to_owned())),
    };
    for (k, v) in &plan.environment {
        set(k, v);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        env.push(("HOSTNAME".into(), plan.hostname.clone()));
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), user.home.clone()));
    }

    let cwd = plan
        .working_directory
        .clone()
        .or_else(|| {
            image
                .and_then(|c| c.working_dir().clone())
                .filter(|w| !w.is_empty())
        })
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativePath {
            path: cwd,
            what: "workingDirectory",
        });
    }

    Ok(ProcessSettings {
        args,
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd,
        user,
        capabilities: capabilities(plan)?,
    })
}

/// The container's capability set: Docker's default, `drop` then `add` applied, or
/// everything for a privileged container — within the host's bounding set.
pub fn capabilities(plan: &ContainerPlan) -> Result<Vec<String>, SpecError> {
    capabilities_within(plan, defaults::host_bounding_set())
}

/// [`capabilities`] against a given bounding set (bit N = capability number N).
/// `privileged`, `add: ["ALL"]` and the defaults quietly keep only what the set
/// allows (as Podman does in a restricted host); a capability added by name that
/// the set lacks is refused, naming it, rather than failing later in capset.
pub fn capabilities_within(plan: &ContainerPlan, bounding: u64) -> Result<Vec<String>, SpecError> {
    let norm = |c: &String| {
        defaults::normalize_capability(c).ok_or_else(|| SpecError::Capability(c.clone()))
    };
    let allowed = |c: &str| {
        defaults::capability_number(c).is_some_and(|n| n < 64 && bounding & (1u64 << n) != 0)
    };
    let every = || -> Vec<String> {
        defaults::ALL_CAPABILITIES
            .iter()
            .filter(|c| allowed(c))
            .map(|c| c.to_string())
            .collect()
    };
    if plan.privileged {
        return Ok(every());
    }
    let drop: Vec<String> = plan.cap_drop.iter().map(norm).collect::<Result<_, _>>()?;
    let add: Vec<String> = plan.cap_add.iter().map(norm).collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        defaults::DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| allowed(c))
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if add.iter().any(|c| c == "ALL") {
        caps = every();
    } else {
        for c in add {
            if !allowed(&c) {
                return Err(SpecError::CapabilityUnavailable(c));
            }
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    Ok(caps)
}

/// The whole `config.json` for one container.
pub fn generate(
    plan: &ContainerPlan,
    process: &ProcessSettings,
    ctx: &SpecContext<'_>,
) -> Result<Value, SpecError> {
    let caps = &process.capabilities;
    let rlimits = plan
        .ulimits
        .iter()
        .map(|u| {
            rlimit_type(&u.name)
                .map(|t| json!({"type": t, "soft": u.soft, "hard": u.hard}))
                .ok_or_else(|| SpecError::Ulimit(u.name.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let process_json = json!({
        "terminal": plan.terminal,
        "user": {
            "uid": process.user.uid,
            "gid": process.user.gid,
            "additionalGids": process.user.additional_gids,
        },
        "args": process.args,
        "env": process.env,
        "cwd": process.cwd,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "rlimits": rlimits,
        "noNewPrivileges": plan.no_new_privileges && !plan.privileged,
        "oomScoreAdj": 0,
    });

    let mut linux = serde_json::Map::new();
    linux.insert("cgroupsPath".into(), json!(ctx.cgroups_path));
    linux.insert("namespaces".into(), json!(namespaces(ctx)));
    linux.insert("resources".into(), resources(plan, ctx)?);
    if !plan.sysctls.is_empty() {
        let m: BTreeMap<&str, &str> = plan
            .sysctls
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        linux.insert("sysctl".into(), json!(m));
    }
    if !plan.devices.is_empty() {
        let devices: Vec<Value> = plan
            .devices
            .iter()
            .map(|d| {
                json!({
                    "path": d.container_path, "type": d.kind.to_string(),
                    "major": d.major, "minor": d.minor, "fileMode": d.file_mode,
                    "uid": 0, "gid": 0,
                })
            })
            .collect();
        linux.insert("devices".into(), json!(devices));
    }
    if !plan.privileged {
        linux.insert("maskedPaths".into(), json!(defaults::MASKED_PATHS));
        linux.insert("readonlyPaths".into(), json!(defaults::READONLY_PATHS));
        linux.insert("seccomp".into(), defaults::default_seccomp(caps));
    }
    linux.insert("rootfsPropagation".into(), json!("private"));

    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process_json,
        "root": {"path": ctx.rootfs, "readonly": plan.readonly_rootfs},
        "hostname": plan.hostname,
        "mounts": mounts(plan, ctx)?,
        "annotations": plan.labels,
        "linux": Value::Object(linux),
    });
    let _: oci_spec::runtime::Spec =
        serde_json::from_value(spec.clone()).map_err(SpecError::Invalid)?;
    Ok(spec)
}

fn namespaces(ctx: &SpecContext<'_>) -> Vec<Value> {
    let mut v = vec![
        json!({"type": "mount"}),
        json!({"type": "uts"}),
        json!({"type": "cgroup"}),
    ];
    for (kind, choice) in [
        ("network", &ctx.network),
        ("pid", &ctx.pid),
        ("ipc", &ctx.ipc),
    ] {
        match choice {
            Namespace::New => v.push(json!({"type": kind})),
            Namespace::Join(path) => v.push(json!({"type": kind, "path": path})),
            Namespace::Host => {}
        }
    }
    v
}

fn resources(plan: &ContainerPlan, ctx: &SpecContext<'_>) -> Result<Value, SpecError> {
    let mib = |m: u64| m * 1024 * 1024;
    let mut memory = serde_json::Map::new();
    if let Some(m) = plan.memory_mib {
        memory.insert("limit".into(), json!(mib(m)));
        if let Some(swap) = plan.max_swap_mib {
            // OCI `swap` is memory+swap, as Docker's --memory-swap.
            memory.insert("swap".into(), json!(mib(m + swap)));
        }
    }
    if let Some(r) = plan.memory_reservation_mib {
        memory.insert("reservation".into(), json!(mib(r)));
    }
    if let Some(s) = plan.swappiness
        && ctx.cgroup_version == CgroupVersion::V1
    {
        memory.insert("swappiness".into(), json!(s));
    }
    let shares = cpu_shares_for_units(plan.cpu_units);
    let mut res = serde_json::Map::new();
    res.insert("memory".into(), Value::Object(memory));
    match ctx.cgroup_version {
        CgroupVersion::V1 => {
            res.insert("cpu".into(), json!({"shares": shares}));
        }
        // Written as cpu.weight directly: libcgroups would convert `shares` with a
        // curve that bends ECS's ratios (see cgroup::limits).
        CgroupVersion::V2 => {
            res.insert(
                "unified".into(),
                json!({"cpu.weight": cpu_weight_from_shares(shares).to_string()}),
            );
        }
    }
    if let Some(p) = plan.pids_limit {
        res.insert("pids".into(), json!({"limit": p}));
    }
    let mut devices = if plan.privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        defaults::default_device_rules()
    };
    for d in &plan.devices {
        devices.push(json!({
            "allow": true, "type": d.kind.to_string(), "major": d.major, "minor": d.minor,
            "access": d.access,
        }));
    }
    res.insert("devices".into(), json!(devices));
    Ok(Value::Object(res))
}

fn mounts(plan: &ContainerPlan, ctx: &SpecContext<'_>) -> Result<Vec<Value>, SpecError> {
    let shm = plan.shm_size_mib.unwrap_or(DEFAULT_SHM_MIB);
    let sys_opts = if plan.privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut v = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
    ];
    let shm = match (&ctx.ipc, ctx.dev_shm) {
        (Namespace::Host, true) => Some(
            json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "nosuid", "noexec", "nodev"]}),
        ),
        (_, true) => Some(
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}k", shm * 1024)]}),
        ),
        (_, false) => None,
    };
    v.splice(3..3, shm);
    // A container in the host's network namespace cannot mount a fresh sysfs view of
    // another namespace; the cgroup mount is meaningful only with its own namespace.
    if ctx.network == Namespace::Host {
        v[5] = json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    }
    v.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    for t in &plan.tmpfs {
        if !t.container_path.starts_with('/') {
            return Err(SpecError::RelativePath {
                path: t.container_path.clone(),
                what: "tmpfs",
            });
        }
        let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
        options.extend(t.options.iter().filter(|o| *o != "defaults").cloned());
        options.push(format!("size={}k", t.size_mib * 1024));
        v.push(json!({"destination": t.container_path, "type": "tmpfs", "source": "tmpfs", "options": options}));
    }
    for m in &plan.mounts {
        if !m.destination.starts_with('/') {
            return Err(SpecError::RelativePath {
                path: m.destination.clone(),
                what: "mountPoints",
            });
        }
        let mut options = vec!["rbind", "rprivate"];
        if m.readonly {
            options.push("ro");
        }
        v.push(json!({"destination": m.destination, "type": "bind", "source": m.source, "options": options}));
    }
    Ok(v)
}

fn rlimit_type(ecs_name: &str) -> Option<String> {
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    NAMES
        .contains(&ecs_name)
        .then(|| format!("RLIMIT_{}", ecs_name.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests;
