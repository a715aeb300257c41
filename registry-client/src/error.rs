//! The class every error of this crate falls in.
//!
//! `berth_runtime::ErrorClass` is the project-wide class; this crate sits below the
//! runtime and cannot name it, so it keeps its own mirror and the runtime maps it one
//! to one.

/// What kind of failure an error is, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The named image, tag, blob or archive entry does not exist.
    NotFound,
    /// The input (reference, platform, archive) is malformed.
    Invalid,
    /// The image or registry uses something berth does not implement.
    Unsupported,
    /// Something outside the request failed: the registry, the network, the disk,
    /// content that does not match its digest.
    Internal,
}
