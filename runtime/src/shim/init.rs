//! How a container's process is executed: libcontainer's `Executor` seam.
//!
//! Every container (and health-check exec) runs through [`BerthExecutor`], which
//! first clears the signal state inherited from the shim. With
//! `linuxParameters.initProcessEnabled` it also provides Docker's `--init`: instead of
//! exec'ing the workload as PID 1, the container's init process (already running
//! berth's code inside the container's namespaces) forks; the child execs the
//! workload, and the parent stays as a minimal init that reaps every orphan and
//! forwards every signal to the workload, exiting with its status. No init binary has
//! to exist in the image, which matters for images without a libc.

use std::sync::Arc;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use oci_spec::runtime::Spec;

use super::sys;

/// berth's executor.
#[derive(Debug, Clone)]
pub(crate) struct BerthExecutor {
    /// Run a minimal init as PID 1.
    pub init: bool,
    /// The container's seccomp filter, compiled ahead (`spec::seccomp`). Loaded here,
    /// the last step before exec: libcontainer has set no_new_privs and dropped the
    /// capabilities by now, where it loads a spec's own `linux.seccomp`. The minimal
    /// init runs under the filter too, as it would under libcontainer's.
    pub seccomp: Option<Arc<sys::SeccompProgram>>,
}

impl Executor for BerthExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        sys::reset_signals_for_exec();
        if let Some(program) = &self.seccomp {
            program
                .load()
                .map_err(|e| ExecutorError::Other(format!("loading the seccomp filter: {e}")))?;
        }
        if !self.init {
            return DefaultExecutor {}.exec(spec);
        }
        // SAFETY: this is the container's init process: libcontainer cloned it from
        // the single-threaded shim, so no other thread can hold a lock the child
        // would need; the child only execs (or exits).
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let _ = DefaultExecutor {}.exec(spec);
                std::process::exit(127);
            }
            Ok(ForkResult::Parent { child }) => run_init(child),
            Err(e) => Err(ExecutorError::Other(format!("init: fork failed: {e}"))),
        }
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// The minimal init's loop. Never returns.
fn run_init(child: Pid) -> ! {
    let set = sys::init_catch_all_signals();
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    std::process::exit(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}
