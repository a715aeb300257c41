//! Shared set-up for the image-service integration tests (`images_*.rs`).
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use berth_registry::client::{ClientConfig, CredentialSource};
use berth_runtime::db::{Db, DbHandle};
use berth_runtime::images::{ImageService, ImageServiceConfig};
use berth_runtime::paths::Paths;

/// Root-needing tests: fail under `BERTH_TEST_ROOT=1`, skip with a reason otherwise.
pub fn have_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("BERTH_TEST_ROOT").as_deref() != Ok("1"),
        "BERTH_TEST_ROOT=1 but this test is not running as root"
    );
    eprintln!("skipping: unpacking images (owners, device nodes, whiteouts) needs root");
    false
}

/// A data root in a temporary directory with an open image service.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub paths: Paths,
    pub db: DbHandle,
    pub svc: ImageService,
}

/// Registry settings for tests: the given insecure registries, anonymous access.
pub fn registry_config(insecure: &[String]) -> ClientConfig {
    ClientConfig {
        insecure_registries: insecure.to_vec(),
        credentials: CredentialSource::Anonymous,
        ..ClientConfig::default()
    }
}

pub async fn env(insecure: &[String]) -> Env {
    env_with(registry_config(insecure)).await
}

pub async fn env_with(registry: ClientConfig) -> Env {
    let dir = tempfile::Builder::new()
        .prefix("bA-images-")
        .tempdir()
        .unwrap();
    let paths = Paths::new(dir.path().join("data"), dir.path().join("run"));
    std::fs::create_dir_all(paths.data_root()).unwrap();
    let db = DbHandle::spawn(Db::open(&paths.database()).unwrap());
    let config = ImageServiceConfig {
        registry,
        ..ImageServiceConfig::default()
    };
    let svc = ImageService::open(&paths, db.clone(), config)
        .await
        .unwrap();
    Env {
        dir,
        paths,
        db,
        svc,
    }
}

impl Env {
    /// Re-opens the service on the same data root (a daemon restart).
    pub async fn reopen(&self, insecure: &[String]) -> ImageService {
        let config = ImageServiceConfig {
            registry: registry_config(insecure),
            ..ImageServiceConfig::default()
        };
        ImageService::open(&self.paths, self.db.clone(), config)
            .await
            .unwrap()
    }

    /// Files in the content store's blob directory.
    pub fn blob_count(&self) -> usize {
        std::fs::read_dir(self.paths.content_dir().join("blobs/sha256"))
            .unwrap()
            .count()
    }

    /// Numeric directories under snapshots/.
    pub fn snapshot_count(&self) -> usize {
        std::fs::read_dir(self.paths.snapshots_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .parse::<u64>()
                    .is_ok()
            })
            .count()
    }

    /// Entries left in ingest/ and snapshots/tmp/.
    pub fn leftovers(&self) -> usize {
        let n = |p: &Path| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
        n(&self.paths.content_dir().join("ingest")) + n(&self.paths.snapshots_dir().join("tmp"))
    }
}

/// Mount entries whose mount point is under `dir`.
pub fn mounts_under(dir: &Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_string_lossy();
    info.lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| m.starts_with(d.as_ref()))
        })
        .count()
}

/// An overlayfs mount of `lower` (top first) with a fresh upper dir, unmounted on drop.
pub struct Overlay {
    pub merged: std::path::PathBuf,
}

impl Overlay {
    pub fn mount(lower: &[std::path::PathBuf], scratch: &Path) -> Overlay {
        let (upper, work, merged) = (
            scratch.join("upper"),
            scratch.join("work"),
            scratch.join("merged"),
        );
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).unwrap();
        }
        let lowerdir: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowerdir.join(":"),
            upper.display(),
            work.display()
        );
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .unwrap_or_else(|e| panic!("overlay mount ({opts}): {e}"));
        Overlay { merged }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        nix::mount::umount2(&self.merged, nix::mount::MntFlags::MNT_DETACH).unwrap();
    }
}
