//! In-root resolution of directories inside a snapshot.
//!
//! Existing directories are resolved with `pathrs::Root::resolve`, i.e. one
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `..` stops at the root and
//! absolute symlinks restart at it. Missing directories are created by a walk that
//! applies the same rules one component at a time (`O_NOFOLLOW` opens, symlinks read
//! and expanded by hand, at most 40 of them), so a dangling in-root symlink such as
//! `var/run -> /run` gets its target created inside the root, as containerd's
//! `RootPath` + `MkdirAll` do.
//!
//! The snapshot directory is private to the unpacker while it runs (nothing else
//! writes there), so the last resolved directory can be cached until the unpacker
//! removes something: creating entries never changes what an existing path resolves
//! to, removing one can.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode};

const MAX_SYMLINKS: usize = 40;

pub(crate) struct InRoot {
    root: pathrs::Root,
    root_fd: Rc<OwnedFd>,
    cache: Option<(Vec<Vec<u8>>, Rc<OwnedFd>)>,
}

fn pathrs_err(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(e.to_string()),
    }
}

fn open_dir_nofollow(dir: &OwnedFd, name: &[u8]) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        OsStr::from_bytes(name),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl InRoot {
    pub(crate) fn open(path: &Path) -> io::Result<InRoot> {
        let root = pathrs::Root::open(path).map_err(pathrs_err)?;
        let root_fd = Rc::new(root.as_fd().try_clone_to_owned()?);
        Ok(InRoot {
            root,
            root_fd,
            cache: None,
        })
    }

    /// Forgets the cached directory (after anything was removed).
    pub(crate) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// An `O_PATH` descriptor of the directory `comps` (already cleaned), resolved
    /// inside the root; missing directories are created when `create` is set.
    pub(crate) fn dir(&mut self, comps: &[Vec<u8>], create: bool) -> io::Result<Rc<OwnedFd>> {
        if comps.is_empty() {
            return Ok(self.root_fd.clone());
        }
        if let Some((key, fd)) = &self.cache
            && key.as_slice() == comps
        {
            return Ok(fd.clone());
        }
        let path: PathBuf = comps.iter().map(|c| OsStr::from_bytes(c)).collect();
        let fd = match self.root.resolve(&path) {
            Ok(handle) => {
                let fd = OwnedFd::from(handle);
                let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                    return Err(Errno::ENOTDIR.into());
                }
                fd
            }
            Err(e) => {
                let e = pathrs_err(e);
                if e.raw_os_error() == Some(libc::ENOENT) {
                    self.walk(comps, create)?
                } else {
                    return Err(e);
                }
            }
        };
        let fd = Rc::new(fd);
        self.cache = Some((comps.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Walks `comps` from the root one component at a time, expanding symlinks inside
    /// the root and, with `create`, creating missing directories (0755, root-owned).
    ///
    /// Symlink targets are cleaned lexically before they are followed, as containerd's
    /// `RootPath` does: `up/../../etc` means `../etc` even when `up` does not exist.
    fn walk(&self, comps: &[Vec<u8>], create: bool) -> io::Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = vec![self.root_fd.try_clone()?];
        let mut queue: VecDeque<Vec<u8>> = comps.iter().cloned().collect();
        let mut links = 0;
        while let Some(c) = queue.pop_front() {
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let cur = stack.last().expect("the root is never popped");
            let name = OsStr::from_bytes(&c);
            match nix::sys::stat::fstatat(Some(cur.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            {
                Err(Errno::ENOENT) if !create => return Err(Errno::ENOENT.into()),
                Err(Errno::ENOENT) => {
                    match nix::sys::stat::mkdirat(
                        Some(cur.as_raw_fd()),
                        name,
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    // mkdirat applied the umask.
                    nix::sys::stat::fchmodat(
                        Some(cur.as_raw_fd()),
                        name,
                        Mode::from_bits_truncate(0o755),
                        FchmodatFlags::FollowSymlink,
                    )?;
                    let next = open_dir_nofollow(cur, &c)?;
                    stack.push(next);
                }
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    let next = open_dir_nofollow(cur, &c)?;
                    stack.push(next);
                }
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP.into());
                    }
                    let target = nix::fcntl::readlinkat(Some(cur.as_raw_fd()), name)?;
                    let target = target.as_bytes();
                    if target.starts_with(b"/") {
                        stack.truncate(1);
                    }
                    for t in clean_relative(target).into_iter().rev() {
                        queue.push_front(t);
                    }
                }
                Ok(_) => return Err(Errno::ENOTDIR.into()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stack.pop().expect("the root is never popped"))
    }
}

/// Cleans a path lexically, keeping leading `..` components (which the walk applies
/// to the directory stack, stopping at the root).
fn clean_relative(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.last().is_some_and(|l| l.as_slice() != b"..") {
                    out.pop();
                } else {
                    out.push(c.to_vec());
                }
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cleans_symlink_targets_lexically() {
        let c = |s: &str| super::clean_relative(s.as_bytes()).concat();
        assert_eq!(
            super::clean_relative(b"up/../../../etc"),
            vec![b"..".to_vec(), b"..".to_vec(), b"etc".to_vec()]
        );
        assert_eq!(c("./a/b/../c"), b"ac");
    }
}
