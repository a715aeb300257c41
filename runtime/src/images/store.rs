//! The image tables (migration 1): every query the image service runs. All functions
//! run on the database thread (through `DbHandle::call`).

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};

use crate::db::{CachedStatements, Db, DbError, QueryContext};

/// A stored manifest and its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestRow {
    pub digest: String,
    pub media_type: String,
    pub config_digest: String,
    pub platform: String,
    pub size: u64,
    pub created: Option<String>,
    pub layers: Vec<LayerRow>,
}

/// One layer of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerRow {
    pub blob_digest: String,
    pub media_type: String,
    pub size: u64,
    pub diff_id: String,
}

/// An image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRow {
    pub reference: String,
    pub manifest_digest: String,
    pub index_digest: Option<String>,
    pub source: String,
}

/// A snapshot row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotRow {
    pub id: i64,
    pub diff_id: String,
    pub committed: bool,
    pub size: u64,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Stores a manifest (if new) and points `reference` at it.
pub(crate) fn record_image(
    db: &mut Db,
    m: &ManifestRow,
    reference: &str,
    index_digest: Option<&str>,
    source: &str,
) -> Result<(), DbError> {
    let now = now_ms();
    let tx = db
        .conn_mut()
        .transaction()
        .context("starting image transaction")?;
    let inserted = tx
        .exec_cached(
            "INSERT OR IGNORE INTO manifests (digest, media_type, config_digest, platform, size, created, added_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![m.digest, m.media_type, m.config_digest, m.platform, m.size as i64, m.created, now],
        )
        .context("inserting manifest")?;
    if inserted == 1 {
        for (i, l) in m.layers.iter().enumerate() {
            tx.exec_cached(
                "INSERT INTO manifest_layers (manifest_digest, position, blob_digest, media_type, size, diff_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![m.digest, i as i64, l.blob_digest, l.media_type, l.size as i64, l.diff_id],
            )
            .context("inserting manifest layer")?;
        }
    }
    tx.exec_cached(
        "INSERT INTO images (reference, manifest_digest, index_digest, source, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (reference) DO UPDATE SET manifest_digest = excluded.manifest_digest,
             index_digest = excluded.index_digest, source = excluded.source, updated_at_ms = excluded.updated_at_ms",
        params![reference, m.digest, index_digest, source, now],
    )
    .context("recording image reference")?;
    tx.commit().context("committing image")
}

pub(crate) fn image(db: &Db, reference: &str) -> Result<Option<ImageRow>, DbError> {
    db.conn()
        .row_cached(
            "SELECT reference, manifest_digest, index_digest, source FROM images WHERE reference = ?1",
            [reference],
            |r| Ok(ImageRow { reference: r.get(0)?, manifest_digest: r.get(1)?, index_digest: r.get(2)?, source: r.get(3)? }),
        )
        .optional()
        .context("looking up image")
}

pub(crate) fn images(db: &Db) -> Result<Vec<ImageRow>, DbError> {
    let mut stmt = db
        .conn()
        .prepare_cached("SELECT reference, manifest_digest, index_digest, source FROM images ORDER BY reference")
        .context("listing images")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ImageRow {
                reference: r.get(0)?,
                manifest_digest: r.get(1)?,
                index_digest: r.get(2)?,
                source: r.get(3)?,
            })
        })
        .context("listing images")?;
    rows.collect::<Result<_, _>>().context("listing images")
}

