//! The registry client: manifest resolution, platform choice and blob streams.
//!
//! oci-client (reqwest 0.13 with rustls) does the HTTP, bearer-token and basic-auth
//! work. This module decides what it is allowed to do:
//!
//! * plain HTTP only for the configured insecure registries (`host:port`), HTTPS for
//!   everything else;
//! * credentials are looked up for the reference's registry host and given to a
//!   client used for that reference only; oci-client attaches them only to requests
//!   addressed to that registry (and its token realm), and reqwest drops the
//!   `Authorization` header on any redirect that changes host, port or scheme;
//! * blobs are requested by digest alone, so manifest `urls` (foreign layers) are
//!   never fetched (CVE-2020-15157);
//! * every manifest and config is size-bounded and digest-verified here, whatever
//!   oci-client checked already;
//! * registry answers are turned into errors that say which registry answered what.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use oci_client::secrets::RegistryAuth;

use crate::auth::{Credentials, DockerConfig};
use crate::digest::Digest;
use crate::manifest::{
    self, Descriptor, ImageConfig, ImageManifest, Manifest, ManifestError, media_type,
};
use crate::platform::Platform;
use crate::reference::Reference;

mod error;

pub use error::RegistryError;
pub(crate) use error::{error_chain, is_verification_error};

/// A stream of blob bytes.
pub type BlobStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Where credentials come from.
#[derive(Debug, Clone, Default)]
pub enum CredentialSource {
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
    #[default]
    DockerDefault,
    /// A specific Docker config file.
    DockerConfig(std::path::PathBuf),
    /// Anonymous access only.
    Anonymous,
}

/// A user name and password given for one pull (an ECS `repositoryCredentials`), used
/// for the reference's registry instead of the configured source.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The registry user.
    pub username: String,
    /// Its password or token.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Registry client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host:port`, as written in references) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Where credentials come from.
    pub credentials: CredentialSource,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response (the ECS agent's pull-inactivity
    /// timeout is one minute).
    pub read_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            insecure_registries: Vec::new(),
            credentials: CredentialSource::DockerDefault,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// The registry client. Cheap to clone.
///
/// oci-client clients (each with its HTTP connection pool, TLS roots and token cache)
/// are kept and reused: one for anonymous access to any registry, built in the
/// background as soon as the `RegistryClient` exists (loading the system's TLS roots
/// takes tens of milliseconds), and one per registry and set of credentials, so that
/// credentials are only ever stored in a client used for their own registry.
#[derive(Clone)]
pub struct RegistryClient {
    config: Arc<ClientConfig>,
    anonymous: Arc<std::sync::OnceLock<oci_client::Client>>,
    with_credentials: Arc<std::sync::Mutex<std::collections::HashMap<u64, oci_client::Client>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An oci-client client for `config`: HTTPS except for the insecure registries.
fn build_client(config: &ClientConfig) -> oci_client::Client {
    let insecure: Vec<String> = config
        .insecure_registries
        .iter()
        .map(|r| {
            if r == crate::reference::DOCKER_HUB {
                "index.docker.io".to_owned()
            } else {
                r.clone()
            }
        })
        .collect();
    oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::HttpsExcept(insecure),
        platform_resolver: None,
        connect_timeout: Some(config.connect_timeout),
        read_timeout: Some(config.read_timeout),
        user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    })
}

/// A connection to one repository with its credentials: everything needed to fetch
/// the blobs of a resolved image.
#[derive(Clone)]
struct Session {
    client: oci_client::Client,
    reference: oci_client::Reference,
    auth: RegistryAuth,
    registry: String,
    insecure: bool,
}

