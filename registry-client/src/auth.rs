//! Registry credentials from Docker's client configuration.
//!
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`) is read the way the
//! Docker CLI reads it: `credHelpers` names a helper for one registry host,
//! `credsStore` a helper for every host, and `auths` holds inline credentials
//! (`auth` = base64 `user:password`, or `username`/`password`, or a `registrytoken`
//! used as a bearer token). A helper is run as `docker-credential-<name> get` with the
//! server address on stdin.
//!
//! Credentials are looked up for one registry host and handed to the client for that
//! host only (see `client`): they are never offered to another registry.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::Class;

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP basic credentials (also sent to the registry's token service).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// A bearer token sent as is.
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// A failure reading credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("failed to read docker config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("docker config {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("docker config {path}: the auth entry for {registry} is not base64 user:password")]
    BadAuth { path: PathBuf, registry: String },
    #[error("invalid credential helper name {0:?}")]
    HelperName(String),
    #[error("credential helper docker-credential-{helper} failed for {registry}: {detail}")]
    Helper {
        helper: String,
        registry: String,
        detail: String,
    },
    #[error(
        "docker config has an identity token for {0}; OAuth identity tokens are not supported, \
         log in with a username and password or use a credential helper"
    )]
    IdentityToken(String),
}

impl AuthError {
    /// The error's class.
    pub fn class(&self) -> Class {
        match self {
            AuthError::IdentityToken(_) => Class::Unsupported,
            AuthError::Read { .. } | AuthError::Helper { .. } => Class::Internal,
            _ => Class::Invalid,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// A loaded Docker client configuration.
#[derive(Debug, Default)]
pub struct DockerConfig {
    path: PathBuf,
    file: ConfigFile,
}

/// `registry` as Docker keys it: Docker Hub under its historic v1 URL.
fn server_address(registry: &str) -> &str {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        DOCKER_HUB_SERVER
    } else {
        registry
    }
}

/// The host part of a config key (`https://host:5000/v1/` → `host:5000`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, registry: &str) -> bool {
    let k = key_host(key);
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    k == registry || (hub(k) && hub(registry))
}

