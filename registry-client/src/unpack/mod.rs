//! The safe layer unpacker: a tar stream applied to one snapshot directory.
//!
//! The `tar` crate is used only as a parser. Every entry is applied by this module
//! with chroot semantics inside the snapshot root (reliability.md R5):
//!
//! * entry names are cleaned lexically (`..` cannot climb above the root, a leading
//!   `/` is dropped), as containerd's `filepath.Clean`;
//! * the *parent* of an entry is resolved inside the root with `openat2(RESOLVE_IN_ROOT)`
//!   (through `pathrs::Root`), so absolute symlinks and `..` in symlink targets resolve
//!   against the snapshot root, never the host's; missing parents are created by an
//!   in-root walk that follows symlinks the same way;
//! * the final component is never followed: an entry replaces whatever is there
//!   (a directory over a directory merges metadata), and hardlinks link to the target
//!   inode itself (a symlink target is linked as a symlink);
//! * every operation is an `*at` call on a directory descriptor with `O_NOFOLLOW` or
//!   `AT_SYMLINK_NOFOLLOW`, so nothing is written, chmod-ed or chown-ed outside the root.
//!
//! Whiteouts are written in **overlayfs** form, because each snapshot becomes an
//! overlayfs lower directory: `.wh.<name>` becomes a character device 0:0 named
//! `<name>`, and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory.
//! Other `.wh..wh.*` names (aufs metadata) are skipped; `.wh.`, `.wh..` and `.wh...`
//! are refused. Modes (setuid, setgid, sticky), owners, mtimes, hardlinks, device nodes
//! and FIFOs are kept. Extended attributes are kept only in the `user.` namespace
//! (except `user.overlay.*`) plus `security.capability`; `trusted.*` (which includes
//! overlayfs' own control attributes), other `security.*` and `system.*` attributes
//! from a layer are dropped.
//!
//! The root entry (`./`) is ignored like containerd does: the snapshot root keeps the
//! mode its creator gave it.

mod resolve;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::error::Class;
use crate::sys;
use resolve::InRoot;

/// Bounds on what one layer may contain (reliability.md R10).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most tar entries in one layer.
    pub max_entries: u64,
    /// Longest entry name or link target, in bytes.
    pub max_path_bytes: usize,
    /// Most bytes of file content in one layer.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: 2_000_000,
            max_path_bytes: 4096,
            max_bytes: 64 << 30,
        }
    }
}

/// What unpacking a layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries applied (including whiteouts).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Extended attributes dropped because their namespace is not allowed.
    pub dropped_xattrs: u64,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer is not a valid tar archive")]
    Tar(#[source] io::Error),
    #[error("layer entry {path:?}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("layer has more than {0} entries")]
    TooManyEntries(u64),
    #[error("layer contains more than {0} bytes of file content")]
    TooLarge(u64),
    #[error("failed to {op} {path:?} in the snapshot")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    /// The error's class: a malformed layer is invalid content, an I/O failure internal.
    pub fn class(&self) -> Class {
        match self {
            UnpackError::Io { .. } => Class::Internal,
            _ => Class::Invalid,
        }
    }
}

/// Applies the tar stream `reader` to the directory `root`, which should be a fresh,
/// private directory. Reads up to the tar end-of-archive marker; the caller drains
/// whatever follows (padding) if it needs to hash the whole stream.
pub fn unpack<R: Read>(
    reader: &mut R,
    root: &Path,
    limits: &Limits,
) -> Result<UnpackStats, UnpackError> {
    let inroot = InRoot::open(root).map_err(|source| UnpackError::Io {
        op: "open",
        path: root.display().to_string(),
        source,
    })?;
    let mut u = Unpacker {
        inroot,
        limits,
        stats: UnpackStats::default(),
        dirs: Vec::new(),
        buf: vec![0; 256 << 10],
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_ignore_zeros(false);
    for entry in archive.entries().map_err(UnpackError::Tar)? {
        let mut entry = entry.map_err(UnpackError::Tar)?;
        u.apply(&mut entry)?;
    }
    u.finish()?;
    Ok(u.stats)
}

/// Metadata of one entry, with PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Unpacker<'l> {
    inroot: InRoot,
    limits: &'l Limits,
    stats: UnpackStats,
    /// Directories whose mtime is set at the end, after their contents are written.
    dirs: Vec<(Vec<Vec<u8>>, TimeSpec)>,
    buf: Vec<u8>,
}

