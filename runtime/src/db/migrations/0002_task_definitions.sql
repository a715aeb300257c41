-- Task definitions: families with revisions, as RegisterTaskDefinition & co. manage them.

-- A family outlives its revisions: ECS never reuses a revision number, even after
-- every revision of the family was deleted, so the counter lives here.
CREATE TABLE task_definition_families (
    name          TEXT    PRIMARY KEY,
    last_revision INTEGER NOT NULL CHECK (last_revision >= 1)
);

-- One row per revision. `definition` is the canonical JSON of the validated definition
-- (the register form, task cpu/memory normalized to units/MiB, tags excluded).
-- Timestamps are Unix epoch milliseconds.
CREATE TABLE task_definitions (
    family                 TEXT    NOT NULL REFERENCES task_definition_families (name),
    revision               INTEGER NOT NULL CHECK (revision >= 1),
    status                 TEXT    NOT NULL
                           CHECK (status IN ('ACTIVE', 'INACTIVE', 'DELETE_IN_PROGRESS')),
    definition             TEXT    NOT NULL,
    registered_at_ms       INTEGER NOT NULL,
    registered_by          TEXT,
    deregistered_at_ms     INTEGER,
    delete_requested_at_ms INTEGER,
    PRIMARY KEY (family, revision)
) WITHOUT ROWID;

CREATE INDEX task_definitions_by_status ON task_definitions (status, family, revision);

-- Tags of a revision (RegisterTaskDefinition tags, TagResource, UntagResource).
CREATE TABLE task_definition_tags (
    family   TEXT    NOT NULL,
    revision INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (family, revision, key),
    FOREIGN KEY (family, revision) REFERENCES task_definitions (family, revision)
        ON DELETE CASCADE
) WITHOUT ROWID;
