//! The service scheduler: a pass over every ACTIVE or DRAINING service whenever one of
//! their tasks changes, a service is created, updated or deleted, and every second
//! (throttle and grace-period timers). A pass reads the service's tasks, counts the
//! ones that stopped, asks [`plan::decide`] what to start and stop, does it through
//! RunTask and StopTask, and stores the counts, deployments and events.

use std::time::Duration;

use super::model::ServiceRecord;
use super::plan::{self, Settings, StopWhy, TaskState, TaskView};
use super::{ServiceError, new_deployment, push_deployment, store};
use crate::engine::run::RunTaskRequest;
use crate::engine::{Engine, arn, now, stop};
use crate::state::model::{Task, status as st};
use crate::state::repo;

/// The longest wait between passes while services exist.
const TICK: Duration = Duration::from_secs(1);
/// Failed starts in a row before the scheduler slows down (ECS's throttle).
const THROTTLE_AFTER: u32 = 3;
/// The first throttled delay, doubled at each further failure up to [`THROTTLE_MAX`].
const THROTTLE_FIRST_SECS: f64 = 10.0;
/// ECS's longest delay between attempts to start a service's tasks: 27 minutes.
const THROTTLE_MAX_SECS: f64 = 27.0 * 60.0;
/// How long after a placement failure (not enough CPU, memory or a port) the scheduler
/// tries again.
const PLACEMENT_RETRY_SECS: f64 = 10.0;

pub(super) async fn run(engine: Engine) {
    let mut changes = engine.task_changes();
    loop {
        let active = match pass_all(&engine).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %crate::engine::chain(&e), "service scheduler pass failed");
                1
            }
        };
        let wake = &engine.services().wake;
        if active == 0 {
            // Nothing to keep running: only a service operation wakes the scheduler.
            wake.notified().await;
            changes.borrow_and_update();
            continue;
        }
        let deadline = tokio::time::Instant::now() + TICK;
        loop {
            tokio::select! {
                _ = wake.notified() => break,
                _ = tokio::time::sleep_until(deadline) => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    // Only a service's own tasks are worth a pass.
                    let latest = changes.borrow_and_update().clone();
                    if latest.is_some_and(|r| r.task.group.starts_with("service:")) {
                        break;
                    }
                }
            }
        }
    }
}

/// One pass over every service that is not INACTIVE; returns how many there were.
async fn pass_all(engine: &Engine) -> Result<usize, ServiceError> {
    let services = engine
        .db()
        .call(|db| store::list_live(db.conn(), None))
        .await?;
    for rec in &services {
        let cluster = arn::cluster_name(Some(&rec.service.cluster_arn));
        if let Err(e) = pass(engine, &cluster, &rec.service.service_name).await {
            tracing::warn!(service = %rec.service.service_name, error = %crate::engine::chain(&e), "service pass failed");
        }
    }
    Ok(services.len())
}

/// The tasks of a service that are not STOPPED.
async fn live_tasks(
    engine: &Engine,
    cluster: &str,
    rec: &ServiceRecord,
) -> Result<Vec<(String, Task)>, ServiceError> {
    let c = cluster.to_owned();
    let ids: Vec<String> = rec
        .service
        .deployments
        .iter()
        .map(|d| d.id.clone())
        .collect();
    Ok(engine
        .db()
        .call(move |db| store::live_tasks_started_by(db.conn(), &c, &ids))
        .await?)
}

async fn pass(engine: &Engine, cluster: &str, name: &str) -> Result<(), ServiceError> {
    let _changing = engine.services().lock.lock().await;
    let Some(mut rec) = engine.service_record(cluster, name).await? else {
        return Ok(());
    };
    if rec.service.status == "INACTIVE" {
        return Ok(());
    }
    let before = rec.clone();
    let t = now();
    let live = live_tasks(engine, cluster, &rec).await?;
    count_stopped(engine, &mut rec, &live, t).await?;
    trip_circuit_breaker(&mut rec, t);

    let Some(primary) = rec.primary().cloned() else {
        return Ok(());
    };
    let views: Vec<TaskView> = live
        .iter()
        .filter(|(_, task)| task.desired_status != "STOPPED")
        .map(|(id, task)| view(id, task))
        .collect();
    if views
        .iter()
        .any(|v| v.deployment == primary.id && matches!(v.state, TaskState::Running { .. }))
    {
        rec.failed_starts = 0;
    }
    let config = &rec.service.deployment_configuration;
    let settings = Settings {
        desired: rec.service.desired_count,
        maximum_percent: config.maximum_percent,
        minimum_healthy_percent: config.minimum_healthy_percent,
        primary: &primary.id,
        draining: rec.service.status == "DRAINING",
        can_start: t >= rec.next_start_at && primary.rollout_state != "FAILED",
        grace_secs: f64::from(rec.service.health_check_grace_period_seconds.unwrap_or(0)),
        stopping: live.len() - views.len(),
        now: t,
    };
    let decided = plan::decide(&settings, &views);
    if !decided.stop.is_empty() {
        stop_tasks(engine, cluster, &mut rec, &decided.stop, &views, t).await;
    }
    if decided.start > 0 {
        start_tasks(engine, cluster, &mut rec, decided.start, t).await;
    }
    let live = live_tasks(engine, cluster, &rec).await?;
    recount(&mut rec, &live, t);
    if rec != before {
        engine.store_service(&rec).await?;
    }
    Ok(())
}