/// Splits and cleans an entry name: `.` and empty components vanish, `..` removes the
/// previous component and stops at the root.
pub(crate) fn clean(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

fn show_path(comps: &[Vec<u8>]) -> String {
    let joined: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
    String::from_utf8_lossy(&joined.join(&b'/')).into_owned()
}

fn allowed_xattr(key: &[u8]) -> bool {
    (key.starts_with(b"user.") && !key.starts_with(b"user.overlay."))
        || key == b"security.capability"
}

fn parse_pax_time(v: &str) -> Option<TimeSpec> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    let nanos = if secs < 0 && nanos > 0 { -nanos } else { nanos };
    Some(TimeSpec::new(secs, nanos))
}

impl Unpacker<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries(self.limits.max_entries));
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let invalid = |reason: &str| UnpackError::Invalid {
            path: shown.clone(),
            reason: reason.to_owned(),
        };
        if raw_path.len() > self.limits.max_path_bytes {
            return Err(invalid("name is too long"));
        }
        let meta = self.meta(entry).map_err(|e| invalid(&e))?;
        let mut kind = entry.header().entry_type();
        if kind.is_file() && raw_path.ends_with(b"/") {
            kind = tar::EntryType::Directory; // old tars mark directories by the slash
        }
        let comps = clean(&raw_path);
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // the root itself: keep the snapshot root's own mode
        };
        let name = OsStr::from_bytes(name);

        if let Some(target) = name.as_bytes().strip_prefix(b".wh.") {
            if target == b".wh..opq" {
                let dir = self
                    .inroot
                    .dir(&comps[..comps.len() - 1], true)
                    .map_err(|e| self.io("resolve", parent, e))?;
                sys::set_xattr_at(
                    dir.as_fd(),
                    OsStr::new("."),
                    b"trusted.overlay.opaque",
                    b"y",
                )
                .map_err(|e| self.io("mark opaque", parent, e))?;
            } else if target.starts_with(b".wh.") {
                // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not content.
            } else if matches!(target, b"" | b"." | b"..") || target.contains(&b'/') {
                return Err(invalid("invalid whiteout name"));
            } else {
                let target = OsStr::from_bytes(target);
                let dir = self
                    .inroot
                    .dir(parent, true)
                    .map_err(|e| self.io("resolve", parent, e))?;
                self.remove_existing(dir.as_fd(), target, &comps)?;
                nix::sys::stat::mknodat(
                    Some(dir.as_raw_fd()),
                    target,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    0,
                )
                .map_err(|e| self.io("create whiteout", &comps, e.into()))?;
            }
            return Ok(());
        }

        let dir = self
            .inroot
            .dir(parent, true)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOTDIR) => invalid("a parent directory is not a directory"),
                Some(libc::ELOOP) => {
                    invalid("too many levels of symbolic links in a parent directory")
                }
                _ => self.io("resolve parent of", &comps, e),
            })?;
        let dfd = dir.as_fd();
        let existing =
            nix::sys::stat::fstatat(Some(dfd.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let is_dir = |st: &nix::sys::stat::FileStat| st.st_mode & libc::S_IFMT == libc::S_IFDIR;

        match kind {
            tar::EntryType::Directory => {
                if !existing.as_ref().is_some_and(is_dir) {
                    if existing.is_some() {
                        self.remove_existing(dfd, name, &comps)?;
                    }
                    nix::sys::stat::mkdirat(
                        Some(dfd.as_raw_fd()),
                        name,
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| self.io("create directory", &comps, e.into()))?;
                }
                self.own_and_mode(dfd, name, &meta, &comps)?;
                self.set_xattrs(dfd, name, &meta, &comps)?;
                self.dirs.push((comps.clone(), meta.mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                if existing.is_some() {
                    self.remove_existing(dfd, name, &comps)?;
                }
                let fd = nix::fcntl::openat(
                    Some(dfd.as_raw_fd()),
                    name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.io("create file", &comps, e.into()))?;
                // SAFETY: openat just returned this descriptor and nothing else owns it.
                let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
                self.copy_data(entry, &mut file, &comps)?;
                nix::unistd::fchown(
                    file.as_raw_fd(),
                    Some(meta.uid.into()),
                    Some(meta.gid.into()),
                )
                .map_err(|e| self.io("chown", &comps, e.into()))?;
                nix::sys::stat::fchmod(file.as_raw_fd(), Mode::from_bits_truncate(meta.mode))
                    .map_err(|e| self.io("chmod", &comps, e.into()))?;
                self.set_xattrs(dfd, name, &meta, &comps)?;
                nix::sys::stat::futimens(file.as_raw_fd(), &meta.mtime, &meta.mtime)
                    .map_err(|e| self.io("set mtime of", &comps, e.into()))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid("symlink without a target"))?;
                if target.len() > self.limits.max_path_bytes
                    || target.is_empty()
                    || target.contains(&0)
                {
                    return Err(invalid("invalid symlink target"));
                }
                if existing.is_some() {
                    self.remove_existing(dfd, name, &comps)?;
                }
                nix::unistd::symlinkat(OsStr::from_bytes(&target), Some(dfd.as_raw_fd()), name)
                    .map_err(|e| self.io("create symlink", &comps, e.into()))?;
                self.chown_nofollow(dfd, name, &meta, &comps)?;
                nix::sys::stat::utimensat(
                    Some(dfd.as_raw_fd()),
                    name,
                    &meta.mtime,
                    &meta.mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.io("set mtime of", &comps, e.into()))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid("hardlink without a target"))?;
                let tcomps = clean(&target);
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(invalid("hardlink to the root directory"));
                };
                let tname = OsStr::from_bytes(tname);
                let tdir = self
                    .inroot
                    .dir(tparent, false)
                    .map_err(|_| invalid("hardlink target not found in the layer"))?;
                let tstat = nix::sys::stat::fstatat(
                    Some(tdir.as_raw_fd()),
                    tname,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|_| invalid("hardlink target not found in the layer"))?;
                if is_dir(&tstat) {
                    return Err(invalid("hardlink to a directory"));
                }
                if let Some(st) = &existing {
                    if st.st_ino == tstat.st_ino && st.st_dev == tstat.st_dev {
                        return Ok(()); // already that inode (a link to itself)
                    }
                    self.remove_existing(dfd, name, &comps)?;
                }
                nix::unistd::linkat(
                    Some(tdir.as_raw_fd()),
                    tname,
                    Some(dfd.as_raw_fd()),
                    name,
                    AtFlags::empty(),
                )
                .map_err(|e| self.io("create hardlink", &comps, e.into()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (sflag, dev) = if kind == tar::EntryType::Fifo {
                    (SFlag::S_IFIFO, 0)
                } else {
                    let h = entry.header();
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    let f = if kind == tar::EntryType::Char {
                        SFlag::S_IFCHR
                    } else {
                        SFlag::S_IFBLK
                    };
                    (f, nix::sys::stat::makedev(major.into(), minor.into()))
                };
                if existing.is_some() {
                    self.remove_existing(dfd, name, &comps)?;
                }
                nix::sys::stat::mknodat(
                    Some(dfd.as_raw_fd()),
                    name,
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .map_err(|e| self.io("create device node", &comps, e.into()))?;
                self.own_and_mode(dfd, name, &meta, &comps)?;
                self.set_xattrs(dfd, name, &meta, &comps)?;
                nix::sys::stat::utimensat(
                    Some(dfd.as_raw_fd()),
                    name,
                    &meta.mtime,
                    &meta.mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.io("set mtime of", &comps, e.into()))?;
            }
            tar::EntryType::XGlobalHeader => {}
            other => {
                return Err(invalid(&format!(
                    "unsupported tar entry type {:?}",
                    other.as_byte() as char
                )));
            }
        }
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, String> {
        let h = entry.header();
        let mode = h.mode().map_err(|e| format!("bad mode: {e}"))? & 0o7777;
        let mut uid = h.uid().map_err(|e| format!("bad uid: {e}"))?;
        let mut gid = h.gid().map_err(|e| format!("bad gid: {e}"))?;
        let mut mtime = TimeSpec::new(h.mtime().map_err(|e| format!("bad mtime: {e}"))? as i64, 0);
        let mut xattrs = Vec::new();
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(|e| format!("bad pax header: {e}"))?
        {
            for ext in pax {
                let ext = ext.map_err(|e| format!("bad pax header: {e}"))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                };
                match key {
                    b"uid" => uid = num().ok_or("bad pax uid")?,
                    b"gid" => gid = num().ok_or("bad pax gid")?,
                    b"mtime" => {
                        mtime = std::str::from_utf8(value)
                            .ok()
                            .and_then(parse_pax_time)
                            .ok_or("bad pax mtime")?;
                    }
                    k => {
                        if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                            xattrs.push((name.to_vec(), value.to_vec()));
                        }
                    }
                }
            }
        }
        // uid_t -1 means "leave unchanged" to chown (the file would stay root's):
        // refuse it and anything that does not fit (CVE-2024-40635).
        let id = |v: u64, what: &str| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v != u32::MAX)
                .ok_or_else(|| format!("{what} {v} out of range"))
        };
        Ok(Meta {
            mode,
            uid: id(uid, "uid")?,
            gid: id(gid, "gid")?,
            mtime,
            xattrs,
        })
    }

    fn copy_data<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        file: &mut std::fs::File,
        comps: &[Vec<u8>],
    ) -> Result<(), UnpackError> {
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(UnpackError::Tar(e)),
            };
            self.stats.bytes += n as u64;
            if self.stats.bytes > self.limits.max_bytes {
                return Err(UnpackError::TooLarge(self.limits.max_bytes));
            }
            file.write_all(&self.buf[..n])
                .map_err(|e| self.io("write", comps, e))?;
        }
    }

    fn own_and_mode(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        comps: &[Vec<u8>],
    ) -> Result<(), UnpackError> {
        // chown first: it clears setuid/setgid, which chmod then sets.
        self.chown_nofollow(dir, name, meta, comps)?;
        // The node was just created (or is a directory) by this unpacker: it is not a
        // symlink, so following is harmless; Linux has no lchmod before fchmodat2.
        nix::sys::stat::fchmodat(
            Some(dir.as_raw_fd()),
            name,
            Mode::from_bits_truncate(meta.mode),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| self.io("chmod", comps, e.into()))
    }

    fn chown_nofollow(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        comps: &[Vec<u8>],
    ) -> Result<(), UnpackError> {
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name,
            Some(meta.uid.into()),
            Some(meta.gid.into()),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("chown", comps, e.into()))
    }

    fn set_xattrs(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        comps: &[Vec<u8>],
    ) -> Result<(), UnpackError> {
        for (key, value) in &meta.xattrs {
            if !allowed_xattr(key) {
                self.stats.dropped_xattrs += 1;
                tracing::debug!(path = %show_path(comps), key = %String::from_utf8_lossy(key), "dropping extended attribute from layer");
                continue;
            }
            sys::set_xattr_at(dir, name, key, value)
                .map_err(|e| self.io("set extended attribute on", comps, e))?;
        }
        Ok(())
    }

    /// Removes whatever is at `name` (recursively for a directory), without following.
    fn remove_existing(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        comps: &[Vec<u8>],
    ) -> Result<(), UnpackError> {
        self.inroot.invalidate();
        remove_all_at(dir, name).map_err(|e| self.io("remove", comps, e))
    }

    fn finish(&mut self) -> Result<(), UnpackError> {
        for (comps, mtime) in std::mem::take(&mut self.dirs).into_iter().rev() {
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            let Ok(dir) = self.inroot.dir(parent, false) else {
                continue;
            };
            let name = OsStr::from_bytes(name);
            let is_dir =
                nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
            if is_dir {
                nix::sys::stat::utimensat(
                    Some(dir.as_raw_fd()),
                    name,
                    &mtime,
                    &mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.io("set mtime of", &comps, e.into()))?;
            }
        }
        Ok(())
    }

    fn io(&self, op: &'static str, comps: &[Vec<u8>], source: io::Error) -> UnpackError {
        UnpackError::Io {
            op,
            path: show_path(comps),
            source,
        }
    }
}

/// Removes `name` in `dir`, recursing into directories, never following symlinks.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    let sub = unsafe { OwnedFd::from_raw_fd(fd) };
    let children: Vec<std::ffi::OsString> = {
        let dup = nix::unistd::dup(sub.as_raw_fd())?;
        let mut d = nix::dir::Dir::from_fd(dup)?;
        d.iter()
            .filter_map(Result::ok)
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
            .filter(|n| n != "." && n != "..")
            .collect()
    };
    for child in children {
        remove_all_at(sub.as_fd(), &child)?;
    }
    nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::RemoveDir,
    )?;
    Ok(())
}
