//! `berth exec`: runs a command in a task's running container.
//!
//! Two forms of one operation, `Berth.Exec`:
//! - plain: the answer streams `{"output": "…"}` lines (stdout and stderr together, as
//!   they were written), then `{"exitCode": N}` (`null` when the task stopped first);
//! - attached (`stdin` or `tty`, which need `Upgrade: berth-exec/1`): the daemon answers
//!   `101 Switching Protocols` and the connection carries [`Frame`]s both ways: input
//!   and terminal resizes in, stdout, stderr and the exit code out.
//!
//! A client that hangs up kills the command.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use bytes::Bytes;
use futures::SinkExt;
use hyper::body::Frame as BodyFrame;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::berth::{Tx, stream};
use super::{engine_error, task_in_cluster};
use crate::api::{ApiError, Reply};
use crate::daemon::Daemon;
use crate::exec_frames::Frame;
use berth_runtime::engine::{ExecOptions, ExecStreams, Utf8Chunks};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Exec {
    /// Task id or ARN.
    task: String,
    cluster: Option<String>,
    /// Needed when the task has more than one container (as ECS's ExecuteCommand).
    container: Option<String>,
    command: Vec<String>,
    /// Attach the client's input to the command's stdin (`-i`).
    #[serde(default)]
    stdin: bool,
    /// A pseudo-terminal for the command (`-t`).
    #[serde(default)]
    tty: bool,
}

/// The running task's id and the container to run in, or ECS's error.
async fn target(d: &Daemon, r: &Exec) -> Result<(String, String), ApiError> {
    let cluster = berth_runtime::engine::arn::cluster_name(r.cluster.as_deref());
    if r.command.is_empty() {
        return Err(ApiError::invalid("command must not be empty"));
    }
    let (id, rec) = task_in_cluster(d, &cluster, &r.task).await?;
    if rec.task.last_status != "RUNNING" {
        return Err(ApiError::invalid(format!(
            "task {} is {}, not RUNNING: commands run only in a running task",
            id, rec.task.last_status
        )));
    }
    let names: Vec<&str> = rec
        .task
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let container = match (&r.container, names.as_slice()) {
        (Some(c), _) if names.contains(&c.as_str()) => c.clone(),
        (Some(c), _) => {
            return Err(ApiError::invalid(format!(
                "container: the task has no container named {c}; it has {}",
                names.join(", ")
            )));
        }
        (None, [only]) => (*only).to_owned(),
        (None, _) => {
            return Err(ApiError::invalid(format!(
                "container must be given for a task with more than one container ({})",
                names.join(", ")
            )));
        }
    };
    Ok((id, container))
}

pub(super) async fn exec(d: &Daemon, r: Exec) -> Result<Reply, ApiError> {
    if r.stdin || r.tty {
        return Err(ApiError::invalid(format!(
            "stdin and tty need an attached connection: send the request with \
             `Connection: Upgrade` and `Upgrade: {}` (as `berth exec -i/-t` does)",
            crate::exec_frames::PROTOCOL
        )));
    }
    let (id, container) = target(d, &r).await?;
    let session = d
        .engine
        .exec(&id, &container, r.command)
        .await
        .map_err(engine_error)?;
    tracing::info!(task = %id, %container, pid = session.pid(), "exec");
    let (tx, body) = stream();
    tokio::task::spawn_blocking(move || pump(session, tx));
    Ok(Reply::Stream(body))
}

/// The attached form: starts the command, then relays its streams over the upgraded
/// connection once the `101` answer is out. The command is killed if the upgrade
/// never completes.
pub(super) async fn attach(d: &Daemon, r: Exec, upgrade: OnUpgrade) -> Result<Reply, ApiError> {
    let (id, container) = target(d, &r).await?;
    let options = ExecOptions {
        tty: r.tty,
        stdin: r.stdin,
        separate_stderr: true,
    };
    let session = d
        .engine
        .exec_with(&id, &container, r.command, options)
        .await
        .map_err(engine_error)?;
    tracing::info!(task = %id, %container, pid = session.pid(), tty = r.tty, stdin = r.stdin, "exec attached");
    let streams = session.into_streams();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                if let Err(e) = relay(TokioIo::new(upgraded), streams).await {
                    tracing::debug!(error = %e, "exec relay ended");
                }
            }
            // Dropping the streams closes the shim connection: the command dies.
            Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
        }
    });
    Ok(Reply::Upgrade(crate::exec_frames::PROTOCOL))
}

/// A non-blocking descriptor (pipe end or pty master) driven by tokio.
struct AsyncPipe(AsyncFd<OwnedFd>);

