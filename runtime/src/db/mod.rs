//! berth's SQLite database: opening, pragmas and versioned migrations.
//!
//! One database file (`<data-root>/berth.db`) holds images, task definitions, tasks,
//! containers, clusters, tags and network leases. The schema version lives in
//! `PRAGMA user_version`; [`MIGRATIONS`](migrations::MIGRATIONS) lists every step
//! from an empty file to the current schema, each applied in its own transaction.
//! A database written by a newer berth is refused rather than guessed at.
//!
//! The daemon keeps the [`Db`] on one dedicated thread; nothing here is `async`.

mod handle;
mod migrations;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::ErrorClass;

pub use handle::DbHandle;
pub use migrations::{LATEST_VERSION, MIGRATIONS, Migration};

/// Errors opening or migrating the database, or running a query.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("failed to open database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this berth understands \
         ({known}); run a newer berth or restore a backup"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("database migration {version} ({name}) failed")]
    Migration {
        version: u32,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database query failed: {context}")]
    Query {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
}

impl DbError {
    /// Every database failure is internal: callers validate input before it gets here.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Internal
    }
}

/// Extension to attach context to rusqlite results.
pub trait QueryContext<T> {
    /// Wraps a rusqlite error as [`DbError::Query`] with the given context.
    fn context(self, context: impl Into<String>) -> Result<T, DbError>;
}

impl<T> QueryContext<T> for Result<T, rusqlite::Error> {
    fn context(self, context: impl Into<String>) -> Result<T, DbError> {
        self.map_err(|source| DbError::Query {
            context: context.into(),
            source,
        })
    }
}

/// One statement through the connection's statement cache: its SQL is parsed once per
/// connection instead of on every call. Parsing was most of the cost of the short reads
/// and writes on a task's path (a task's record read and replaced, its leases released).
pub trait CachedStatements {
    /// [`Connection::execute`] through the cache.
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// [`Connection::query_row`] through the cache.
    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedStatements for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// An open, migrated database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and migrates it to
    /// [`LATEST_VERSION`].
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = Connection::open(path).map_err(|source| DbError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut db = Db {
            conn,
            path: path.to_owned(),
        };
        db.configure()?;
        db.migrate_to(LATEST_VERSION)?;
        Ok(db)
    }

    /// An in-memory database at the latest schema, for tests.
    pub fn open_in_memory() -> Result<Db, DbError> {
        let conn = Connection::open_in_memory().map_err(|source| DbError::Open {
            path: ":memory:".into(),
            source,
        })?;
        let mut db = Db {
            conn,
            path: ":memory:".into(),
        };
        db.configure()?;
        db.migrate_to(LATEST_VERSION)?;
        Ok(db)
    }

    fn configure(&self) -> Result<(), DbError> {
        // WAL: readers never block the writer, and a crash of the process loses no
        // committed transaction. synchronous=NORMAL in WAL mode can lose the last
        // commits on *power loss* only; after a power loss every task is gone anyway
        // and reconciliation on start cleans what the lost rows described.
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;",
            )
            .context("setting database pragmas")?;
        self.conn
            .busy_timeout(Duration::from_secs(10))
            .context("setting busy timeout")?;
        // Room for every statement berth runs (rusqlite keeps 16 by default): the cache
        // would otherwise evict the task path's statements whenever a listing ran.
        self.conn.set_prepared_statement_cache_capacity(256);
        Ok(())
    }

    /// The schema version recorded in the file.
    pub fn version(&self) -> Result<u32, DbError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))
            .context("reading schema version")
    }

    /// Applies every migration above the current version up to `target`.
    pub(crate) fn migrate_to(&mut self, target: u32) -> Result<(), DbError> {
        let current = self.version()?;
        if current > LATEST_VERSION {
            return Err(DbError::TooNew {
                path: self.path.clone(),
                found: current,
                known: LATEST_VERSION,
            });
        }
        for m in MIGRATIONS
            .iter()
            .filter(|m| m.version > current && m.version <= target)
        {
            let tx = self
                .conn
                .transaction()
                .map_err(|source| DbError::Migration {
                    version: m.version,
                    name: m.name,
                    source,
                })?;
            tx.execute_batch(m.sql)
                .and_then(|()| tx.pragma_update(None, "user_version", m.version))
                .and_then(|()| tx.commit())
                .map_err(|source| DbError::Migration {
                    version: m.version,
                    name: m.name,
                    source,
                })?;
            tracing::debug!(
                version = m.version,
                name = m.name,
                "applied database migration"
            );
        }
        Ok(())
    }

    /// The connection, for the repository modules.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably (transactions need it).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_at(path: &Path, target: u32) -> Db {
        let conn = Connection::open(path).unwrap();
        let mut db = Db {
            conn,
            path: path.to_owned(),
        };
        db.configure().unwrap();
        db.migrate_to(target).unwrap();
        db
    }

    fn assert_healthy(db: &Db) {
        let ok: String = db
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let violations: i64 = db
            .conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(violations, 0);
    }

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                m.version as usize,
                i + 1,
                "migration {} is out of order",
                m.name
            );
        }
        assert_eq!(LATEST_VERSION as usize, MIGRATIONS.len());
    }

    #[test]
    fn fresh_database_reaches_latest_version_and_reopening_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let db = Db::open(&path).unwrap();
        assert_eq!(db.version().unwrap(), LATEST_VERSION);
        assert_healthy(&db);
        drop(db);
        let db = Db::open(&path).unwrap();
        assert_eq!(db.version().unwrap(), LATEST_VERSION);
    }

    /// Every migration applies on top of a database left at the previous version,
    /// with that version's fixture rows in it, and the rows survive.
    #[test]
    fn each_migration_applies_on_top_of_the_previous_version_and_keeps_data() {
        for m in MIGRATIONS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("berth.db");
            let db = open_at(&path, m.version - 1);
            for (table, fixture) in MIGRATIONS
                .iter()
                .filter(|p| p.version < m.version)
                .flat_map(|p| p.fixtures.iter())
            {
                db.conn.execute_batch(fixture).unwrap_or_else(|e| {
                    panic!(
                        "fixture for {table} at version {} failed: {e}",
                        m.version - 1
                    )
                });
            }
            let counts_before = count_fixture_tables(&db, m.version);
            drop(db);
            let db = Db::open(&path).unwrap();
            assert_eq!(db.version().unwrap(), LATEST_VERSION);
            assert_healthy(&db);
            assert_eq!(
                counts_before,
                count_fixture_tables(&db, m.version),
                "migration {} lost rows",
                m.name
            );
        }
    }

    fn count_fixture_tables(db: &Db, below: u32) -> Vec<(String, i64)> {
        MIGRATIONS
            .iter()
            .filter(|p| p.version < below)
            .flat_map(|p| p.fixtures.iter())
            .map(|(table, _)| {
                let n: i64 = db
                    .conn
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                    .unwrap();
                (table.to_string(), n)
            })
            .collect()
    }

    #[test]
    fn a_database_from_a_newer_berth_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        drop(Db::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", LATEST_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Db::open(&path).unwrap_err();
        assert!(matches!(err, DbError::TooNew { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("newer than this berth understands")
        );
    }
}
