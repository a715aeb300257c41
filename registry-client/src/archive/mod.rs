//! Image archives: OCI image layouts (a directory, or a tar of one as
//! `skopeo copy … oci-archive:` writes) and `docker save` archives.
//!
//! Reading: [`Archive::open`] recognises the format (an optionally gzip/zstd
//! compressed tar is decompressed into a scratch file first), indexes the tar's members
//! by name and offset so blobs are read in place, and lists its images with
//! [`Archive::images`]: every manifest of `index.json` (an index entry resolved to the
//! wanted platform), or every entry of a docker archive's `manifest.json`. Manifests,
//! indexes and configs are size-bounded and digest-verified when read; layer blobs
//! are verified by whoever consumes [`Archive::open_blob`] (the content store).
//!
//! A docker archive has no manifest: one is made up from its config and layers (the
//! layer tars are uncompressed, so their digest is their diff id; compressed ones are
//! hashed first). The config's file name must be its digest.
//!
//! Writing: [`write_oci_archive`] writes an OCI layout tar from content-store blobs,
//! naming each image in `index.json` with both `org.opencontainers.image.ref.name`
//! and `io.containerd.image.name`, which `skopeo` and `podman load` understand.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::Class;
use crate::manifest::{
    self, Compression, Descriptor, ImageConfig, ImageManifest, Manifest, ManifestError, media_type,
};
use crate::platform::Platform;

mod docker;
mod write;
pub use write::{SaveImage, write_oci_archive};

/// The annotation holding an image's name in an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation for the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
const MAX_INDEX_BYTES: u64 = 4 << 20;
const MAX_ENTRIES: usize = 100_000;

/// Why an archive cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot open image archive {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not an image archive: {detail}")]
    NotAnImage { path: PathBuf, detail: String },
    #[error("image archive {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("image archive {path} lacks blob {digest}")]
    MissingBlob { path: PathBuf, digest: Digest },
    #[error(
        "blob {digest} in image archive {path} does not match its digest: the content hashes to {actual}"
    )]
    BlobMismatch {
        path: PathBuf,
        digest: Digest,
        actual: Digest,
    },
    #[error("image archive {path} has no image tagged {tag:?} (it has: {available})")]
    NoSuchTag {
        path: PathBuf,
        tag: String,
        available: String,
    },
    #[error("image archive {path} holds {count} images; name one (…:tag or …:@index)")]
    Ambiguous { path: PathBuf, count: usize },
    #[error("image archive {path} has no image for platform {platform}")]
    NoPlatform { path: PathBuf, platform: String },
    #[error("image {what} in archive {path} is not usable")]
    Manifest {
        path: PathBuf,
        what: String,
        #[source]
        source: ManifestError,
    },
    #[error("failed to write image archive {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    /// The error's class.
    pub fn class(&self) -> Class {
        match self {
            ArchiveError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                Class::NotFound
            }
            ArchiveError::Open { .. } | ArchiveError::Write { .. } => Class::Internal,
            ArchiveError::NoSuchTag { .. } | ArchiveError::NoPlatform { .. } => Class::NotFound,
            ArchiveError::Manifest {
                source:
                    ManifestError::SchemaV1
                    | ManifestError::MediaType(_)
                    | ManifestError::NotAnImage(_)
                    | ManifestError::LayerMediaType(_)
                    | ManifestError::TooManyLayers(_),
                ..
            } => Class::Unsupported,
            _ => Class::Invalid,
        }
    }
}

/// An archive member opened for reading, and its size.
pub type Member = (Box<dyn Read + Send>, u64);

/// The archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// An OCI image layout directory.
    OciLayout,
    /// A tar of an OCI image layout.
    OciArchive,
    /// A `docker save` tar.
    DockerArchive,
}

impl ArchiveKind {
    /// The skopeo transport name: `oci`-style layouts are `oci-layout` here.
    pub fn transport(self) -> &'static str {
        match self {
            ArchiveKind::OciLayout => "oci-layout",
            ArchiveKind::OciArchive => "oci-archive",
            ArchiveKind::DockerArchive => "docker-archive",
        }
    }
}

/// Where the members live.
#[derive(Debug)]
enum Members {
    Dir(PathBuf),
    Tar {
        file: PathBuf,
        members: HashMap<String, (u64, u64)>,
    },
}

