//! `berth exec`: a command in a running task's container, its output on stdout, its
//! exit code as berth's.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;

use super::client;
use crate::config::Globals;

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Task id or ARN.
    task: String,
    /// The container (needed when the task has more than one).
    #[arg(long, short = 'c')]
    container: Option<String>,
    #[arg(long, default_value = "default")]
    cluster: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Prints the command's output (stdout and stderr together, as written) and exits
/// with its exit code; 125 when the task stopped before the command ended.
pub(crate) async fn exec(g: &Globals, a: ExecArgs) -> Result<ExitCode> {
    let c = client(g);
    let mut req = json!({"cluster": a.cluster, "task": a.task, "command": a.command});
    if let Some(name) = &a.container {
        req["container"] = json!(name);
    }
    let mut code = None;
    let mut ended = false;
    let mut stdout = std::io::stdout();
    c.berth_stream("Exec", req, |line| {
        if let Some(text) = line["output"].as_str() {
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
        if let Some(end) = line.get("exitCode") {
            ended = true;
            code = end.as_i64();
        }
        Ok(())
    })
    .await?;
    if !ended {
        bail!("the daemon ended the stream before the command's exit code");
    }
    Ok(match code {
        Some(code) => ExitCode::from(code.clamp(0, 255) as u8),
        None => {
            eprintln!("berth exec: the task stopped before the command ended");
            ExitCode::from(125)
        }
    })
}