/// An image resolved to one platform: manifest and config fetched and verified.
#[derive(Clone)]
pub struct ResolvedImage {
    /// The reference as asked for.
    pub reference: Reference,
    /// Digest of the platform-specific image manifest.
    pub manifest_digest: Digest,
    /// The manifest as served (its digest is `manifest_digest`).
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// Digest of the index the manifest was chosen from, if any.
    pub index_digest: Option<Digest>,
    /// The image's platform.
    pub platform: Platform,
    /// The config as served (its digest is `manifest.config.digest`).
    pub config_bytes: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfig,
    session: Session,
}

impl std::fmt::Debug for ResolvedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedImage")
            .field("reference", &self.reference)
            .field("manifest_digest", &self.manifest_digest)
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client with `config`. Installs the TLS crypto provider if none is.
    pub fn new(config: ClientConfig) -> RegistryClient {
        crate::install_crypto_provider();
        let client = RegistryClient {
            config: Arc::new(config),
            anonymous: Arc::default(),
            with_credentials: Arc::default(),
        };
        let (cell, config) = (client.anonymous.clone(), client.config.clone());
        let _ = std::thread::Builder::new()
            .name("berth-registry-init".into())
            .spawn(move || {
                cell.get_or_init(|| build_client(&config));
            });
        client
    }

    async fn oci_client(&self, registry: &str, auth: &RegistryAuth) -> oci_client::Client {
        let config = self.config.clone();
        if *auth == RegistryAuth::Anonymous {
            let cell = self.anonymous.clone();
            return tokio::task::spawn_blocking(move || {
                cell.get_or_init(|| build_client(&config)).clone()
            })
            .await
            .expect("building an HTTP client does not panic");
        }
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            registry.hash(&mut h);
            match auth {
                RegistryAuth::Basic(u, p) => (1u8, u, p).hash(&mut h),
                RegistryAuth::Bearer(t) => (2u8, t).hash(&mut h),
                RegistryAuth::Anonymous => 0u8.hash(&mut h),
            }
            h.finish()
        };
        if let Some(c) = self
            .with_credentials
            .lock()
            .expect("not poisoned")
            .get(&key)
        {
            return c.clone();
        }
        let client = tokio::task::spawn_blocking(move || build_client(&config))
            .await
            .expect("building an HTTP client does not panic");
        let mut map = self.with_credentials.lock().expect("not poisoned");
        if map.len() >= 64 {
            map.clear();
        }
        map.entry(key).or_insert(client).clone()
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Whether `registry` is reached over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.config
            .insecure_registries
            .iter()
            .any(|r| r == registry)
    }

    async fn credentials(
        &self,
        reference: &Reference,
        login: Option<&Login>,
    ) -> Result<RegistryAuth, RegistryError> {
        if let Some(l) = login {
            return Ok(RegistryAuth::Basic(l.username.clone(), l.password.clone()));
        }
        let registry = reference.registry().to_owned();
        let source = self.config.credentials.clone();
        let lookup = tokio::task::spawn_blocking(move || {
            let cfg = match &source {
                CredentialSource::Anonymous => return Ok(None),
                CredentialSource::DockerDefault => DockerConfig::load_default()?,
                CredentialSource::DockerConfig(p) => DockerConfig::load(p)?,
            };
            cfg.credentials_for(&registry)
        })
        .await
        .expect("credential lookup does not panic");
        match lookup {
            Ok(None) => Ok(RegistryAuth::Anonymous),
            Ok(Some(Credentials::Basic { username, password })) => {
                Ok(RegistryAuth::Basic(username, password))
            }
            Ok(Some(Credentials::Bearer(t))) => Ok(RegistryAuth::Bearer(t)),
            Err(source) => Err(RegistryError::Credentials {
                registry: reference.registry().to_owned(),
                source,
            }),
        }
    }

    async fn session(
        &self,
        reference: &Reference,
        login: Option<&Login>,
    ) -> Result<Session, RegistryError> {
        let auth = self.credentials(reference, login).await?;
        let oci_ref = reference.to_oci();
        let insecure = self.is_insecure(reference.registry());
        let client = self.oci_client(reference.registry(), &auth).await;
        Ok(Session {
            client,
            reference: oci_ref,
            auth,
            registry: reference.registry().to_owned(),
            insecure,
        })
    }

    /// Fetches the manifest of `reference`, chooses the entry for `platform` from an
    /// index, and fetches and verifies the config.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, RegistryError> {
        self.resolve_as(reference, platform, None).await
    }

    /// [`resolve`](Self::resolve) with `login` for the reference's registry (when given)
    /// instead of the configured credentials; the image's blobs are fetched with it too.
    pub async fn resolve_as(
        &self,
        reference: &Reference,
        platform: &Platform,
        login: Option<&Login>,
    ) -> Result<ResolvedImage, RegistryError> {
        let session = self.session(reference, login).await?;
        let what = format!("manifest for {reference}");
        let (bytes, digest) = session
            .manifest(&session.reference, reference.digest(), &what)
            .await?;
        let parsed = Manifest::parse(&bytes).map_err(|source| RegistryError::Manifest {
            what: "manifest",
            reference: reference.to_string(),
            source,
        })?;
        let (manifest_bytes, manifest_digest, manifest, index_digest, entry_platform) = match parsed
        {
            Manifest::Image(m) => (bytes, digest, m, None, None),
            Manifest::Index(index) => {
                let entry = index
                    .select(platform)
                    .ok_or_else(|| RegistryError::NoPlatform {
                        reference: reference.to_string(),
                        platform: platform.to_string(),
                        available: {
                            let p = index.platforms();
                            if p.is_empty() {
                                "none".into()
                            } else {
                                p.join(", ")
                            }
                        },
                    })?;
                let child_ref = session
                    .reference
                    .clone_with_digest(entry.digest.to_string());
                let what = format!("manifest {} ({platform}) of {reference}", entry.digest);
                let (child, child_digest) = session
                    .manifest(&child_ref, Some(&entry.digest), &what)
                    .await?;
                if child.len() as u64 != entry.size {
                    return Err(RegistryError::Protocol {
                        registry: session.registry.clone(),
                        what,
                        detail: format!(
                            "{} bytes served, the index says {}",
                            child.len(),
                            entry.size
                        ),
                    });
                }
                let m = match Manifest::parse(&child) {
                    Ok(Manifest::Image(m)) => m,
                    Ok(Manifest::Index(_)) => {
                        return Err(RegistryError::Manifest {
                            what: "platform manifest",
                            reference: reference.to_string(),
                            source: ManifestError::MediaType(media_type::OCI_INDEX.into()),
                        });
                    }
                    Err(source) => {
                        return Err(RegistryError::Manifest {
                            what: "platform manifest",
                            reference: reference.to_string(),
                            source,
                        });
                    }
                };
                let p = entry.platform.as_ref().map(Platform::from);
                (child, child_digest, m, Some(digest), p)
            }
        };
        let config_bytes = session
            .blob_bytes(
                &manifest.config,
                manifest::MAX_CONFIG_BYTES as u64,
                "image config",
            )
            .await?;
        let config =
            ImageConfig::parse(&config_bytes).map_err(|source| RegistryError::Manifest {
                what: "image config",
                reference: reference.to_string(),
                source,
            })?;
        if config.diff_ids.len() != manifest.layers.len() {
            return Err(RegistryError::Manifest {
                what: "image config",
                reference: reference.to_string(),
                source: ManifestError::LayerCount {
                    diff_ids: config.diff_ids.len(),
                    layers: manifest.layers.len(),
                },
            });
        }
        let image_platform = entry_platform.unwrap_or_else(|| config.platform());
        if image_platform.rank(platform).is_none() && platform.rank(&image_platform).is_none() {
            return Err(RegistryError::WrongPlatform {
                reference: reference.to_string(),
                actual: image_platform.to_string(),
                wanted: platform.to_string(),
            });
        }
        Ok(ResolvedImage {
            reference: reference.clone(),
            manifest_digest,
            manifest_bytes,
            manifest,
            index_digest,
            platform: image_platform,
            config_bytes,
            config,
            session,
        })
    }
}

