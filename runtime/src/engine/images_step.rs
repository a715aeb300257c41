//! The images of a task being provisioned: found stored (and the containers' root
//! filesystems mounted at once, alongside the network and cgroup), or pulled.

use std::collections::BTreeMap;

use berth_registry::Login;

use super::provision::{self, MountedRootfs};
use super::{Engine, now, status};
use crate::images::{Progress, RootFs};
use crate::state::model::{TaskRecord, status as st};
use crate::taskdef::ValidatedTaskDefinition;

/// The task's images by reference.
pub(super) type Images = BTreeMap<String, RootFs>;

/// When every image of the task is stored: the images, and the containers' root
/// filesystems mounted. `Ok(None)` when one must be pulled (or its lookup failed: the pull
/// reports that), which the ordinary path after the network does. `Err` is the task's
/// `stoppedReason` (a mount failed; nothing stays mounted).
pub(super) async fn stored_and_mounted(
    engine: &Engine,
    id: &str,
    def: &ValidatedTaskDefinition,
) -> Result<Option<(Images, MountedRootfs)>, String> {
    let mut images = Images::new();
    for reference in references(def) {
        match engine.images().stored_rootfs(&reference).await {
            Ok(Some(root)) => {
                images.insert(reference, root);
            }
            Ok(None) | Err(_) => return Ok(None),
        }
    }
    let (e2, id2, def2) = (engine.clone(), id.to_owned(), def.clone());
    tokio::task::spawn_blocking(move || {
        provision::mount_rootfs(&e2, &id2, &def2, &images).map(|m| Some((images, m)))
    })
    .await
    .expect("rootfs thread")
}

/// Ensures every image of the task, pulling what is missing. `Err` is the task's
/// `stoppedReason`.
/// An image named with `repositoryCredentials` is pulled with the login in `logins`.
pub(super) async fn pull(
    engine: &Engine,
    def: &ValidatedTaskDefinition,
    logins: &BTreeMap<String, Login>,
) -> Result<Images, String> {
    let mut images = Images::new();
    for reference in references(def) {
        let root = engine
            .images()
            .ensure_rootfs(&reference, &Progress::none(), logins.get(&reference))
            .await
            .map_err(|e| format!("CannotPullContainerError: {}", crate::engine::chain(&e)))?;
        images.insert(reference, root);
    }
    Ok(images)
}

/// The task's image references, each once, in container order.
fn references(def: &ValidatedTaskDefinition) -> Vec<String> {
    let mut seen = Vec::new();
    for c in def.containers() {
        let reference = c.image.clone().unwrap_or_default();
        if !seen.contains(&reference) {
            seen.push(reference);
        }
    }
    seen
}

/// Records the pull's end on the task: its time, each container's image digest, and the
/// manifests the task holds (kept from garbage collection while it exists).
pub(super) fn record_pulled(rec: &mut TaskRecord, images: &Images) {
    let digests: BTreeMap<&String, String> = images
        .iter()
        .map(|(r, root)| (r, root.manifest_digest.to_string()))
        .collect();
    rec.task.pull_stopped_at = Some(now());
    for c in &mut rec.task.containers {
        c.image_digest = digests.get(&c.image).cloned();
    }
    rec.runtime.snapshots = digests.into_values().collect();
}

/// PENDING, then at once ACTIVATING (the pull starts).
pub(super) fn record_activating(rec: &mut TaskRecord) {
    status::advance(rec, st::PENDING);
    status::advance(rec, st::ACTIVATING);
    rec.task.pull_started_at = Some(now());
}
