//! [`RegistryError`]: what a registry answered, or why it could not be asked, mapped from
//! oci-client's errors with the registry's name, the request and the registry's own error
//! codes in the message.

use std::io;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use super::Session;
use crate::auth::AuthError;
use crate::digest::Digest;
use crate::error::Class;
use crate::manifest::ManifestError;

/// A registry failure, naming the registry and what it answered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry} has no {what}: it answered {answer}")]
    NotFound {
        registry: String,
        what: String,
        answer: String,
    },
    #[error("registry {registry} refused access to {what} ({answer}): {hint}")]
    Unauthorized {
        registry: String,
        what: String,
        answer: String,
        /// What to check: depends on whether credentials were sent.
        hint: &'static str,
    },
    #[error("cannot reach registry {registry}: {detail}{hint}")]
    Unreachable {
        registry: String,
        detail: String,
        hint: &'static str,
    },
    #[error("registry {registry} failed while serving {what}: {detail}")]
    Protocol {
        registry: String,
        what: String,
        detail: String,
    },
    #[error("{reference} has no manifest for platform {platform} (it has: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("{reference} is for platform {actual}, not {wanted}")]
    WrongPlatform {
        reference: String,
        actual: String,
        wanted: String,
    },
    #[error("{what} of {reference} is not usable")]
    Manifest {
        what: &'static str,
        reference: String,
        #[source]
        source: ManifestError,
    },
    #[error(
        "{what} {expected} from registry {registry} does not match its digest: the content hashes to {actual}"
    )]
    DigestMismatch {
        registry: String,
        what: &'static str,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} {digest} from registry {registry} is larger than {max} bytes")]
    TooLarge {
        registry: String,
        what: &'static str,
        digest: Digest,
        max: u64,
    },
    #[error("cannot use credentials for registry {registry}")]
    Credentials {
        registry: String,
        #[source]
        source: AuthError,
    },
}

impl RegistryError {
    /// The error's class.
    pub fn class(&self) -> Class {
        match self {
            RegistryError::NotFound { .. }
            | RegistryError::Unauthorized { .. }
            | RegistryError::NoPlatform { .. }
            | RegistryError::WrongPlatform { .. } => Class::NotFound,
            RegistryError::Manifest { source, .. } => match source {
                ManifestError::SchemaV1
                | ManifestError::SchemaVersion(_)
                | ManifestError::MediaType(_)
                | ManifestError::NotAnImage(_)
                | ManifestError::LayerMediaType(_)
                | ManifestError::TooManyLayers(_) => Class::Unsupported,
                _ => Class::Invalid,
            },
            RegistryError::Credentials { source, .. } => source.class(),
            RegistryError::Unreachable { .. }
            | RegistryError::Protocol { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::TooLarge { .. } => Class::Internal,
        }
    }
}

impl Session {
    pub(super) fn map_stream_err(&self, what: &str, e: io::Error) -> RegistryError {
        if e.get_ref()
            .is_some_and(|i| i.is::<oci_client::errors::DigestError>())
        {
            let inner = e.into_inner().expect("checked above");
            let d = inner
                .downcast::<oci_client::errors::DigestError>()
                .expect("checked above");
            return self.map_err(what, OciDistributionError::DigestError(*d));
        }
        RegistryError::Protocol {
            registry: self.registry.clone(),
            what: what.to_owned(),
            detail: error_chain(&e),
        }
    }

    pub(super) fn map_err(&self, what: &str, e: OciDistributionError) -> RegistryError {
        let registry = self.registry.clone();
        let what = what.to_owned();
        let hint = match self.auth {
            RegistryAuth::Anonymous => {
                "the repository does not exist or needs credentials (docker login, a credential \
                 helper, or the task definition's repositoryCredentials)"
            }
            _ => "the repository does not exist or the registry refused the credentials berth sent",
        };
        // What the registry's answer (its error code, or the HTTP status) amounts to.
        enum Answer {
            Missing,
            Refused,
            Failed,
        }
        let answered = |kind, answer| match kind {
            Answer::Missing => RegistryError::NotFound {
                registry: registry.clone(),
                what: what.clone(),
                answer,
            },
            Answer::Refused => RegistryError::Unauthorized {
                registry: registry.clone(),
                what: what.clone(),
                answer,
                hint,
            },
            Answer::Failed => RegistryError::Protocol {
                registry: registry.clone(),
                what: what.clone(),
                detail: answer,
            },
        };
        match e {
            OciDistributionError::RegistryError { envelope, .. } => {
                let answer = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", screaming(&format!("{:?}", e.code)), e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let kind = match envelope.errors.first().map(|e| &e.code) {
                    Some(
                        OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound,
                    ) => Answer::Missing,
                    Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => Answer::Refused,
                    _ => Answer::Failed,
                };
                answered(kind, answer)
            }
            OciDistributionError::ServerError { code, message, .. } => {
                let answer = format!(
                    "HTTP {code} {}",
                    message.trim().chars().take(200).collect::<String>()
                );
                let kind = match code {
                    404 => Answer::Missing,
                    401 | 403 => Answer::Refused,
                    _ => Answer::Failed,
                };
                answered(kind, answer)
            }
            OciDistributionError::UnauthorizedError { .. } => RegistryError::Unauthorized {
                registry,
                what,
                answer: "HTTP 401".into(),
                hint,
            },
            OciDistributionError::AuthenticationFailure(msg) => RegistryError::Unauthorized {
                registry,
                what,
                answer: format!(
                    "token request failed: {}",
                    msg.trim().chars().take(200).collect::<String>()
                ),
                hint,
            },
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => match (expected.parse(), actual.parse()) {
                (Ok(expected), Ok(actual)) => RegistryError::DigestMismatch {
                    registry,
                    what: "content",
                    expected,
                    actual,
                },
                _ => RegistryError::Protocol {
                    registry,
                    what,
                    detail: format!("digest mismatch: {expected} != {actual}"),
                },
            },
            OciDistributionError::RequestError(e) => {
                let detail = error_chain(&e);
                let tls = detail.contains("InvalidContentType")
                    || detail.to_ascii_lowercase().contains("tls")
                    || detail.contains("certificate");
                let hint = if tls && !self.insecure {
                    " (if the registry serves plain HTTP, allow it with --insecure-registry)"
                } else {
                    ""
                };
                RegistryError::Unreachable {
                    registry,
                    detail,
                    hint,
                }
            }
            other => RegistryError::Protocol {
                registry,
                what,
                detail: error_chain(&other),
            },
        }
    }
}

/// Whether a blob-stream error is oci-client's end-of-stream digest check failing:
/// every byte arrived, and the content store's own verification will name the
/// actual digest.
pub(crate) fn is_verification_error(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|i| i.is::<oci_client::errors::DigestError>())
}

/// `ManifestUnknown` → `MANIFEST_UNKNOWN`, as the registry wrote the code.
fn screaming(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// An error and its sources, `: `-separated.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
