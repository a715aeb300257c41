//! `berth exec`: a command in a running task's container, as `docker exec`: its stdout
//! and stderr on ours, our input on its stdin with `-i`, a terminal with `-t`, and its
//! exit code as berth's.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::client;
use crate::config::Globals;
use crate::exec_frames::{Frame, PROTOCOL};

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Task id or ARN.
    task: String,
    /// The container (needed when the task has more than one).
    #[arg(long, short = 'c')]
    container: Option<String>,
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Keep stdin open and send it to the command.
    #[arg(long, short = 'i')]
    interactive: bool,
    /// Give the command a terminal (with -i: this terminal, in raw mode, drives it).
    #[arg(long, short = 't')]
    tty: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Relays the command's streams and exits with its exit code; 125 when the task
/// stopped before the command ended.
pub(crate) async fn exec(g: &Globals, a: ExecArgs) -> Result<ExitCode> {
    let typing = a.interactive && a.tty;
    if typing && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY: drop -t, or use -i alone to pipe input");
    }
    let mut req = json!({"cluster": a.cluster, "task": a.task, "command": a.command,
        "stdin": a.interactive, "tty": a.tty});
    if let Some(name) = &a.container {
        req["container"] = json!(name);
    }
    let io = client(g).berth_upgrade("Exec", req, PROTOCOL).await?;
    let (mut rd, mut wr) = tokio::io::split(io);

    let (tx, mut rx) = mpsc::channel::<Frame>(16);
    let _raw = if typing {
        Some(RawMode::enter()?)
    } else {
        None
    };
    if a.tty {
        if let Some((rows, cols)) = local_terminal_size() {
            let _ = tx.send(Frame::Resize { rows, cols }).await;
        }
        tokio::spawn(forward_resizes(tx.clone()));
    }
    if a.interactive {
        forward_stdin(tx.clone());
    }
    drop(tx);
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame.encode()).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });

    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        let frame = Frame::read(&mut rd)
            .await
            .context("reading the command's output from the daemon")?;
        match frame {
            Some(Frame::Stdout(b)) => {
                stdout.write_all(&b)?;
                stdout.flush()?;
            }
            Some(Frame::Stderr(b)) => {
                stderr.write_all(&b)?;
                stderr.flush()?;
            }
            Some(Frame::Exit(Some(code))) => return Ok(ExitCode::from(code.clamp(0, 255) as u8)),
            Some(Frame::Exit(None)) => {
                drop(_raw);
                eprintln!("berth exec: the task stopped before the command ended");
                return Ok(ExitCode::from(125));
            }
            Some(_) => {}
            None => bail!("the daemon ended the stream before the command's exit code"),
        }
    }
}

/// Reads stdin on a thread of its own (a read blocked on a terminal cannot be
/// cancelled, and must not keep the process from exiting) and sends it as frames, then
/// the end of input.
fn forward_stdin(tx: mpsc::Sender<Frame>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Frame::Stdin(Bytes::copy_from_slice(&buf[..n]));
                    if tx.blocking_send(frame).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.blocking_send(Frame::StdinClosed);
    });
}

/// Sends this terminal's new size whenever it changes (SIGWINCH).
async fn forward_resizes(tx: mpsc::Sender<Frame>) {
    let Ok(mut winch) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
    else {
        return;
    };
    while winch.recv().await.is_some() {
        if let Some((rows, cols)) = local_terminal_size()
            && tx.send(Frame::Resize { rows, cols }).await.is_err()
        {
            return;
        }
    }
}

/// The size of the terminal this command runs on (stdout's, else stdin's).
fn local_terminal_size() -> Option<(u16, u16)> {
    berth_runtime::engine::terminal_size(std::io::stdout().as_fd())
        .or_else(|| berth_runtime::engine::terminal_size(std::io::stdin().as_fd()))
}

/// This terminal in raw mode (keys go to the command as typed, ^C included), restored
/// when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).context("reading the terminal's settings")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .context("putting the terminal in raw mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
