//! containerd's `TestBreakouts` table (`pkg/archive/tar_test.go`), case by case, and
//! the test that runs it: no layer may write outside the root it is unpacked into.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

struct Case {
    name: &'static str,
    pre: fn(&Path),
    tar: Tar,
    check: Check,
}

fn none(_: &Path) {}

fn ok(f: impl Fn(&Path) + 'static) -> Check {
    Box::new(move |root, res| {
        res.unwrap_or_else(|e| panic!("unpack failed: {e}"));
        f(root)
    })
}

fn invalid_archive() -> Check {
    Box::new(|_, res| match res {
        Err(UnpackError::Invalid { reason, .. }) => {
            assert!(reason.contains("whiteout"), "{reason}")
        }
        other => panic!("expected an invalid-archive error, got {other:?}"),
    })
}

fn unbroken(root: &Path) {
    assert_eq!(read(root, "etc/unbroken"), b"unbroken");
}

fn etc_passwd(root: &Path) {
    fs::create_dir(root.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), "inside").unwrap();
}

fn all_users(root: &Path) {
    fs::create_dir(root.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), "all users").unwrap();
}

fn breakout_cases(outside: &Path) -> Vec<Case> {
    let u = b"unbroken";
    let outside_tmp = std::env::temp_dir().join(format!("bA-breakout-{}", std::process::id()));
    let tname = outside_tmp
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let perm400 = outside.join("perm400").to_string_lossy().into_owned();
    let also = outside
        .join("also-exists-outside-root")
        .to_string_lossy()
        .into_owned();
    vec![
        Case {
            name: "SymlinkAbsolute",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o755)
                .symlink("/etc", "localetc")
                .file("/localetc/unbroken", u, 0o644),
            check: ok(unbroken),
        },
        Case {
            name: "SymlinkUpAndOut",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o755)
                .dir("dummy", 0o755)
                .symlink("/dummy/../etc", "localetc")
                .file("/localetc/unbroken", u, 0o644),
            check: ok(unbroken),
        },
        Case {
            name: "SymlinkMultipleAbsolute",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o755)
                .dir("dummy", 0o755)
                .symlink("/etc", "/dummy/etc")
                .symlink("/dummy/etc", "localetc")
                .file("/dummy/etc/unbroken", u, 0o644),
            check: ok(unbroken),
        },
        Case {
            name: "SymlinkMultipleRelative",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o755)
                .dir("dummy", 0o755)
                .symlink("/etc", "/dummy/etc")
                .symlink("./dummy/etc", "localetc")
                .file("/dummy/etc/unbroken", u, 0o644),
            check: ok(unbroken),
        },
        Case {
            name: "SymlinkEmptyFile",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o755)
                .file("etc/emptied", b"notempty", 0o644)
                .symlink("/etc", "localetc")
                .file("/localetc/emptied", b"", 0o644),
            check: ok(|r| assert!(read(r, "etc/emptied").is_empty())),
        },
        Case {
            name: "HardlinkRelative",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .dir("breakouts", 0o755)
                .symlink("../../etc", "breakouts/d1")
                .link("/breakouts/d1/passwd", "breakouts/mypasswd"),
            check: ok(|r| assert!(same_file(r, "/breakouts/mypasswd", "/etc/passwd"))),
        },
        Case {
            name: "HardlinkDownAndOut",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .dir("breakouts", 0o755)
                .dir("downandout", 0o755)
                .symlink("../downandout/../../etc", "breakouts/d1")
                .link("/breakouts/d1/passwd", "breakouts/mypasswd"),
            check: ok(|r| assert!(same_file(r, "/breakouts/mypasswd", "/etc/passwd"))),
        },
        Case {
            name: "HardlinkAbsolute",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .symlink("/etc", "localetc")
                .link("/localetc/passwd", "localpasswd"),
            check: ok(|r| assert!(same_file(r, "localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "HardlinkRelativeLong",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .symlink("../../../../../../../etc", "localetc")
                .link("/localetc/passwd", "localpasswd"),
            check: ok(|r| assert!(same_file(r, "localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "HardlinkRelativeUpAndOut",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .symlink("upandout/../../../etc", "localetc")
                .link("/localetc/passwd", "localpasswd"),
            check: ok(|r| assert!(same_file(r, "localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "HardlinkDirectRelative",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .link("../../../../../etc/passwd", "localpasswd"),
            check: ok(|r| assert!(same_file(r, "localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "HardlinkDirectAbsolute",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .link("/etc/passwd", "localpasswd"),
            check: ok(|r| assert!(same_file(r, "localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "SymlinkParentDirectory",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .symlink("/etc/", "..")
                .link("/etc/passwd", "localpasswd"),
            check: ok(|r| assert!(same_file(r, "/localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "SymlinkEmptyFilename",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .symlink("/etc/", "")
                .link("/etc/passwd", "localpasswd"),
            check: ok(|r| assert!(same_file(r, "/localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "SymlinkParentRelative",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .symlink("/etc/", "localetc/sub/..")
                .link("/etc/passwd", "/localetc/localpasswd"),
            check: ok(|r| assert!(same_file(r, "/localetc/localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "SymlinkSlashEnded",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .dir("localetc/", 0o770)
                .link("/etc/passwd", "/localetc/localpasswd"),
            check: ok(|r| assert!(same_file(r, "/localetc/localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "SymlinkOverrideDirectory",
            pre: |r| {
                etc_passwd(r);
                fs::create_dir(r.join("localetc")).unwrap();
            },
            tar: Tar::default()
                .symlink("/etc", "localetc")
                .link("/etc/passwd", "/localetc/localpasswd"),
            check: ok(|r| assert!(same_file(r, "/localetc/localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "SymlinkOverrideDirectoryRelative",
            pre: |r| {
                etc_passwd(r);
                fs::create_dir(r.join("localetc")).unwrap();
            },
            tar: Tar::default()
                .symlink("../../etc", "localetc")
                .link("/etc/passwd", "/localetc/localpasswd"),
            check: ok(|r| assert!(same_file(r, "/localetc/localpasswd", "/etc/passwd"))),
        },
        Case {
            name: "DirectoryOverrideSymlink",
            pre: |r| {
                etc_passwd(r);
                std::os::unix::fs::symlink("/etc", r.join("localetc")).unwrap();
            },
            tar: Tar::default()
                .dir("/localetc/", 0o755)
                .link("/etc/passwd", "/localetc/localpasswd"),
            check: ok(|r| {
                assert!(!is_symlink(r, "localetc"));
                assert!(same_file(r, "/localetc/localpasswd", "/etc/passwd"));
            }),
        },
        Case {
            name: "DirectoryOverrideSymlinkAndHardlink",
            pre: |r| {
                etc_passwd(r);
                std::os::unix::fs::symlink("etc", r.join("localetc")).unwrap();
                fs::hard_link(r.join("etc/passwd"), r.join("etc/localpasswd")).unwrap();
            },
            tar: Tar::default().dir("/localetc/", 0o755).file(
                "/localetc/localpasswd",
                b"different",
                0o644,
            ),
            check: ok(|r| {
                assert!(!same_file(r, "/localetc/localpasswd", "/etc/passwd"));
                assert_eq!(read(r, "etc/passwd"), b"inside");
            }),
        },
        Case {
            name: "WhiteoutRootParent",
            pre: etc_passwd,
            tar: Tar::default().file(".wh...", b"", 0o644),
            check: invalid_archive(),
        },
        Case {
            name: "WhiteoutParent",
            pre: etc_passwd,
            tar: Tar::default().file("etc/.wh...", b"", 0o644),
            check: invalid_archive(),
        },
        Case {
            name: "WhiteoutRoot",
            pre: etc_passwd,
            tar: Tar::default().file(".wh..", b"", 0o644),
            check: invalid_archive(),
        },
        Case {
            name: "WhiteoutCurrentDirectory",
            pre: etc_passwd,
            tar: Tar::default().file("etc/.wh..", b"", 0o644),
            check: invalid_archive(),
        },
        Case {
            name: "WhiteoutSymlink",
            pre: |r| {
                all_users(r);
                std::os::unix::fs::symlink("/etc", r.join("localetc")).unwrap();
            },
            tar: Tar::default().file(".wh.localetc", b"", 0o644),
            check: ok(|r| {
                assert_eq!(read(r, "etc/passwd"), b"all users");
                assert!(is_whiteout(r, "localetc"));
            }),
        },
        Case {
            name: "WhiteoutSymlinkPath",
            pre: |r| {
                all_users(r);
                fs::write(r.join("etc/whitedout"), "ahhhh whiteout").unwrap();
                std::os::unix::fs::symlink("/etc", r.join("localetc")).unwrap();
            },
            tar: Tar::default().file("localetc/.wh.whitedout", b"", 0o644),
            check: ok(|r| {
                assert_eq!(read(r, "etc/passwd"), b"all users");
                assert!(is_whiteout(r, "etc/whitedout"));
            }),
        },
        Case {
            name: "WhiteoutDirectoryName",
            pre: |r| {
                all_users(r);
                std::os::unix::fs::symlink("/etc", r.join("localetc")).unwrap();
            },
            tar: Tar::default().file(".wh.etc/somefile", b"non-empty", 0o644),
            check: ok(|r| {
                assert_eq!(read(r, "etc/passwd"), b"all users");
                assert_eq!(read(r, ".wh.etc/somefile"), b"non-empty");
            }),
        },
        Case {
            name: "WhiteoutDeadSymlinkParent",
            pre: |r| {
                all_users(r);
                std::os::unix::fs::symlink("/dne", r.join("localetc")).unwrap();
            },
            tar: Tar::default().file("localetc/.wh.etc", b"", 0o644),
            check: ok(|r| {
                assert_eq!(read(r, "etc/passwd"), b"all users");
                // The whiteout lands where the symlink points, inside the root.
                assert!(is_whiteout(r, "dne/etc"));
            }),
        },
        Case {
            name: "WhiteoutRelativePath",
            pre: |r| {
                all_users(r);
                std::os::unix::fs::symlink("/dne", r.join("localetc")).unwrap();
            },
            tar: Tar::default().file("dne/../.wh.etc", b"", 0o644),
            check: ok(|r| assert!(is_whiteout(r, "etc"))),
        },
        Case {
            name: "SymlinkOverridePath",
            pre: none,
            tar: Tar::default()
                .dir("foo", 0o755)
                .dir("foo/tmp", 0o755)
                .file(&format!("foo/tmp/{tname}"), &[0, 1, 2], 0o644)
                .symlink("/", "foo")
                .file(&format!("foo/tmp/{tname}"), &[3, 4, 5], 0o644)
                .dir("foo", 0o755)
                .dir("foo/tmp", 0o755)
                .file(&format!("foo/tmp/{tname}"), &[6, 7, 8], 0o644),
            check: {
                let tname = tname.clone();
                let outside_tmp = outside_tmp.clone();
                ok(move |r| {
                    assert!(!outside_tmp.exists(), "file written outside of root");
                    assert_eq!(read(r, &format!("foo/tmp/{tname}")), [6, 7, 8]);
                    assert_eq!(read(r, &format!("tmp/{tname}")), [3, 4, 5]);
                })
            },
        },
        Case {
            name: "HardlinkSymlinkBeforeCreateTarget",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .symlink("/etc/passwd", "localpasswd")
                .link("localpasswd", "localpasswd-dup")
                .file("/etc/passwd", b"after", 0o644),
            check: ok(|r| assert!(same_file(r, "localpasswd-dup", "/etc/passwd"))),
        },
        Case {
            name: "HardlinkSymlinkRelative",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .symlink("../../../../../etc/passwd", "passwdlink")
                .link("/passwdlink", "localpasswd"),
            check: ok(|r| {
                assert!(is_symlink(r, "localpasswd") && is_symlink(r, "passwdlink"));
                assert_eq!(
                    fs::read_link(r.join("localpasswd")).unwrap(),
                    fs::read_link(r.join("passwdlink")).unwrap()
                );
                assert!(same_file(r, "/localpasswd", "/etc/passwd"));
            }),
        },
        Case {
            name: "HardlinkSymlinkAbsolute",
            pre: none,
            tar: Tar::default()
                .dir("etc", 0o770)
                .file("/etc/passwd", b"inside", 0o644)
                .symlink("/etc/passwd", "passwdlink")
                .link("/passwdlink", "localpasswd"),
            check: ok(|r| {
                assert!(is_symlink(r, "localpasswd") && is_symlink(r, "passwdlink"));
                assert!(same_file(r, "/localpasswd", "/etc/passwd"));
            }),
        },
        Case {
            name: "HardlinkSymlinkChmod",
            pre: none,
            tar: Tar::default()
                .symlink(&perm400, &also)
                .link(&also, "sketchylink"),
            check: {
                let perm400 = perm400.clone();
                Box::new(move |_, _res| {
                    let mode = fs::symlink_metadata(&perm400).unwrap().permissions().mode();
                    assert_eq!(mode & 0o777, 0o400, "{perm400} perm changed");
                })
            },
        },
        Case {
            name: "DirectoryCreation",
            pre: |r| fs::create_dir(r.join("etc")).unwrap(),
            tar: Tar::default()
                .dir("/etc/subdir", 0o755)
                .dir("/etc/subdir2/", 0o755)
                .dir("/etc/subdir2/more", 0o755)
                .dir("/other/noparent-1/1", 0o755)
                .dir("/other/noparent-2/2/", 0o755),
            check: ok(|r| {
                for d in [
                    "etc/subdir",
                    "etc/subdir2",
                    "etc/subdir2/more",
                    "other/noparent-1/1",
                    "other/noparent-2/2",
                ] {
                    assert!(r.join(d).is_dir(), "{d}");
                }
            }),
        },
    ]
}

#[test]
fn breakouts() {
    if !have_root() {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("perm400"), "...").unwrap();
    fs::set_permissions(
        outside.path().join("perm400"),
        fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    fs::write(outside.path().join("also-exists-outside-root"), "...").unwrap();
    fs::set_permissions(
        outside.path().join("also-exists-outside-root"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let host_etc_before = fs::read("/etc/passwd").unwrap();
    let cases = breakout_cases(outside.path());
    assert_eq!(cases.len(), 35);
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        fs::create_dir(&root).unwrap();
        (case.pre)(&root);
        let res = apply(&root, case.tar);
        let name = case.name;
        let check = std::panic::AssertUnwindSafe(|| (case.check)(&root, res));
        if let Err(e) = std::panic::catch_unwind(check) {
            panic!("breakout case {name} failed: {e:?}");
        }
        // Nothing may have escaped: the outside files are untouched.
        assert_eq!(
            fs::read(outside.path().join("perm400")).unwrap(),
            b"...",
            "{name}"
        );
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            2,
            "{name} wrote outside the root"
        );
    }
    assert_eq!(fs::read("/etc/passwd").unwrap(), host_etc_before);
}
