//! The shim's event loop: one thread, one `poll`, no async runtime.
//!
//! Sources: a signalfd (SIGCHLD to reap, SIGTERM/SIGINT/SIGHUP to stop the task), the
//! control socket and its clients, every container's stdout/stderr pipe and every
//! health check's output pipe. Timers (stop timeouts, dependency timeouts, health
//! checks) become the poll timeout. After each event the supervisor asks
//! [`plan::decide`] what to do, does it, and persists and broadcasts the state.
//! `berth exec` sessions: [`exec`]; health checks: [`health`].

mod exec;
mod health;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::Utc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;

use super::control::ControlServer;
use super::logs::{LogWriter, Stream};
use super::namespaces::TaskNamespaces;
use super::plan::{self, Action, Clock};
use super::types::{
    ContainerState, ContainerStatus, ControlReply, ControlRequest, HealthStatus, RunStatus,
    ShimState, ShimTask, StopCode, StopInfo,
};
use super::{ShimError, container, footprint, restart, sys};
use crate::cgroup::BerthCgroups;

/// ECS's OOM reason.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";
/// ECS's reason when an essential container exits.
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";
/// Health-check output kept per check.
const HEALTH_OUTPUT_MAX: usize = 4096;

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PidOwner {
    Container(usize),
    HealthCheck(usize),
    /// A `berth exec` process, for the control client with this id.
    Exec(u64),
}

struct Pipe {
    container: usize,
    source: PipeSource,
    fd: OwnedFd,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PipeSource {
    Log(Stream),
    Health,
}

use health::Health;

pub(crate) struct Supervisor {
    task: ShimTask,
    dir: PathBuf,
    cgroups: BerthCgroups,
    state: ShimState,
    stop_timeout_override: Option<u64>,
    logs: Vec<Option<LogWriter>>,
    pipes: Vec<Pipe>,
    pids: HashMap<i32, PidOwner>,
    health: Vec<Health>,
    killed: Vec<bool>,
    control: ControlServer,
    signals: SignalFd,
    task_oom_seen: u64,
    namespaces: TaskNamespaces,
    dirty: bool,
    /// When to drop the pages that work such as a container start faulted in
    /// ([`footprint`]): a moment after the last such work.
    trim_due: Option<f64>,
    /// The task's host-port holds (see `shim::run`): released before the final report,
    /// so that the ports are free once the daemon reads it.
    holds: Vec<OwnedFd>,
    /// Per container, the write end of an `interactive` container's stdin, closed when
    /// the container exits.
    stdin_holds: Vec<Option<OwnedFd>>,
}

impl Supervisor {
    pub(crate) fn new(
        task: ShimTask,
        dir: &Path,
        cgroups: BerthCgroups,
        control: ControlServer,
        signals: SignalFd,
        holds: Vec<OwnedFd>,
    ) -> Supervisor {
        let n = task.containers.len();
        let state = ShimState {
            shim_pid: std::process::id(),
            seq: 0,
            status: RunStatus::Starting,
            stop: None,
            running_at: None,
            stopped_at: None,
            containers: task
                .containers
                .iter()
                .map(|c| ContainerState::pending(&c.name))
                .collect(),
        };
        let task_oom_seen = cgroups.oom_kills(&cgroups.task_path(&task.task_id));
        let namespaces = TaskNamespaces::new(&task.shared_namespaces);
        Supervisor {
            task,
            dir: dir.to_owned(),
            cgroups,
            state,
            stop_timeout_override: None,
            logs: (0..n).map(|_| None).collect(),
            pipes: Vec::new(),
            pids: HashMap::new(),
            health: (0..n).map(|_| Health::default()).collect(),
            killed: vec![false; n],
            control,
            signals,
            task_oom_seen,
            namespaces,
            dirty: true,
            trim_due: None,
            holds,
            stdin_holds: (0..n).map(|_| None).collect(),
        }
    }

    /// Runs the task to completion.
    pub(crate) fn run(mut self) -> Result<ShimState, ShimError> {
        // The daemon's watch may have come in one read with its `begin`.
        for ci in 0..self.control.clients.len() {
            for req in self.control.clients[ci].buffered_requests() {
                self.handle_request(ci, req);
            }
        }
        loop {
            // Act until nothing changes.
            let deadline = loop {
                let clock = Clock {
                    now: now(),
                    stop_timeout_override: self.stop_timeout_override,
                };
                let (actions, deadline) = plan::decide(&self.task.containers, &self.state, clock);
                let mut changed = false;
                for a in actions {
                    changed |= self.apply(a);
                }
                if !changed {
                    break deadline;
                }
            };
            self.publish()?;
            if self.state.status == RunStatus::Stopped {
                break;
            }
            let wake = [deadline, self.health_deadline()]
                .into_iter()
                .flatten()
                .reduce(f64::min);
            self.wait_for_events(wake)?;
            self.run_health_checks();
        }
        self.finish()
    }

