//! The `local` volume driver's `driverOpts` (`type`, `device`, `o`), parsed as Docker
//! parses them and mounted on a volume's directory.

use std::collections::BTreeMap;
use std::path::Path;

use nix::mount::{MsFlags, mount};

use super::{files, sys};

/// The `local` driver's options: `type` (filesystem type), `device` (what to mount)
/// and `o` (comma-separated mount options; flags such as `ro`, `nosuid` or `bind`
/// become mount flags, the rest is passed to the filesystem, e.g. `size=64m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DriverMount {
    fstype: Option<String>,
    device: Option<String>,
    flags: MsFlags,
    data: String,
}

impl DriverMount {
    /// `None` when the options ask for no mount (a plain directory).
    pub(crate) fn parse(opts: &BTreeMap<String, String>) -> Result<Option<DriverMount>, String> {
        for key in opts.keys() {
            if !matches!(key.as_str(), "type" | "device" | "o") {
                return Err(format!(
                    "driverOpts key {key:?} is not an option of the local driver (type, device, o)"
                ));
            }
        }
        let get = |k: &str| opts.get(k).filter(|v| !v.is_empty()).cloned();
        let (fstype, device) = (get("type"), get("device"));
        if fstype.is_none() && device.is_none() {
            if opts.get("o").is_some_and(|o| !o.is_empty()) {
                return Err("driverOpts o needs a type or a device to mount".into());
            }
            return Ok(None);
        }
        let mut flags = MsFlags::empty();
        let mut data = Vec::new();
        for o in opts.get("o").map(String::as_str).unwrap_or("").split(',') {
            let o = o.trim();
            match o {
                "" | "rw" | "defaults" | "async" | "suid" | "dev" | "exec" | "atime"
                | "diratime" => {}
                "ro" => flags |= MsFlags::MS_RDONLY,
                "nosuid" => flags |= MsFlags::MS_NOSUID,
                "nodev" => flags |= MsFlags::MS_NODEV,
                "noexec" => flags |= MsFlags::MS_NOEXEC,
                "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
                "dirsync" => flags |= MsFlags::MS_DIRSYNC,
                "noatime" => flags |= MsFlags::MS_NOATIME,
                "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
                "relatime" => flags |= MsFlags::MS_RELATIME,
                "strictatime" => flags |= MsFlags::MS_STRICTATIME,
                "bind" => flags |= MsFlags::MS_BIND,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                other => data.push(other.to_owned()),
            }
        }
        let bind = flags.contains(MsFlags::MS_BIND);
        if bind && device.as_deref().is_none_or(|d| !d.starts_with('/')) {
            return Err("driverOpts o=bind needs device set to an absolute host path".into());
        }
        if !bind && fstype.is_none() {
            return Err("driverOpts device needs a type (e.g. type=tmpfs, type=ext4)".into());
        }
        Ok(Some(DriverMount {
            fstype,
            device,
            flags,
            data: data.join(","),
        }))
    }

    /// Mounts on `dir`.
    pub(crate) fn mount_on(&self, dir: &Path) -> Result<(), String> {
        if self.flags.contains(MsFlags::MS_BIND) {
            let source = self.device.as_deref().unwrap_or_default();
            let source = files::existing_host_path(source)?;
            let bind = self.flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
            mount(Some(&source), dir, None::<&str>, bind, None::<&str>)
                .map_err(|e| format!("binding {} on {}: {e}", source.display(), dir.display()))?;
            let rest = self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
            if !rest.is_empty() {
                let flags = rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
                if let Err(e) = mount(None::<&str>, dir, None::<&str>, flags, None::<&str>) {
                    sys::unmount(dir);
                    return Err(format!("applying mount options on {}: {e}", dir.display()));
                }
            }
            return Ok(());
        }
        let fstype = self.fstype.as_deref().unwrap_or_default();
        let source = self.device.as_deref().unwrap_or(fstype);
        let data = (!self.data.is_empty()).then_some(self.data.as_str());
        mount(Some(source), dir, Some(fstype), self.flags, data).map_err(|e| {
            format!(
                "mounting {source} ({fstype}{}) on {}: {e}",
                data.map(|d| format!(", {d}")).unwrap_or_default(),
                dir.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn driver_options_parse_like_the_local_driver() {
        assert_eq!(DriverMount::parse(&opts(&[])).unwrap(), None);
        let m = DriverMount::parse(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=64m,uid=1000,noexec,ro"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(m.fstype.as_deref(), Some("tmpfs"));
        assert_eq!(m.data, "size=64m,uid=1000");
        assert_eq!(m.flags, MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY);
        let b = DriverMount::parse(&opts(&[
            ("type", "none"),
            ("device", "/srv/data"),
            ("o", "bind"),
        ]))
        .unwrap()
        .unwrap();
        assert!(b.flags.contains(MsFlags::MS_BIND));
        for (bad, why) in [
            (opts(&[("size", "1g")]), "not an option"),
            (opts(&[("o", "size=1m")]), "needs a type"),
            (opts(&[("device", "/dev/sdb1")]), "needs a type"),
            (
                opts(&[("type", "none"), ("o", "bind")]),
                "absolute host path",
            ),
            (
                opts(&[("type", "none"), ("device", "rel"), ("o", "bind")]),
                "absolute host path",
            ),
        ] {
            let err = DriverMount::parse(&bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
