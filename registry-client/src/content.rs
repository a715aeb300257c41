//! The content store: immutable, digest-named blobs.
//!
//! ```text
//! <root>/blobs/sha256/<hex>   committed blobs, mode 0444, verified when committed
//! <root>/blobs/sha512/<hex>
//! <root>/ingest/<random>      blobs being written; removed on failure, cleared on start
//! ```
//!
//! A blob enters the store only through [`Ingest::commit`]: the data is fsynced, its
//! size and digest are checked against what the caller expected, the file is renamed
//! into `blobs/` and the directory is fsynced. A blob that does not match is never
//! stored, so a present blob is a verified blob; readers do not re-hash (containerd's
//! THREAT_MODEL STORE-005 makes the same choice). An interrupted write leaves only an
//! `ingest/` file, which nothing trusts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::Class;
use crate::sys;

/// Start write-back every this many bytes while ingesting.
const WRITEBACK_WINDOW: u64 = 8 << 20;

/// A content-store failure.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: failed to {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {expected} does not match its digest: the content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest} is {actual} bytes, but {expected} were expected")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} is missing from the content store")]
    Missing { digest: Digest },
    #[error("blob {digest} is {size} bytes, more than the {max} allowed here")]
    TooLarge { digest: Digest, size: u64, max: u64 },
}

impl ContentError {
    /// The error's class.
    pub fn class(&self) -> Class {
        match self {
            ContentError::Missing { .. } => Class::NotFound,
            _ => Class::Internal,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// A content store rooted at a directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root`. The root is made mode 0700:
    /// blobs are image content and not for other users of the host.
    pub fn open(root: impl Into<PathBuf>) -> Result<ContentStore, ContentError> {
        let root = root.into();
        for dir in [
            root.join("blobs/sha256"),
            root.join("blobs/sha512"),
            root.join("ingest"),
        ] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", &root))?;
        Ok(ContentStore { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it is present).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The blob's size, if present.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ContentError::Missing {
                digest: digest.clone(),
            },
            _ => ContentError::Io {
                op: "open",
                path,
                source,
            },
        })
    }

    /// Reads a whole blob of at most `max` bytes (manifests and configs).
    pub fn read(&self, digest: &Digest, max: u64) -> Result<Vec<u8>, ContentError> {
        let f = self.open_blob(digest)?;
        let path = self.blob_path(digest);
        let size = f.metadata().map_err(io_err("stat", &path))?.len();
        if size > max {
            return Err(ContentError::TooLarge {
                digest: digest.clone(),
                size,
                max,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        f.take(max)
            .read_to_end(&mut buf)
            .map_err(io_err("read", &path))?;
        Ok(buf)
    }

    /// Verifies `bytes` against `digest` and commits them.
    pub fn write(&self, digest: &Digest, bytes: &[u8]) -> Result<(), ContentError> {
        if self.contains(digest) {
            return digest
                .verify(bytes)
                .map_err(|actual| ContentError::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                });
        }
        let mut ingest = self.ingest(digest, Some(bytes.len() as u64))?;
        ingest
            .write_all(bytes)
            .map_err(io_err("write", &ingest.path))?;
        ingest.commit()
    }

    /// Starts writing a blob expected to have `digest` (and `size`, when known).
    pub fn ingest(&self, digest: &Digest, size: Option<u64>) -> Result<Ingest, ContentError> {
        let mut rand = [0u8; 8];
        let name = match getrandom_fill(&mut rand) {
            Ok(()) => format!("{}-{}", digest.hex(), hex::encode(rand)),
            Err(_) => format!(
                "{}-{}-{:?}",
                digest.hex(),
                std::process::id(),
                std::thread::current().id()
            ),
        };
        let path = self.root.join("ingest").join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok(Ingest {
            file,
            path,
            target: self.blob_path(digest),
            expected: digest.clone(),
            expected_size: size,
            hasher: Hasher::new(digest.algorithm()),
            written: 0,
            writeback_from: 0,
            committed: false,
        })
    }

    /// Every committed blob.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.name());
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ContentError::Io {
                        op: "list",
                        path: dir,
                        source: e,
                    });
                }
            };
            for e in entries {
                let e = e.map_err(io_err("list", &dir))?;
                let name = e.file_name();
                match format!("{}:{}", alg.name(), name.to_string_lossy()).parse::<Digest>() {
                    Ok(d) => out.push(d),
                    Err(_) => {
                        tracing::warn!(path = %e.path().display(), "ignoring stray file in content store")
                    }
                }
            }
        }
        Ok(out)
    }

    /// Deletes a blob; `false` if it was not there.
    pub fn delete(&self, digest: &Digest) -> Result<bool, ContentError> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ContentError::Io {
                op: "delete",
                path,
                source: e,
            }),
        }
    }

    /// Removes every leftover ingest file. Call only when no ingest is running (at
    /// start-up); returns how many were removed.
    pub fn clear_ingest(&self) -> Result<usize, ContentError> {
        let dir = self.root.join("ingest");
        let mut n = 0;
        for e in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let path = e.map_err(io_err("list", &dir))?.path();
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            n += 1;
        }
        Ok(n)
    }
}

