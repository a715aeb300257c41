//! Manifests, indexes and image configs: parsing with limits and consistency checks.
//!
//! Accepted: OCI image manifests and indexes, Docker v2 schema 2 manifests and
//! manifest lists. Docker schema 1 and artifacts that are not container images are
//! refused with a message that says so. A document's declared `mediaType` must agree
//! with its shape (a manifest with `manifests`, or an index with `layers`, is refused:
//! CVE-2021-41190).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// Media types berth reads and writes.
pub mod media_type {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Docker v2 schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Uncompressed OCI layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// Gzip OCI layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// Zstd OCI layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Manifest media types a registry is asked for, in order of preference.
    pub const ACCEPT: &[&str] = &[OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];
}

/// The largest manifest or index accepted (containerd uses the same bound).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// The largest image config accepted.
pub const MAX_CONFIG_BYTES: usize = 8 << 20;
/// The most layers an image may have (Docker's overlay2 limit).
pub const MAX_LAYERS: usize = 128;

/// A manifest, index or config that berth refuses.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{what} is {size} bytes, more than the {max} berth accepts")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("{what} is not valid JSON")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "docker schema 1 manifests are not supported (the image must be re-pushed with a current client)"
    )]
    SchemaV1,
    #[error("unsupported manifest schema version {0}")]
    SchemaVersion(u64),
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    #[error("manifest declares media type {declared:?} but its content is {actual}")]
    Ambiguous {
        declared: String,
        actual: &'static str,
    },
    #[error("{0:?} is not a container image (config media type), perhaps an OCI artifact")]
    NotAnImage(String),
    #[error("unsupported layer media type {0:?}")]
    LayerMediaType(String),
    #[error("image has no layers")]
    NoLayers,
    #[error("image has {0} layers, more than the {MAX_LAYERS} berth supports")]
    TooManyLayers(usize),
    #[error("image config lists {diff_ids} layer diff ids but the manifest has {layers} layers")]
    LayerCount { diff_ids: usize, layers: usize },
    #[error("image config is invalid")]
    Config(#[source] oci_spec::OciSpecError),
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Foreign-layer URLs. Kept for round trips, never fetched (CVE-2020-15157).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// The platform of an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformJson>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// A descriptor of `bytes`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::sha256_of(bytes),
            size: bytes.len() as u64,
            urls: None,
            platform: None,
            annotations: None,
        }
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// The `platform` object of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformJson {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version (Windows).
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl From<&PlatformJson> for Platform {
    fn from(p: &PlatformJson) -> Platform {
        Platform::new(&p.os, &p.architecture, p.variant.as_deref())
    }
}

impl From<&Platform> for PlatformJson {
    fn from(p: &Platform) -> PlatformJson {
        PlatformJson {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
            os_version: None,
        }
    }
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u64,
    /// The declared media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u64,
    /// The declared media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The entries.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    /// The best entry for `platform`: the best-ranked image manifest, first in index
    /// order among equals. Entries without a platform (attestations) never match.
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| is_manifest_type(&d.media_type))
            .filter_map(|d| Some((platform.rank(&Platform::from(d.platform.as_ref()?))?, d)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }

    /// The platforms the index offers, for error messages.
    pub fn platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(|p| Platform::from(p).to_string())
            .collect()
    }
}

/// A parsed manifest document.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// A single-platform image.
    Image(ImageManifest),
    /// An index of manifests.
    Index(Index),
}

