//! The image service: pull, list, remove, collect, load and save images, and hand a
//! task what it needs to run one.
//!
//! Mechanism (registry protocol, content store, safe unpacker) lives in
//! `berth_registry`; this module adds the policy and the SQLite bookkeeping
//! (migration 1: `images`, `manifests`, `manifest_layers`, `snapshots`).
//!
//! # On-disk layout
//!
//! ```text
//! <data-root>/berth.db                 images → manifests → layers → snapshots
//! <data-root>/content/blobs/sha256/<hex>  manifests, configs, compressed layers (0444,
//!                                       verified before they were renamed here)
//! <data-root>/content/ingest/          downloads in flight; cleared at start
//! <data-root>/snapshots/<id>/          one unpacked layer = one overlayfs lower dir;
//!                                       <id> is `snapshots.id`, short on purpose so
//!                                       that a 128-layer lowerdir option fits a page
//! <data-root>/snapshots/tmp/<id>/      a layer being unpacked; cleared at start
//! ```
//!
//! `snapshots/` and `content/` are mode 0700: image content (setuid binaries included)
//! is not reachable by other users of the host (CVE-2021-41091).
//!
//! # Pulling
//!
//! [`ImageService::pull`] resolves the reference to one platform's manifest, stores
//! manifest and config, then fetches up to `max_concurrent_layers` layers at once.
//! Each layer is downloaded, hashed, written to the content store, decompressed,
//! hashed again and unpacked in one pass (see `berth_registry::layer`) into
//! `snapshots/tmp/<id>`, whose `preparing` row was written first; only when the blob
//! digest *and* the diff id match is the directory renamed to `snapshots/<id>` and the
//! row committed. Snapshots are keyed by diff id, so images sharing a layer share its
//! snapshot; a per-diff-id lock makes two concurrent pulls of the same layer wait for
//! one another instead of unpacking twice. Layer tasks are detached: a pull whose
//! caller went away still finishes (or cleans up) the layers it started.
//!
//! # Running
//!
//! [`ImageService::rootfs`] returns the overlay lower dirs (top layer first) and the
//! image config. Mount them with `lowerdir=` in that order plus an upper and work dir;
//! because layers cannot carry `trusted.*` xattrs, no layer can inject overlayfs
//! redirects or metacopy attributes.
//!
//! # Collecting
//!
//! [`ImageService::remove`] drops references; [`ImageService::gc`] deletes manifests
//! no reference names and no running task holds ([`InUse`]: the manifest digests
//! running tasks were started from), then blobs and snapshots nothing needs. GC takes
//! a write lock that waits for in-flight pulls and loads.

mod archive;
mod error;
pub mod progress;
mod pull;
mod source;
mod store;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use berth_registry::client::ClientConfig;
use berth_registry::manifest::{Healthcheck, ImageConfig, MAX_CONFIG_BYTES};
use berth_registry::unpack::Limits;
use berth_registry::{ContentStore, Digest, Login, Platform, RegistryClient};
use serde::Serialize;

use crate::db::DbHandle;
use crate::paths::Paths;

pub use error::ImageError;
pub use progress::{LayerInfo, Progress, ProgressEvent, ProgressRenderer};
pub use source::ImageSource;

/// Settings of the image service.
#[derive(Debug, Clone)]
pub struct ImageServiceConfig {
    /// Registry access: insecure registries, credentials, timeouts.
    pub registry: ClientConfig,
    /// Layers fetched at once per pull (Docker's default is 3).
    pub max_concurrent_layers: usize,
    /// Bounds on a layer's content.
    pub limits: Limits,
}

impl Default for ImageServiceConfig {
    fn default() -> ImageServiceConfig {
        ImageServiceConfig {
            registry: ClientConfig::default(),
            max_concurrent_layers: 3,
            limits: Limits::default(),
        }
    }
}

/// An image as `berth images` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// The reference it is stored under.
    pub reference: String,
    /// The platform manifest's digest.
    pub manifest_digest: Digest,
    /// The index the manifest was chosen from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// The image id: the config's digest.
    pub image_id: Digest,
    /// `linux/amd64`.
    pub platform: String,
    /// Content size: manifest, config and compressed layers.
    pub size: u64,
    /// Size of the unpacked layers.
    pub unpacked_size: u64,
    /// The config's creation time (RFC 3339), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `registry`, `oci-layout`, `oci-archive` or `docker-archive`.
    pub source: String,
}

