-- Images: references, manifests, layers and their unpacked snapshots.
CREATE TABLE images (
    reference       TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
