//! One driver per task: provisioning, starting the shim, following it, and cleaning
//! up. Every state change is written to the database as it happens.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_netns::NetworkMode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::finalize::{Deprovisioning, SHIM_EXIT_WAIT, finalize, finalize_from, wait_shim_exit};
use super::images_step;
use super::provision::{self, PrepareInput};
use super::spare_shim::SpareShim;
use super::stop::{pending_stop, stop_requested, wait_for_stop};
use super::task_network::setup_network;
use super::{Engine, EngineError, now, status, sys};
use crate::cgroup::{TaskCgroupLimits, cpu_shares_for_units};
use crate::db::DbError;
use crate::secrets;
use crate::shim::{self, ControlReply, ControlRequest, RunStatus, ShimState};
use crate::state::model::{Task, TaskRecord, status as st};
use crate::state::repo;

/// Where a driver starts.
#[derive(Debug)]
pub(crate) enum Start {
    /// A new task, as RunTask admitted it: provision everything.
    Provision(Box<AdmittedTask>),
    /// A task whose shim is already running (after a daemon restart).
    Attach,
    /// A task whose shim has finished: collect its final state and clean up.
    Finalize,
}

/// A task RunTask just stored, handed to its driver with what admission leased, so the
/// driver starts without reading it back.
#[derive(Debug)]
pub(crate) struct AdmittedTask {
    /// The record as stored.
    pub rec: TaskRecord,
    /// The addresses leased to it, in the order they were leased.
    pub addresses: Vec<std::net::Ipv4Addr>,
}

/// Starts the driver of task `id`.
pub(crate) fn spawn(engine: &Engine, id: String, start: Start) {
    let e = engine.clone();
    let task_id = id.clone();
    let handle = tokio::spawn(async move {
        if let Err(err) = drive(&e, &task_id, start).await {
            tracing::error!(task = %task_id, error = %crate::engine::chain(&err), "task driver failed");
            // The record must not stay in a transient state forever.
            let reason = format!(
                "berth failed while managing the task: {}",
                crate::engine::chain(&err)
            );
            let _ = fail(&e, &task_id, "TaskFailedToStart", &reason).await;
        }
    });
    let mut drivers = engine.inner().drivers.lock().expect("not poisoned");
    drivers.retain(|_, h| !h.is_finished());
    drivers.insert(id, handle);
}

/// Reads, changes and stores a task in one database job (no lost updates between the
/// driver and StopTask).
pub(crate) async fn update<R: Send + 'static>(
    engine: &Engine,
    id: &str,
    f: impl FnOnce(&mut TaskRecord) -> R + Send + 'static,
) -> Result<(TaskRecord, R), EngineError> {
    let id = id.to_owned();
    let out = engine
        .db()
        .call(move |db| {
            let Some(mut rec) = repo::get_task(db.conn(), &id)? else {
                return Ok::<_, DbError>(None);
            };
            let r = f(&mut rec);
            repo::update_task(db.conn(), &rec)?;
            Ok(Some((rec, r)))
        })
        .await?;
    let out =
        out.ok_or_else(|| EngineError::NotFound("The referenced task was not found.".into()))?;
    stored(engine, &out.0);
    Ok(out)
}

/// Tells waiters that `rec` was just stored.
pub(super) fn stored(engine: &Engine, rec: &TaskRecord) {
    engine
        .inner()
        .task_changed
        .send_replace(Some(Arc::new(rec.clone())));
}

/// How long a waiter sleeps before looking again even without a wake-up (a record
/// changed by something other than a driver, e.g. reconciliation).
const WAIT_RECHECK: Duration = Duration::from_secs(1);

