//! `docker save` archives: `manifest.json` lists each image's config and layer members by
//! name; berth turns each entry into an OCI image (layers described by the digests of
//! their bytes as stored, diff ids from the config), verifying every member it reads.

use std::io::Read;

use serde::Deserialize;

use super::{Archive, ArchiveError, ArchiveImage, MAX_INDEX_BYTES, normalise_member};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::manifest::{
    self, Compression, Descriptor, ImageConfig, ImageManifest, ManifestError, media_type,
};

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

impl Archive {
    /// The images of a `docker save` archive (`manifest.json`).
    pub(super) fn docker_images(&self) -> Result<Vec<ArchiveImage>, ArchiveError> {
        let bytes = self
            .member_bytes("manifest.json", MAX_INDEX_BYTES)?
            .ok_or_else(|| ArchiveError::NotAnImage {
                path: self.path.clone(),
                detail: "no manifest.json".into(),
            })?;
        let entries: Vec<DockerEntry> = serde_json::from_slice(&bytes)
            .map_err(|e| self.corrupt(format!("manifest.json: {e}")))?;
        if entries.is_empty() {
            return Err(ArchiveError::NotAnImage {
                path: self.path.clone(),
                detail: "manifest.json lists no images".into(),
            });
        }
        let mut out = Vec::new();
        for (position, e) in entries.into_iter().enumerate() {
            let config_name = normalise_member(e.config.as_bytes())
                .ok_or_else(|| self.corrupt(format!("bad config name {:?}", e.config)))?;
            let config_bytes = self
                .member_bytes(&config_name, manifest::MAX_CONFIG_BYTES as u64)?
                .ok_or_else(|| self.corrupt(format!("missing {config_name}")))?;
            let config_digest = Digest::sha256_of(&config_bytes);
            let stem = config_name
                .rsplit('/')
                .next()
                .unwrap_or(&config_name)
                .trim_end_matches(".json");
            if stem != config_digest.hex() {
                return Err(ArchiveError::BlobMismatch {
                    path: self.path.clone(),
                    digest: format!("sha256:{stem}").parse().map_err(|_| {
                        self.corrupt(format!("config name {config_name} is not a digest"))
                    })?,
                    actual: config_digest,
                });
            }
            let config = ImageConfig::parse(&config_bytes)
                .map_err(self.manifest_err(config_name.clone()))?;
            if config.diff_ids.len() != e.layers.len() {
                return Err(ArchiveError::Manifest {
                    path: self.path.clone(),
                    what: config_name,
                    source: ManifestError::LayerCount {
                        diff_ids: config.diff_ids.len(),
                        layers: e.layers.len(),
                    },
                });
            }
            let mut layers = Vec::new();
            for (layer_name, diff_id) in e.layers.iter().zip(&config.diff_ids) {
                let name = normalise_member(layer_name.as_bytes())
                    .ok_or_else(|| self.corrupt(format!("bad layer name {layer_name:?}")))?;
                let (mut r, size) = self
                    .member(&name)?
                    .ok_or_else(|| self.corrupt(format!("missing layer {name}")))?;
                let mut head = Vec::new();
                (&mut r)
                    .take(6)
                    .read_to_end(&mut head)
                    .map_err(|e| self.corrupt(format!("{name}: {e}")))?;
                let (digest, mt) = match Compression::sniff(&head) {
                    Compression::None => (diff_id.clone(), media_type::OCI_LAYER_TAR),
                    c => {
                        let mut h = Hasher::new(Algorithm::Sha256);
                        h.update(&head);
                        let mut buf = vec![0u8; 256 << 10];
                        loop {
                            let n = r
                                .read(&mut buf)
                                .map_err(|e| self.corrupt(format!("{name}: {e}")))?;
                            if n == 0 {
                                break;
                            }
                            h.update(&buf[..n]);
                        }
                        let mt = if c == Compression::Gzip {
                            media_type::OCI_LAYER_GZIP
                        } else {
                            media_type::OCI_LAYER_ZSTD
                        };
                        (h.finish(), mt)
                    }
                };
                layers.push((
                    name,
                    Descriptor {
                        media_type: mt.into(),
                        digest,
                        size,
                        urls: None,
                        platform: None,
                        annotations: None,
                    },
                ));
            }
            let manifest = ImageManifest {
                schema_version: 2,
                media_type: Some(media_type::OCI_MANIFEST.into()),
                config: Descriptor::of(media_type::OCI_CONFIG, &config_bytes),
                layers: layers.iter().map(|(_, d)| d.clone()).collect(),
                annotations: None,
            };
            manifest
                .check()
                .map_err(self.manifest_err(config_name.clone()))?;
            let manifest_bytes = serde_json::to_vec(&manifest).expect("manifests serialise");
            let platform = config.platform();
            out.push(ArchiveImage {
                names: e.repo_tags.unwrap_or_default(),
                position,
                manifest_digest: Digest::sha256_of(&manifest_bytes),
                manifest_bytes,
                manifest,
                index_digest: None,
                config_bytes,
                config,
                platform,
            });
            let mut known = self.docker_layers.lock().expect("not poisoned");
            for (name, d) in &layers {
                known.insert(d.digest.clone(), name.clone());
            }
        }
        Ok(out)
    }
}
