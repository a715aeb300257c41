//! The raw system calls this crate makes that neither `std` nor `nix` wrap.
//!
//! Everything else goes through `nix` or `pathrs`; this module is the only place with
//! `unsafe`.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte in name"))
}

/// Sets an extended attribute on `name` inside the directory `dir`, without following
/// a symlink at `name`.
///
/// There is no `lsetxattrat` before Linux 6.13, so this goes through
/// `/proc/self/fd/<dir>/<name>`: the magic link resolves to `dir` itself and the
/// final component is looked up inside it with `lsetxattr`'s no-follow semantics.
pub(crate) fn set_xattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &[u8],
    value: &[u8],
) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.as_bytes());
    let path = cstring(&path)?;
    let key = cstring(key)?;
    // SAFETY: `path` and `key` are valid NUL-terminated strings that outlive the call;
    // `value` is a valid buffer of `value.len()` bytes.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads an extended attribute of `name` inside `dir` (no-follow), `None` if unset.
#[cfg(test)]
pub(crate) fn get_xattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &[u8],
) -> io::Result<Option<Vec<u8>>> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.as_bytes());
    let path = cstring(&path)?;
    let key = cstring(key)?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: `path` and `key` are valid NUL-terminated strings; `buf` is a writable
    // buffer of `buf.len()` bytes that outlives the call.
    let rc = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::ENODATA) {
            Ok(None)
        } else {
            Err(err)
        };
    }
    buf.truncate(rc as usize);
    Ok(Some(buf))
}

/// Starts write-back of a byte range of `fd` without waiting for it, so that the
/// final `fsync` of a large blob has little left to do.
pub(crate) fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) {
    // SAFETY: sync_file_range only reads its integer arguments; a bad fd or range
    // yields an error code, which is ignored because this is only a hint.
    let _ = unsafe {
        libc::sync_file_range(
            fd.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}
