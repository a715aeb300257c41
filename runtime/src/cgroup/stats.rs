//! Resource usage of one cgroup, as the task metadata endpoint's `stats` report it
//! (Docker's stats fields): CPU time, memory use and limit, process count. Read from
//! the cgroup's files on v2, or each v1 controller's hierarchy.

use std::path::{Path, PathBuf};

use super::base::{keyed_value, rel};
use super::{BerthCgroups, CgroupVersion, read};

/// Usage of one cgroup; a figure the host does not provide is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// CPU time, nanoseconds: total, in user mode, in kernel mode.
    pub cpu_total_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    /// Memory in use and the limit, bytes (no limit: `None`).
    pub memory_usage: Option<u64>,
    pub memory_max_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Processes (v1: `pids.current` too).
    pub pids: Option<u64>,
}

fn number(file: PathBuf) -> Option<u64> {
    read(file).ok()?.trim().parse().ok()
}

fn text(file: PathBuf) -> Option<String> {
    read(file).ok()
}

/// `memory.max` / `memory.limit_in_bytes`: "max" and the v1 "unlimited" value
/// (a page-rounded i64::MAX) mean no limit.
fn limit(file: PathBuf) -> Option<u64> {
    let v: u64 = text(file)?.trim().parse().ok()?;
    (v < (1 << 62)).then_some(v)
}

impl BerthCgroups {
    /// The usage of the cgroup at `path` (hierarchy-relative).
    pub fn stats(&self, path: &str) -> CgroupStats {
        let host = self.host();
        match host.version() {
            CgroupVersion::V2 => {
                let dir = host.root().join(rel(path));
                let cpu = text(dir.join("cpu.stat")).unwrap_or_default();
                let us = |k: &str| keyed_value(&cpu, k).map(|v| v * 1000);
                CgroupStats {
                    cpu_total_ns: us("usage_usec"),
                    cpu_user_ns: us("user_usec"),
                    cpu_system_ns: us("system_usec"),
                    memory_usage: number(dir.join("memory.current")),
                    memory_max_usage: number(dir.join("memory.peak")),
                    memory_limit: limit(dir.join("memory.max")),
                    pids: number(dir.join("pids.current")),
                }
            }
            CgroupVersion::V1 => {
                let at = |controller: &str, file: &str| -> Option<PathBuf> {
                    let mount: &Path = host.v1_mount(controller)?;
                    Some(mount.join(rel(path)).join(file))
                };
                // cpuacct.stat counts USER_HZ ticks (100 per second).
                let ticks = at("cpuacct", "cpuacct.stat")
                    .and_then(text)
                    .unwrap_or_default();
                let tick_ns = |k: &str| keyed_value(&ticks, k).map(|t| t * 10_000_000);
                CgroupStats {
                    cpu_total_ns: at("cpuacct", "cpuacct.usage").and_then(number),
                    cpu_user_ns: tick_ns("user"),
                    cpu_system_ns: tick_ns("system"),
                    memory_usage: at("memory", "memory.usage_in_bytes").and_then(number),
                    memory_max_usage: at("memory", "memory.max_usage_in_bytes").and_then(number),
                    memory_limit: at("memory", "memory.limit_in_bytes").and_then(limit),
                    pids: at("pids", "pids.current").and_then(number),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupHost;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), v).unwrap();
        }
    }

    #[test]
    fn v2_figures_come_from_one_directory() {
        let root = tempfile::tempdir().unwrap();
        let cg = BerthCgroups::from_base(CgroupHost::v2_at(root.path()), "/b");
        write(
            &root.path().join("b/task/t/c"),
            &[
                (
                    "cpu.stat",
                    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
                ),
                ("memory.current", "4096\n"),
                ("memory.max", "max\n"),
                ("pids.current", "3\n"),
            ],
        );
        let s = cg.stats("/b/task/t/c");
        assert_eq!(s.cpu_total_ns, Some(1_500_000));
        assert_eq!(s.cpu_user_ns, Some(1_000_000));
        assert_eq!(s.memory_usage, Some(4096));
        assert_eq!(s.memory_max_usage, None);
        assert_eq!(s.memory_limit, None);
        assert_eq!(s.pids, Some(3));
    }

    #[test]
    fn v1_figures_come_from_each_controller() {
        let root = tempfile::tempdir().unwrap();
        let host = CgroupHost::v1_at(root.path(), &["cpuacct", "memory", "pids"]);
        let cg = BerthCgroups::from_base(host, "/b");
        write(
            &root.path().join("cpuacct/b/c"),
            &[
                ("cpuacct.usage", "2000000\n"),
                ("cpuacct.stat", "user 3\nsystem 1\n"),
            ],
        );
        write(
            &root.path().join("memory/b/c"),
            &[
                ("memory.usage_in_bytes", "8192\n"),
                ("memory.max_usage_in_bytes", "9000\n"),
                ("memory.limit_in_bytes", "9223372036854771712\n"),
            ],
        );
        let s = cg.stats("/b/c");
        assert_eq!(s.cpu_total_ns, Some(2_000_000));
        assert_eq!(s.cpu_user_ns, Some(30_000_000));
        assert_eq!(s.cpu_system_ns, Some(10_000_000));
        assert_eq!(s.memory_usage, Some(8192));
        assert_eq!(s.memory_max_usage, Some(9000));
        assert_eq!(s.memory_limit, None, "v1's unlimited");
        assert_eq!(s.pids, None, "no pids file");
    }
}
