//! The raw system calls of this crate, in one place: namespace switches, bind mounts, and the
//! sockets that hold host ports.
//!
//! Everything goes through `nix`'s safe wrappers, so this module has no `unsafe` of its own.
//! Callers wrap the returned `io::Error`s with the thing they were working on.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, sockopt};
use nix::sys::time::TimeVal;

use crate::ports::Protocol;

/// Moves the calling **thread** into a new network namespace.
///
/// Only ever called on a throwaway thread: network namespaces are per thread, and the thread
/// ends once the namespace is bind-mounted, so no long-lived thread changes namespace.
pub(crate) fn unshare_net() -> io::Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Moves the calling **thread** into the network namespace `ns` refers to (throwaway threads
/// only, as for [`unshare_net`]).
pub(crate) fn setns_net(ns: impl AsFd) -> io::Result<()> {
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Bind-mounts `src` onto `dst` (which must exist).
pub(crate) fn bind_mount(src: &Path, dst: &Path) -> io::Result<()> {
    nix::mount::mount(Some(src), dst, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(io::Error::from)
}

/// Makes the mount at `path` a shared mount, so that unmounts below it propagate to the copies
/// other mount namespaces made of it (what `ip netns` does for `/run/netns`).
pub(crate) fn make_shared(path: &Path) -> io::Result<()> {
    nix::mount::mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Lazily unmounts `path`.
pub(crate) fn unmount_detach(path: &Path) -> io::Result<()> {
    nix::mount::umount2(path, MntFlags::MNT_DETACH).map_err(io::Error::from)
}

/// Bounds how long a blocking `recv` on `fd` may wait, so that a kernel that never answers
/// turns into an error instead of a hung task setup.
pub(crate) fn set_recv_timeout(fd: impl AsFd, timeout: Duration) -> io::Result<()> {
    let tv = TimeVal::new(
        i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        i64::from(timeout.subsec_micros()),
    );
    socket::setsockopt(&fd, sockopt::ReceiveTimeout, &tv).map_err(io::Error::from)
}

/// Creates a socket of `protocol` bound to `addr` and never listening: while it is open, no
/// other socket on this host can bind the same port (we set neither `SO_REUSEADDR` nor
/// `SO_REUSEPORT`, which is what makes the hold exclusive), and nothing answers on it.
pub(crate) fn bind_port_hold(protocol: Protocol, addr: SocketAddrV4) -> io::Result<OwnedFd> {
    let ty = match protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let fd = socket::socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)?;
    socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
    Ok(fd)
}
