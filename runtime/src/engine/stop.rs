//! StopTask: the stop is recorded on the task and remembered as pending, and the task's
//! shim is told at once; a driver that has not begun its shim yet sees the pending stop
//! between its steps and stops there.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;

use super::driver::{send, update};
use super::{Engine, EngineError, status};
use crate::shim::{self, ControlRequest};
use crate::state::model::{Task, status as st};

/// A StopTask for task `id` that its driver has still to act on: its reason, and the stop
/// timeout it asked for, if any.
pub(super) fn pending_stop(engine: &Engine, id: &str) -> Option<(String, Option<u64>)> {
    engine
        .inner()
        .pending_stops
        .lock()
        .expect("not poisoned")
        .get(id)
        .cloned()
}

/// The reason of a pending StopTask for task `id` (see [`pending_stop`]).
pub(super) fn stop_requested(engine: &Engine, id: &str) -> Option<String> {
    pending_stop(engine, id).map(|(reason, _)| reason)
}

/// Waits until a StopTask for task `id` is pending, and returns its reason: looked at
/// whenever a task record is stored (StopTask stores one) and at least every 200 ms (the
/// pending stop is noted just after that store).
pub(super) async fn wait_for_stop(engine: &Engine, id: &str) -> String {
    let mut changed = engine.task_changes();
    loop {
        if let Some(reason) = stop_requested(engine, id) {
            return reason;
        }
        // (With the engine shutting down the channel is closed: wait out the interval.)
        if let Ok(Err(_)) = tokio::time::timeout(STOP_RECHECK, changed.changed()).await {
            tokio::time::sleep(STOP_RECHECK).await;
        }
    }
}

const STOP_RECHECK: Duration = Duration::from_millis(200);

/// StopTask. `code` is the stop code to record at once (the service scheduler's
/// `ServiceSchedulerInitiated`); without one the task gets `UserInitiated` from its shim.
pub(crate) async fn request_stop(
    engine: &Engine,
    cluster: &str,
    id: &str,
    reason: String,
    timeout_secs: Option<u64>,
    code: Option<&'static str>,
) -> Result<Task, EngineError> {
    let cluster = cluster.to_owned();
    let r2 = reason.clone();
    let (rec, found) = update(engine, id, move |rec| {
        if rec.cluster != cluster {
            return false;
        }
        if rec.task.last_status != st::STOPPED && rec.task.desired_status != "STOPPED" {
            rec.task.desired_status = "STOPPED".into();
            // ECS's first step in stopping a running task, before its containers get
            // their stop signal.
            if rec.task.last_status == st::RUNNING {
                status::advance(rec, st::DEACTIVATING);
            }
            rec.task.version += 1;
            if rec.task.stopped_reason.is_none() && (code.is_some() || !rec.runtime.shim_started) {
                rec.task.stop_code = Some(code.unwrap_or("UserInitiated").into());
                rec.task.stopped_reason = Some(r2);
            }
        }
        true
    })
    .await
    .map_err(|_| EngineError::Invalid("The referenced task was not found.".into()))?;
    if !found {
        return Err(EngineError::Invalid(
            "The referenced task was not found.".into(),
        ));
    }
    if rec.task.last_status == st::STOPPED {
        return Ok(rec.task);
    }
    engine
        .inner()
        .pending_stops
        .lock()
        .expect("not poisoned")
        .insert(id.to_owned(), (reason.clone(), timeout_secs));
    if rec.runtime.shim_started {
        let run_dir = engine.config().paths.task_run_dir(id);
        if let Err(e) = stop_shim(&run_dir, &reason, timeout_secs).await {
            tracing::debug!(task = %id, error = %e, "stop request to the shim failed; the driver retries");
        }
    }
    Ok(rec.task)
}

async fn stop_shim(run_dir: &Path, reason: &str, timeout_secs: Option<u64>) -> std::io::Result<()> {
    let stream = UnixStream::connect(run_dir.join(shim::SOCKET_FILE)).await?;
    let (r, mut w) = stream.into_split();
    send(
        &mut w,
        &ControlRequest::Stop {
            reason: reason.to_owned(),
            timeout_secs,
        },
    )
    .await;
    let mut lines = BufReader::new(r).lines();
    let _ = tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await;
    Ok(())
}
