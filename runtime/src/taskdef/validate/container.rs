//! Rules for one container definition (ports, dependencies and shared volumes across
//! containers are in `ports`, `graph` and `volumes`).

use std::collections::HashMap;
use std::net::IpAddr;

use super::{Ctx, MIN_MEMORY_MIB, ValidationError, ensure, rule};
use crate::taskdef::model::{
    ContainerDefinition, HealthCheck, IpcMode, LinuxParameters, NetworkMode, ResourceType,
};

/// Linux capabilities as ECS accepts them (the model's list, without `CAP_`).
const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

/// tmpfs mount options the model lists (`mode`, `uid`, … take `=value`).
const TMPFS_OPTIONS: &[&str] = &[
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "bind",
    "rbind",
    "unbindable",
    "runbindable",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// Sysctls that belong to the IPC namespace (model doc of `SystemControl.value`).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

pub(super) fn check(
    ctx: &Ctx<'_>,
    i: usize,
    c: &ContainerDefinition,
) -> Result<(), ValidationError> {
    let f = |field: &str| format!("containerDefinitions[{i}].{field}");
    check_image(&f("image"), c.image.as_deref())?;
    check_resources(ctx, i, c)?;
    check_networking(ctx, i, c)?;
    check_environment(i, c)?;
    check_process(i, c)?;
    if let Some(hc) = &c.health_check {
        check_health_check(&f("healthCheck"), hc)?;
    }
    if let Some(lp) = &c.linux_parameters {
        check_linux_parameters(&f("linuxParameters"), lp)?;
    }
    check_mounts(ctx, i, c)?;
    check_ulimits(i, c)?;
    check_system_controls(ctx, i, c)?;
    check_resource_requirements(ctx, i, c)
}

fn check_image(field: &str, image: Option<&str>) -> Result<(), ValidationError> {
    let Some(image) = image else {
        return Err(rule(field, "is required"));
    };
    ensure(
        !image.is_empty()
            && !image
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control()),
        || rule(field, format!("{image:?} is not a valid image reference")),
    )?;
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    ensure(name.len() <= 255, || {
        rule(field, "is longer than 255 characters (before any @digest)")
    })?;
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").unwrap_or_default();
        ensure(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            || {
                rule(
                    field,
                    format!("digest {d:?} must be sha256: followed by 64 hexadecimal characters"),
                )
            },
        )?;
    }
    Ok(())
}

fn check_resources(
    ctx: &Ctx<'_>,
    i: usize,
    c: &ContainerDefinition,
) -> Result<(), ValidationError> {
    let f = |field: &str| format!("containerDefinitions[{i}].{field}");
    if let Some(cpu) = c.cpu {
        ensure(cpu >= 0, || rule(f("cpu"), "must not be negative"))?;
        if let Some(task) = ctx.cpu {
            ensure(cpu as u32 <= task, || {
                rule(
                    f("cpu"),
                    format!("({cpu} units) cannot be greater than the task cpu ({task} units)"),
                )
            })?;
        }
    }
    for (name, value) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        if let Some(v) = value {
            ensure(v >= MIN_MEMORY_MIB, || {
                rule(f(name), format!("({v} MiB) must be at least 6 MiB"))
            })?;
            if let Some(task) = ctx.memory {
                ensure(v as u32 <= task, || {
                    rule(
                        f(name),
                        format!("({v} MiB) cannot be greater than the task memory ({task} MiB)"),
                    )
                })?;
            }
        }
    }
    if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
        ensure(hard >= soft, || {
            rule(
                f("memory"),
                format!(
                    "({hard} MiB) must be greater than or equal to memoryReservation ({soft} MiB)"
                ),
            )
        })?;
    }
    if ctx.memory.is_none() && c.memory.is_none() && c.memory_reservation.is_none() {
        return Err(rule(
            f("memory"),
            format!(
                "is required: container {:?} must set memory or memoryReservation when the task has no memory",
                c.name()
            ),
        ));
    }
    for (name, value) in [
        ("startTimeout", c.start_timeout),
        ("stopTimeout", c.stop_timeout),
    ] {
        if let Some(v) = value {
            ensure(v >= 0, || rule(f(name), "must not be negative"))?;
        }
    }
    if let Some(rp) = &c.restart_policy {
        let n = rp.ignored_exit_codes.len();
        ensure(n <= 50, || {
            rule(
                f("restartPolicy.ignoredExitCodes"),
                format!("has {n} exit codes; at most 50 are allowed"),
            )
        })?;
        if let Some(p) = rp.restart_attempt_period {
            ensure((60..=1800).contains(&p), || {
                rule(
                    f("restartPolicy.restartAttemptPeriod"),
                    format!("({p}) must be between 60 and 1800 seconds"),
                )
            })?;
        }
    }
    Ok(())
}

