//! Global options and the config file (`/etc/berth/config.toml`, `--config FILE`).
//!
//! Precedence: command-line flag, then environment variable, then config file, then
//! default. The file holds the same settings as the flags:
//!
//! ```toml
//! data_root = "/var/lib/berth"
//! run_root = "/run/berth"
//! insecure_registries = ["127.0.0.1:5000"]
//!
//! [daemon]
//! listen = "127.0.0.1:5450"
//! region = "us-east-1"
//! account = "000000000000"
//! publish_address = "127.0.0.1"
//! subnet = "10.229.0.0/20"
//! bridge = "berth0"
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The default config file.
pub(crate) const DEFAULT_CONFIG: &str = "/etc/berth/config.toml";

/// The config file's contents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    pub data_root: Option<PathBuf>,
    pub run_root: Option<PathBuf>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    #[serde(default)]
    pub daemon: DaemonFile,
}

/// `[daemon]` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaemonFile {
    pub listen: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
    pub publish_address: Option<Ipv4Addr>,
    pub subnet: Option<String>,
    pub bridge: Option<String>,
    pub cgroup_name: Option<String>,
    pub pids_limit: Option<i64>,
    pub insecure_no_auth: Option<bool>,
}

impl ConfigFile {
    /// Reads `path`; a missing default file is an empty config, a missing explicit one
    /// an error.
    pub(crate) fn load(path: Option<&Path>) -> Result<ConfigFile> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(ConfigFile::default());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading config file {}", path.display()));
            }
        };
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// Resolved global settings.
#[derive(Debug, Clone)]
pub(crate) struct Globals {
    pub data_root: PathBuf,
    pub run_root: PathBuf,
    pub insecure_registries: Vec<String>,
    pub file: ConfigFile,
}

/// Parses a listen address; `none` or empty disables TCP.
pub(crate) fn parse_listen(s: &str) -> Result<Option<SocketAddr>> {
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match s.parse::<SocketAddr>() {
        Ok(a) => Ok(Some(a)),
        Err(_) => bail!("--listen {s:?}: expected ADDRESS:PORT (e.g. 127.0.0.1:5450) or 'none'"),
    }
}

/// Makes a root absolute (relative to the working directory).
pub(crate) fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("reading the working directory")?
            .join(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_parses_and_rejects_unknown_keys() {
        let c: ConfigFile = toml::from_str(
            "data_root = \"/d\"\ninsecure_registries = [\"h:5000\"]\n[daemon]\nlisten = \"127.0.0.1:1\"\npublish_address = \"0.0.0.0\"\n",
        )
        .unwrap();
        assert_eq!(c.data_root.as_deref(), Some(Path::new("/d")));
        assert_eq!(c.insecure_registries, ["h:5000"]);
        assert_eq!(c.daemon.publish_address, Some(Ipv4Addr::UNSPECIFIED));
        let err = toml::from_str::<ConfigFile>("datroot = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("datroot"), "{err}");
        assert!(ConfigFile::load(Some(Path::new("/nonexistent/berth.toml"))).is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("none").unwrap(), None);
        assert_eq!(
            parse_listen("127.0.0.1:5450").unwrap(),
            Some("127.0.0.1:5450".parse().unwrap())
        );
        assert!(parse_listen("localhost").is_err());
    }
}