/// An opened archive.
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    kind: ArchiveKind,
    members: Members,
    /// A decompressed copy, removed on drop.
    scratch: Option<PathBuf>,
    /// Docker-archive layer member names by digest, learnt by [`Archive::images`].
    docker_layers: std::sync::Mutex<HashMap<Digest, String>>,
}

impl Drop for Archive {
    fn drop(&mut self) {
        if let Some(p) = &self.scratch {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// One image of an archive, its manifest and config read and verified.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// Names the archive gives it: OCI `ref.name` / containerd annotations (a tag or a
    /// full reference) or docker `RepoTags`.
    pub names: Vec<String>,
    /// Position in `index.json` or `manifest.json`.
    pub position: usize,
    /// Digest of the manifest.
    pub manifest_digest: Digest,
    /// The manifest bytes.
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// The index the manifest was chosen from, if any.
    pub index_digest: Option<Digest>,
    /// The config bytes.
    pub config_bytes: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfig,
    /// The image's platform.
    pub platform: Platform,
}

fn normalise_member(name: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(name).ok()?;
    let parts: Vec<&str> = s
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") || parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

impl Archive {
    /// Opens an archive. `scratch` is a directory for a decompressed copy of a
    /// compressed tar (it should be on the data root's file system).
    pub fn open(path: &Path, scratch: &Path) -> Result<Archive, ArchiveError> {
        let open_err = |source| ArchiveError::Open {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(open_err)?;
        if meta.is_dir() {
            if !path.join("index.json").is_file() {
                return Err(ArchiveError::NotAnImage {
                    path: path.to_owned(),
                    detail: "a directory without index.json (not an OCI image layout)".into(),
                });
            }
            let a = Archive {
                path: path.to_owned(),
                kind: ArchiveKind::OciLayout,
                members: Members::Dir(path.to_owned()),
                scratch: None,
                docker_layers: Default::default(),
            };
            a.check_layout_version()?;
            return Ok(a);
        }
        let mut head = Vec::new();
        File::open(path)
            .map_err(open_err)?
            .take(8)
            .read_to_end(&mut head)
            .map_err(open_err)?;
        let (file, scratch_file) = match Compression::sniff(&head) {
            Compression::None => (path.to_owned(), None),
            c => {
                let name = format!(
                    ".bA-archive-{}-{}",
                    std::process::id(),
                    Digest::sha256_of(path.as_os_str().as_encoded_bytes()).short()
                );
                let tmp = scratch.join(name);
                let result = (|| -> io::Result<()> {
                    let src = io::BufReader::new(File::open(path)?);
                    let mut out = File::create(&tmp)?;
                    let mut reader: Box<dyn Read> = match c {
                        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(src)),
                        _ => Box::new(zstd::stream::read::Decoder::with_buffer(src)?),
                    };
                    io::copy(&mut reader, &mut out)?;
                    Ok(())
                })();
                if let Err(e) = result {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(ArchiveError::Corrupt {
                        path: path.to_owned(),
                        detail: format!("cannot decompress: {e}"),
                    });
                }
                (tmp.clone(), Some(tmp))
            }
        };
        let members = match index_tar(&file) {
            Ok(m) => m,
            Err(detail) => {
                if let Some(s) = &scratch_file {
                    let _ = std::fs::remove_file(s);
                }
                return Err(if head.len() < 8 || detail.contains("not a tar") {
                    ArchiveError::NotAnImage {
                        path: path.to_owned(),
                        detail,
                    }
                } else {
                    ArchiveError::Corrupt {
                        path: path.to_owned(),
                        detail,
                    }
                });
            }
        };
        let kind = if members.contains_key("index.json") {
            ArchiveKind::OciArchive
        } else if members.contains_key("manifest.json") {
            ArchiveKind::DockerArchive
        } else {
            if let Some(s) = &scratch_file {
                let _ = std::fs::remove_file(s);
            }
            return Err(ArchiveError::NotAnImage {
                path: path.to_owned(),
                detail: "a tar without index.json (OCI) or manifest.json (docker save)".into(),
            });
        };
        let a = Archive {
            path: path.to_owned(),
            kind,
            members: Members::Tar { file, members },
            scratch: scratch_file,
            docker_layers: Default::default(),
        };
        if kind == ArchiveKind::OciArchive {
            a.check_layout_version()?;
        }
        Ok(a)
    }

    /// The format.
    pub fn kind(&self) -> ArchiveKind {
        self.kind
    }

    /// The path given to [`Archive::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, detail: impl Into<String>) -> ArchiveError {
        ArchiveError::Corrupt {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn check_layout_version(&self) -> Result<(), ArchiveError> {
        #[derive(Deserialize)]
        struct Layout {
            #[serde(rename = "imageLayoutVersion")]
            version: String,
        }
        match self.member_bytes("oci-layout", 4096) {
            Ok(Some(b)) => {
                let l: Layout = serde_json::from_slice(&b)
                    .map_err(|e| self.corrupt(format!("oci-layout: {e}")))?;
                if !l.version.starts_with("1.") {
                    return Err(
                        self.corrupt(format!("unsupported image layout version {}", l.version))
                    );
                }
                Ok(())
            }
            Ok(None) => Ok(()), // tolerated: some writers omit it
            Err(e) => Err(e),
        }
    }

    /// A member's bytes (`None` if absent), at most `max`.
    fn member_bytes(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, ArchiveError> {
        let Some((mut r, size)) = self.member(name)? else {
            return Ok(None);
        };
        if size > max {
            return Err(self.corrupt(format!("{name} is {size} bytes, more than {max}")));
        }
        let mut buf = Vec::with_capacity(size as usize);
        r.read_to_end(&mut buf)
            .map_err(|e| self.corrupt(format!("reading {name}: {e}")))?;
        Ok(Some(buf))
    }

    fn member(&self, name: &str) -> Result<Option<Member>, ArchiveError> {
        match &self.members {
            Members::Dir(dir) => {
                let p = dir.join(name);
                match File::open(&p) {
                    Ok(f) => {
                        let size = f
                            .metadata()
                            .map_err(|e| self.corrupt(format!("{name}: {e}")))?
                            .len();
                        Ok(Some((Box::new(f), size)))
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(self.corrupt(format!("{name}: {e}"))),
                }
            }
            Members::Tar { file, members } => {
                let Some(&(offset, size)) = members.get(name) else {
                    return Ok(None);
                };
                let mut f = File::open(file).map_err(|source| ArchiveError::Open {
                    path: self.path.clone(),
                    source,
                })?;
                f.seek(SeekFrom::Start(offset))
                    .map_err(|e| self.corrupt(format!("{name}: {e}")))?;
                Ok(Some((Box::new(f.take(size)), size)))
            }
        }
    }

    fn blob_name(d: &Digest) -> String {
        format!("blobs/{}/{}", d.algorithm().name(), d.hex())
    }

    /// Opens a blob for reading, with its size. The caller verifies the digest.
    pub fn open_blob(&self, digest: &Digest) -> Result<Member, ArchiveError> {
        if let Some(name) = self.docker_layer_member(digest) {
            return self
                .member(&name)?
                .ok_or_else(|| ArchiveError::MissingBlob {
                    path: self.path.clone(),
                    digest: digest.clone(),
                });
        }
        self.member(&Self::blob_name(digest))?
            .ok_or_else(|| ArchiveError::MissingBlob {
                path: self.path.clone(),
                digest: digest.clone(),
            })
    }

    fn docker_layer_member(&self, digest: &Digest) -> Option<String> {
        self.docker_layers
            .lock()
            .expect("not poisoned")
            .get(digest)
            .cloned()
    }

    /// A small blob, read whole and verified.
    fn verified_blob(&self, digest: &Digest, max: u64) -> Result<Vec<u8>, ArchiveError> {
        let (mut r, size) = self.open_blob(digest)?;
        if size > max {
            return Err(self.corrupt(format!("blob {digest} is {size} bytes, more than {max}")));
        }
        let mut buf = Vec::with_capacity(size as usize);
        r.read_to_end(&mut buf)
            .map_err(|e| self.corrupt(format!("reading {digest}: {e}")))?;
        digest
            .verify(&buf)
            .map_err(|actual| ArchiveError::BlobMismatch {
                path: self.path.clone(),
                digest: digest.clone(),
                actual,
            })?;
        Ok(buf)
    }

    fn manifest_err(
        &self,
        what: impl Into<String>,
    ) -> impl FnOnce(ManifestError) -> ArchiveError + '_ {
        let what = what.into();
        move |source| ArchiveError::Manifest {
            path: self.path.clone(),
            what,
            source,
        }
    }

    /// Every image in the archive; from a multi-platform index only the entry for
    /// `platform`.
    pub fn images(&self, platform: &Platform) -> Result<Vec<ArchiveImage>, ArchiveError> {
        match self.kind {
            ArchiveKind::DockerArchive => self.docker_images(),
            _ => self.oci_images(platform),
        }
    }

    /// The image a skopeo-style reference names: a tag (or full name), `@N` for the
    /// N-th image, or nothing when the archive holds exactly one image.
    pub fn image(
        &self,
        tag: Option<&str>,
        platform: &Platform,
    ) -> Result<ArchiveImage, ArchiveError> {
        let mut all = self.images(platform)?;
        match tag {
            None if all.len() == 1 => Ok(all.remove(0)),
            None => Err(ArchiveError::Ambiguous {
                path: self.path.clone(),
                count: all.len(),
            }),
            Some(t) => {
                if let Some(n) = t.strip_prefix('@').and_then(|n| n.parse::<usize>().ok()) {
                    return all.into_iter().find(|i| i.position == n).ok_or_else(|| {
                        ArchiveError::NoSuchTag {
                            path: self.path.clone(),
                            tag: t.to_owned(),
                            available: "positions 0..".to_owned(),
                        }
                    });
                }
                let available: Vec<String> = all.iter().flat_map(|i| i.names.clone()).collect();
                all.into_iter()
                    .find(|i| i.names.iter().any(|n| n == t || tag_matches(n, t)))
                    .ok_or_else(|| ArchiveError::NoSuchTag {
                        path: self.path.clone(),
                        tag: t.to_owned(),
                        available: if available.is_empty() {
                            "no names".into()
                        } else {
                            available.join(", ")
                        },
                    })
            }
        }
    }

    fn oci_images(&self, platform: &Platform) -> Result<Vec<ArchiveImage>, ArchiveError> {
        let bytes = self
            .member_bytes("index.json", MAX_INDEX_BYTES)?
            .ok_or_else(|| ArchiveError::NotAnImage {
                path: self.path.clone(),
                detail: "no index.json".into(),
            })?;
        let index = match Manifest::parse(&bytes).map_err(self.manifest_err("index.json"))? {
            Manifest::Index(i) => i,
            Manifest::Image(_) => {
                return Err(self.corrupt("index.json is an image manifest, not an index"));
            }
        };
        let mut out = Vec::new();
        for (position, entry) in index.manifests.iter().enumerate() {
            let mut names = Vec::new();
            for key in [CONTAINERD_NAME, REF_NAME] {
                if let Some(n) = entry.annotation(key)
                    && !names.iter().any(|x| x == n)
                {
                    names.push(n.to_owned());
                }
            }
            let (desc, index_digest) = match entry.media_type.as_str() {
                media_type::OCI_INDEX | media_type::DOCKER_LIST => {
                    let b =
                        self.verified_blob(&entry.digest, manifest::MAX_MANIFEST_BYTES as u64)?;
                    let Manifest::Index(inner) =
                        Manifest::parse(&b).map_err(self.manifest_err(entry.digest.to_string()))?
                    else {
                        return Err(self.corrupt(format!("{} is not an index", entry.digest)));
                    };
                    match inner.select(platform) {
                        Some(d) => (d.clone(), Some(entry.digest.clone())),
                        None if index.manifests.len() == 1 => {
                            return Err(ArchiveError::NoPlatform {
                                path: self.path.clone(),
                                platform: platform.to_string(),
                            });
                        }
                        None => continue,
                    }
                }
                media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => {
                    if let Some(p) = &entry.platform
                        && platform.rank(&Platform::from(p)).is_none()
                    {
                        continue; // another platform's manifest in a flat multi-arch layout
                    }
                    (entry.clone(), None)
                }
                other => {
                    tracing::debug!(media_type = other, "skipping non-image entry of index.json");
                    continue;
                }
            };
            out.push(self.read_image(&desc, index_digest, names, position)?);
        }
        if out.is_empty() {
            return Err(if index.manifests.is_empty() {
                ArchiveError::NotAnImage {
                    path: self.path.clone(),
                    detail: "index.json lists no images".into(),
                }
            } else {
                ArchiveError::NoPlatform {
                    path: self.path.clone(),
                    platform: platform.to_string(),
                }
            });
        }
        Ok(out)
    }

    fn read_image(
        &self,
        desc: &Descriptor,
        index_digest: Option<Digest>,
        names: Vec<String>,
        position: usize,
    ) -> Result<ArchiveImage, ArchiveError> {
        let manifest_bytes =
            self.verified_blob(&desc.digest, manifest::MAX_MANIFEST_BYTES as u64)?;
        let manifest = match Manifest::parse(&manifest_bytes)
            .map_err(self.manifest_err(desc.digest.to_string()))?
        {
            Manifest::Image(m) => m,
            Manifest::Index(_) => {
                return Err(self.corrupt(format!("{} is a nested index", desc.digest)));
            }
        };
        let config_bytes =
            self.verified_blob(&manifest.config.digest, manifest::MAX_CONFIG_BYTES as u64)?;
        let config = ImageConfig::parse(&config_bytes)
            .map_err(self.manifest_err(format!("config {}", manifest.config.digest)))?;
        if config.diff_ids.len() != manifest.layers.len() {
            return Err(ArchiveError::Manifest {
                path: self.path.clone(),
                what: desc.digest.to_string(),
                source: ManifestError::LayerCount {
                    diff_ids: config.diff_ids.len(),
                    layers: manifest.layers.len(),
                },
            });
        }
        let platform = desc
            .platform
            .as_ref()
            .map(Platform::from)
            .unwrap_or_else(|| config.platform());
        Ok(ArchiveImage {
            names,
            position,
            manifest_digest: desc.digest.clone(),
            manifest_bytes,
            manifest,
            index_digest,
            config_bytes,
            config,
            platform,
        })
    }

    /// Opens a layer of an image of this archive for reading (after [`Archive::images`]).
    pub fn open_layer(&self, desc: &Descriptor) -> Result<Member, ArchiveError> {
        self.open_blob(&desc.digest)
    }
}

/// Whether an archive name (`docker.io/library/busybox:latest`, `busybox:latest`,
/// `latest`) answers to what a user typed.
fn tag_matches(name: &str, wanted: &str) -> bool {
    match (
        name.parse::<crate::Reference>(),
        wanted.parse::<crate::Reference>(),
    ) {
        (Ok(a), Ok(b)) if name.contains(':') || name.contains('/') => a == b,
        _ => false,
    }
}

fn index_tar(file: &Path) -> Result<HashMap<String, (u64, u64)>, String> {
    let f = File::open(file).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(io::BufReader::new(f));
    let mut members = HashMap::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for (i, entry) in entries.enumerate() {
        if i >= MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} members"));
        }
        let entry = entry.map_err(|e| {
            if i == 0 {
                format!("not a tar archive: {e}")
            } else {
                format!("bad tar member: {e}")
            }
        })?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        if let Some(name) = normalise_member(&entry.path_bytes()) {
            members.insert(name, (entry.raw_file_position(), entry.size()));
        }
    }
    if members.is_empty() {
        return Err("not a tar archive: no files in it".into());
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_member_names() {
        assert_eq!(
            normalise_member(b"./blobs/sha256/ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(
            normalise_member(b"index.json").as_deref(),
            Some("index.json")
        );
        assert_eq!(normalise_member(b"../x"), None);
        assert_eq!(normalise_member(b"./"), None);
    }

    #[test]
    fn refuses_things_that_are_not_archives() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.tar");
        std::fs::write(&f, b"hello, not a tar").unwrap();
        let err = Archive::open(&f, dir.path()).unwrap_err();
        assert!(matches!(err, ArchiveError::NotAnImage { .. }), "{err}");
        let err = Archive::open(dir.path(), dir.path()).unwrap_err();
        assert!(matches!(err, ArchiveError::NotAnImage { .. }), "{err}");
        let err = Archive::open(&dir.path().join("missing"), dir.path()).unwrap_err();
        assert_eq!(err.class(), Class::NotFound);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        b.append_data(&mut h, "readme", &b"x"[..]).unwrap();
        std::fs::write(&f, b.into_inner().unwrap()).unwrap();
        let err = Archive::open(&f, dir.path()).unwrap_err();
        assert!(err.to_string().contains("without index.json"), "{err}");
    }
}
