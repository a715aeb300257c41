//! The shim's raw process and signal plumbing, in one place.

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The signals the shim handles through its signalfd.
pub(crate) fn shim_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

/// Blocks the shim's signals and returns a non-blocking signalfd for them. Children
/// inherit the blocked mask; [`reset_signals_for_exec`] clears it before a container
/// process execs.
pub(crate) fn signalfd() -> nix::Result<SignalFd> {
    let set = shim_signals();
    set.thread_block()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// Makes the shim the reaper of orphaned descendants, so container processes whose
/// parent dies are reparented to the shim, not to the host's init.
pub(crate) fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// A pipe whose ends are close-on-exec (the write end is dup'ed onto the container's
/// stdout/stderr by libcontainer, which clears the flag on the copy).
pub(crate) fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
}

/// Sets a descriptor non-blocking.
pub(crate) fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, fcntl};
    use std::os::fd::AsRawFd;
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// One reaped child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reaped {
    pub pid: i32,
    /// The shell-style exit code: the status, or 128 + the signal number.
    pub code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

/// Reaps every child that has exited, without blocking.
pub(crate) fn reap_all() -> Vec<Reaped> {
    let mut out = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                out.push(Reaped {
                    pid: pid.as_raw(),
                    code,
                    signal: None,
                });
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                out.push(Reaped {
                    pid: pid.as_raw(),
                    code: 128 + sig as i32,
                    signal: Some(sig as i32),
                });
            }
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    out
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
pub(crate) fn send_signal(pid: u32, sig: i32) {
    let Ok(sig) = Signal::try_from(sig) else {
        return;
    };
    let _ = signal::kill(Pid::from_raw(pid as i32), sig);
}

/// Clears what a container process must not inherit from the shim before it execs:
/// the blocked signal mask (SIGTERM would otherwise never reach it) and Rust's ignored
/// SIGPIPE (ignored dispositions survive exec).
pub(crate) fn reset_signals_for_exec() {
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: setting a signal's disposition to the default handler involves no Rust
    // code running in signal context; this process is single-threaded here (the
    // container init, about to exec).
    let _ = unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// For the minimal init (PID 1 of the container's pid namespace): the kernel drops
/// signals that PID 1 has no handler for, so install a no-op handler for every
/// catchable signal, then block them all and collect them with `sigwaitinfo`.
pub(crate) fn init_catch_all_signals() -> SigSet {
    let all = SigSet::all();
    for s in Signal::iterator() {
        if matches!(s, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: the handler does nothing (async-signal-safe) and the signals are
        // blocked right after, so it never actually runs; it only changes how the
        // kernel routes signals to PID 1.
        let _ = unsafe { signal::signal(s, SigHandler::Handler(noop_handler)) };
    }
    let _ = all.thread_block();
    all
}

/// Forks a child into new namespaces (`CLONE_NEW*` `flags`) that only holds them open:
/// as PID 1 of a new PID namespace it reaps whatever is reparented to it (`SIGCHLD`
/// ignored), and it dies with the shim (`PR_SET_PDEATHSIG`) or when killed. Returns
/// its pid.
pub(crate) fn spawn_namespace_holder(flags: libc::c_int) -> nix::Result<u32> {
    // SAFETY: clone without CLONE_VM and without a new stack behaves as fork. The shim
    // is single-threaded, and the child only makes async-signal-safe calls (prctl,
    // sigaction, close_range/close, pause) until it is killed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(nix::errno::Errno::last()),
        0 => holder_main(),
        pid => Ok(pid as u32),
    }
}

fn holder_main() -> ! {
    // SAFETY: plain system calls on this process's own state; no memory is shared
    // with the parent (fork semantics), nothing here allocates.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        let mut ign: libc::sigaction = std::mem::zeroed();
        ign.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGCHLD, &ign, std::ptr::null_mut());
        // Keep none of the shim's descriptors (sockets, log pipes) alive.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..4096 {
                libc::close(fd);
            }
        }
        loop {
            libc::pause();
        }
    }
}

/// A listening unix socket `dir/NAME` for one container's or exec's console
/// (`process.terminal`). It is bound by a relative name, so a deep bundle path does not
/// overflow `sun_path`; libcontainer connects to it and sends the pty master.
pub(crate) fn console_listener(
    dir: &std::path::Path,
    name: &str,
) -> std::io::Result<(std::os::unix::net::UnixListener, std::path::PathBuf)> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    // The shim is single-threaded, so changing its working directory for the bind
    // affects nothing else.
    let previous = std::env::current_dir()?;
    std::env::set_current_dir(dir)?;
    let bound = std::os::unix::net::UnixListener::bind(name);
    let _ = std::env::set_current_dir(previous);
    let listener = bound?;
    listener.set_nonblocking(true)?;
    Ok((listener, path))
}

