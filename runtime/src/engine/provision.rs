//! Preparing a task for its shim: rootfs mounts, volumes, `/etc` files, one OCI bundle
//! per container, and the shim's `task.json`.
//!
//! Layout (see [`crate::paths`]):
//!
//! ```text
//! <run-root>/tasks/<id>/containers/<name>/config.json    the OCI spec
//! <run-root>/tasks/<id>/containers/<name>/rootfs/        overlayfs mount point
//! <run-root>/tasks/<id>/containers/<name>/etc/           hosts, resolv.conf, hostname
//! <data-root>/tasks/<id>/containers/<name>/{upper,work}  the container's writable layer
//! <data-root>/tasks/<id>/volumes/<volume>/               task-scoped volumes
//! <data-root>/tasks/<id>/volumes/.anonymous/<name>/<hash> image VOLUMEs (anonymous)
//! <data-root>/tasks/<id>/logs/<name>.log                 the container's log
//! <data-root>/volumes/<volume>/_data                     shared named volumes
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_netns::{HostDns, HostsEntry, NetworkMode, TaskNetwork, files as netfiles};
use sha2::Digest as _;

use super::files::{self, InRoot};
use super::health::{health_check, image_health_check, wants_image_healthcheck};
use super::volumes::{self, MountSource};
use super::{Engine, mount_points, sys};
use crate::images::RootFs;
use crate::shim::{
    Condition, SharedNamespace, ShimContainer, ShimDependency, ShimRestartPolicy, ShimTask,
};
use crate::spec::{
    self, BindMount, ContainerPlan, DeviceMapping, Namespace, Rlimit, SpecContext, TmpfsMount,
};
use crate::state::model::TaskRecord;
use crate::taskdef::{
    ContainerCondition, ContainerDefinition, TaskDefinition, ValidatedTaskDefinition,
};

/// What preparing a task produced.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub shim_task: ShimTask,
    /// Mount points created for the task (rootfs overlays), unmounted at cleanup.
    pub mounts: Vec<PathBuf>,
}

/// The definition stored with a task.
pub(crate) fn definition(rec: &TaskRecord) -> Result<ValidatedTaskDefinition, String> {
    let def: TaskDefinition = serde_json::from_value(rec.runtime.definition.clone())
        .map_err(|e| format!("stored task definition is unreadable: {e}"))?;
    Ok(ValidatedTaskDefinition::from_stored(def))
}

/// Everything `prepare` needs, gathered on the async side.
pub(crate) struct PrepareInput {
    pub task_id: String,
    pub task_arn: String,
    pub cluster: String,
    pub family: String,
    pub revision: String,
    pub def: ValidatedTaskDefinition,
    pub network: Option<TaskNetwork>,
    pub images: BTreeMap<String, RootFs>,
    /// The containers' root filesystems if they were mounted ahead (see [`mount_rootfs`]).
    pub rootfs: Option<MountedRootfs>,
    /// Each container's task metadata endpoint id.
    pub metadata_ids: BTreeMap<String, String>,
    /// Each container's variables from its `secrets`, resolved from berth's store.
    pub secrets: BTreeMap<String, Vec<(String, String)>>,
    /// The task's credentials id, when it has a task role.
    pub credentials_id: Option<String>,
}

/// The containers' root filesystems, mounted ahead of the rest of the preparation (alongside
/// the task's network and cgroup).
#[derive(Debug, Clone)]
pub(crate) struct MountedRootfs {
    /// Each container's, in start order.
    pub dirs: Vec<PathBuf>,
    /// The mounts made.
    pub mounts: Vec<PathBuf>,
}

/// Mounts each container's root filesystem, in start order: an overlay of its image's
/// snapshots under a writable layer of its own. Runs on a blocking thread. On error, what it
/// mounted is unmounted again and the message is the task's `stoppedReason`.
pub(crate) fn mount_rootfs(
    engine: &Engine,
    task_id: &str,
    def: &ValidatedTaskDefinition,
    images: &BTreeMap<String, RootFs>,
) -> Result<MountedRootfs, String> {
    let mut mounts = Vec::new();
    let dirs = mount_rootfs_inner(engine, task_id, def, images, &mut mounts);
    match dirs {
        Ok(dirs) => Ok(MountedRootfs { dirs, mounts }),
        Err(reason) => {
            for m in mounts.iter().rev() {
                sys::unmount(m);
            }
            Err(reason)
        }
    }
}

