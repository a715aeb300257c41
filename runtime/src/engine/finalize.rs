//! The end of a task: DEPROVISIONING → STOPPED. The kernel objects and mounts go on a
//! blocking thread while the shim, which made its final report, exits; then leases and
//! ports are released and STOPPED written in one database job; the remaining files go
//! after that, off the task's path.

use std::path::Path;
use std::time::Duration;

use berth_netns::TaskNetwork;

use super::driver::{Steps, set_status, stored};
use super::{Engine, EngineError, now, status, sys};
use crate::db::DbError;
use crate::shim;
use crate::state::model::{TaskRecord, status as st};
use crate::state::repo;

/// How long a shim that reported the task stopped gets to exit.
pub(super) const SHIM_EXIT_WAIT: Duration = Duration::from_secs(2);

/// The task as stored when the shim's final report made it DEPROVISIONING, and the
/// wait for the shim's end of the connection to close.
pub(super) struct Deprovisioning {
    pub(super) rec: TaskRecord,
    pub(super) closed: Option<tokio::task::JoinHandle<()>>,
}

/// Waits (at most [`SHIM_EXIT_WAIT`]) for a shim that reported the task stopped to
/// exit; it has nothing left to do but that. Event-driven through a pidfd; polls where
/// there is none.
pub(super) async fn wait_shim_exit(run_dir: &Path) {
    let pidfd = std::fs::read_to_string(run_dir.join(shim::PID_FILE))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .and_then(|pid| sys::pidfd_open(pid).ok());
    // Checked after opening the pidfd: a live shim now means the pidfd is its own.
    if !shim::shim_alive(run_dir) {
        return;
    }
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open with the same descriptor
    // until the AsyncFd is dropped.
    let pidfd = pidfd.and_then(|fd| unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE).ok()
    });
    if let Some(fd) = pidfd {
        let _ = tokio::time::timeout(SHIM_EXIT_WAIT, fd.readable()).await;
        return;
    }
    let deadline = tokio::time::Instant::now() + SHIM_EXIT_WAIT;
    while shim::shim_alive(run_dir) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// DEPROVISIONING → STOPPED: unmount, tear the network down, remove the cgroup, release
/// leases and ports; then remove volatile files and task-scoped data (logs stay until
/// the task is forgotten).
pub(crate) async fn finalize(engine: &Engine, id: &str) -> Result<(), EngineError> {
    finalize_from(engine, id, None).await
}

