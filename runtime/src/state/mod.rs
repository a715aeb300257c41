//! berth's own state in SQLite: clusters, tasks, IP leases, host ports, RunTask
//! idempotency tokens and resource tags (task definitions live in `taskdef`, images in
//! `images`).

pub mod model;
pub mod repo;

#[cfg(test)]
mod tests;