impl Engine {
    /// Waits until the task's `lastStatus` reaches `status` (or passes it: a task never
    /// moves backwards) or `timeout` passes, and returns the task as it is then. The
    /// event-driven form of polling DescribeTasks (`berth run`, `berth.WaitTask`).
    pub async fn wait_task(
        &self,
        cluster: Option<&str>,
        reference: &str,
        status: &str,
        timeout: Duration,
    ) -> Result<Task, EngineError> {
        let cluster = self.require_cluster(cluster).await?;
        let (id, _) = super::arn::task_id(reference);
        let want = st::rank(status);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changed = self.inner().task_changed.subscribe();
        let mut woken = false;
        loop {
            // Marked seen before reading, so a change after the read wakes the wait.
            let latest = changed.borrow_and_update().clone();
            // After a wake-up for this very task, the record that was just stored is
            // the current one: no database read.
            let rec = match latest {
                Some(r) if woken && r.id == id => Some((*r).clone()),
                _ => self.task(&id).await?,
            };
            let rec = rec.filter(|r| r.cluster == cluster).ok_or_else(|| {
                EngineError::NotFound("The referenced task was not found.".into())
            })?;
            let now = tokio::time::Instant::now();
            if st::rank(&rec.task.last_status) >= want || now >= deadline {
                return Ok(rec.task);
            }
            let nap = (deadline - now).min(WAIT_RECHECK);
            woken = matches!(
                tokio::time::timeout(nap, changed.changed()).await,
                Ok(Ok(()))
            );
        }
    }

    /// Changes whenever a driver stores a task record: a wake-up for followers (the
    /// value itself means nothing).
    pub fn task_changes(&self) -> tokio::sync::watch::Receiver<Option<Arc<TaskRecord>>> {
        self.inner().task_changed.subscribe()
    }
}

pub(super) async fn set_status(
    engine: &Engine,
    id: &str,
    to: &'static str,
) -> Result<TaskRecord, EngineError> {
    Ok(update(engine, id, move |rec| {
        status::advance(rec, to);
        rec.task.version += 1;
    })
    .await?
    .0)
}

/// Debug-level timing of a task's steps (`BERTH_LOG=berth_runtime=debug`): where the
/// time between RunTask and STOPPED goes.
pub(super) struct Steps<'a> {
    task: &'a str,
    start: Instant,
    last: Instant,
}