/// What a task needs to run an image.
#[derive(Debug, Clone)]
pub struct RootFs {
    /// The reference (or manifest digest) asked for.
    pub reference: String,
    /// The manifest the layers come from: record it with the task and pass it in
    /// [`InUse`] while the task runs.
    pub manifest_digest: Digest,
    /// The image id.
    pub image_id: Digest,
    /// Overlay lower dirs, absolute, **top layer first** (the order of `lowerdir=`).
    /// A layer repeated in an image appears once, at its topmost position.
    pub lower_dirs: Vec<PathBuf>,
    /// The image config: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts,
    /// Volumes, StopSignal, Labels…
    pub config: oci_spec::image::ImageConfiguration,
    /// Docker's HEALTHCHECK, if the image has one.
    pub healthcheck: Option<Healthcheck>,
}

/// Manifests running tasks hold: [`ImageService::gc`] keeps them, their config, their
/// layer blobs and their snapshots even when no reference names them any more.
#[derive(Debug, Clone, Default)]
pub struct InUse {
    manifests: BTreeSet<Digest>,
}

impl InUse {
    /// Nothing in use.
    pub fn none() -> InUse {
        InUse::default()
    }

    /// The manifests of running tasks (from [`RootFs::manifest_digest`]).
    pub fn manifests(digests: impl IntoIterator<Item = Digest>) -> InUse {
        InUse {
            manifests: digests.into_iter().collect(),
        }
    }
}

/// What [`ImageService::remove`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The references removed.
    pub references: Vec<String>,
    /// Manifests no reference names any more; [`ImageService::gc`] collects them
    /// unless a running task holds them.
    pub unreferenced: Vec<Digest>,
}

/// What [`ImageService::gc`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Manifest rows deleted.
    pub manifests: usize,
    /// Blobs deleted.
    pub blobs: usize,
    /// Snapshots deleted.
    pub snapshots: usize,
    /// Bytes freed in the content store (snapshots not counted).
    pub blob_bytes: u64,
}

/// Per-key async locks (one per diff id being unpacked).
#[derive(Debug, Default)]
struct KeyedLocks {
    map: std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.map.lock().expect("not poisoned");
            map.retain(|_, w| w.strong_count() > 0);
            match map.get(key).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key.to_owned(), Arc::downgrade(&m));
                    m
                }
            }
        };
        m.lock_owned().await
    }
}

#[derive(Debug)]
struct Inner {
    db: DbHandle,
    content: ContentStore,
    snapshots: PathBuf,
    scratch: PathBuf,
    client: RegistryClient,
    config: ImageServiceConfig,
    locks: KeyedLocks,
    /// Pulls and loads hold it shared; GC exclusively.
    gc: Arc<tokio::sync::RwLock<()>>,
    /// Parsed image configs by digest: every task start needs its images' configs, and a
    /// config blob never changes (its digest names its content), so each is read from
    /// the content store and parsed once (a blocking file read and a JSON parse off the
    /// task's path).
    configs: std::sync::Mutex<HashMap<Digest, Arc<ImageConfig>>>,
}

/// Configs kept in [`Inner::configs`]; past this many the cache starts over.
const CACHED_CONFIGS: usize = 64;

/// The image service. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct ImageService {
    inner: Arc<Inner>,
}

pub(crate) fn parse_digest(context: &str, s: &str) -> Result<Digest, ImageError> {
    s.parse().map_err(|e| ImageError::Corrupt {
        reference: context.to_owned(),
        detail: format!("{e}"),
    })
}

/// Whether an image stored for `stored` (a platform string) runs on `platform`.
fn runs_on(stored: &str, platform: &Platform) -> bool {
    stored
        .parse::<Platform>()
        .is_ok_and(|have| platform.rank(&have).is_some())
}

/// A stored manifest and the snapshot of each of its layers (in layer order).
type StoredManifest = (store::ManifestRow, Vec<Option<store::SnapshotRow>>);