/// References whose image id (config digest) starts with `prefix` (`sha256:` optional).
pub(crate) fn references_by_id_prefix(
    db: &Db,
    prefix: &str,
) -> Result<Vec<(String, String)>, DbError> {
    let hex = prefix.strip_prefix("sha256:").unwrap_or(prefix);
    let mut stmt = db
        .conn()
        .prepare_cached(
            "SELECT i.reference, m.config_digest FROM images i JOIN manifests m ON m.digest = i.manifest_digest
             WHERE substr(m.config_digest, 8, ?1) = ?2 ORDER BY i.reference",
        )
        .context("looking up image id")?;
    let rows = stmt
        .query_map(params![hex.len() as i64, hex], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .context("looking up image id")?;
    rows.collect::<Result<_, _>>()
        .context("looking up image id")
}

pub(crate) fn manifest(db: &Db, digest: &str) -> Result<Option<ManifestRow>, DbError> {
    let row = db
        .conn()
        .row_cached(
            "SELECT digest, media_type, config_digest, platform, size, created FROM manifests WHERE digest = ?1",
            [digest],
            |r| {
                Ok(ManifestRow {
                    digest: r.get(0)?,
                    media_type: r.get(1)?,
                    config_digest: r.get(2)?,
                    platform: r.get(3)?,
                    size: r.get::<_, i64>(4)? as u64,
                    created: r.get(5)?,
                    layers: Vec::new(),
                })
            },
        )
        .optional()
        .context("looking up manifest")?;
    let Some(mut m) = row else { return Ok(None) };
    let mut stmt = db
        .conn()
        .prepare_cached(
            "SELECT blob_digest, media_type, size, diff_id FROM manifest_layers
             WHERE manifest_digest = ?1 ORDER BY position",
        )
        .context("reading manifest layers")?;
    m.layers = stmt
        .query_map([digest], |r| {
            Ok(LayerRow {
                blob_digest: r.get(0)?,
                media_type: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                diff_id: r.get(3)?,
            })
        })
        .context("reading manifest layers")?
        .collect::<Result<_, _>>()
        .context("reading manifest layers")?;
    Ok(Some(m))
}

pub(crate) fn snapshot(db: &Db, diff_id: &str) -> Result<Option<SnapshotRow>, DbError> {
    db.conn()
        .row_cached(
            "SELECT id, diff_id, state, size FROM snapshots WHERE diff_id = ?1",
            [diff_id],
            |r| {
                Ok(SnapshotRow {
                    id: r.get(0)?,
                    diff_id: r.get(1)?,
                    committed: r.get::<_, String>(2)? == "committed",
                    size: r.get::<_, i64>(3)? as u64,
                })
            },
        )
        .optional()
        .context("looking up snapshot")
}

pub(crate) fn snapshots(db: &Db) -> Result<Vec<SnapshotRow>, DbError> {
    let mut stmt = db
        .conn()
        .prepare_cached("SELECT id, diff_id, state, size FROM snapshots")
        .context("listing snapshots")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(SnapshotRow {
                id: r.get(0)?,
                diff_id: r.get(1)?,
                committed: r.get::<_, String>(2)? == "committed",
                size: r.get::<_, i64>(3)? as u64,
            })
        })
        .context("listing snapshots")?;
    rows.collect::<Result<_, _>>().context("listing snapshots")
}

/// Records the intent to unpack `diff_id` (replacing any stale row) and returns the
/// new snapshot id.
pub(crate) fn prepare_snapshot(db: &mut Db, diff_id: &str) -> Result<i64, DbError> {
    let tx = db
        .conn_mut()
        .transaction()
        .context("starting snapshot transaction")?;
    tx.exec_cached("DELETE FROM snapshots WHERE diff_id = ?1", [diff_id])
        .context("replacing stale snapshot")?;
    tx.exec_cached(
        "INSERT INTO snapshots (diff_id, state, size, created_at_ms) VALUES (?1, 'preparing', 0, ?2)",
        params![diff_id, now_ms()],
    )
    .context("recording snapshot intent")?;
    let id = tx.last_insert_rowid();
    tx.commit().context("committing snapshot intent")?;
    Ok(id)
}

pub(crate) fn commit_snapshot(db: &Db, id: i64, size: u64) -> Result<(), DbError> {
    db.conn()
        .exec_cached(
            "UPDATE snapshots SET state = 'committed', size = ?2 WHERE id = ?1",
            params![id, size as i64],
        )
        .context("committing snapshot")?;
    Ok(())
}

pub(crate) fn delete_snapshots(db: &mut Db, ids: &[i64]) -> Result<(), DbError> {
    let tx = db
        .conn_mut()
        .transaction()
        .context("starting snapshot deletion")?;
    for id in ids {
        tx.exec_cached("DELETE FROM snapshots WHERE id = ?1", [id])
            .context("deleting snapshot")?;
    }
    tx.commit().context("committing snapshot deletion")
}

