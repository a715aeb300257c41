//! The error classes every error of this crate maps to.
//!
//! This crate does not depend on `berth-runtime`; the caller maps [`ErrorKind`] onto
//! `berth_runtime::ErrorClass` (and from there onto an ECS exception) with an exhaustive match.

/// What kind of failure an error is, for the caller to map onto its own classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A named thing (network namespace, interface, table) does not exist.
    NotFound,
    /// The request is malformed or breaks a rule; the message names the field.
    Invalid,
    /// The request conflicts with the state of the host: a host port already bound or
    /// published, an interface name taken, a subnet that overlaps a host route.
    Conflict,
    /// The host lacks something berth needs (a kernel feature, a policy that forbids a change).
    Unsupported,
    /// The kernel or the filesystem failed in a way the request could not have avoided.
    Internal,
}

impl ErrorKind {
    /// A short lower-case label for logs.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_lower_case() {
        for k in [
            ErrorKind::NotFound,
            ErrorKind::Invalid,
            ErrorKind::Conflict,
            ErrorKind::Unsupported,
            ErrorKind::Internal,
        ] {
            assert_eq!(k.label(), k.label().to_lowercase());
        }
    }
}