fn mount_rootfs_inner(
    engine: &Engine,
    task_id: &str,
    def: &ValidatedTaskDefinition,
    images: &BTreeMap<String, RootFs>,
    mounts: &mut Vec<PathBuf>,
) -> Result<Vec<PathBuf>, String> {
    let paths = &engine.config().paths;
    let run_dir = paths.task_run_dir(task_id);
    let data_dir = paths.task_data_dir(task_id);
    let order = def.start_order();
    let mut dirs = Vec::with_capacity(order.len());
    for c in &order {
        let name = c.name.clone().unwrap_or_default();
        let image = image_in(images, c)?;
        let bundle = run_dir.join("containers").join(&name);
        let rootfs = bundle.join("rootfs");
        let upper = data_dir.join("containers").join(&name).join("upper");
        let work = data_dir.join("containers").join(&name).join("work");
        for d in [&rootfs, &upper, &work, &bundle.join("etc")] {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        // Only root may look into a container's bundle and rootfs from the host
        // (setuid binaries in a rootfs must not be reachable by host users).
        std::fs::set_permissions(&bundle, std::fs::Permissions::from_mode(0o700)).ok();
        let mount_points = mount_points::layer(
            &paths.mount_points_dir(),
            &image.image_id,
            &image.lower_dirs,
        );
        let with_mount_points = mount_points.map(|layer| {
            let lowers: Vec<PathBuf> = std::iter::once(layer)
                .chain(image.lower_dirs.iter().cloned())
                .collect();
            sys::mount_overlay(&lowers, &upper, &work, &rootfs)
        });
        // The layer is an optimization: a run root overlayfs refuses as a lower layer
        // (or one layer too many) leaves the runtime to make the mount points.
        match with_mount_points {
            Some(Ok(())) => {}
            Some(Err(_)) | None => sys::mount_overlay(&image.lower_dirs, &upper, &work, &rootfs)
                .map_err(|e| format!("CannotCreateContainerError: {e}"))?,
        }
        mounts.push(rootfs.clone());
        dirs.push(rootfs);
    }
    Ok(dirs)
}

/// Mounts, writes and generates everything for the shim. Runs on a blocking thread.
/// On error, what it mounted is unmounted again and the message is the task's
/// `stoppedReason`.
pub(crate) fn prepare(engine: &Engine, input: &PrepareInput) -> Result<Prepared, String> {
    let mut mounts = input
        .rootfs
        .as_ref()
        .map(|r| r.mounts.clone())
        .unwrap_or_default();
    let result = prepare_inner(engine, input, &mut mounts);
    if result.is_err() {
        for m in mounts.iter().rev() {
            sys::unmount(m);
        }
    }
    result.map(|shim_task| Prepared { shim_task, mounts })
}

fn prepare_inner(
    engine: &Engine,
    input: &PrepareInput,
    mounts: &mut Vec<PathBuf>,
) -> Result<ShimTask, String> {
    let cfg = engine.config();
    let paths = &cfg.paths;
    let run_dir = paths.task_run_dir(&input.task_id);
    let data_dir = paths.task_data_dir(&input.task_id);
    let def = &input.def;
    let mode = super::run::network_mode(def);
    let cgroups = &engine.inner().cgroups;
    let host_dns = HostDns::read(Path::new("/"));

    let volumes = volumes::prepare(engine, def.definition(), &data_dir, mounts)?;

    // Every container's rootfs first: volumesFrom and copy-up read other containers'.
    let order = def.start_order();
    let rootfs_of = match &input.rootfs {
        Some(r) => r.dirs.clone(),
        None => mount_rootfs_inner(engine, &input.task_id, def, &input.images, mounts)?,
    };
    let sources: Vec<MountSource<'_>> = order
        .iter()
        .zip(&rootfs_of)
        .map(|(c, rootfs)| {
            let name = c.name.as_deref().unwrap_or_default();
            MountSource {
                def: c,
                rootfs,
                image_volumes: image_of(input, c)
                    .ok()
                    .and_then(|i| i.config.config().as_ref())
                    .and_then(|ic| ic.volumes().clone())
                    .unwrap_or_default(),
                // `.` cannot appear in a volume name: no clash with declared ones.
                anonymous_dir: data_dir.join("volumes").join(".anonymous").join(name),
            }
        })
        .collect();
    let volume_mounts = volumes::resolve_mounts(&sources, &volumes)?;

    let ns_mode = |m: Option<&str>| match m {
        Some("host") => Namespace::Host,
        _ => Namespace::New,
    };
    let pid_mode = def.definition().pid_mode.map(|m| m.as_str());
    let ipc_mode = def.definition().ipc_mode.map(|m| m.as_str());
    let mut shared_namespaces = Vec::new();
    if pid_mode == Some("task") {
        shared_namespaces.push(SharedNamespace::Pid);
    }
    if ipc_mode == Some("task") {
        shared_namespaces.push(SharedNamespace::Ipc);
    }

    let mut shim_containers = Vec::new();
    for ((c, rootfs), own) in order.iter().zip(&rootfs_of).zip(volume_mounts) {
        let c: &ContainerDefinition = c;
        let name = c.name.clone().unwrap_or_default();
        let image = image_of(input, c)?;
        let bundle = run_dir.join("containers").join(&name);

        let endpoint = endpoint_for(input.network.as_ref(), &name);
        let address = endpoint
            .and_then(|e| e.interface.as_ref())
            .map(|i| i.private_ipv4_address);
        let runtime_id = format!("{}-{}", input.task_id, name);
        let hostname = match (mode, address) {
            // (`hostname` is refused with awsvpc declared; without networkMode it is
            // valid, as ECS runs such a definition in bridge mode.)
            (NetworkMode::Awsvpc, Some(a)) => c
                .hostname
                .clone()
                .unwrap_or_else(|| netfiles::default_hostname(a)),
            (NetworkMode::Host, _) => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into()),
            // Docker's default: the first 12 hex digits of the container's id (here a
            // digest of it, so two containers of one task differ).
            _ => c.hostname.clone().unwrap_or_else(|| {
                hex::encode(sha2::Sha256::digest(runtime_id.as_bytes()))[..12].to_owned()
            }),
        };

        // /etc files.
        let etc = bundle.join("etc");
        let dns_servers: Vec<IpAddr> = c
            .dns_servers
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let resolv = if mode == NetworkMode::Host
            && dns_servers.is_empty()
            && c.dns_search_domains.is_empty()
        {
            host_dns.resolv_conf.clone()
        } else {
            netfiles::resolv_conf(&dns_servers, &c.dns_search_domains, &host_dns)
                .map_err(|e| e.to_string())?
        };
        let extra: Vec<HostsEntry> = c
            .extra_hosts
            .iter()
            .filter_map(|h| {
                Some(HostsEntry {
                    ip: h.ip_address.parse().ok()?,
                    names: vec![h.hostname.clone()],
                })
            })
            .collect();
        let links = links_for(c, input.network.as_ref());
        let hosts =
            netfiles::hosts(Some(&hostname), address, &extra, &links).map_err(|e| e.to_string())?;
        write(&etc.join("hosts"), &hosts)?;
        write(&etc.join("resolv.conf"), &resolv)?;
        write(
            &etc.join("hostname"),
            &netfiles::hostname_file(&hostname).map_err(|e| e.to_string())?,
        )?;

        let mut plan = container_plan(engine, input, c, &hostname)?;
        // Mounts: /etc files, then the volumes (declared, volumesFrom, image VOLUMEs).
        plan.mounts = ["hosts", "resolv.conf", "hostname"]
            .into_iter()
            .map(|f| BindMount {
                source: etc.join(f),
                destination: format!("/etc/{f}"),
                readonly: false,
            })
            .chain(own)
            .collect();

        let image_config = image.config.config().as_ref();
        let rootfs_files = InRoot::open(rootfs);
        let process = spec::process_settings(&plan, image_config, &rootfs_files)
            .map_err(|e| format!("CannotStartContainerError: {e}"))?;
        let netns = match endpoint.and_then(|e| e.netns_path.clone()) {
            Some(p) => Namespace::Join(p),
            None if mode == NetworkMode::Host => Namespace::Host,
            None => Namespace::New,
        };
        // `task` modes: a new namespace here, which the shim replaces with the task's
        // shared one when it starts the container.
        let ctx = SpecContext {
            rootfs,
            cgroups_path: cgroups.container_path(&input.task_id, &name),
            cgroup_version: cgroups.host().version(),
            network: netns,
            pid: ns_mode(pid_mode),
            ipc: ns_mode(ipc_mode),
            dev_shm: ipc_mode != Some("none"),
        };
        let mut config = spec::generate(&plan, &process, &ctx)
            .map_err(|e| format!("CannotCreateContainerError: {e}"))?;
        let seccomp_program = seccomp_ahead(&mut config, &bundle)?;
        let bytes = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
        write_bytes(&bundle.join("config.json"), &bytes)?;

        shim_containers.push(ShimContainer {
            name: name.clone(),
            runtime_id,
            bundle,
            essential: c.essential.unwrap_or(true),
            depends_on: c
                .depends_on
                .iter()
                .map(|d| ShimDependency {
                    container: d.container_name.clone(),
                    condition: match d.condition {
                        ContainerCondition::Start => Condition::Start,
                        ContainerCondition::Complete => Condition::Complete,
                        ContainerCondition::Success => Condition::Success,
                        ContainerCondition::Healthy => Condition::Healthy,
                    },
                })
                .collect(),
            start_timeout_secs: c
                .start_timeout
                .map(|t| t.max(0) as u64)
                .unwrap_or(cfg.default_start_timeout_secs),
            stop_timeout_secs: c
                .stop_timeout
                .map(|t| t.max(0) as u64)
                .unwrap_or(cfg.default_stop_timeout_secs),
            stop_signal: image_config
                .and_then(|ic| ic.stop_signal().as_deref())
                .and_then(parse_signal)
                .unwrap_or(libc::SIGTERM),
            health_check: match &c.health_check {
                Some(h) => health_check(h),
                None if wants_image_healthcheck(c) => {
                    image.healthcheck.as_ref().and_then(image_health_check)
                }
                None => None,
            },
            log_path: data_dir.join("logs").join(format!("{name}.log")),
            cgroup_path: cgroups.container_path(&input.task_id, &name),
            init_process: c
                .linux_parameters
                .as_ref()
                .and_then(|l| l.init_process_enabled)
                .unwrap_or(false),
            terminal: c.pseudo_terminal.unwrap_or(false),
            interactive: c.interactive.unwrap_or(false),
            restart_policy: c.restart_policy.as_ref().filter(|p| p.enabled).map(|p| {
                ShimRestartPolicy {
                    ignored_exit_codes: p.ignored_exit_codes.clone(),
                    attempt_period_secs: p
                        .restart_attempt_period
                        .map_or(crate::shim::DEFAULT_ATTEMPT_PERIOD_SECS, |s| {
                            s.max(0) as u64
                        }),
                }
            }),
            seccomp_program,
        });
    }

    Ok(ShimTask {
        task_id: input.task_id.clone(),
        cgroup_base: cgroups.base().to_owned(),
        container_state_root: paths.container_state_dir(),
        containers: shim_containers,
        log: cfg.log,
        shared_namespaces,
    })
}