fn is_manifest_type(t: &str) -> bool {
    matches!(
        t,
        media_type::OCI_MANIFEST
            | media_type::DOCKER_MANIFEST
            | media_type::OCI_INDEX
            | media_type::DOCKER_LIST
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    schema_version: Option<u64>,
    media_type: Option<String>,
    config: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
    manifests: Option<serde_json::Value>,
}

impl Manifest {
    /// Parses a manifest or index, checking its size, schema and media type.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                what: "manifest",
                size: bytes.len(),
                max: MAX_MANIFEST_BYTES,
            });
        }
        let json = |source| ManifestError::Json {
            what: "manifest",
            source,
        };
        let shape: Shape = serde_json::from_slice(bytes).map_err(json)?;
        match shape.schema_version {
            Some(2) => {}
            Some(1) => return Err(ManifestError::SchemaV1),
            Some(v) => return Err(ManifestError::SchemaVersion(v)),
            None => return Err(ManifestError::SchemaVersion(0)),
        }
        let is_index = shape.manifests.is_some();
        let is_image = shape.config.is_some() || shape.layers.is_some();
        let actual = match (is_index, is_image) {
            (true, false) => "an index",
            (false, true) => "an image manifest",
            _ => "neither an index nor an image manifest",
        };
        let declared_index = match shape.media_type.as_deref() {
            Some(media_type::OCI_INDEX | media_type::DOCKER_LIST) => Some(true),
            Some(media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST) => Some(false),
            Some(other) => return Err(ManifestError::MediaType(other.to_owned())),
            None => None,
        };
        if is_index == is_image || declared_index.is_some_and(|d| d != is_index) {
            return Err(ManifestError::Ambiguous {
                declared: shape.media_type.unwrap_or_default(),
                actual,
            });
        }
        if is_index {
            Ok(Manifest::Index(
                serde_json::from_slice(bytes).map_err(json)?,
            ))
        } else {
            let m: ImageManifest = serde_json::from_slice(bytes).map_err(json)?;
            m.check()?;
            Ok(Manifest::Image(m))
        }
    }

    /// The declared media type, or the one implied by the shape.
    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image(m) => m.media_type.as_deref().unwrap_or(media_type::OCI_MANIFEST),
            Manifest::Index(i) => i.media_type.as_deref().unwrap_or(media_type::OCI_INDEX),
        }
    }
}

impl ImageManifest {
    /// Checks that this is a container image berth can unpack.
    pub fn check(&self) -> Result<(), ManifestError> {
        match self.config.media_type.as_str() {
            media_type::OCI_CONFIG | media_type::DOCKER_CONFIG => {}
            other => return Err(ManifestError::NotAnImage(other.to_owned())),
        }
        if self.layers.is_empty() {
            return Err(ManifestError::NoLayers);
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(ManifestError::TooManyLayers(self.layers.len()));
        }
        for l in &self.layers {
            if Compression::from_media_type(&l.media_type).is_none() {
                return Err(ManifestError::LayerMediaType(l.media_type.clone()));
            }
        }
        Ok(())
    }