impl<'a> Steps<'a> {
    pub(super) fn new(task: &'a str) -> Steps<'a> {
        let now = Instant::now();
        Steps {
            task,
            start: now,
            last: now,
        }
    }

    pub(super) fn done(&mut self, step: &'static str) {
        let now = Instant::now();
        tracing::debug!(
            task = %self.task,
            step,
            step_ms = (now - self.last).as_secs_f64() * 1e3,
            total_ms = (now - self.start).as_secs_f64() * 1e3,
            "task step done"
        );
        self.last = now;
    }
}

async fn drive(engine: &Engine, id: &str, start: Start) -> Result<(), EngineError> {
    let mut steps = Steps::new(id);
    match start {
        Start::Provision(admitted) => {
            // The spare shim, if one is ready, becomes the task's (its directory is
            // renamed to the task's run directory before anything else goes there).
            // Otherwise the shim starts now and waits for `begin`: its exec and set-up
            // (3-5 ms) run alongside the task's preparation instead of after it.
            let run_dir = engine.config().paths.task_run_dir(id);
            let spare = engine.inner().spare_shim.take(&run_dir);
            let (e2, shim_dir) = (engine.clone(), run_dir.clone());
            let shim = tokio::spawn(async move {
                match spare {
                    Some(stream) => Ok(stream),
                    None => start_shim_in(&e2, &shim_dir).await,
                }
            });
            let provisioned = provision_task(engine, id, *admitted, &mut steps).await;
            let shim = shim.await.expect("shim start task");
            steps.done("shim started");
            let provisioned = match provisioned {
                Ok(Some(p)) => p,
                stopped_or_failed => {
                    // The task stopped (or berth failed) before it began: the waiting
                    // shim sees its connection close and exits without starting
                    // anything; it is gone before the run directory is removed.
                    drop(shim);
                    wait_shim_exit(&run_dir).await;
                    stopped_or_failed?;
                    finalize(engine, id).await?;
                    return Ok(());
                }
            };
            let begun = match shim {
                Ok(stream) => begin(&stream, provisioned.holds, &run_dir)
                    .await
                    .map(|()| stream),
                Err(e) => Err(e),
            };
            let stream = match begun {
                Ok(stream) => stream,
                Err(e) => {
                    let reason = format!(
                        "ResourceInitializationError: the task's shim did not start: {}",
                        shim_failure(engine, id).unwrap_or_else(|| crate::engine::chain(&e))
                    );
                    fail(engine, id, "TaskFailedToStart", &reason).await?;
                    wait_shim_exit(&run_dir).await;
                    finalize(engine, id).await?;
                    return Ok(());
                }
            };
            steps.done("shim begun");
            if provisioned.has_namespace {
                // The next task's namespace is made now, while this one's containers start
                // (one process after another: a CPU to spare), instead of on its path.
                engine.inner().net.make_spare_namespace();
            }
            SpareShim::refill(engine);
            let deprovisioning = follow(engine, id, &mut steps, Some(stream)).await?;
            steps.done("shim finished");
            finalize_from(engine, id, deprovisioning).await?;
        }
        Start::Attach => {
            let deprovisioning = follow(engine, id, &mut steps, None).await?;
            finalize_from(engine, id, deprovisioning).await?;
        }
        Start::Finalize => finalize(engine, id).await?,
    }
    steps.done("finalized");
    Ok(())
}

/// A task ready for its shim to begin.
struct Provisioned {
    /// The host ports it publishes, held open (see `begin`).
    holds: Vec<OwnedFd>,
    /// Whether it has a network namespace of its own.
    has_namespace: bool,
}

/// Network, cgroup, images and bundles. `None` when the task stopped on the way (the
/// record is final then).
async fn provision_task(
    engine: &Engine,
    id: &str,
    admitted: AdmittedTask,
    steps: &mut Steps<'_>,
) -> Result<Option<Provisioned>, EngineError> {
    let AdmittedTask { rec, addresses } = admitted;
    let def = provision::definition(&rec);
    // The containers' secrets: a database job only for a definition that names some.
    let secrets = match &def {
        Ok(def) if secrets::declared(def.definition()) => {
            let d = def.definition().clone();
            engine
                .db()
                .call(move |db| Ok::<_, DbError>(secrets::resolve_for_task(db.conn(), &d)))
                .await?
        }
        _ => Ok(Default::default()),
    };
    steps.done("definition and secrets");
    let def = def.map_err(EngineError::Invalid)?;
    let secrets = match secrets {
        Ok(s) => s,
        Err(reason) => return stop_before_shim(engine, id, "TaskFailedToStart", &reason).await,
    };
    let mode: NetworkMode = rec
        .runtime
        .network_mode
        .parse()
        .unwrap_or(NetworkMode::Awsvpc);

    // PROVISIONING: network and cgroup, side by side (independent kernel work on
    // blocking threads). Whichever failed, finalize removes what the other made.
    let limits = TaskCgroupLimits {
        cpu_units: def.task_cpu_units(),
        containers_cpu_shares: def
            .containers()
            .iter()
            .map(|c| cpu_shares_for_units(c.cpu.map(|u| u.max(0) as u32)))
            .sum(),
        memory_mib: def.task_memory_mib().map(u64::from),
        pids_max: None,
    };
    let cg = engine.inner().cgroups.clone();
    let tid = id.to_owned();
    let e2 = engine.clone();
    let (network, made, stored) = tokio::join!(
        setup_network(engine, &rec, &addresses, mode, &def),
        tokio::task::spawn_blocking(move || {
            let made = cg.create_task(&tid, &limits);
            // The container joins its cgroups ~10 ms from now, and the kernel's first
            // migration after an idle spell waits a grace period: it runs from here,
            // alongside the rest of the setup. Not before the task's cgroup exists:
            // the waiting migration holds the kernel's cgroup mutex, which mkdir needs.
            e2.inner().primer.prime();
            made
        }),
        // Stored images need no network: their root filesystems are mounted meanwhile.
        images_step::stored_and_mounted(engine, id, &def),
    );
    let (network, holds) = match network {
        Ok(v) => v,
        Err(reason) => return stop_before_shim(engine, id, "TaskFailedToStart", &reason).await,
    };
    if let Err(e) = made.expect("cgroup thread") {
        return stop_before_shim(
            engine,
            id,
            "TaskFailedToStart",
            &format!("ResourceInitializationError: {}", crate::engine::chain(&e)),
        )
        .await;
    }
    // (A rootfs mounted on the way is unmounted by the cleanup of a task that stops here:
    // it lies in the task's run directory.)
    let stored = match stored {
        Ok(stored) => stored,
        Err(reason) => return stop_before_shim(engine, id, "TaskFailedToStart", &reason).await,
    };
    steps.done("network, cgroup, stored images");
    if let Some(reason) = stop_requested(engine, id) {
        return stop_before_shim(engine, id, "UserInitiated", &reason).await;
    }

    // PENDING, then ACTIVATING: images, rootfs, bundles. With every image stored there
    // is nothing to pull: ACTIVATING and the images are recorded with the shim's start
    // below, in one database job. A pull shows ACTIVATING while it runs, and its images
    // as soon as it ends.
    let (images, rootfs, unrecorded) = match stored {
        Some((images, rootfs)) => {
            let unrecorded = images.clone();
            (images, Some(rootfs), Some(unrecorded))
        }
        None => {
            update(engine, id, |rec| {
                images_step::record_activating(rec);
                rec.task.version += 1;
            })
            .await?;
            // A StopTask ends the wait for the pull at once. The pull itself goes on in
            // the background (its layers are fetched by tasks of their own) and its
            // layers stay stored for the next task.
            let images = tokio::select! {
                pulled = images_step::pull(engine, &def, &secrets.logins) => match pulled {
                    Ok(images) => images,
                    Err(reason) => {
                        return stop_before_shim(engine, id, "TaskFailedToStart", &reason).await;
                    }
                },
                reason = wait_for_stop(engine, id) => {
                    return stop_before_shim(engine, id, "UserInitiated", &reason).await;
                }
            };
            let pulled = images.clone();
            update(engine, id, move |rec| {
                images_step::record_pulled(rec, &pulled);
                rec.task.version += 1;
            })
            .await?;
            (images, None, None)
        }
    };
    let record_images = move |rec: &mut TaskRecord| {
        if let Some(images) = &unrecorded {
            images_step::record_activating(rec);
            images_step::record_pulled(rec, images);
            rec.task.version += 1;
        }
    };
    steps.done("images ready");
    if let Some(reason) = stop_requested(engine, id) {
        return stop_before_shim(engine, id, "UserInitiated", &reason).await;
    }

    let revision = rec
        .task
        .task_definition_arn
        .rsplit(':')
        .next()
        .unwrap_or("1")
        .to_owned();
    let input = PrepareInput {
        task_id: id.to_owned(),
        task_arn: rec.task.task_arn.clone(),
        cluster: rec.cluster.clone(),
        family: rec.family.clone(),
        revision,
        def,
        network,
        images,
        rootfs,
        metadata_ids: rec.runtime.metadata_ids.clone(),
        secrets: secrets.env,
        credentials_id: rec.runtime.credentials_id.clone(),
    };
    let e2 = engine.clone();
    let prepared = tokio::task::spawn_blocking(move || provision::prepare(&e2, &input))
        .await
        .expect("prepare thread");
    let prepared = match prepared {
        Ok(p) => p,
        Err(reason) => {
            // The stopped task still shows the images it was to run.
            update(engine, id, record_images).await?;
            return stop_before_shim(engine, id, "TaskFailedToStart", &reason).await;
        }
    };
    steps.done("rootfs and bundles");
    let mounts = prepared.mounts.clone();
    let run_dir = engine.config().paths.task_run_dir(id);
    let task_json = serde_json::to_vec_pretty(&prepared.shim_task).expect("shim task serializes");
    super::host::write_atomic(&run_dir.join(shim::TASK_FILE), &task_json)
        .map_err(EngineError::io("writing task.json"))?;
    // Intent before the side effect: from here on, a restarted daemon looks for a shim.
    update(engine, id, move |rec| {
        record_images(rec);
        rec.runtime.mounts = mounts;
        rec.runtime.shim_started = true;
    })
    .await?;
    steps.done("task.json written, shim start recorded");
    Ok(Some(Provisioned {
        holds,
        has_namespace: mode.has_namespace(),
    }))
}

/// Starts `berth shim <run-dir>` detached: it forks away at once, so it is never the
/// daemon's child and keeps running when the daemon stops. Returns the connection to
/// its control socket, on which the shim waits for [`begin`] (dropping it unbegun
/// makes the shim exit). `run_dir` is a task's run directory, or a spare's.
pub(super) async fn start_shim_in(
    engine: &Engine,
    run_dir: &Path,
) -> Result<UnixStream, EngineError> {
    std::fs::create_dir_all(run_dir)
        .map_err(EngineError::io(format!("creating {}", run_dir.display())))?;
    let exe = engine.config().shim_exe.clone();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join(shim::LOG_FILE))
        .map_err(EngineError::io("opening shim.log"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("shim")
        .arg(run_dir)
        .env(shim::STARTER_ENV, std::process::id().to_string())
        .stdin(std::process::Stdio::null());
    cmd.stdout(
        log.try_clone()
            .map_err(EngineError::io("duplicating shim.log"))?,
    );
    cmd.stderr(log);
    // No pre_exec hook: std starts the shim with posix_spawn (vfork-like) instead of
    // forking the whole daemon. The port holds go over the socket with `begin`.
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .expect("spawn thread")
        .map_err(EngineError::io("starting berth shim"))?;
    if !status.success() {
        return Err(EngineError::Invalid(format!(
            "berth shim exited with {status} while starting"
        )));
    }
    // The process started above exits once the shim listens.
    UnixStream::connect(run_dir.join(shim::SOCKET_FILE))
        .await
        .map_err(EngineError::io("connecting to the shim"))
}

/// Tells a waiting shim to start the task (`task.json` is written in `run_dir`),
/// handing it the task's port holds, which it keeps open for the task's life.
async fn begin(
    stream: &UnixStream,
    holds: Vec<OwnedFd>,
    run_dir: &Path,
) -> Result<(), EngineError> {
    let begin = ControlRequest::Begin {
        run_dir: Some(run_dir.to_owned()),
    };
    let mut line = serde_json::to_vec(&begin).expect("begin serializes");
    line.push(b'\n');
    let fds: Vec<_> = holds.iter().map(|f| f.as_fd()).collect();
    let n = stream
        .async_io(tokio::io::Interest::WRITABLE, || {
            sys::send_with_fds(stream.as_fd(), &line, &fds)
        })
        .await
        .map_err(EngineError::io("sending begin to the shim"))?;
    // A fresh stream socket takes a message this short whole.
    if n != line.len() {
        return Err(EngineError::io("sending begin to the shim")(
            std::io::Error::other(format!("short write: {n} of {} bytes", line.len())),
        ));
    }
    Ok(())
}

/// Why a shim that ended before listening failed, from its log.
fn shim_failure(engine: &Engine, id: &str) -> Option<String> {
    let log = engine.config().paths.task_run_dir(id).join(shim::LOG_FILE);
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        l.split_once("shim failed: ")
            .map(|(_, m)| m.trim().to_owned())
    })
}