fn image_of<'a>(input: &'a PrepareInput, c: &ContainerDefinition) -> Result<&'a RootFs, String> {
    image_in(&input.images, c)
}

fn image_in<'a>(
    images: &'a BTreeMap<String, RootFs>,
    c: &ContainerDefinition,
) -> Result<&'a RootFs, String> {
    let image_ref = c.image.as_deref().unwrap_or_default();
    images
        .get(image_ref)
        .ok_or_else(|| format!("CannotPullContainerError: image {image_ref} was not prepared"))
}

/// Where a task of `mode` reaches the daemon's task metadata endpoint: the bridge
/// gateway from a task namespace, loopback from the host's; none mode has no network.
fn metadata_base(engine: &Engine, mode: NetworkMode) -> Option<String> {
    let port = engine.config().metadata_port?;
    let host = match mode {
        NetworkMode::Awsvpc | NetworkMode::Bridge => engine.inner().net.subnet().gateway(),
        NetworkMode::Host => Ipv4Addr::LOCALHOST,
        NetworkMode::None => return None,
    };
    Some(format!("http://{host}:{port}"))
}

/// How a task of `mode` finds its role credentials, as SDKs read it: the relative URI on
/// `169.254.170.2` from a task namespace (the firewall sends that address to the
/// endpoint), a full loopback URI (which SDKs accept) from the host's; none mode has no
/// network.
fn credentials_variable(engine: &Engine, mode: NetworkMode, id: &str) -> Option<(String, String)> {
    let path = format!("/v2/credentials/{id}");
    match mode {
        NetworkMode::Awsvpc | NetworkMode::Bridge => {
            engine.inner().net.config().credentials_port?;
            Some(("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".into(), path))
        }
        NetworkMode::Host => {
            let port = engine.config().metadata_port?;
            Some((
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                format!("http://127.0.0.1:{port}{path}"),
            ))
        }
        NetworkMode::None => None,
    }
}

