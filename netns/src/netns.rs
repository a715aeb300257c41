//! Network namespaces bind-mounted on files, so they outlive every process in them.
//!
//! A namespace is created on a throwaway OS thread that `unshare`s, opens
//! `/proc/thread-self/ns/net`, writes the namespace's own settings, opens a netlink socket and
//! brings `lo` up, and then ends. The socket stays bound to the new namespace, so everything
//! else is done from the caller's thread, which never changes namespace (the daemon calls us
//! from tokio's blocking pool); the namespace is bind-mounted on its file through the open
//! descriptor. `/proc/self/ns/net` would be the main thread's namespace; it has to be
//! `thread-self`. A namespace may also be made ahead of need and bound later (`spare.rs`).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;

use crate::error::ErrorKind;
use crate::route::{RouteError, Rtnl};
use crate::sys;
use crate::sysctl::{Sysctl, SysctlError};

/// Errors of network namespaces.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file already exists.
    #[error("network namespace {} already exists", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A filesystem or mount operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// The operation.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Setting up the inside of the namespace failed.
    #[error("set up network namespace {}", path.display())]
    Inside {
        /// The namespace file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<InsideError>,
    },
    /// The helper thread could not be started or panicked.
    #[error("network namespace helper thread for {}: {detail}", path.display())]
    Thread {
        /// The namespace file.
        path: PathBuf,
        /// What happened.
        detail: String,
    },
}

