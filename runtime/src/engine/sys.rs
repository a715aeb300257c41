//! The engine's raw calls: overlayfs rootfs, bind mounts, unmounting, pidfds. Everything
//! here runs on blocking threads.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Mounts an overlayfs at `target`: `lower` top layer first, `upper` and `work` on the
/// same filesystem.
pub(crate) fn mount_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> std::io::Result<()> {
    if lower.is_empty() {
        return Err(std::io::Error::other(
            "an image without layers has no filesystem",
        ));
    }
    let lowers: Vec<String> = lower.iter().map(|p| escape(&p.to_string_lossy())).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        escape(&upper.to_string_lossy()),
        escape(&work.to_string_lossy())
    );
    if data.len() >= 4096 {
        return Err(std::io::Error::other(format!(
            "overlay mount options are {} bytes, more than the kernel's page-size limit",
            data.len()
        )));
    }
    // `volatile` (Linux 5.10+): no syncs of the upper layer. A container's writable
    // layer is thrown away with its task, and without it unmounting the overlay syncs
    // the whole upper filesystem (tens to hundreds of ms on a busy disk).
    let volatile = format!("{data},volatile");
    let overlay = |options: &str| {
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options),
        )
    };
    let first = if volatile.len() < 4096 {
        overlay(&volatile)
    } else {
        Err(nix::errno::Errno::EINVAL)
    };
    // EINVAL: a kernel without `volatile` (or options too long with it).
    let mounted = match first {
        Err(nix::errno::Errno::EINVAL) => overlay(&data),
        other => other,
    };
    mounted.map_err(|e| {
        std::io::Error::other(format!("mounting overlay at {}: {e}", target.display()))
    })
}

/// overlayfs option values separate with `,` and `:`; escape them as the kernel reads.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(':', "\\:")
}

/// Unmounts `target` (lazily, so a busy mount still goes away), ignoring "not mounted".
pub(crate) fn unmount(target: &Path) {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => tracing::warn!(path = %target.display(), error = %e, "unmounting"),
    }
}

/// Mount points listed in `/proc/self/mountinfo` at or below `dir`, deepest first.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

/// A non-blocking pidfd for `pid`, readable once the process has exited (Linux 5.3+;
/// PIDFD_NONBLOCK is O_NONBLOCK). Does not block.
pub(crate) fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor that this
    // process then owns; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::O_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created and is owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `bytes` on the unix stream `fd` with `fds` attached (SCM_RIGHTS; none when
/// empty) in one message. Returns how many bytes went out.
pub(crate) fn send_with_fds(
    fd: std::os::fd::BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> std::io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    use std::os::fd::{AsRawFd, RawFd};
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    sendmsg::<()>(
        fd.as_raw_fd(),
        &[std::io::IoSlice::new(bytes)],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(std::io::Error::from)
}

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);

/// Sets the window size of the terminal `fd` (a pty master or slave).
pub(crate) fn set_window_size(
    fd: std::os::fd::BorrowedFd<'_>,
    rows: u16,
    cols: u16,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which points at a live
    // local; a descriptor that is not a terminal fails with ENOTTY.
    unsafe { tiocswinsz(fd.as_raw_fd(), &size) }
        .map(drop)
        .map_err(std::io::Error::from)
}

/// The window size (rows, columns) of the terminal `fd`, if it is one.
pub(crate) fn window_size(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a
    // live local; a descriptor that is not a terminal fails with ENOTTY.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut size) }.ok()?;
    (size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// Whether the directory `path` is marked opaque for overlayfs
/// (`trusted.overlay.opaque=y`, as the unpacker marks a layer's `.wh..wh..opq`).
pub(crate) fn is_opaque_dir(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut value = [0u8; 2];
    // SAFETY: both strings are NUL-terminated and live across the call; the kernel
    // writes at most `value.len()` bytes into `value`. lgetxattr does not follow a
    // final symlink.
    let n = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// Marks the directory `path` opaque for overlayfs, as the unpacker does (tests).
#[cfg(test)]
pub(crate) fn mark_opaque(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL");
    // SAFETY: both strings are NUL-terminated and live across the call; the value is
    // one byte read by the kernel.
    let r = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

/// The lowest nice value (19) for the calling thread only: on Linux, PRIO_PROCESS with
/// `who` 0 names the calling thread, not the whole process.
pub(crate) fn lower_this_threads_priority() -> std::io::Result<()> {
    // SAFETY: setpriority takes integers only and changes the calling thread's nice value.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's nice value (tests).
#[cfg(test)]
pub(crate) fn this_threads_nice() -> i32 {
    // SAFETY: getpriority takes integers only and reads the calling thread's nice value.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}
