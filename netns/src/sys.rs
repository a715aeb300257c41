//! The raw system calls of this crate, in one place: namespace switches, bind mounts, and the
//! sockets that hold host ports.
//!
//! Everything goes through `nix`'s safe wrappers except one ioctl, [`sync_link`], the only
//! `unsafe` of the crate. Callers wrap the returned `io::Error`s with the thing they were
//! working on.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
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

/// Creates a socket of `protocol` bound to `addr` that never accepts: while it is open, no
/// other socket on this host can bind the same port, and nothing answers on it. UDP: bound
/// without `SO_REUSEADDR`/`SO_REUSEPORT`, which makes the hold exclusive. TCP: see below.
pub(crate) fn bind_port_hold(protocol: Protocol, addr: SocketAddrV4) -> io::Result<OwnedFd> {
    let ty = match protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let fd = socket::socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)?;
    if protocol == Protocol::Tcp {
        // Without SO_REUSEADDR the bind fails for a minute after a host server on the
        // port closed connections (TIME_WAIT). A listening socket (backlog 0) then keeps
        // every later bind off the port, SO_REUSEADDR or not; DNAT sends the port's
        // traffic to the task before it could reach this socket.
        socket::setsockopt(&fd, socket::sockopt::ReuseAddr, &true)?;
        socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
        socket::listen(&fd, socket::Backlog::new(0).map_err(io::Error::from)?)?;
    } else {
        socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
    }
    Ok(fd)
}

/// An `AF_INET` datagram socket in the calling thread's network namespace, for [`sync_link`].
pub(crate) fn inet_socket() -> io::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

/// `struct ethtool_value` of `<linux/ethtool.h>`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `ETHTOOL_GLINK`: get the link state.
const ETHTOOL_GLINK: u32 = 0x0000_000a;

/// Makes the kernel apply the pending carrier change of interface `name` (in the namespace of
/// `sock`) now, and returns whether the link is up.
///
/// A carrier change is applied by the kernel's link-watch worker, asynchronously: until it has
/// run, a new veth drops what it is given to send and its bridge port stays disabled, so the
/// first packets of a task that was just set up can be lost (and an ARP retried only after a
/// second). `ETHTOOL_GLINK` runs that worker for the device synchronously.
pub(crate) fn sync_link(sock: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GLINK,
        data: 0,
    };
    // SAFETY: `ifreq` is plain old data (a byte array and a union of integers and pointers),
    // for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = libc::c_char::from_ne_bytes([*src]);
    }
    req.ifr_ifru.ifru_data = (&raw mut value).cast();
    // SAFETY: `sock` is an open socket for the duration of the call; `req` is a valid,
    // NUL-terminated `ifreq` whose data pointer refers to `value`, an `ethtool_value` that
    // lives on this stack frame until the call returns, which is all SIOCETHTOOL reads and
    // writes.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &raw mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.data != 0)
}
