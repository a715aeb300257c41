//! The per-task shim: a small, single-threaded supervisor process, one per task.
//!
//! The daemon never forks or clones a container: it prepares everything (images,
//! rootfs mounts, network namespace, cgroup, OCI bundles), writes `task.json` into the
//! task's run directory and starts `berth shim <task-run-dir>` — the berth binary
//! re-executed. The shim
//!
//! * creates and starts the containers through libcontainer, honouring `dependsOn`;
//! * is their parent (and a child subreaper), so it reaps them and records exit codes,
//!   start and stop times and OOM kills in `state.json`;
//! * captures stdout/stderr into size-capped log files;
//! * runs health checks inside the containers;
//! * stops the task when an essential container exits or when asked, in reverse
//!   dependency order with each container's stop timeout;
//! * serves a control socket (`shim.sock`) for state, watch and stop requests;
//! * keeps running if the daemon dies — a restarted daemon reads `state.json` and
//!   reconnects.
//!
//! Files in the task run directory: `task.json` (input), `state.json` (output, replaced
//! atomically), `shim.sock`, `shim.pid`, `shim.log`.

mod container;
mod control;
mod footprint;
mod init;
pub mod logs;
mod namespaces;
mod plan;
mod restart;
pub use restart::DEFAULT_ATTEMPT_PERIOD_SECS;
mod supervisor;
mod sys;
mod types;

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use supervisor::{ESSENTIAL_EXITED, OOM_REASON};
pub use types::*;

use crate::cgroup::{BerthCgroups, CgroupHost};
use crate::error::ErrorClass;

/// File names inside a task's run directory.
pub const TASK_FILE: &str = "task.json";
pub const STATE_FILE: &str = "state.json";
pub const SOCKET_FILE: &str = "shim.sock";
pub const PID_FILE: &str = "shim.pid";
pub const LOG_FILE: &str = "shim.log";
/// The environment variable in which the daemon tells `berth shim` its pid: the shim
/// starts nothing unless it hears from that process and stops waiting when it exits.
/// (Not the shim's parent pid: a daemon killed while it starts the shim leaves it
/// reparented, and its parent pid then names init.)
pub const STARTER_ENV: &str = "BERTH_SHIM_STARTER";

