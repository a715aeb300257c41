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
        name: "task_definitions",
        sql: include_str!("migrations/0002_task_definitions.sql"),
        fixtures: &[
            (
                "task_definition_families",
                "INSERT INTO task_definition_families (name, last_revision) VALUES ('fixture', 2)",
            ),
            (
                "task_definitions",
                "INSERT INTO task_definitions (family, revision, status, definition, registered_at_ms) \
                 VALUES ('fixture', 1, 'INACTIVE', '{\"family\":\"fixture\",\"containerDefinitions\":\
                 [{\"name\":\"a\",\"image\":\"busybox\",\"memory\":64}]}', 1700000000000), \
                 ('fixture', 2, 'ACTIVE', '{\"family\":\"fixture\",\"containerDefinitions\":\
                 [{\"name\":\"a\",\"image\":\"busybox\",\"memory\":64}]}', 1700000001000)",
            ),
            (
                "task_definition_tags",
                "INSERT INTO task_definition_tags (family, revision, key, value) \
                 VALUES ('fixture', 2, 'team', 'berth')",
            ),
        ],
    },
];
