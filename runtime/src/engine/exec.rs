//! `berth exec`: a command run inside a task's running container.
//!
//! The daemon makes pipes (stdout, optionally stderr and stdin), hands the command's
//! ends to the task's shim with the request (SCM_RIGHTS), and moves the bytes itself,
//! so none of them pass through the shim and a slow reader only slows the command.
//! With a terminal, the shim has libcontainer make a pty inside the container (its
//! devpts, as runc's console socket does) and hands the master back with its answer.
//! The shim, the parent of every process of the task, starts the command through
//! libcontainer (the container's namespaces, cgroup, user and environment, as `docker
//! exec`), reaps it and replies with its exit code on the same connection. Closing that
//! connection kills the command: an interrupted `berth exec` leaves nothing running.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Engine, EngineError};
use crate::shim::{ExecIo, ShimClient, ShimError};

/// How often a pump with no output checks that its reader is still there.
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

/// How [`Engine::exec_with`] connects the command's stdio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// A pseudo-terminal inside the container (`docker exec -t`): one stream out, and
    /// the terminal's size can be set.
    pub tty: bool,
    /// Keep the command's stdin open for the caller to write (`docker exec -i`);
    /// otherwise it reads /dev/null (or, with `tty`, a terminal nobody types on).
    pub stdin: bool,
    /// Without `tty`: stderr on its own stream instead of merged into stdout.
    pub separate_stderr: bool,
}

/// A command started by [`Engine::exec`]: its output and, through the shim's
/// connection, its exit code.
#[derive(Debug)]
pub struct ExecSession {
    /// stdout's pipe, or the pty master.
    output: OwnedFd,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    tty: bool,
    client: ShimClient,
    pid: u32,
}

/// A started command's streams, for a caller that moves bytes itself (the API's
/// interactive exec), and its exit.
#[derive(Debug)]
pub struct ExecStreams {
    /// stdout (and stderr unless separate), or the pty master.
    pub output: OwnedFd,
    pub stderr: Option<OwnedFd>,
    /// Where the command's input goes: the write end of its stdin, or the pty master.
    pub stdin: Option<OwnedFd>,
    /// Whether `output` is a pty master ([`set_terminal_size`] applies).
    pub tty: bool,
    pub exit: ExecExit,
}

/// The exit of a started command, reported by the task's shim.
#[derive(Debug)]
pub struct ExecExit {
    client: ShimClient,
}

impl ExecExit {
    /// A handle that ends the command (closing the shim connection kills it), usable
    /// while another thread waits in [`ExecExit::wait`].
    pub fn killer(&self) -> std::io::Result<ExecKiller> {
        self.client.try_clone_stream().map(ExecKiller)
    }

    /// Blocking: the command's exit code; `None` when the task stopped first or the
    /// command was killed through its [`ExecKiller`].
    pub fn wait(mut self) -> Option<i32> {
        self.client.exec_exit().ok().flatten()
    }
}

/// Ends a command started by [`Engine::exec_with`] (see [`ExecExit::killer`]).
#[derive(Debug)]
pub struct ExecKiller(std::os::unix::net::UnixStream);

impl ExecKiller {
    /// Kills the command: the shim sees its client hang up. Idempotent.
    pub fn kill(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Sets the size of the terminal whose master is `master`; the command gets SIGWINCH.
pub fn set_terminal_size(master: BorrowedFd<'_>, rows: u16, cols: u16) -> std::io::Result<()> {
    super::sys::set_window_size(master, rows, cols)
}

/// The size (rows, columns) of the terminal `fd` is on, if it is one.
pub fn terminal_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    super::sys::window_size(fd)
}

impl Engine {
    /// Starts `argv` in container `container` of running task `id`, its stdout and
    /// stderr together on one stream. Blocking work runs on a blocking thread.
    pub async fn exec(
        &self,
        id: &str,
        container: &str,
        argv: Vec<String>,
    ) -> Result<ExecSession, EngineError> {
        self.exec_with(id, container, argv, ExecOptions::default())
            .await
    }

    /// Starts `argv` in container `container` of running task `id`, its stdio as
    /// `options` say.
    pub async fn exec_with(
        &self,
        id: &str,
        container: &str,
        argv: Vec<String>,
        options: ExecOptions,
    ) -> Result<ExecSession, EngineError> {
        if argv.is_empty() {
            return Err(EngineError::Invalid("command must not be empty".into()));
        }
        let run_dir = self.config().paths.task_run_dir(id);
        let container = container.to_owned();
        tokio::task::spawn_blocking(move || start(&run_dir, &container, &argv, options))
            .await
            .map_err(|e| EngineError::Invalid(format!("exec thread: {e}")))?
    }
}

/// On a blocking thread: the pipes, the request to the shim, its answer.
fn start(
    run_dir: &std::path::Path,
    container: &str,
    argv: &[String],
    options: ExecOptions,
) -> Result<ExecSession, EngineError> {
    let pipe = |what: &str| {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| EngineError::Io {
            context: format!("creating the exec's {what} pipe"),
            source: e.into(),
        })
    };
    let io = ExecIo {
        tty: options.tty,
        separate_stderr: options.separate_stderr && !options.tty,
        stdin: options.stdin && !options.tty,
    };
    // The shim's ends, in the order the request names them; ours.
    let mut theirs = Vec::new();
    let (mut output, mut stderr, mut stdin) = (None, None, None);
    if !io.tty {
        let (r, w) = pipe("output")?;
        output = Some(r);
        theirs.push(w);
        if io.separate_stderr {
            let (r, w) = pipe("stderr")?;
            stderr = Some(r);
            theirs.push(w);
        }
        if io.stdin {
            let (r, w) = pipe("stdin")?;
            stdin = Some(w);
            theirs.push(r);
        }
    }
    let mut client = ShimClient::connect(run_dir).map_err(|e| match e {
        ShimError::Connect { .. } => {
            EngineError::Invalid("the task is not running (its shim is gone)".into())
        }
        other => EngineError::Invalid(super::chain(&other)),
    })?;
    let (pid, terminal) = client
        .exec(container, argv, io, theirs)
        .map_err(|e| match e {
            ShimError::Refused(message) => EngineError::Invalid(message),
            other => EngineError::Invalid(format!(
                "the task's shim did not run the command: {}",
                super::chain(&other)
            )),
        })?;
    let output = match (output, terminal) {
        (Some(out), _) => out,
        (None, Some(master)) => {
            if options.stdin {
                let typed = master
                    .try_clone()
                    .map_err(EngineError::io("duplicating the terminal"))?;
                stdin = Some(typed);
            }
            master
        }
        (None, None) => {
            return Err(EngineError::Invalid(
                "the task's shim sent no terminal for the command".into(),
            ));
        }
    };
    Ok(ExecSession {
        output,
        stderr,
        stdin,
        tty: io.tty,
        client,
        pid,
    })
}