/// Receives the pty master that a container's init sent on the console socket. The
/// sender has already written it by the time libcontainer's create returns (the init
/// sets up its console before it reports ready), so nothing here waits.
pub(crate) fn receive_console(
    listener: &std::os::unix::net::UnixListener,
) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsFd;
    let (conn, _) = listener.accept()?;
    let mut name = [0u8; 64];
    // Any further descriptor is closed as the rest of the vector drops.
    let (_, fds) = recv_with_fds(conn.as_fd(), &mut name)?;
    fds.into_iter().next().ok_or_else(|| {
        std::io::Error::other("the container sent no terminal on its console socket")
    })
}

/// Reads what is available on the unix stream `fd` into `buf`, with any descriptors
/// the sender attached (SCM_RIGHTS), received close-on-exec. `(0, [])` is end of file.
pub(crate) fn recv_with_fds(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    // SCM_MAX_FD: the most descriptors one message carries.
    let mut space = nix::cmsg_space!([RawFd; 253]);
    let msg = recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: SCM_RIGHTS just installed these descriptors in this process and
            // nothing else owns them.
            fds.extend(
                received
                    .into_iter()
                    .map(|f| unsafe { OwnedFd::from_raw_fd(f) }),
            );
        }
    }
    Ok((msg.bytes, fds))
}

/// Unmaps the resident pages of `[start, start + len)`, a private read-only mapping of
/// a file whose pages all equal the file's contents (`footprint::droppable_mappings`);
/// the next access faults the same bytes back in from the page cache.
pub(crate) fn drop_clean_pages(start: usize, len: usize) {
    // SAFETY: MADV_DONTNEED on a private file mapping with no copy-on-write page
    // changes no byte the process can observe: every page reads back from the file
    // it maps. No Rust reference is invalidated, since the memory stays mapped.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

/// Returns the allocator's free memory at the top of the heap and in its arenas to the
/// kernel.
pub(crate) fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it is safe
    // to call at any time from a single-threaded process.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Unmaps the pages of the main thread's stack (which starts at `stack_start`) below the
/// current frame, keeping `margin` bytes beneath it: they are dead, and a deeper call
/// later faults in fresh zeroed pages.
pub(crate) fn drop_unused_stack(stack_start: usize, margin: usize) {
    let here = 0u8;
    let frame = std::ptr::addr_of!(here) as usize;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize);
    let end = frame.saturating_sub(margin) & !(page - 1);
    if end <= stack_start {
        return;
    }
    // SAFETY: [stack_start, end) lies below this frame by at least `margin`; the
    // process is single-threaded and its signals are blocked (read through a
    // signalfd), so nothing runs on that memory now, and what runs there later
    // writes before it reads. The range stays mapped.
    unsafe {
        libc::madvise(
            stack_start as *mut libc::c_void,
            end - stack_start,
            libc::MADV_DONTNEED,
        );
    }
}

/// A classic-BPF seccomp program, as `seccomp(SECCOMP_SET_MODE_FILTER)` takes it.
#[derive(Clone)]
pub(crate) struct SeccompProgram(Vec<libc::sock_filter>);

impl std::fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeccompProgram({} instructions)", self.0.len())
    }
}

impl SeccompProgram {
    /// From raw `struct sock_filter` entries in host byte order (libseccomp's export).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<SeccompProgram, String> {
        if bytes.is_empty()
            || !bytes.len().is_multiple_of(8)
            || bytes.len() / 8 > usize::from(u16::MAX)
        {
            return Err(format!("a seccomp program of {} bytes", bytes.len()));
        }
        Ok(SeccompProgram(
            bytes
                .chunks_exact(8)
                .map(|i| libc::sock_filter {
                    code: u16::from_ne_bytes([i[0], i[1]]),
                    jt: i[2],
                    jf: i[3],
                    k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
                })
                .collect(),
        ))
    }

    /// Installs the filter on the calling process, for good: no_new_privs must be set
    /// (or the caller hold CAP_SYS_ADMIN), else the kernel refuses (EACCES).
    pub(crate) fn load(&self) -> std::io::Result<()> {
        let prog = libc::sock_fprog {
            // from_bytes keeps the length within u16.
            len: self.0.len() as u16,
            filter: self.0.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `len` initialized sock_filter entries that outlive
        // the call; the kernel copies the program and does not keep the pointer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}