/// Removes image references; returns the manifests no reference names any more.
pub(crate) fn remove_references(db: &mut Db, refs: &[String]) -> Result<Vec<String>, DbError> {
    let tx = db
        .conn_mut()
        .transaction()
        .context("starting image removal")?;
    let mut manifests = BTreeSet::new();
    for r in refs {
        if let Some(m) = tx
            .row_cached(
                "SELECT manifest_digest FROM images WHERE reference = ?1",
                [r],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .context("reading image")?
        {
            manifests.insert(m);
        }
        tx.exec_cached("DELETE FROM images WHERE reference = ?1", [r])
            .context("removing image reference")?;
    }
    let mut orphaned = Vec::new();
    for m in manifests {
        let still: i64 = tx
            .row_cached(
                "SELECT count(*) FROM images WHERE manifest_digest = ?1",
                [&m],
                |r| r.get(0),
            )
            .context("counting references")?;
        if still == 0 {
            orphaned.push(m);
        }
    }
    tx.commit().context("committing image removal")?;
    Ok(orphaned)
}

/// What garbage collection keeps and drops.
#[derive(Debug, Default)]
pub(crate) struct Sweep {
    pub live_blobs: BTreeSet<String>,
    pub dead_snapshots: Vec<SnapshotRow>,
    pub manifests_removed: usize,
}

/// Deletes manifests that no image references and that are not in `in_use`, then
/// returns the blobs still needed and the snapshots no longer needed (rows deleted).
pub(crate) fn sweep(
    db: &mut Db,
    in_use: &BTreeSet<String>,
    keep_snapshots: &BTreeSet<i64>,
) -> Result<Sweep, DbError> {
    let tx = db
        .conn_mut()
        .transaction()
        .context("starting garbage collection")?;
    let all: Vec<String> = {
        let mut stmt = tx.prepare_cached("SELECT digest FROM manifests WHERE digest NOT IN (SELECT manifest_digest FROM images)").context("gc")?;
        let rows = stmt.query_map([], |r| r.get(0)).context("gc")?;
        rows.collect::<Result<_, _>>().context("gc")?
    };
    let mut removed = 0;
    for m in all.iter().filter(|m| !in_use.contains(*m)) {
        tx.exec_cached("DELETE FROM manifests WHERE digest = ?1", [m])
            .context("gc: deleting manifest")?;
        removed += 1;
    }
    let mut live_blobs = BTreeSet::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT digest FROM manifests UNION SELECT config_digest FROM manifests
                 UNION SELECT blob_digest FROM manifest_layers",
            )
            .context("gc")?;
        for d in stmt
            .query_map([], |r| r.get::<_, String>(0))
            .context("gc")?
        {
            live_blobs.insert(d.context("gc")?);
        }
    }
    let dead: Vec<SnapshotRow> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, diff_id, state, size FROM snapshots WHERE state = 'committed'
                 AND diff_id NOT IN (SELECT diff_id FROM manifest_layers)",
            )
            .context("gc")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SnapshotRow {
                    id: r.get(0)?,
                    diff_id: r.get(1)?,
                    committed: true,
                    size: r.get::<_, i64>(3)? as u64,
                })
            })
            .context("gc")?;
        rows.collect::<Result<Vec<_>, _>>()
            .context("gc")?
            .into_iter()
            .filter(|s| !keep_snapshots.contains(&s.id))
            .collect()
    };
    for s in &dead {
        tx.exec_cached("DELETE FROM snapshots WHERE id = ?1", [s.id])
            .context("gc: deleting snapshot")?;
    }
    tx.commit().context("committing garbage collection")?;
    Ok(Sweep {
        live_blobs,
        dead_snapshots: dead,
        manifests_removed: removed,
    })
}

/// Whether any manifest references the blob.
pub(crate) fn blob_referenced(db: &Db, digest: &str) -> Result<bool, DbError> {
    let n: i64 = db
        .conn()
        .row_cached(
            "SELECT (SELECT count(*) FROM manifests WHERE digest = ?1 OR config_digest = ?1)
                  + (SELECT count(*) FROM manifest_layers WHERE blob_digest = ?1)",
            [digest],
            |r| r.get(0),
        )
        .context("checking blob references")?;
    Ok(n > 0)
}

/// Whether any manifest references the diff id.
pub(crate) fn diff_id_referenced(db: &Db, diff_id: &str) -> Result<bool, DbError> {
    let n: i64 = db
        .conn()
        .row_cached(
            "SELECT count(*) FROM manifest_layers WHERE diff_id = ?1",
            [diff_id],
            |r| r.get(0),
        )
        .context("checking snapshot references")?;
    Ok(n > 0)
}