impl ResolvedImage {
    /// Streams a blob of this image's repository. The stream ends with an error if
    /// the registry sends more bytes than the descriptor's size; digest verification
    /// is the consumer's job (the content store does it).
    pub async fn blob_stream(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError> {
        self.session.blob_stream(desc).await
    }

    /// The registry host the image came from.
    pub fn registry(&self) -> &str {
        &self.session.registry
    }
}

impl Session {
    async fn manifest(
        &self,
        oci_ref: &oci_client::Reference,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(Vec<u8>, Digest), RegistryError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(oci_ref, &self.auth, media_type::ACCEPT)
            .await
            .map_err(|e| self.map_err(what, e))?;
        if bytes.len() > manifest::MAX_MANIFEST_BYTES {
            return Err(RegistryError::Manifest {
                what: "manifest",
                reference: what.to_owned(),
                source: ManifestError::TooLarge {
                    what: "manifest",
                    size: bytes.len(),
                    max: manifest::MAX_MANIFEST_BYTES,
                },
            });
        }
        let digest = match expected {
            Some(d) => {
                d.verify(&bytes)
                    .map_err(|actual| RegistryError::DigestMismatch {
                        registry: self.registry.clone(),
                        what: "manifest",
                        expected: d.clone(),
                        actual,
                    })?;
                d.clone()
            }
            None => Digest::sha256_of(&bytes),
        };
        Ok((bytes.to_vec(), digest))
    }

