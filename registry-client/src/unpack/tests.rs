//! The unpacker against hostile and legitimate layers.
//!
//! `breakouts` ports containerd's `TestBreakouts` table (`pkg/archive/tar_test.go`)
//! case by case. containerd applies layers onto a merged view and deletes whited-out
//! paths; berth writes overlayfs whiteouts into the layer's own directory, so where
//! containerd checks "the file no longer exists" these tests check "the name is an
//! overlay whiteout (char 0:0)", which is what the merged view turns into absence.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::*;

/// Root-needing tests: fail under `BERTH_TEST_ROOT=1`, skip with a reason otherwise.
pub(crate) fn have_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("BERTH_TEST_ROOT").as_deref() != Ok("1"),
        "BERTH_TEST_ROOT=1 but this test is not running as root"
    );
    eprintln!("skipping: unpacking owners, device nodes and trusted xattrs needs root");
    false
}

type TarEntry = (tar::Header, Vec<u8>, Vec<(String, Vec<u8>)>);
type Check = Box<dyn Fn(&Path, Result<UnpackStats, UnpackError>)>;

/// A tar archive built entry by entry with raw names (no path sanitising).
#[derive(Default)]
pub(crate) struct Tar {
    b: Vec<TarEntry>,
}

fn raw_header(kind: tar::EntryType, name: &str, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let gnu = h.as_gnu_mut().unwrap();
    assert!(name.len() <= 100, "test names must fit the header");
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h
}

impl Tar {
    pub(crate) fn dir(mut self, name: &str, mode: u32) -> Self {
        self.b.push((
            raw_header(tar::EntryType::Directory, name, mode, 0),
            vec![],
            vec![],
        ));
        self
    }
    pub(crate) fn file(mut self, name: &str, data: &[u8], mode: u32) -> Self {
        self.b.push((
            raw_header(tar::EntryType::Regular, name, mode, data.len() as u64),
            data.to_vec(),
            vec![],
        ));
        self
    }
    fn link_entry(mut self, kind: tar::EntryType, target: &str, name: &str) -> Self {
        let mut h = raw_header(kind, name, 0o777, 0);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.b.push((h, vec![], vec![]));
        self
    }
    pub(crate) fn symlink(self, target: &str, name: &str) -> Self {
        self.link_entry(tar::EntryType::Symlink, target, name)
    }
    pub(crate) fn link(self, target: &str, name: &str) -> Self {
        self.link_entry(tar::EntryType::Link, target, name)
    }
    fn node(mut self, kind: tar::EntryType, name: &str, mode: u32, major: u32, minor: u32) -> Self {
        let mut h = raw_header(kind, name, mode, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.b.push((h, vec![], vec![]));
        self
    }
    fn owned(mut self, uid: u64, gid: u64) -> Self {
        let last = self.b.last_mut().unwrap();
        last.0.set_uid(uid);
        last.0.set_gid(gid);
        self
    }
    fn pax(mut self, key: &str, value: &[u8]) -> Self {
        self.b
            .last_mut()
            .unwrap()
            .2
            .push((key.to_owned(), value.to_vec()));
        self
    }
    pub(crate) fn bytes(self) -> Vec<u8> {
        let mut out = tar::Builder::new(Vec::new());
        for (mut h, data, pax) in self.b {
            if !pax.is_empty() {
                out.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .unwrap();
            }
            h.set_cksum();
            out.append(&h, data.as_slice()).unwrap();
        }
        out.into_inner().unwrap()
    }
}

fn apply(root: &Path, tar: Tar) -> Result<UnpackStats, UnpackError> {
    let bytes = tar.bytes();
    unpack(&mut bytes.as_slice(), root, &Limits::default())
}

fn stat_in_root(root: &Path, p: &str) -> (u64, u64) {
    let r = pathrs::Root::open(root).unwrap();
    let h = r.resolve(p).unwrap_or_else(|e| panic!("resolve {p}: {e}"));
    let st = nix::sys::stat::fstat(OwnedFd::from(h).as_raw_fd()).unwrap();
    (st.st_dev, st.st_ino)
}

fn same_file(root: &Path, a: &str, b: &str) -> bool {
    stat_in_root(root, a) == stat_in_root(root, b)
}

fn is_whiteout(root: &Path, p: &str) -> bool {
    fs::symlink_metadata(root.join(p))
        .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0)
}

fn read(root: &Path, p: &str) -> Vec<u8> {
    fs::read(root.join(p)).unwrap_or_else(|e| panic!("read {p}: {e}"))
}

fn is_symlink(root: &Path, p: &str) -> bool {
    fs::symlink_metadata(root.join(p)).is_ok_and(|m| m.file_type().is_symlink())
}

mod breakouts;

