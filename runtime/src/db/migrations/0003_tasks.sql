-- Clusters, tasks and what tasks hold: addresses, host ports, volumes, idempotency
-- tokens, tags. Each task row keeps its whole ECS record as JSON in `doc`; the other
-- columns duplicate what list filters and reconciliation query.
CREATE TABLE clusters (
    name        TEXT PRIMARY KEY,
    arn         TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL,
    created_at  REAL NOT NULL,
    doc         TEXT NOT NULL
);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    arn             TEXT NOT NULL UNIQUE,
    cluster         TEXT NOT NULL,
    family          TEXT NOT NULL,
    started_by      TEXT,
    desired_status  TEXT NOT NULL,
    last_status     TEXT NOT NULL,
    created_at      REAL NOT NULL,
    stopped_at      REAL,
    doc             TEXT NOT NULL
);
CREATE INDEX tasks_by_cluster ON tasks (cluster, desired_status, created_at);
CREATE INDEX tasks_by_status ON tasks (last_status);

-- One row per address handed to a task; the primary key makes double allocation
-- impossible.
CREATE TABLE ip_leases (
    address     TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL,
    allocated_at REAL NOT NULL
);
CREATE INDEX ip_leases_by_task ON ip_leases (task_id);

CREATE TABLE host_ports (
    bind_ip     TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    port        INTEGER NOT NULL,
    task_id     TEXT NOT NULL,
    PRIMARY KEY (bind_ip, protocol, port)
);
CREATE INDEX host_ports_by_task ON host_ports (task_id);

-- RunTask clientToken: same token + same request = same tasks, for 24 hours.
CREATE TABLE run_tokens (
    cluster       TEXT NOT NULL,
    token         TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    task_ids      TEXT NOT NULL,
    created_at    REAL NOT NULL,
    PRIMARY KEY (cluster, token)
);

-- Named volumes (dockerVolumeConfiguration).
CREATE TABLE volumes (
    name        TEXT PRIMARY KEY,
    scope       TEXT NOT NULL,
    driver      TEXT NOT NULL,
    doc         TEXT NOT NULL,
    created_at  REAL NOT NULL
);

-- Tags of clusters and tasks (task definitions keep their own).
CREATE TABLE resource_tags (
    resource_arn TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (resource_arn, key)
);