fn container_plan(
    engine: &Engine,
    input: &PrepareInput,
    c: &ContainerDefinition,
    hostname: &str,
) -> Result<ContainerPlan, String> {
    let name = c.name.clone().unwrap_or_default();
    // What the ECS agent sets; the definition's own values win.
    let mut env: Vec<(String, String)> = vec![("AWS_EXECUTION_ENV".into(), "AWS_ECS_EC2".into())];
    if let Some(base) = metadata_base(engine, super::run::network_mode(&input.def))
        && let Some(id) = input.metadata_ids.get(&name)
    {
        env.push((
            "ECS_CONTAINER_METADATA_URI_V4".into(),
            format!("{base}/v4/{id}"),
        ));
        env.push((
            "ECS_CONTAINER_METADATA_URI".into(),
            format!("{base}/v3/{id}"),
        ));
    }
    if let Some(id) = &input.credentials_id {
        env.extend(credentials_variable(
            engine,
            super::run::network_mode(&input.def),
            id,
        ));
    }
    for f in &c.environment_files {
        if let Some(path) = files::local_env_file(&f.value) {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "ResourceInitializationError: failed to read environment file {}: {e}",
                    path.display()
                )
            })?;
            for (k, v) in files::parse_env_file(&text) {
                env.retain(|(n, _)| n != &k);
                env.push((k, v));
            }
        }
    }
    for kv in &c.environment {
        if let Some(k) = &kv.name {
            env.retain(|(n, _)| n != k);
            env.push((k.clone(), kv.value.clone().unwrap_or_default()));
        }
    }
    for (k, v) in input.secrets.get(&name).into_iter().flatten() {
        env.retain(|(n, _)| n != k);
        env.push((k.clone(), v.clone()));
    }
    let lp = c.linux_parameters.as_ref();
    let caps = lp.and_then(|l| l.capabilities.as_ref());
    let mut labels = c.docker_labels.clone();
    labels.insert("com.amazonaws.ecs.cluster".into(), input.cluster.clone());
    labels.insert("com.amazonaws.ecs.container-name".into(), name.clone());
    labels.insert("com.amazonaws.ecs.task-arn".into(), input.task_arn.clone());
    labels.insert(
        "com.amazonaws.ecs.task-definition-family".into(),
        input.family.clone(),
    );
    labels.insert(
        "com.amazonaws.ecs.task-definition-version".into(),
        input.revision.clone(),
    );
    let no_new_privs_off = c
        .docker_security_options
        .iter()
        .any(|o| o.eq_ignore_ascii_case("no-new-privileges:false"));
    let devices = lp
        .map(|l| l.devices.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|d| device(&d.host_path, d.container_path.as_deref(), &d.permissions))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ContainerPlan {
        name,
        entry_point: c.entry_point.clone(),
        command: c.command.clone(),
        environment: env,
        working_directory: c.working_directory.clone(),
        user: c.user.clone(),
        hostname: hostname.to_owned(),
        readonly_rootfs: c.readonly_root_filesystem.unwrap_or(false),
        privileged: c.privileged.unwrap_or(false),
        cap_add: caps.map(|k| k.add.clone()).unwrap_or_default(),
        cap_drop: caps.map(|k| k.drop.clone()).unwrap_or_default(),
        no_new_privileges: !no_new_privs_off,
        ulimits: c
            .ulimits
            .iter()
            .map(|u| Rlimit {
                name: u.name.as_str().to_owned(),
                soft: u.soft_limit.max(0) as u64,
                hard: u.hard_limit.max(0) as u64,
            })
            .collect(),
        tmpfs: lp
            .map(|l| l.tmpfs.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|t| TmpfsMount {
                container_path: t.container_path.clone(),
                size_mib: t.size.max(1) as u64,
                options: t.mount_options.clone(),
            })
            .collect(),
        shm_size_mib: lp
            .and_then(|l| l.shared_memory_size)
            .map(|s| s.max(1) as u64),
        sysctls: c
            .system_controls
            .iter()
            .filter_map(|s| Some((s.namespace.clone()?, s.value.clone().unwrap_or_default())))
            .collect(),
        labels,
        cpu_units: c.cpu.map(|u| u.max(0) as u32),
        memory_mib: c.memory.map(|m| m.max(0) as u64),
        memory_reservation_mib: c.memory_reservation.map(|m| m.max(0) as u64),
        max_swap_mib: lp.and_then(|l| l.max_swap).map(|s| s.max(0) as u64),
        swappiness: lp
            .and_then(|l| l.swappiness)
            .map(|s| s.clamp(0, 100) as u64),
        pids_limit: Some(engine.config().pids_limit),
        devices,
        mounts: Vec::new(),
        terminal: c.pseudo_terminal.unwrap_or(false),
    })
}