    /// Content size: manifest bytes are not included; config plus layers.
    pub fn content_size(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// zstd frames.
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares; `None` for media types that are
    /// not image layers (including encrypted layers).
    pub fn from_media_type(t: &str) -> Option<Compression> {
        match t {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// The compression the first bytes of a stream show (gzip and zstd magic).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A Docker `HEALTHCHECK` from an image config (not part of the OCI spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    #[serde(default)]
    pub test: Vec<String>,
    /// Nanoseconds between checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// Nanoseconds before a check is considered hung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Nanoseconds of start-up grace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u64>,
    /// Consecutive failures before unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
}

/// An image config: the OCI fields plus Docker's healthcheck, with validated diff ids.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    /// The OCI image configuration.
    pub oci: oci_spec::image::ImageConfiguration,
    /// Docker's `config.Healthcheck`, if the image has one.
    pub healthcheck: Option<Healthcheck>,
    /// The uncompressed digests of the layers, bottom first.
    pub diff_ids: Vec<Digest>,
}

#[derive(Deserialize)]
struct DockerExtras {
    #[serde(default)]
    config: Option<DockerConfigExtras>,
}

#[derive(Deserialize)]
struct DockerConfigExtras {
    #[serde(rename = "Healthcheck", default)]
    healthcheck: Option<Healthcheck>,
}

impl ImageConfig {
    /// Parses an image config.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, ManifestError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(ManifestError::TooLarge {
                what: "image config",
                size: bytes.len(),
                max: MAX_CONFIG_BYTES,
            });
        }
        let oci = oci_spec::image::ImageConfiguration::from_reader(bytes)
            .map_err(ManifestError::Config)?;
        let extras: DockerExtras =
            serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                what: "image config",
                source,
            })?;
        let diff_ids = oci
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| {
                d.parse::<Digest>().map_err(|e| {
                    ManifestError::Config(oci_spec::OciSpecError::Other(format!(
                        "rootfs.diff_ids: {e}"
                    )))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ImageConfig {
            oci,
            healthcheck: extras.config.and_then(|c| c.healthcheck),
            diff_ids,
        })
    }

    /// The platform the config declares.
    pub fn platform(&self) -> Platform {
        Platform::new(
            &self.oci.os().to_string(),
            &self.oci.architecture().to_string(),
            self.oci.variant().as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image_json(media_type: Option<&str>, layer_type: &str) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType": "{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion": 2, {mt}
                "config": {{"mediaType": "{}", "digest": "{D1}", "size": 10}},
                "layers": [{{"mediaType": "{layer_type}", "digest": "{D2}", "size": 20,
                             "urls": ["http://evil.example/x"]}}]}}"#,
            media_type::OCI_CONFIG
        )
    }

    #[test]
    fn parses_oci_and_docker_manifests() {
        for mt in [
            Some(media_type::OCI_MANIFEST),
            Some(media_type::DOCKER_MANIFEST),
            None,
        ] {
            let m = Manifest::parse(image_json(mt, media_type::OCI_LAYER_GZIP).as_bytes()).unwrap();
            let Manifest::Image(m) = m else {
                panic!("not an image")
            };
            assert_eq!(m.layers[0].digest.to_string(), D2);
            assert_eq!(m.content_size(), 30);
        }
    }

    #[test]
    fn refuses_bad_documents() {
        let cases: Vec<(String, &str)> = vec![
            (r#"{"schemaVersion": 1, "fsLayers": []}"#.into(), "schema 1"),
            (
                image_json(Some(media_type::OCI_INDEX), media_type::OCI_LAYER_GZIP),
                "declares media type",
            ),
            (
                image_json(Some("application/x-foo"), media_type::OCI_LAYER_GZIP),
                "unsupported manifest media type",
            ),
            (
                image_json(
                    None,
                    "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
                ),
                "layer media type",
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"manifests":[],"layers":[],"config":{{"mediaType":"x","digest":"{D1}","size":1}}}}"#
                ),
                "neither",
            ),
            ("not json".into(), "not valid JSON"),
            (
                format!(
                    r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{D1}","size":1}},"layers":[]}}"#
                ),
                "not a container image",
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"sha256:../../x","size":1}},"layers":[]}}"#,
                    media_type::OCI_CONFIG
                ),
                "not valid JSON",
            ),
        ];
        for (doc, want) in cases {
            let err = Manifest::parse(doc.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{doc}: {err} lacks {want:?}");
        }
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(
            Manifest::parse(&big),
            Err(ManifestError::TooLarge { .. })
        ));
    }

    #[test]
    fn selects_platform_from_index() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[
              {{"mediaType":"{m}","digest":"{D1}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}},
              {{"mediaType":"{m}","digest":"{D2}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
              {{"mediaType":"{m}","digest":"{D1}","size":1,"platform":{{"architecture":"unknown","os":"unknown"}}}}]}}"#,
            media_type::OCI_INDEX,
            m = media_type::OCI_MANIFEST
        );
        let Manifest::Index(i) = Manifest::parse(doc.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(
            i.select(&"linux/arm64".parse().unwrap())
                .unwrap()
                .digest
                .to_string(),
            D2
        );
        assert_eq!(
            i.select(&"linux/amd64".parse().unwrap())
                .unwrap()
                .digest
                .to_string(),
            D1
        );
        assert!(i.select(&"linux/s390x".parse().unwrap()).is_none());
        assert_eq!(i.platforms(), vec!["linux/amd64", "linux/arm64/v8"]);
    }

    #[test]
    fn parses_docker_config_with_healthcheck() {
        let cfg = format!(
            r#"{{"architecture":"amd64","os":"linux","container_config":{{}},
               "config":{{"Env":["PATH=/bin"],"Cmd":null,"ExposedPorts":{{"80/tcp":{{}}}},
                 "Healthcheck":{{"Test":["CMD-SHELL","true"],"Interval":1000000000,"Retries":3}}}},
               "rootfs":{{"type":"layers","diff_ids":["{D1}"]}}}}"#
        );
        let c = ImageConfig::parse(cfg.as_bytes()).unwrap();
        assert_eq!(c.diff_ids.len(), 1);
        let h = c.healthcheck.clone().unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        assert_eq!(h.retries, Some(3));
        assert_eq!(
            c.oci
                .config()
                .as_ref()
                .unwrap()
                .exposed_ports()
                .as_ref()
                .unwrap(),
            &["80/tcp"]
        );
        assert_eq!(c.platform().to_string(), "linux/amd64");
        let bad = cfg.replace(D1, "sha256:nothex");
        assert!(ImageConfig::parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn sniffs_compression() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/"), Compression::None);
    }
}
