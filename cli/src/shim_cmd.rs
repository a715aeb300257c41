//! `berth shim <task-run-dir>`: the per-task supervisor process.

use std::path::Path;
use std::process::ExitCode;

use nix::unistd::{ForkResult, fork, setsid};

/// Detaches (so the shim is never the daemon's child and outlives it), then runs the
/// shim. Logs go to stderr, which the daemon points at `shim.log`.
pub(crate) fn run(task_dir: &Path) -> ExitCode {
    // SAFETY: called first thing in main, before any thread exists; the child goes on
    // as an ordinary single-threaded process.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return ExitCode::SUCCESS,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            eprintln!("berth shim: fork failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    let _ = setsid();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match berth_runtime::shim::run(task_dir) {
        Ok(state) => {
            tracing::info!(status = ?state.status, "shim finished");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("shim failed: {}", berth_runtime::engine::chain(&e));
            ExitCode::FAILURE
        }
    }
}
