//! Startup reconciliation and periodic pruning.
//!
//! On start the database says which tasks should exist; the run root, `/proc` and the
//! kernel say what does. For each task that is not STOPPED:
//!
//! * the host rebooted since berth last ran (the boot id changed or the run root is
//!   new): everything it had is gone — record STOPPED and clean the data side;
//! * its shim was never started (berth died while provisioning): STOPPED
//!   (TaskFailedToStart) and clean up;
//! * its shim is alive: follow it again;
//! * its shim is gone: take its last `state.json` (exits and OOMs that happened while
//!   berth was down are in it), kill leftovers, STOPPED.
//!
//! Then everything that belongs to no task in the database is removed: network
//! namespaces, veths and nft elements, task cgroups, mounts and directories under the
//! run root, libcontainer state, leases and host ports.

use std::collections::BTreeSet;

use berth_netns::TaskNetwork;

use super::driver::{self, Start};
use super::{Engine, EngineError, now, sys};
use crate::db::DbError;
use crate::shim::{self, RunStatus};
use crate::state::model::status;
use crate::state::repo;

pub(crate) async fn reconcile(engine: &Engine) -> Result<(), EngineError> {
    let paths = engine.config().paths.clone();
    let rebooted = check_boot(&paths)?;
    if rebooted {
        tracing::info!(
            "no boot marker for this boot: the host rebooted or berth runs for the first time"
        );
    }
    let active = engine.db().call(|db| repo::active_tasks(db.conn())).await?;
    let live: BTreeSet<String> = active.iter().map(|t| t.id.clone()).collect();
    let mut networks: Vec<TaskNetwork> = Vec::new();

    for rec in &active {
        let run_dir = paths.task_run_dir(&rec.id);
        let id = rec.id.clone();
        if let Some(n) = rec
            .runtime
            .network
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
        {
            networks.push(n);
        }
        if rebooted {
            stop(
                engine,
                &id,
                "TaskFailedToStart",
                "the host rebooted while the task was running",
            )
            .await?;
            driver::spawn(engine, id, Start::Finalize);
            continue;
        }
        if !rec.runtime.shim_started {
            if rec.task.last_status == status::DEPROVISIONING
                || rec.task.desired_status == "STOPPED"
            {
                driver::spawn(engine, id, Start::Finalize);
            } else {
                stop(
                    engine,
                    &id,
                    "TaskFailedToStart",
                    "berth daemon restarted while the task was starting",
                )
                .await?;
                driver::spawn(engine, id, Start::Finalize);
            }
            continue;
        }
        if shim::shim_alive(&run_dir) {
            tracing::info!(task = %id, "reattaching to running shim");
            driver::spawn(engine, id, Start::Attach);
            continue;
        }
        match shim::read_state(&run_dir) {
            Some(state) if state.status == RunStatus::Stopped => {
                tracing::info!(task = %id, "task stopped while berth was down");
                driver::update(engine, &id, move |rec| {
                    super::status::apply_shim_state(rec, &state);
                })
                .await?;
            }
            Some(state) => {
                driver::update(engine, &id, move |rec| {
                    super::status::apply_shim_state(rec, &state);
                })
                .await?;
                stop(
                    engine,
                    &id,
                    "EssentialContainerExited",
                    "berth shim exited unexpectedly; the task's containers were stopped",
                )
                .await?;
            }
            None => {
                stop(
                    engine,
                    &id,
                    "TaskFailedToStart",
                    "berth shim exited unexpectedly; the task's containers were stopped",
                )
                .await?;
            }
        }
        driver::spawn(engine, id, Start::Finalize);
    }

    // Orphans: whatever no task in the database owns.
    let net = engine.inner().net.clone();
    let report = tokio::task::spawn_blocking(move || net.reconcile(&networks))
        .await
        .expect("network reconcile thread");
    match report {
        Ok(r) => tracing::info!(report = ?r, "network reconciled"),
        Err(e) => tracing::warn!(error = %super::chain(&e), "network reconciliation"),
    }
    let cg = engine.inner().cgroups.clone();
    let live2 = live.clone();
    let paths2 = paths.clone();
    tokio::task::spawn_blocking(move || {
        for tid in cg.task_ids() {
            if !live2.contains(&tid) {
                tracing::info!(task = %tid, "removing orphaned task cgroup");
                let _ = cg.remove_task(&tid);
            }
        }
        if let Ok(entries) = std::fs::read_dir(paths2.tasks_run_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !live2.contains(&name) {
                    for m in sys::mounts_under(&e.path()) {
                        sys::unmount(&m);
                    }
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        // A task's data directory outlives it (its logs stay until it is forgotten),
        // but nothing may stay mounted in it: a daemon killed while preparing a task
        // can leave a driverOpts volume or a rootfs mounted there.
        if let Ok(entries) = std::fs::read_dir(paths2.tasks_data_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !live2.contains(&name) {
                    for m in sys::mounts_under(&e.path()) {
                        sys::unmount(&m);
                    }
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(paths2.container_state_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let owner = name.split('-').next().unwrap_or_default();
                if !live2.contains(owner) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        super::mount_points::sweep(&paths2.mount_points_dir());
    })
    .await
    .expect("orphan sweep thread");
    let live3 = live.clone();
    engine
        .db()
        .call(move |db| {
            for holder in repo::resource_holders(db.conn())? {
                if !live3.contains(&holder) {
                    repo::release_task_resources(db.conn(), &holder)?;
                }
            }
            Ok::<_, DbError>(())
        })
        .await?;
    Ok(())
}

async fn stop(
    engine: &Engine,
    id: &str,
    code: &'static str,
    reason: &'static str,
) -> Result<(), EngineError> {
    driver::update(engine, id, move |rec| {
        rec.task.desired_status = "STOPPED".into();
        rec.task.stop_code.get_or_insert_with(|| code.to_owned());
        rec.task
            .stopped_reason
            .get_or_insert_with(|| reason.to_owned());
        rec.task.stopping_at.get_or_insert(now());
        super::status::advance(rec, status::STOPPING);
        rec.task.version += 1;
    })
    .await?;
    Ok(())
}

/// Whether the host rebooted since berth last wrote its boot marker (a run root
/// without one counts as a reboot). Writes the current boot id.
fn check_boot(paths: &crate::paths::Paths) -> Result<bool, EngineError> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map_err(EngineError::io("reading the kernel boot id"))?;
    let marker = paths.boot_marker();
    let previous = std::fs::read_to_string(&marker).ok();
    let rebooted = previous.as_deref().map(str::trim) != Some(boot_id.trim());
    super::host::write_atomic(&marker, boot_id.trim().as_bytes())
        .map_err(EngineError::io("writing the boot marker"))?;
    Ok(rebooted)
}

/// Forgets STOPPED tasks after the retention period and removes their logs; finishes
/// task definition deletions no task needs any more.
pub(crate) async fn prune(engine: &Engine) -> Result<(), EngineError> {
    let before = now() - engine.config().stopped_retention_secs;
    let ids = engine
        .db()
        .call(move |db| repo::prune_stopped(db.conn(), before))
        .await?;
    let paths = engine.config().paths.clone();
    tokio::task::spawn_blocking(move || {
        for id in ids {
            let _ = std::fs::remove_dir_all(paths.task_data_dir(&id));
        }
    })
    .await
    .expect("prune thread");
    engine
        .db()
        .call(|db| {
            let tx = db
                .conn_mut()
                .transaction()
                .map_err(|source| DbError::Query {
                    context: "finishing task definition deletions".into(),
                    source,
                })?;
            let in_use: BTreeSet<String> = repo::active_tasks(&tx)?
                .into_iter()
                .map(|t| t.task.task_definition_arn)
                .collect();
            let _ =
                crate::taskdef::registry::finish_deletions(&tx, &|family: &str, revision: u32| {
                    in_use
                        .iter()
                        .any(|arn| arn.ends_with(&format!("task-definition/{family}:{revision}")))
                });
            tx.commit().map_err(|source| DbError::Query {
                context: "committing".into(),
                source,
            })
        })
        .await?;
    Ok(())
}
