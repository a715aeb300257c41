//! The image service's errors.

use std::path::PathBuf;

use berth_registry::archive::ArchiveError;
use berth_registry::layer::LayerError;
use berth_registry::platform::PlatformError;
use berth_registry::reference::ReferenceError;
use berth_registry::{Class, ContentError, Digest, RegistryError};

use crate::db::DbError;
use crate::error::ErrorClass;

/// Why an image operation failed. Messages name the image, registry, layer or file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("invalid image reference {reference:?}: {reason}")]
    Source { reference: String, reason: String },
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image id prefix {prefix:?} matches {count} images; give more of it")]
    AmbiguousId { prefix: String, count: usize },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(
        "image {reference} is incomplete: snapshot of layer {diff_id} is missing; pull it again"
    )]
    SnapshotMissing { reference: String, diff_id: Digest },
    #[error("image {reference} in the database is inconsistent: {detail}")]
    Corrupt { reference: String, detail: String },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("images: failed to {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn class_of(c: Class) -> ErrorClass {
    match c {
        Class::NotFound => ErrorClass::NotFound,
        Class::Invalid => ErrorClass::Invalid,
        Class::Unsupported => ErrorClass::Unsupported,
        Class::Internal => ErrorClass::Internal,
    }
}

impl ImageError {
    /// The error's class, for the API's exception mapping.
    pub fn class(&self) -> ErrorClass {
        match self {
            ImageError::Reference(_)
            | ImageError::Platform(_)
            | ImageError::Source { .. }
            | ImageError::AmbiguousId { .. } => ErrorClass::Invalid,
            ImageError::NotFound(_) => ErrorClass::NotFound,
            ImageError::Registry(e) => class_of(e.class()),
            ImageError::Layer(e) => class_of(e.class()),
            ImageError::Content(e) => class_of(e.class()),
            ImageError::Archive(e) => class_of(e.class()),
            ImageError::SnapshotMissing { .. }
            | ImageError::Corrupt { .. }
            | ImageError::Db(_)
            | ImageError::Io { .. } => ErrorClass::Internal,
        }
    }
}

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io { op, path, source }
}
