//! Where an image comes from: a registry reference or a local archive named with
//! skopeo's transport syntax.
//!
//! * `busybox`, `ghcr.io/o/r:tag`, `host:5000/app@sha256:…` — a registry;
//! * `oci-layout:/path/to/dir[:tag]` (also skopeo's `oci:`) — an OCI layout directory;
//! * `oci-archive:/path/file.tar[:tag]` — a tar of an OCI layout;
//! * `docker-archive:/path/file.tar[:name]` — a `docker save` archive.
//!
//! As in skopeo, the path ends at the first `:` after the transport; what follows
//! names the image inside (a tag, a full name, or `@N` for the N-th image) and may be
//! left out when the archive holds one image. Paths must be absolute: a task
//! definition is read by a daemon whose working directory means nothing to the user.

use std::path::PathBuf;

use berth_registry::Reference;
use berth_registry::archive::ArchiveKind;

use super::error::ImageError;

/// A parsed image source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An image in a registry.
    Registry(Reference),
    /// An image in a local archive.
    Archive {
        /// The format.
        kind: ArchiveKind,
        /// The absolute path of the directory or file.
        path: PathBuf,
        /// The image inside (tag, name or `@N`), if given.
        tag: Option<String>,
    },
}

impl ImageSource {
    /// Parses `s`.
    pub fn parse(s: &str) -> Result<ImageSource, ImageError> {
        let transports = [
            ("oci-layout:", ArchiveKind::OciLayout),
            ("oci:", ArchiveKind::OciLayout),
            ("oci-archive:", ArchiveKind::OciArchive),
            ("docker-archive:", ArchiveKind::DockerArchive),
        ];
        for (prefix, kind) in transports {
            if let Some(rest) = s.strip_prefix(prefix) {
                let (path, tag) = match rest.split_once(':') {
                    Some((p, t)) => (p, Some(t)),
                    None => (rest, None),
                };
                let bad = |reason: &str| ImageError::Source {
                    reference: s.to_owned(),
                    reason: reason.to_owned(),
                };
                if path.is_empty() {
                    return Err(bad("missing path"));
                }
                if !path.starts_with('/') {
                    return Err(bad("the path must be absolute"));
                }
                if tag.is_some_and(str::is_empty) {
                    return Err(bad("empty tag after ':'"));
                }
                return Ok(ImageSource::Archive {
                    kind,
                    path: PathBuf::from(path),
                    tag: tag.map(str::to_owned),
                });
            }
        }
        Ok(ImageSource::Registry(s.parse()?))
    }

    /// The key the image is stored under in the `images` table.
    pub fn key(&self) -> String {
        match self {
            ImageSource::Registry(r) => r.to_string(),
            ImageSource::Archive { kind, path, tag } => archive_key(*kind, path, tag.as_deref()),
        }
    }
}

/// `transport:/path[:tag]`.
pub(crate) fn archive_key(kind: ArchiveKind, path: &std::path::Path, tag: Option<&str>) -> String {
    match tag {
        Some(t) => format!("{}:{}:{t}", kind.transport(), path.display()),
        None => format!("{}:{}", kind.transport(), path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_and_archive_sources() {
        let s = ImageSource::parse("busybox").unwrap();
        assert_eq!(s.key(), "docker.io/library/busybox:latest");
        let s = ImageSource::parse("oci-layout:/srv/img:v1").unwrap();
        assert_eq!(
            s,
            ImageSource::Archive {
                kind: ArchiveKind::OciLayout,
                path: "/srv/img".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(s.key(), "oci-layout:/srv/img:v1");
        assert_eq!(
            ImageSource::parse("oci:/srv/img").unwrap().key(),
            "oci-layout:/srv/img"
        );
        let s = ImageSource::parse("docker-archive:/a.tar:busybox:latest").unwrap();
        assert_eq!(s.key(), "docker-archive:/a.tar:busybox:latest");
        assert_eq!(
            ImageSource::parse("oci-archive:/a.tar:@1").unwrap().key(),
            "oci-archive:/a.tar:@1"
        );
    }

    #[test]
    fn rejects_bad_sources() {
        for (s, want) in [
            ("oci-archive:relative.tar", "absolute"),
            ("oci-archive:", "missing path"),
            ("oci-layout:/x:", "empty tag"),
            ("Busybox", "lowercase"),
        ] {
            let e = ImageSource::parse(s).unwrap_err();
            assert!(e.to_string().contains(want), "{s}: {e}");
            assert_eq!(e.class(), crate::ErrorClass::Invalid);
        }
    }
}
