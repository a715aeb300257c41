//! `berth load` / `berth save` and archive sources (`oci-layout:`, `oci-archive:`,
//! `docker-archive:`).
//!
//! Loading goes through the same verified content store and safe unpacker as a pull:
//! every layer blob is hashed while it is copied into the store and unpacked, manifests
//! and configs are verified when read. An image is recorded only when all of its
//! layers are in; if anything fails, the blobs and snapshots the load added that no
//! image references are deleted again, so nothing half-imported stays.
//!
//! Names: a docker archive's `RepoTags` and an OCI layout's full-name annotations
//! (`docker.io/library/busybox:latest`) become ordinary references; a tag-only OCI
//! name (`latest`, as skopeo and umoci write) becomes `oci-archive:/abs/file.tar:latest`
//! (or `oci-layout:/abs/dir:latest`), the same string a task definition would use; an
//! unnamed image becomes `<transport>:/abs/path:@N`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_registry::archive::{self, Archive, ArchiveImage, ArchiveKind, SaveImage};
use berth_registry::manifest::Descriptor;
use berth_registry::{Digest, Platform, Reference};

use super::error::{ImageError, io_err};
use super::progress::Progress;
use super::pull::{Incoming, LayerSource, SharedGuard};
use super::source::{ImageSource, archive_key};
use super::{ImageService, ImageSummary, blocking, parse_digest, store};

impl ImageService {
    /// Loads every image of an OCI layout directory, OCI archive or `docker save`
    /// archive (optionally gzip or zstd compressed) for the host platform; returns
    /// what was stored, one entry per reference.
    pub async fn load(
        &self,
        path: &Path,
        progress: &Progress,
    ) -> Result<Vec<ImageSummary>, ImageError> {
        let path = std::path::absolute(path).map_err(io_err("resolve", path))?;
        let platform = Platform::host();
        let shared = Arc::new(self.inner.gc.clone().read_owned().await);
        let archive = self.open_archive(&path).await?;
        let images = {
            let (a, p) = (archive.clone(), platform.clone());
            blocking(move || a.images(&p)).await?
        };
        let result = async {
            let mut out = Vec::new();
            for img in &images {
                let keys = names_for(archive.kind(), &path, img);
                let (first, rest) = keys.split_first().expect("names_for never returns nothing");
                let summary = self
                    .store_archive_image(
                        first.clone(),
                        archive.kind(),
                        img,
                        &archive,
                        progress,
                        &shared,
                    )
                    .await?;
                out.push(summary.clone());
                for key in rest {
                    out.push(
                        self.alias(&summary, key, archive.kind().transport(), img)
                            .await?,
                    );
                }
            }
            Ok(out)
        }
        .await;
        drop(shared);
        if result.is_err() {
            self.forget_unreferenced(&images).await;
        }
        result
    }

    /// Loads the one image an archive source names, stored under the source's key.
    pub(crate) async fn load_source(
        &self,
        src: &ImageSource,
        platform: &Platform,
        progress: &Progress,
    ) -> Result<ImageSummary, ImageError> {
        let ImageSource::Archive { kind, path, tag } = src else {
            unreachable!("load_source is only called for archive sources")
        };
        let shared = Arc::new(self.inner.gc.clone().read_owned().await);
        let archive = self.open_archive(path).await?;
        if archive.kind() != *kind
            && !(*kind == ArchiveKind::OciLayout && archive.kind() == ArchiveKind::OciArchive)
        {
            return Err(ImageError::Source {
                reference: src.key(),
                reason: format!(
                    "{} is a {} source",
                    path.display(),
                    archive.kind().transport()
                ),
            });
        }
        let img = {
            let (a, t, p) = (archive.clone(), tag.clone(), platform.clone());
            blocking(move || a.image(t.as_deref(), &p)).await?
        };
        let result = self
            .store_archive_image(src.key(), archive.kind(), &img, &archive, progress, &shared)
            .await;
        drop(shared);
        if result.is_err() {
            self.forget_unreferenced(std::slice::from_ref(&img)).await;
        }
        result
    }

    async fn open_archive(&self, path: &Path) -> Result<Arc<Archive>, ImageError> {
        let (p, scratch) = (path.to_owned(), self.inner.scratch.clone());
        Ok(Arc::new(
            blocking(move || Archive::open(&p, &scratch)).await?,
        ))
    }

    async fn store_archive_image(
        &self,
        reference: String,
        kind: ArchiveKind,
        img: &ArchiveImage,
        archive: &Arc<Archive>,
        progress: &Progress,
        shared: &SharedGuard,
    ) -> Result<ImageSummary, ImageError> {
        self.store_image(
            Incoming {
                reference,
                source: kind.transport(),
                manifest_digest: &img.manifest_digest,
                manifest_bytes: &img.manifest_bytes,
                manifest: &img.manifest,
                index_digest: img.index_digest.as_ref(),
                config_bytes: &img.config_bytes,
                config: &img.config,
                platform: &img.platform,
            },
            LayerSource::Archive(archive.clone()),
            progress,
            shared,
        )
        .await
    }