/// Follows the shim until its final report (or until it disappeared), on `begun` (the
/// connection the task was begun on) or a new connection. Returns the task as stored with
/// the shim's final report when that report came on the connection — it is already
/// DEPROVISIONING then (see [`finalize_from`]) — with the wait for the shim's end of the
/// connection to close.
async fn follow(
    engine: &Engine,
    id: &str,
    steps: &mut Steps<'_>,
    begun: Option<UnixStream>,
) -> Result<Option<Deprovisioning>, EngineError> {
    let run_dir = engine.config().paths.task_run_dir(id);
    let mut stop_sent = false;
    let mut connected = begun;
    for _ in 0..200 {
        if connected.is_some() {
            break;
        }
        match UnixStream::connect(run_dir.join(shim::SOCKET_FILE)).await {
            Ok(s) => {
                connected = Some(s);
                break;
            }
            Err(_) if shim::shim_alive(&run_dir) || !run_dir.join(shim::PID_FILE).exists() => {
                if shim::read_state(&run_dir).is_some_and(|s| s.status == RunStatus::Stopped) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(_) => break,
        }
    }
    steps.done("connected to the shim");
    if let Some(stream) = connected {
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        send(&mut w, &ControlRequest::Watch).await;
        let mut stop_interval = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let Ok(Some(line)) = line else { break };
                    let Ok(ControlReply::State(state)) = serde_json::from_str::<ControlReply>(&line) else { continue };
                    let stopped = state.status == RunStatus::Stopped;
                    let status = state.status;
                    // The final report and DEPROVISIONING in one database job.
                    let rec = record_state(engine, id, state, stopped).await?;
                    tracing::debug!(task = %id, ?status, "shim state recorded");
                    if stopped {
                        // The shim exits right after its last report, closing its end
                        // of the connection a moment before: finalize waits for both
                        // alongside its own teardown.
                        let closed = tokio::spawn(async move {
                            let _ = tokio::time::timeout(SHIM_EXIT_WAIT, async {
                                while let Ok(Some(_)) = lines.next_line().await {}
                            })
                            .await;
                        });
                        return Ok(Some(Deprovisioning { rec, closed: Some(closed) }));
                    }
                }
                _ = stop_interval.tick(), if !stop_sent => {
                    if let Some((reason, timeout_secs)) = pending_stop(engine, id) {
                        send(&mut w, &ControlRequest::Stop { reason, timeout_secs }).await;
                        stop_sent = true;
                    }
                }
            }
        }
    }
    // Whatever happened to the connection, the last state the shim wrote is the truth;
    // wait briefly for a shim that is still finishing.
    for _ in 0..100 {
        if !shim::shim_alive(&run_dir) {
            break;
        }
        if shim::read_state(&run_dir).is_some_and(|s| s.status == RunStatus::Stopped) {
            wait_shim_exit(&run_dir).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if shim::shim_alive(&run_dir)
        && !shim::read_state(&run_dir).is_some_and(|s| s.status == RunStatus::Stopped)
    {
        // Still alive: the connection broke, not the shim. Keep following.
        return Box::pin(follow(engine, id, steps, None)).await;
    }
    if let Some(state) = shim::read_state(&run_dir) {
        record_state(engine, id, state, false).await?;
    }
    Ok(None)
}

pub(super) async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, req: &ControlRequest) {
    if let Ok(mut line) = serde_json::to_vec(req) {
        line.push(b'\n');
        let _ = w.write_all(&line).await;
    }
}

