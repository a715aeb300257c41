//! Pulling: resolving, storing manifest and config, and ensuring every layer's blob
//! and snapshot, concurrently and at most once per diff id.

use std::path::PathBuf;
use std::sync::Arc;

use berth_registry::layer::{self, BlobSink, LayerJob, LayerOutcome};
use berth_registry::manifest::{Descriptor, ImageConfig, ImageManifest};
use berth_registry::{Digest, Login, Platform, Reference, ResolvedImage};

use super::error::{ImageError, io_err};
use super::progress::{LayerInfo, Progress, ProgressEvent};
use super::store::{self, LayerRow, ManifestRow};
use super::{ImageService, ImageSummary, blocking};

/// A shared hold on the GC lock, passed to detached layer tasks.
pub(crate) type SharedGuard = Arc<tokio::sync::OwnedRwLockReadGuard<()>>;

/// Where a layer's bytes come from when they are not in the content store yet.
#[derive(Clone)]
pub(crate) enum LayerSource {
    /// The registry the image was resolved from.
    Registry(Arc<ResolvedImage>),
    /// An image archive being loaded.
    Archive(Arc<berth_registry::archive::Archive>),
}

/// An image about to be recorded: everything but its layers is in memory.
pub(crate) struct Incoming<'a> {
    pub reference: String,
    pub source: &'static str,
    pub manifest_digest: &'a Digest,
    pub manifest_bytes: &'a [u8],
    pub manifest: &'a ImageManifest,
    pub index_digest: Option<&'a Digest>,
    pub config_bytes: &'a [u8],
    pub config: &'a ImageConfig,
    pub platform: &'a Platform,
}

impl ImageService {
    pub(crate) async fn pull_registry(
        &self,
        reference: &Reference,
        platform: &Platform,
        progress: &Progress,
        login: Option<&Login>,
    ) -> Result<ImageSummary, ImageError> {
        let shared = Arc::new(self.inner.gc.clone().read_owned().await);
        let resolved = Arc::new(
            self.inner
                .client
                .resolve_as(reference, platform, login)
                .await?,
        );
        let r = &resolved;
        self.store_image(
            Incoming {
                reference: reference.to_string(),
                source: "registry",
                manifest_digest: &r.manifest_digest,
                manifest_bytes: &r.manifest_bytes,
                manifest: &r.manifest,
                index_digest: r.index_digest.as_ref(),
                config_bytes: &r.config_bytes,
                config: &r.config,
                platform: &r.platform,
            },
            LayerSource::Registry(resolved.clone()),
            progress,
            &shared,
        )
        .await
    }

