//! Kernel settings under `/proc/sys`, relative to a root so the logic can be tested on a
//! temporary directory.
//!
//! Network settings (`net/…`) belong to the network namespace of the *thread* that opens the
//! file: the host's on the caller's thread, a task's on the throwaway thread that created it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::ErrorKind;

/// Errors of kernel settings.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Reading a setting failed.
    #[error("read {key}")]
    Read {
        /// The setting, e.g. `net/ipv4/ip_forward`.
        key: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing a setting failed.
    #[error("set {key} to {value}")]
    Write {
        /// The setting.
        key: String,
        /// The value.
        value: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A setting must have a value berth may not set itself (policy).
    #[error("{key} is {actual}, and berth is configured not to change it; set it to {wanted}")]
    Policy {
        /// The setting.
        key: String,
        /// Its value.
        actual: String,
        /// The value berth needs.
        wanted: String,
    },
}

impl SysctlError {
    /// The error's class: a read-only `/proc/sys` (as inside a container) or a policy refusal
    /// is something the host does not support; anything else is internal.
    pub fn class(&self) -> ErrorKind {
        match self {
            SysctlError::Policy { .. } => ErrorKind::Unsupported,
            SysctlError::Read { source, .. } | SysctlError::Write { source, .. } => {
                match source.raw_os_error() {
                    Some(libc::EROFS | libc::EACCES | libc::EPERM) => ErrorKind::Unsupported,
                    _ => ErrorKind::Internal,
                }
            }
        }
    }
}

/// Access to `/proc/sys` (or a stand-in directory in tests).
#[derive(Debug, Clone)]
pub(crate) struct Sysctl {
    root: PathBuf,
}

impl Default for Sysctl {
    fn default() -> Self {
        Sysctl {
            root: PathBuf::from("/proc/sys"),
        }
    }
}

impl Sysctl {
    #[cfg(test)]
    pub(crate) fn with_root(root: impl Into<PathBuf>) -> Self {
        Sysctl { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(Path::new(key))
    }

    /// The value of `key` (e.g. `net/ipv4/ip_forward`), trimmed.
    pub(crate) fn read(&self, key: &str) -> Result<String, SysctlError> {
        fs::read_to_string(self.path(key))
            .map(|s| s.trim().to_owned())
            .map_err(|source| SysctlError::Read {
                key: key.to_owned(),
                source,
            })
    }

    /// Sets `key` to `value`.
    pub(crate) fn write(&self, key: &str, value: &str) -> Result<(), SysctlError> {
        fs::write(self.path(key), value).map_err(|source| SysctlError::Write {
            key: key.to_owned(),
            value: value.to_owned(),
            source,
        })
    }

    /// Sets `key` to `value` when the setting exists; `Ok(false)` when it does not (IPv6
    /// settings on a host booted with `ipv6.disable=1`).
    pub(crate) fn write_if_present(&self, key: &str, value: &str) -> Result<bool, SysctlError> {
        match self.write(key, value) {
            Ok(()) => Ok(true),
            Err(SysctlError::Write { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Makes sure `key` is `wanted`: sets it when `may_change`, fails with a policy error
    /// otherwise. Returns the previous value when it was changed.
    pub(crate) fn ensure(
        &self,
        key: &str,
        wanted: &str,
        may_change: bool,
    ) -> Result<Option<String>, SysctlError> {
        let actual = self.read(key)?;
        if actual == wanted {
            return Ok(None);
        }
        if !may_change {
            return Err(SysctlError::Policy {
                key: key.to_owned(),
                actual,
                wanted: wanted.to_owned(),
            });
        }
        self.write(key, wanted)?;
        Ok(Some(actual))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_changes_only_when_needed_and_allowed() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("net/ipv4")).unwrap();
        fs::write(dir.path().join("net/ipv4/ip_forward"), "0\n").unwrap();
        let s = Sysctl::with_root(dir.path());
        let e = s.ensure("net/ipv4/ip_forward", "1", false).unwrap_err();
        assert_eq!(e.class(), ErrorKind::Unsupported);
        assert_eq!(
            e.to_string(),
            "net/ipv4/ip_forward is 0, and berth is configured not to change it; set it to 1"
        );
        assert_eq!(
            s.ensure("net/ipv4/ip_forward", "1", true).unwrap(),
            Some("0".into())
        );
        assert_eq!(s.read("net/ipv4/ip_forward").unwrap(), "1");
        assert_eq!(s.ensure("net/ipv4/ip_forward", "1", false).unwrap(), None);
    }

    #[test]
    fn missing_settings_are_tolerated_only_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sysctl::with_root(dir.path());
        assert!(
            !s.write_if_present("net/ipv6/conf/berth0/accept_ra", "0")
                .unwrap()
        );
        let e = s.read("net/ipv4/ip_forward").unwrap_err();
        assert_eq!(e.class(), ErrorKind::Internal);
        assert!(e.to_string().contains("net/ipv4/ip_forward"));
    }
}
