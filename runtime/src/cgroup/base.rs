//! berth's delegated cgroup subtree and the per-task cgroups inside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::detect::{CgroupHost, CgroupVersion, ProcCgroups};
use super::establish;
use super::limits::{CPU_PERIOD_US, cpu_quota_us, cpu_weight_from_shares};
use super::prime::PrimeTarget;
use super::{CgroupError, read, write};

/// The directory under the base that holds one cgroup per task. Not `tasks`: on v1
/// every cgroup directory already has a `tasks` control file.
pub(super) const TASKS_DIR: &str = "task";

/// v2 controllers berth enables for its children when the host delegates them.
pub(super) const V2_WANTED: &[&str] = &["cpu", "cpuset", "io", "memory", "pids", "hugetlb"];

/// Task-level limits (ECS task `cpu` and `memory`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskCgroupLimits {
    /// Task `cpu` units: becomes a CFS quota (1024 units = one CPU) and the task's
    /// share of CPU against other tasks.
    pub cpu_units: Option<u32>,
    /// Without task `cpu`, the task's share is the sum of its containers' shares (the
    /// ECS agent's rule).
    pub containers_cpu_shares: u64,
    /// Task `memory` in MiB: a hard limit for all containers together.
    pub memory_mib: Option<u64>,
    /// A limit on the number of processes in the whole task.
    pub pids_max: Option<u64>,
}

/// What `berth info` and the container-instance view report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CgroupInfo {
    pub version: CgroupVersion,
    pub controllers: Vec<String>,
    /// berth's base path inside the hierarchy (or hierarchies, on v1).
    pub base: String,
}

/// berth's subtree: `<base>/tasks/<task-id>/<container>`.
#[derive(Debug, Clone)]
pub struct BerthCgroups {
    pub(super) host: CgroupHost,
    pub(super) base: String,
    pub(super) controllers: Vec<String>,
}

impl BerthCgroups {
    /// Sets up berth's subtree when the daemon starts, beneath the cgroups in `own`
    /// (the daemon's `/proc/self/cgroup`). On v2 this moves `pid` (the daemon) into the
    /// `<base>/daemon` leaf so that `<base>` may enable controllers for its children.
    ///
    /// Returns the subtree and the directories [`BerthCgroups::release`] may remove
    /// again when they are empty (v1: the base and the directories between berth's own
    /// cgroup and it).
    pub fn establish(
        host: CgroupHost,
        own: &ProcCgroups,
        name: &str,
        pid: u32,
    ) -> Result<(BerthCgroups, Vec<PathBuf>), CgroupError> {
        check_name(name)?;
        match host.version() {
            CgroupVersion::V2 => establish::v2(host, own, pid),
            CgroupVersion::V1 => establish::v1(host, own, name),
        }
    }

    /// A subtree established earlier (by the daemon), for the shim and for tests.
    pub fn from_base(host: CgroupHost, base: &str) -> BerthCgroups {
        let controllers = match host.version() {
            CgroupVersion::V1 => host
                .v1_controllers()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            CgroupVersion::V2 => read(host.root().join(rel(base)).join("cgroup.subtree_control"))
                .map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
        };
        BerthCgroups {
            host,
            base: base.to_owned(),
            controllers,
        }
    }

    /// The host layout.
    pub fn host(&self) -> &CgroupHost {
        &self.host
    }

    /// The base path inside the hierarchy.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Version, controllers and base, for `berth info`.
    pub fn info(&self) -> CgroupInfo {
        CgroupInfo {
            version: self.host.version(),
            controllers: self.controllers.clone(),
            base: self.base.clone(),
        }
    }

    /// The task's cgroup path (hierarchy-relative, leading `/`).
    pub fn task_path(&self, task_id: &str) -> String {
        format!("{}/{TASKS_DIR}/{task_id}", self.base.trim_end_matches('/'))
    }

    /// The container's cgroup path, what berth puts in the OCI spec's `cgroupsPath`.
    pub fn container_path(&self, task_id: &str, container: &str) -> String {
        format!("{}/{container}", self.task_path(task_id))
    }

    /// Creates the task's cgroup (in every v1 hierarchy) and applies task-level limits.
    /// On failure nothing it created is left behind.
    pub fn create_task(&self, task_id: &str, limits: &TaskCgroupLimits) -> Result<(), CgroupError> {
        check_name(task_id)?;
        let path = self.task_path(task_id);
        let result = match self.host.version() {
            CgroupVersion::V2 => self.create_task_v2(&path, limits),
            CgroupVersion::V1 => self.create_task_v1(&path, limits),
        };
        if result.is_err() {
            let _ = self.remove_task(task_id);
        }
        result
    }

