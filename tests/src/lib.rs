//! End-to-end test support: fixtures for the real berth binary.

pub mod daemon;
pub mod host;
pub mod images;
pub mod proxy;
pub mod registry;