fn view(id: &str, task: &Task) -> TaskView {
    let state = if task.last_status == st::RUNNING {
        let checked = task.containers.iter().any(|c| c.health.is_some());
        TaskState::Running {
            healthy: task.health_status == "HEALTHY"
                || (!checked && task.health_status != "UNHEALTHY"),
            unhealthy: task.health_status == "UNHEALTHY",
            started_at: task.started_at.unwrap_or(task.created_at),
        }
    } else {
        TaskState::Pending
    };
    TaskView {
        id: id.to_owned(),
        deployment: task.started_by.clone().unwrap_or_default(),
        created_at: task.created_at,
        state,
    }
}

/// Tracked tasks that stopped since the last pass: a task that never ran counts as a
/// failed start (and, in a row, throttles the service).
async fn count_stopped(
    engine: &Engine,
    rec: &mut ServiceRecord,
    live: &[(String, Task)],
    t: f64,
) -> Result<(), ServiceError> {
    // Tasks started just before a daemon died, found by their startedBy.
    for (id, task) in live {
        if !rec.tracked.contains_key(id) {
            rec.tracked
                .insert(id.clone(), task.started_by.clone().unwrap_or_default());
        }
    }
    let gone: Vec<(String, String)> = rec
        .tracked
        .iter()
        .filter(|(id, _)| !live.iter().any(|(l, _)| l == *id))
        .map(|(id, d)| (id.clone(), d.clone()))
        .collect();
    for (id, deployment) in gone {
        let tid = id.clone();
        let found = engine
            .db()
            .call(move |db| repo::get_task_view(db.conn(), &tid))
            .await?;
        rec.tracked.remove(&id);
        let Some((_, task)) = found else { continue };
        if task.last_status != st::STOPPED || task.started_at.is_some() {
            continue;
        }
        let primary = rec.primary().is_some_and(|p| p.id == deployment);
        if let Some(d) = rec
            .service
            .deployments
            .iter_mut()
            .find(|d| d.id == deployment)
        {
            d.failed_tasks += 1;
            d.updated_at = t;
        }
        if primary {
            rec.failed_starts += 1;
            if rec.failed_starts >= THROTTLE_AFTER {
                let doublings = (rec.failed_starts - THROTTLE_AFTER).min(16);
                let delay =
                    (THROTTLE_FIRST_SECS * f64::from(1u32 << doublings)).min(THROTTLE_MAX_SECS);
                rec.next_start_at = t + delay;
                let msg = format!(
                    "{} is unable to consistently start tasks successfully. Last stopped task {id}: {}",
                    rec.who(),
                    task.stopped_reason
                        .as_deref()
                        .unwrap_or("no reason recorded")
                );
                rec.event(t, msg);
            }
        }
    }
    Ok(())
}

/// ECS's deployment circuit breaker: a deployment whose tasks keep failing to start
/// fails (no more starts), and with `rollback` the last completed task definition is
/// deployed again.
fn trip_circuit_breaker(rec: &mut ServiceRecord, t: f64) {
    let breaker = rec
        .service
        .deployment_configuration
        .deployment_circuit_breaker;
    let Some(primary) = rec.service.deployments.first_mut() else {
        return;
    };
    let threshold = (primary.desired_count.div_ceil(2)).clamp(3, 200);
    if !breaker.enable || primary.rollout_state != "IN_PROGRESS" || primary.failed_tasks < threshold
    {
        return;
    }
    primary.rollout_state = "FAILED".into();
    primary.rollout_state_reason = "ECS deployment circuit breaker: tasks failed to start.".into();
    primary.updated_at = t;
    let failed = primary.id.clone();
    let msg = format!(
        "{} (deployment {failed}) deployment failed: tasks failed to start.",
        rec.who()
    );
    rec.event(t, msg);
    let back = rec.last_completed_task_definition.clone();
    if breaker.rollback
        && let Some(td) = back.filter(|td| *td != rec.service.task_definition)
    {
        let s = &rec.service;
        let d = new_deployment(
            &td,
            s.desired_count,
            &s.launch_type,
            s.network_configuration.clone(),
        );
        let msg = format!(
            "{} (deployment {}) rolling back to task definition {td}.",
            rec.who(),
            d.id
        );
        rec.service.task_definition = td;
        push_deployment(rec, d);
        rec.event(t, msg);
    }
}