    fn create_task_v2(&self, path: &str, limits: &TaskCgroupLimits) -> Result<(), CgroupError> {
        let dir = self.host.root().join(rel(path));
        mkdir(&dir)?;
        let enable: Vec<String> = self.controllers.iter().map(|c| format!("+{c}")).collect();
        if !enable.is_empty() {
            write(dir.join("cgroup.subtree_control"), &enable.join(" "))?;
        }
        if let Some(mib) = limits.memory_mib {
            write(dir.join("memory.max"), &(mib * 1024 * 1024).to_string())?;
        }
        if let Some(units) = limits.cpu_units {
            write(
                dir.join("cpu.max"),
                &format!("{} {CPU_PERIOD_US}", cpu_quota_us(units)),
            )?;
        }
        let shares = task_shares(limits);
        write(
            dir.join("cpu.weight"),
            &cpu_weight_from_shares(shares).to_string(),
        )?;
        if let Some(max) = limits.pids_max {
            write(dir.join("pids.max"), &max.to_string())?;
        }
        Ok(())
    }

    fn create_task_v1(&self, path: &str, limits: &TaskCgroupLimits) -> Result<(), CgroupError> {
        for hierarchy in self.host.v1_hierarchies() {
            mkdir_v1(hierarchy, &self.base, path)?;
        }
        let dir = |controller: &str| self.host.v1_mount(controller).map(|m| m.join(rel(path)));
        if let (Some(mib), Some(d)) = (limits.memory_mib, dir("memory")) {
            write(
                d.join("memory.limit_in_bytes"),
                &(mib * 1024 * 1024).to_string(),
            )?;
        }
        if let Some(d) = dir("cpu") {
            if let Some(units) = limits.cpu_units {
                write(d.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                write(d.join("cpu.cfs_quota_us"), &cpu_quota_us(units).to_string())?;
            }
            write(d.join("cpu.shares"), &task_shares(limits).to_string())?;
        }
        if let (Some(max), Some(d)) = (limits.pids_max, dir("pids")) {
            write(d.join("pids.max"), &max.to_string())?;
        }
        Ok(())
    }

    /// Kills whatever still runs in the task's cgroups and removes them (every v1
    /// hierarchy, container leaves first). Idempotent: a missing cgroup is not an error.
    pub fn remove_task(&self, task_id: &str) -> Result<(), CgroupError> {
        self.remove_task_and(task_id, &[])
    }

    /// [`Self::remove_task`], for a caller that knows the task's containers: their
    /// cgroups go first, by name, so that the task's cgroup is not refused as busy and
    /// listed for children in every hierarchy (a cgroup listing costs more than the
    /// rmdir; this runs between a task's last exit and its STOPPED).
    pub fn remove_task_and(&self, task_id: &str, containers: &[&str]) -> Result<(), CgroupError> {
        check_name(task_id)?;
        for c in containers {
            check_name(c)?;
        }
        let path = self.task_path(task_id);
        let dirs: Vec<PathBuf> = match self.host.version() {
            CgroupVersion::V2 => vec![self.host.root().join(rel(&path))],
            CgroupVersion::V1 => self
                .host
                .v1_hierarchies()
                .iter()
                .map(|h| h.join(rel(&path)))
                .collect(),
        };
        // Usually nothing is left to kill: each container's init has been reaped, and the
        // kernel emptied its pid namespace with it. So removal comes first, and only a
        // cgroup that is still busy is searched for processes to kill (which reads every
        // cgroup.procs of the tree: half a millisecond on v1's eight hierarchies, on the
        // path of every stopping task).
        let mut first_error = None;
        for dir in &dirs {
            for c in containers {
                // A failure (still busy) is handled by the tree's removal below.
                let _ = std::fs::remove_dir(dir.join(c));
            }
            let removed = match remove_tree(dir, BusyCgroup::Fail) {
                Err(CgroupError::Remove { source, .. })
                    if source.raw_os_error() == Some(libc::EBUSY) =>
                {
                    kill_all_in(dir);
                    remove_tree(dir, BusyCgroup::Wait)
                }
                other => other,
            };
            if let Err(e) = removed {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Where the migration primer (see `prime.rs`) makes its no-op migration, for a
    /// daemon with pid `pid` whose subtree [`BerthCgroups::establish`] set up: v2, the
    /// `daemon` leaf it moved into; v1, berth's base in the pids hierarchy.
    pub fn primer_target(&self, pid: u32) -> Option<PrimeTarget> {
        let base = rel(&self.base);
        match self.host.version() {
            CgroupVersion::V2 => Some(PrimeTarget::Process {
                procs: self.host.root().join(base).join("daemon/cgroup.procs"),
                pid,
            }),
            CgroupVersion::V1 => self.host.v1_mount("pids").map(|m| PrimeTarget::Thread {
                tasks: m.join(base).join("tasks"),
            }),
        }
    }

    /// Ids of the tasks that have a cgroup (in any hierarchy), for reconciliation.
    pub fn task_ids(&self) -> BTreeSet<String> {
        let tasks = format!("{}/{TASKS_DIR}", self.base.trim_end_matches('/'));
        let parents: Vec<PathBuf> = match self.host.version() {
            CgroupVersion::V2 => vec![self.host.root().join(rel(&tasks))],
            CgroupVersion::V1 => self
                .host
                .v1_hierarchies()
                .iter()
                .map(|h| h.join(rel(&tasks)))
                .collect(),
        };
        parents
            .iter()
            .filter_map(|p| std::fs::read_dir(p).ok())
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// How many processes the kernel's OOM killer has killed in the cgroup at `path`
    /// (hierarchy-relative). Read it before the cgroup is removed.
    pub fn oom_kills(&self, path: &str) -> u64 {
        let (file, key) = match self.host.version() {
            CgroupVersion::V2 => (
                self.host.root().join(rel(path)).join("memory.events"),
                "oom_kill",
            ),
            CgroupVersion::V1 => match self.host.v1_mount("memory") {
                Some(m) => (m.join(rel(path)).join("memory.oom_control"), "oom_kill"),
                None => return 0,
            },
        };
        read(file)
            .ok()
            .and_then(|text| keyed_value(&text, key))
            .unwrap_or(0)
    }

    /// Removes the `tasks` directory and the v1 directories berth created outside its
    /// base, when no task remains (daemon shutdown with nothing running). Best effort.
    pub fn release(&self, created: &[PathBuf]) {
        if !self.task_ids().is_empty() {
            return;
        }
        let tasks = format!("{}/{TASKS_DIR}", self.base.trim_end_matches('/'));
        match self.host.version() {
            CgroupVersion::V2 => {
                let _ = std::fs::remove_dir(self.host.root().join(rel(&tasks)));
            }
            CgroupVersion::V1 => {
                for h in self.host.v1_hierarchies() {
                    let _ = std::fs::remove_dir(h.join(rel(&tasks)));
                }
            }
        }
        // Deepest first.
        let mut created = created.to_vec();
        created.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for dir in created {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn task_shares(limits: &TaskCgroupLimits) -> u64 {
    match limits.cpu_units {
        Some(units) => u64::from(units).clamp(super::limits::MIN_SHARES, super::limits::MAX_SHARES),
        None => limits
            .containers_cpu_shares
            .clamp(super::limits::MIN_SHARES, super::limits::MAX_SHARES),
    }
}

/// Creates `path` (a descendant of `base`) in one v1 hierarchy, initialising cpuset
/// files on the way: a cpuset cgroup with empty `cpuset.cpus` refuses tasks.
fn mkdir_v1(hierarchy: &Path, base: &str, path: &str) -> Result<(), CgroupError> {
    let mut dir = hierarchy.join(rel(base));
    let below = path.strip_prefix(base).unwrap_or(path);
    for comp in components(below) {
        let parent = dir.clone();
        dir.push(comp);
        if !dir.exists() {
            mkdir(&dir)?;
            init_cpuset(&parent, &dir)?;
        }
    }
    Ok(())
}

/// Copies `cpuset.cpus` and `cpuset.mems` from `parent` when `dir` is a cpuset cgroup
/// whose values are empty. A no-op in other hierarchies.
pub(super) fn init_cpuset(parent: &Path, dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let child = dir.join(file);
        if !child.exists() {
            continue;
        }
        if read(child.clone())?.trim().is_empty() {
            let value = read(parent.join(file))?;
            write(child, value.trim())?;
        }
    }
    Ok(())
}

pub(super) fn mkdir(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError::Create {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Sends SIGKILL to every process in `dir` and its descendants, until they are gone or
/// two seconds pass. Used for tasks whose shim is gone.
fn kill_all_in(dir: &Path) {
    // v2 (5.14+): one write kills the whole subtree atomically.
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() && std::fs::write(&kill_file, "1").is_ok() {
        wait_empty(dir);
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let pids = pids_in_tree(dir);
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_empty(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids_in_tree(dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pids_in_tree(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(pids_in_tree(&e.path()));
            }
        }
    }
    pids
}

/// Removes a cgroup directory and its child cgroups, deepest first. Only directories
/// are removed: cgroupfs control files vanish with their directory.
/// What [`remove_tree`] does with a cgroup that still has processes (EBUSY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BusyCgroup {
    /// Return the error at once.
    Fail,
    /// Retry for up to 2 s: a cgroup whose last process just exited (or was just killed)
    /// reports EBUSY for a moment.
    Wait,
}

fn remove_tree(dir: &Path, busy: BusyCgroup) -> Result<(), CgroupError> {
    // A leaf (a container's cgroup, or an empty task cgroup) goes at once: only a cgroup
    // that refuses is listed for children (a listing of a cgroup directory costs more
    // than the rmdir, eight times over on v1).
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), busy)?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && busy == BusyCgroup::Wait
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            // On a test temp dir (not cgroupfs) the control files are real files.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && !is_cgroupfs(dir) => {
                return std::fs::remove_dir_all(dir).map_err(|source| CgroupError::Remove {
                    path: dir.to_owned(),
                    source,
                });
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

fn is_cgroupfs(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir).is_ok_and(|s| {
        s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC
            || s.filesystem_type() == nix::sys::statfs::CGROUP_SUPER_MAGIC
    })
}

pub(super) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

pub(super) fn check_name(name: &str) -> Result<(), CgroupError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName(name.to_owned()))
    }
}

/// A hierarchy-relative path without its leading `/`, for joining.
pub(super) fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

pub(super) fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

pub(super) fn is_ancestor_or_self(ancestor: &str, path: &str) -> bool {
    let a = components(ancestor);
    let p = components(path);
    a.len() <= p.len() && a.iter().zip(&p).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn v2_fixture() -> (tempfile::TempDir, CgroupHost) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("svc");
        fs::create_dir_all(&base).unwrap();
        fs::write(
            base.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(base.join("cgroup.subtree_control"), "").unwrap();
        let host = CgroupHost::v2_at(dir.path());
        (dir, host)
    }

    fn own(unified: Option<&str>, v1: &[(&str, &str)]) -> ProcCgroups {
        ProcCgroups {
            unified: unified.map(str::to_owned),
            v1: v1
                .iter()
                .map(|(c, p)| (c.to_string(), p.to_string()))
                .collect(),
        }
    }

    #[test]
    fn v2_moves_the_daemon_into_a_leaf_and_enables_controllers() {
        let (dir, host) = v2_fixture();
        let (cg, created) =
            BerthCgroups::establish(host, &own(Some("/svc"), &[]), "berth", 42).unwrap();
        assert!(created.is_empty());
        assert_eq!(cg.base(), "/svc");
        assert_eq!(
            fs::read_to_string(dir.path().join("svc/daemon/cgroup.procs")).unwrap(),
            "42"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("svc/cgroup.subtree_control")).unwrap(),
            "+cpu +cpuset +io +memory +pids"
        );
        assert!(dir.path().join("svc/task").is_dir());
        assert_eq!(cg.container_path("t1", "web"), "/svc/task/t1/web");
        assert_eq!(
            cg.primer_target(42),
            Some(PrimeTarget::Process {
                procs: dir.path().join("svc/daemon/cgroup.procs"),
                pid: 42
            }),
            "the primer re-writes the daemon into the leaf it is in"
        );
    }

    #[test]
    fn v2_refuses_to_start_without_delegated_controllers() {
        let (dir, host) = v2_fixture();
        fs::write(dir.path().join("svc/cgroup.controllers"), "cpu pids\n").unwrap();
        let err = BerthCgroups::establish(host, &own(Some("/svc"), &[]), "berth", 1).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("memory") && msg.contains("not available"),
            "{msg}"
        );
    }

    #[test]
    fn v2_task_limits_are_written_converted() {
        let (dir, host) = v2_fixture();
        let (cg, _) = BerthCgroups::establish(host, &own(Some("/svc"), &[]), "berth", 1).unwrap();
        let limits = TaskCgroupLimits {
            cpu_units: Some(512),
            containers_cpu_shares: 0,
            memory_mib: Some(256),
            pids_max: Some(100),
        };
        cg.create_task("abc", &limits).unwrap();
        let t = dir.path().join("svc/task/abc");
        assert_eq!(
            fs::read_to_string(t.join("memory.max")).unwrap(),
            "268435456"
        );
        assert_eq!(
            fs::read_to_string(t.join("cpu.max")).unwrap(),
            "50000 100000"
        );
        assert_eq!(fs::read_to_string(t.join("cpu.weight")).unwrap(), "50");
        assert_eq!(fs::read_to_string(t.join("pids.max")).unwrap(), "100");
        assert_eq!(
            cg.task_ids().into_iter().collect::<Vec<_>>(),
            vec!["abc".to_string()]
        );
        fs::write(
            t.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(&cg.task_path("abc")), 2);
        cg.remove_task("abc").unwrap();
        assert!(!t.exists());
        cg.remove_task("abc").unwrap();

        // Known containers go by name first; an unknown one is still found.
        cg.create_task("def", &limits).unwrap();
        let t = dir.path().join("svc/task/def");
        for c in ["app", "sidecar"] {
            fs::create_dir(t.join(c)).unwrap();
        }
        cg.remove_task_and("def", &["app", "missing"]).unwrap();
        assert!(!t.exists());
        assert!(cg.remove_task_and("def", &["../x"]).is_err());
    }

    #[test]
    fn v1_base_nests_under_the_deepest_own_cgroup_and_records_what_it_created() {
        let dir = tempfile::tempdir().unwrap();
        for c in ["cpu", "memory", "pids", "cpuset"] {
            fs::create_dir_all(dir.path().join(c)).unwrap();
        }
        fs::create_dir_all(dir.path().join("memory/process_api/x")).unwrap();
        fs::write(dir.path().join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        fs::write(dir.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
        let host = CgroupHost::v1_at(dir.path(), &["cpu", "memory", "pids", "cpuset"]);
        let me = own(
            None,
            &[
                ("memory", "/process_api/x"),
                ("cpu", "/"),
                ("pids", "/"),
                ("cpuset", "/"),
            ],
        );
        let (cg, created) = BerthCgroups::establish(host, &me, "berth-t", 1).unwrap();
        assert_eq!(cg.base(), "/process_api/x/berth-t");
        assert!(dir.path().join("cpu/process_api/x/berth-t/task").is_dir());
        assert!(created.contains(&dir.path().join("cpu/process_api")));
        assert!(created.contains(&dir.path().join("memory/process_api/x/berth-t")));
        assert!(!created.contains(&dir.path().join("memory/process_api/x")));
        assert_eq!(
            cg.primer_target(1),
            Some(PrimeTarget::Thread {
                tasks: dir.path().join("pids/process_api/x/berth-t/tasks")
            }),
            "the primer's thread lives in berth's own base, never in the daemon's cgroup"
        );
        cg.create_task(
            "t1",
            &TaskCgroupLimits {
                containers_cpu_shares: 768,
                memory_mib: Some(64),
                ..Default::default()
            },
        )
        .unwrap();
        let t = "process_api/x/berth-t/task/t1";
        assert_eq!(
            fs::read_to_string(
                dir.path()
                    .join("memory")
                    .join(t)
                    .join("memory.limit_in_bytes")
            )
            .unwrap(),
            "67108864"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("cpu").join(t).join("cpu.shares")).unwrap(),
            "768"
        );
        cg.remove_task("t1").unwrap();
        cg.release(&created);
        assert!(!dir.path().join("cpu/process_api").exists());
        assert!(dir.path().join("memory/process_api/x").exists());
    }

    #[test]
    fn v1_refuses_unrelated_per_controller_cgroups() {
        let dir = tempfile::tempdir().unwrap();
        let host = CgroupHost::v1_at(dir.path(), &["cpu", "memory", "pids"]);
        let me = own(None, &[("memory", "/a/b"), ("cpu", "/c"), ("pids", "/")]);
        let err = BerthCgroups::establish(host, &me, "berth", 1).unwrap_err();
        assert!(matches!(err, CgroupError::DivergentV1Paths { .. }), "{err}");
    }

    #[test]
    fn names_that_could_escape_the_subtree_are_rejected() {
        let (_dir, host) = v2_fixture();
        let cg = BerthCgroups::from_base(host, "/svc");
        for bad in ["", "..", "a/b", "a b"] {
            assert!(
                cg.create_task(bad, &TaskCgroupLimits::default()).is_err(),
                "{bad:?}"
            );
        }
    }
}