    fn apply(&mut self, action: Action) -> bool {
        match action {
            Action::Start(i) => {
                self.start_container(i);
                true
            }
            Action::DependencyFailed { container, reason } => {
                self.state.containers[container].reason = Some(reason.clone());
                let code = if self.state.running_at.is_none() {
                    StopCode::TaskFailedToStart
                } else {
                    StopCode::EssentialContainerExited
                };
                let name = self.task.containers[container].name.clone();
                self.begin_stop(code, reason, Some(name));
                true
            }
            Action::Signal(i) => {
                let c = &self.task.containers[i];
                if let Some(pid) = self.state.containers[i].pid {
                    tracing::info!(container = %c.name, signal = c.stop_signal, "stopping container");
                    sys::send_signal(pid, c.stop_signal);
                }
                self.state.containers[i].stop_signalled_at = Some(now());
                self.dirty = true;
                true
            }
            Action::Kill(i) => {
                if self.killed[i] {
                    return false;
                }
                self.killed[i] = true;
                let c = &self.task.containers[i];
                tracing::info!(container = %c.name, "stop timeout passed, killing container");
                container::kill_all(c, &self.task.container_state_root);
                if let Some(pid) = self.state.containers[i].pid {
                    sys::send_signal(pid, libc::SIGKILL);
                }
                if self.state.containers[i].stop_signalled_at.is_none() {
                    self.state.containers[i].stop_signalled_at = Some(now());
                }
                self.dirty = true;
                true
            }
            Action::Abandon(i) => {
                let s = &mut self.state.containers[i];
                s.status = ContainerStatus::Stopped;
                s.finished_at = Some(now());
                self.dirty = true;
                true
            }
            Action::MarkRunning => {
                self.state.status = RunStatus::Running;
                self.state.running_at = Some(now());
                self.dirty = true;
                true
            }
            Action::Finish => {
                self.state.status = RunStatus::Stopped;
                self.state.stopped_at = Some(now());
                self.dirty = true;
                true
            }
        }
    }

    fn begin_stop(&mut self, code: StopCode, reason: String, container: Option<String>) {
        if matches!(self.state.status, RunStatus::Starting | RunStatus::Running) {
            tracing::info!(code = code.as_str(), %reason, "stopping task");
            self.state.status = RunStatus::Stopping;
            self.state.stop = Some(StopInfo {
                code,
                reason,
                at: now(),
                container,
            });
            self.dirty = true;
        }
    }

