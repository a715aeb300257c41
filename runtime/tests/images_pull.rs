//! The image service against a real registry: pulls, platforms, sharing, whiteouts
//! through overlayfs, concurrency, rmi and GC, errors.

mod images_common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use berth_registry::{Digest, Platform};
use berth_runtime::ErrorClass;
use berth_runtime::images::{InUse, Progress, ProgressEvent};
use berth_tests::images::{Compression, ImageBuilder, IndexBuilder, Layer};
use berth_tests::registry::Registry;
use images_common::*;

fn recorder() -> (Progress, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    (Progress::new(move |ev| e.lock().unwrap().push(ev)), events)
}

fn d(s: &str) -> Digest {
    s.parse().unwrap()
}

fn app_image() -> berth_tests::images::BuiltImage {
    ImageBuilder::busybox(&["sh", "cat", "sleep", "httpd", "wget"])
        .user_account("app", 1000, 1000)
        .layer(
            Layer::new()
                .dir("www", 0o755)
                .file("www/index.html", b"<h1>hello</h1>", 0o644),
        )
        .layer(
            Layer::new()
                .file("etc/zstd-layer", b"zstd", 0o600)
                .compression(Compression::Zstd),
        )
        .layer(
            Layer::new()
                .file("etc/plain-layer", b"plain", 0o4755)
                .compression(Compression::None),
        )
        .entrypoint(&["/bin/httpd", "-f"])
        .cmd(&["-p", "8080"])
        .env("GREETING=hi")
        .user("app")
        .workdir("/www")
        .volume("/data")
        .expose("8080/tcp")
        .stop_signal("SIGQUIT")
        .healthcheck(&["CMD-SHELL", "wget -q -O- localhost:8080"], 5, 3)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_by_tag_and_digest_and_gives_tasks_a_rootfs() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let image = app_image();
    registry.push(&image, "app:v1").unwrap();
    let env = env(&[registry.host()]).await;

    let (progress, events) = recorder();
    let reference = registry.reference("app:v1");
    let s = env.svc.pull(&reference, None, &progress).await.unwrap();
    assert_eq!(s.reference, reference);
    assert_eq!(s.manifest_digest, d(&image.manifest_digest));
    assert_eq!(s.image_id, d(&image.config_digest));
    assert_eq!(s.platform, Platform::host().to_string());
    assert_eq!(s.created.as_deref(), Some("2026-01-01T00:00:00Z"));
    let blob_total: usize = image.layers.iter().map(|l| l.blob.len()).sum::<usize>()
        + image.config.len()
        + image.manifest.len();
    assert_eq!(s.size, blob_total as u64);
    assert!(s.unpacked_size >= image.layers.iter().map(|l| l.tar.len() as u64).sum::<u64>());
    {
        let events = events.lock().unwrap();
        assert!(matches!(&events[0], ProgressEvent::Resolved { layers, .. } if layers.len() == 4));
        let done = events
            .iter()
            .filter(|e| matches!(e, ProgressEvent::LayerDone { .. }))
            .count();
        assert_eq!(done, 4);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ProgressEvent::LayerBytes { .. }))
        );
        assert!(matches!(
            events.last(),
            Some(ProgressEvent::Finished { .. })
        ));
    }

    let root = env.svc.rootfs(&reference).await.unwrap();
    assert_eq!(root.lower_dirs.len(), 4);
    assert!(
        root.lower_dirs
            .iter()
            .all(|p| p.is_absolute() && p.starts_with(env.paths.snapshots_dir()))
    );
    // Top layer first.
    assert!(root.lower_dirs[0].join("etc/plain-layer").exists());
    assert!(root.lower_dirs[1].join("etc/zstd-layer").exists());
    assert!(root.lower_dirs[3].join("bin/busybox").exists());
    assert_eq!(
        std::fs::read(root.lower_dirs[3].join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        std::fs::read_link(root.lower_dirs[3].join("bin/sh")).unwrap(),
        std::path::Path::new("busybox")
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(root.lower_dirs[0].join("etc/plain-layer"))
            .unwrap()
            .mode()
            & 0o7777,
        0o4755
    );
    assert_eq!(
        std::fs::metadata(root.lower_dirs[3].join("home/app"))
            .unwrap()
            .uid(),
        1000
    );
    let cfg = root.config.config().as_ref().unwrap();
    assert_eq!(
        cfg.entrypoint().as_deref(),
        Some(&["/bin/httpd".to_string(), "-f".to_string()][..])
    );
    assert_eq!(
        cfg.cmd().as_deref(),
        Some(&["-p".to_string(), "8080".to_string()][..])
    );
    assert!(
        cfg.env()
            .as_ref()
            .unwrap()
            .contains(&"GREETING=hi".to_string())
    );
    assert_eq!(cfg.user().as_deref(), Some("app"));
    assert_eq!(cfg.working_dir().as_deref(), Some("/www"));
    assert_eq!(cfg.volumes().as_ref().unwrap(), &["/data"]);
    assert_eq!(cfg.exposed_ports().as_ref().unwrap(), &["8080/tcp"]);
    assert_eq!(cfg.stop_signal().as_deref(), Some("SIGQUIT"));
    let hc = root.healthcheck.as_ref().unwrap();
    assert_eq!(
        (hc.test[0].as_str(), hc.interval, hc.retries),
        ("CMD-SHELL", Some(5_000_000_000), Some(3))
    );
    assert_eq!(root.manifest_digest, s.manifest_digest);

    // By digest: same manifest, every layer already there.
    let (progress, events) = recorder();
    let by_digest = format!("{}@{}", registry.reference("app"), image.manifest_digest);
    let s2 = env.svc.pull(&by_digest, None, &progress).await.unwrap();
    assert_eq!(s2.manifest_digest, s.manifest_digest);
    assert_eq!(
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, ProgressEvent::LayerCached { .. }))
            .count(),
        4
    );
    assert_eq!(env.snapshot_count(), 4);
    let listed: Vec<String> = env
        .svc
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(
        listed,
        vec![reference.clone(), by_digest.clone()],
        "sorted by reference"
    );

    // Present images need no registry.
    drop(registry);
    let again = env
        .svc
        .ensure(&reference, None, &Progress::none())
        .await
        .unwrap();
    assert_eq!(again, s);
    // The task start's path: one lookup, the same rootfs as rootfs() gives.
    let fast = env
        .svc
        .ensure_rootfs(&reference, &Progress::none(), None)
        .await
        .unwrap();
    let slow = env.svc.rootfs(&reference).await.unwrap();
    assert_eq!(
        (&fast.lower_dirs, &fast.image_id, &fast.reference),
        (&slow.lower_dirs, &slow.image_id, &slow.reference)
    );
    assert_eq!(env.leftovers(), 0);
    // A digest that does not match the manifest is refused by the pull.
    let wrong = format!(
        "{}@{}",
        s.reference.rsplit_once(':').unwrap().0,
        Digest::sha256_of(b"other")
    );
    assert!(env.svc.pull(&wrong, None, &Progress::none()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chooses_the_platform_from_an_index() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let host = ImageBuilder::busybox(&["sh"]).build();
    let arm = ImageBuilder::new()
        .layer(Layer::new().file("arch", b"arm64", 0o644))
        .platform("linux", "arm64", Some("v8"))
        .build();
    let s390 = ImageBuilder::new()
        .layer(Layer::new().file("arch", b"s390x", 0o644))
        .platform("linux", "s390x", None)
        .build();
    let (host, other) = if Platform::host().architecture == "arm64" {
        (arm.clone(), host)
    } else {
        (host, arm.clone())
    };
    let index = IndexBuilder::new()
        .image(other.clone())
        .image(host.clone())
        .image(s390)
        .build();
    registry.push_index(&index, "multi:v1").unwrap();
    let list = IndexBuilder::new()
        .image(other.clone())
        .image(host.clone())
        .docker_media_type()
        .build();
    registry.push_index(&list, "multi:docker").unwrap();
    let env = env(&[registry.host()]).await;

    let s = env
        .svc
        .pull(&registry.reference("multi:v1"), None, &Progress::none())
        .await
        .unwrap();
    assert_eq!(s.manifest_digest, d(&host.manifest_digest));
    assert_eq!(s.index_digest, Some(d(&index.digest)));
    let s = env
        .svc
        .pull(&registry.reference("multi:docker"), None, &Progress::none())
        .await
        .unwrap();
    assert_eq!(s.manifest_digest, d(&host.manifest_digest));

    let want: Platform = if Platform::host().architecture == "arm64" {
        "linux/amd64".parse().unwrap()
    } else {
        "linux/arm64".parse().unwrap()
    };
    let s = env
        .svc
        .pull(
            &registry.reference("multi:v1"),
            Some(&want),
            &Progress::none(),
        )
        .await
        .unwrap();
    assert_eq!(s.manifest_digest, d(&other.manifest_digest));
    assert_eq!(s.platform, want.to_string());
    // ensure() with another platform than what is stored pulls again.
    let s = env
        .svc
        .ensure(&registry.reference("multi:v1"), None, &Progress::none())
        .await
        .unwrap();
    assert_eq!(s.manifest_digest, d(&host.manifest_digest));

    let ppc: Platform = "linux/ppc64le".parse().unwrap();
    let err = env
        .svc
        .pull(
            &registry.reference("multi:v1"),
            Some(&ppc),
            &Progress::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    let msg = err.to_string();
    assert!(
        msg.contains("linux/ppc64le")
            && msg.contains("linux/s390x")
            && msg.contains("linux/arm64/v8"),
        "{msg}"
    );
    // A single-platform image for another architecture is refused, not run.
    registry.push(&other, "single:v1").unwrap();
    let err = env
        .svc
        .pull(&registry.reference("single:v1"), None, &Progress::none())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is for platform"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_layers_are_stored_once() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let a = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().file("a", b"a", 0o644))
        .build();
    let b = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().file("b", b"b", 0o644))
        .docker_media_types()
        .build();
    // A layer repeated inside one image.
    let twice = Layer::new().file("same", b"same", 0o644);
    let c = ImageBuilder::busybox(&["sh"])
        .layer(twice.clone())
        .layer(Layer::new().file("mid", b"m", 0o644))
        .layer(twice)
        .build();
    registry.push(&a, "a:1").unwrap();
    registry.push(&b, "b:1").unwrap();
    registry.push(&c, "c:1").unwrap();
    let env = env(&[registry.host()]).await;
    env.svc
        .pull(&registry.reference("a:1"), None, &Progress::none())
        .await
        .unwrap();
    let (progress, events) = recorder();
    env.svc
        .pull(&registry.reference("b:1"), None, &progress)
        .await
        .unwrap();
    assert_eq!(
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, ProgressEvent::LayerCached { .. }))
            .count(),
        1
    );
    assert_eq!(env.snapshot_count(), 3);
    assert_eq!(env.blob_count(), 2 * 2 + 3);
    env.svc
        .pull(&registry.reference("c:1"), None, &Progress::none())
        .await
        .unwrap();
    assert_eq!(env.snapshot_count(), 5);
    let root = env.svc.rootfs(&registry.reference("c:1")).await.unwrap();
    assert_eq!(
        root.lower_dirs.len(),
        3,
        "a repeated layer is mounted once, at its top position"
    );
    assert!(root.lower_dirs[0].join("same").exists() && root.lower_dirs[1].join("mid").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whiteouts_and_opaque_directories_apply_through_overlayfs() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let image = ImageBuilder::busybox(&["sh", "ls"])
        .layer(
            Layer::new()
                .file("etc/secret", b"s", 0o600)
                .dir("data", 0o755)
                .file("data/a", b"a", 0o644)
                .file("data/b", b"b", 0o644)
                .dir("keep", 0o755)
                .file("keep/x", b"x", 0o644),
        )
        .layer(
            Layer::new()
                .whiteout("etc/secret")
                .opaque("data")
                .file("data/c", b"c", 0o644)
                .whiteout("keep"),
        )
        .layer(
            Layer::new()
                .file("etc/new", b"n", 0o644)
                .compression(Compression::Zstd),
        )
        .build();
    registry.push(&image, "wh:1").unwrap();
    let env = env(&[registry.host()]).await;
    env.svc
        .pull(&registry.reference("wh:1"), None, &Progress::none())
        .await
        .unwrap();
    let root = env.svc.rootfs(&registry.reference("wh:1")).await.unwrap();
    let scratch = env.dir.path().join("overlay");
    let before = mounts_under(env.dir.path());
    {
        let ov = Overlay::mount(&root.lower_dirs, &scratch);
        let m = &ov.merged;
        assert!(!m.join("etc/secret").exists(), "whited-out file is hidden");
        assert!(m.join("etc/passwd").exists() && m.join("etc/new").exists());
        let data: BTreeSet<String> = std::fs::read_dir(m.join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            data,
            BTreeSet::from(["c".to_string()]),
            "opaque directory hides lower entries"
        );
        assert!(!m.join("keep").exists(), "whited-out directory is hidden");
        assert_eq!(
            std::fs::read(m.join("bin/busybox")).unwrap().len(),
            std::fs::metadata("/bin/busybox").unwrap().len() as usize
        );
        assert_eq!(mounts_under(env.dir.path()), before + 1);
    }
    assert_eq!(
        mounts_under(env.dir.path()),
        before,
        "the test's mount is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pulls_share_the_work() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let a = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().random_file("big", 3 << 20, 1))
        .build();
    let b = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().random_file("big2", 2 << 20, 2))
        .build();
    registry.push(&a, "a:1").unwrap();
    registry.push(&b, "b:1").unwrap();
    let env = env(&[registry.host()]).await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let svc = env.svc.clone();
        let r = registry.reference(if i % 2 == 0 { "a:1" } else { "b:1" });
        tasks.push(tokio::spawn(async move {
            svc.ensure(&r, None, &Progress::none()).await
        }));
    }
    let mut digests = BTreeSet::new();
    for t in tasks {
        digests.insert(t.await.unwrap().unwrap().manifest_digest);
    }
    assert_eq!(digests.len(), 2);
    assert_eq!(env.snapshot_count(), 3);
    assert_eq!(env.blob_count(), 2 * 2 + 3);
    assert_eq!(env.leftovers(), 0);
    assert_eq!(env.svc.list().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmi_and_gc_free_what_nothing_uses() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let a = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().file("a", b"a", 0o644))
        .build();
    let b = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().file("b", b"b", 0o644))
        .build();
    registry.push(&a, "a:1").unwrap();
    registry.push(&b, "b:1").unwrap();
    let env = env(&[registry.host()]).await;
    let (ra, rb) = (registry.reference("a:1"), registry.reference("b:1"));
    env.svc.pull(&ra, None, &Progress::none()).await.unwrap();
    let sb = env.svc.pull(&rb, None, &Progress::none()).await.unwrap();

    let removed = env.svc.remove(&ra).await.unwrap();
    assert_eq!(removed.references, vec![ra.clone()]);
    assert_eq!(removed.unreferenced, vec![d(&a.manifest_digest)]);
    let report = env.svc.gc(&InUse::none()).await.unwrap();
    assert_eq!(
        (report.manifests, report.blobs, report.snapshots),
        (1, 3, 1)
    );
    assert_eq!(env.snapshot_count(), 2);
    assert_eq!(env.blob_count(), 4);
    let err = env.svc.rootfs(&ra).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);

    // A running task holds b: removing the reference keeps its content.
    let root = env.svc.rootfs(&rb).await.unwrap();
    let by_id = &sb.image_id.hex()[..12];
    let removed = env.svc.remove(by_id).await.unwrap();
    assert_eq!(removed.references, vec![rb.clone()]);
    let report = env
        .svc
        .gc(&InUse::manifests([root.manifest_digest.clone()]))
        .await
        .unwrap();
    assert_eq!(report.blobs + report.snapshots + report.manifests, 0);
    let again = env
        .svc
        .rootfs_by_manifest(&root.manifest_digest)
        .await
        .unwrap();
    assert_eq!(again.lower_dirs, root.lower_dirs);
    // The task is gone: everything goes.
    env.svc.gc(&InUse::none()).await.unwrap();
    assert_eq!((env.blob_count(), env.snapshot_count()), (0, 0));
    assert!(env.svc.list().await.unwrap().is_empty());
    let err = env.svc.remove(&ra).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert!(err.to_string().contains("no such image"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_registry_and_the_problem() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let img = ImageBuilder::busybox(&["sh"]).build();
    registry.push(&img, "there:v1").unwrap();
    let encrypted = ImageBuilder::new()
        .layer(
            Layer::new()
                .file("x", b"x", 0o644)
                .media_type("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"),
        )
        .build();
    registry.push(&encrypted, "enc:v1").unwrap();
    let env = env(&[registry.host()]).await;
    let p = Progress::none();

    let err = env
        .svc
        .pull(&registry.reference("there:nope"), None, &p)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.class(), ErrorClass::NotFound, "{msg}");
    assert!(
        msg.contains(&registry.host()) && msg.contains("MANIFEST_UNKNOWN"),
        "{msg}"
    );
    let err = env
        .svc
        .pull(&registry.reference("nothere/at-all"), None, &p)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");

    let err = env.svc.pull("Not_A/Reference", None, &p).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("invalid image reference"), "{err}");

    let err = env
        .svc
        .pull(&registry.reference("enc:v1"), None, &p)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unsupported, "{err}");
    assert!(format!("{err:?}").contains("encrypted"), "{err:?}");

    let closed = berth_tests::registry::free_port().unwrap();
    let unreachable = format!("127.0.0.1:{closed}");
    let env2 = images_common::env(std::slice::from_ref(&unreachable)).await;
    let err = env2
        .svc
        .pull(&format!("{unreachable}/x:1"), None, &p)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Internal);
    assert!(err.to_string().contains("cannot reach registry"), "{err}");

    // Not configured as insecure: berth speaks TLS to it and says how to allow HTTP.
    let strict = images_common::env(&[]).await;
    let err = strict
        .svc
        .pull(&registry.reference("there:v1"), None, &p)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--insecure-registry"), "{err}");
    assert_eq!(env.leftovers() + strict.leftovers(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_clears_half_done_work() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let img = ImageBuilder::busybox(&["sh"]).build();
    registry.push(&img, "x:1").unwrap();
    let env = env(&[registry.host()]).await;
    env.svc
        .pull(&registry.reference("x:1"), None, &Progress::none())
        .await
        .unwrap();
    // What a crash mid-pull leaves: an ingest file, a tmp snapshot and its intent row,
    // and a committed snapshot whose directory vanished.
    std::fs::write(
        env.paths.content_dir().join("ingest/deadbeef-1"),
        b"partial",
    )
    .unwrap();
    std::fs::create_dir_all(env.paths.snapshots_dir().join("tmp/999/etc")).unwrap();
    env.db
        .call(|db| {
            db.conn()
                .execute(
                    "INSERT INTO snapshots (diff_id, state, size, created_at_ms) VALUES ('sha256:5555555555555555555555555555555555555555555555555555555555555555', 'preparing', 0, 0)",
                    [],
                )
                .unwrap()
        })
        .await;
    let root = env.svc.rootfs(&registry.reference("x:1")).await.unwrap();
    std::fs::remove_dir_all(&root.lower_dirs[0]).unwrap();
    let svc = env.reopen(&[registry.host()]).await;
    assert_eq!(env.leftovers(), 0);
    let preparing: i64 = env
        .db
        .call(|db| {
            db.conn()
                .query_row(
                    "SELECT count(*) FROM snapshots WHERE state = 'preparing'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        })
        .await;
    assert_eq!(preparing, 0);
    // The image lost a snapshot: ensure() notices and unpacks it again.
    let err = svc.rootfs(&registry.reference("x:1")).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    svc.ensure(&registry.reference("x:1"), None, &Progress::none())
        .await
        .unwrap();
    assert!(
        svc.rootfs(&registry.reference("x:1"))
            .await
            .unwrap()
            .lower_dirs[0]
            .join("bin/busybox")
            .exists()
    );
}
