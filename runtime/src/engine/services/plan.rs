//! The service scheduler's decision, as a pure function of the service's settings and
//! its tasks: how many tasks to start in the primary deployment and which to stop. The
//! rules are ECS's rolling update: RUNNING + PENDING tasks stay at or under
//! `maximumPercent` of the desired count (rounded down), healthy RUNNING tasks at or
//! over `minimumHealthyPercent` (rounded up) while older deployments' tasks are
//! replaced; a primary deployment over its desired count loses pending tasks first,
//! then its newest. A task being stopped keeps its place under the maximum until it is
//! STOPPED, so a replacement never competes with it for memory or ports.

/// A live task of the service (not stopping, not stopped).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskView {
    pub id: String,
    /// Its deployment (the task's `startedBy`).
    pub deployment: String,
    pub created_at: f64,
    pub state: TaskState,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TaskState {
    /// Not RUNNING yet.
    Pending,
    /// RUNNING: `healthy` when its health checks passed, or it has none; `unhealthy`
    /// when they failed.
    Running {
        healthy: bool,
        unhealthy: bool,
        started_at: f64,
    },
}

/// What the scheduler is asked to decide on.
#[derive(Debug, Clone)]
pub(crate) struct Settings<'a> {
    pub desired: u32,
    pub maximum_percent: u32,
    pub minimum_healthy_percent: u32,
    pub primary: &'a str,
    /// The service was deleted: every task stops.
    pub draining: bool,
    /// New tasks may start now (not throttled, no failed circuit breaker).
    pub can_start: bool,
    /// Failed health checks are ignored this long after a task started running.
    pub grace_secs: f64,
    /// The service's tasks that are stopping: they still hold their share of the
    /// maximum (their CPU, memory and ports) until they are STOPPED.
    pub stopping: usize,
    pub now: f64,
}

/// Why the scheduler stops a task; each has ECS's `stoppedReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopWhy {
    /// More tasks than desired.
    ScaleIn,
    /// Its deployment was replaced.
    Replaced,
    /// Its container health checks failed.
    Unhealthy,
    /// The service was deleted.
    Draining,
}

/// The decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    /// Tasks to start in the primary deployment.
    pub start: u32,
    pub stop: Vec<(String, StopWhy)>,
}

