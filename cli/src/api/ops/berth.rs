//! berth's own operations: images, logs, volumes, info. Long answers stream as JSON
//! lines; a failure in the middle of a stream is a final `{"error": "…"}` line.

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Duration;

use berth_runtime::images::{InUse, Progress, ProgressEvent};
use berth_runtime::shim::logs::{self, LogQuery};
use bytes::Bytes;
use futures::SinkExt;
use futures::channel::mpsc;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{engine_error, task_in_cluster};
use crate::api::{ApiError, Body, Reply};
use crate::daemon::Daemon;

pub(super) type Tx = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

pub(super) fn stream() -> (Tx, Body) {
    let (tx, rx) = mpsc::channel(64);
    (tx, StreamBody::new(rx).boxed())
}

async fn send_line(tx: &mut Tx, v: &Value) -> bool {
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    tx.send(Ok(Frame::data(Bytes::from(line)))).await.is_ok()
}

fn image_error(e: berth_runtime::images::ImageError) -> ApiError {
    ApiError::from_class(e.class(), berth_runtime::engine::chain(&e))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PullImage {
    reference: String,
    platform: Option<String>,
}

/// Pulls an image, streaming progress events and then `{"summary": …}`.
pub(super) async fn pull(d: &Daemon, r: PullImage) -> Result<Reply, ApiError> {
    let platform = match &r.platform {
        Some(p) => Some(
            p.parse::<berth_registry::Platform>()
                .map_err(|e| ApiError::invalid(format!("platform: {e}")))?,
        ),
        None => None,
    };
    let (mut tx, body) = stream();
    let images = d.engine.images().clone();
    tokio::spawn(async move {
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<ProgressEvent>();
        let progress = Progress::channel(ptx);
        let pull = images.pull(&r.reference, platform.as_ref(), &progress);
        tokio::pin!(pull);
        let result = loop {
            tokio::select! {
                ev = prx.recv() => {
                    if let Some(ev) = ev {
                        let _ = send_line(&mut tx, &json!({"progress": ev})).await;
                    }
                }
                res = &mut pull => break res,
            }
        };
        while let Ok(ev) = prx.try_recv() {
            let _ = send_line(&mut tx, &json!({"progress": ev})).await;
        }
        match result {
            Ok(summary) => send_line(&mut tx, &json!({"summary": summary})).await,
            Err(e) => send_line(&mut tx, &json!({"error": berth_runtime::engine::chain(&e)})).await,
        };
    });
    Ok(Reply::Stream(body))
}

pub(super) async fn images(d: &Daemon) -> Result<Value, ApiError> {
    let list = d.engine.images().list().await.map_err(image_error)?;
    Ok(json!({"images": list}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RemoveImages {
    references: Vec<String>,
}

/// rmi: removes the references, then collects what no reference and no live task
/// holds any more.
pub(super) async fn remove_images(d: &Daemon, r: RemoveImages) -> Result<Value, ApiError> {
    let mut removed = Vec::new();
    for reference in &r.references {
        removed.push(
            d.engine
                .images()
                .remove(reference)
                .await
                .map_err(image_error)?,
        );
    }
    let in_use = in_use(d).await?;
    let gc = d.engine.images().gc(&in_use).await.map_err(image_error)?;
    Ok(json!({"removed": removed, "collected": gc}))
}

async fn in_use(d: &Daemon) -> Result<InUse, ApiError> {
    let active = d
        .engine
        .db()
        .call(|db| berth_runtime::state::repo::active_tasks(db.conn()))
        .await
        .map_err(|e| engine_error(e.into()))?;
    let mut digests = active
        .iter()
        .flat_map(|t| t.runtime.snapshots.iter())
        .filter_map(|d| d.parse().ok())
        .collect::<Vec<_>>();
    // A task that is still starting records its manifests only once its images are
    // ready: keep whatever its containers' image references name now, so a GC between
    // its pull and that record cannot take its layers away.
    let names: std::collections::BTreeSet<&str> = active
        .iter()
        .filter(|t| t.runtime.snapshots.is_empty())
        .flat_map(|t| t.task.containers.iter().map(|c| c.image.as_str()))
        .collect();
    if !names.is_empty() {
        for image in d.engine.images().list().await.map_err(image_error)? {
            if names.contains(image.reference.as_str()) {
                digests.push(image.manifest_digest.clone());
            }
        }
    }
    Ok(InUse::manifests(digests))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct LoadImages {
    path: PathBuf,
}

pub(super) async fn load(d: &Daemon, r: LoadImages) -> Result<Value, ApiError> {
    let loaded = d
        .engine
        .images()
        .load(&r.path, &Progress::none())
        .await
        .map_err(image_error)?;
    Ok(json!({"images": loaded}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SaveImages {
    references: Vec<String>,
    output: PathBuf,
}

pub(super) async fn save(d: &Daemon, r: SaveImages) -> Result<Value, ApiError> {
    let names: Vec<&str> = r.references.iter().map(String::as_str).collect();
    d.engine
        .images()
        .save(&names, &r.output)
        .await
        .map_err(image_error)?;
    Ok(json!({"output": r.output}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Logs {
    /// Task id or ARN; or leave it empty and name the awslogs group and stream.
    #[serde(default)]
    task: String,
    log_group: Option<String>,
    log_stream: Option<String>,
    cluster: Option<String>,
    container: Option<String>,
    /// Epoch seconds.
    since: Option<f64>,
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
}

/// Streams log records `{"container", "time", "stream", "log"}`, merged across
/// containers in time order; with `follow`, keeps going until the task has stopped and
/// every log is drained.
pub(super) async fn logs(d: &Daemon, r: Logs) -> Result<Reply, ApiError> {
    let cluster = berth_runtime::engine::arn::cluster_name(r.cluster.as_deref());
    let mut r = r;
    if let (Some(group), Some(stream)) = (r.log_group.clone(), r.log_stream.clone()) {
        let found = d
            .engine
            .db()
            .call(move |db| berth_runtime::state::repo::find_log_stream(db.conn(), &group, &stream))
            .await
            .map_err(|e| engine_error(e.into()))?;
        let (task, container) = found.ok_or_else(|| {
            ApiError::new(
                "ResourceNotFoundException",
                http::StatusCode::BAD_REQUEST,
                format!(
                    "The specified log stream does not exist: {}",
                    r.log_stream.clone().unwrap_or_default()
                ),
            )
        })?;
        r.task = task;
        r.container = Some(container);
    }
    let (id, rec) = task_in_cluster(d, &cluster, &r.task).await?;
    let names: Vec<String> = rec.task.containers.iter().map(|c| c.name.clone()).collect();
    let selected: Vec<String> = match &r.container {
        Some(c) if names.contains(c) => vec![c.clone()],
        Some(c) => {
            return Err(ApiError::invalid(format!(
                "the task has no container named {c}; it has {}",
                names.join(", ")
            )));
        }
        None => names,
    };
    let dir = d.engine.config().paths.task_data_dir(&id).join("logs");
    let since = r
        .since
        .and_then(|s| chrono::DateTime::from_timestamp(s.trunc() as i64, (s.fract() * 1e9) as u32));
    let (mut tx, body) = stream();
    let engine = d.engine.clone();
    let follow = r.follow;
    let tail = r.tail;
    tokio::spawn(async move {
        let mut offsets = Vec::new();
        let mut all = Vec::new();
        for c in &selected {
            let path = dir.join(format!("{c}.log"));
            let (entries, end) = tokio::task::spawn_blocking({
                let path = path.clone();
                let q = LogQuery { since, tail };
                move || logs::read_log(&path, &q).unwrap_or_default()
            })
            .await
            .unwrap_or_default();
            all.extend(entries.into_iter().map(|e| (c.clone(), e)));
            offsets.push((c.clone(), path, end));
        }
        all.sort_by(|a, b| a.1.time.cmp(&b.1.time));
        if let Some(n) = tail {
            let skip = all.len().saturating_sub(n);
            all.drain(..skip);
        }
        for (c, e) in all {
            if !send_line(
                &mut tx,
                &json!({"container": c, "time": e.time, "stream": e.stream, "log": e.log}),
            )
            .await
            {
                return;
            }
        }
        if !follow {
            return;
        }
        // Reads new output every 150 ms, and at once when the task stops. Other tasks'
        // changes wake the wait too, but are not worth a read: while tasks start, a
        // database job and a file read for each would compete with their drivers.
        let mut changes = engine.task_changes();
        let stopped_in_db = || async {
            engine
                .task(&id)
                .await
                .ok()
                .flatten()
                .is_none_or(|t| t.task.last_status == "STOPPED")
        };
        let mut stopped = stopped_in_db().await;
        loop {
            for (c, path, off) in offsets.iter_mut() {
                let (entries, end) = tokio::task::spawn_blocking({
                    let (path, o) = (path.clone(), *off);
                    move || logs::read_log_from(&path, o).unwrap_or((Vec::new(), o))
                })
                .await
                .unwrap_or((Vec::new(), *off));
                *off = end;
                for e in entries {
                    if !send_line(
                        &mut tx,
                        &json!({"container": c, "time": e.time, "stream": e.stream, "log": e.log}),
                    )
                    .await
                    {
                        return;
                    }
                }
            }
            // STOPPED was seen before this read, and the shim writes nothing after
            // the task stops: the read got everything.
            if stopped {
                return;
            }
            let tick = tokio::time::Instant::now() + Duration::from_millis(150);
            stopped = loop {
                match tokio::time::timeout_at(tick, changes.changed()).await {
                    Ok(Ok(())) => {
                        let latest = changes.borrow_and_update().clone();
                        if latest.is_some_and(|r| r.id == id && r.task.last_status == "STOPPED") {
                            break true;
                        }
                    }
                    // The engine is going away: no more wake-ups, only the tick.
                    Ok(Err(_)) => {
                        tokio::time::sleep_until(tick).await;
                        break stopped_in_db().await;
                    }
                    // The tick: the database has the status, also when another task's
                    // change replaced this one's in the channel.
                    Err(_) => break stopped_in_db().await,
                }
            };
        }
    });
    Ok(Reply::Stream(body))
}

pub(super) async fn info(d: &Daemon) -> Result<Value, ApiError> {
    let e = &d.engine;
    let host = e.host();
    let cfg = e.config();
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "dataRoot": cfg.paths.data_root(),
        "runRoot": cfg.paths.run_root(),
        "socket": cfg.paths.socket(),
        "listen": d.settings.listen.map(|a| a.to_string()),
        "authentication": !d.settings.insecure_no_auth,
        "region": e.arn().region,
        "account": e.arn().account,
        "cgroup": e.cgroup_info(),
        "network": {
            "bridge": cfg.network.bridge,
            "subnet": cfg.network.subnet.to_string(),
            "publishAddress": cfg.network.publish_address.to_string(),
        },
        "cpuUnits": host.cpu_units,
        "memoryMiB": host.memory_mib,
        "containerInstanceArn": e.container_instance_arn("default"),
    }))
}

pub(super) async fn volumes(d: &Daemon) -> Result<Value, ApiError> {
    let volumes = d.engine.list_volumes().await.map_err(engine_error)?;
    Ok(json!({"volumes": volumes}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RemoveVolume {
    name: String,
}

pub(super) async fn remove_volume(d: &Daemon, r: RemoveVolume) -> Result<Value, ApiError> {
    match d.engine.remove_volume(&r.name).await {
        Ok(_) => Ok(json!({"removed": r.name})),
        Err(e @ berth_runtime::engine::EngineError::Conflict(_)) => Err(ApiError::new(
            "ResourceInUseException",
            http::StatusCode::BAD_REQUEST,
            e.to_string(),
        )),
        Err(e) => Err(engine_error(e)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct WaitTask {
    cluster: Option<String>,
    task: String,
    /// The lastStatus to wait for (or any later one); STOPPED by default.
    status: Option<String>,
    /// At most this long (default 60, at most 3600); the task is returned as it is then.
    timeout_secs: Option<u64>,
}

/// WaitTask: a long poll that answers when the task reaches `status` (what `berth run`
/// uses instead of polling DescribeTasks).
pub(super) async fn wait_task(d: &Daemon, r: WaitTask) -> Result<Value, ApiError> {
    use berth_runtime::state::model::status;
    let want = r.status.unwrap_or_else(|| status::STOPPED.to_owned());
    const KNOWN: [&str; 8] = [
        status::PROVISIONING,
        status::PENDING,
        status::ACTIVATING,
        status::RUNNING,
        status::DEACTIVATING,
        status::STOPPING,
        status::DEPROVISIONING,
        status::STOPPED,
    ];
    if !KNOWN.contains(&want.as_str()) {
        return Err(ApiError::invalid(format!(
            "status must be one of {}",
            KNOWN.join(", ")
        )));
    }
    let timeout = match r.timeout_secs {
        None => 60,
        Some(t @ 0..=3600) => t,
        Some(t) => {
            return Err(ApiError::invalid(format!(
                "timeoutSecs must be between 0 and 3600 (got {t})"
            )));
        }
    };
    let task = d
        .engine
        .wait_task(
            r.cluster.as_deref(),
            &r.task,
            &want,
            Duration::from_secs(timeout),
        )
        .await
        .map_err(engine_error)?;
    Ok(json!({"task": task}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct StopTask {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
    timeout_secs: Option<u64>,
}

/// StopTask with a stop timeout override (`berth stop --time`, a second Ctrl-C).
pub(super) async fn stop_task(d: &Daemon, r: StopTask) -> Result<Value, ApiError> {
    let task = d
        .engine
        .stop_task(r.cluster.as_deref(), &r.task, r.reason, r.timeout_secs)
        .await
        .map_err(engine_error)?;
    Ok(json!({"task": task}))
}
