//! `berth exec`: runs a command in a task's running container and streams its output
//! as `{"output": "…"}` lines (stdout and stderr together, as they were written), then
//! `{"exitCode": N}` (`null` when the task stopped first). A client that hangs up kills
//! the command.

use bytes::Bytes;
use futures::SinkExt;
use hyper::body::Frame;
use serde::Deserialize;
use serde_json::{Value, json};

use super::berth::{Tx, stream};
use super::{engine_error, task_in_cluster};
use crate::api::{ApiError, Reply};
use crate::daemon::Daemon;
use berth_runtime::engine::Utf8Chunks;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Exec {
    /// Task id or ARN.
    task: String,
    cluster: Option<String>,
    /// Needed when the task has more than one container (as ECS's ExecuteCommand).
    container: Option<String>,
    command: Vec<String>,
}

pub(super) async fn exec(d: &Daemon, r: Exec) -> Result<Reply, ApiError> {
    let cluster = berth_runtime::engine::arn::cluster_name(r.cluster.as_deref());
    if r.command.is_empty() {
        return Err(ApiError::invalid("command must not be empty"));
    }
    let (id, rec) = task_in_cluster(d, &cluster, &r.task).await?;
    if rec.task.last_status != "RUNNING" {
        return Err(ApiError::invalid(format!(
            "task {} is {}, not RUNNING: commands run only in a running task",
            id, rec.task.last_status
        )));
    }
    let names: Vec<&str> = rec
        .task
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let container = match (&r.container, names.as_slice()) {
        (Some(c), _) if names.contains(&c.as_str()) => c.clone(),
        (Some(c), _) => {
            return Err(ApiError::invalid(format!(
                "container: the task has no container named {c}; it has {}",
                names.join(", ")
            )));
        }
        (None, [only]) => (*only).to_owned(),
        (None, _) => {
            return Err(ApiError::invalid(format!(
                "container must be given for a task with more than one container ({})",
                names.join(", ")
            )));
        }
    };
    let session = d
        .engine
        .exec(&id, &container, r.command)
        .await
        .map_err(engine_error)?;
    tracing::info!(task = %id, %container, pid = session.pid(), "exec");
    let (tx, body) = stream();
    tokio::task::spawn_blocking(move || pump(session, tx));
    Ok(Reply::Stream(body))
}

/// On a blocking thread: the command's output as lines, then its exit code.
fn pump(session: berth_runtime::engine::ExecSession, tx: Tx) {
    let mut text = Utf8Chunks::default();
    let mut out = tx.clone();
    let send = |tx: &mut Tx, v: Value| {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        futures::executor::block_on(tx.send(Ok(Frame::data(Bytes::from(line))))).is_ok()
    };
    let code = session.pump(
        |bytes| {
            let chunk = text.push(bytes);
            chunk.is_empty() || send(&mut out, json!({ "output": chunk }))
        },
        || !tx.is_closed(),
    );
    let mut tx = tx;
    let rest = text.finish();
    if !rest.is_empty() {
        send(&mut tx, json!({ "output": rest }));
    }
    send(&mut tx, json!({ "exitCode": code }));
}