    fn start_container(&mut self, i: usize) {
        let c = self.task.containers[i].clone();
        let result = (|| -> Result<u32, String> {
            self.namespaces.join(&c.bundle)?;
            let log = LogWriter::open(&c.log_path, self.task.log)
                .map_err(|e| format!("opening log {}: {e}", c.log_path.display()))?;
            self.logs[i] = Some(log);
            let (out_r, out_w) = sys::pipe().map_err(|e| e.to_string())?;
            let (err_r, err_w) = sys::pipe().map_err(|e| e.to_string())?;
            let _ = sys::set_nonblocking(&out_r);
            let _ = sys::set_nonblocking(&err_r);
            let t0 = std::time::Instant::now();
            let started =
                container::create_and_start(&c, &self.task.container_state_root, out_w, err_w);
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(container = %c.name, ms, "libcontainer create and start");
            for (fd, stream) in [(out_r, Stream::Stdout), (err_r, Stream::Stderr)] {
                self.pipes.push(Pipe {
                    container: i,
                    source: PipeSource::Log(stream),
                    fd,
                });
            }
            let started = started.map(|s| {
                self.stdin_holds[i] = s.stdin;
                if let Some(fd) = s.console {
                    let _ = sys::set_nonblocking(&fd);
                    self.pipes.push(Pipe {
                        container: i,
                        source: PipeSource::Log(Stream::Stdout),
                        fd,
                    });
                }
                s.pid
            });
            started.map_err(|msg| {
                // The runtime's own account of what failed inside the new container is
                // written to the container's stderr before the workload ever runs.
                self.drain_pipes(
                    |p| p.container == i && p.source != PipeSource::Health,
                    false,
                );
                match runtime_error_detail(&c.log_path) {
                    Some(detail) if !msg.contains(&detail) => format!("{msg}: {detail}"),
                    _ => msg,
                }
            })
        })();
        let t = now();
        self.trim_due = Some(t + footprint::SETTLE.as_secs_f64());
        let s = &mut self.state.containers[i];
        match result {
            Ok(pid) => {
                tracing::info!(container = %c.name, pid, "container started");
                s.status = ContainerStatus::Running;
                s.pid = Some(pid);
                s.started_at = Some(t);
                self.pids.insert(pid as i32, PidOwner::Container(i));
                if let Some(h) = &c.health_check {
                    self.health[i] = Health {
                        next_due: Some(t + h.interval_secs as f64),
                        ..Default::default()
                    };
                }
            }
            Err(msg) => {
                let reason = format!("CannotStartContainerError: {msg}");
                tracing::warn!(container = %c.name, %reason, "container failed to start");
                s.status = ContainerStatus::Stopped;
                s.finished_at = Some(t);
                s.reason = Some(reason.clone());
                container::delete(&c, &self.task.container_state_root);
                if c.essential {
                    let code = if self.state.running_at.is_none() {
                        StopCode::TaskFailedToStart
                    } else {
                        StopCode::EssentialContainerExited
                    };
                    self.begin_stop(code, reason, Some(c.name.clone()));
                }
            }
        }
        self.dirty = true;
    }

    fn container_exited(&mut self, i: usize, reaped: sys::Reaped) {
        let c = self.task.containers[i].clone();
        let cg_oom = self.cgroups.oom_kills(&c.cgroup_path);
        let task_oom = self
            .cgroups
            .oom_kills(&self.cgroups.task_path(&self.task.task_id));
        let task_oom_new = task_oom > self.task_oom_seen;
        self.task_oom_seen = task_oom;
        let oom = cg_oom > 0 || (task_oom_new && reaped.signal == Some(libc::SIGKILL));
        let t = now();
        if restart::restart_due(
            c.restart_policy.as_ref(),
            &self.state.containers[i],
            self.state.status,
            reaped.code,
            t,
        ) {
            self.restart_container(i, reaped.code, t);
            return;
        }
        // A container whose exit ends the task goes with the task's cgroup in `finish`.
        // Deleting it through libcontainer first would build a cgroup manager (a
        // mountinfo parse per controller) and re-read its spec, ~2 ms on the path to
        // STOPPED, for cgroups that are removed a moment later anyway.
        if !(c.essential || self.state.status == RunStatus::Stopping) {
            let t0 = std::time::Instant::now();
            container::delete(&c, &self.task.container_state_root);
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(container = %c.name, ms, "libcontainer delete");
        }
        self.stdin_holds[i] = None;
        let s = &mut self.state.containers[i];
        s.status = ContainerStatus::Stopped;
        s.exit_code = Some(reaped.code);
        s.finished_at = Some(t);
        s.oom_killed = oom;
        if oom {
            s.reason = Some(OOM_REASON.to_owned());
        }
        tracing::info!(container = %c.name, exit_code = reaped.code, oom, "container exited");
        if let Some(run) = self.health[i].in_flight.take() {
            sys::send_signal(run.pid, libc::SIGKILL);
        }
        self.health[i].next_due = None;
        if c.essential {
            self.begin_stop(
                StopCode::EssentialContainerExited,
                ESSENTIAL_EXITED.to_owned(),
                Some(c.name.clone()),
            );
        }
        self.dirty = true;
    }

    /// Starts container `i` again in place after it exited with `code` (its restart
    /// policy said so): same bundle, writable layer, log and namespaces.
    fn restart_container(&mut self, i: usize, code: i32, t: f64) {
        let name = self.task.containers[i].name.clone();
        if let Some(run) = self.health[i].in_flight.take() {
            sys::send_signal(run.pid, libc::SIGKILL);
        }
        self.stdin_holds[i] = None;
        let s = &mut self.state.containers[i];
        s.restart_count += 1;
        s.last_restart_at = Some(t);
        s.pid = None;
        s.health = HealthStatus::Unknown;
        tracing::info!(container = %name, exit_code = code, restarts = s.restart_count, "restarting container (restartPolicy)");
        // (`create_and_start` first removes what is left of the exited container.)
        self.start_container(i);
        self.dirty = true;
    }