/// Manifest `digest` and its layers' snapshots, if the manifest is stored.
fn manifest_and_snapshots(
    db: &crate::db::Db,
    digest: &str,
) -> Result<Option<StoredManifest>, crate::db::DbError> {
    let Some(m) = store::manifest(db, digest)? else {
        return Ok(None);
    };
    let snaps = m
        .layers
        .iter()
        .map(|l| store::snapshot(db, &l.diff_id))
        .collect::<Result<_, _>>()?;
    Ok(Some((m, snaps)))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking image task panicked")
}

impl ImageService {
    /// Opens the service on `paths`' content and snapshot directories, cleaning what
    /// an earlier run left half-done: ingest files, `snapshots/tmp`, `preparing`
    /// snapshot rows, and rows whose directory has vanished.
    pub async fn open(
        paths: &Paths,
        db: DbHandle,
        config: ImageServiceConfig,
    ) -> Result<ImageService, ImageError> {
        let client = RegistryClient::new(config.registry.clone());
        ImageService::open_with_client(paths, db, config, client).await
    }

    /// Like [`open`](Self::open) with a registry client made earlier: a
    /// [`RegistryClient`] starts loading the system's TLS roots in the background as
    /// soon as it exists, so a daemon can make it first and open its database
    /// meanwhile. `client` should have been made from `config.registry`.
    pub async fn open_with_client(
        paths: &Paths,
        db: DbHandle,
        config: ImageServiceConfig,
        client: RegistryClient,
    ) -> Result<ImageService, ImageError> {
        let content_dir = paths.content_dir();
        let snapshots = paths.snapshots_dir();
        let scratch = snapshots.join("tmp");
        let content = {
            let (content_dir, snapshots, scratch) =
                (content_dir.clone(), snapshots.clone(), scratch.clone());
            blocking(move || -> Result<ContentStore, ImageError> {
                use std::os::unix::fs::PermissionsExt;
                let content = ContentStore::open(&content_dir)?;
                let n = content.clear_ingest()?;
                if n > 0 {
                    tracing::info!(files = n, "removed interrupted downloads");
                }
                if scratch.exists() {
                    std::fs::remove_dir_all(&scratch).map_err(error::io_err("clear", &scratch))?;
                }
                std::fs::create_dir_all(&scratch).map_err(error::io_err("create", &scratch))?;
                std::fs::set_permissions(&snapshots, std::fs::Permissions::from_mode(0o700))
                    .map_err(error::io_err("chmod", &snapshots))?;
                Ok(content)
            })
            .await?
        };
        let svc = ImageService {
            inner: Arc::new(Inner {
                db,
                content,
                snapshots,
                scratch,
                client,
                config,
                locks: KeyedLocks::default(),
                gc: Arc::new(tokio::sync::RwLock::new(())),
                configs: std::sync::Mutex::new(HashMap::new()),
            }),
        };
        svc.reconcile().await?;
        Ok(svc)
    }

    async fn reconcile(&self) -> Result<(), ImageError> {
        let rows = self.inner.db.call(|db| store::snapshots(db)).await?;
        let mut stale = Vec::new();
        for s in rows {
            let dir = self.snapshot_dir(s.id);
            if !s.committed {
                let d = dir.clone();
                blocking(move || {
                    let _ = std::fs::remove_dir_all(d);
                })
                .await;
                stale.push(s.id);
            } else if !dir.is_dir() {
                tracing::warn!(snapshot = s.id, diff_id = %s.diff_id, "snapshot directory vanished; it will be unpacked again");
                stale.push(s.id);
            }
        }
        if !stale.is_empty() {
            self.inner
                .db
                .call(move |db| store::delete_snapshots(db, &stale))
                .await?;
        }
        Ok(())
    }

    pub(crate) fn snapshot_dir(&self, id: i64) -> PathBuf {
        self.inner.snapshots.join(id.to_string())
    }

    /// The content store (for callers that export blobs).
    pub fn content(&self) -> &ContentStore {
        &self.inner.content
    }