fn check_networking(
    ctx: &Ctx<'_>,
    i: usize,
    c: &ContainerDefinition,
) -> Result<(), ValidationError> {
    let f = |field: &str| format!("containerDefinitions[{i}].{field}");
    let mode = ctx.mode;
    if !c.links.is_empty() {
        ensure(mode == NetworkMode::Bridge, || {
            rule(
                f("links"),
                format!("is only supported when networkMode is bridge (networkMode is {mode})"),
            )
        })?;
        for (j, link) in c.links.iter().enumerate() {
            let target = link.split_once(':').map_or(link.as_str(), |(name, _)| name);
            let field = f(&format!("links[{j}]"));
            ensure(target != c.name(), || {
                rule(
                    &field,
                    format!("{link:?}: a container cannot link to itself"),
                )
            })?;
            ensure(ctx.names.contains_key(target), || {
                rule(
                    &field,
                    format!(
                        "{link:?} refers to {target:?}, which is not a container in this task definition"
                    ),
                )
            })?;
        }
    }
    if c.hostname.is_some() {
        ensure(mode != NetworkMode::Awsvpc, || {
            rule(f("hostname"), "is not supported when networkMode is awsvpc")
        })?;
    }
    if !c.extra_hosts.is_empty() {
        ensure(mode != NetworkMode::Awsvpc, || {
            rule(
                f("extraHosts"),
                "is not supported when networkMode is awsvpc",
            )
        })?;
    }
    for (j, h) in c.extra_hosts.iter().enumerate() {
        ensure(!h.hostname.trim().is_empty(), || {
            rule(f(&format!("extraHosts[{j}].hostname")), "must not be empty")
        })?;
        ensure(h.ip_address.parse::<IpAddr>().is_ok(), || {
            rule(
                f(&format!("extraHosts[{j}].ipAddress")),
                format!("{:?} is not an IP address", h.ip_address),
            )
        })?;
    }
    for (j, dns) in c.dns_servers.iter().enumerate() {
        ensure(dns.parse::<IpAddr>().is_ok(), || {
            rule(
                f(&format!("dnsServers[{j}]")),
                format!("{dns:?} is not an IP address"),
            )
        })?;
    }
    Ok(())
}

/// Environment variable names: non-empty, no `=` and no NUL (what execve can carry).
fn is_env_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['=', '\0'])
}

fn check_environment(i: usize, c: &ContainerDefinition) -> Result<(), ValidationError> {
    let f = |field: String| format!("containerDefinitions[{i}].{field}");
    for (j, kv) in c.environment.iter().enumerate() {
        let field = f(format!("environment[{j}].name"));
        let Some(name) = kv.name.as_deref() else {
            return Err(rule(field, "is required"));
        };
        ensure(is_env_name(name), || {
            rule(
                &field,
                format!("{name:?} is not a valid environment variable name"),
            )
        })?;
    }
    for (j, s) in c.secrets.iter().enumerate() {
        ensure(is_env_name(&s.name), || {
            rule(
                f(format!("secrets[{j}].name")),
                format!("{:?} is not a valid environment variable name", s.name),
            )
        })?;
        ensure(!s.value_from.is_empty(), || {
            rule(f(format!("secrets[{j}].valueFrom")), "must not be empty")
        })?;
    }
    let n = c.environment_files.len();
    ensure(n <= 10, || {
        rule(
            f("environmentFiles".into()),
            format!("has {n} files; at most 10 are allowed"),
        )
    })?;
    for (j, ef) in c.environment_files.iter().enumerate() {
        let field = f(format!("environmentFiles[{j}].value"));
        let v = ef.value.as_str();
        if crate::taskdef::warnings::is_local_env_file(v) {
            continue;
        }
        if v.starts_with("arn:") && v.contains(":s3:::") {
            ensure(v.ends_with(".env"), || {
                rule(
                    &field,
                    format!("{v:?} must name a file with the .env extension"),
                )
            })?;
            continue;
        }
        return Err(rule(
            field,
            format!(
                "{v:?} must be an S3 object ARN (arn:aws:s3:::bucket/key.env) or, with berth, an absolute path or file:// URL"
            ),
        ));
    }
    Ok(())
}