/// Errors running the shim or talking to it.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("failed to read {path}")]
    ReadTask {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed {path}")]
    ParseTask {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to set up the shim: {what}")]
    Setup {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("failed to detect cgroups")]
    Cgroup(#[source] crate::cgroup::CgroupError),
    #[error("poll failed")]
    Poll(#[source] nix::errno::Errno),
    #[error("failed to write the task state")]
    State(#[source] io::Error),
    #[error("cannot reach the shim at {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the shim answered: {0}")]
    Refused(String),
    #[error("talking to the shim failed")]
    Protocol(#[source] io::Error),
}

impl ShimError {
    /// The API class of this error.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Internal
    }
}

/// Runs the shim for the task in `task_dir` until every container has stopped.
/// Called by `berth shim`, in a fresh single-threaded process. `ready` is called once
/// the control socket listens and `shim.pid` is written.
///
/// The daemon starts the shim while it still prepares the task (network, cgroup,
/// rootfs, bundles), so the shim's exec and set-up are off the task's path: the shim
/// waits for the daemon's `begin` on the control socket, which comes once `task.json`
/// is written, with the task's port holds. `None` when it ended without starting
/// anything (see [`control::ControlServer::await_begin`]). `starter` is the pid of the
/// process that started the shim (the daemon): the shim stops waiting when it exits.
pub fn run(
    task_dir: &Path,
    starter: i32,
    ready: impl FnOnce(),
) -> Result<Option<ShimState>, ShimError> {
    let t0 = std::time::Instant::now();
    // Opened before anything else, while the starter still waits for `ready`: a pid
    // that is alive now is the starter's. Without pidfds (Linux < 5.3) the connection
    // closing and the wait's time limit still end a shim that is never begun.
    let starter = match crate::engine::sys::pidfd_open(starter) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
            tracing::info!("the task was not begun: the daemon that started the shim is gone");
            return Ok(None);
        }
        Err(_) => None,
    };
    // The shim works in its run directory. A spare shim's directory is renamed to the
    // task's when it is taken, and `/proc/<pid>/cwd` follows the rename: that is how
    // `shim_alive` knows a shim whose command line names the spare directory.
    std::env::set_current_dir(task_dir).map_err(|source| ShimError::Setup {
        what: "entering the run directory",
        source,
    })?;
    sys::become_subreaper().map_err(|e| ShimError::Setup {
        what: "becoming a child subreaper",
        source: e.into(),
    })?;
    let signals = sys::signalfd().map_err(|e| ShimError::Setup {
        what: "creating the signalfd",
        source: e.into(),
    })?;
    let socket = task_dir.join(SOCKET_FILE);
    let mut control = control::ControlServer::bind(&socket).map_err(|source| ShimError::Setup {
        what: "binding the control socket",
        source,
    })?;
    std::fs::write(task_dir.join(PID_FILE), std::process::id().to_string()).map_err(|source| {
        ShimError::Setup {
            what: "writing shim.pid",
            source,
        }
    })?;

    ready();
    // What needs no task is done while the daemon still prepares it: the host's cgroup
    // layout, and the private procfs that pathrs opens once per process and caches.
    // Opened here, every container's intermediate and init processes (forks of the
    // shim) inherit it instead of mounting a procfs of their own on the start path.
    let host = CgroupHost::detect().map_err(ShimError::Cgroup)?;
    if let Err(e) = pathrs::procfs::ProcfsHandle::new() {
        tracing::debug!(error = %e, "no cached procfs handle");
    }
    tracing::debug!(
        ms = t0.elapsed().as_secs_f64() * 1e3,
        "shim set up, control socket bound"
    );
    let begun = control
        .await_begin(&signals, starter.as_ref())
        .map_err(|source| ShimError::Setup {
            what: "waiting for the daemon's begin",
            source,
        })?;
    // The port holds stay open for as long as the task runs (they are close-on-exec:
    // no container inherits them).
    let Some(begun) = begun else {
        tracing::info!("the task was not begun (the daemon hung up or stopped it first)");
        let _ = std::fs::remove_file(&socket);
        return Ok(None);
    };
    let holds = begun.holds;
    // A spare shim's directory is the task's now (the daemon renamed it).
    let task_dir = begun.run_dir.as_deref().unwrap_or(task_dir);
    let socket = task_dir.join(SOCKET_FILE);
    let t1 = std::time::Instant::now();
    let task_path = task_dir.join(TASK_FILE);
    let text = std::fs::read(&task_path).map_err(|source| ShimError::ReadTask {
        path: task_path.clone(),
        source,
    })?;
    let task: ShimTask = serde_json::from_slice(&text).map_err(|source| ShimError::ParseTask {
        path: task_path.clone(),
        source,
    })?;
    let cgroups = BerthCgroups::from_base(host, &task.cgroup_base);
    tracing::debug!(ms = t1.elapsed().as_secs_f64() * 1e3, "begun: task read");
    let sup = supervisor::Supervisor::new(task, task_dir, cgroups, control, signals, holds);
    let state = sup.run()?;
    let _ = std::fs::remove_file(&socket);
    Ok(Some(state))
}

/// Reads the last state the shim wrote, if any.
pub fn read_state(task_dir: &Path) -> Option<ShimState> {
    let bytes = std::fs::read(task_dir.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether the shim recorded in `task_dir` is alive (its pid exists and is a berth
/// shim for this directory: started for it, or a spare shim whose directory became it,
/// which works in it).
pub fn shim_alive(task_dir: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(task_dir.join(PID_FILE)) else {
        return false;
    };
    let Ok(pid) = pid.trim().parse::<u32>() else {
        return false;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    if args.get(1) != Some(&&b"shim"[..]) {
        return false;
    }
    let dir = task_dir.as_os_str().as_encoded_bytes();
    args.get(2) == Some(&dir)
        || std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == task_dir)
}

/// A blocking client of one shim's control socket.
#[derive(Debug)]
pub struct ShimClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl ShimClient {
    /// Connects to the shim of the task in `task_dir`.
    pub fn connect(task_dir: &Path) -> Result<ShimClient, ShimError> {
        let path = task_dir.join(SOCKET_FILE);
        let stream = UnixStream::connect(&path).map_err(|source| ShimError::Connect {
            path: path.clone(),
            source,
        })?;
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(ShimError::Protocol)?;
        let writer = stream.try_clone().map_err(ShimError::Protocol)?;
        Ok(ShimClient {
            reader: BufReader::new(stream),
            writer,
        })
    }

    fn request(&mut self, req: &ControlRequest) -> Result<(), ShimError> {
        let mut line =
            serde_json::to_vec(req).map_err(|e| ShimError::Protocol(io::Error::other(e)))?;
        line.push(b'\n');
        self.writer.write_all(&line).map_err(ShimError::Protocol)
    }

    /// Reads the next reply; `None` when the shim closed the connection.
    pub fn next_reply(&mut self) -> Result<Option<ControlReply>, ShimError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(ShimError::Protocol)?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| ShimError::Protocol(io::Error::other(e)))
    }

    /// Sends the shim its go (`task.json` must be written), with no port holds: what
    /// the daemon does once it has prepared the task, for callers that start shims
    /// themselves (tests). Must be the first request of the shim's first connection.
    pub fn begin(&mut self) -> Result<(), ShimError> {
        self.request(&ControlRequest::Begin { run_dir: None })
    }

    /// The current state.
    pub fn state(&mut self) -> Result<ShimState, ShimError> {
        self.request(&ControlRequest::State)?;
        match self.next_reply()? {
            Some(ControlReply::State(s)) => Ok(s),
            Some(ControlReply::Error { message }) => Err(ShimError::Refused(message)),
            _ => Err(ShimError::Protocol(io::Error::other("unexpected reply"))),
        }
    }

    /// Starts watching: the first reply is the current state; call [`next_reply`]
    /// for each change.
    ///
    /// [`next_reply`]: ShimClient::next_reply
    pub fn watch(&mut self) -> Result<(), ShimError> {
        self.request(&ControlRequest::Watch)
    }

    /// Runs `argv` in the task's running container `container` with its stdio as
    /// `stdio` says, on `fds` (sent to the shim; this process's copies are closed). Returns the
    /// process's pid once it runs, and the pty master of a `tty` exec; its exit code is
    /// the next reply ([`ControlReply::ExecExited`]). Dropping the client before then
    /// kills it.
    pub fn exec(
        &mut self,
        container: &str,
        argv: &[String],
        stdio: ExecIo,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<(u32, Option<std::os::fd::OwnedFd>), ShimError> {
        use std::os::fd::AsFd;
        let req = ControlRequest::Exec {
            container: container.to_owned(),
            argv: argv.to_vec(),
            io: stdio,
        };
        let mut line =
            serde_json::to_vec(&req).map_err(|e| ShimError::Protocol(io::Error::other(e)))?;
        line.push(b'\n');
        // The descriptors travel with the line's first bytes; the rest (a long command)
        // follows plainly.
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let sent = crate::engine::sys::send_with_fds(self.writer.as_fd(), &line, &borrowed)
            .map_err(ShimError::Protocol)?;
        drop(borrowed);
        drop(fds);
        self.writer
            .write_all(&line[sent..])
            .map_err(ShimError::Protocol)?;
        match self.next_reply_with_fds()? {
            (Some(ControlReply::ExecStarted { pid }), fds) => Ok((pid, fds.into_iter().next())),
            (Some(ControlReply::Error { message }), _) => Err(ShimError::Refused(message)),
            _ => Err(ShimError::Protocol(io::Error::other("unexpected reply"))),
        }
    }

    /// Reads the next reply with the descriptors that came with it, reading no byte
    /// past its line (what follows stays for [`ShimClient::next_reply`]).
    fn next_reply_with_fds(
        &mut self,
    ) -> Result<(Option<ControlReply>, Vec<std::os::fd::OwnedFd>), ShimError> {
        use std::os::fd::AsFd;
        if !self.reader.buffer().is_empty() {
            return Ok((self.next_reply()?, Vec::new()));
        }
        let mut line = Vec::new();
        let mut fds = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // How much of what is waiting belongs to this line (the peek carries no
            // descriptors: they come with the read below).
            let peeked = nix::sys::socket::recv(
                std::os::fd::AsRawFd::as_raw_fd(&self.writer),
                &mut buf,
                nix::sys::socket::MsgFlags::MSG_PEEK,
            )
            .map_err(|e| ShimError::Protocol(e.into()))?;
            if peeked == 0 {
                return Ok((None, fds));
            }
            let take = buf[..peeked]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(peeked, |i| i + 1);
            let (n, got) = crate::shim::sys::recv_with_fds(self.writer.as_fd(), &mut buf[..take])
                .map_err(ShimError::Protocol)?;
            line.extend_from_slice(&buf[..n]);
            fds.extend(got);
            if line.ends_with(b"\n") {
                let reply = serde_json::from_slice(&line)
                    .map_err(|e| ShimError::Protocol(io::Error::other(e)))?;
                return Ok((Some(reply), fds));
            }
        }
    }

    /// A second handle on the connection (to shut it down from another thread).
    pub fn try_clone_stream(&self) -> Result<UnixStream, io::Error> {
        self.writer.try_clone()
    }

    /// The connection, to poll for replies (see [`ShimClient::has_buffered_reply`]).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.writer.as_fd()
    }

    /// Whether a reply was already read off the connection: polling it would not show.
    pub fn has_buffered_reply(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Waits for the exit code of the process [`ShimClient::exec`] started; `None`
    /// when the shim went away first (the task stopped).
    pub fn exec_exit(&mut self) -> Result<Option<i32>, ShimError> {
        loop {
            match self.next_reply()? {
                Some(ControlReply::ExecExited { code }) => return Ok(Some(code)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Asks the shim to stop the task.
    pub fn stop(&mut self, reason: &str, timeout_secs: Option<u64>) -> Result<(), ShimError> {
        self.request(&ControlRequest::Stop {
            reason: reason.to_owned(),
            timeout_secs,
        })?;
        match self.next_reply()? {
            Some(ControlReply::Ok) => Ok(()),
            Some(ControlReply::Error { message }) => Err(ShimError::Refused(message)),
            _ => Err(ShimError::Protocol(io::Error::other("unexpected reply"))),
        }
    }
}
