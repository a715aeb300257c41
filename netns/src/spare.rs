//! Network namespaces made ahead of need.
//!
//! Making a namespace costs about 1 ms here (the kernel's per-namespace set-up of every
//! protocol, then `lo` and a sysctl), on the path of every task start that needs one. So once
//! a task has taken a namespace, one more is made in the background, while that task starts
//! and runs, and the next task binds it to its file (a bind mount, tens of µs).
//!
//! A spare is held by descriptors only (see [`Unbound`]): it is never in the namespace
//! directory, reconciliation never sees it, and a daemon that stops or dies leaves nothing of
//! it behind. A host that never runs a task with a namespace never gets one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::netns::{self, Unbound};

/// How many namespaces are kept ready. One covers tasks started one after another; a burst
/// of starts takes the spare and makes the rest as before.
const SPARES: usize = 1;

/// The spare namespaces of one manager.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    ready: Mutex<Vec<Unbound>>,
    /// Set while a background thread makes spares (at most one does).
    filling: AtomicBool,
}

impl Shared {
    fn ready(&self) -> MutexGuard<'_, Vec<Unbound>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Spares {
    /// A spare namespace, if one is ready.
    pub(crate) fn take(&self) -> Option<Unbound> {
        self.shared.ready().pop()
    }

    /// Makes spares in the background until [`SPARES`] are ready; `label` names them in
    /// debug logs. A failure is only logged: the next task makes its namespace itself and
    /// reports the error then.
    pub(crate) fn refill(&self, label: &Path) {
        if self.shared.ready().len() >= SPARES || self.shared.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let label: PathBuf = label.to_owned();
        let spawned = thread::Builder::new()
            .name("berth-netns-spare".into())
            .spawn(move || {
                // This thread ends in the namespace it made last; it does nothing else.
                while shared.ready().len() < SPARES {
                    match netns::unshare_on_this_thread(&label) {
                        Ok(ns) => shared.ready().push(ns),
                        Err(e) => {
                            tracing::debug!(error = %e, "could not make a spare network namespace");
                            break;
                        }
                    }
                }
                shared.filling.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "could not start the spare network namespace thread");
            self.shared.filling.store(false, Ordering::Release);
        }
    }

    /// Waits until no spare is being made.
    #[cfg(test)]
    pub(crate) fn settle(&self) {
        while self.shared.filling.load(Ordering::Acquire) {
            thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use nix::mount::MsFlags;
    use nix::sched::CloneFlags;

    use super::*;

    /// Runs `f` on a thread with a private mount namespace of its own: its mounts go with it.
    fn with_private_mounts(f: impl FnOnce() + Send) {
        thread::scope(|s| {
            s.spawn(|| {
                nix::sched::unshare(CloneFlags::CLONE_NEWNS).unwrap();
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .unwrap();
                f();
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        });
    }

    #[test]
    fn a_spare_is_made_in_the_background_and_bound_by_the_next_create() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: making network namespaces needs root");
            return;
        }
        with_private_mounts(|| {
            let dir = tempfile::tempdir().unwrap();
            let spares = Spares::default();
            assert!(spares.take().is_none());
            spares.refill(dir.path());
            spares.settle();
            let spare = spares.take().expect("a spare once refilled");
            let spare_ino = spare.inode();
            let path = dir.path().join("task");
            let ns = netns::create(&path, Some(spare)).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().ino(), spare_ino);
            assert_ne!(
                spare_ino,
                std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
            );
            assert!(spares.take().is_none(), "one spare, taken");
            drop(ns);
            assert!(netns::remove(&path).unwrap());
        });
    }
}
