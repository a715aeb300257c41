//! Writing built images out (OCI layout directories, OCI archives, `docker save`
//! archives), and multi-platform indexes.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn write_blob(dir: &Path, digest: &str, bytes: &[u8]) -> io::Result<()> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digests");
    let p = dir.join("blobs/sha256").join(hex);
    std::fs::create_dir_all(p.parent().unwrap())?;
    std::fs::write(p, bytes)
}

fn add_to_layout_index(dir: &Path, desc: Value, tag: &str) -> io::Result<()> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index_path = dir.join("index.json");
    let mut index: Value = match std::fs::read(&index_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(io::Error::other)?,
        Err(_) => json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": []}),
    };
    let manifests = index["manifests"].as_array_mut().expect("an index");
    manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != json!(tag));
    let mut desc = desc;
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    manifests.push(desc);
    std::fs::write(index_path, serde_json::to_vec(&index).unwrap())
}

impl BuiltImage {
    /// Writes (or adds to) an OCI image layout directory, tagging the image `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> io::Result<()> {
        self.write_blobs(dir)?;
        add_to_layout_index(dir, self.descriptor(), tag)
    }

    fn write_blobs(&self, dir: &Path) -> io::Result<()> {
        write_blob(dir, &self.config_digest, &self.config)?;
        for l in &self.layers {
            write_blob(dir, &l.digest, &l.blob)?;
        }
        write_blob(dir, &self.manifest_digest, &self.manifest)
    }

    /// The manifest's descriptor (with platform).
    pub fn descriptor(&self) -> Value {
        let (os, arch, variant) = &self.platform;
        let mut platform = json!({"os": os, "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = json!(v);
        }
        json!({"mediaType": self.manifest_media_type, "digest": self.manifest_digest, "size": self.manifest.len(), "platform": platform})
    }

    /// Writes a `docker save` archive (`manifest.json`, `repositories`,
    /// `<config>.json`, `<diffid>/layer.tar`) holding this image as `repo_tags`.
    pub fn write_docker_archive(&self, path: &Path, repo_tags: &[&str]) -> io::Result<()> {
        write_docker_archive(path, &[(self, repo_tags)])
    }

    /// Writes an OCI archive (a tar of an OCI layout) tagged `tag`.
    pub fn write_oci_archive(&self, path: &Path, tag: &str) -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        self.write_layout(dir.path(), tag)?;
        tar_dir(dir.path(), path)
    }
}

/// Tars the contents of `dir` into the file `out` (names relative to `dir`).
pub fn tar_dir(dir: &Path, out: &Path) -> io::Result<()> {
    let mut b = tar::Builder::new(std::fs::File::create(out)?);
    b.mode(tar::HeaderMode::Deterministic);
    b.follow_symlinks(false);
    b.append_dir_all(".", dir)?;
    b.into_inner()?.sync_all()
}

/// Writes a multi-image `docker save` archive.
pub fn write_docker_archive(path: &Path, images: &[(&BuiltImage, &[&str])]) -> io::Result<()> {
    let mut b = tar::Builder::new(std::fs::File::create(path)?);
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let add = |b: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]| -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, name, data)
    };
    for (image, tags) in images {
        let config_name = format!("{}.json", image.config_digest.trim_start_matches("sha256:"));
        add(&mut b, &config_name, &image.config)?;
        let mut layer_names = Vec::new();
        for l in &image.layers {
            let id = l.diff_id.trim_start_matches("sha256:");
            let name = format!("{id}/layer.tar");
            add(&mut b, &format!("{id}/VERSION"), b"1.0")?;
            add(&mut b, &name, &l.tar)?;
            layer_names.push(name);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layer_names}));
        if let Some(top) = image.layers.last() {
            for t in tags.iter() {
                if let Some((repo, tag)) = t.rsplit_once(':') {
                    repositories.entry(repo.to_owned()).or_default().insert(
                        tag.to_owned(),
                        top.diff_id.trim_start_matches("sha256:").to_owned(),
                    );
                }
            }
        }
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    )?;
    add(
        &mut b,
        "repositories",
        &serde_json::to_vec(&repositories).unwrap(),
    )?;
    b.into_inner()?.sync_all()
}

/// Builds a multi-platform index from images.
#[derive(Debug, Clone, Default)]
pub struct IndexBuilder {
    images: Vec<BuiltImage>,
    docker: bool,
}

impl IndexBuilder {
    /// An empty OCI index.
    pub fn new() -> IndexBuilder {
        IndexBuilder::default()
    }
    /// Adds an image (its platform comes from its builder).
    pub fn image(mut self, i: BuiltImage) -> IndexBuilder {
        self.images.push(i);
        self
    }
    /// Uses the Docker manifest-list media type.
    pub fn docker_media_type(mut self) -> IndexBuilder {
        self.docker = true;
        self
    }
    /// Builds the index.
    pub fn build(self) -> BuiltIndex {
        let media_type = if self.docker {
            media_type::DOCKER_LIST
        } else {
            media_type::OCI_INDEX
        };
        let bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": self.images.iter().map(BuiltImage::descriptor).collect::<Vec<_>>(),
        }))
        .unwrap();
        BuiltIndex {
            digest: sha256(&bytes),
            bytes,
            media_type: media_type.into(),
            images: self.images,
        }
    }
}

/// A built index.
#[derive(Debug, Clone)]
pub struct BuiltIndex {
    /// The index bytes.
    pub bytes: Vec<u8>,
    /// Their digest.
    pub digest: String,
    /// The index media type.
    pub media_type: String,
    /// The images it lists.
    pub images: Vec<BuiltImage>,
}

impl BuiltIndex {
    /// Writes (or adds to) an OCI layout, tagging the index `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> io::Result<()> {
        for i in &self.images {
            i.write_blobs(dir)?;
        }
        write_blob(dir, &self.digest, &self.bytes)?;
        add_to_layout_index(
            dir,
            json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()}),
            tag,
        )
    }
}
