//! berth's domain: the task-definition model, SQLite state, image service, OCI spec
//! generation, cgroups, volumes and the per-task shim.
//!
//! The `cli` crate is a thin shell around this library: the daemon owns an engine
//! built from these modules, and `berth shim` calls [`shim`] directly.

pub mod cgroup;
pub mod db;
pub mod engine;
pub mod error;
pub mod images;
pub mod paths;
pub mod secrets;
pub mod shim;
pub mod spec;
pub mod state;
pub mod taskdef;

pub use error::ErrorClass;
