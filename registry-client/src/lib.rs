//! OCI distribution client, digest-verified content store and safe layer unpacker.
//!
//! This crate is mechanism only (no database): berth's image service
//! (`berth_runtime::images`) decides what to pull, where snapshots live and what is
//! referenced, and calls into:
//!
//! * [`reference`]: Docker-style references (`busybox` → `docker.io/library/busybox:latest`);
//! * [`platform`] and [`manifest`]: manifests, indexes and configs, platform choice;
//! * [`auth`]: credentials from `~/.docker/config.json` and credential helpers;
//! * [`client`]: the registry client (oci-client underneath), insecure-registry policy,
//!   error mapping;
//! * [`content`]: the content store (`blobs/sha256/<hex>`, `ingest/`);
//! * [`layer`]: the one-pass layer pipeline: download → sha256 → decompress → diffID →
//!   unpack, concurrently with writing the blob;
//! * [`unpack`]: the safe, in-root tar applier writing overlayfs whiteouts;
//! * [`archive`]: OCI image layouts (directory or tar) and `docker save` archives, read
//!   and written.
//!
//! Errors carry a [`Class`] that `berth_runtime` maps to its `ErrorClass`.

pub mod archive;
pub mod auth;
pub mod client;
pub mod content;
pub mod digest;
mod error;
pub mod layer;
pub mod manifest;
pub mod platform;
pub mod reference;
mod sys;
pub mod unpack;

pub use client::{ClientConfig, Login, RegistryClient, RegistryError, ResolvedImage};
pub use content::{ContentError, ContentStore};
pub use digest::Digest;
pub use error::Class;
pub use manifest::{Descriptor, ImageConfig, ImageManifest};
pub use platform::Platform;
pub use reference::Reference;

/// Installs rustls' ring crypto provider as the process default, once. oci-client is
/// built without a provider of its own (`rustls-tls-no-provider`) so that aws-lc is not
/// compiled; every TLS client in the process then uses ring.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
