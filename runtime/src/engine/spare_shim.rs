//! A spare shim: one `berth shim`, started before any task needs it, waiting for its
//! begin in a directory of its own under `<run-root>/spare-shims/`.
//!
//! Starting a shim costs the exec of the berth binary (with the dynamic loader's
//! relocations), its detaching fork and its set-up: about 2 ms of CPU, and up to a
//! millisecond on a task's path when the task's preparation finishes first. A task
//! whose driver finds the spare ready takes it instead: its directory is renamed to the
//! task's run directory (same filesystem), and the begin names that directory. The
//! next spare is started after the task's begin, off its path, as the network's spare
//! namespace is.
//!
//! A spare exits by itself when the daemon goes (it watches the daemon's pid and its
//! connection): a daemon's start removes whatever `spare-shims` holds. A spare that
//! died meanwhile is noticed when taken (its connection is closed), and the task starts
//! a shim of its own.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::UnixStream;

use super::Engine;

/// The spare, if one is ready.
#[derive(Debug, Default)]
pub(crate) struct SpareShim {
    ready: Mutex<Option<Spare>>,
    /// A spare is being started.
    filling: AtomicBool,
    /// Names the spares' directories.
    started: AtomicU64,
}

#[derive(Debug)]
struct Spare {
    dir: PathBuf,
    /// The connection on which the spare waits for its begin.
    stream: UnixStream,
}

impl SpareShim {
    /// Takes the spare for the task whose run directory is `run_dir` (not there yet):
    /// the spare's directory becomes it. `None` when no live spare is ready, or the
    /// rename failed (that spare is dropped and exits).
    pub(crate) fn take(&self, run_dir: &Path) -> Option<UnixStream> {
        let spare = self.ready.lock().expect("not poisoned").take()?;
        // A shim says nothing before its begin: a readable connection is a closed one.
        let mut byte = [0u8; 1];
        match spare.stream.try_read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => {
                tracing::debug!(dir = %spare.dir.display(), "the spare shim is gone");
                let _ = std::fs::remove_dir_all(&spare.dir);
                return None;
            }
        }
        match std::fs::rename(&spare.dir, run_dir) {
            Ok(()) => Some(spare.stream),
            Err(e) => {
                tracing::debug!(error = %e, dir = %spare.dir.display(), "cannot take the spare shim");
                None
            }
        }
    }

    /// Starts a spare in the background unless one is ready or starting.
    pub(crate) fn refill(engine: &Engine) {
        let this = &engine.inner().spare_shim;
        if this.ready.lock().expect("not poisoned").is_some()
            || this.filling.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let n = this.started.fetch_add(1, Ordering::Relaxed);
        let dir = spares_dir(engine).join(n.to_string());
        let engine = engine.clone();
        tokio::spawn(async move {
            let this = &engine.inner().spare_shim;
            match super::driver::start_shim_in(&engine, &dir).await {
                Ok(stream) => {
                    *this.ready.lock().expect("not poisoned") = Some(Spare { dir, stream });
                }
                Err(e) => {
                    tracing::debug!(error = %super::chain(&e), "could not start a spare shim");
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            this.filling.store(false, Ordering::Release);
        });
    }

    /// Hangs up on the spare, which then exits (daemon shutdown).
    pub(crate) fn discard(&self) {
        self.ready.lock().expect("not poisoned").take();
    }
}

/// Where spares wait.
fn spares_dir(engine: &Engine) -> PathBuf {
    engine.config().paths.run_root().join("spare-shims")
}

/// Removes what earlier daemons' spares left (their shims exited with them), then
/// starts a spare. Called once the daemon has reconciled its tasks.
pub(crate) fn start(engine: &Engine) {
    let dir = spares_dir(engine);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, dir = %dir.display(), "cannot remove old spare shims");
    }
    SpareShim::refill(engine);
}
