//! The image service against a misbehaving registry (through the fault proxy):
//! wrong bytes, broken connections, authentication and redirects, foreign layers.

mod images_common;

use berth_registry::client::{ClientConfig, CredentialSource};
use berth_runtime::ErrorClass;
use berth_runtime::images::Progress;
use berth_tests::images::{ImageBuilder, Layer};
use berth_tests::proxy::{Auth, Proxy, Rule, base64};
use berth_tests::registry::{Registry, RegistryOptions};
use images_common::*;

fn with_credentials(
    dir: &std::path::Path,
    insecure: &[String],
    auths: &[(&str, &str, &str)],
) -> ClientConfig {
    let mut entries = serde_json::Map::new();
    for (host, user, pass) in auths {
        entries.insert(
            (*host).to_owned(),
            serde_json::json!({"auth": base64(format!("{user}:{pass}").as_bytes())}),
        );
    }
    let path = dir.join("docker-config.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&serde_json::json!({"auths": entries})).unwrap(),
    )
    .unwrap();
    ClientConfig {
        insecure_registries: insecure.to_vec(),
        credentials: CredentialSource::DockerConfig(path),
        ..ClientConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_with_wrong_bytes_is_never_stored() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let image = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().random_file("data", 1 << 20, 7))
        .build();
    registry.push(&image, "app:1").unwrap();
    let proxy = Proxy::start(registry.addr()).unwrap();
    let target = image.layers[1].digest.clone();
    proxy.add_rule(
        Rule::path_contains(&format!("/blobs/{target}"))
            .method("GET")
            .corrupt_at(500_000)
            .once(),
    );
    let env = env(&[proxy.host()]).await;
    let reference = format!("{}/app:1", proxy.host());

    let err = env
        .svc
        .pull(&reference, None, &Progress::none())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.class(), ErrorClass::Internal, "{msg}");
    assert!(
        msg.contains(&target)
            && msg.contains("does not match its digest: the content hashes to sha256:"),
        "{msg}"
    );
    let blob = env
        .paths
        .content_dir()
        .join("blobs/sha256")
        .join(target.trim_start_matches("sha256:"));
    assert!(!blob.exists(), "a mismatching blob is never stored");
    assert_eq!(env.leftovers(), 0);
    assert!(env.svc.list().await.unwrap().is_empty());

    // Same through a registry that ignores ranges (oci-client's own check fires too).
    proxy.set_ignore_range(true);
    proxy.add_rule(
        Rule::path_contains(&format!("/blobs/{target}"))
            .method("GET")
            .corrupt_at(7)
            .once(),
    );
    let err = env
        .svc
        .pull(&reference, None, &Progress::none())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not match its digest"),
        "{err}"
    );
    assert!(!blob.exists());
    assert_eq!(env.leftovers(), 0);

    // The registry behaves again: the next pull completes.
    let s = env
        .svc
        .pull(&reference, None, &Progress::none())
        .await
        .unwrap();
    assert_eq!(s.manifest_digest.to_string(), image.manifest_digest);
    assert!(blob.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_download_leaves_nothing_trusted_and_the_next_pull_completes() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let image = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().random_file("data", 4 << 20, 9))
        .build();
    registry.push(&image, "app:1").unwrap();
    let proxy = Proxy::start(registry.addr()).unwrap();
    let target = image.layers[1].digest.clone();
    proxy.add_rule(
        Rule::path_contains(&format!("/blobs/{target}"))
            .method("GET")
            .cut_after(1 << 20)
            .once(),
    );
    let env = env(&[proxy.host()]).await;
    let reference = format!("{}/app:1", proxy.host());

    let err = env
        .svc
        .pull(&reference, None, &Progress::none())
        .await
        .unwrap_err();
    let msg = format!("{err}");
    assert!(
        msg.contains(&target) && (msg.contains("broke off") || msg.contains("failed to download")),
        "{msg}"
    );
    assert!(
        !env.paths
            .content_dir()
            .join("blobs/sha256")
            .join(target.trim_start_matches("sha256:"))
            .exists()
    );
    assert_eq!(env.leftovers(), 0);
    let preparing: i64 = env
        .db
        .call(|db| {
            db.conn()
                .query_row(
                    "SELECT count(*) FROM snapshots WHERE state != 'committed'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        })
        .await;
    assert_eq!(preparing, 0);

    env.svc
        .pull(&reference, None, &Progress::none())
        .await
        .unwrap();
    let root = env.svc.rootfs(&reference).await.unwrap();
    assert_eq!(
        std::fs::read(root.lower_dirs[0].join("data"))
            .unwrap()
            .len(),
        4 << 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_not_sent_after_a_redirect_to_another_host() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let image = ImageBuilder::busybox(&["sh"]).build();
    registry.push(&image, "private:1").unwrap();
    // `other` stands for a blob store on another host: it serves the registry's blobs.
    let other = Proxy::start(registry.addr()).unwrap();
    let front = Proxy::start(registry.addr()).unwrap();
    front.set_auth(Auth::Basic {
        user: "bA-user".into(),
        password: "bA-secret".into(),
    });
    front.add_rule(
        Rule::path_contains("/blobs/sha256:")
            .method("GET")
            .redirect(&format!("http://{}{{path}}", other.host())),
    );
    let scratch = tempfile::tempdir().unwrap();
    let config = with_credentials(
        scratch.path(),
        &[front.host(), other.host()],
        &[(&front.host(), "bA-user", "bA-secret")],
    );
    let env = env_with(config).await;

    let s = env
        .svc
        .pull(
            &format!("{}/private:1", front.host()),
            None,
            &Progress::none(),
        )
        .await
        .unwrap();
    assert_eq!(s.manifest_digest.to_string(), image.manifest_digest);
    let front_reqs = front.requests();
    let blob_reqs: Vec<_> = front_reqs
        .iter()
        .filter(|r| r.path.contains("/blobs/"))
        .collect();
    assert!(!blob_reqs.is_empty());
    assert!(blob_reqs.iter().all(|r| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))
    }));
    let other_reqs = other.requests();
    assert!(
        other_reqs.iter().any(|r| r.path.contains("/blobs/")),
        "the redirect was followed"
    );
    for r in &other_reqs {
        assert_eq!(
            r.header("authorization"),
            None,
            "credentials leaked to {} {}",
            r.method,
            r.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_anonymous_and_with_credentials() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let image = ImageBuilder::busybox(&["sh"]).build();
    registry.push(&image, "lib/app:1").unwrap();

    // Docker Hub style: anonymous token.
    let hub = Proxy::start(registry.addr()).unwrap();
    hub.set_auth(Auth::Token {
        token: "bA-anon-token".into(),
        user: None,
    });
    let env1 = env(&[hub.host()]).await;
    env1.svc
        .pull(
            &format!("{}/lib/app:1", hub.host()),
            None,
            &Progress::none(),
        )
        .await
        .unwrap();
    let reqs = hub.requests();
    let token_req = reqs
        .iter()
        .find(|r| r.path.starts_with("/token"))
        .expect("token requested");
    assert!(
        token_req
            .path
            .contains("scope=repository%3Alib%2Fapp%3Apull")
            || token_req.path.contains("scope=repository:lib/app:pull"),
        "{}",
        token_req.path
    );
    assert!(
        reqs.iter()
            .filter(|r| r.path.contains("/manifests/"))
            .all(|r| r.header("authorization") == Some("Bearer bA-anon-token"))
    );

    // A private registry's token service wants credentials.
    let private = Proxy::start(registry.addr()).unwrap();
    private.set_auth(Auth::Token {
        token: "bA-user-token".into(),
        user: Some(("bA-u".into(), "bA-p".into())),
    });
    let scratch = tempfile::tempdir().unwrap();
    let good = with_credentials(
        scratch.path(),
        &[private.host()],
        &[(&private.host(), "bA-u", "bA-p")],
    );
    let env2 = env_with(good).await;
    env2.svc
        .pull(
            &format!("{}/lib/app:1", private.host()),
            None,
            &Progress::none(),
        )
        .await
        .unwrap();

    let bad = with_credentials(
        scratch.path(),
        &[private.host()],
        &[(&private.host(), "bA-u", "wrong")],
    );
    let env3 = env_with(bad).await;
    let err = env3
        .svc
        .pull(
            &format!("{}/lib/app:1", private.host()),
            None,
            &Progress::none(),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.class(), ErrorClass::NotFound, "{msg}");
    assert!(
        msg.contains("refused access") && msg.contains(&private.host()),
        "{msg}"
    );
    // Credentials of one registry are not offered to another.
    let env4 = env_with(with_credentials(
        scratch.path(),
        &[hub.host()],
        &[(&private.host(), "bA-u", "bA-p")],
    ))
    .await;
    hub.clear_requests();
    env4.svc
        .pull(
            &format!("{}/lib/app:1", hub.host()),
            None,
            &Progress::none(),
        )
        .await
        .unwrap();
    assert!(hub.requests().iter().all(|r| {
        !r.header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_layer_urls_are_never_fetched() {
    if !have_root() {
        return;
    }
    let registry = Registry::start_with(&RegistryOptions {
        allow_foreign_urls: vec!["^http://127\\.0\\.0\\.1".into()],
    })
    .unwrap();
    let decoy = Proxy::start(registry.addr()).unwrap();
    let url = format!("http://{}/evil-layer", decoy.host());
    let nondist = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    // The blob is in the registry: it is fetched from there, never from the URL.
    let present = ImageBuilder::busybox(&["sh"])
        .layer(
            Layer::new()
                .file("foreign", b"f", 0o644)
                .media_type(nondist)
                .foreign(&[&url]),
        )
        .build();
    registry
        .push_blob(
            "foreign",
            &present.layers[1].digest,
            &present.layers[1].blob,
        )
        .unwrap();
    registry.push(&present, "foreign:present").unwrap();
    // The blob is missing from the registry: the pull fails rather than use the URL.
    let missing = ImageBuilder::busybox(&["sh"])
        .layer(
            Layer::new()
                .file("foreign2", b"g", 0o644)
                .media_type(nondist)
                .foreign(&[&url]),
        )
        .build();
    registry.push(&missing, "foreign:missing").unwrap();
    let env = env(&[registry.host(), decoy.host()]).await;

    env.svc
        .pull(
            &registry.reference("foreign:present"),
            None,
            &Progress::none(),
        )
        .await
        .unwrap();
    let err = env
        .svc
        .pull(
            &registry.reference("foreign:missing"),
            None,
            &Progress::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
    assert!(
        decoy.requests().is_empty(),
        "foreign URL fetched: {:?}",
        decoy.requests()
    );
    assert_eq!(env.leftovers(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_that_does_not_match_its_diff_id_is_not_committed() {
    if !have_root() {
        return;
    }
    let registry = Registry::start().unwrap();
    let image = ImageBuilder::busybox(&["sh"])
        .layer(Layer::new().file("x", b"x", 0o644))
        .config_patch(|c| {
            c["rootfs"]["diff_ids"][1] =
                "sha256:0000000000000000000000000000000000000000000000000000000000000000".into()
        })
        .build();
    registry.push(&image, "lying:1").unwrap();
    let env = env(&[registry.host()]).await;
    let err = env
        .svc
        .pull(&registry.reference("lying:1"), None, &Progress::none())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&image.layers[1].digest) && msg.contains("diff id is sha256:0000"),
        "{msg}"
    );
    assert_eq!(env.leftovers(), 0);
    assert!(env.svc.list().await.unwrap().is_empty());
    let uncommitted: i64 = env
        .db
        .call(|db| {
            db.conn()
                .query_row(
                    "SELECT count(*) FROM snapshots WHERE diff_id LIKE 'sha256:0000%' OR state != 'committed'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        })
        .await;
    assert_eq!(uncommitted, 0);
    assert_eq!(
        env.snapshot_count(),
        1,
        "only the honest base layer was committed"
    );
}
