//! The on-disk layout under berth's two roots.
//!
//! The **data root** (default `/var/lib/berth`) holds what must survive a reboot: the
//! database, blobs, snapshots, container upper dirs, task logs and named volumes. The
//! **run root** (default `/run/berth`, a tmpfs on most hosts) holds what a reboot must
//! clear: the API socket, netns bind mounts, shim sockets, bundles and overlay mount
//! points. A run root without berth's boot marker therefore means "the host rebooted
//! since berth last ran", and everything the database says is running is gone.
//!
//! Every path berth creates is derived here, so `docs/ARCHITECTURE.md` and the code
//! describe the same layout.

use std::path::{Path, PathBuf};

/// Default persistent root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
/// Default volatile root.
pub const DEFAULT_RUN_ROOT: &str = "/run/berth";

/// The two roots and everything derived from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    data_root: PathBuf,
    run_root: PathBuf,
}

impl Paths {
    /// Paths under the given roots. The roots are used as given; callers pass absolute
    /// paths (the CLI makes them absolute before calling).
    pub fn new(data_root: impl Into<PathBuf>, run_root: impl Into<PathBuf>) -> Self {
        Paths {
            data_root: data_root.into(),
            run_root: run_root.into(),
        }
    }

    /// The persistent root.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// The volatile root.
    pub fn run_root(&self) -> &Path {
        &self.run_root
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.data_root.join("berth.db")
    }

    /// The content store: `blobs/sha256/<hex>` and `ingest/`.
    pub fn content_dir(&self) -> PathBuf {
        self.data_root.join("content")
    }

    /// Unpacked layers (overlayfs lower dirs), one short numeric directory each so
    /// that overlayfs mount options stay short for images with many layers.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.data_root.join("snapshots")
    }

    /// Shared named volumes (`dockerVolumeConfiguration` with `scope: shared`).
    pub fn volumes_dir(&self) -> PathBuf {
        self.data_root.join("volumes")
    }

    /// Persistent per-task state: container upper dirs, task-scoped volumes, logs.
    pub fn task_data_dir(&self, task_id: &str) -> PathBuf {
        self.data_root.join("tasks").join(task_id)
    }

    /// The directory holding every task's persistent state.
    pub fn tasks_data_dir(&self) -> PathBuf {
        self.data_root.join("tasks")
    }

    /// Root-only secrets: the generated SigV4 key pair.
    pub fn auth_dir(&self) -> PathBuf {
        self.data_root.join("auth")
    }

    /// The API's unix socket.
    pub fn socket(&self) -> PathBuf {
        self.run_root.join("berth.sock")
    }

    /// The boot marker: the kernel boot id berth last ran under.
    pub fn boot_marker(&self) -> PathBuf {
        self.run_root.join("boot-id")
    }

    /// Bind-mounted network namespaces, one file per task.
    pub fn netns_dir(&self) -> PathBuf {
        self.run_root.join("netns")
    }

    /// Volatile per-task state: the shim's input and output, its socket, bundles and
    /// rootfs mount points.
    pub fn task_run_dir(&self, task_id: &str) -> PathBuf {
        self.run_root.join("tasks").join(task_id)
    }

    /// The directory holding every task's volatile state.
    pub fn tasks_run_dir(&self) -> PathBuf {
        self.run_root.join("tasks")
    }

    /// Per image, the layer of mount points its containers lack (`engine::mount_points`):
    /// their topmost lower layer.
    pub fn mount_points_dir(&self) -> PathBuf {
        self.run_root.join("mountpoints")
    }

    /// libcontainer's state root (one directory per container).
    pub fn container_state_dir(&self) -> PathBuf {
        self.run_root.join("containers")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_and_persistent_state_live_under_their_own_roots() {
        let p = Paths::new("/d", "/r");
        assert_eq!(p.database(), Path::new("/d/berth.db"));
        assert_eq!(p.socket(), Path::new("/r/berth.sock"));
        assert_eq!(p.task_data_dir("abc"), Path::new("/d/tasks/abc"));
        assert_eq!(p.task_run_dir("abc"), Path::new("/r/tasks/abc"));
        assert!(p.netns_dir().starts_with("/r"));
        assert!(p.snapshots_dir().starts_with("/d"));
    }
}