impl ExecSession {
    /// The command's pid (in the shim's, that is the host's, pid namespace).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The command's streams and exit, for a caller that moves the bytes itself.
    pub fn into_streams(self) -> ExecStreams {
        ExecStreams {
            output: self.output,
            stderr: self.stderr,
            stdin: self.stdin,
            tty: self.tty,
            exit: ExecExit {
                client: self.client,
            },
        }
    }

    /// Blocking: hands the command's output to `emit` as it comes, until the command
    /// exits; returns its exit code (`None`: the task stopped first, or `emit` or
    /// `alive` said the reader is gone, which kills the command). Output that
    /// processes the command left in the background write after it exited is not
    /// waited for.
    pub fn pump(
        self,
        mut emit: impl FnMut(&[u8]) -> bool,
        alive: impl Fn() -> bool,
    ) -> Option<i32> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut output_open = true;
        loop {
            if self.client.has_buffered_reply() {
                return self.finish(&mut buf, &mut emit);
            }
            let (out_ready, shim_ready) = {
                let mut fds = vec![PollFd::new(self.client.fd(), PollFlags::POLLIN)];
                if output_open {
                    fds.push(PollFd::new(self.output.as_fd(), PollFlags::POLLIN));
                }
                let ms = u16::try_from(LIVENESS_CHECK.as_millis()).unwrap_or(u16::MAX);
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return None,
                }
                let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
                (fds.get(1).is_some_and(ready), ready(&fds[0]))
            };
            if out_ready {
                match nix::unistd::read(self.output.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(_) => output_open = false,
                    Ok(n) => {
                        if !emit(&buf[..n]) {
                            return None;
                        }
                    }
                }
            }
            if shim_ready {
                return self.finish(&mut buf, &mut emit);
            }
            if !alive() {
                return None;
            }
        }
    }

    /// The command's exit code from the shim, and the output already in the pipe.
    fn finish(mut self, buf: &mut [u8], emit: &mut impl FnMut(&[u8]) -> bool) -> Option<i32> {
        let code = self.client.exec_exit().ok().flatten();
        // What the command wrote before it exited is in the pipe now; read it without
        // waiting for writers it left behind.
        if nix::fcntl::fcntl(
            self.output.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .is_ok()
        {
            while let Ok(n @ 1..) = nix::unistd::read(self.output.as_raw_fd(), buf) {
                if !emit(&buf[..n]) {
                    break;
                }
            }
        }
        code
    }
}

/// Splits output chunks into UTF-8 text without cutting a character in two: what
/// [`Utf8Chunks::push`] returns is whole characters, invalid bytes replaced.
#[derive(Debug, Default)]
pub struct Utf8Chunks {
    pending: Vec<u8>,
}

impl Utf8Chunks {
    /// The text of `bytes` after what was held back, holding back an incomplete
    /// character at the end.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let keep = incomplete_tail(&self.pending);
        let whole = self.pending.len() - keep;
        let text = String::from_utf8_lossy(&self.pending[..whole]).into_owned();
        self.pending.drain(..whole);
        text
    }

    /// What is left (an incomplete character: replaced).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// How many bytes at the end of `bytes` start a UTF-8 character that is not complete.
fn incomplete_tail(bytes: &[u8]) -> usize {
    // A character is at most 4 bytes: look at the last 3 for a lead byte.
    for back in 1..=3.min(bytes.len()) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte
        }
        let len = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if len > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_split_across_chunks_come_out_whole() {
        let text = "héllo €uro 🚢";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut chunks = Utf8Chunks::default();
            let mut out = chunks.push(&bytes[..cut]);
            out += &chunks.push(&bytes[cut..]);
            out += &chunks.finish();
            assert_eq!(out, text, "cut at {cut}");
        }
    }

    #[test]
    fn invalid_bytes_are_replaced_not_held_forever() {
        let mut chunks = Utf8Chunks::default();
        assert_eq!(chunks.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(chunks.push(b"\xe2\x82"), "");
        assert_eq!(chunks.finish(), "\u{fffd}");
    }
}