#[test]
fn legit_var_run_symlink_unpacks_inside_the_root() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = Tar::default()
        .dir("var", 0o755)
        .symlink("/run", "var/run")
        .file("var/run/app.pid", b"42", 0o644);
    apply(dir.path(), tar).unwrap();
    assert_eq!(read(dir.path(), "run/app.pid"), b"42");
    assert!(is_symlink(dir.path(), "var/run"));
    assert!(!Path::new("/run/app.pid").exists() || fs::read("/run/app.pid").unwrap() != b"42");
}

#[test]
fn dot_dot_and_absolute_names_land_inside() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = Tar::default()
        .file("../../bA-host/x", b"1", 0o644)
        .file("/bA-abs/y", b"2", 0o644);
    apply(dir.path(), tar).unwrap();
    assert_eq!(read(dir.path(), "bA-host/x"), b"1");
    assert_eq!(read(dir.path(), "bA-abs/y"), b"2");
    assert!(!Path::new("/bA-abs").exists());
}

#[test]
fn keeps_modes_owners_times_links_devices_and_safe_xattrs() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let tar = Tar::default()
        .dir("bin", 0o755)
        .file("bin/su", b"x", 0o4755)
        .file("bin/wall", b"y", 0o2711)
        .owned(0, 5)
        .dir("tmp", 0o1777)
        .dir("home/app", 0o700)
        .owned(1000, 1000)
        .file("home/app/f", b"data", 0o640)
        .owned(1000, 1001)
        .link("home/app/f", "home/app/g")
        .node(tar::EntryType::Char, "dev/null", 0o666, 1, 3)
        .node(tar::EntryType::Block, "dev/loop0", 0o660, 7, 0)
        .node(tar::EntryType::Fifo, "run/fifo", 0o600, 0, 0)
        .file("bin/ping", b"p", 0o755)
        .pax(
            "SCHILY.xattr.security.capability",
            &[
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        )
        .pax("SCHILY.xattr.user.note", b"hello")
        .pax("SCHILY.xattr.trusted.overlay.opaque", b"y")
        .pax("SCHILY.xattr.trusted.overlay.redirect", b"/etc")
        .pax(
            "SCHILY.xattr.security.selinux",
            b"system_u:object_r:shadow_t:s0",
        )
        .pax("SCHILY.xattr.user.overlay.opaque", b"y")
        .dir("opaque", 0o755)
        .pax("SCHILY.xattr.trusted.overlay.opaque", b"y")
        .file("big", &vec![7u8; 1 << 20], 0o600)
        .pax("mtime", b"1700000000.5");
    let stats = apply(r, tar).unwrap();
    let mode = |p: &str| fs::symlink_metadata(r.join(p)).unwrap().mode() & 0o7777;
    let meta = |p: &str| fs::symlink_metadata(r.join(p)).unwrap();
    assert_eq!(mode("bin/su"), 0o4755);
    assert_eq!(mode("bin/wall"), 0o2711);
    assert_eq!(meta("bin/wall").gid(), 5);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!((meta("home/app").uid(), mode("home/app")), (1000, 0o700));
    assert_eq!(
        (meta("home/app/f").uid(), meta("home/app/f").gid()),
        (1000, 1001)
    );
    assert_eq!(meta("home/app/f").ino(), meta("home/app/g").ino());
    assert_eq!(meta("home/app/f").nlink(), 2);
    assert_eq!(meta("bin/su").mtime(), 1_600_000_000);
    assert_eq!(
        meta("home/app").mtime(),
        1_600_000_000,
        "directory mtimes are set last"
    );
    assert_eq!(
        (meta("big").mtime(), meta("big").mtime_nsec()),
        (1_700_000_000, 500_000_000)
    );
    assert!(meta("dev/null").file_type().is_char_device());
    assert_eq!(meta("dev/null").rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(mode("dev/null"), 0o666);
    assert!(meta("dev/loop0").file_type().is_block_device());
    assert!(meta("run/fifo").file_type().is_fifo());
    let xattr = |p: &str, k: &str| {
        let (parent, name) = p.rsplit_once('/').unwrap_or(("", p));
        let d = fs::File::open(r.join(parent)).unwrap();
        sys::get_xattr_at(d.as_fd(), OsStr::new(name), k.as_bytes()).unwrap()
    };
    assert_eq!(
        xattr("bin/ping", "user.note").as_deref(),
        Some(&b"hello"[..])
    );
    assert!(
        xattr("bin/ping", "security.capability").is_some(),
        "file capabilities are kept"
    );
    assert_eq!(xattr("bin/ping", "trusted.overlay.opaque"), None);
    assert_eq!(xattr("bin/ping", "trusted.overlay.redirect"), None);
    assert_eq!(xattr("bin/ping", "security.selinux"), None);
    assert_eq!(xattr("bin/ping", "user.overlay.opaque"), None);
    assert_eq!(
        xattr("opaque", "trusted.overlay.opaque"),
        None,
        "a layer cannot make a directory opaque by xattr"
    );
    assert_eq!(stats.dropped_xattrs, 5);
    assert_eq!(stats.bytes, 4 + 1 + 1 + 1 + (1 << 20));
}

#[test]
fn writes_overlay_whiteouts_and_opaque_dirs() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let tar = Tar::default()
        .dir("etc", 0o755)
        .file("etc/.wh.shadow", b"", 0o644)
        .dir("var/cache", 0o755)
        .file("var/cache/.wh..wh..opq", b"", 0o644)
        .file("var/cache/new", b"n", 0o644)
        .file("usr/.wh..wh.plnk", b"", 0o644)
        .file("deep/missing/.wh.gone", b"", 0o644);
    apply(r, tar).unwrap();
    assert!(is_whiteout(r, "etc/shadow"));
    assert!(is_whiteout(r, "deep/missing/gone"));
    let d = fs::File::open(r.join("var")).unwrap();
    assert_eq!(
        sys::get_xattr_at(d.as_fd(), OsStr::new("cache"), b"trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        read(r, "var/cache/new"),
        b"n",
        "an opaque marker keeps its own layer's entries"
    );
    assert!(!r.join("usr/.wh..wh.plnk").exists() && !r.join("etc/.wh.shadow").exists());
}

#[test]
fn replaces_entries_like_tar() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let tar = Tar::default()
        .file("a", b"file", 0o644)
        .dir("a", 0o755)
        .file("a/inner", b"i", 0o644)
        .file("b/c", b"c", 0o644)
        .file("b", b"now a file", 0o600)
        .dir("d", 0o700)
        .dir("d", 0o755);
    apply(r, tar).unwrap();
    assert!(r.join("a").is_dir());
    assert_eq!(read(r, "b"), b"now a file");
    assert_eq!(fs::metadata(r.join("d")).unwrap().mode() & 0o777, 0o755);
}

