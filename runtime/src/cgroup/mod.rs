//! cgroups: finding the host's layout, berth's delegated subtree, and task-level limits.
//!
//! berth puts every cgroup beneath the cgroup it was started in. The layout under that
//! base is the same on both versions:
//!
//! ```text
//! <base>/daemon                 v2 only: the daemon moves itself here (a leaf), because
//!                               a v2 cgroup with processes cannot enable controllers
//!                               for its children
//! <base>/task/<task-id>         one per task: task-level cpu/memory/pids limits
//! <base>/task/<task-id>/<ctr>   one per container, created by libcontainer from the
//!                               cgroupsPath berth puts in the OCI spec
//! ```
//!
//! **v2**: `<base>` is the daemon's own cgroup (systemd's `Delegate=yes` hands the
//! service exactly that subtree).
//!
//! **v1**: every controller is its own hierarchy and berth may sit in a different
//! cgroup in each (on this build machine: `memory:/process_api/<id>`, everything else
//! `/`). libcontainer joins one cgroups path under every controller's mount, so berth
//! needs a single relative path that is beneath its own cgroup in *every* hierarchy. It
//! takes the deepest of its per-controller cgroups, checks that all the others are its
//! ancestors (otherwise it refuses to start), and appends a name (`berth` by default).
//! Directories it has to create on the way are recorded so they can be removed again.
//!
//! Everything here takes the cgroup filesystem root as a parameter, so the logic is
//! unit-tested on temp dirs; only [`CgroupHost::detect`] looks at the real system.

mod base;
mod detect;
mod establish;
mod limits;
mod prime;
mod stats;

pub use base::{BerthCgroups, CgroupInfo, TaskCgroupLimits};
pub use detect::{CgroupHost, CgroupVersion, ProcCgroups};
pub use limits::{cpu_shares_for_units, cpu_weight_from_shares};
pub use prime::{MigrationPrimer, PrimeTarget};
pub use stats::CgroupStats;

use std::io;
use std::path::PathBuf;

use crate::error::ErrorClass;

/// Controllers berth needs to enforce what task definitions ask for.
pub const REQUIRED_CONTROLLERS: &[&str] = &["cpu", "memory", "pids"];

/// Errors finding or managing cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no cgroup filesystem found at {0}")]
    NotMounted(PathBuf),
    #[error(
        "cgroup controller {controller} is not available to berth ({detail}); berth needs \
         {required} to enforce task limits"
    )]
    MissingController {
        controller: String,
        detail: String,
        required: String,
    },
    #[error(
        "berth's cgroup v1 controllers are in unrelated cgroups ({detail}); berth needs one \
         cgroup path beneath its own cgroup in every hierarchy — start it from a service or \
         shell whose cgroups nest (e.g. systemd with Delegate=yes)"
    )]
    DivergentV1Paths { detail: String },
    #[error("malformed /proc/self/cgroup line {0:?}")]
    ProcCgroupFormat(String),
    #[error("invalid cgroup name {0:?}: use letters, digits, '-', '_' or '.'")]
    InvalidName(String),
}

impl CgroupError {
    /// The API class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            CgroupError::InvalidName(_) => ErrorClass::Invalid,
            CgroupError::Read { .. }
            | CgroupError::Write { .. }
            | CgroupError::Create { .. }
            | CgroupError::Remove { .. }
            | CgroupError::NotMounted(_)
            | CgroupError::MissingController { .. }
            | CgroupError::DivergentV1Paths { .. }
            | CgroupError::ProcCgroupFormat(_) => ErrorClass::Internal,
        }
    }
}

fn read(path: PathBuf) -> Result<String, CgroupError> {
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

fn write(path: PathBuf, value: &str) -> Result<(), CgroupError> {
    std::fs::write(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_owned(),
        source,
    })
}
