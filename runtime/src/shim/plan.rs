//! The shim's decisions, as a pure function of the task and its current state: which
//! containers may start (dependsOn), which dependency can never be met, which
//! container to signal or kill while stopping (reverse dependency order, each with its
//! own stopTimeout), and when the task is running or finished.
//!
//! `startTimeout` belongs to the container depended on, as in ECS ("containerA having
//! a dependency on containerB … If a startTimeout value is specified for containerB
//! and it doesn't reach the desired status within that time then containerA gives
//! up"): counted from when that container started, and absent (wait as long as it
//! takes) unless set.
//!
//! The supervisor calls [`decide`] after every event and carries out the actions; no
//! kernel object is touched here, so every rule is unit-tested.

use super::types::{
    Condition, ContainerState, ContainerStatus, HealthStatus, RunStatus, ShimContainer, ShimState,
};

/// Something the supervisor must do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Create and start container `i`.
    Start(usize),
    /// A dependency of container `i` can never be met: stop the task with `reason`.
    DependencyFailed { container: usize, reason: String },
    /// Send container `i` its stop signal.
    Signal(usize),
    /// Container `i` outlived its stop timeout: SIGKILL everything in it.
    Kill(usize),
    /// Container `i` never started and the task is stopping: record it as stopped.
    Abandon(usize),
    /// Every container has started: the task is running.
    MarkRunning,
    /// Every container has stopped: the task is stopped.
    Finish,
}

/// Inputs besides the task and its state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Now, epoch seconds.
    pub now: f64,
    /// A stop request's timeout override (0 = kill at once).
    pub stop_timeout_override: Option<u64>,
}

/// What to do now, and the earliest time a timeout may require another decision.
pub(crate) fn decide(
    containers: &[ShimContainer],
    state: &ShimState,
    clock: Clock,
) -> (Vec<Action>, Option<f64>) {
    let mut actions = Vec::new();
    let mut deadline: Option<f64> = None;
    let mut wake_at = |t: f64| deadline = Some(deadline.map_or(t, |d: f64| d.min(t)));

    match state.status {
        RunStatus::Starting | RunStatus::Running => {
            for (i, c) in containers.iter().enumerate() {
                if state.containers[i].status != ContainerStatus::Pending {
                    continue;
                }
                match dependencies(c, containers, state, clock.now) {
                    Readiness::Ready => actions.push(Action::Start(i)),
                    Readiness::Never(reason) => {
                        actions.push(Action::DependencyFailed {
                            container: i,
                            reason,
                        });
                    }
                    Readiness::Waiting(Some(give_up)) => wake_at(give_up),
                    Readiness::Waiting(None) => {}
                }
            }
            let all_started = state
                .containers
                .iter()
                .all(|s| s.status != ContainerStatus::Pending || s.started_at.is_some());
            if state.status == RunStatus::Starting
                && all_started
                && !actions.iter().any(|a| matches!(a, Action::Start(_)))
            {
                actions.push(Action::MarkRunning);
            }
        }
        RunStatus::Stopping => {
            for (i, s) in state.containers.iter().enumerate() {
                match s.status {
                    ContainerStatus::Pending => actions.push(Action::Abandon(i)),
                    ContainerStatus::Stopped => {}
                    ContainerStatus::Running => {
                        if has_running_dependents(i, containers, state) {
                            continue;
                        }
                        match s.stop_signalled_at {
                            None => {
                                if clock.stop_timeout_override == Some(0) {
                                    actions.push(Action::Kill(i));
                                } else {
                                    actions.push(Action::Signal(i));
                                    wake_at(clock.now + timeout(&containers[i], clock));
                                }
                            }
                            Some(at) => {
                                let kill_at = at + timeout(&containers[i], clock);
                                if clock.now >= kill_at {
                                    actions.push(Action::Kill(i));
                                } else {
                                    wake_at(kill_at);
                                }
                            }
                        }
                    }
                }
            }
            if state
                .containers
                .iter()
                .all(|s| s.status == ContainerStatus::Stopped)
            {
                actions.push(Action::Finish);
            }
        }
        RunStatus::Stopped => {}
    }
    (actions, deadline)
}

