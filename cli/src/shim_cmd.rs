//! `berth shim <task-run-dir>`: the per-task supervisor process.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::ExitCode;

use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, fork, pipe2, read, setsid, write};

/// Detaches (so the shim is never the daemon's child and outlives it), then runs the
/// shim. Logs go to stderr, which the daemon points at `shim.log`.
///
/// The process the daemon started exits once the detached shim listens on its control
/// socket (success) or has failed before that (failure), so the daemon connects at its
/// first attempt instead of retrying.
pub(crate) fn run(task_dir: &Path) -> ExitCode {
    let (ready_r, ready_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth shim: pipe failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Whoever started `berth shim` (the daemon names itself; a test that starts a shim
    // directly is its parent): the shim starts nothing unless it hears from it, and
    // gives up waiting when it dies.
    let starter = std::env::var(berth_runtime::shim::STARTER_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
        .unwrap_or_else(|| nix::unistd::getppid().as_raw());
    // SAFETY: called first thing in main, before any thread exists; the child goes on
    // as an ordinary single-threaded process.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => {
            drop(ready_w);
            let mut byte = [0u8; 1];
            return loop {
                match read(ready_r.as_raw_fd(), &mut byte) {
                    Ok(1) => break ExitCode::SUCCESS,
                    Err(nix::errno::Errno::EINTR) => continue,
                    // The shim ended before listening; its reason is in shim.log.
                    _ => break ExitCode::FAILURE,
                }
            };
        }
        Ok(ForkResult::Child) => {}
        Err(e) => {
            eprintln!("berth shim: fork failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    drop(ready_r);
    let _ = setsid();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let ready = move || {
        let _ = write(&ready_w, b"1");
        drop(ready_w);
    };
    match berth_runtime::shim::run(task_dir, starter, ready) {
        Ok(Some(state)) => {
            tracing::info!(status = ?state.status, "shim finished");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("shim failed: {}", berth_runtime::engine::chain(&e));
            ExitCode::FAILURE
        }
    }
}
