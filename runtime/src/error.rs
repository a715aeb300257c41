//! The error classes every berth library error maps to.
//!
//! Each module keeps its own `thiserror` enum; each such enum has a `class()` method
//! returning an [`ErrorClass`]. The API layer maps classes to ECS exceptions and HTTP
//! status codes with one exhaustive `match`, so adding a class forces a decision there.

/// What kind of failure an error is, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The named thing (image, task, task definition, cluster, volume) does not exist.
    NotFound,
    /// The request is malformed or breaks a rule; the message names the field.
    Invalid,
    /// The request conflicts with current state (a name in use, a token reused with
    /// other parameters, a resource still referenced).
    Conflict,
    /// A feature berth does not implement on a single host.
    Unsupported,
    /// Something outside the request failed: the kernel, the disk, a registry.
    Internal,
}

impl ErrorClass {
    /// A short lower-case label, used in logs and CLI output.
    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::NotFound => "not found",
            ErrorClass::Invalid => "invalid",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Unsupported => "unsupported",
            ErrorClass::Internal => "internal",
        }
    }
}
