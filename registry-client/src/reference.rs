//! Image references as Docker users write them.
//!
//! `busybox` means `docker.io/library/busybox:latest`; `ghcr.io/o/r:tag`,
//! `host:5000/repo@sha256:…`, `public.ecr.aws/x/y:1` and `repo:tag@sha256:…` are all
//! accepted. The grammar is Docker's (`distribution/reference`): a first path component
//! is a registry host when it contains `.` or `:` or is `localhost`; repository path
//! components are lower-case alphanumerics joined by `.`, `_`, `__` or dashes; a tag is
//! at most 128 word characters, dots and dashes.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry Docker Hub references resolve to.
pub const DOCKER_HUB: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;
const INPUT_MAX: usize = 1024;

/// Why a string is not an image reference. Every message quotes the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid image reference {0:?}: empty")]
    Empty(String),
    #[error("invalid image reference {0:?}: longer than {INPUT_MAX} characters")]
    TooLong(String),
    #[error("invalid image reference {input:?}: repository name must be lowercase")]
    Uppercase { input: String },
    #[error("invalid image reference {input:?}: invalid registry host {host:?}")]
    Host { input: String, host: String },
    #[error(
        "invalid image reference {input:?}: invalid repository path component {component:?} \
         (lower-case letters and digits, separated by '.', '_', '__' or '-')"
    )]
    Component { input: String, component: String },
    #[error("invalid image reference {input:?}: invalid tag {tag:?}")]
    Tag { input: String, tag: String },
    #[error("invalid image reference {input:?}: repository name longer than {NAME_MAX} characters")]
    NameTooLong { input: String },
    #[error(
        "invalid image reference {input:?}: a 64-character hex string is an image id, not a \
         repository name"
    )]
    HexName { input: String },
    #[error("invalid image reference {input:?}")]
    Digest {
        input: String,
        #[source]
        source: DigestError,
    },
}

/// A parsed, normalised image reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry host (and port), e.g. `docker.io`, `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` is filled in when neither tag nor digest is given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker prints it: `busybox` for `docker.io/library/busybox`,
    /// `user/app` for `docker.io/user/app`, the full name otherwise.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        }
    }

    /// The same repository pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        format!("{}:{tag}", self.name()).parse()
    }

    /// The host the registry API is reached at: Docker Hub's API lives at
    /// `index.docker.io` (which redirects to `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "index.docker.io"
        } else {
            &self.registry
        }
    }

    /// This reference for oci-client.
    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        let (r, p) = (self.registry.clone(), self.repository.clone());
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => {
                oci_client::Reference::with_tag_and_digest(r, p, t.clone(), d.to_string())
            }
            (None, Some(d)) => oci_client::Reference::with_digest(r, p, d.to_string()),
            (Some(t), None) => oci_client::Reference::with_tag(r, p, t.clone()),
            (None, None) => oci_client::Reference::with_tag(r, p, DEFAULT_TAG.to_owned()),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty(input.to_owned()));
        }
        if input.len() > INPUT_MAX {
            return Err(ReferenceError::TooLong(input.chars().take(64).collect()));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|source| ReferenceError::Digest {
                        input: input.to_owned(),
                        source,
                    })?;
                (n, Some(digest))
            }
            None => (input, None),
        };
        // A ':' after the last '/' separates the tag; one before it is a port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(ReferenceError::Tag {
                input: input.to_owned(),
                tag: tag.to_owned(),
            });
        }
        if name.is_empty() {
            return Err(ReferenceError::Empty(input.to_owned()));
        }
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            Some((first, _)) if first.to_lowercase() != first => {
                // Docker treats an upper-case first component as a host name.
                (first.to_owned(), name[first.len() + 1..].to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if !valid_host(&registry) {
            return Err(ReferenceError::Host {
                input: input.to_owned(),
                host: registry,
            });
        }
        if registry == "index.docker.io" {
            registry = DOCKER_HUB.to_owned();
        }
        if repository.to_lowercase() != repository {
            return Err(ReferenceError::Uppercase {
                input: input.to_owned(),
            });
        }
        for component in repository.split('/') {
            if !valid_component(component) {
                return Err(ReferenceError::Component {
                    input: input.to_owned(),
                    component: component.to_owned(),
                });
            }
        }
        if repository.len() == 64 && repository.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName {
                input: input.to_owned(),
            });
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                input: input.to_owned(),
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `domain-component('.'domain-component)*[:port]` or `[ipv6][:port]`.
fn valid_host(host: &str) -> bool {
    let (h, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    !h.is_empty()
        && h.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[a-z0-9]+(([_.]|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|x| *x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(s: &str) -> String {
        s.parse::<Reference>()
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("ghcr.io/o/r:tag"), "ghcr.io/o/r:tag");
        assert_eq!(
            norm("public.ecr.aws/docker/library/nginx:1"),
            "public.ecr.aws/docker/library/nginx:1"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("127.0.0.1:5000/repo"), "127.0.0.1:5000/repo:latest");
        assert_eq!(
            norm(&format!("127.0.0.1:5000/repo@{D}")),
            format!("127.0.0.1:5000/repo@{D}")
        );
        assert_eq!(
            norm(&format!("busybox:1@{D}")),
            format!("docker.io/library/busybox:1@{D}")
        );
        assert_eq!(
            norm("[::1]:5000/a/b-c__d.e:v1.2_3"),
            "[::1]:5000/a/b-c__d.e:v1.2_3"
        );
        assert_eq!(norm("a---b"), "docker.io/library/a---b:latest");
    }

    #[test]
    fn exposes_parts() {
        let r: Reference = format!("host:5000/a/b:t@{D}").parse().unwrap();
        assert_eq!(r.registry(), "host:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.digest().unwrap().to_string(), D);
        let r: Reference = "busybox".parse().unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.api_host(), "index.docker.io");
        assert_eq!(
            r.with_tag("x").unwrap().to_string(),
            "docker.io/library/busybox:x"
        );
    }

    #[test]
    fn rejects_malformed_references_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("Busybox", "lowercase"),
            ("docker.io/Library/busybox", "lowercase"),
            ("busybox:", "invalid tag"),
            ("busybox:-x", "invalid tag"),
            ("busybox:a/b", "registry host"),
            ("a//b", "path component"),
            ("a/", "path component"),
            ("-a", "path component"),
            ("a_-b", "path component"),
            ("a...b", "path component"),
            ("busybox@sha256:abc", "hex"),
            ("busybox@md5:abc", "algorithm"),
            ("bad_host.com:5000/x", "registry host"),
            ("host:port/x", "registry host"),
            ("[::zz]:5000/x", "registry host"),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "image id",
            ),
        ];
        for (input, want) in cases {
            let err = input.parse::<Reference>().unwrap_err();
            let msg = format!(
                "{err} {:?}",
                std::error::Error::source(&err).map(|s| s.to_string())
            );
            assert!(
                msg.contains(want),
                "{input:?}: {msg} does not mention {want:?}"
            );
        }
        assert!(
            format!("{}:t", "a".repeat(300))
                .parse::<Reference>()
                .is_err()
        );
    }

    #[test]
    fn converts_to_oci_client_reference() {
        let r: Reference = "127.0.0.1:5000/x/y:1".parse().unwrap();
        let o = r.to_oci();
        assert_eq!(o.registry(), "127.0.0.1:5000");
        assert_eq!(o.repository(), "x/y");
        assert_eq!(o.tag(), Some("1"));
        let r: Reference = "busybox".parse().unwrap();
        assert_eq!(r.to_oci().resolve_registry(), "index.docker.io");
    }
}