fn check_process(i: usize, c: &ContainerDefinition) -> Result<(), ValidationError> {
    let f = |field: &str| format!("containerDefinitions[{i}].{field}");
    if let Some(user) = c.user.as_deref() {
        let parts: Vec<&str> = user.split(':').collect();
        ensure(
            parts.len() <= 2
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && !p.contains(char::is_whitespace)),
            || {
                rule(
                    f("user"),
                    format!(
                        "{user:?} is invalid: use user, user:group, uid, uid:gid, user:gid or uid:group"
                    ),
                )
            },
        )?;
    }
    if let Some(wd) = c.working_directory.as_deref() {
        ensure(wd.starts_with('/'), || {
            rule(
                f("workingDirectory"),
                format!("{wd:?} must be an absolute path"),
            )
        })?;
    }
    for (j, opt) in c.docker_security_options.iter().enumerate() {
        let ok = opt == "no-new-privileges"
            || ["apparmor:", "label:", "credentialspec:"]
                .iter()
                .any(|p| opt.starts_with(p) && opt.len() > p.len());
        ensure(ok, || {
            rule(
                f(&format!("dockerSecurityOptions[{j}]")),
                format!(
                    "{opt:?} is not supported: use no-new-privileges, apparmor:PROFILE, label:VALUE or credentialspec:PATH"
                ),
            )
        })?;
    }
    ensure(c.credential_specs.len() <= 1, || {
        rule(
            f("credentialSpecs"),
            format!(
                "has {} entries; at most 1 is allowed",
                c.credential_specs.len()
            ),
        )
    })?;
    for key in c.docker_labels.keys() {
        ensure(!key.is_empty(), || {
            rule(f("dockerLabels"), "must not have an empty key")
        })?;
    }
    if let Some(rc) = &c.repository_credentials {
        ensure(!rc.credentials_parameter.is_empty(), || {
            rule(
                f("repositoryCredentials.credentialsParameter"),
                "must not be empty",
            )
        })?;
    }
    Ok(())
}

fn check_health_check(field: &str, hc: &HealthCheck) -> Result<(), ValidationError> {
    let cmd = format!("{field}.command");
    let Some(kind) = hc.command.first() else {
        return Err(rule(cmd, "must not be empty"));
    };
    ensure(kind == "CMD" || kind == "CMD-SHELL", || {
        rule(
            &cmd,
            format!("must start with CMD or CMD-SHELL, not {kind:?}"),
        )
    })?;
    ensure(
        hc.command.len() > 1 && hc.command[1..].iter().any(|a| !a.is_empty()),
        || rule(&cmd, format!("must have a command after {kind}")),
    )?;
    let bounds = [
        ("interval", hc.interval, 5, 300, " seconds"),
        ("timeout", hc.timeout, 2, 60, " seconds"),
        ("retries", hc.retries, 1, 10, ""),
        ("startPeriod", hc.start_period, 0, 300, " seconds"),
    ];
    for (name, value, lo, hi, unit) in bounds {
        if let Some(v) = value {
            ensure((lo..=hi).contains(&v), || {
                rule(
                    format!("{field}.{name}"),
                    format!("({v}) must be between {lo} and {hi}{unit}"),
                )
            })?;
        }
    }
    Ok(())
}