    async fn blob_bytes(
        &self,
        desc: &Descriptor,
        max: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, RegistryError> {
        if desc.size > max {
            return Err(RegistryError::TooLarge {
                registry: self.registry.clone(),
                what,
                digest: desc.digest.clone(),
                max,
            });
        }
        let mut stream = self.blob_stream(desc).await?;
        let mut out = Vec::with_capacity(desc.size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| self.map_stream_err(&format!("{what} {}", desc.digest), e))?;
            out.extend_from_slice(&chunk);
        }
        if out.len() as u64 != desc.size {
            return Err(RegistryError::Protocol {
                registry: self.registry.clone(),
                what: format!("{what} {}", desc.digest),
                detail: format!(
                    "{} bytes served, the descriptor says {}",
                    out.len(),
                    desc.size
                ),
            });
        }
        desc.digest
            .verify(&out)
            .map_err(|actual| RegistryError::DigestMismatch {
                registry: self.registry.clone(),
                what,
                expected: desc.digest.clone(),
                actual,
            })?;
        Ok(out)
    }

    async fn blob_stream(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError> {
        // By digest only: a descriptor's `urls` are never handed to oci-client.
        let digest = desc.digest.to_string();
        let what = format!("blob {digest}");
        // A `Range: bytes=0-` request gets the whole blob as 206 without oci-client
        // hashing it a second time (the content store hashes every byte anyway); a
        // registry that ignores ranges answers 200 and oci-client verifies as usual.
        let stream = if desc.size > 0 {
            match self
                .client
                .pull_blob_stream_partial(&self.reference, digest.as_str(), 0, None)
                .await
                .map_err(|e| self.map_err(&what, e))?
            {
                oci_client::client::BlobResponse::Full(s)
                | oci_client::client::BlobResponse::Partial(s) => s.stream,
            }
        } else {
            self.client
                .pull_blob_stream(&self.reference, digest.as_str())
                .await
                .map_err(|e| self.map_err(&what, e))?
                .stream
        };
        let limit = desc.size;
        let mut seen = 0u64;
        let stream = stream.map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            if seen > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "registry sent more than the {limit} bytes the descriptor of {digest} says"
                    ),
                ));
            }
            Ok(chunk)
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// Serialises tests that change the process environment.
    pub(crate) static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
}
