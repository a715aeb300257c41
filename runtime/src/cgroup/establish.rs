//! Setting berth's subtree up when the daemon starts: on v2 the daemon's own cgroup as the
//! base (the daemon moved into its `daemon` leaf, controllers enabled for the children);
//! on v1 a base beneath the deepest of the daemon's per-controller cgroups, created in
//! every hierarchy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::base::{
    BerthCgroups, TASKS_DIR, V2_WANTED, components, init_cpuset, is_ancestor_or_self, mkdir, rel,
};
use super::detect::{CgroupHost, ProcCgroups};
use super::{CgroupError, REQUIRED_CONTROLLERS, read, write};

pub(super) fn v2(
    host: CgroupHost,
    own: &ProcCgroups,
    pid: u32,
) -> Result<(BerthCgroups, Vec<PathBuf>), CgroupError> {
    let own_path = own.unified.clone().unwrap_or_else(|| "/".to_owned());
    // A daemon restarted by systemd starts in the service cgroup again; one started by
    // hand may already sit in the `daemon` leaf of an earlier run.
    let base = match own_path.strip_suffix("/daemon") {
        Some(parent) if !parent.is_empty() => parent.to_owned(),
        _ => own_path.clone(),
    };
    let dir = host.root().join(rel(&base));
    let available: BTreeSet<String> = read(dir.join("cgroup.controllers"))?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for c in REQUIRED_CONTROLLERS {
        if !available.contains(*c) {
            return Err(CgroupError::MissingController {
                controller: c.to_string(),
                detail: format!(
                    "{} lists {:?}; it is not delegated to berth's cgroup {base}",
                    dir.join("cgroup.controllers").display(),
                    available.iter().cloned().collect::<Vec<_>>().join(" ")
                ),
                required: REQUIRED_CONTROLLERS.join(", "),
            });
        }
    }
    let leaf = dir.join("daemon");
    mkdir(&leaf)?;
    // pid 0: nothing to move (tests that establish a subtree for a shim they start).
    if pid != 0 && own_path != format!("{}/daemon", base.trim_end_matches('/')) {
        write(leaf.join("cgroup.procs"), &pid.to_string())?;
    }
    let controllers: Vec<String> = V2_WANTED
        .iter()
        .filter(|c| available.contains(**c))
        .map(|c| c.to_string())
        .collect();
    let enable = controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    write(dir.join("cgroup.subtree_control"), &enable).map_err(|e| match e {
        CgroupError::Write {
            path,
            value,
            source,
        } if source.raw_os_error() == Some(libc::EBUSY) => CgroupError::Write {
            path,
            value,
            source: std::io::Error::new(
                source.kind(),
                format!(
                    "{source}: other processes share berth's cgroup {base}; start berth \
                         in a cgroup of its own (e.g. a systemd service with Delegate=yes)"
                ),
            ),
        },
        other => other,
    })?;
    let tasks = dir.join(TASKS_DIR);
    mkdir(&tasks)?;
    write(tasks.join("cgroup.subtree_control"), &enable)?;
    Ok((
        BerthCgroups {
            host,
            base,
            controllers,
        },
        Vec::new(),
    ))
}

pub(super) fn v1(
    host: CgroupHost,
    own: &ProcCgroups,
    name: &str,
) -> Result<(BerthCgroups, Vec<PathBuf>), CgroupError> {
    for c in REQUIRED_CONTROLLERS {
        if host.v1_mount(c).is_none() {
            return Err(CgroupError::MissingController {
                controller: c.to_string(),
                detail: format!(
                    "no v1 hierarchy for {c} is mounted under {}",
                    host.root().display()
                ),
                required: REQUIRED_CONTROLLERS.join(", "),
            });
        }
    }
    // berth's own cgroup in each mounted controller.
    let mut own_paths: Vec<(String, String)> = Vec::new();
    for c in host.v1_controllers() {
        let p = own.v1.get(c).cloned().unwrap_or_else(|| "/".to_owned());
        own_paths.push((c.to_owned(), p));
    }
    let deepest = own_paths
        .iter()
        .map(|(_, p)| p.as_str())
        .max_by_key(|p| components(p).len())
        .unwrap_or("/")
        .to_owned();
    let divergent: Vec<String> = own_paths
        .iter()
        .filter(|(_, p)| !is_ancestor_or_self(p, &deepest))
        .map(|(c, p)| format!("{c}:{p}"))
        .collect();
    if !divergent.is_empty() {
        return Err(CgroupError::DivergentV1Paths {
            detail: format!("{} are not ancestors of {deepest}", divergent.join(", ")),
        });
    }
    let base = format!("{}/{name}", deepest.trim_end_matches('/'));
    let mut created = Vec::new();
    for hierarchy in host.v1_hierarchies() {
        // Directories between this hierarchy's own cgroup and the base may not exist
        // (e.g. cpu:/ when berth's memory cgroup is /process_api/<id>). Every one of
        // them lies inside berth's own subtree; all are recorded, base included, so
        // `release` can remove those left empty — also the ones another berth
        // instance under the same cgroup created first.
        let own_here = own_paths
            .iter()
            .filter(|(c, _)| host.v1_mount(c) == Some(hierarchy))
            .map(|(_, p)| components(p).len())
            .max()
            .unwrap_or(0);
        // Another berth under the same parent cgroup may remove a shared ancestor it
        // found empty between our check and our mkdir (its `release`); the walk is
        // repeated then, from the hierarchy's root.
        let mut attempt = 0;
        loop {
            let mut made = Vec::new();
            match create_v1_base(hierarchy, &base, own_here, &mut made) {
                Ok(()) => {
                    created.extend(made);
                    break;
                }
                Err(e) if attempt < 5 && vanished(&e) => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
    let controllers = host
        .v1_controllers()
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok((
        BerthCgroups {
            host,
            base,
            controllers,
        },
        created,
    ))
}

/// Creates `base` and its `tasks` directory in one v1 hierarchy, recording in `created`
/// each directory from depth `own_here` (those inside berth's own cgroup).
fn create_v1_base(
    hierarchy: &Path,
    base: &str,
    own_here: usize,
    created: &mut Vec<PathBuf>,
) -> Result<(), CgroupError> {
    let mut dir = hierarchy.to_path_buf();
    for (depth, comp) in components(base).into_iter().enumerate() {
        let parent = dir.clone();
        dir.push(comp);
        if !dir.exists() {
            mkdir(&dir)?;
            init_cpuset(&parent, &dir)?;
        }
        if depth >= own_here {
            created.push(dir.clone());
        }
    }
    let tasks = dir.join(TASKS_DIR);
    if !tasks.exists() {
        mkdir(&tasks)?;
        init_cpuset(&dir, &tasks)?;
    }
    Ok(())
}

/// Whether `e` says a directory disappeared under us.
fn vanished(e: &CgroupError) -> bool {
    match e {
        CgroupError::Create { source, .. }
        | CgroupError::Read { source, .. }
        | CgroupError::Write { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}