pub(crate) fn decide(s: &Settings<'_>, tasks: &[TaskView]) -> Plan {
    let mut plan = Plan::default();
    if s.draining {
        plan.stop = tasks
            .iter()
            .map(|t| (t.id.clone(), StopWhy::Draining))
            .collect();
        return plan;
    }
    // Tasks whose health checks failed (after the grace period) are replaced first.
    let mut live: Vec<&TaskView> = Vec::new();
    for t in tasks {
        match t.state {
            TaskState::Running {
                unhealthy: true,
                started_at,
                ..
            } if s.now - started_at >= s.grace_secs => {
                plan.stop.push((t.id.clone(), StopWhy::Unhealthy));
            }
            _ => live.push(t),
        }
    }
    let (mut primary, old): (Vec<&TaskView>, Vec<&TaskView>) =
        live.into_iter().partition(|t| t.deployment == s.primary);

    // Over the desired count: pending tasks go first, then the newest.
    let desired = s.desired as usize;
    if primary.len() > desired {
        primary.sort_by(|a, b| {
            let running = |t: &TaskView| matches!(t.state, TaskState::Running { .. });
            running(a)
                .cmp(&running(b))
                .then(b.created_at.total_cmp(&a.created_at))
        });
        let excess = primary.len() - desired;
        for t in primary.drain(..excess) {
            plan.stop.push((t.id.clone(), StopWhy::ScaleIn));
        }
    }

    let max_total = (s.desired as u64 * s.maximum_percent as u64 / 100) as usize;
    let min_healthy = (s.desired as u64 * s.minimum_healthy_percent as u64).div_ceil(100) as usize;
    if s.can_start {
        // What this decision stops still counts: it frees its room once STOPPED.
        let want = desired - primary.len();
        let room = max_total.saturating_sub(tasks.len() + s.stopping);
        plan.start = want.min(room) as u32;
    }

    // Older deployments' tasks: those that count for nothing (pending, not healthy)
    // go at once; healthy ones while enough healthy tasks remain.
    let healthy = |t: &TaskView| matches!(t.state, TaskState::Running { healthy: true, .. });
    let mut healthy_now = primary.iter().chain(&old).filter(|t| healthy(t)).count();
    let mut old = old;
    old.sort_by(|a, b| {
        healthy(a)
            .cmp(&healthy(b))
            .then(b.created_at.total_cmp(&a.created_at))
    });
    for t in old {
        if !healthy(t) {
            plan.stop.push((t.id.clone(), StopWhy::Replaced));
        } else if healthy_now > min_healthy {
            healthy_now -= 1;
            plan.stop.push((t.id.clone(), StopWhy::Replaced));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, deployment: &str, at: f64, state: TaskState) -> TaskView {
        TaskView {
            id: id.into(),
            deployment: deployment.into(),
            created_at: at,
            state,
        }
    }

    const UP: TaskState = TaskState::Running {
        healthy: true,
        unhealthy: false,
        started_at: 0.0,
    };
    const STARTING: TaskState = TaskState::Running {
        healthy: false,
        unhealthy: false,
        started_at: 0.0,
    };
    const SICK: TaskState = TaskState::Running {
        healthy: false,
        unhealthy: true,
        started_at: 0.0,
    };

    fn settings(desired: u32) -> Settings<'static> {
        Settings {
            desired,
            maximum_percent: 200,
            minimum_healthy_percent: 100,
            primary: "new",
            draining: false,
            can_start: true,
            grace_secs: 0.0,
            stopping: 0,
            now: 100.0,
        }
    }

    fn stopped(p: &Plan) -> Vec<&str> {
        p.stop.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn a_new_service_starts_its_desired_count_and_a_full_one_nothing() {
        assert_eq!(decide(&settings(3), &[]).start, 3);
        let tasks = [
            task("a", "new", 1.0, UP),
            task("b", "new", 2.0, TaskState::Pending),
        ];
        let p = decide(&settings(2), &tasks);
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn scaling_in_stops_pending_tasks_first_then_the_newest() {
        let tasks = [
            task("old-run", "new", 1.0, UP),
            task("new-run", "new", 3.0, UP),
            task("pending", "new", 2.0, TaskState::Pending),
        ];
        let p = decide(&settings(1), &tasks);
        assert_eq!(stopped(&p), ["pending", "new-run"]);
        assert!(p.stop.iter().all(|(_, w)| *w == StopWhy::ScaleIn));
        assert_eq!(p.start, 0);
        assert_eq!(stopped(&decide(&settings(0), &tasks)).len(), 3);
    }

    #[test]
    fn a_rolling_update_keeps_the_healthy_minimum_and_the_maximum() {
        // 2 desired, 200% / 100%: both new tasks start at once, old ones stay.
        let old = [task("o1", "old", 1.0, UP), task("o2", "old", 2.0, UP)];
        let p = decide(&settings(2), &old);
        assert_eq!((p.start, p.stop.len()), (2, 0));
        // One new task healthy: one old task may go.
        let mut tasks = old.to_vec();
        tasks.push(task("n1", "new", 3.0, UP));
        tasks.push(task("n2", "new", 4.0, STARTING));
        let p = decide(&settings(2), &tasks);
        assert_eq!((p.start, stopped(&p)), (0, vec!["o2"]));
        // 150% maximum, 50% minimum of 2: one new task at a time, one old may go now.
        let mut s = settings(2);
        s.maximum_percent = 150;
        s.minimum_healthy_percent = 50;
        let p = decide(&s, &old);
        assert_eq!((p.start, stopped(&p)), (1, vec!["o2"]));
        // 100% maximum, 0% minimum: old tasks go first, nothing starts while they run.
        s.maximum_percent = 100;
        s.minimum_healthy_percent = 0;
        let p = decide(&s, &old);
        assert_eq!((p.start, stopped(&p).len()), (0, 2));
    }

    #[test]
    fn old_tasks_that_are_not_healthy_go_at_once() {
        let tasks = [
            task("o-pending", "old", 1.0, TaskState::Pending),
            task("o-starting", "old", 2.0, STARTING),
            task("o-up", "old", 3.0, UP),
        ];
        let p = decide(&settings(1), &tasks);
        assert_eq!(stopped(&p), ["o-starting", "o-pending"]);
        // They hold their room until stopped; then the new task starts.
        assert_eq!(p.start, 0);
        let mut s = settings(1);
        s.stopping = 2;
        let p = decide(&s, &tasks[2..]);
        assert_eq!((p.start, p.stop.len()), (0, 0));
        s.stopping = 0;
        assert_eq!(decide(&s, &tasks[2..]).start, 1);
    }

    #[test]
    fn unhealthy_tasks_are_replaced_after_the_grace_period() {
        let tasks = [task("sick", "new", 1.0, SICK), task("ok", "new", 2.0, UP)];
        let mut s = settings(2);
        s.grace_secs = 200.0;
        assert_eq!(decide(&s, &tasks), Plan::default());
        s.grace_secs = 30.0;
        let p = decide(&s, &tasks);
        assert_eq!(p.stop, vec![("sick".to_owned(), StopWhy::Unhealthy)]);
        assert_eq!(p.start, 1);
    }

    #[test]
    fn throttled_or_draining_services_start_nothing() {
        let mut s = settings(2);
        s.can_start = false;
        assert_eq!(decide(&s, &[]).start, 0);
        s.draining = true;
        let p = decide(&s, &[task("a", "new", 1.0, UP), task("b", "old", 1.0, UP)]);
        assert_eq!(stopped(&p), ["a", "b"]);
        assert!(p.stop.iter().all(|(_, w)| *w == StopWhy::Draining));
    }
}
