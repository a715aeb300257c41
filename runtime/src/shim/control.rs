//! The shim's control socket (`<task-run-dir>/shim.sock`): newline-delimited JSON
//! requests and replies, non-blocking, so that a slow or stuck reader can never stall
//! the shim — a client whose unread output passes [`MAX_BUFFERED`] is dropped.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use super::types::{ControlReply, ControlRequest};

/// The most reply bytes kept for one client.
const MAX_BUFFERED: usize = 1 << 20;
/// The longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    pub watching: bool,
    closed: bool,
}

impl Client {
    fn new(stream: UnixStream) -> io::Result<Client> {
        stream.set_nonblocking(true)?;
        Ok(Client {
            stream,
            input: Vec::new(),
            output: Vec::new(),
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
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
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

/// The listening socket.
#[derive(Debug)]
pub(crate) struct ControlServer {
    listener: UnixListener,
    pub clients: Vec<Client>,
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
                    if let Ok(c) = Client::new(stream) {
                        self.clients.push(c);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Drops clients that hung up or fell too far behind.
    pub(crate) fn prune(&mut self) {
        self.clients.retain(|c| !c.is_closed());
    }
}
