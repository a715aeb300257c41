//! `berth exec`: a process run inside a running container on a control client's
//! request, with its stdio on descriptors that client sent, or on a pseudo-terminal
//! whose master goes back to the client (the daemon reads and writes the other ends
//! itself, so nothing passes through the shim and a slow reader only slows the
//! process). The shim is its parent: it reaps it and tells the client the
//! exit code. A client that goes away takes its processes with it (SIGKILL), so an
//! interrupted `berth exec` leaves nothing running.

use std::os::fd::OwnedFd;

use super::{PidOwner, Supervisor};
use crate::shim::container::{self, ExecStdio};
use crate::shim::sys::{self, Reaped};
use crate::shim::types::{ContainerStatus, ControlReply, ExecIo, RunStatus};

impl Supervisor {
    /// Starts `argv` in container `name` for control client `client` (an index) and
    /// replies to it: [`ControlReply::ExecStarted`] (with the pty master of a `tty`
    /// exec) or the reason it did not start.
    pub(super) fn start_exec(&mut self, client: usize, name: &str, argv: &[String], io: ExecIo) {
        let reply = self.exec_in(client, name, argv, io);
        let c = &mut self.control.clients[client];
        match reply {
            Ok((reply, Some(terminal))) => c.send_with_fd(&reply, terminal),
            Ok((reply, None)) => c.send(&reply),
            Err(message) => c.send(&ControlReply::Error { message }),
        }
    }

    fn exec_in(
        &mut self,
        client: usize,
        name: &str,
        argv: &[String],
        io: ExecIo,
    ) -> Result<(ControlReply, Option<OwnedFd>), String> {
        // The descriptors came with this request; take them whatever happens next.
        let received = &mut self.control.clients[client].received;
        let wanted = io.descriptors();
        if received.len() < wanted {
            received.clear();
            return Err(format!(
                "exec needs {wanted} descriptors (SCM_RIGHTS) with the request"
            ));
        }
        let mut fds = received.drain(..wanted);
        let stdio = match fds.next() {
            None => ExecStdio::Terminal,
            Some(stdout) => {
                let stderr = if io.separate_stderr { fds.next() } else { None };
                let stdin = if io.stdin { fds.next() } else { None };
                ExecStdio::Pipes {
                    stdout,
                    stderr,
                    stdin,
                }
            }
        };
        drop(fds);
        if argv.is_empty() {
            return Err("exec needs a command".into());
        }
        let Some(i) = self.task.containers.iter().position(|c| c.name == name) else {
            return Err(format!("the task has no container named {name:?}"));
        };
        if self.state.status == RunStatus::Stopping {
            return Err("the task is stopping".into());
        }
        if self.state.containers[i].status != ContainerStatus::Running {
            return Err(format!("container {name:?} is not running"));
        }
        let c = self.task.containers[i].clone();
        let started = container::exec(&c, &self.task.container_state_root, argv, stdio)
            .map_err(|msg| format!("exec in container {name:?} failed: {msg}"))?;
        let id = self.control.clients[client].id;
        tracing::info!(container = %c.name, pid = started.pid, tty = io.tty, "exec started");
        self.pids.insert(started.pid as i32, PidOwner::Exec(id));
        Ok((
            ControlReply::ExecStarted { pid: started.pid },
            started.terminal,
        ))
    }

    /// Reports an exec's exit to the client that asked for it, if still connected.
    pub(super) fn exec_exited(&mut self, client: u64, reaped: Reaped) {
        tracing::info!(pid = reaped.pid, code = reaped.code, "exec exited");
        if let Some(c) = self.control.client(client) {
            c.send(&ControlReply::ExecExited { code: reaped.code });
        }
    }

    /// Kills the exec processes of clients that hung up (before they are pruned).
    pub(super) fn end_abandoned_execs(&mut self) {
        let gone = self.control.closed_ids();
        if gone.is_empty() {
            return;
        }
        for (pid, owner) in &self.pids {
            if let PidOwner::Exec(id) = owner
                && gone.contains(id)
            {
                tracing::info!(pid, "exec's client went away, killing it");
                sys::send_signal(*pid as u32, libc::SIGKILL);
            }
        }
    }
}
