//! Files the engine reads and writes for containers: environment files, host volume
//! paths, image `VOLUME` contents and reads inside a container's rootfs.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::spec::RootfsFiles;

/// Parses an environment file: `NAME=value` lines, `#` comments and blank lines
/// skipped, no quoting or expansion (ECS's `.env` rules).
pub(crate) fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The local path of an `environmentFiles[].value` berth reads (an absolute path or a
/// `file://` URL); `None` for S3 objects, which berth cannot fetch.
pub(crate) fn local_env_file(value: &str) -> Option<PathBuf> {
    if let Some(p) = value.strip_prefix("file://") {
        return Some(PathBuf::from(p));
    }
    value.starts_with('/').then(|| PathBuf::from(value))
}

/// Checks that a `host.sourcePath` names a directory (or file) directly: absolute, no
/// `..`, and no symlink anywhere in it — a symlink could redirect the mount to a place
/// the task definition did not name. A missing directory is created (as ECS on EC2).
pub(crate) fn prepare_host_path(path: &str) -> Result<PathBuf, String> {
    resolve_host_path("host.sourcePath", path, true)
}

/// The same checks for a path that must exist (a `driverOpts` bind `device`).
pub(crate) fn existing_host_path(path: &str) -> Result<PathBuf, String> {
    resolve_host_path("device", path, false)
}

fn resolve_host_path(what: &str, path: &str, create: bool) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("{what} {path:?} must be an absolute path"));
    }
    let mut cur = PathBuf::from("/");
    let comps: Vec<Component<'_>> = p.components().collect();
    for (i, c) in comps.iter().enumerate() {
        match c {
            Component::RootDir => continue,
            Component::Normal(n) => cur.push(n),
            Component::ParentDir | Component::CurDir | Component::Prefix(_) => {
                return Err(format!("{what} {path:?} must not contain '.' or '..'"));
            }
        }
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{what} {path:?} goes through the symbolic link {}; name the real path",
                    cur.display()
                ));
            }
            Ok(m) if !m.is_dir() && i + 1 < comps.len() => {
                return Err(format!(
                    "{what} {path:?}: {} is not a directory",
                    cur.display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                std::fs::create_dir(&cur)
                    .map_err(|e| format!("creating {what} {}: {e}", cur.display()))?;
            }
            Err(e) => return Err(format!("{what} {}: {e}", cur.display())),
        }
    }
    Ok(cur)
}

/// Reads files inside a container's merged rootfs with in-root resolution: a symlink
/// in the image (`/etc -> /host/etc`) resolves inside the rootfs, never on the host.
pub(crate) struct InRoot {
    root: Option<pathrs::Root>,
}

impl InRoot {
    pub(crate) fn open(rootfs: &Path) -> InRoot {
        InRoot {
            root: pathrs::Root::open(rootfs).ok(),
        }
    }

    /// A host path through which `path` (resolved in-root) can be opened, valid while
    /// the returned handle lives.
    fn resolve(&self, path: &str) -> Option<pathrs::Handle> {
        self.root.as_ref()?.resolve(path).ok()
    }
}

impl RootfsFiles for InRoot {
    fn read_to_string(&self, path: &str) -> Option<String> {
        let handle = self.resolve(path)?;
        let file = handle.reopen(pathrs::flags::OpenFlags::O_RDONLY).ok()?;
        let mut s = String::new();
        io::Read::read_to_string(&mut io::Read::take(file, 4 << 20), &mut s).ok()?;
        Some(s)
    }
}

/// Copies what the image has at `image_path` (resolved in-root) into the empty volume
/// directory `dest`, as Docker populates a new anonymous volume. Symlinks are copied as
/// links, never followed; owners, modes and special bits are kept.
pub(crate) fn populate_volume(rootfs: &Path, image_path: &str, dest: &Path) -> io::Result<()> {
    let root = InRoot::open(rootfs);
    let Some(handle) = root.resolve(image_path) else {
        return Ok(());
    };
    let file =
        handle.reopen(pathrs::flags::OpenFlags::O_RDONLY | pathrs::flags::OpenFlags::O_DIRECTORY);
    let Ok(dir) = file else { return Ok(()) };
    let src = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ));
    let meta = std::fs::metadata(&src)?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    let _ = nix::unistd::chown(dest, Some(meta.uid().into()), Some(meta.gid().into()));
    copy_tree(&src, dest)
}

fn copy_tree(src: &Path, dest: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        } else {
            continue; // devices, fifos and sockets are not copied into volumes
        }
        let _ = nix::unistd::fchownat(
            None,
            &to,
            Some(meta.uid().into()),
            Some(meta.gid().into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_follow_ecs_rules() {
        let v = parse_env_file("# comment\nA=1\n\nB = two words \n=bad\nC=x=y\nnovalue\n");
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), " two words".into()),
                ("C".into(), "x=y".into())
            ]
        );
        assert_eq!(
            local_env_file("file:///etc/app.env"),
            Some("/etc/app.env".into())
        );
        assert_eq!(local_env_file("/etc/app.env"), Some("/etc/app.env".into()));
        assert_eq!(local_env_file("arn:aws:s3:::bucket/app.env"), None);
    }

    #[test]
    fn host_paths_are_created_and_symlinks_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b");
        let p = prepare_host_path(target.to_str().unwrap()).unwrap();
        assert!(p.is_dir());
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        let err = prepare_host_path(dir.path().join("link/x").to_str().unwrap()).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(prepare_host_path("relative/path").is_err());
        // A bind device must exist: nothing is created for it.
        let missing = dir.path().join("absent");
        assert!(existing_host_path(missing.to_str().unwrap()).is_err());
        assert!(!missing.exists());
        assert!(existing_host_path(target.to_str().unwrap()).is_ok());
        assert!(prepare_host_path(&format!("{}/../x", dir.path().display())).is_err());
    }

    #[test]
    fn image_volume_content_is_copied_without_following_links_out() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        std::fs::write(rootfs.join("data/sub/f"), "hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", rootfs.join("data/link")).unwrap();
        std::os::unix::fs::symlink("/data", rootfs.join("alias")).unwrap();
        let dest = dir.path().join("vol");
        std::fs::create_dir(&dest).unwrap();
        populate_volume(&rootfs, "/alias", &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("sub/f")).unwrap(),
            "hello"
        );
        assert!(
            std::fs::symlink_metadata(dest.join("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let files = InRoot::open(&rootfs);
        assert_eq!(
            files.read_to_string("/alias/sub/f").as_deref(),
            Some("hello")
        );
    }
}
