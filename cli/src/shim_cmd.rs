//! `berth shim <task-run-dir>`: the per-task supervisor process.

use std::path::Path;
use std::process::ExitCode;

/// Runs the shim; logs go to stderr, which the daemon points at `shim.log`.
pub(crate) fn run(task_dir: &Path) -> ExitCode {
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
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            tracing::error!("shim failed: {msg}");
            ExitCode::FAILURE
        }
    }
}