fn getrandom_fill(buf: &mut [u8]) -> io::Result<()> {
    let mut f = File::open("/dev/urandom")?;
    f.read_exact(buf)
}

/// A blob being written. Dropping it without [`commit`](Ingest::commit) removes it.
#[derive(Debug)]
pub struct Ingest {
    file: File,
    path: PathBuf,
    target: PathBuf,
    expected: Digest,
    expected_size: Option<u64>,
    hasher: Hasher,
    written: u64,
    writeback_from: u64,
    committed: bool,
}

impl Ingest {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest the blob must have.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Fsyncs, verifies size and digest, and renames the blob into place.
    pub fn commit(mut self) -> Result<(), ContentError> {
        if let Some(size) = self.expected_size
            && size != self.written
        {
            return Err(ContentError::SizeMismatch {
                digest: self.expected.clone(),
                expected: size,
                actual: self.written,
            });
        }
        let actual =
            std::mem::replace(&mut self.hasher, Hasher::new(self.expected.algorithm())).finish();
        if actual != self.expected {
            return Err(ContentError::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            });
        }
        self.file.sync_all().map_err(io_err("fsync", &self.path))?;
        self.file
            .set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io_err("chmod", &self.path))?;
        fs::rename(&self.path, &self.target).map_err(io_err("rename", &self.target))?;
        self.committed = true;
        let dir = self.target.parent().expect("blob paths have a parent");
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", dir))?;
        Ok(())
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(max) = self.expected_size
            && self.written + buf.len() as u64 > max
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} is larger than its descriptor's {max} bytes",
                    self.expected
                ),
            ));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        if self.written - self.writeback_from >= WRITEBACK_WINDOW {
            sys::start_writeback(
                self.file.as_fd(),
                self.writeback_from,
                self.written - self.writeback_from,
            );
            self.writeback_from = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_verified_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path().join("content")).unwrap();
        let good = Digest::sha256_of(b"hello");
        store.write(&good, b"hello").unwrap();
        assert!(store.contains(&good));
        assert_eq!(store.read(&good, 100).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![good.clone()]);
        let mode = fs::metadata(store.blob_path(&good))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o444);

        let claimed = Digest::sha256_of(b"something else");
        let err = store.write(&claimed, b"hello").unwrap_err();
        assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&claimed.to_string()) && msg.contains(&good.to_string()),
            "{msg}"
        );
        assert!(!store.contains(&claimed));
        assert_eq!(
            fs::read_dir(dir.path().join("content/ingest"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn size_is_checked_and_interrupted_ingest_leaves_nothing_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"0123456789");
        let mut w = store.ingest(&d, Some(10)).unwrap();
        w.write_all(b"01234").unwrap();
        let err = w.commit().unwrap_err();
        assert!(
            matches!(
                err,
                ContentError::SizeMismatch {
                    expected: 10,
                    actual: 5,
                    ..
                }
            ),
            "{err}"
        );
        let mut w = store.ingest(&d, Some(4)).unwrap();
        assert!(w.write_all(b"0123456789").is_err());
        drop(w);
        // An ingest abandoned mid-way (the process "dies": forget skips Drop).
        let mut w = store.ingest(&d, Some(10)).unwrap();
        w.write_all(b"01234").unwrap();
        std::mem::forget(w);
        assert!(!store.contains(&d));
        assert_eq!(store.clear_ingest().unwrap(), 1);
        store.write(&d, b"0123456789").unwrap();
        assert!(store.contains(&d));
        assert!(store.delete(&d).unwrap());
        assert!(!store.delete(&d).unwrap());
        assert!(matches!(
            store.open_blob(&d),
            Err(ContentError::Missing { .. })
        ));
    }

    #[test]
    fn read_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let d = Digest::sha256_of(&[7u8; 100]);
        store.write(&d, &[7u8; 100]).unwrap();
        assert!(matches!(
            store.read(&d, 99),
            Err(ContentError::TooLarge { .. })
        ));
    }
}