    /// Stores manifest and config, ensures every layer, records the reference.
    /// `shared` is the caller's shared hold on the GC lock; layer tasks keep a clone
    /// of it (taking a second shared hold could deadlock behind a waiting GC).
    pub(crate) async fn store_image(
        &self,
        img: Incoming<'_>,
        source: LayerSource,
        progress: &Progress,
        shared: &SharedGuard,
    ) -> Result<ImageSummary, ImageError> {
        progress.emit(ProgressEvent::Resolved {
            reference: img.reference.clone(),
            manifest_digest: img.manifest_digest.clone(),
            platform: img.platform.to_string(),
            layers: img
                .manifest
                .layers
                .iter()
                .map(|l| LayerInfo {
                    digest: l.digest.clone(),
                    size: l.size,
                })
                .collect(),
        });
        let content = self.inner.content.clone();
        let (md, mb) = (img.manifest_digest.clone(), img.manifest_bytes.to_vec());
        let (cd, cb) = (
            img.manifest.config.digest.clone(),
            img.config_bytes.to_vec(),
        );
        blocking(move || -> Result<(), ImageError> {
            content.write(&md, &mb)?;
            content.write(&cd, &cb)?;
            Ok(())
        })
        .await?;

        // Layers: detached tasks, at most `max_concurrent_layers` at a time.
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.inner.config.max_concurrent_layers.max(1),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        let mut seen = std::collections::BTreeSet::new();
        for (desc, diff_id) in img.manifest.layers.iter().zip(&img.config.diff_ids) {
            if !seen.insert(diff_id.clone()) {
                continue; // the same layer twice in one image
            }
            let (svc, desc, diff_id, source, progress, limit) = (
                self.clone(),
                desc.clone(),
                diff_id.clone(),
                source.clone(),
                progress.clone(),
                limit.clone(),
            );
            let gc = shared.clone();
            let handle = tokio::spawn(async move {
                let _gc = gc;
                let _permit = limit.acquire_owned().await.expect("never closed");
                svc.ensure_layer(&desc, &diff_id, &source, &progress).await
            });
            tasks.spawn(async move { handle.await.expect("layer task panicked") });
        }
        let mut first_err = None;
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r.expect("layer join")
                && first_err.is_none()
            {
                first_err = Some(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }

        let row = ManifestRow {
            digest: img.manifest_digest.to_string(),
            media_type: img
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| berth_registry::manifest::media_type::OCI_MANIFEST.into()),
            config_digest: img.manifest.config.digest.to_string(),
            platform: img.platform.to_string(),
            size: img.manifest_bytes.len() as u64 + img.manifest.content_size(),
            created: img.config.oci.created().clone(),
            layers: img
                .manifest
                .layers
                .iter()
                .zip(&img.config.diff_ids)
                .map(|(l, d)| LayerRow {
                    blob_digest: l.digest.to_string(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    diff_id: d.to_string(),
                })
                .collect(),
        };
        let (reference, index, src) = (
            img.reference.clone(),
            img.index_digest.map(Digest::to_string),
            img.source,
        );
        let size = row.size;
        self.inner
            .db
            .call(move |db| store::record_image(db, &row, &reference, index.as_deref(), src))
            .await?;
        progress.emit(ProgressEvent::Finished {
            reference: img.reference.clone(),
            manifest_digest: img.manifest_digest.clone(),
            image_id: img.manifest.config.digest.clone(),
            size,
        });
        let key = img.reference.clone();
        let row = self
            .inner
            .db
            .call(move |db| store::image(db, &key))
            .await?
            .ok_or_else(|| ImageError::Corrupt {
                reference: img.reference.clone(),
                detail: "vanished after recording".into(),
            })?;
        self.summary(row).await
    }

    /// Makes sure the layer's blob is in the content store and its snapshot is
    /// committed, fetching and unpacking in one pass when needed.
    pub(crate) async fn ensure_layer(
        &self,
        desc: &Descriptor,
        diff_id: &Digest,
        source: &LayerSource,
        progress: &Progress,
    ) -> Result<(), ImageError> {
        let _lock = self.inner.locks.lock(&diff_id.to_string()).await;
        let d = diff_id.to_string();
        let snap = self
            .inner
            .db
            .call(move |db| store::snapshot(db, &d))
            .await?;
        let have_blob = self.inner.content.contains(&desc.digest);
        let have_snapshot = snap
            .as_ref()
            .is_some_and(|s| s.committed && self.snapshot_dir(s.id).is_dir());
        if have_blob && have_snapshot {
            progress.emit(ProgressEvent::LayerCached {
                digest: desc.digest.clone(),
            });
            return Ok(());
        }
        let job = |snapshot: Option<PathBuf>| LayerJob {
            desc: desc.clone(),
            diff_id: diff_id.clone(),
            snapshot,
            limits: self.inner.config.limits.clone(),
        };
        if have_snapshot {
            // Only the blob is missing (e.g. the snapshot came from another image
            // whose layer was compressed differently): fetch and verify it.
            self.fetch(job(None), source, progress).await?;
            progress.emit(ProgressEvent::LayerDone {
                digest: desc.digest.clone(),
            });
            return Ok(());
        }
        let d = diff_id.to_string();
        let id = self
            .inner
            .db
            .call(move |db| store::prepare_snapshot(db, &d))
            .await?;
        let tmp = self.inner.scratch.join(id.to_string());
        let result = async {
            let t = tmp.clone();
            blocking(move || {
                use std::os::unix::fs::PermissionsExt;
                std::fs::create_dir(&t)?;
                std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755))
            })
            .await
            .map_err(io_err("create", &tmp))?;
            let outcome = if have_blob {
                let (content, j) = (self.inner.content.clone(), job(Some(tmp.clone())));
                blocking(move || -> Result<LayerOutcome, ImageError> {
                    let f = content.open_blob(&j.desc.digest)?;
                    Ok(layer::apply_layer(
                        std::io::BufReader::with_capacity(256 << 10, f),
                        BlobSink::Trusted,
                        &j,
                    )?)
                })
                .await?
            } else {
                self.fetch(job(Some(tmp.clone())), source, progress).await?
            };
            // No fsync of the directory: the snapshot's files are not synced either, and
            // a committed row whose directory is missing after a crash is dropped by
            // `reconcile` at start, so the layer is simply unpacked again.
            let (t, dir) = (tmp.clone(), self.snapshot_dir(id));
            blocking(move || std::fs::rename(&t, &dir))
                .await
                .map_err(io_err("commit snapshot", self.snapshot_dir(id)))?;
            self.inner
                .db
                .call(move |db| store::commit_snapshot(db, id, outcome.diff_size))
                .await?;
            Ok::<(), ImageError>(())
        }
        .await;
        if let Err(e) = result {
            let t = tmp.clone();
            blocking(move || {
                let _ = std::fs::remove_dir_all(t);
            })
            .await;
            self.inner
                .db
                .call(move |db| store::delete_snapshots(db, &[id]))
                .await?;
            return Err(e);
        }
        progress.emit(ProgressEvent::LayerDone {
            digest: desc.digest.clone(),
        });
        Ok(())
    }

    async fn fetch(
        &self,
        job: LayerJob,
        source: &LayerSource,
        progress: &Progress,
    ) -> Result<LayerOutcome, ImageError> {
        match source {
            LayerSource::Registry(image) => {
                let bytes = progress.layer_bytes(job.desc.digest.clone(), job.desc.size);
                Ok(layer::fetch_layer(image, &self.inner.content, job, bytes).await?)
            }
            LayerSource::Archive(archive) => {
                let (archive, content) = (archive.clone(), self.inner.content.clone());
                blocking(move || -> Result<LayerOutcome, ImageError> {
                    let (reader, _) = archive.open_layer(&job.desc)?;
                    let ingest = content.ingest(&job.desc.digest, Some(job.desc.size))?;
                    let reader = std::io::BufReader::with_capacity(256 << 10, reader);
                    Ok(layer::apply_layer(reader, BlobSink::Ingest(ingest), &job)?)
                })
                .await
            }
        }
    }
}
