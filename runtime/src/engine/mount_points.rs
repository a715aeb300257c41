//! Mount points made ahead, as Docker's init layer: `/proc`, `/dev`, `/sys` and the
//! `/etc` files every container gets a mount on. An image that lacks one (a `FROM
//! scratch` image with one static binary) otherwise has the runtime make it in the
//! container's init, on the path of every start, where each missing path goes
//! through the checked in-root `mkdir` (tens of system calls through
//! `/proc/thread-self` per component: 0.4 to 0.8 ms of a 5 to 7 ms init here, measured
//! for the four directories and three files).
//!
//! They are made once per image, in a small layer of their own on the run root that
//! the image's containers mount as their topmost lower layer: nothing is written per
//! task (making them in each container's writable layer, on the data root's disk,
//! cost about as much as it saved). Only what the image has nothing at is made: a path the merged
//! image shows as a file, a symlink or a directory keeps what the image has (a
//! symlinked `/etc` is left alone, and the runtime resolves it in the root as before).
//! A directory the image has, repeated in the layer to hold a new file, takes the
//! image's mode and owner, so the merged directory looks as it does in the image.

use std::fs::{self, DirBuilder, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use berth_registry::Digest;

use super::sys;

/// Directories every container mounts something on (`proc`, a tmpfs, `sysfs`) or
/// holds mounted files in.
const DIRS: [&str; 4] = ["proc", "dev", "sys", "etc"];
/// The files berth bind-mounts into every container.
const FILES: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// What overlayfs shows at a path of the image.
#[derive(Debug, Clone)]
enum Merged {
    /// Nothing (or a whiteout).
    Absent,
    /// A directory; its attributes are the topmost layer's.
    Dir(Metadata),
    /// A file, symlink, device, or a path that could not be read.
    Other,
}

/// The layer of mount points for an image whose layers are `lowers` (top first) and
/// whose id is `image_id`, under `cache`; made on first use. `None` when the image has
/// every mount point (no layer is needed) or the layer could not be made (then the
/// runtime makes them, as it would without this).
pub(crate) fn layer(cache: &Path, image_id: &Digest, lowers: &[PathBuf]) -> Option<PathBuf> {
    // The image id names the layers' content (their diff ids), and with it every
    // entry made here; snapshot directories may be renumbered after a prune.
    let key = format!("{}-{}", image_id.algorithm().name(), image_id.hex());
    let path = cache.join(&key);
    if !path.is_dir()
        && let Err(e) = build(cache, &key, lowers)
    {
        tracing::debug!(image = %image_id, error = %e, "mount point layer not made");
        return None;
    }
    // An empty layer (the image has them all) would only lengthen every lookup.
    match fs::read_dir(&path).map(|mut d| d.next().is_some()) {
        Ok(true) => Some(path),
        _ => None,
    }
}

/// Removes the layers no mounted root filesystem uses, and builds left unfinished: at
/// daemon start, once the mounts of tasks that are gone are unmounted, so the run root
/// keeps only what running tasks mount (a layer is made again when its image next
/// runs). Nothing is removed when the mount table cannot be read, nor a layer whose
/// path the mount table might show escaped.
pub(crate) fn sweep(cache: &Path) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let shown = path.to_string_lossy();
        let plain = shown
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '+'));
        let unfinished = e.file_name().to_string_lossy().starts_with('.');
        // The layer is always the first of the lower dirs, followed by the image's.
        if unfinished || (plain && !mountinfo.contains(&format!("{shown}:"))) {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Makes the layer in a directory of its own, then renames it into place: a layer
/// found at `cache/key` is always whole. Two tasks of one image starting at once both
/// build it; the second rename fails and that task uses the first's.
fn build(cache: &Path, key: &str, lowers: &[PathBuf]) -> io::Result<()> {
    fs::create_dir_all(cache)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = cache.join(format!(".{key}.{}.{nanos}", std::process::id()));
    fs::create_dir(&tmp)?;
    let made = make_inner(lowers, &tmp).and_then(|()| fs::rename(&tmp, cache.join(key)));
    match made {
        Ok(()) => Ok(()),
        Err(_) if cache.join(key).is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Makes in `upper` the mount points that the layers `lowers` (top first) lack.
fn make_inner(lowers: &[PathBuf], upper: &Path) -> io::Result<()> {
    for dir in DIRS {
        if matches!(merged(lowers, Path::new(dir)), Merged::Absent) {
            make_dir(&upper.join(dir), 0o755, None)?;
        }
    }
    for file in FILES {
        let rel = Path::new(file);
        if !matches!(merged(lowers, rel), Merged::Absent) {
            continue;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        match merged(lowers, parent) {
            // Made above, as a new directory.
            Merged::Absent => {}
            Merged::Dir(m) => make_dir(&upper.join(parent), m.mode() & 0o7777, Some(&m))?,
            Merged::Other => continue,
        }
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(upper.join(rel))
        {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes `path` unless it exists, with `mode` and the owner of `like`.
fn make_dir(path: &Path, mode: u32, like: Option<&Metadata>) -> io::Result<()> {
    match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(m) = like {
        std::os::unix::fs::lchown(path, Some(m.uid()), Some(m.gid()))?;
    }
    // The process umask narrowed `mode` at creation.
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
}

/// What the layers `lowers` (top first) show merged at `rel` (plain components), by
/// overlayfs's rules: per name, the topmost layer with an entry decides; a whiteout
/// hides the name in the layers below it, a non-directory ends the merge, and so does
/// an opaque directory. Each layer is looked at only where the path so far is a real
/// directory in it, so no symlink of the image is ever followed on the host.
fn merged(lowers: &[PathBuf], rel: &Path) -> Merged {
    let mut dirs: Vec<PathBuf> = lowers.to_vec();
    // (An empty path names nothing made here.)
    let mut merged = Merged::Other;
    for name in rel.components() {
        let mut below = Vec::new();
        let mut found = Merged::Absent;
        for dir in &dirs {
            let path = dir.join(name);
            let m = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => return Merged::Other,
            };
            if is_whiteout(&m) {
                break;
            }
            if !m.is_dir() {
                if below.is_empty() {
                    found = Merged::Other;
                }
                break;
            }
            if below.is_empty() {
                found = Merged::Dir(m.clone());
            }
            let opaque = sys::is_opaque_dir(&path);
            below.push(path);
            if opaque {
                break;
            }
        }
        match found {
            Merged::Dir(_) => {
                merged = found;
                dirs = below;
            }
            other => return other,
        }
    }
    merged
}

/// overlayfs's whiteout: a character device 0/0.
fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn layers(n: usize) -> (tempfile::TempDir, Vec<PathBuf>, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let lowers: Vec<PathBuf> = (0..n).map(|i| tmp.path().join(format!("l{i}"))).collect();
        for l in &lowers {
            fs::create_dir(l).unwrap();
        }
        let upper = tmp.path().join("upper");
        fs::create_dir(&upper).unwrap();
        (tmp, lowers, upper)
    }

    fn whiteout(path: &Path) {
        nix::sys::stat::mknod(
            path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
    }

    fn listing(upper: &Path) -> Vec<String> {
        let mut v = Vec::new();
        for e in walk(upper) {
            let rel = e
                .strip_prefix(upper)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            v.push(if e.is_dir() { format!("{rel}/") } else { rel });
        }
        v.sort();
        v
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(walk(&p));
            }
            v.push(p);
        }
        v
    }

    #[test]
    fn an_empty_image_gets_every_mount_point() {
        let (_t, lowers, upper) = layers(1);
        make_inner(&lowers, &upper).unwrap();
        assert_eq!(
            listing(&upper),
            [
                "dev/",
                "etc/",
                "etc/hostname",
                "etc/hosts",
                "etc/resolv.conf",
                "proc/",
                "sys/"
            ]
        );
        let etc = fs::metadata(upper.join("etc")).unwrap();
        assert_eq!(etc.permissions().mode() & 0o7777, 0o755);
        let hosts = fs::metadata(upper.join("etc/hosts")).unwrap();
        assert_eq!(hosts.len(), 0);
    }

    #[test]
    fn what_the_image_has_is_left_to_it() {
        let (_t, lowers, upper) = layers(2);
        // Lower layer: /proc and /sys directories, /etc with hosts; upper layer: /dev.
        fs::create_dir(lowers[1].join("proc")).unwrap();
        fs::create_dir(lowers[1].join("sys")).unwrap();
        fs::create_dir(lowers[0].join("dev")).unwrap();
        fs::create_dir(lowers[1].join("etc")).unwrap();
        fs::set_permissions(lowers[1].join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::write(lowers[1].join("etc/hosts"), "127.0.0.1 image\n").unwrap();
        make_inner(&lowers, &upper).unwrap();
        // /etc is copied up (with the image's mode) to hold the two missing files.
        assert_eq!(listing(&upper), ["etc/", "etc/hostname", "etc/resolv.conf"]);
        let etc = fs::metadata(upper.join("etc")).unwrap();
        assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
    }

    #[test]
    fn a_symlinked_or_file_path_is_not_shadowed() {
        let (_t, lowers, upper) = layers(1);
        symlink("/host/etc", lowers[0].join("etc")).unwrap();
        fs::write(lowers[0].join("proc"), "").unwrap();
        make_inner(&lowers, &upper).unwrap();
        assert_eq!(listing(&upper), ["dev/", "sys/"]);
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers() {
        let (_t, lowers, upper) = layers(3);
        // /sys deleted by the top layer: absent, so it is made.
        whiteout(&lowers[0].join("sys"));
        fs::create_dir(lowers[2].join("sys")).unwrap();
        // /etc emptied (opaque) by the middle layer, which hid the bottom layer's hosts.
        fs::create_dir(lowers[1].join("etc")).unwrap();
        crate::engine::sys::mark_opaque(&lowers[1].join("etc"));
        fs::create_dir(lowers[2].join("etc")).unwrap();
        fs::write(lowers[2].join("etc/hosts"), "").unwrap();
        // A top-layer directory over a bottom-layer file: a directory.
        fs::create_dir(lowers[0].join("proc")).unwrap();
        fs::write(lowers[2].join("proc"), "").unwrap();
        make_inner(&lowers, &upper).unwrap();
        assert_eq!(
            listing(&upper),
            [
                "dev/",
                "etc/",
                "etc/hostname",
                "etc/hosts",
                "etc/resolv.conf",
                "sys/"
            ]
        );
    }

    #[test]
    fn the_sweep_removes_unmounted_layers_and_unfinished_builds() {
        let (t, lowers, _) = layers(1);
        let cache = t.path().join("cache");
        let layer = layer(&cache, &Digest::sha256_of(b"a"), &lowers).unwrap();
        fs::create_dir(cache.join(".sha256-bb.1.2")).unwrap();
        // A path the mount table would show escaped is left alone.
        fs::create_dir(cache.join("odd name")).unwrap();
        sweep(&cache);
        assert!(!layer.exists());
        let left: Vec<String> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["odd name"]);
        sweep(&t.path().join("absent"));
    }

    #[test]
    fn the_layer_is_made_once_per_image() {
        let (t, lowers, _) = layers(1);
        let cache = t.path().join("cache");
        let first = layer(&cache, &Digest::sha256_of(b"a"), &lowers).unwrap();
        assert_eq!(listing(&first).len(), 7);
        fs::write(first.join("etc/hosts"), "kept").unwrap();
        assert_eq!(
            layer(&cache, &Digest::sha256_of(b"a"), &lowers),
            Some(first.clone())
        );
        assert_eq!(fs::read_to_string(first.join("etc/hosts")).unwrap(), "kept");
        // Another image has its own; one with every mount point needs none.
        assert_ne!(
            layer(&cache, &Digest::sha256_of(b"b"), &lowers),
            Some(first)
        );
        let (_t2, full, _) = layers(1);
        make_inner(&[], &full[0]).unwrap();
        assert_eq!(layer(&cache, &Digest::sha256_of(b"c"), &full), None);
        // No build directory is left behind.
        let names: Vec<String> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }
}
