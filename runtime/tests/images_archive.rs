//! Air-gapped images (issue 8): `load` of OCI layouts, OCI archives and docker
//! archives written by skopeo, umoci and the test fixtures; `save` round trips and
//! archives skopeo and podman accept; archive references in `ensure`; bad archives.

mod images_common;

use std::path::PathBuf;
use std::process::Command;

use berth_runtime::ErrorClass;
use berth_runtime::images::Progress;
use berth_tests::images::{BuiltImage, Compression, ImageBuilder, Layer, write_docker_archive};
use images_common::*;

fn image(marker: &str) -> BuiltImage {
    ImageBuilder::busybox(&["sh", "cat"])
        .layer(Layer::new().file("marker", marker.as_bytes(), 0o644))
        .layer(
            Layer::new()
                .file("etc/z", b"z", 0o644)
                .compression(Compression::Zstd),
        )
        .cmd(&["cat", "/marker"])
        .build()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refs(list: &[berth_runtime::images::ImageSummary]) -> Vec<String> {
    list.iter().map(|s| s.reference.clone()).collect()
}

async fn marker_of(env: &Env, reference: &str) -> String {
    let root = env.svc.rootfs(reference).await.unwrap();
    let f = root
        .lower_dirs
        .iter()
        .map(|d| d.join("marker"))
        .find(|p| p.exists())
        .expect("marker layer");
    std::fs::read_to_string(f).unwrap()
}

fn assert_empty(env: &Env) {
    assert_eq!(
        (env.blob_count(), env.snapshot_count(), env.leftovers()),
        (0, 0, 0),
        "something half-imported stayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_what_skopeo_and_umoci_write() {
    if !have_root() {
        return;
    }
    let w = tempfile::tempdir().unwrap();
    let layout = w.path().join("layout");
    image("one").write_layout(&layout, "v1").unwrap();
    let archive = w.path().join("skopeo.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("-q")
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("oci-archive:{}:v1", archive.display())));
    let copied = w.path().join("skopeo-layout");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("-q")
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("oci:{}:latest", copied.display())));
    let env = env(&[]).await;

    let loaded = env.svc.load(&archive, &Progress::none()).await.unwrap();
    assert_eq!(
        refs(&loaded),
        vec![format!("oci-archive:{}:v1", archive.display())]
    );
    assert_eq!(marker_of(&env, &loaded[0].reference).await, "one");
    let loaded = env.svc.load(&copied, &Progress::none()).await.unwrap();
    assert_eq!(
        refs(&loaded),
        vec![format!("oci-layout:{}:latest", copied.display())]
    );

    // umoci: a layout built from a directory tree.
    let u = w.path().join("umoci");
    run(Command::new("umoci").args(["init", "--layout"]).arg(&u));
    run(Command::new("umoci")
        .arg("new")
        .arg("--image")
        .arg(format!("{}:t", u.display())));
    let bundle = w.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:t", u.display()))
        .arg(&bundle));
    std::fs::write(bundle.join("rootfs/marker"), "umoci").unwrap();
    run(Command::new("umoci")
        .arg("repack")
        .arg("--image")
        .arg(format!("{}:t", u.display()))
        .arg(&bundle));
    let loaded = env.svc.load(&u, &Progress::none()).await.unwrap();
    assert_eq!(refs(&loaded), vec![format!("oci-layout:{}:t", u.display())]);
    assert_eq!(marker_of(&env, &loaded[0].reference).await, "umoci");
    assert_eq!(env.leftovers(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_docker_save_archives_with_several_images() {
    if !have_root() {
        return;
    }
    let w = tempfile::tempdir().unwrap();
    let (a, b) = (image("a"), image("b"));
    let tar = w.path().join("docker.tar");
    write_docker_archive(
        &tar,
        &[
            (&a, &["busybox:latest"]),
            (&b, &["bertha/app:v1", "localhost:5000/bertha/app:v1"]),
        ],
    )
    .unwrap();
    let env = env(&[]).await;
    let loaded = env.svc.load(&tar, &Progress::none()).await.unwrap();
    assert_eq!(
        refs(&loaded),
        vec![
            "docker.io/library/busybox:latest",
            "docker.io/bertha/app:v1",
            "localhost:5000/bertha/app:v1"
        ]
    );
    assert_eq!(loaded[0].image_id.to_string(), a.config_digest);
    assert_eq!(marker_of(&env, "busybox").await, "a");
    assert_eq!(marker_of(&env, "bertha/app:v1").await, "b");
    // Shared layers are stored once.
    assert_eq!(env.snapshot_count(), 4);

    // Compressed, and untagged.
    let gz = w.path().join("docker.tar.gz");
    let out = Command::new("gzip").arg("-c").arg(&tar).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&gz, out.stdout).unwrap();
    let env2 = images_common::env(&[]).await;
    assert_eq!(
        env2.svc.load(&gz, &Progress::none()).await.unwrap().len(),
        3
    );
    let untagged = w.path().join("untagged.tar");
    write_docker_archive(&untagged, &[(&a, &[])]).unwrap();
    let loaded = env2.svc.load(&untagged, &Progress::none()).await.unwrap();
    assert_eq!(
        refs(&loaded),
        vec![format!("docker-archive:{}:@0", untagged.display())]
    );
    assert_eq!(
        std::fs::read_dir(env2.paths.snapshots_dir().join("tmp"))
            .unwrap()
            .count(),
        0,
        "scratch copy removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_round_trips_and_skopeo_and_podman_accept_the_archive() {
    if !have_root() {
        return;
    }
    let w = tempfile::tempdir().unwrap();
    let tar = w.path().join("in.tar");
    let img = image("saved");
    write_docker_archive(&tar, &[(&img, &["bertha/saved:v1"])]).unwrap();
    let env = env(&[]).await;
    env.svc.load(&tar, &Progress::none()).await.unwrap();
    let out = w.path().join("out.tar");
    env.svc.save(&["bertha/saved:v1"], &out).await.unwrap();

    let env2 = images_common::env(&[]).await;
    let loaded = env2.svc.load(&out, &Progress::none()).await.unwrap();
    assert_eq!(refs(&loaded), vec!["docker.io/bertha/saved:v1"]);
    let orig = env.svc.list().await.unwrap();
    assert_eq!(loaded[0].manifest_digest, orig[0].manifest_digest);
    assert_eq!(marker_of(&env2, "bertha/saved:v1").await, "saved");

    let name = "docker.io/bertha/saved:v1";
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}:{name}", out.display())));
    assert!(
        inspect.contains(&loaded[0].manifest_digest.to_string()),
        "{inspect}"
    );
    run(Command::new("skopeo")
        .arg("copy")
        .arg("-q")
        .arg(format!("oci-archive:{}:{name}", out.display()))
        .arg(format!("oci:{}:x", w.path().join("copy").display())));

    if Command::new("podman").arg("--version").output().is_ok() {
        let p = w.path().join("podman");
        let podman = |args: &[&str]| {
            let mut c = Command::new("podman");
            c.arg("--root")
                .arg(p.join("root"))
                .arg("--runroot")
                .arg(p.join("run"));
            c.args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "file",
                "--cgroup-manager",
                "cgroupfs",
            ]);
            c.args(args);
            c
        };
        let loaded = run(&mut podman(&["load", "-i", out.to_str().unwrap()]));
        assert!(loaded.contains("bertha/saved:v1"), "{loaded}");
        let images = run(&mut podman(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ]));
        assert!(images.contains("saved:v1"), "{images}");
        let _ = podman(&["rmi", "-af"]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_images_can_name_archives_and_load_on_first_use() {
    if !have_root() {
        return;
    }
    let w = tempfile::tempdir().unwrap();
    let layout = w.path().join("layout");
    image("layout").write_layout(&layout, "v1").unwrap();
    image("other").write_layout(&layout, "v2").unwrap();
    let archive = w.path().join("app.tar");
    image("archive").write_oci_archive(&archive, "v1").unwrap();
    let env = env(&[]).await;

    let r1 = format!("oci-layout:{}:v1", layout.display());
    let s = env.svc.ensure(&r1, None, &Progress::none()).await.unwrap();
    assert_eq!(s.reference, r1);
    assert_eq!(s.source, "oci-layout");
    assert_eq!(marker_of(&env, &r1).await, "layout");
    let r2 = format!("oci-archive:{}:v1", archive.display());
    env.svc.ensure(&r2, None, &Progress::none()).await.unwrap();
    let r3 = format!("oci-archive:{}", archive.display());
    env.svc.ensure(&r3, None, &Progress::none()).await.unwrap();
    assert_eq!(marker_of(&env, &r3).await, "archive");
    // Once loaded, the archive is not needed any more.
    std::fs::remove_dir_all(&layout).unwrap();
    std::fs::remove_file(&archive).unwrap();
    assert_eq!(
        env.svc.ensure(&r1, None, &Progress::none()).await.unwrap(),
        s
    );
    // Ambiguous without a tag.
    let env2 = images_common::env(&[]).await;
    let two = w.path().join("two");
    image("x").write_layout(&two, "a").unwrap();
    image("y").write_layout(&two, "b").unwrap();
    let err = env2
        .svc
        .ensure(
            &format!("oci-layout:{}", two.display()),
            None,
            &Progress::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid, "{err}");
    assert!(err.to_string().contains("holds 2 images"), "{err}");
    assert_empty(&env2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_archives_are_refused_and_nothing_half_imported_stays() {
    if !have_root() {
        return;
    }
    let w = tempfile::tempdir().unwrap();
    let env = env(&[]).await;
    let p = Progress::none();
    let load_err = |path: PathBuf| {
        let svc = env.svc.clone();
        async move { svc.load(&path, &Progress::none()).await.unwrap_err() }
    };

    // Not an image at all.
    let plain = w.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let err = load_err(plain.clone()).await;
    assert!(err.to_string().contains("is not an image archive"), "{err}");
    assert_eq!(err.class(), ErrorClass::Invalid);
    std::fs::write(w.path().join("junk.tar"), vec![0x41u8; 4096]).unwrap();
    let err = load_err(w.path().join("junk.tar")).await;
    assert!(err.to_string().contains("is not an image archive"), "{err}");
    let err = load_err(w.path().join("missing.tar")).await;
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");

    // A tampered layer: an earlier layer went in, and must go out again.
    let img = image("tampered");
    let layout = w.path().join("tampered");
    img.write_layout(&layout, "v1").unwrap();
    let victim = &img.layers[2].digest;
    let blob = layout
        .join("blobs/sha256")
        .join(victim.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let err = load_err(layout.clone()).await;
    let msg = err.to_string();
    assert!(
        msg.contains(victim.as_str()) && msg.contains("does not match its digest"),
        "{msg}"
    );
    assert_empty(&env);
    assert!(env.svc.list().await.unwrap().is_empty());

    // A tampered docker layer (its digest is the diff id from the config).
    let tar = w.path().join("docker.tar");
    write_docker_archive(&tar, &[(&img, &["bertha/t:1"])]).unwrap();
    let mut t = std::fs::read(&tar).unwrap();
    let needle = b"tampered";
    let pos = t.windows(needle.len()).position(|x| x == needle).unwrap();
    t[pos] = b'T';
    std::fs::write(&tar, &t).unwrap();
    let err = load_err(tar.clone()).await;
    assert!(
        err.to_string().contains("does not match its digest"),
        "{err}"
    );
    assert_empty(&env);

    // A missing blob, a missing tag, a truncated archive.
    let layout2 = w.path().join("missing-blob");
    img.write_layout(&layout2, "v1").unwrap();
    std::fs::remove_file(
        layout2
            .join("blobs/sha256")
            .join(img.layers[1].digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    let err = load_err(layout2.clone()).await;
    assert!(err.to_string().contains("lacks blob"), "{err}");
    assert_empty(&env);
    let layout3 = w.path().join("tags");
    img.write_layout(&layout3, "v1").unwrap();
    let err = env
        .svc
        .ensure(&format!("oci-layout:{}:v9", layout3.display()), None, &p)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert!(
        err.to_string()
            .contains("no image tagged \"v9\" (it has: v1)"),
        "{err}"
    );
    let good = w.path().join("good.tar");
    img.write_oci_archive(&good, "v1").unwrap();
    let full = std::fs::read(&good).unwrap();
    let cut = w.path().join("cut.tar");
    std::fs::write(&cut, &full[..full.len() * 2 / 3]).unwrap();
    let err = load_err(cut).await;
    assert_eq!(err.class(), ErrorClass::Invalid, "{err}");
    assert_empty(&env);
}