/// [`finalize`], from the task as stored when it became DEPROVISIONING, if that is known.
pub(super) async fn finalize_from(
    engine: &Engine,
    id: &str,
    deprovisioning: Option<Deprovisioning>,
) -> Result<(), EngineError> {
    let (rec, closed) = match deprovisioning {
        Some(d) => (d.rec, d.closed),
        None => (set_status(engine, id, st::DEPROVISIONING).await?, None),
    };
    let paths = engine.config().paths.clone();
    let run_dir = paths.task_run_dir(id);
    let shim_run_dir = run_dir.clone();
    let data_dir = paths.task_data_dir(id);
    let volumes_dir = data_dir.join("volumes");
    let network: Option<TaskNetwork> = rec
        .runtime
        .network
        .clone()
        .and_then(|v| serde_json::from_value(v).ok());
    let net = engine.inner().net.clone();
    let cg = engine.inner().cgroups.clone();
    let tid = id.to_owned();
    let mounts = rec.runtime.mounts.clone();
    let state_root = paths.container_state_dir();
    let containers: Vec<String> = rec
        .task
        .containers
        .iter()
        .map(|c| format!("{id}-{}", c.name))
        .collect();
    let teardown = tokio::task::spawn_blocking(move || {
        let mut steps = Steps::new(&tid);
        // Mounts first (a rootfs may hold the netns busy through a process), then
        // processes, network and files. The shim removes the task's cgroups itself
        // (killing what is left in them) before its final report, while this runs:
        // coming second, this removal mostly finds them gone instead of racing it.
        for m in mounts.iter().rev() {
            sys::unmount(m);
        }
        for m in sys::mounts_under(&run_dir) {
            sys::unmount(&m);
        }
        steps.done("finalize: unmount");
        if let Err(e) = cg.remove_task(&tid) {
            tracing::warn!(task = %tid, error = %e, "removing task cgroup");
        }
        steps.done("finalize: cgroup");
        if let Some(n) = network
            && let Err(e) = net.teardown_task(&n)
        {
            tracing::warn!(task = %tid, error = %crate::engine::chain(&e), "network teardown");
        }
        steps.done("finalize: network");
        // Task-scoped volumes go with the task. A volume's driverOpts may have mounted
        // something on its directory (a bind of a host directory among them): unmount,
        // and never delete through a mount.
        if volumes_dir.exists() {
            for m in sys::mounts_under(&volumes_dir) {
                sys::unmount(&m);
            }
            if sys::mounts_under(&volumes_dir).is_empty() {
                let _ = std::fs::remove_dir_all(&volumes_dir);
            } else {
                tracing::warn!(task = %tid, path = %volumes_dir.display(), "task volumes still mounted; not removed");
            }
        }
        steps.done("finalize: volumes");
    });
    // A shim that made its final report exits right after it (and a task is only STOPPED
    // once no process of it is left): that exit runs alongside the teardown.
    let shim_gone = async {
        if let Some(closed) = closed {
            let _ = closed.await;
        }
        wait_shim_exit(&shim_run_dir).await;
    };
    let (torn_down, ()) = tokio::join!(teardown, shim_gone);
    torn_down.expect("cleanup thread");
    super::volumes::release_shared(engine, &rec).await;
    engine
        .inner()
        .pending_stops
        .lock()
        .expect("not poisoned")
        .remove(id);
    // Leases and ports released and the task STOPPED in one database job.
    let tid = id.to_owned();
    let mark_stopped = |rec: &mut TaskRecord| {
        rec.task.desired_status = "STOPPED".into();
        status::advance(rec, st::STOPPED);
        let t = now();
        rec.task.stopped_at.get_or_insert(t);
        rec.task.execution_stopped_at.get_or_insert(t);
        if rec.task.stop_code.is_none() {
            rec.task.stop_code = Some("EssentialContainerExited".into());
            rec.task.stopped_reason = Some(super::super::shim::ESSENTIAL_EXITED.to_owned());
        }
        for a in &mut rec.task.attachments {
            a.status = "DELETED".into();
        }
        for c in &mut rec.task.containers {
            c.last_status = "STOPPED".into();
        }
        rec.task.version += 1;
    };
    let rec = engine
        .db()
        .call(move |db| {
            repo::release_task_resources(db.conn(), &tid)?;
            let Some(mut rec) = repo::get_task(db.conn(), &tid)? else {
                return Ok::<_, DbError>(None);
            };
            mark_stopped(&mut rec);
            repo::update_task(db.conn(), &rec)?;
            Ok(Some(rec))
        })
        .await?
        .ok_or_else(|| EngineError::NotFound("The referenced task was not found.".into()))?;
    stored(engine, &rec);
    tracing::info!(task = %id, "task stopped");
    // The remaining files after STOPPED, off the task's path: the containers' writable
    // layers sit on the data root's disk, where removing a tree can take tens of ms, and
    // the run directory (bundles, state) holds nothing the host runs short of. What a
    // daemon stopped in between leaves, its start-up sweep removes (and pruning removes
    // the task's whole data directory later in any case). They go to the housekeeping
    // thread, at the lowest CPU priority: the next task's start comes first.
    engine.inner().housekeeper.run(move || {
        for c in containers {
            let _ = std::fs::remove_dir_all(state_root.join(c));
        }
        let _ = std::fs::remove_dir_all(&shim_run_dir);
        let _ = std::fs::remove_dir_all(data_dir.join("containers"));
    });
    Ok(())
}