/// Moves the spec's seccomp profile out of it when the container's process can load the
/// compiled program itself (see `spec::seccomp`): with `no_new_privs`, right before exec.
/// The bundle keeps the profile as `seccomp.json` (the spec plus it is what the container
/// runs with) and the program as `seccomp.bpf`, whose path is returned. A profile that
/// cannot be compiled ahead stays in the spec, for libcontainer.
fn seccomp_ahead(config: &mut serde_json::Value, bundle: &Path) -> Result<Option<PathBuf>, String> {
    let no_new_privs = config["process"]["noNewPrivileges"].as_bool() == Some(true);
    let Some(profile) = config["linux"].get("seccomp").filter(|_| no_new_privs) else {
        return Ok(None);
    };
    let program = match spec::seccomp::compiled(profile) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "seccomp profile left to the runtime");
            return Ok(None);
        }
    };
    let profile = serde_json::to_vec_pretty(profile).map_err(|e| e.to_string())?;
    write_bytes(&bundle.join("seccomp.json"), &profile)?;
    let path = bundle.join("seccomp.bpf");
    write_bytes(&path, &program)?;
    if let Some(linux) = config["linux"].as_object_mut() {
        linux.remove("seccomp");
    }
    Ok(Some(path))
}

fn device(
    host_path: &str,
    container_path: Option<&str>,
    permissions: &[crate::taskdef::DeviceCgroupPermission],
) -> Result<DeviceMapping, String> {
    use nix::sys::stat::{SFlag, major, minor, stat};
    let st = stat(host_path).map_err(|e| format!("linuxParameters.devices: {host_path}: {e}"))?;
    let kind = match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFCHR => 'c',
        SFlag::S_IFBLK => 'b',
        _ => {
            return Err(format!(
                "linuxParameters.devices: {host_path} is not a device"
            ));
        }
    };
    let access = if permissions.is_empty() {
        "rwm".to_owned()
    } else {
        permissions.iter().map(|p| &p.as_str()[..1]).collect()
    };
    Ok(DeviceMapping {
        host_path: host_path.into(),
        container_path: container_path.unwrap_or(host_path).to_owned(),
        kind,
        major: major(st.st_rdev) as i64,
        minor: minor(st.st_rdev) as i64,
        access,
        file_mode: st.st_mode & 0o777,
    })
}