/// Records a report of the shim, and with `deprovision` (its final report) the task's
/// move to DEPROVISIONING.
async fn record_state(
    engine: &Engine,
    id: &str,
    state: ShimState,
    deprovision: bool,
) -> Result<TaskRecord, EngineError> {
    Ok(update(engine, id, move |rec| {
        if state.seq >= rec.runtime.shim_seq {
            status::apply_shim_state(rec, &state);
        }
        if deprovision {
            status::advance(rec, st::DEPROVISIONING);
            rec.task.version += 1;
        }
    })
    .await?
    .0)
}

/// The task stops before its shim began: record why (the driver then cleans up).
async fn stop_before_shim<T>(
    engine: &Engine,
    id: &str,
    code: &str,
    reason: &str,
) -> Result<Option<T>, EngineError> {
    fail(engine, id, code, reason).await?;
    Ok(None)
}

async fn fail(engine: &Engine, id: &str, code: &str, reason: &str) -> Result<(), EngineError> {
    let (code, reason) = (code.to_owned(), reason.to_owned());
    tracing::info!(task = %id, %code, %reason, "task stopping");
    update(engine, id, move |rec| {
        rec.task.desired_status = "STOPPED".into();
        rec.task.stop_code.get_or_insert(code);
        rec.task.stopped_reason.get_or_insert(reason);
        rec.task.stopping_at.get_or_insert(now());
        for c in &mut rec.task.containers {
            if c.last_status != "STOPPED" {
                c.last_status = "STOPPED".into();
            }
        }
        status::advance(rec, st::STOPPING);
        rec.task.version += 1;
    })
    .await?;
    Ok(())
}
