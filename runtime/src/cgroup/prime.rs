//! Priming the kernel's cgroup migration lock when a task starts provisioning.
//!
//! Every migration into a cgroup (a write to `cgroup.procs` or `tasks`) takes the
//! kernel's global `cgroup_threadgroup_rwsem` for writing. After an idle spell that
//! lock is in its fast reader mode, and the first writer waits one RCU grace period
//! while it switches (8 ms on an idle host here, 10-40 ms under load). A writer that
//! comes within a grace period of the previous one, or while it is still waiting, does
//! not wait again. libcontainer's intermediate process joins the container's cgroups
//! about 10 ms into a RunTask (after the network, the rootfs, the bundle and the shim's
//! spawn), and paid that whole wait on the task's path.
//!
//! The primer is one daemon thread that makes a migration which changes nothing the
//! moment a task starts provisioning, so the grace period runs alongside that setup and
//! the container's own migration finds the lock switched. It writes only to cgroups
//! berth created:
//! * v2: the daemon's pid into `<base>/daemon`, the leaf the daemon already lives in;
//! * v1: its own thread id into `<base>` of the pids hierarchy, where the thread moved
//!   itself when it started (a v1 cgroup holds threads; one idle thread in berth's own
//!   base, which has no limits, counts for nothing).
//!
//! Best effort: a failed write only loses the head start. Where cgroup2 is mounted with
//! `favordynmods` no migration waits and priming costs one write.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The no-op migration the primer repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimeTarget {
    /// Write `pid` (a process already in that cgroup) into `procs`.
    Process { procs: PathBuf, pid: u32 },
    /// Move the primer thread into the cgroup whose `tasks` file this is once, then
    /// write its own thread id there again.
    Thread { tasks: PathBuf },
}

/// The primer thread and the way to wake it. Dropping the last [`MigrationPrimer`]
/// without [`MigrationPrimer::stop`] leaves the thread parked until the process exits.
#[derive(Debug)]
pub struct MigrationPrimer {
    wake: Mutex<Option<SyncSender<()>>>,
    thread: Mutex<Option<JoinHandle<Option<i32>>>>,
    target: Option<PrimeTarget>,
}

/// How long [`MigrationPrimer::stop`] waits for the kernel to drop the finished thread
/// from its v1 cgroup (so that berth's base can be removed right after).
const LEAVE_WAIT: Duration = Duration::from_secs(1);

impl MigrationPrimer {
    /// Starts the primer thread for `target`; `None` gives a primer that does nothing.
    pub fn start(target: Option<PrimeTarget>) -> MigrationPrimer {
        let Some(t) = target.clone() else {
            return MigrationPrimer {
                wake: Mutex::new(None),
                thread: Mutex::new(None),
                target,
            };
        };
        // One pending wake-up is enough: a burst of RunTasks needs one migration.
        let (tx, rx) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("berth-cgprime".into())
            .spawn(move || run(&t, &rx))
            .map_err(|e| tracing::debug!(error = %e, "no cgroup migration primer"))
            .ok();
        MigrationPrimer {
            wake: Mutex::new(thread.as_ref().map(|_| tx)),
            thread: Mutex::new(thread),
            target,
        }
    }

    /// Starts a no-op migration on the primer thread, unless one is already waiting to
    /// run. Never blocks.
    pub fn prime(&self) {
        if let Some(tx) = self.wake.lock().expect("not poisoned").as_ref() {
            // Full: a wake-up is already pending, which serves this task too.
            let _ = tx.try_send(());
        }
    }

    /// Ends the thread and, on v1, waits until the kernel has taken it out of berth's
    /// base cgroup. Idempotent.
    pub fn stop(&self) {
        drop(self.wake.lock().expect("not poisoned").take());
        let Some(handle) = self.thread.lock().expect("not poisoned").take() else {
            return;
        };
        let tid = handle.join().ok().flatten();
        if let (Some(PrimeTarget::Thread { tasks }), Some(tid)) = (&self.target, &tid) {
            // A joined thread has exited, but the kernel unlinks it from its cgroup a
            // moment later.
            let deadline = Instant::now() + LEAVE_WAIT;
            while Instant::now() < deadline && lists(tasks, *tid) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Whether the cgroup file `path` lists `id`.
fn lists(path: &std::path::Path, id: i32) -> bool {
    std::fs::read_to_string(path)
        .map(|text| text.lines().any(|l| l.trim() == id.to_string()))
        .unwrap_or(false)
}

/// The thread: moves itself where needed, then primes on every wake-up. Returns its
/// thread id when it moved itself into a cgroup.
fn run(target: &PrimeTarget, wake: &Receiver<()>) -> Option<i32> {
    let (file, value, moved) = match target {
        PrimeTarget::Process { procs, pid } => (procs, pid.to_string(), None),
        PrimeTarget::Thread { tasks } => {
            let tid = nix::unistd::gettid().as_raw();
            if let Err(e) = std::fs::write(tasks, tid.to_string()) {
                tracing::debug!(path = %tasks.display(), error = %e, "cgroup migration primer disabled");
                return None;
            }
            (tasks, tid.to_string(), Some(tid))
        }
    };
    while wake.recv().is_ok() {
        let t0 = Instant::now();
        match std::fs::write(file, &value) {
            Ok(()) => tracing::debug!(
                ms = t0.elapsed().as_secs_f64() * 1e3,
                "cgroup migration lock primed"
            ),
            Err(e) => {
                tracing::debug!(path = %file.display(), error = %e, "priming the cgroup migration lock failed")
            }
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(path: &std::path::Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(path) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("{} never written", path.display());
    }

    #[test]
    fn a_process_target_gets_the_pid_written_on_each_prime() {
        let dir = tempfile::tempdir().unwrap();
        let procs = dir.path().join("cgroup.procs");
        let primer = MigrationPrimer::start(Some(PrimeTarget::Process {
            procs: procs.clone(),
            pid: 4242,
        }));
        assert!(!procs.exists(), "nothing is written before a task starts");
        primer.prime();
        assert_eq!(wait_for(&procs), "4242");
        std::fs::remove_file(&procs).unwrap();
        primer.prime();
        assert_eq!(wait_for(&procs), "4242");
        primer.stop();
        primer.stop();
        primer.prime();
    }

    #[test]
    fn a_thread_target_moves_the_thread_once_and_writes_its_id_again() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = dir.path().join("tasks");
        let primer = MigrationPrimer::start(Some(PrimeTarget::Thread {
            tasks: tasks.clone(),
        }));
        let tid = wait_for(&tasks);
        assert!(tid.parse::<i32>().unwrap() > 0);
        assert_ne!(
            tid,
            nix::unistd::gettid().as_raw().to_string(),
            "the primer's own thread, not the caller's"
        );
        std::fs::remove_file(&tasks).unwrap();
        primer.prime();
        assert_eq!(wait_for(&tasks), tid);
        // On a real cgroup the file stops listing the thread once it is gone; here it
        // is removed so stop() has nothing to wait for.
        std::fs::remove_file(&tasks).unwrap();
        primer.stop();
    }

    #[test]
    fn no_target_does_nothing() {
        let primer = MigrationPrimer::start(None);
        primer.prime();
        primer.stop();
    }
}
