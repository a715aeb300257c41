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
        fixtures: &[
            (
                "manifests",
                "INSERT INTO manifests (digest, media_type, config_digest, platform, size, created, \
                 added_at_ms) VALUES ('sha256:1111111111111111111111111111111111111111111111111111111111111111', \
                 'application/vnd.oci.image.manifest.v1+json', \
                 'sha256:2222222222222222222222222222222222222222222222222222222222222222', \
                 'linux/amd64', 3000, '2026-01-01T00:00:00Z', 1700000000000)",
            ),
            (
                "manifest_layers",
                "INSERT INTO manifest_layers (manifest_digest, position, blob_digest, media_type, size, \
                 diff_id) VALUES ('sha256:1111111111111111111111111111111111111111111111111111111111111111', 0, \
                 'sha256:3333333333333333333333333333333333333333333333333333333333333333', \
                 'application/vnd.oci.image.layer.v1.tar+gzip', 2000, \
                 'sha256:4444444444444444444444444444444444444444444444444444444444444444')",
            ),
            (
                "snapshots",
                "INSERT INTO snapshots (diff_id, state, size, created_at_ms) VALUES \
                 ('sha256:4444444444444444444444444444444444444444444444444444444444444444', 'committed', \
                 5000, 1700000000000)",
            ),
            (
                "images",
                "INSERT INTO images (reference, manifest_digest, index_digest, source, updated_at_ms) \
                 VALUES ('docker.io/library/busybox:latest', \
                 'sha256:1111111111111111111111111111111111111111111111111111111111111111', NULL, \
                 'registry', 1700000000000)",
            ),
        ],
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
    Migration {
        version: 3,
        name: "tasks",
        sql: include_str!("migrations/0003_tasks.sql"),
        fixtures: &[
            (
                "clusters",
                "INSERT INTO clusters VALUES ('default', 'arn:aws:ecs:us-east-1:000000000000:cluster/default', 'ACTIVE', 1.0, '{}')",
            ),
            (
                "tasks",
                "INSERT INTO tasks VALUES ('abc', 'arn:t/abc', 'default', 'web', NULL, 'RUNNING', 'RUNNING', 1.0, NULL, '{}')",
            ),
            (
                "ip_leases",
                "INSERT INTO ip_leases VALUES ('10.0.0.2', 'abc', 1.0)",
            ),
            (
                "host_ports",
                "INSERT INTO host_ports VALUES ('127.0.0.1', 'tcp', 8080, 'abc')",
            ),
            (
                "resource_tags",
                "INSERT INTO resource_tags VALUES ('arn:t/abc', 'k', 'v')",
            ),
        ],
    },
    Migration {
        version: 4,
        name: "secrets_and_roles",
        sql: include_str!("migrations/0004_secrets_and_roles.sql"),
        fixtures: &[
            (
                "secrets",
                "INSERT INTO secrets VALUES ('db-pass', 'hunter2', 1.0)",
            ),
            (
                "role_credentials",
                "INSERT INTO role_credentials VALUES ('arn:aws:iam::000000000000:role/app', \
                 'AKIAFIXTURE', 'secret', NULL, NULL, 1.0)",
            ),
        ],
    },
    Migration {
        version: 5,
        name: "services",
        sql: include_str!("migrations/0005_services.sql"),
        fixtures: &[(
            "services",
            "INSERT INTO services VALUES ('arn:s/web', 'default', 'web', 'ACTIVE', '{}', 1.0, 1.0)",
        )],
    },
];
