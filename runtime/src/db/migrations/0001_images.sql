-- Images: references, manifests, their layers, and the unpacked snapshots of layers.
--
-- Blobs themselves live in the content store (<data-root>/content/blobs/<alg>/<hex>);
-- a blob is present there only if it was verified. These tables say which images
-- need which blobs and snapshots, so that everything else can be collected.
-- Timestamps are Unix epoch milliseconds.

-- Platform-specific image manifests berth has stored. A manifest stays while an image
-- reference or a running task (the caller's in-use set at GC time) needs it.
CREATE TABLE manifests (
    digest        TEXT    PRIMARY KEY,            -- 'sha256:<hex>' of the manifest bytes
    media_type    TEXT    NOT NULL,
    config_digest TEXT    NOT NULL,               -- the image id
    platform      TEXT    NOT NULL,               -- 'linux/amd64', 'linux/arm64/v8'
    size          INTEGER NOT NULL CHECK (size >= 0), -- manifest + config + layer blobs
    created       TEXT,                           -- the config's 'created' (RFC 3339)
    added_at_ms   INTEGER NOT NULL
);

-- The layers of a manifest, bottom (position 0) first.
CREATE TABLE manifest_layers (
    manifest_digest TEXT    NOT NULL REFERENCES manifests (digest) ON DELETE CASCADE,
    position        INTEGER NOT NULL CHECK (position >= 0),
    blob_digest     TEXT    NOT NULL,
    media_type      TEXT    NOT NULL,
    size            INTEGER NOT NULL CHECK (size >= 0),
    diff_id         TEXT    NOT NULL,             -- digest of the uncompressed tar
    PRIMARY KEY (manifest_digest, position)
) WITHOUT ROWID;

CREATE INDEX manifest_layers_by_diff_id ON manifest_layers (diff_id);
CREATE INDEX manifest_layers_by_blob ON manifest_layers (blob_digest);

-- Unpacked layers, shared by every image with the same diff id. The id names the
-- directory <data-root>/snapshots/<id> (an overlayfs lower dir); AUTOINCREMENT so
-- that an id is never reused for different content. A 'preparing' row is the intent
-- written before unpacking into snapshots/tmp/<id>; rows left 'preparing' by a crash
-- are removed with their directories when berth starts.
CREATE TABLE snapshots (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    diff_id       TEXT    NOT NULL UNIQUE,
    state         TEXT    NOT NULL CHECK (state IN ('preparing', 'committed')),
    size          INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0), -- uncompressed bytes
    created_at_ms INTEGER NOT NULL
);

-- Image references ('docker.io/library/busybox:latest', 'host:5000/app@sha256:…',
-- 'oci-archive:/srv/app.tar:v1') and the manifest each names.
CREATE TABLE images (
    reference       TEXT    PRIMARY KEY,
    manifest_digest TEXT    NOT NULL REFERENCES manifests (digest),
    index_digest    TEXT,                         -- the index the manifest was chosen from
    source          TEXT    NOT NULL
                    CHECK (source IN ('registry', 'oci-layout', 'oci-archive', 'docker-archive')),
    updated_at_ms   INTEGER NOT NULL
);

CREATE INDEX images_by_manifest ON images (manifest_digest);