async fn stop_tasks(
    engine: &Engine,
    cluster: &str,
    rec: &mut ServiceRecord,
    stops: &[(String, StopWhy)],
    views: &[TaskView],
    t: f64,
) {
    let mut stopped = Vec::new();
    for (id, why) in stops {
        let deployment = views
            .iter()
            .find(|v| v.id == *id)
            .map_or("", |v| v.deployment.as_str());
        let reason = match why {
            StopWhy::Unhealthy => "Task failed container health checks".to_owned(),
            StopWhy::ScaleIn | StopWhy::Replaced | StopWhy::Draining => {
                format!("Scaling activity initiated by (deployment {deployment})")
            }
        };
        let code = Some("ServiceSchedulerInitiated");
        match stop::request_stop(engine, cluster, id, reason, None, code).await {
            Ok(_) => stopped.push(format!("(task {id})")),
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "service scheduler could not stop a task")
            }
        }
    }
    if !stopped.is_empty() {
        rec.steady = false;
        let msg = format!(
            "{} has stopped {} running tasks: {}.",
            rec.who(),
            stopped.len(),
            stopped.join(" ")
        );
        rec.event(t, msg);
    }
}

async fn start_tasks(engine: &Engine, cluster: &str, rec: &mut ServiceRecord, count: u32, t: f64) {
    let Some(primary) = rec.primary().cloned() else {
        return;
    };
    let s = &rec.service;
    let mut left = count;
    let mut started = Vec::new();
    while left > 0 {
        let n = left.min(10);
        left -= n;
        let req = RunTaskRequest {
            cluster: Some(cluster.to_owned()),
            task_definition: primary.task_definition.clone(),
            count: n,
            started_by: Some(primary.id.clone()),
            group: Some(format!("service:{}", s.service_name)),
            tags: if s.propagate_tags == "SERVICE" {
                s.tags.clone()
            } else {
                Vec::new()
            },
            propagate_task_definition_tags: s.propagate_tags == "TASK_DEFINITION",
            for_service: true,
            ..RunTaskRequest::default()
        };
        match engine.run_task(req).await {
            Ok(result) => {
                for task in &result.tasks {
                    let (id, _) = arn::task_id(&task.task_arn);
                    rec.tracked.insert(id.clone(), primary.id.clone());
                    started.push(format!("(task {id})"));
                }
                if let Some(f) = result.failures.first() {
                    rec.next_start_at = t + PLACEMENT_RETRY_SECS;
                    let msg = format!(
                        "{} was unable to place a task because no container instance met all of its requirements. Reason: {}.",
                        rec.who(),
                        f.reason
                    );
                    rec.event(t, msg);
                    break;
                }
            }
            Err(e) => {
                rec.next_start_at = t + PLACEMENT_RETRY_SECS;
                let msg = format!(
                    "{} was unable to start a task: {}",
                    rec.who(),
                    crate::engine::chain(&e)
                );
                rec.event(t, msg);
                break;
            }
        }
    }
    if !started.is_empty() {
        rec.steady = false;
        let msg = format!(
            "{} has started {} tasks: {}.",
            rec.who(),
            started.len(),
            started.join(" ")
        );
        rec.event(t, msg);
    }
}

/// Counts per deployment and for the service; drops replaced deployments with no task
/// left; marks the rollout complete and the steady state.
fn recount(rec: &mut ServiceRecord, live: &[(String, Task)], t: f64) {
    let (mut running, mut pending) = (0, 0);
    for d in &mut rec.service.deployments {
        let mine = live
            .iter()
            .filter(|(_, task)| task.started_by.as_deref() == Some(d.id.as_str()));
        let (mut r, mut p) = (0, 0);
        for (_, task) in mine.filter(|(_, task)| task.desired_status != "STOPPED") {
            if task.last_status == st::RUNNING {
                r += 1;
            } else {
                p += 1;
            }
        }
        if (d.running_count, d.pending_count) != (r, p) {
            d.running_count = r;
            d.pending_count = p;
            d.updated_at = t;
        }
        running += r;
        pending += p;
    }
    let primary_id = rec.primary().map(|d| d.id.clone()).unwrap_or_default();
    rec.service.deployments.retain(|d| {
        d.id == primary_id
            || live
                .iter()
                .any(|(_, task)| task.started_by.as_deref() == Some(d.id.as_str()))
    });
    rec.service.running_count = running;
    rec.service.pending_count = pending;
    if rec.service.status == "DRAINING" {
        if live.is_empty() {
            rec.service.status = "INACTIVE".into();
            let msg = format!("{} has stopped all its tasks and is inactive.", rec.who());
            rec.event(t, msg);
        }
        return;
    }
    let desired = rec.service.desired_count;
    let settled = rec.service.deployments.len() == 1 && running == desired && pending == 0;
    let who = rec.who();
    let mut events = Vec::new();
    if let Some(p) = rec.service.deployments.first_mut()
        && settled
        && p.rollout_state == "IN_PROGRESS"
    {
        p.rollout_state = "COMPLETED".into();
        p.rollout_state_reason = format!("ECS deployment {} completed.", p.id);
        p.updated_at = t;
        rec.last_completed_task_definition = Some(p.task_definition.clone());
        events.push(format!("{who} (deployment {}) deployment completed.", p.id));
    }
    if settled && !rec.steady {
        rec.steady = true;
        events.push(format!("{who} has reached a steady state."));
    }
    for e in events {
        rec.event(t, e);
    }
}
