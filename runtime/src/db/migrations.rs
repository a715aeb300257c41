//! Every schema step, oldest first. Append only: a released migration is never edited.

/// One schema step.
#[derive(Debug)]
pub struct Migration {
    /// `PRAGMA user_version` after this step.
    pub version: u32,
    /// A short name for logs and errors.
    pub name: &'static str,
    /// The SQL, run in one transaction.
    pub sql: &'static str,
    /// Rows to insert into a database at this version, as `(table, sql)`, used by the
    /// migration tests to check that later steps keep data.
    pub fixtures: &'static [(&'static str, &'static str)],
}

/// The schema version this berth writes.
pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "images",
        sql: include_str!("migrations/0001_images.sql"),
        fixtures: &[],
    },
    Migration {
        version: 2,
        name: "tasks",
        sql: include_str!("migrations/0003_tasks.sql"),
        fixtures: &[
            ("clusters", "INSERT INTO clusters VALUES ('default', 'arn:aws:ecs:us-east-1:000000000000:cluster/default', 'ACTIVE', 1.0, '{}')"),
            ("tasks", "INSERT INTO tasks VALUES ('abc', 'arn:t/abc', 'default', 'web', NULL, 'RUNNING', 'RUNNING', 1.0, NULL, '{}')"),
            ("ip_leases", "INSERT INTO ip_leases VALUES ('10.0.0.2', 'abc', 1.0)"),
            ("host_ports", "INSERT INTO host_ports VALUES ('127.0.0.1', 'tcp', 8080, 'abc')"),
            ("resource_tags", "INSERT INTO resource_tags VALUES ('arn:t/abc', 'k', 'v')"),
        ],
    },
];
