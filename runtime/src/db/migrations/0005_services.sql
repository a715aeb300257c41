-- ECS services: one row per service, its whole state (settings, deployments, events,
-- the scheduler's bookkeeping) as a JSON document. A service deleted and created again
-- under the same name has the same ARN: the row is replaced.
CREATE TABLE services (
    arn         TEXT PRIMARY KEY,
    cluster     TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    doc         TEXT NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);

CREATE INDEX services_by_cluster ON services (cluster, name);