fn check_linux_parameters(field: &str, lp: &LinuxParameters) -> Result<(), ValidationError> {
    if let Some(caps) = &lp.capabilities {
        for (list, names) in [("add", &caps.add), ("drop", &caps.drop)] {
            for (j, cap) in names.iter().enumerate() {
                ensure(CAPABILITIES.contains(&cap.as_str()), || {
                    rule(
                        format!("{field}.capabilities.{list}[{j}]"),
                        format!(
                            "{cap:?} is not a Linux capability (use names such as NET_ADMIN without CAP_, or ALL)"
                        ),
                    )
                })?;
            }
        }
    }
    for (j, d) in lp.devices.iter().enumerate() {
        let df = format!("{field}.devices[{j}]");
        ensure(d.host_path.starts_with('/'), || {
            rule(
                format!("{df}.hostPath"),
                format!("{:?} must be an absolute path", d.host_path),
            )
        })?;
        if let Some(cp) = d.container_path.as_deref() {
            ensure(cp.starts_with('/'), || {
                rule(
                    format!("{df}.containerPath"),
                    format!("{cp:?} must be an absolute path"),
                )
            })?;
        }
    }
    if let Some(shm) = lp.shared_memory_size {
        ensure(shm > 0, || {
            rule(
                format!("{field}.sharedMemorySize"),
                format!("({shm}) must be greater than 0 MiB"),
            )
        })?;
    }
    for (j, t) in lp.tmpfs.iter().enumerate() {
        let tf = format!("{field}.tmpfs[{j}]");
        ensure(t.container_path.starts_with('/'), || {
            rule(
                format!("{tf}.containerPath"),
                format!("{:?} must be an absolute path", t.container_path),
            )
        })?;
        ensure(t.size > 0, || {
            rule(
                format!("{tf}.size"),
                format!("({}) must be greater than 0 MiB", t.size),
            )
        })?;
        for (k, opt) in t.mount_options.iter().enumerate() {
            let name = opt.split_once('=').map_or(opt.as_str(), |(n, _)| n);
            ensure(TMPFS_OPTIONS.contains(&name), || {
                rule(
                    format!("{tf}.mountOptions[{k}]"),
                    format!("{opt:?} is not a tmpfs mount option"),
                )
            })?;
        }
    }
    if let Some(swap) = lp.max_swap {
        ensure(swap >= 0, || {
            rule(format!("{field}.maxSwap"), "must not be negative")
        })?;
    }
    if let Some(s) = lp.swappiness {
        ensure((0..=100).contains(&s), || {
            rule(
                format!("{field}.swappiness"),
                format!("({s}) must be between 0 and 100"),
            )
        })?;
    }
    Ok(())
}

/// Mount points name declared volumes; no two mounts share a container path.
fn check_mounts(ctx: &Ctx<'_>, i: usize, c: &ContainerDefinition) -> Result<(), ValidationError> {
    let f = |field: String| format!("containerDefinitions[{i}].{field}");
    let mut paths: HashMap<&str, String> = HashMap::new();
    for (j, mp) in c.mount_points.iter().enumerate() {
        let Some(source) = mp.source_volume.as_deref() else {
            return Err(rule(
                f(format!("mountPoints[{j}].sourceVolume")),
                "is required",
            ));
        };
        ensure(ctx.def.volume(source).is_some(), || {
            rule(
                f(format!("mountPoints[{j}].sourceVolume")),
                format!(
                    "{source:?} is not a volume of this task definition (declare it in volumes)"
                ),
            )
        })?;
        let field = f(format!("mountPoints[{j}].containerPath"));
        let Some(path) = mp.container_path.as_deref() else {
            return Err(rule(field, "is required"));
        };
        ensure(path.starts_with('/'), || {
            rule(&field, format!("{path:?} must be an absolute path"))
        })?;
        if let Some(first) = paths.insert(path.trim_end_matches('/'), format!("mountPoints[{j}]")) {
            return Err(rule(
                field,
                format!("{path:?} is already mounted by {first}"),
            ));
        }
    }
    let tmpfs = c
        .linux_parameters
        .as_ref()
        .map(|lp| lp.tmpfs.as_slice())
        .unwrap_or_default();
    for (j, t) in tmpfs.iter().enumerate() {
        let key = t.container_path.trim_end_matches('/');
        if let Some(first) = paths.insert(key, format!("linuxParameters.tmpfs[{j}]")) {
            return Err(rule(
                f(format!("linuxParameters.tmpfs[{j}].containerPath")),
                format!("{:?} is already mounted by {first}", t.container_path),
            ));
        }
    }
    for (j, vf) in c.volumes_from.iter().enumerate() {
        let field = f(format!("volumesFrom[{j}].sourceContainer"));
        let Some(source) = vf.source_container.as_deref() else {
            return Err(rule(field, "is required"));
        };
        ensure(source != c.name(), || {
            rule(
                &field,
                format!("{source:?}: a container cannot mount volumes from itself"),
            )
        })?;
        ensure(ctx.names.contains_key(source), || {
            rule(
                &field,
                format!("{source:?} is not a container in this task definition"),
            )
        })?;
    }
    Ok(())
}

