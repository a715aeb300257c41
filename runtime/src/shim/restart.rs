//! ECS's container restart policy (`restartPolicy`): an exited container is started
//! again in place — same task, same writable layer, same network — instead of its exit
//! counting. As the ECS agent decides it: only while the task is not stopping, not for
//! an ignored exit code, and only once the container has run for the attempt period
//! since its start or its last restart (so a container that keeps failing early is not
//! restarted in a loop: its exit counts, and an essential one stops the task).

use super::types::{ContainerState, RunStatus, ShimRestartPolicy};

/// ECS's default `restartAttemptPeriod`, in seconds.
pub const DEFAULT_ATTEMPT_PERIOD_SECS: u64 = 300;

/// Whether a container that just exited with `code` at `now` is to be restarted.
pub(crate) fn restart_due(
    policy: Option<&ShimRestartPolicy>,
    container: &ContainerState,
    task: RunStatus,
    code: i32,
    now: f64,
) -> bool {
    let Some(policy) = policy else {
        return false;
    };
    if !matches!(task, RunStatus::Starting | RunStatus::Running) {
        return false;
    }
    if policy.ignored_exit_codes.contains(&code) {
        return false;
    }
    let Some(since) = container.last_restart_at.or(container.started_at) else {
        return false;
    };
    now - since >= policy.attempt_period_secs as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ignored: &[i32], period: u64) -> ShimRestartPolicy {
        ShimRestartPolicy {
            ignored_exit_codes: ignored.to_vec(),
            attempt_period_secs: period,
        }
    }

    fn started(at: f64) -> ContainerState {
        ContainerState {
            started_at: Some(at),
            ..ContainerState::pending("app")
        }
    }

    #[test]
    fn a_container_that_ran_for_the_period_is_restarted() {
        let p = policy(&[], 60);
        assert!(restart_due(
            Some(&p),
            &started(100.0),
            RunStatus::Running,
            1,
            160.0
        ));
        assert!(restart_due(
            Some(&p),
            &started(100.0),
            RunStatus::Starting,
            0,
            500.0
        ));
    }

    #[test]
    fn an_early_exit_an_ignored_code_or_a_stopping_task_is_not() {
        let p = policy(&[0, 143], 60);
        let c = started(100.0);
        assert!(!restart_due(Some(&p), &c, RunStatus::Running, 1, 159.9));
        assert!(!restart_due(Some(&p), &c, RunStatus::Running, 0, 1000.0));
        assert!(!restart_due(Some(&p), &c, RunStatus::Running, 143, 1000.0));
        assert!(!restart_due(Some(&p), &c, RunStatus::Stopping, 1, 1000.0));
        assert!(!restart_due(None, &c, RunStatus::Running, 1, 1000.0));
        assert!(!restart_due(
            Some(&p),
            &ContainerState::pending("app"),
            RunStatus::Running,
            1,
            1000.0
        ));
    }

    #[test]
    fn the_period_counts_from_the_last_restart() {
        let p = policy(&[], 60);
        let c = ContainerState {
            last_restart_at: Some(500.0),
            restart_count: 1,
            ..started(100.0)
        };
        assert!(!restart_due(Some(&p), &c, RunStatus::Running, 1, 540.0));
        assert!(restart_due(Some(&p), &c, RunStatus::Running, 1, 560.0));
    }
}
