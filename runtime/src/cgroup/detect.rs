//! Which cgroup version the host runs, where each v1 controller is mounted, and which
//! cgroup a process is in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CgroupError, read};

/// The cgroup version berth drives. A hybrid host (v1 controllers plus a cgroup2 mount
/// at `unified` with few or no controllers) is driven as v1, as libcontainer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHost {
    root: PathBuf,
    version: CgroupVersion,
    /// v1: controller name → mount point. Co-mounted controllers (`cpu,cpuacct`) map
    /// to the same mount. Empty on v2.
    v1_mounts: BTreeMap<String, PathBuf>,
}

impl CgroupHost {
    /// Detects the layout of the running system (`/sys/fs/cgroup`, `/proc/self/mountinfo`).
    pub fn detect() -> Result<CgroupHost, CgroupError> {
        let mountinfo = read("/proc/self/mountinfo".into())?;
        CgroupHost::from_mountinfo(Path::new("/sys/fs/cgroup"), &mountinfo)
    }

    /// Builds the layout from mountinfo text, for a cgroup root that may be a test dir.
    pub fn from_mountinfo(root: &Path, mountinfo: &str) -> Result<CgroupHost, CgroupError> {
        let mut v1_mounts = BTreeMap::new();
        let mut unified_at_root = false;
        for line in mountinfo.lines() {
            let Some(m) = MountInfoLine::parse(line) else {
                continue;
            };
            if !m.mount_point.starts_with(root) {
                continue;
            }
            match m.fs_type {
                "cgroup2" if m.mount_point == root => unified_at_root = true,
                "cgroup" => {
                    for opt in m.super_options.split(',') {
                        if V1_CONTROLLERS.contains(&opt) {
                            v1_mounts.insert(opt.to_owned(), m.mount_point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let version = if unified_at_root {
            CgroupVersion::V2
        } else if !v1_mounts.is_empty() {
            CgroupVersion::V1
        } else {
            return Err(CgroupError::NotMounted(root.to_owned()));
        };
        if version == CgroupVersion::V2 {
            v1_mounts.clear();
        }
        Ok(CgroupHost {
            root: root.to_owned(),
            version,
            v1_mounts,
        })
    }

    /// A v2 layout rooted at `root`, for tests.
    pub fn v2_at(root: &Path) -> CgroupHost {
        CgroupHost {
            root: root.to_owned(),
            version: CgroupVersion::V2,
            v1_mounts: BTreeMap::new(),
        }
    }

    /// A v1 layout with one directory per controller under `root`, for tests.
    pub fn v1_at(root: &Path, controllers: &[&str]) -> CgroupHost {
        let v1_mounts = controllers
            .iter()
            .map(|c| (c.to_string(), root.join(c)))
            .collect();
        CgroupHost {
            root: root.to_owned(),
            version: CgroupVersion::V1,
            v1_mounts,
        }
    }

    /// The cgroup version.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The cgroup filesystem root (`/sys/fs/cgroup`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// v1: the mount point of a controller.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1_mounts.get(controller).map(PathBuf::as_path)
    }

    /// v1: every distinct mount point (co-mounted controllers appear once).
    pub fn v1_hierarchies(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self.v1_mounts.values().map(PathBuf::as_path).collect();
        v.sort();
        v.dedup();
        v
    }

    /// v1: the mounted controllers.
    pub fn v1_controllers(&self) -> Vec<&str> {
        self.v1_mounts.keys().map(String::as_str).collect()
    }
}

/// Controllers berth knows on v1 (named hierarchies such as `name=systemd` are ignored).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "devices",
    "freezer",
    "blkio",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

struct MountInfoLine<'a> {
    mount_point: PathBuf,
    fs_type: &'a str,
    super_options: &'a str,
}

impl<'a> MountInfoLine<'a> {
    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    fn parse(line: &'a str) -> Option<MountInfoLine<'a>> {
        let (pre, post) = line.split_once(" - ")?;
        let mount_point = pre.split(' ').nth(4)?;
        let mut post = post.split(' ');
        let fs_type = post.next()?;
        let _source = post.next()?;
        let super_options = post.next().unwrap_or("");
        Some(MountInfoLine {
            mount_point: unescape_octal(mount_point).into(),
            fs_type,
            super_options,
        })
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroups of one process, from `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcCgroups {
    /// The v2 path (`0::/path`), if the line is present.
    pub unified: Option<String>,
    /// v1 controller → path.
    pub v1: BTreeMap<String, String>,
}

impl ProcCgroups {
    /// The calling process's cgroups.
    pub fn of_self() -> Result<ProcCgroups, CgroupError> {
        ProcCgroups::parse(&read("/proc/self/cgroup".into())?)
    }

    /// Parses `/proc/<pid>/cgroup` text (`hierarchy-id:controller-list:path`).
    pub fn parse(text: &str) -> Result<ProcCgroups, CgroupError> {
        let mut out = ProcCgroups::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(CgroupError::ProcCgroupFormat(line.to_owned()));
            };
            if id == "0" && controllers.is_empty() {
                out.unified = Some(path.to_owned());
            } else {
                for c in controllers.split(',').filter(|c| !c.starts_with("name=")) {
                    out.v1.insert(c.to_owned(), path.to_owned());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup ro shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:26 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,xattr,name=systemd
29 26 0:27 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
30 26 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
31 26 0:29 / /sys/fs/cgroup/pids rw shared:13 - cgroup cgroup rw,pids
";

    #[test]
    fn hybrid_hosts_are_driven_as_v1_with_comounted_controllers() {
        let host = CgroupHost::from_mountinfo(Path::new("/sys/fs/cgroup"), HYBRID).unwrap();
        assert_eq!(host.version(), CgroupVersion::V1);
        assert_eq!(
            host.v1_mount("cpu"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            host.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            host.v1_mount("memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(host.v1_mount("systemd"), None);
        assert_eq!(host.v1_hierarchies().len(), 3);
    }

    #[test]
    fn a_cgroup2_root_is_v2() {
        let info =
            "26 25 0:24 / /sys/fs/cgroup rw,nosuid shared:8 - cgroup2 cgroup2 rw,nsdelegate\n";
        let host = CgroupHost::from_mountinfo(Path::new("/sys/fs/cgroup"), info).unwrap();
        assert_eq!(host.version(), CgroupVersion::V2);
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let err = CgroupHost::from_mountinfo(Path::new("/sys/fs/cgroup"), "").unwrap_err();
        assert!(matches!(err, CgroupError::NotMounted(_)));
    }

    #[test]
    fn proc_cgroup_lines_split_into_v1_and_unified() {
        let text = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/user.slice\n";
        let p = ProcCgroups::parse(text).unwrap();
        assert_eq!(p.unified.as_deref(), Some("/user.slice"));
        assert_eq!(p.v1["memory"], "/process_api/abc");
        assert_eq!(p.v1["cpuacct"], "/");
        assert!(!p.v1.contains_key("name=systemd"));
        assert!(ProcCgroups::parse("garbage").is_err());
    }

    #[test]
    fn mount_points_with_escaped_spaces_are_unescaped() {
        assert_eq!(unescape_octal(r"/a\040b"), "/a b");
        assert_eq!(unescape_octal(r"/plain"), "/plain");
    }
}