    /// Pulls `reference` (a registry reference, or an `oci-layout:`/`oci-archive:`/
    /// `docker-archive:` source, which is loaded) for `platform` (default: the
    /// host's), replacing what the reference named before.
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&Platform>,
        progress: &Progress,
    ) -> Result<ImageSummary, ImageError> {
        let platform = platform.cloned().unwrap_or_else(Platform::host);
        match ImageSource::parse(reference)? {
            ImageSource::Registry(r) => self.pull_registry(&r, &platform, progress, None).await,
            src @ ImageSource::Archive { .. } => self.load_source(&src, &platform, progress).await,
        }
    }

    /// Like [`pull`](Self::pull), but returns the local image without contacting the
    /// registry when `reference` is already present for `platform` (default: the
    /// host's) and complete. This is what starting a task calls.
    pub async fn ensure(
        &self,
        reference: &str,
        platform: Option<&Platform>,
        progress: &Progress,
    ) -> Result<ImageSummary, ImageError> {
        self.ensure_as(reference, platform, progress, None).await
    }

    /// [`ensure`](Self::ensure), pulling with `login` (when given) instead of the
    /// configured credentials.
    pub async fn ensure_as(
        &self,
        reference: &str,
        platform: Option<&Platform>,
        progress: &Progress,
        login: Option<&Login>,
    ) -> Result<ImageSummary, ImageError> {
        let source = ImageSource::parse(reference)?;
        let key = source.key();
        let platform = platform.cloned().unwrap_or_else(Platform::host);
        if let Some(summary) = self.present(&key, Some(&platform)).await? {
            return Ok(summary);
        }
        match source {
            ImageSource::Registry(r) => self.pull_registry(&r, &platform, progress, login).await,
            src @ ImageSource::Archive { .. } => self.load_source(&src, &platform, progress).await,
        }
    }

    /// The summary of `key` if it is stored, matches `platform` and all its
    /// snapshots exist.
    async fn present(
        &self,
        key: &str,
        platform: Option<&Platform>,
    ) -> Result<Option<ImageSummary>, ImageError> {
        let k = key.to_owned();
        let Some(row) = self.inner.db.call(move |db| store::image(db, &k)).await? else {
            return Ok(None);
        };
        let summary = self.summary(row).await?;
        if let Some(p) = platform
            && !runs_on(&summary.platform, p)
        {
            return Ok(None);
        }
        match self
            .rootfs_of(key.to_owned(), summary.manifest_digest.to_string())
            .await
        {
            Ok(_) => Ok(Some(summary)),
            Err(ImageError::SnapshotMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn summary(&self, row: store::ImageRow) -> Result<ImageSummary, ImageError> {
        let digest = row.manifest_digest.clone();
        let (m, unpacked) = self
            .inner
            .db
            .call(move |db| -> Result<_, crate::db::DbError> {
                let m = store::manifest(db, &digest)?;
                let mut unpacked = 0;
                if let Some(m) = &m {
                    let mut seen = BTreeSet::new();
                    for l in &m.layers {
                        if seen.insert(l.diff_id.clone())
                            && let Some(s) = store::snapshot(db, &l.diff_id)?
                        {
                            unpacked += s.size;
                        }
                    }
                }
                Ok((m, unpacked))
            })
            .await?;
        let m = m.ok_or_else(|| ImageError::Corrupt {
            reference: row.reference.clone(),
            detail: "manifest row missing".into(),
        })?;
        Ok(ImageSummary {
            manifest_digest: parse_digest(&row.reference, &m.digest)?,
            index_digest: row
                .index_digest
                .as_deref()
                .map(|d| parse_digest(&row.reference, d))
                .transpose()?,
            image_id: parse_digest(&row.reference, &m.config_digest)?,
            platform: m.platform,
            size: m.size,
            unpacked_size: unpacked,
            created: m.created,
            source: row.source,
            reference: row.reference,
        })
    }

    /// Every stored image reference.
    pub async fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let rows = self.inner.db.call(|db| store::images(db)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.summary(r).await?);
        }
        Ok(out)
    }

    /// Finds images by reference (any accepted form) or by image id (`sha256:…` or a
    /// unique hex prefix of at least 4 characters).
    async fn find(&self, name: &str) -> Result<Vec<store::ImageRow>, ImageError> {
        if let Ok(src) = ImageSource::parse(name) {
            let key = src.key();
            if let Some(row) = self.inner.db.call(move |db| store::image(db, &key)).await? {
                return Ok(vec![row]);
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let prefix = hex.to_owned();
            let matches = self
                .inner
                .db
                .call(move |db| store::references_by_id_prefix(db, &prefix))
                .await?;
            let ids: BTreeSet<&String> = matches.iter().map(|(_, id)| id).collect();
            if ids.len() > 1 {
                return Err(ImageError::AmbiguousId {
                    prefix: name.to_owned(),
                    count: ids.len(),
                });
            }
            let mut rows = Vec::new();
            for (reference, _) in &matches {
                let r = reference.clone();
                if let Some(row) = self.inner.db.call(move |db| store::image(db, &r)).await? {
                    rows.push(row);
                }
            }
            if !rows.is_empty() {
                return Ok(rows);
            }
        }
        // Report a malformed reference as such, an unknown one as not found.
        ImageSource::parse(name)?;
        Err(ImageError::NotFound(name.to_owned()))
    }

    /// Removes a reference, or every reference of an image id. The image's content
    /// becomes collectable by [`gc`](Self::gc) once no reference names it.
    pub async fn remove(&self, name: &str) -> Result<Removed, ImageError> {
        let rows = self.find(name).await?;
        let refs: Vec<String> = rows.into_iter().map(|r| r.reference).collect();
        let r2 = refs.clone();
        let orphaned = self
            .inner
            .db
            .call(move |db| store::remove_references(db, &r2))
            .await?;
        let unreferenced = orphaned
            .iter()
            .map(|d| parse_digest(name, d))
            .collect::<Result<_, _>>()?;
        Ok(Removed {
            references: refs,
            unreferenced,
        })
    }

    /// What a task needs to run the image `name` (a reference or image id).
    pub async fn rootfs(&self, name: &str) -> Result<RootFs, ImageError> {
        let mut rows = self.find(name).await?;
        let row = rows.remove(0);
        self.rootfs_of(name.to_owned(), row.manifest_digest).await
    }

    /// What a task needs to run the image with this manifest digest, whether or not a
    /// reference still names it (a task restarted after `rmi`, before GC).
    pub async fn rootfs_by_manifest(&self, manifest_digest: &Digest) -> Result<RootFs, ImageError> {
        self.rootfs_of(manifest_digest.to_string(), manifest_digest.to_string())
            .await
    }

    /// What a task needs to run `reference`: the stored image when it is complete and
    /// for this host's platform, pulled (or loaded) first otherwise.
    pub async fn ensure_rootfs(
        &self,
        reference: &str,
        progress: &Progress,
        login: Option<&Login>,
    ) -> Result<RootFs, ImageError> {
        if let Some(root) = self.stored_rootfs(reference).await? {
            return Ok(root);
        }
        self.ensure_as(reference, Some(&Platform::host()), progress, login)
            .await?;
        self.rootfs(reference).await
    }

    /// What a task needs to run `reference` if the image is stored, complete and for this
    /// host's platform; `None` if it must be pulled (or loaded) first. This is on the path
    /// of every task start: one database job and one read of the config blob
    /// ([`ImageService::ensure`] then [`ImageService::rootfs`] take five and two).
    pub async fn stored_rootfs(&self, reference: &str) -> Result<Option<RootFs>, ImageError> {
        let key = ImageSource::parse(reference)?.key();
        let platform = Platform::host();
        let stored = self
            .inner
            .db
            .call(move |db| -> Result<_, crate::db::DbError> {
                let Some(row) = store::image(db, &key)? else {
                    return Ok(None);
                };
                manifest_and_snapshots(db, &row.manifest_digest)
            })
            .await?;
        if let Some((m, snaps)) = stored
            && runs_on(&m.platform, &platform)
        {
            match self.assemble_rootfs(reference.to_owned(), m, snaps).await {
                Err(ImageError::SnapshotMissing { .. }) => {}
                done => return done.map(Some),
            }
        }
        Ok(None)
    }

    async fn rootfs_of(
        &self,
        reference: String,
        manifest_digest: String,
    ) -> Result<RootFs, ImageError> {
        let stored = self
            .inner
            .db
            .call(move |db| manifest_and_snapshots(db, &manifest_digest))
            .await?;
        let (m, snaps) = stored.ok_or_else(|| ImageError::NotFound(reference.clone()))?;
        self.assemble_rootfs(reference, m, snaps).await
    }

    /// The rootfs of manifest `m` whose layers' snapshots are `snaps` (in layer order).
    async fn assemble_rootfs(
        &self,
        reference: String,
        m: store::ManifestRow,
        snaps: Vec<Option<store::SnapshotRow>>,
    ) -> Result<RootFs, ImageError> {
        let mut lower_dirs = Vec::new();
        let mut seen = BTreeSet::new();
        for (layer, snap) in m.layers.iter().zip(&snaps).rev() {
            let missing = || ImageError::SnapshotMissing {
                reference: reference.clone(),
                diff_id: layer
                    .diff_id
                    .parse()
                    .unwrap_or_else(|_| Digest::sha256_of(layer.diff_id.as_bytes())),
            };
            let snap = snap.as_ref().filter(|s| s.committed).ok_or_else(missing)?;
            if !seen.insert(snap.id) {
                continue;
            }
            let dir = self.snapshot_dir(snap.id);
            if !dir.is_dir() {
                return Err(missing());
            }
            lower_dirs.push(dir);
        }
        let config_digest = parse_digest(&reference, &m.config_digest)?;
        let config = self.image_config(&reference, &config_digest).await?;
        Ok(RootFs {
            manifest_digest: parse_digest(&reference, &m.digest)?,
            image_id: config_digest,
            lower_dirs,
            config: config.oci.clone(),
            healthcheck: config.healthcheck.clone(),
            reference,
        })
    }

    /// The parsed config blob `digest` of `reference`'s image, from the cache or the
    /// content store.
    async fn image_config(
        &self,
        reference: &str,
        digest: &Digest,
    ) -> Result<Arc<ImageConfig>, ImageError> {
        if let Some(c) = self.inner.configs.lock().expect("not poisoned").get(digest) {
            return Ok(Arc::clone(c));
        }
        let content = self.inner.content.clone();
        let cd = digest.clone();
        let bytes = blocking(move || content.read(&cd, MAX_CONFIG_BYTES as u64)).await?;
        let config = Arc::new(ImageConfig::parse(&bytes).map_err(|e| ImageError::Corrupt {
            reference: reference.to_owned(),
            detail: format!("{e}"),
        })?);
        let mut cache = self.inner.configs.lock().expect("not poisoned");
        if cache.len() >= CACHED_CONFIGS {
            cache.clear();
        }
        cache.insert(digest.clone(), Arc::clone(&config));
        Ok(config)
    }

    /// Deletes manifests no reference names and `in_use` does not hold, then every
    /// blob and snapshot no remaining manifest needs, and stray files and directories
    /// in the content store and snapshot directory.
    pub async fn gc(&self, in_use: &InUse) -> Result<GcReport, ImageError> {
        let _exclusive = self.inner.gc.write().await;
        let in_use: BTreeSet<String> = in_use.manifests.iter().map(Digest::to_string).collect();
        let sweep = self
            .inner
            .db
            .call(move |db| store::sweep(db, &in_use, &BTreeSet::new()))
            .await?;
        let known_ids: BTreeSet<i64> = self
            .inner
            .db
            .call(|db| store::snapshots(db))
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        let this = self.clone();
        let report = blocking(move || -> Result<GcReport, ImageError> {
            let mut report = GcReport {
                manifests: sweep.manifests_removed,
                ..GcReport::default()
            };
            for d in this.inner.content.list()? {
                if !sweep.live_blobs.contains(&d.to_string()) {
                    let size = this.inner.content.size(&d).unwrap_or(0);
                    if this.inner.content.delete(&d)? {
                        report.blobs += 1;
                        report.blob_bytes += size;
                    }
                }
            }
            for s in &sweep.dead_snapshots {
                let dir = this.snapshot_dir(s.id);
                std::fs::remove_dir_all(&dir)
                    .or_else(ignore_missing)
                    .map_err(error::io_err("remove", &dir))?;
                report.snapshots += 1;
            }
            // Directories without a row (a crash between row deletion and removal).
            let entries = std::fs::read_dir(&this.inner.snapshots)
                .map_err(error::io_err("list", &this.inner.snapshots))?;
            for e in entries.flatten() {
                if let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<i64>().ok())
                    && !known_ids.contains(&id)
                {
                    std::fs::remove_dir_all(e.path())
                        .or_else(ignore_missing)
                        .map_err(error::io_err("remove", e.path()))?;
                    report.snapshots += 1;
                }
            }
            Ok(report)
        })
        .await?;
        tracing::info!(?report, "image garbage collection");
        Ok(report)
    }
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_service_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        send_sync::<super::ImageService>();
        send_sync::<super::Progress>();
    }
}