#[test]
fn refuses_bad_entries() {
    if !have_root() {
        return;
    }
    let cases: Vec<(Tar, &str)> = vec![
        (
            Tar::default().link("missing", "x"),
            "hardlink target not found",
        ),
        (
            Tar::default().dir("d", 0o755).link("d", "x"),
            "hardlink to a directory",
        ),
        (Tar::default().link("/", "x"), "hardlink to the root"),
        (
            Tar::default().file("f", b"", 0o644).file("f/g", b"", 0o644),
            "not a directory",
        ),
        (
            Tar::default()
                .file("f", b"", 0o644)
                .owned(u32::MAX as u64, 0),
            "uid",
        ),
        (
            Tar::default()
                .symlink("a", "loop")
                .symlink("loop", "a")
                .file("loop/x", b"", 0o644),
            "symbolic links",
        ),
        (
            Tar::default().node(tar::EntryType::new(b'V'), "vol", 0, 0, 0),
            "unsupported tar entry type",
        ),
    ];
    for (tar, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let err = apply(dir.path(), tar).unwrap_err();
        assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        assert_eq!(err.class(), Class::Invalid);
    }
}

#[test]
fn enforces_limits() {
    if !have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = Tar::default()
        .file("a", b"1", 0o644)
        .file("b", b"2", 0o644)
        .file("c", b"3", 0o644)
        .bytes();
    let limits = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    assert!(matches!(
        unpack(&mut bytes.as_slice(), dir.path(), &limits),
        Err(UnpackError::TooManyEntries(2))
    ));
    let limits = Limits {
        max_bytes: 2,
        ..Limits::default()
    };
    assert!(matches!(
        unpack(&mut bytes.as_slice(), dir.path(), &limits),
        Err(UnpackError::TooLarge(2))
    ));
    let limits = Limits {
        max_path_bytes: 10,
        ..Limits::default()
    };
    let long = Tar::default().file("abcdefghijklmnop", b"", 0o644).bytes();
    let err = unpack(&mut long.as_slice(), dir.path(), &limits).unwrap_err();
    assert!(err.to_string().contains("too long"), "{err}");
    let garbage = vec![0x55u8; 2048];
    assert!(matches!(
        unpack(&mut garbage.as_slice(), dir.path(), &Limits::default()),
        Err(UnpackError::Tar(_))
    ));
}

#[test]
fn cleans_names() {
    let c = |s: &str| {
        clean(s.as_bytes())
            .iter()
            .map(|c| String::from_utf8(c.clone()).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(c("../../a/./b/../c/"), ["a", "c"]);
    assert_eq!(c("/etc//passwd"), ["etc", "passwd"]);
    assert!(c("a/..").is_empty());
    assert!(c("").is_empty());
}
