//! Health checks: each container's `healthCheck` command run inside it on its
//! interval (as a libcontainer tenant, like `berth exec`), its output collected from a
//! pipe, its result counted against the retries after the start period.

use super::{HEALTH_OUTPUT_MAX, PidOwner, Pipe, PipeSource, Supervisor, now};
use crate::shim::types::{ContainerStatus, HealthStatus, RunStatus};
use crate::shim::{container, footprint, sys};

/// One container's health checking.
#[derive(Default)]
pub(super) struct Health {
    pub(super) next_due: Option<f64>,
    pub(super) failures: u32,
    pub(super) in_flight: Option<HealthRun>,
}

/// A health check command that is running.
pub(super) struct HealthRun {
    pub(super) pid: u32,
    pub(super) deadline: f64,
    pub(super) output: Vec<u8>,
    pub(super) timed_out: bool,
}

impl Supervisor {
    pub(super) fn health_deadline(&self) -> Option<f64> {
        self.health
            .iter()
            .filter_map(|h| match &h.in_flight {
                Some(run) => Some(run.deadline),
                None => h.next_due,
            })
            .reduce(f64::min)
    }

    pub(super) fn run_health_checks(&mut self) {
        let t = now();
        for i in 0..self.task.containers.len() {
            if self.state.containers[i].status != ContainerStatus::Running
                || self.state.status == RunStatus::Stopping
            {
                continue;
            }
            let Some(check) = self.task.containers[i].health_check.clone() else {
                continue;
            };
            if let Some(run) = &mut self.health[i].in_flight {
                if !run.timed_out && t >= run.deadline {
                    run.timed_out = true;
                    sys::send_signal(run.pid, libc::SIGKILL);
                }
                continue;
            }
            if self.health[i].next_due.is_some_and(|due| t >= due) {
                let c = self.task.containers[i].clone();
                let started = sys::pipe().map_err(|e| e.to_string()).and_then(|(r, w)| {
                    let stdio = container::ExecStdio::Pipes {
                        stdout: w,
                        stderr: None,
                        stdin: None,
                    };
                    let started =
                        container::exec(&c, &self.task.container_state_root, &check.argv, stdio)?;
                    Ok((r, started.pid))
                });
                match started {
                    Ok((r, pid)) => {
                        let _ = sys::set_nonblocking(&r);
                        self.pipes.push(Pipe {
                            container: i,
                            source: PipeSource::Health,
                            fd: r,
                        });
                        self.pids.insert(pid as i32, PidOwner::HealthCheck(i));
                        self.health[i].in_flight = Some(HealthRun {
                            pid,
                            deadline: t + check.timeout_secs as f64,
                            output: Vec::new(),
                            timed_out: false,
                        });
                        self.health[i].next_due = None;
                        self.trim_due = Some(t + footprint::SETTLE.as_secs_f64());
                    }
                    Err(msg) => {
                        self.health_result(i, false, format!("health check could not run: {msg}"));
                        self.health[i].next_due = Some(t + check.interval_secs as f64);
                    }
                }
            }
        }
    }

    pub(super) fn health_check_exited(&mut self, i: usize, reaped: sys::Reaped) {
        let Some(run) = self.health[i].in_flight.take() else {
            return;
        };
        // The exec's output pipe may still hold data: collect it now.
        self.drain_pipes(|p| p.container == i && p.source == PipeSource::Health, true);
        let mut output = String::from_utf8_lossy(&run.output).into_owned();
        let ok = !run.timed_out && reaped.code == 0;
        if run.timed_out {
            output = format!(
                "health check timed out after {}s",
                self.task.containers[i]
                    .health_check
                    .as_ref()
                    .map_or(0, |h| h.timeout_secs)
            );
        }
        self.health_result(i, ok, output);
        if let Some(h) = &self.task.containers[i].health_check {
            self.health[i].next_due = Some(now() + h.interval_secs as f64);
        }
    }

    pub(super) fn health_result(&mut self, i: usize, ok: bool, output: String) {
        let Some(check) = self.task.containers[i].health_check.clone() else {
            return;
        };
        let t = now();
        let s = &mut self.state.containers[i];
        let in_start_period = s
            .started_at
            .is_some_and(|st| t < st + check.start_period_secs as f64);
        let new = if ok {
            self.health[i].failures = 0;
            HealthStatus::Healthy
        } else if in_start_period && s.health != HealthStatus::Healthy {
            // Failures during the start period do not count (ECS/Docker semantics).
            s.health
        } else {
            self.health[i].failures += 1;
            if self.health[i].failures >= check.retries {
                HealthStatus::Unhealthy
            } else {
                s.health
            }
        };
        let mut out = output;
        out.truncate(HEALTH_OUTPUT_MAX);
        s.health_output = Some(out);
        if new != s.health {
            tracing::info!(container = %s.name, health = ?new, "health changed");
            s.health = new;
            s.health_since = Some(t);
        }
        self.dirty = true;
    }
}
