//! Platforms (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`) and the choice of a
//! manifest from an image index.
//!
//! Names are normalised the way containerd does it: `x86_64` is `amd64`, `aarch64` is
//! `arm64` whose default variant is `v8`, `armhf` is `arm/v7`, `armel` is `arm/v6`, and an
//! `arm` without variant is `v7`. A 32-bit ARM host also accepts older variants (v7
//! runs v6 and v5 images), preferring the newest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a platform.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    #[error(
        "invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
    )]
    Format(String),
}

/// An operating system, architecture and optional variant.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`, …
    pub architecture: String,
    /// `v8` for arm64, `v6`/`v7` for arm, `None` when not applicable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A normalised platform.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let (architecture, variant) = normalise_arch(
            &architecture.to_ascii_lowercase(),
            variant.map(str::to_ascii_lowercase),
        );
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// The platform this binary runs on.
    pub fn host() -> Platform {
        let arch = std::env::consts::ARCH;
        Platform::new("linux", arch, None)
    }

    /// Whether an index entry's platform can run here, and how well: lower is better.
    /// `None` when it cannot.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return None;
        }
        let want = self.variant.as_deref();
        let got = candidate.variant.as_deref();
        match self.architecture.as_str() {
            "arm" => {
                // v8 > v7 > v6 > v5: a host runs its own variant and every older one.
                let level = |v: Option<&str>| {
                    v.and_then(|v| v.strip_prefix('v'))
                        .and_then(|n| n.parse::<usize>().ok())
                };
                let (w, g) = (level(want).unwrap_or(7), level(got).unwrap_or(7));
                (g <= w).then(|| w - g)
            }
            "arm64" => match (want, got) {
                (Some(w), Some(g)) if w == g => Some(0),
                (_, None) => Some(1),
                (Some("v8"), Some(g)) if g.starts_with("v8") => Some(2),
                _ => None,
            },
            _ => match (want, got) {
                (w, g) if w == g => Some(0),
                (None, Some("v1")) | (Some("v1"), None) => Some(1),
                _ => None,
            },
        }
    }
}

fn normalise_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    let variant = variant.filter(|v| !v.is_empty());
    match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => (
            "arm64".into(),
            Some(match variant.as_deref() {
                None | Some("8") => "v8".to_owned(),
                Some(v) => v.to_owned(),
            }),
        ),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(match variant.as_deref() {
                None => "v7".to_owned(),
                Some(v) if !v.starts_with('v') => format!("v{v}"),
                Some(v) => v.to_owned(),
            }),
        ),
        "i386" | "i486" | "i586" | "i686" | "x86" => ("386".into(), variant),
        "powerpc64" => ("ppc64".into(), variant),
        "powerpc64le" => ("ppc64le".into(), variant),
        other => (other.into(), variant),
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !parts.iter().all(|p| ok(p)) {
            return Err(PlatformError::Format(s.to_owned()));
        }
        match parts.as_slice() {
            [arch] if !matches!(*arch, "linux" | "windows" | "darwin") => {
                Ok(Platform::new("linux", arch, None))
            }
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(PlatformError::Format(s.to_owned())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Platform({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/arm64").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm/6").to_string(), "linux/arm/v6");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        for bad in [
            "",
            "linux/",
            "/amd64",
            "linux/amd64/v1/x",
            "linux amd64",
            "linux",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranks_candidates() {
        let arm64 = p("linux/arm64");
        assert_eq!(
            arm64.rank(&Platform::new("linux", "arm64", Some("v8"))),
            Some(0)
        );
        assert_eq!(
            arm64.rank(&Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: None
            }),
            Some(1)
        );
        assert_eq!(arm64.rank(&p("linux/amd64")), None);
        let v7 = p("linux/arm/v7");
        assert_eq!(v7.rank(&p("linux/arm/v7")), Some(0));
        assert_eq!(v7.rank(&p("linux/arm/v6")), Some(1));
        assert_eq!(v7.rank(&p("linux/arm/v8")), None);
        let amd = p("linux/amd64");
        assert_eq!(amd.rank(&p("linux/amd64")), Some(0));
        assert_eq!(amd.rank(&p("linux/amd64/v3")), None);
        assert_eq!(amd.rank(&p("windows/amd64")), None);
        assert!(Platform::host().rank(&Platform::host()).is_some());
    }
}
