//! Turning what the shim reports into ECS's task and container states.
//!
//! The task state machine (ECS `lastStatus`; a task never moves backwards):
//!
//! ```text
//! PROVISIONING ─ network, cgroup ─▶ PENDING ─▶ ACTIVATING ─ pull, rootfs, shim ─▶ RUNNING
//!       │                                          │                                │
//!       └──────────── failure / StopTask ──────────┴────────────┐        essential exit,
//!                                                               ▼        StopTask
//!   STOPPED ◀─ DEPROVISIONING ◀─ STOPPING ◀─ DEACTIVATING ◀─────┴──────────────────┘
//! ```
//!
//! `desiredStatus` is RUNNING until a stop is requested or the task stops on its own.

use super::super::shim::{ContainerStatus, HealthStatus, RunStatus, ShimState};
use crate::state::model::{ContainerHealth, TaskRecord, status};

/// Applies a shim report to the record. Returns whether anything visible changed.
pub(crate) fn apply_shim_state(rec: &mut TaskRecord, s: &ShimState) -> bool {
    let before = serde_json::to_value(&rec.task).ok();
    rec.runtime.shim_seq = s.seq;
    for cs in &s.containers {
        let Some(c) = rec.task.containers.iter_mut().find(|c| c.name == cs.name) else {
            continue;
        };
        c.last_status = match cs.status {
            ContainerStatus::Pending if cs.finished_at.is_some() => "STOPPED",
            ContainerStatus::Pending => "PENDING",
            ContainerStatus::Running => "RUNNING",
            ContainerStatus::Stopped => "STOPPED",
        }
        .to_owned();
        c.exit_code = cs.exit_code;
        c.restart_count = cs.restart_count;
        if cs.reason.is_some() {
            c.reason = cs.reason.clone();
        }
        c.health_status = health_str(cs.health).to_owned();
        // Only a container with a health check has run one (or is waiting to).
        if cs.health_output.is_some() || cs.health_since.is_some() {
            c.health = Some(ContainerHealth {
                status: c.health_status.clone(),
                status_since: cs.health_since,
                output: cs.health_output.clone(),
            });
        }
        if let Some(pid) = cs.pid {
            c.runtime_id.get_or_insert_with(|| pid.to_string());
        }
    }
    rec.task.health_status = task_health(rec, s).to_owned();

    match s.status {
        RunStatus::Starting => {}
        RunStatus::Running => {
            advance(rec, status::RUNNING);
            if rec.task.started_at.is_none() {
                rec.task.started_at = s.running_at;
            }
        }
        RunStatus::Stopping | RunStatus::Stopped => {
            rec.task.desired_status = "STOPPED".into();
            // A daemon that first hears from the shim after the task ran (a short task,
            // a busy or restarted daemon) still records when it started running.
            if rec.task.started_at.is_none() {
                rec.task.started_at = s.running_at;
            }
            if let Some(stop) = &s.stop {
                rec.task
                    .stop_code
                    .get_or_insert_with(|| stop.code.as_str().to_owned());
                rec.task
                    .stopped_reason
                    .get_or_insert_with(|| stop.reason.clone());
                rec.task.stopping_at.get_or_insert(stop.at);
                if rec.task.stopped_by_container.is_none() {
                    rec.task.stopped_by_container = stop.container.clone();
                }
            }
            advance(rec, status::STOPPING);
            if s.status == RunStatus::Stopped {
                rec.task.execution_stopped_at = s.stopped_at;
            }
        }
    }
    let changed = serde_json::to_value(&rec.task).ok() != before;
    if changed {
        rec.task.version += 1;
    }
    changed
}

/// Moves the task forward to `to` (never backwards).
pub(crate) fn advance(rec: &mut TaskRecord, to: &str) {
    if status::rank(to) > status::rank(&rec.task.last_status) {
        rec.task.last_status = to.to_owned();
    }
}

fn health_str(h: HealthStatus) -> &'static str {
    match h {
        HealthStatus::Unknown => "UNKNOWN",
        HealthStatus::Healthy => "HEALTHY",
        HealthStatus::Unhealthy => "UNHEALTHY",
    }
}