fn timeout(c: &ShimContainer, clock: Clock) -> f64 {
    clock.stop_timeout_override.unwrap_or(c.stop_timeout_secs) as f64
}

/// Whether a running container still has running containers that depend on it: those
/// are stopped first ("for container shutdown the order is reversed").
fn has_running_dependents(i: usize, containers: &[ShimContainer], state: &ShimState) -> bool {
    let name = &containers[i].name;
    containers.iter().enumerate().any(|(j, c)| {
        j != i
            && state.containers[j].status == ContainerStatus::Running
            && c.depends_on.iter().any(|d| &d.container == name)
    })
}

enum Readiness {
    Ready,
    /// Not yet; when the earliest startTimeout of what is awaited runs out, if any.
    Waiting(Option<f64>),
    Never(String),
}

fn dependencies(
    c: &ShimContainer,
    containers: &[ShimContainer],
    state: &ShimState,
    now: f64,
) -> Readiness {
    let mut give_up: Option<f64> = None;
    let mut waiting_on_something = false;
    for dep in &c.depends_on {
        let Some(j) = containers.iter().position(|o| o.name == dep.container) else {
            // Validation rejects unknown names at registration; be safe anyway.
            return Readiness::Never(format!(
                "DependencyError: container {} depends on unknown container {}",
                c.name, dep.container
            ));
        };
        let d: &ContainerState = &state.containers[j];
        let never = |why: String| {
            Readiness::Never(format!(
                "DependencyError: container {} depends on {} to {}, but {} {}",
                c.name,
                dep.container,
                dep.condition.as_str(),
                dep.container,
                why
            ))
        };
        let started = d.started_at.is_some();
        let met = match dep.condition {
            Condition::Start => match d.status {
                ContainerStatus::Running => true,
                ContainerStatus::Stopped if started => true,
                ContainerStatus::Stopped => return never(stopped_without_starting(d)),
                ContainerStatus::Pending => false,
            },
            Condition::Complete => match d.status {
                ContainerStatus::Stopped if started => true,
                ContainerStatus::Stopped => return never(stopped_without_starting(d)),
                _ => false,
            },
            Condition::Success => match d.status {
                ContainerStatus::Stopped if d.exit_code == Some(0) => true,
                ContainerStatus::Stopped if started => {
                    return never(match d.exit_code {
                        Some(code) => format!("exited with code {code}"),
                        None => "exited without an exit code".to_owned(),
                    });
                }
                ContainerStatus::Stopped => return never(stopped_without_starting(d)),
                _ => false,
            },
            Condition::Healthy => match (d.health, d.status) {
                (HealthStatus::Healthy, _) => true,
                (HealthStatus::Unhealthy, _) => return never("is UNHEALTHY".to_owned()),
                (_, ContainerStatus::Stopped) => {
                    return never("stopped before its health check passed".to_owned());
                }
                _ => false,
            },
        };
        if met {
            continue;
        }
        let timeout = containers[j].start_timeout_secs;
        if let (Some(started), true) = (d.started_at, timeout > 0) {
            let deadline = started + timeout as f64;
            if now >= deadline {
                return Readiness::Never(format!(
                    "DependencyError: container {} gave up waiting for {} to be {}: {} did not \
                     get there within its startTimeout of {timeout}s",
                    c.name,
                    dep.container,
                    dep.condition.as_str(),
                    dep.container
                ));
            }
            give_up = Some(give_up.map_or(deadline, |g: f64| g.min(deadline)));
        }
        // Not met yet: keep checking the others, one of which may be impossible.
        waiting_on_something = true;
    }
    if waiting_on_something {
        Readiness::Waiting(give_up)
    } else {
        Readiness::Ready
    }
}