impl AsyncPipe {
    fn new(fd: OwnedFd) -> std::io::Result<AsyncPipe> {
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))?;
        // SAFETY: the AsyncFd takes ownership of the OwnedFd, which stays open, and is
        // the same descriptor, until the AsyncFd drops.
        let registered = unsafe { AsyncFd::register(fd) };
        Ok(AsyncPipe(registered.map_err(std::io::Error::from)?))
    }

    /// Reads what is there (cancel-safe); 0 at end of file, which for a pty master
    /// is EIO once no process holds the terminal.
    async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|fd| read_now(fd.get_ref(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// What can be read without waiting.
    fn read_available(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        read_now(self.0.get_ref(), buf)
    }

    async fn write_all(&self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let mut ready = self.0.writable().await?;
            match ready
                .try_io(|fd| nix::unistd::write(fd.get_ref(), bytes).map_err(std::io::Error::from))
            {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}

fn read_now(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    match nix::unistd::read(fd.as_raw_fd(), buf) {
        Ok(n) => Ok(n),
        Err(nix::errno::Errno::EIO) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Relays between the client's connection and the command until the command exits
/// (or the client goes, which kills it).
async fn relay<IO>(io: IO, streams: ExecStreams) -> std::io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let ExecStreams {
        output,
        stderr,
        stdin,
        tty,
        exit,
    } = streams;
    let (rd, mut wr) = tokio::io::split(io);
    let killer = exit.killer()?;
    // However the relay ends (the client gone mid-write, too), the command goes with
    // it; after its exit this does nothing.
    let _kill_on_return = KillOnDrop(exit.killer()?);
    let terminal = if tty { Some(output.try_clone()?) } else { None };
    let output = AsyncPipe::new(output)?;
    let stderr = stderr.map(AsyncPipe::new).transpose()?;
    let stdin = stdin.map(AsyncPipe::new).transpose()?;
    // Input on its own task: a command that does not read its stdin must not stop
    // its output from flowing.
    let input = tokio::spawn(forward_input(rd, stdin, terminal, killer));
    let mut exited = tokio::task::spawn_blocking(move || exit.wait());
    let (mut out_open, mut err_open) = (true, stderr.is_some());
    let mut buf = vec![0u8; 32 * 1024];
    let mut ebuf = vec![0u8; 32 * 1024];
    let code = loop {
        tokio::select! {
            n = output.read(&mut buf), if out_open => match n {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => send(&mut wr, Frame::Stdout(Bytes::copy_from_slice(&buf[..n]))).await?,
            },
            n = async { stderr.as_ref().expect("guarded").read(&mut ebuf).await }, if err_open => match n {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => send(&mut wr, Frame::Stderr(Bytes::copy_from_slice(&ebuf[..n]))).await?,
            },
            code = &mut exited => break code.ok().flatten(),
        }
    };
    // What the command wrote before it exited is readable now; processes it left in
    // the background are not waited for.
    if out_open {
        while let Ok(n @ 1..) = output.read_available(&mut buf) {
            send(&mut wr, Frame::Stdout(Bytes::copy_from_slice(&buf[..n]))).await?;
        }
    }
    if let Some(stderr) = stderr.as_ref().filter(|_| err_open) {
        while let Ok(n @ 1..) = stderr.read_available(&mut ebuf) {
            send(&mut wr, Frame::Stderr(Bytes::copy_from_slice(&ebuf[..n]))).await?;
        }
    }
    input.abort();
    send(&mut wr, Frame::Exit(code)).await?;
    wr.shutdown().await
}

struct KillOnDrop(berth_runtime::engine::ExecKiller);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

async fn send(wr: &mut (impl AsyncWrite + Unpin), frame: Frame) -> std::io::Result<()> {
    wr.write_all(&frame.encode()).await?;
    wr.flush().await
}

/// The client's frames: input to the command's stdin (or typed on its terminal),
/// resizes to its terminal. When the client goes away, the command is killed.
async fn forward_input(
    mut rd: impl AsyncRead + Unpin,
    mut stdin: Option<AsyncPipe>,
    terminal: Option<OwnedFd>,
    killer: berth_runtime::engine::ExecKiller,
) {
    let mut input_ended = false;
    loop {
        match Frame::read(&mut rd).await {
            Ok(Some(Frame::Stdin(bytes))) => {
                if let Some(w) = &stdin
                    && w.write_all(&bytes).await.is_err()
                {
                    stdin = None; // the command closed its stdin
                }
            }
            // On a terminal, end of input is the user's ^D, a byte like any other.
            Ok(Some(Frame::StdinClosed)) => {
                input_ended = true;
                if terminal.is_none() {
                    stdin = None;
                }
            }
            Ok(Some(Frame::Resize { rows, cols })) => {
                if let Some(t) = &terminal {
                    let _ = berth_runtime::engine::set_terminal_size(t.as_fd(), rows, cols);
                }
            }
            Ok(Some(_)) => {}
            // A client that said its input ended may close its sending half.
            Ok(None) if input_ended => return,
            Ok(None) | Err(_) => {
                killer.kill();
                return;
            }
        }
    }
}

/// On a blocking thread: the command's output as lines, then its exit code.
fn pump(session: berth_runtime::engine::ExecSession, tx: Tx) {
    let mut text = Utf8Chunks::default();
    let mut out = tx.clone();
    let send = |tx: &mut Tx, v: Value| {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        futures::executor::block_on(tx.send(Ok(BodyFrame::data(Bytes::from(line))))).is_ok()
    };
    let code = session.pump(
        |bytes| {
            let chunk = text.push(bytes);
            chunk.is_empty() || send(&mut out, json!({ "output": chunk }))
        },
        || !tx.is_closed(),
    );
    let mut tx = tx;
    let rest = text.finish();
    if !rest.is_empty() {
        send(&mut tx, json!({ "output": rest }));
    }
    send(&mut tx, json!({ "exitCode": code }));
}