fn check_ulimits(i: usize, c: &ContainerDefinition) -> Result<(), ValidationError> {
    let mut seen = HashMap::new();
    // -1 is "unlimited": larger than any finite limit.
    let as_cmp = |v: i64| if v == -1 { i128::MAX } else { i128::from(v) };
    for (j, u) in c.ulimits.iter().enumerate() {
        let f = |field: &str| format!("containerDefinitions[{i}].ulimits[{j}].{field}");
        if let Some(first) = seen.insert(u.name, j) {
            return Err(rule(
                f("name"),
                format!("{} is already set by ulimits[{first}]", u.name),
            ));
        }
        for (name, v) in [("softLimit", u.soft_limit), ("hardLimit", u.hard_limit)] {
            ensure(v >= -1, || {
                rule(
                    f(name),
                    format!("({v}) must be -1 (unlimited) or a non-negative number"),
                )
            })?;
        }
        ensure(as_cmp(u.soft_limit) <= as_cmp(u.hard_limit), || {
            rule(
                f("softLimit"),
                format!(
                    "({}) cannot be greater than hardLimit ({})",
                    u.soft_limit, u.hard_limit
                ),
            )
        })?;
    }
    Ok(())
}

fn check_system_controls(
    ctx: &Ctx<'_>,
    i: usize,
    c: &ContainerDefinition,
) -> Result<(), ValidationError> {
    for (j, sc) in c.system_controls.iter().enumerate() {
        let f = |field: &str| format!("containerDefinitions[{i}].systemControls[{j}].{field}");
        let Some(ns) = sc.namespace.as_deref() else {
            return Err(rule(f("namespace"), "is required"));
        };
        let ipc = IPC_SYSCTLS.contains(&ns) || ns.starts_with("fs.mqueue.");
        let net = ns.starts_with("net.");
        ensure(ipc || net, || {
            rule(
                f("namespace"),
                format!(
                    "{ns:?} is not a namespaced kernel parameter (kernel.msgmax, kernel.msgmnb, kernel.msgmni, \
                     kernel.sem, kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, fs.mqueue.*, net.*)"
                ),
            )
        })?;
        ensure(!(ipc && ctx.def.ipc_mode == Some(IpcMode::Host)), || {
            rule(
                f("namespace"),
                format!("{ns:?} is not supported when ipcMode is host"),
            )
        })?;
        ensure(!(net && ctx.mode == NetworkMode::Host), || {
            rule(
                f("namespace"),
                format!("{ns:?} is not supported when networkMode is host"),
            )
        })?;
        ensure(sc.value.is_some(), || rule(f("value"), "is required"))?;
    }
    Ok(())
}

fn check_resource_requirements(
    ctx: &Ctx<'_>,
    i: usize,
    c: &ContainerDefinition,
) -> Result<(), ValidationError> {
    let mut seen = HashMap::new();
    for (j, rr) in c.resource_requirements.iter().enumerate() {
        let f = |field: &str| format!("containerDefinitions[{i}].resourceRequirements[{j}]{field}");
        if let Some(first) = seen.insert(rr.kind, j) {
            return Err(rule(
                f(".type"),
                format!(
                    "{} is already requested by resourceRequirements[{first}]",
                    rr.kind
                ),
            ));
        }
        let value = rr.value.as_deref();
        match rr.kind {
            ResourceType::Gpu => {
                ensure(value.is_some() != rr.sharing_strategy.is_some(), || {
                    rule(
                        f(""),
                        "must set exactly one of value and sharingStrategy for type GPU",
                    )
                })?;
                if let Some(v) = value {
                    ensure(v == "ALL" || v.parse::<u32>().is_ok_and(|n| n > 0), || {
                        rule(
                            f(".value"),
                            format!("{v:?} must be a positive number of GPUs or ALL"),
                        )
                    })?;
                }
            }
            ResourceType::InferenceAccelerator => {
                let known = value.is_some_and(|v| {
                    ctx.def
                        .inference_accelerators
                        .iter()
                        .any(|a| a.device_name == v)
                });
                ensure(known, || {
                    rule(
                        f(".value"),
                        "must be the deviceName of one of the task's inferenceAccelerators",
                    )
                })?;
            }
            ResourceType::NeuronDevice => {
                ensure(value == Some("ALL"), || {
                    rule(f(".value"), "must be ALL for type NeuronDevice")
                })?;
            }
        }
        if rr.kind != ResourceType::Gpu {
            ensure(rr.sharing_strategy.is_none(), || {
                rule(f(".sharingStrategy"), "is only allowed for type GPU")
            })?;
        }
    }
    Ok(())
}