impl DockerConfig {
    /// The config at `$DOCKER_CONFIG/config.json` or `$HOME/.docker/config.json`;
    /// an empty config when there is none.
    pub fn load_default() -> Result<DockerConfig, AuthError> {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("HOME") {
                Some(h) => PathBuf::from(h).join(".docker"),
                None => return Ok(DockerConfig::default()),
            },
        };
        DockerConfig::load(&dir.join("config.json"))
    }

    /// The config at `path`; an empty config when the file does not exist.
    pub fn load(path: &Path) -> Result<DockerConfig, AuthError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig {
                    path: path.to_owned(),
                    file: ConfigFile::default(),
                });
            }
            Err(source) => {
                return Err(AuthError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let file = serde_json::from_slice(&bytes).map_err(|source| AuthError::Parse {
            path: path.to_owned(),
            source,
        })?;
        Ok(DockerConfig {
            path: path.to_owned(),
            file,
        })
    }

    /// Credentials for the registry host `registry` (`host[:port]`, `docker.io` for
    /// Docker Hub), or `None` for anonymous access. May run a credential helper.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>, AuthError> {
        let helper = self
            .file
            .cred_helpers
            .iter()
            .find(|(k, _)| same_registry(k, registry))
            .map(|(_, v)| v.clone())
            .or_else(|| self.file.creds_store.clone())
            .filter(|h| !h.is_empty());
        if let Some(helper) = helper
            && let Some(c) = run_helper(&helper, registry)?
        {
            return Ok(Some(c));
        }
        let Some((_, entry)) = self
            .file
            .auths
            .iter()
            .find(|(k, _)| same_registry(k, registry))
        else {
            return Ok(None);
        };
        if let Some(token) = entry.registrytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::Bearer(token.clone())));
        }
        if entry.identitytoken.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(AuthError::IdentityToken(registry.to_owned()));
        }
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = || AuthError::BadAuth {
                path: self.path.clone(),
                registry: registry.to_owned(),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials::Basic {
                username: u.to_owned(),
                password: p.to_owned(),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperReply {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, AuthError> {
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(AuthError::HelperName(helper.to_owned()));
    }
    let fail = |detail: String| AuthError::Helper {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        detail,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let _ = stdin.write_all(server_address(registry).as_bytes());
    drop(stdin);
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let _ = stdout.by_ref().take(1 << 20).read_to_end(&mut out);
        let _ = stderr.by_ref().take(1 << 16).read_to_end(&mut err);
        (out, err)
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() < HELPER_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "no answer within {}s",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(fail(format!("waiting for it: {e}"))),
        }
    };
    let (out, err) = reader.join().unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    if !status.success() {
        if text.contains("credentials not found")
            || String::from_utf8_lossy(&err).contains("credentials not found")
        {
            return Ok(None);
        }
        return Err(fail(format!(
            "{status}: {}",
            String::from_utf8_lossy(&err).trim()
        )));
    }
    let reply: HelperReply =
        serde_json::from_slice(&out).map_err(|e| fail(format!("unreadable answer: {e}")))?;
    if reply.username == "<token>" {
        return Err(AuthError::IdentityToken(registry.to_owned()));
    }
    if reply.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials::Basic {
        username: reply.username,
        password: reply.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(dir: &Path, json: &str) -> DockerConfig {
        let p = dir.join("config.json");
        std::fs::write(&p, json).unwrap();
        DockerConfig::load(&p).unwrap()
    }

    #[test]
    fn reads_inline_credentials_scoped_to_their_host() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            dir.path(),
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "127.0.0.1:5000": {"username": "u", "password": "p"},
                "https://ghcr.io": {"registrytoken": "tok"}}}"#,
        );
        let basic = |u: &str, p: &str| {
            Some(Credentials::Basic {
                username: u.into(),
                password: p.into(),
            })
        };
        assert_eq!(
            c.credentials_for("docker.io").unwrap(),
            basic("hub", "secret")
        );
        assert_eq!(
            c.credentials_for("127.0.0.1:5000").unwrap(),
            basic("u", "p")
        );
        assert_eq!(
            c.credentials_for("ghcr.io").unwrap(),
            Some(Credentials::Bearer("tok".into()))
        );
        assert_eq!(c.credentials_for("127.0.0.1:5001").unwrap(), None);
        assert_eq!(c.credentials_for("evil.example").unwrap(), None);
        assert!(!format!("{:?}", basic("hub", "secret").unwrap()).contains("secret"));
    }

    #[test]
    fn missing_config_is_anonymous_and_bad_config_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load(&dir.path().join("nope.json")).unwrap();
        assert_eq!(c.credentials_for("docker.io").unwrap(), None);
        std::fs::write(dir.path().join("bad.json"), "{").unwrap();
        assert!(matches!(
            DockerConfig::load(&dir.path().join("bad.json")),
            Err(AuthError::Parse { .. })
        ));
        let c = config(
            dir.path(),
            r#"{"auths": {"h:1": {"auth": "!!!"}, "h:2": {"identitytoken": "x"}}}"#,
        );
        assert!(matches!(
            c.credentials_for("h:1"),
            Err(AuthError::BadAuth { .. })
        ));
        assert!(matches!(
            c.credentials_for("h:2"),
            Err(AuthError::IdentityToken(_))
        ));
    }

    #[test]
    fn runs_credential_helpers() {
        let _guard = crate::client::tests::ENV_LOCK.lock().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-bAtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\ncase \"$host\" in\n  reg.example:5000) echo '{\"ServerURL\":\"x\",\"Username\":\"hu\",\"Secret\":\"hs\"}';;\n  *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let old_path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.path().to_owned()];
        paths.extend(std::env::split_paths(&old_path));
        // SAFETY: tests touching the environment hold ENV_LOCK.
        unsafe { std::env::set_var("PATH", std::env::join_paths(paths).unwrap()) };
        let c = config(
            dir.path(),
            r#"{"credHelpers": {"reg.example:5000": "bAtest"}, "credsStore": "bAtest",
                "auths": {"other:1": {"auth": "YTpi"}}}"#,
        );
        let got = c.credentials_for("reg.example:5000");
        let fallback = c.credentials_for("other:1");
        let none = c.credentials_for("nothing:1");
        let bad = config(dir.path(), r#"{"credsStore": "../../bin/sh"}"#).credentials_for("x");
        // SAFETY: as above.
        unsafe { std::env::set_var("PATH", old_path) };
        assert_eq!(
            got.unwrap(),
            Some(Credentials::Basic {
                username: "hu".into(),
                password: "hs".into()
            })
        );
        assert_eq!(
            fallback.unwrap(),
            Some(Credentials::Basic {
                username: "a".into(),
                password: "b".into()
            })
        );
        assert_eq!(none.unwrap(), None);
        assert!(matches!(bad, Err(AuthError::HelperName(_))));
    }
}