/// ECS's task health: over essential containers, UNHEALTHY wins, then UNKNOWN; only all
/// HEALTHY is HEALTHY. Containers without a health check count as UNKNOWN.
fn task_health(rec: &TaskRecord, s: &ShimState) -> &'static str {
    let essential: Vec<&str> = rec
        .runtime
        .definition
        .get("containerDefinitions")
        .and_then(|v| v.as_array())
        .map(|cs| {
            cs.iter()
                .filter(|c| c.get("essential").and_then(|e| e.as_bool()).unwrap_or(true))
                .filter_map(|c| c.get("name").and_then(|n| n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut any_unknown = false;
    let mut any = false;
    for cs in s
        .containers
        .iter()
        .filter(|c| essential.contains(&c.name.as_str()))
    {
        any = true;
        match cs.health {
            HealthStatus::Unhealthy => return "UNHEALTHY",
            HealthStatus::Unknown => any_unknown = true,
            HealthStatus::Healthy => {}
        }
    }
    if !any || any_unknown {
        "UNKNOWN"
    } else {
        "HEALTHY"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::{ContainerState, StopCode, StopInfo};
    use crate::state::model::{Container, Task, TaskRuntime};
    use serde_json::json;

    fn record() -> TaskRecord {
        let container = |name: &str| Container {
            container_arn: format!("arn:c/{name}"),
            task_arn: "arn:t".into(),
            name: name.into(),
            image: "busybox".into(),
            image_digest: None,
            runtime_id: None,
            last_status: "PENDING".into(),
            exit_code: None,
            reason: None,
            network_bindings: vec![],
            network_interfaces: vec![],
            health_status: "UNKNOWN".into(),
            cpu: None,
            memory: None,
            memory_reservation: None,
            health: None,
            restart_count: 0,
        };
        TaskRecord {
            id: "t".into(),
            cluster: "default".into(),
            family: "f".into(),
            task: Task {
                task_arn: "arn:t".into(),
                cluster_arn: "arn:c".into(),
                task_definition_arn: "arn:td".into(),
                container_instance_arn: "arn:ci".into(),
                last_status: status::ACTIVATING.into(),
                desired_status: "RUNNING".into(),
                cpu: None,
                memory: None,
                containers: vec![container("app"), container("side")],
                started_by: None,
                group: "family:f".into(),
                launch_type: "EC2".into(),
                availability_zone: "local".into(),
                connectivity: "CONNECTED".into(),
                connectivity_at: None,
                version: 1,
                created_at: 1.0,
                pull_started_at: None,
                pull_stopped_at: None,
                started_at: None,
                stopping_at: None,
                execution_stopped_at: None,
                stopped_at: None,
                stop_code: None,
                stopped_reason: None,
                health_status: "UNKNOWN".into(),
                attachments: vec![],
                overrides: json!({}),
                enable_execute_command: false,
                stopped_by_container: None,
                tags: vec![],
            },
            runtime: TaskRuntime {
                definition: json!({"containerDefinitions": [
                    {"name": "app"}, {"name": "side", "essential": false}
                ]}),
                ..Default::default()
            },
        }
    }

    fn shim(status: RunStatus) -> ShimState {
        ShimState {
            shim_pid: 9,
            seq: 1,
            status,
            stop: None,
            running_at: None,
            stopped_at: None,
            containers: vec![
                ContainerState::pending("app"),
                ContainerState::pending("side"),
            ],
        }
    }

    #[test]
    fn running_shim_makes_a_running_task_with_started_at() {
        let mut rec = record();
        let mut s = shim(RunStatus::Running);
        s.running_at = Some(5.0);
        s.containers[0].status = ContainerStatus::Running;
        s.containers[0].pid = Some(42);
        assert!(apply_shim_state(&mut rec, &s));
        assert_eq!(rec.task.last_status, "RUNNING");
        assert_eq!(rec.task.started_at, Some(5.0));
        assert_eq!(rec.task.containers[0].last_status, "RUNNING");
        assert_eq!(rec.task.version, 2);
        assert!(
            !apply_shim_state(&mut rec, &s),
            "same report, no new version"
        );
        assert_eq!(rec.task.version, 2);
    }

    #[test]
    fn essential_exit_stops_with_ecs_codes_and_keeps_the_first_reason() {
        let mut rec = record();
        let mut s = shim(RunStatus::Stopped);
        s.stop = Some(StopInfo {
            code: StopCode::EssentialContainerExited,
            reason: "Essential container in task exited".into(),
            at: 7.0,
            container: Some("app".into()),
        });
        s.stopped_at = Some(8.0);
        s.running_at = Some(6.0);
        s.containers[0].status = ContainerStatus::Stopped;
        s.containers[0].exit_code = Some(3);
        apply_shim_state(&mut rec, &s);
        assert_eq!(
            rec.task.started_at,
            Some(6.0),
            "RUNNING was never reported, but the task ran"
        );
        assert_eq!(rec.task.desired_status, "STOPPED");
        assert_eq!(rec.task.last_status, "STOPPING");
        assert_eq!(
            rec.task.stop_code.as_deref(),
            Some("EssentialContainerExited")
        );
        assert_eq!(rec.task.stopping_at, Some(7.0));
        assert_eq!(rec.task.execution_stopped_at, Some(8.0));
        assert_eq!(rec.task.containers[0].exit_code, Some(3));
        // A never-started container reports STOPPED without an exit code.
        s.containers[1].finished_at = Some(8.0);
        apply_shim_state(&mut rec, &s);
        assert_eq!(rec.task.containers[1].last_status, "STOPPED");
        assert_eq!(rec.task.containers[1].exit_code, None);
    }

    #[test]
    fn restarts_reach_the_record_and_the_metadata_of_a_restart_policy_container() {
        let mut rec = record();
        rec.runtime.definition = json!({"containerDefinitions": [
            {"name": "app", "restartPolicy": {"enabled": true}}, {"name": "side"}]});
        let mut s = shim(RunStatus::Running);
        s.containers[0].status = ContainerStatus::Running;
        s.containers[0].restart_count = 2;
        apply_shim_state(&mut rec, &s);
        assert_eq!(rec.task.containers[0].restart_count, 2);
        let task = serde_json::to_value(&rec.task).unwrap();
        assert_eq!(task["containers"][0]["berthRestartCount"], 2);
        assert!(task["containers"][1].get("berthRestartCount").is_none());
        let doc = crate::engine::metadata::container_doc(&rec, &rec.task.containers[0]);
        assert_eq!(doc["RestartCount"], 2);
        let doc = crate::engine::metadata::container_doc(&rec, &rec.task.containers[1]);
        assert!(doc.get("RestartCount").is_none(), "{doc:#}");
    }

    #[test]
    fn task_health_aggregates_essential_containers_only() {
        let mut rec = record();
        let mut s = shim(RunStatus::Running);
        s.containers[1].health = HealthStatus::Unhealthy; // not essential
        apply_shim_state(&mut rec, &s);
        assert_eq!(rec.task.health_status, "UNKNOWN");
        s.containers[0].health = HealthStatus::Healthy;
        apply_shim_state(&mut rec, &s);
        assert_eq!(rec.task.health_status, "HEALTHY");
        s.containers[0].health = HealthStatus::Unhealthy;
        apply_shim_state(&mut rec, &s);
        assert_eq!(rec.task.health_status, "UNHEALTHY");
        assert_eq!(rec.task.containers[0].health_status, "UNHEALTHY");
        assert_eq!(rec.task.containers[0].health, None, "no check ran yet");
        s.containers[0].health_output = Some("connection refused".into());
        s.containers[0].health_since = Some(9.0);
        apply_shim_state(&mut rec, &s);
        let h = rec.task.containers[0].health.clone().unwrap();
        assert_eq!(
            (h.status.as_str(), h.status_since, h.output.as_deref()),
            ("UNHEALTHY", Some(9.0), Some("connection refused"))
        );
    }

    #[test]
    fn status_never_moves_backwards() {
        let mut rec = record();
        rec.task.last_status = status::STOPPING.into();
        advance(&mut rec, status::RUNNING);
        assert_eq!(rec.task.last_status, status::STOPPING);
    }
}
