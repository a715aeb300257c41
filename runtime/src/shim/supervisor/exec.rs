//! `berth exec`: a process run inside a running container on a control client's
//! request, with its output to a descriptor that client sent (the daemon reads the
//! other end itself, so no output passes through the shim and a slow reader only
//! slows the process). The shim is its parent: it reaps it and tells the client the
//! exit code. A client that goes away takes its processes with it (SIGKILL), so an
//! interrupted `berth exec` leaves nothing running.

use super::{PidOwner, Supervisor};
use crate::shim::container;
use crate::shim::sys::{self, Reaped};
use crate::shim::types::{ContainerStatus, ControlReply, RunStatus};

impl Supervisor {
    /// Starts `argv` in container `name` for control client `client` (an index).
    pub(super) fn start_exec(
        &mut self,
        client: usize,
        name: &str,
        argv: &[String],
    ) -> ControlReply {
        let error = |message: String| ControlReply::Error { message };
        // The descriptor came with this request; take it whatever happens next.
        let output = (!self.control.clients[client].received.is_empty())
            .then(|| self.control.clients[client].received.remove(0));
        let Some(output) = output else {
            return error("exec needs its output descriptor (SCM_RIGHTS) with the request".into());
        };
        if argv.is_empty() {
            return error("exec needs a command".into());
        }
        let Some(i) = self.task.containers.iter().position(|c| c.name == name) else {
            return error(format!("the task has no container named {name:?}"));
        };
        if self.state.status == RunStatus::Stopping {
            return error("the task is stopping".into());
        }
        if self.state.containers[i].status != ContainerStatus::Running {
            return error(format!("container {name:?} is not running"));
        }
        let c = self.task.containers[i].clone();
        match container::exec(&c, &self.task.container_state_root, argv, output) {
            Ok(pid) => {
                let id = self.control.clients[client].id;
                tracing::info!(container = %c.name, pid, "exec started");
                self.pids.insert(pid as i32, PidOwner::Exec(id));
                ControlReply::ExecStarted { pid }
            }
            Err(msg) => error(format!("exec in container {name:?} failed: {msg}")),
        }
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
