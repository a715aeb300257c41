//! The shim's control socket (`<task-run-dir>/shim.sock`): newline-delimited JSON
//! requests and replies, non-blocking, so that a slow or stuck reader can never stall
//! the shim — a client whose unread output passes [`MAX_BUFFERED`] is dropped.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;

use super::types::{ControlReply, ControlRequest};

/// The most reply bytes kept for one client.
const MAX_BUFFERED: usize = 1 << 20;
/// The longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;
/// The most received descriptors a client may have waiting for their requests.
const MAX_RECEIVED_FDS: usize = 16;
/// How long a new shim waits for the daemon that started it to connect.
const BEGIN_CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether a signal that ends a waiting shim arrived (others are consumed: nothing is
/// running yet whose exit would matter).
fn terminated(signals: &SignalFd) -> bool {
    let mut end = false;
    while let Ok(Some(info)) = signals.read_signal() {
        end |= info.ssi_signo != libc::SIGCHLD as u32;
    }
    end
}

#[derive(Debug)]
pub(crate) struct Client {
    /// Unique for the shim's life (indices in [`ControlServer::clients`] shift).
    pub id: u64,
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Descriptors received with requests (SCM_RIGHTS), oldest first: an `exec`
    /// request takes one.
    pub received: Vec<OwnedFd>,
    pub watching: bool,
    closed: bool,
}

impl Client {
    fn new(id: u64, stream: UnixStream) -> io::Result<Client> {
        Client::with_input(id, stream, Vec::new())
    }

    /// A client whose first bytes were already read (what followed its `begin`).
    fn with_input(id: u64, stream: UnixStream, input: Vec<u8>) -> io::Result<Client> {
        stream.set_nonblocking(true)?;
        Ok(Client {
            id,
            stream,
            input,
            output: Vec::new(),
            received: Vec::new(),
            watching: false,
            closed: false,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    pub(crate) fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    /// Reads what is available and returns the complete requests.
    pub(crate) fn read_requests(&mut self) -> Vec<Result<ControlRequest, String>> {
        let mut buf = [0u8; 4096];
        loop {
            match super::sys::recv_with_fds(self.stream.as_fd(), &mut buf) {
                Ok((0, _)) => {
                    self.closed = true;
                    break;
                }
                Ok((n, fds)) => {
                    self.input.extend_from_slice(&buf[..n]);
                    // A client cannot pile up descriptors in the shim.
                    if self.received.len() + fds.len() > MAX_RECEIVED_FDS {
                        self.closed = true;
                        break;
                    }
                    self.received.extend(fds);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        self.buffered_requests()
    }

    /// The complete requests already read (after `begin`, what came with it).
    pub(crate) fn buffered_requests(&mut self) -> Vec<Result<ControlRequest, String>> {
        let mut out = Vec::new();
        while let Some(pos) = self.input.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.input.drain(..=pos).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            out.push(serde_json::from_slice(&line).map_err(|e| format!("bad request: {e}")));
        }
        if self.input.len() > MAX_REQUEST {
            self.closed = true;
        }
        out
    }

    /// Queues a reply line and writes what the socket takes.
    pub(crate) fn send(&mut self, reply: &ControlReply) {
        if let Ok(mut line) = serde_json::to_vec(reply) {
            line.push(b'\n');
            self.output.extend_from_slice(&line);
        }
        if self.output.len() > MAX_BUFFERED {
            self.closed = true;
            return;
        }
        self.flush();
    }

    /// Sends a reply line with `fd` attached (SCM_RIGHTS). The descriptor must go
    /// with the line's first byte, so the line goes out at once, after what is
    /// buffered; a client that cannot take it is dropped.
    pub(crate) fn send_with_fd(&mut self, reply: &ControlReply, fd: OwnedFd) {
        self.flush();
        let Ok(mut line) = serde_json::to_vec(reply) else {
            return;
        };
        line.push(b'\n');
        if !self.output.is_empty() {
            self.closed = true;
            return;
        }
        match crate::engine::sys::send_with_fds(self.stream.as_fd(), &line, &[fd.as_fd()]) {
            Ok(n) => {
                self.output.extend_from_slice(&line[n..]);
                self.flush();
            }
            Err(_) => self.closed = true,
        }
    }

    /// Writes buffered output.
    pub(crate) fn flush(&mut self) {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Tries, briefly and blocking, to deliver what is buffered (used before exit).
    pub(crate) fn drain_before_exit(&mut self) {
        let _ = self.stream.set_nonblocking(false);
        let _ = self
            .stream
            .set_write_timeout(Some(std::time::Duration::from_millis(200)));
        let _ = self.stream.write_all(&self.output);
        self.output.clear();
    }
}

/// The daemon's go, as [`ControlServer::await_begin`] received it.
pub(crate) struct Begun {
    /// The task's port holds.
    pub(crate) holds: Vec<std::os::fd::OwnedFd>,
    /// The task's run directory, when it is no longer the one the shim started in.
    pub(crate) run_dir: Option<std::path::PathBuf>,
}

/// The listening socket.
#[derive(Debug)]
pub(crate) struct ControlServer {
    listener: UnixListener,
    pub clients: Vec<Client>,
    next_id: u64,
}

impl ControlServer {
    /// Binds `path` (replacing a stale socket), mode 0600: only root talks to a shim.
    pub(crate) fn bind(path: &Path) -> io::Result<ControlServer> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(ControlServer {
            listener,
            clients: Vec::new(),
            next_id: 0,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts every pending connection.
    pub(crate) fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.next_id += 1;
                    if let Ok(c) = Client::new(self.next_id, stream) {
                        self.clients.push(c);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Waits for the daemon's [`ControlRequest::Begin`]: the first request of the
    /// first connection, which carries the task's port holds. That connection stays a
    /// client (the daemon watches the task on it). `None` when the shim should exit
    /// without starting anything: the daemon (`starter`, a pidfd) exited, or no daemon
    /// connected within [`BEGIN_CONNECT_WAIT`], or the daemon hung up or asked to stop
    /// first (the task was stopped while it was being prepared), or the shim got
    /// SIGTERM, SIGINT or SIGHUP.
    pub(crate) fn await_begin(
        &mut self,
        signals: &SignalFd,
        starter: Option<&std::os::fd::OwnedFd>,
    ) -> io::Result<Option<Begun>> {
        let Some(stream) = self.await_first_connection(signals, starter)? else {
            return Ok(None);
        };
        let mut input = Vec::new();
        let mut holds = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let mut fds = [
                PollFd::new(stream.as_fd(), PollFlags::POLLIN),
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            if terminated(signals) {
                return Ok(None);
            }
            let (n, received) = match super::sys::recv_with_fds(stream.as_fd(), &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(r) => r,
            };
            holds.extend(received);
            if n == 0 {
                return Ok(None);
            }
            input.extend_from_slice(&buf[..n]);
            while let Some(pos) = input.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = input.drain(..=pos).collect();
                match serde_json::from_slice::<ControlRequest>(&line) {
                    Ok(ControlRequest::Begin { run_dir }) => {
                        self.next_id += 1;
                        self.clients
                            .push(Client::with_input(self.next_id, stream, input)?);
                        return Ok(Some(Begun { holds, run_dir }));
                    }
                    Ok(ControlRequest::Stop { .. }) => return Ok(None),
                    // Nothing to report or watch before the task begins.
                    _ => {}
                }
            }
            if input.len() > MAX_REQUEST {
                return Ok(None);
            }
        }
    }

    fn await_first_connection(
        &mut self,
        signals: &SignalFd,
        starter: Option<&std::os::fd::OwnedFd>,
    ) -> io::Result<Option<UnixStream>> {
        let deadline = std::time::Instant::now() + BEGIN_CONNECT_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut fds = vec![
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(fd) = starter {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            let starter_gone = fds
                .get(2)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty());
            if terminated(signals) || starter_gone {
                return Ok(None);
            }
            match self.listener.accept() {
                Ok((stream, _)) => return Ok(Some(stream)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The ids of the clients that hung up or fell too far behind (dropped by
    /// [`ControlServer::prune`]).
    pub(crate) fn closed_ids(&self) -> Vec<u64> {
        self.clients
            .iter()
            .filter(|c| c.is_closed())
            .map(|c| c.id)
            .collect()
    }

    /// The client with id `id`, while it is connected.
    pub(crate) fn client(&mut self, id: u64) -> Option<&mut Client> {
        self.clients
            .iter_mut()
            .find(|c| c.id == id && !c.is_closed())
    }

    /// Drops clients that hung up or fell too far behind.
    pub(crate) fn prune(&mut self) {
        self.clients.retain(|c| !c.is_closed());
    }
}