    /// Records another reference for an image just stored.
    async fn alias(
        &self,
        summary: &ImageSummary,
        key: &str,
        source: &'static str,
        img: &ArchiveImage,
    ) -> Result<ImageSummary, ImageError> {
        let m = summary.manifest_digest.to_string();
        let row = self
            .inner
            .db
            .call(move |db| store::manifest(db, &m))
            .await?
            .ok_or_else(|| ImageError::Corrupt {
                reference: key.to_owned(),
                detail: "manifest vanished".into(),
            })?;
        let (k, index) = (
            key.to_owned(),
            img.index_digest.as_ref().map(Digest::to_string),
        );
        self.inner
            .db
            .call(move |db| store::record_image(db, &row, &k, index.as_deref(), source))
            .await?;
        Ok(ImageSummary {
            reference: key.to_owned(),
            ..summary.clone()
        })
    }

    /// After a failed load: deletes the blobs and snapshots of `images` that no stored
    /// manifest references (they were added by this load, or are garbage anyway).
    async fn forget_unreferenced(&self, images: &[ArchiveImage]) {
        let _exclusive = self.inner.gc.write().await;
        for img in images {
            let blobs = std::iter::once(&img.manifest_digest)
                .chain(std::iter::once(&img.manifest.config.digest))
                .chain(img.manifest.layers.iter().map(|l| &l.digest));
            for d in blobs {
                let s = d.to_string();
                if let Ok(false) = self
                    .inner
                    .db
                    .call(move |db| store::blob_referenced(db, &s))
                    .await
                {
                    let _ = self.inner.content.delete(d);
                }
            }
            for diff_id in &img.config.diff_ids {
                let s = diff_id.to_string();
                let referenced = self
                    .inner
                    .db
                    .call(move |db| store::diff_id_referenced(db, &s))
                    .await;
                let s = diff_id.to_string();
                if let (Ok(false), Ok(Some(snap))) = (
                    referenced,
                    self.inner.db.call(move |db| store::snapshot(db, &s)).await,
                ) {
                    let dir = self.snapshot_dir(snap.id);
                    let _ = blocking(move || std::fs::remove_dir_all(dir)).await;
                    let _ = self
                        .inner
                        .db
                        .call(move |db| store::delete_snapshots(db, &[snap.id]))
                        .await;
                }
            }
        }
    }

    /// Writes the images `names` (references or image ids) to an OCI archive at `out`
    /// that `berth load`, `skopeo copy oci-archive:…` and `podman load` read. Each image
    /// is named in the archive by its registry references.
    pub async fn save(&self, names: &[&str], out: &Path) -> Result<(), ImageError> {
        let shared = self.inner.gc.clone().read_owned().await;
        let mut images: Vec<SaveImage> = Vec::new();
        for name in names {
            let rows = self.find(name).await?;
            for row in rows {
                let m = row.manifest_digest.clone();
                let mrow = self
                    .inner
                    .db
                    .call(move |db| store::manifest(db, &m))
                    .await?
                    .ok_or_else(|| ImageError::Corrupt {
                        reference: row.reference.clone(),
                        detail: "manifest row missing".into(),
                    })?;
                let manifest_digest = parse_digest(&row.reference, &mrow.digest)?;
                let name = row
                    .reference
                    .parse::<Reference>()
                    .ok()
                    .map(|r| r.to_string());
                if let Some(existing) = images
                    .iter_mut()
                    .find(|i| i.manifest_digest == manifest_digest)
                {
                    existing.names.extend(name);
                    continue;
                }
                let mut blobs = vec![Descriptor {
                    media_type: berth_registry::manifest::media_type::OCI_CONFIG.into(),
                    digest: parse_digest(&row.reference, &mrow.config_digest)?,
                    size: 0,
                    urls: None,
                    platform: None,
                    annotations: None,
                }];
                for l in &mrow.layers {
                    blobs.push(Descriptor {
                        media_type: l.media_type.clone(),
                        digest: parse_digest(&row.reference, &l.blob_digest)?,
                        size: l.size,
                        urls: None,
                        platform: None,
                        annotations: None,
                    });
                }
                let size = self.inner.content.size(&manifest_digest).ok_or_else(|| {
                    ImageError::Content(berth_registry::ContentError::Missing {
                        digest: manifest_digest.clone(),
                    })
                })?;
                images.push(SaveImage {
                    names: name.into_iter().collect(),
                    platform: mrow.platform.parse().unwrap_or_else(|_| Platform::host()),
                    manifest_digest,
                    media_type: mrow.media_type.clone(),
                    size,
                    blobs,
                });
            }
        }
        let (out, content) = (PathBuf::from(out), self.inner.content.clone());
        blocking(move || archive::write_oci_archive(&out, &images, &content)).await?;
        drop(shared);
        Ok(())
    }
}

/// The references an archive image is stored under (never empty).
fn names_for(kind: ArchiveKind, path: &Path, img: &ArchiveImage) -> Vec<String> {
    let transport_kind = if kind == ArchiveKind::DockerArchive {
        ArchiveKind::DockerArchive
    } else {
        kind
    };
    let mut keys = Vec::new();
    for n in &img.names {
        let full = kind == ArchiveKind::DockerArchive || n.contains('/') || n.contains(':');
        let key = match n.parse::<Reference>() {
            Ok(r) if full => r.to_string(),
            _ => archive_key(transport_kind, path, Some(n)),
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        keys.push(archive_key(
            transport_kind,
            path,
            Some(&format!("@{}", img.position)),
        ));
    }
    keys
}