/// What failed inside a new namespace.
#[derive(Debug, thiserror::Error)]
pub enum InsideError {
    /// A kernel setting.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// A netlink operation.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// Opening a socket.
    #[error("open a socket")]
    Socket(#[source] io::Error),
}

impl NetnsError {
    /// The error's class.
    pub fn class(&self) -> ErrorKind {
        match self {
            NetnsError::Exists { .. } => ErrorKind::Conflict,
            NetnsError::Io { source, .. } => match source.raw_os_error() {
                Some(libc::EPERM | libc::EACCES | libc::EROFS) => ErrorKind::Unsupported,
                Some(libc::ENOENT) => ErrorKind::NotFound,
                _ => ErrorKind::Internal,
            },
            NetnsError::Inside { source, .. } => match &**source {
                InsideError::Sysctl(e) => e.class(),
                InsideError::Route(e) => e.class(),
                InsideError::Socket(_) => ErrorKind::Internal,
            },
            NetnsError::Thread { .. } => ErrorKind::Internal,
        }
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` and makes it a shared mount point, as `ip netns` does for `/run/netns`: a
/// namespace bind-mounted in it and later unmounted is then also unmounted from the copies
/// other mount namespaces made in between, instead of being pinned by them.
pub(crate) fn ensure_dir(dir: &Path, mountinfo: &str) -> Result<(), NetnsError> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let dir = fs::canonicalize(dir).map_err(io_err("resolve", dir))?;
    if !is_mount_point(&dir, mountinfo) {
        sys::bind_mount(&dir, &dir).map_err(io_err("bind-mount on itself", &dir))?;
    }
    sys::make_shared(&dir).map_err(io_err("make shared mount", &dir))
}

/// Whether `path` (canonical) is a mount point according to `/proc/self/mountinfo` text.
pub(crate) fn is_mount_point(path: &Path, mountinfo: &str) -> bool {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| Path::new(&unescape_mountinfo(mp)) == path)
}

/// Mount points in mountinfo escape space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u16::from(b[i + 1] - b'0') * 64
                + u16::from(b[i + 2] - b'0') * 8
                + u16::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A new namespace: the open namespace file (for creating a veth peer inside it), and a
/// netlink socket and an inet socket bound to it.
#[derive(Debug)]
pub(crate) struct NewNamespace {
    pub(crate) file: File,
    pub(crate) rtnl: Rtnl,
    pub(crate) inet: std::os::fd::OwnedFd,
}

/// A namespace that is not bound to a file yet, held by descriptors only: the namespace
/// itself, and a netlink socket and an inet socket bound to it. Nothing of it outlives the
/// process (a spare made ahead of need, see `spare.rs`, leaves nothing to clean up).
#[derive(Debug)]
pub(crate) struct Unbound {
    ns: File,
    rtnl: Rtnl,
    inet: OwnedFd,
}

impl Unbound {
    /// The namespace's inode number (what its bound file shows).
    #[cfg(test)]
    pub(crate) fn inode(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        self.ns.metadata().map_or(0, |m| m.ino())
    }
}

/// Makes a new namespace on a throwaway OS thread (see the module comment), with `lo` up and
/// IPv6 router advertisements ignored on every interface created in it later (CVE-2020-13401:
/// a task with `CAP_NET_RAW` could otherwise send rogue RAs to other tasks). `label` names it
/// in errors.
pub(crate) fn make_unbound(label: &Path) -> Result<Unbound, NetnsError> {
    thread::scope(|s| {
        thread::Builder::new()
            .name("berth-netns".into())
            .spawn_scoped(s, || unshare_on_this_thread(label))
            .map_err(|e| NetnsError::Thread {
                path: label.to_owned(),
                detail: e.to_string(),
            })?
            .join()
            .map_err(|_| NetnsError::Thread {
                path: label.to_owned(),
                detail: "panicked".into(),
            })?
    })
}

/// Moves the calling thread into a new network namespace and sets it up. The thread must end
/// right after: it is in the new namespace for good.
pub(crate) fn unshare_on_this_thread(label: &Path) -> Result<Unbound, NetnsError> {
    sys::unshare_net().map_err(io_err("unshare network namespace for", label))?;
    let ns = File::open("/proc/thread-self/ns/net")
        .map_err(io_err("open the new network namespace for", label))?;
    let inside = || -> Result<(Rtnl, OwnedFd), InsideError> {
        let sysctl = Sysctl::default();
        // `default` is what interfaces created later inherit; `all` is not consulted for
        // accept_ra, and every /proc/sys lookup costs more as namespaces accumulate
        sysctl.write_if_present("net/ipv6/conf/default/accept_ra", "0")?;
        let mut rtnl = Rtnl::open()?;
        // a fresh namespace has only lo, and it is always index 1
        rtnl.set_up(1, "lo")?;
        Ok((rtnl, sys::inet_socket().map_err(InsideError::Socket)?))
    };
    let (rtnl, inet) = inside().map_err(|e| NetnsError::Inside {
        path: label.to_owned(),
        source: Box::new(e),
    })?;
    Ok(Unbound { ns, rtnl, inet })
}

/// Creates a network namespace bind-mounted at `path`: `spare` if one is given, else a new one
/// (see [`make_unbound`]). On failure nothing is left.
pub(crate) fn create(path: &Path, spare: Option<Unbound>) -> Result<NewNamespace, NetnsError> {
    // The mount target must exist; `ip netns add` creates it the same way (mode 0).
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io_err("create", path)(e)),
    }
    let bound = spare.map_or_else(|| make_unbound(path), Ok).and_then(|u| {
        // Any thread can bind it: the descriptor names the namespace.
        let source = PathBuf::from(format!("/proc/self/fd/{}", u.ns.as_raw_fd()));
        sys::bind_mount(&source, path).map_err(io_err("bind-mount network namespace on", path))?;
        Ok(NewNamespace {
            file: u.ns,
            rtnl: u.rtnl,
            inet: u.inet,
        })
    });
    if bound.is_err() {
        let _ = remove(path);
    }
    bound
}

/// Runs `f` on a throwaway thread inside the network namespace bind-mounted at `path`, and
/// returns its result. Sockets `f` creates stay in that namespace after it returns (a listener
/// or a probe of a task's port, for example); the calling thread never changes namespace.
pub fn run_in_namespace<T, F>(path: &Path, f: F) -> Result<T, NetnsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let ns = File::open(path).map_err(io_err("open", path))?;
    thread::scope(|s| {
        s.spawn(|| -> Result<T, NetnsError> {
            sys::setns_net(&ns).map_err(io_err("enter network namespace", path))?;
            Ok(f())
        })
        .join()
        .map_err(|_| NetnsError::Thread {
            path: path.to_owned(),
            detail: "panicked".into(),
        })?
    })
}

/// Unmounts and removes the namespace file at `path`. Returns whether anything was there; a
/// missing or already unmounted file is not an error. The namespace itself goes away when
/// the last process in it and the last open descriptor of it are gone.
pub(crate) fn remove(path: &Path) -> Result<bool, NetnsError> {
    let mut found = false;
    match sys::unmount_detach(path) {
        Ok(()) => found = true,
        // EINVAL: not a mount point (a half-created namespace); ENOENT: gone already
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => {}
        Err(e) => return Err(io_err("unmount network namespace", path)(e)),
    }
    match fs::remove_file(path) {
        Ok(()) => found = true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove network namespace file", path)(e)),
    }
    Ok(found)
}

/// The files in the namespace directory (a missing directory has none).
pub(crate) fn list(dir: &Path) -> Result<Vec<PathBuf>, NetnsError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
31 30 0:25 /berth/netns /run/berth/netns rw shared:7 - tmpfs tmpfs rw
40 22 254:1 /x /srv/with\\040space rw - ext4 /dev/vda rw
";

    #[test]
    fn mount_points_are_read_from_mountinfo() {
        assert!(is_mount_point(Path::new("/run/berth/netns"), MOUNTINFO));
        assert!(is_mount_point(Path::new("/run"), MOUNTINFO));
        assert!(!is_mount_point(Path::new("/run/berth"), MOUNTINFO));
        assert!(is_mount_point(Path::new("/srv/with space"), MOUNTINFO));
    }

    #[test]
    fn listing_a_missing_directory_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
        fs::write(dir.path().join("b"), "").unwrap();
        fs::write(dir.path().join("a"), "").unwrap();
        assert_eq!(
            list(dir.path()).unwrap(),
            vec![dir.path().join("a"), dir.path().join("b")]
        );
    }
}