/// A signal named as in an image's StopSignal: `SIGQUIT`, `QUIT` or `3`.
pub(crate) fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

fn endpoint_for<'a>(
    net: Option<&'a TaskNetwork>,
    container: &str,
) -> Option<&'a berth_netns::Endpoint> {
    let net = net?;
    net.endpoints
        .iter()
        .find(|e| e.name == container)
        .or_else(|| net.endpoints.iter().find(|e| e.name == "task"))
}

/// `/etc/hosts` lines for `links`: `name:alias` of another container, at its own address
/// (bridge mode), or at 127.0.0.1 when the task's containers share one namespace (a
/// definition without networkMode: ECS allows links there, berth runs it like awsvpc).
fn links_for(c: &ContainerDefinition, net: Option<&TaskNetwork>) -> Vec<HostsEntry> {
    let Some(net) = net else { return Vec::new() };
    c.links
        .iter()
        .filter_map(|l| {
            let (target, alias) = l.split_once(':').unwrap_or((l, l));
            let ip: Ipv4Addr = match net.endpoints.iter().find(|e| e.name == target) {
                Some(e) => e.interface.as_ref()?.private_ipv4_address,
                None if net.endpoints.iter().any(|e| e.name == "task") => Ipv4Addr::LOCALHOST,
                None => return None,
            };
            let mut names = vec![alias.to_owned()];
            if alias != target {
                names.push(target.to_owned());
            }
            Some(HostsEntry {
                ip: IpAddr::V4(ip),
                names,
            })
        })
        .collect()
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    write_bytes(path, text.as_bytes())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals_parse_in_every_docker_form() {
        assert_eq!(parse_signal("SIGQUIT"), Some(libc::SIGQUIT));
        assert_eq!(parse_signal("quit"), Some(libc::SIGQUIT));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGNOPE"), None);
    }
}