    fn wait_for_events(&mut self, wake: Option<f64>) -> Result<(), ShimError> {
        if self.trim_due.is_some_and(|due| now() >= due) {
            // Right before sleeping, so little runs between the trim and the next
            // event: an idle shim keeps only its waiting path resident.
            self.trim_due = None;
            footprint::trim();
        }
        let wake = [wake, self.trim_due].into_iter().flatten().reduce(f64::min);
        let timeout = match wake {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = ((t - now()) * 1000.0).ceil().clamp(0.0, 60_000.0) as u16;
                PollTimeout::from(ms)
            }
        };
        // Index layout: 0 = signalfd, 1 = listener, then clients, then pipes.
        let nclients = self.control.clients.len();
        let ready: Vec<PollFlags> = {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2 + nclients + self.pipes.len());
            fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(self.control.fd(), PollFlags::POLLIN));
            for c in &self.control.clients {
                let mut flags = PollFlags::POLLIN;
                if c.wants_write() {
                    flags |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.fd(), flags));
            }
            for p in &self.pipes {
                fds.push(PollFd::new(borrow(&p.fd), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return Ok(()),
                Err(e) => return Err(ShimError::Poll(e)),
            }
            fds.iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect()
        };
        let any = |f: PollFlags| !f.is_empty();

        if any(ready[1]) {
            self.control.accept();
        }
        for ci in 0..nclients {
            let r = ready[2 + ci];
            if r.contains(PollFlags::POLLOUT) {
                self.control.clients[ci].flush();
            }
            if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                let requests = self.control.clients[ci].read_requests();
                for req in requests {
                    self.handle_request(ci, req);
                }
            }
        }
        let readable: Vec<usize> = (0..self.pipes.len())
            .filter(|pi| any(ready[2 + nclients + pi]))
            .collect();
        if !readable.is_empty() {
            let fds: Vec<i32> = readable
                .iter()
                .map(|&pi| self.pipes[pi].fd.as_raw_fd())
                .collect();
            self.drain_pipes(|p| fds.contains(&p.fd.as_raw_fd()), false);
        }
        if any(ready[0]) {
            self.handle_signals();
        }
        self.end_abandoned_execs();
        self.control.prune();
        Ok(())
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGCHLD => {}
                sig => {
                    tracing::info!(signal = sig, "shim received a stop signal");
                    self.begin_stop(
                        StopCode::UserInitiated,
                        format!("berth shim received signal {sig}"),
                        None,
                    );
                }
            }
        }
        for reaped in sys::reap_all() {
            match self.pids.remove(&reaped.pid) {
                Some(PidOwner::Container(i)) => {
                    // Collect the container's last output before recording the exit.
                    self.drain_pipes(
                        |p| p.container == i && p.source != PipeSource::Health,
                        false,
                    );
                    self.container_exited(i, reaped);
                }
                Some(PidOwner::HealthCheck(i)) => self.health_check_exited(i, reaped),
                Some(PidOwner::Exec(client)) => self.exec_exited(client, reaped),
                None => {} // an orphan reparented to the shim
            }
        }
    }

    fn handle_request(&mut self, client: usize, req: Result<ControlRequest, String>) {
        let reply = match req {
            Err(message) => ControlReply::Error { message },
            Ok(ControlRequest::Begin { .. }) => ControlReply::Error {
                message: "the task has already begun".into(),
            },
            Ok(ControlRequest::State) => ControlReply::State(self.state.clone()),
            Ok(ControlRequest::Watch) => {
                self.control.clients[client].watching = true;
                ControlReply::State(self.state.clone())
            }
            Ok(ControlRequest::Stop {
                reason,
                timeout_secs,
            }) => {
                if let Some(t) = timeout_secs {
                    self.stop_timeout_override =
                        Some(self.stop_timeout_override.map_or(t, |o| o.min(t)));
                }
                self.begin_stop(StopCode::UserInitiated, reason, None);
                ControlReply::Ok
            }
            Ok(ControlRequest::Exec {
                container,
                argv,
                io,
            }) => return self.start_exec(client, &container, &argv, io),
        };
        self.control.clients[client].send(&reply);
    }

    /// Reads everything available from the selected pipes. A pipe at EOF is closed
    /// (its container's processes are gone). With `blocking_ok`, EOF is awaited for
    /// pipes whose writer has exited (health checks), which is immediate.
    fn drain_pipes(&mut self, select: impl Fn(&Pipe) -> bool, _blocking_ok: bool) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut closed = Vec::new();
        for (pi, p) in self.pipes.iter().enumerate().filter(|(_, p)| select(p)) {
            loop {
                match nix::unistd::read(p.fd.as_raw_fd(), &mut buf) {
                    Ok(0) => {
                        closed.push(pi);
                        break;
                    }
                    Ok(n) => match p.source {
                        PipeSource::Log(stream) => {
                            if let Some(log) = &mut self.logs[p.container]
                                && let Err(e) = log.write(stream, &buf[..n], Utc::now())
                            {
                                tracing::warn!(error = %e, "writing container log");
                            }
                        }
                        PipeSource::Health => {
                            if let Some(run) = &mut self.health[p.container].in_flight {
                                let room = HEALTH_OUTPUT_MAX.saturating_sub(run.output.len());
                                run.output.extend_from_slice(&buf[..n.min(room)]);
                            }
                        }
                    },
                    Err(nix::errno::Errno::EINTR) => continue,
                    // A pty master reads EIO once every slave end is closed: its
                    // end of file.
                    Err(nix::errno::Errno::EIO) => {
                        closed.push(pi);
                        break;
                    }
                    Err(_) => break, // EAGAIN: nothing more now
                }
            }
        }
        for pi in closed.into_iter().rev() {
            let p = self.pipes.remove(pi);
            if let PipeSource::Log(stream) = p.source
                && let Some(log) = &mut self.logs[p.container]
            {
                let _ = log.flush_partial(stream, Utc::now());
            }
        }
    }

    /// Writes `state.json` and tells watchers, when something changed.
    fn publish(&mut self) -> Result<(), ShimError> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        self.state.seq += 1;
        write_state(&self.dir, &self.state)?;
        let reply = ControlReply::State(self.state.clone());
        for c in self.control.clients.iter_mut().filter(|c| c.watching) {
            c.send(&reply);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<ShimState, ShimError> {
        // Drain what is left of the logs (processes that inherited the pipes may keep
        // them open; they are killed with the task cgroup below).
        self.drain_pipes(|_| true, false);
        let t0 = std::time::Instant::now();
        let names: Vec<&str> = self
            .task
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if let Err(e) = self.cgroups.remove_task_and(&self.task.task_id, &names) {
            tracing::warn!(error = %e, "removing task cgroup");
        }
        self.namespaces.release();
        // The containers' libcontainer state (a directory each, on the run root's disk)
        // stays: the daemon removes it after STOPPED, at low priority, and a starting
        // daemon's sweep removes what a dead one left. Removing it here put ext4 unlinks
        // between the last exit and the final report.
        tracing::debug!(ms = t0.elapsed().as_secs_f64() * 1e3, "task cgroup removed");
        // The final report tells the daemon the task holds nothing any more: it releases
        // the task's ports for others on reading it.
        self.holds.clear();
        self.dirty = true;
        self.publish()?;
        for c in self.control.clients.iter_mut() {
            c.drain_before_exit();
        }
        Ok(self.state)
    }
}

/// The most specific error libcontainer logged inside a container that failed to
/// start: the last `ERROR` record's `err=` value in the container's log.
fn runtime_error_detail(log: &Path) -> Option<String> {
    let (entries, _) = super::logs::read_log(log, &Default::default()).ok()?;
    entries
        .iter()
        .rev()
        .find(|e| e.log.contains(" ERROR "))
        .map(|e| {
            let line = e.log.trim();
            match line.split_once("err=") {
                Some((_, detail)) => detail.to_owned(),
                None => line.rsplit_once(": ").map_or(line, |(_, m)| m).to_owned(),
            }
        })
}

fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    fd.as_fd()
}

/// Atomically replaces `state.json` in `dir`.
pub(crate) fn write_state(dir: &Path, state: &ShimState) -> Result<(), ShimError> {
    let tmp = dir.join("state.json.tmp");
    let path = dir.join("state.json");
    let bytes =
        serde_json::to_vec_pretty(state).map_err(|e| ShimError::State(io::Error::other(e)))?;
    std::fs::write(&tmp, bytes).map_err(ShimError::State)?;
    std::fs::rename(&tmp, &path).map_err(ShimError::State)?;
    Ok(())
}
