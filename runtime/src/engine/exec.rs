//! `berth exec`: a command run inside a task's running container.
//!
//! The daemon makes a pipe, hands its write end to the task's shim with the request
//! (SCM_RIGHTS), and reads the output itself, so none of it passes through the shim and
//! a slow reader only slows the command. The shim, the parent of every process of the
//! task, starts the command through libcontainer (the container's namespaces, cgroup,
//! user and environment, as `docker exec`), reaps it and replies with its exit code on
//! the same connection. Closing that connection kills the command: an interrupted
//! `berth exec` leaves nothing running.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Engine, EngineError};
use crate::shim::{ShimClient, ShimError};

/// How often a pump with no output checks that its reader is still there.
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

/// A command started by [`Engine::exec`]: its output and, through the shim's
/// connection, its exit code.
#[derive(Debug)]
pub struct ExecSession {
    output: OwnedFd,
    client: ShimClient,
    pid: u32,
}

impl Engine {
    /// Starts `argv` in container `container` of running task `id`. Blocking work runs
    /// on a blocking thread.
    pub async fn exec(
        &self,
        id: &str,
        container: &str,
        argv: Vec<String>,
    ) -> Result<ExecSession, EngineError> {
        if argv.is_empty() {
            return Err(EngineError::Invalid("command must not be empty".into()));
        }
        let run_dir = self.config().paths.task_run_dir(id);
        let container = container.to_owned();
        tokio::task::spawn_blocking(move || {
            let (output, write_end) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| EngineError::Io {
                    context: "creating the exec's output pipe".into(),
                    source: e.into(),
                })?;
            let mut client = ShimClient::connect(&run_dir).map_err(|e| match e {
                ShimError::Connect { .. } => {
                    EngineError::Invalid("the task is not running (its shim is gone)".into())
                }
                other => EngineError::Invalid(super::chain(&other)),
            })?;
            let pid = client
                .exec(&container, &argv, write_end)
                .map_err(|e| match e {
                    ShimError::Refused(message) => EngineError::Invalid(message),
                    other => EngineError::Invalid(format!(
                        "the task's shim did not run the command: {}",
                        super::chain(&other)
                    )),
                })?;
            Ok(ExecSession {
                output,
                client,
                pid,
            })
        })
        .await
        .map_err(|e| EngineError::Invalid(format!("exec thread: {e}")))?
    }
}

impl ExecSession {
    /// The command's pid (in the shim's, that is the host's, pid namespace).
    pub fn pid(&self) -> u32 {
        self.pid
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