fn stopped_without_starting(d: &ContainerState) -> String {
    match &d.reason {
        Some(r) => format!("failed to start ({r})"),
        None => "never started".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shim::types::{ShimDependency, StopCode, StopInfo};

    fn ctr(name: &str, essential: bool, deps: &[(&str, Condition)]) -> ShimContainer {
        ShimContainer {
            name: name.into(),
            runtime_id: format!("t-{name}"),
            bundle: "/b".into(),
            essential,
            depends_on: deps
                .iter()
                .map(|(n, c)| ShimDependency {
                    container: n.to_string(),
                    condition: *c,
                })
                .collect(),
            start_timeout_secs: 0,
            stop_timeout_secs: 10,
            stop_signal: 15,
            health_check: None,
            log_path: "/l".into(),
            cgroup_path: "/c".into(),
            init_process: false,
            terminal: false,
            interactive: false,
            restart_policy: None,
            seccomp_program: None,
        }
    }

    fn state(cs: &[ShimContainer], status: RunStatus) -> ShimState {
        ShimState {
            shim_pid: 1,
            seq: 0,
            status,
            stop: None,
            running_at: None,
            stopped_at: None,
            containers: cs
                .iter()
                .map(|c| ContainerState::pending(&c.name))
                .collect(),
        }
    }

    fn clock(now: f64) -> Clock {
        Clock {
            now,
            stop_timeout_override: None,
        }
    }

    fn run(s: &mut ContainerState, at: f64) {
        s.status = ContainerStatus::Running;
        s.started_at = Some(at);
    }

    fn exit(s: &mut ContainerState, code: i32) {
        s.status = ContainerStatus::Stopped;
        s.exit_code = Some(code);
        s.finished_at = Some(1.0);
    }

    #[test]
    fn containers_without_dependencies_start_at_once() {
        let cs = [ctr("a", true, &[]), ctr("b", false, &[])];
        let (a, _) = decide(&cs, &state(&cs, RunStatus::Starting), clock(0.0));
        assert_eq!(a, vec![Action::Start(0), Action::Start(1)]);
    }

    #[test]
    fn success_gates_the_app_until_the_init_container_exits_zero() {
        let cs = [
            ctr("init", false, &[]),
            ctr("app", true, &[("init", Condition::Success)]),
        ];
        let mut st = state(&cs, RunStatus::Starting);
        let (a, d) = decide(&cs, &st, clock(0.0));
        assert_eq!(a, vec![Action::Start(0)]);
        assert_eq!(d, None, "no startTimeout: no deadline");
        run(&mut st.containers[0], 0.1);
        let (a, _) = decide(&cs, &st, clock(0.2));
        assert!(a.is_empty(), "{a:?}");
        exit(&mut st.containers[0], 0);
        let (a, _) = decide(&cs, &st, clock(1.0));
        assert_eq!(a, vec![Action::Start(1)]);
        run(&mut st.containers[1], 1.1);
        let (a, _) = decide(&cs, &st, clock(1.2));
        assert_eq!(a, vec![Action::MarkRunning]);
    }

    #[test]
    fn a_failed_success_dependency_names_both_containers() {
        let cs = [
            ctr("init", false, &[]),
            ctr("app", true, &[("init", Condition::Success)]),
        ];
        let mut st = state(&cs, RunStatus::Starting);
        run(&mut st.containers[0], 0.1);
        exit(&mut st.containers[0], 3);
        let (a, _) = decide(&cs, &st, clock(1.0));
        match &a[..] {
            [
                Action::DependencyFailed {
                    container: 1,
                    reason,
                },
            ] => {
                assert!(
                    reason.contains("app") && reason.contains("init"),
                    "{reason}"
                );
                assert!(
                    reason.contains("SUCCESS") && reason.contains("code 3"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn healthy_waits_for_the_health_check_and_fails_on_unhealthy() {
        let cs = [
            ctr("db", true, &[]),
            ctr("app", true, &[("db", Condition::Healthy)]),
        ];
        let mut st = state(&cs, RunStatus::Starting);
        run(&mut st.containers[0], 0.0);
        assert!(decide(&cs, &st, clock(1.0)).0.is_empty());
        st.containers[0].health = HealthStatus::Healthy;
        assert_eq!(decide(&cs, &st, clock(2.0)).0, vec![Action::Start(1)]);
        st.containers[0].health = HealthStatus::Unhealthy;
        let (a, _) = decide(&cs, &st, clock(2.0));
        assert!(
            matches!(&a[..], [Action::DependencyFailed { container: 1, reason }] if reason.contains("UNHEALTHY"))
        );
    }

    #[test]
    fn the_dependency_start_timeout_counts_from_its_start() {
        let mut cs = [
            ctr("db", true, &[]),
            ctr("app", true, &[("db", Condition::Healthy)]),
        ];
        // The app's own startTimeout is about containers depending on the app.
        cs[1].start_timeout_secs = 1;
        let mut st = state(&cs, RunStatus::Starting);
        run(&mut st.containers[0], 5.0);
        // Without a startTimeout on db, the app waits as long as it takes.
        assert_eq!(decide(&cs, &st, clock(10_000.0)), (vec![], None));
        cs[0].start_timeout_secs = 30;
        assert_eq!(decide(&cs, &st, clock(20.0)), (vec![], Some(35.0)));
        let (a, _) = decide(&cs, &st, clock(35.0));
        match &a[..] {
            [
                Action::DependencyFailed {
                    container: 1,
                    reason,
                },
            ] => assert_eq!(
                reason,
                "DependencyError: container app gave up waiting for db to be HEALTHY: db did \
                 not get there within its startTimeout of 30s"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_start_timeout_waits_for_the_dependency_to_start() {
        // init waits on pre (SUCCESS); app waits on init (SUCCESS, init has 5 s).
        let mut cs = [
            ctr("pre", false, &[]),
            ctr("init", false, &[("pre", Condition::Success)]),
            ctr("app", true, &[("init", Condition::Success)]),
        ];
        cs[1].start_timeout_secs = 5;
        let mut st = state(&cs, RunStatus::Starting);
        run(&mut st.containers[0], 0.0);
        assert_eq!(decide(&cs, &st, clock(100.0)), (vec![], None));
        exit(&mut st.containers[0], 0);
        run(&mut st.containers[1], 100.0);
        assert_eq!(decide(&cs, &st, clock(101.0)), (vec![], Some(105.0)));
        exit(&mut st.containers[1], 0);
        assert_eq!(decide(&cs, &st, clock(106.0)).0, vec![Action::Start(2)]);
    }

    #[test]
    fn stopping_goes_in_reverse_dependency_order_with_each_timeout() {
        // app depends on db; sidecar depends on app. Stop order: sidecar, app, db.
        let mut cs = [
            ctr("db", true, &[]),
            ctr("app", true, &[("db", Condition::Start)]),
            ctr("sidecar", false, &[("app", Condition::Start)]),
        ];
        cs[2].stop_timeout_secs = 2;
        let mut st = state(&cs, RunStatus::Stopping);
        st.stop = Some(StopInfo {
            code: StopCode::UserInitiated,
            reason: "x".into(),
            at: 0.0,
            container: None,
        });
        for s in st.containers.iter_mut() {
            run(s, 0.0);
        }
        let (a, d) = decide(&cs, &st, clock(10.0));
        assert_eq!(a, vec![Action::Signal(2)]);
        assert_eq!(d, Some(12.0));
        st.containers[2].stop_signalled_at = Some(10.0);
        assert_eq!(decide(&cs, &st, clock(11.0)).0, vec![]);
        assert_eq!(decide(&cs, &st, clock(12.0)).0, vec![Action::Kill(2)]);
        exit(&mut st.containers[2], 137);
        assert_eq!(decide(&cs, &st, clock(12.5)).0, vec![Action::Signal(1)]);
        st.containers[1].stop_signalled_at = Some(12.5);
        exit(&mut st.containers[1], 143);
        assert_eq!(decide(&cs, &st, clock(13.0)).0, vec![Action::Signal(0)]);
        exit(&mut st.containers[0], 0);
        assert_eq!(decide(&cs, &st, clock(14.0)).0, vec![Action::Finish]);
    }

    #[test]
    fn pending_containers_are_abandoned_when_stopping_and_zero_timeout_kills() {
        let cs = [
            ctr("a", true, &[]),
            ctr("b", true, &[("a", Condition::Success)]),
        ];
        let mut st = state(&cs, RunStatus::Stopping);
        run(&mut st.containers[0], 0.0);
        let c = Clock {
            now: 1.0,
            stop_timeout_override: Some(0),
        };
        assert_eq!(
            decide(&cs, &st, c).0,
            vec![Action::Kill(0), Action::Abandon(1)]
        );
    }
}
