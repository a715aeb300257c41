//! The `services` table: one JSON document per service.

use rusqlite::{Connection, OptionalExtension, params};

use super::model::ServiceRecord;
use crate::db::{DbError, QueryContext};
use crate::state::model::{Task, status};

fn decode(doc: &str) -> Result<ServiceRecord, DbError> {
    serde_json::from_str(doc).map_err(|e| DbError::Query {
        context: "decoding a stored service".into(),
        source: rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(e),
        ),
    })
}

/// Stores the service (inserting or replacing it).
pub(crate) fn put(conn: &Connection, r: &ServiceRecord, now: f64) -> Result<(), DbError> {
    let s = &r.service;
    let cluster = crate::engine::arn::cluster_name(Some(&s.cluster_arn));
    let doc = serde_json::to_string(r).expect("services serialize");
    conn.prepare_cached(
        "INSERT INTO services (arn, cluster, name, status, doc, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (arn) DO UPDATE SET status = ?4, doc = ?5, created_at = ?6, updated_at = ?7",
    )
    .context("storing service")?
    .execute(params![
        s.service_arn,
        cluster,
        s.service_name,
        s.status,
        doc,
        s.created_at,
        now
    ])
    .context("storing service")?;
    Ok(())
}

/// The service `name` of `cluster`, whatever its status.
pub(crate) fn get(
    conn: &Connection,
    cluster: &str,
    name: &str,
) -> Result<Option<ServiceRecord>, DbError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM services WHERE cluster = ?1 AND name = ?2")
        .context("reading service")?
        .query_row([cluster, name], |r| r.get(0))
        .optional()
        .context("reading service")?;
    doc.as_deref().map(decode).transpose()
}

/// The services of `cluster` (every cluster when `None`) that are not INACTIVE (ACTIVE
/// or DRAINING), by name.
pub(crate) fn list_live(
    conn: &Connection,
    cluster: Option<&str>,
) -> Result<Vec<ServiceRecord>, DbError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM services WHERE (?1 IS NULL OR cluster = ?1) AND status != 'INACTIVE'
             ORDER BY cluster, name",
        )
        .context("listing services")?;
    let docs: Vec<String> = stmt
        .query_map(params![cluster], |r| r.get(0))
        .context("listing services")?
        .collect::<Result<_, _>>()
        .context("listing services")?;
    docs.iter().map(|doc| decode(doc)).collect()
}

/// How many services of `cluster` are not INACTIVE.
pub(crate) fn count_live(conn: &Connection, cluster: &str) -> Result<usize, DbError> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM services WHERE cluster = ?1 AND status != 'INACTIVE'")
        .context("counting services")?
        .query_row([cluster], |r| r.get(0))
        .context("counting services")?;
    Ok(n as usize)
}

/// Removes INACTIVE services deleted before `before` (ECS forgets them after a while).
pub(crate) fn prune_inactive(conn: &Connection, before: f64) -> Result<usize, DbError> {
    conn.execute(
        "DELETE FROM services WHERE status = 'INACTIVE' AND updated_at < ?1",
        [before],
    )
    .context("pruning services")
}

/// Tasks of `cluster` started by one of `started_by` (deployment ids) that are not
/// STOPPED, with their ids: tasks the scheduler started but did not get to record
/// (a daemon that died in between) are found this way.
pub(crate) fn live_tasks_started_by(
    conn: &Connection,
    cluster: &str,
    started_by: &[String],
) -> Result<Vec<(String, Task)>, DbError> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, json_extract(doc, '$.task') FROM tasks
             WHERE cluster = ?1 AND started_by = ?2 AND last_status != ?3",
        )
        .context("listing a service's tasks")?;
    for by in started_by {
        let rows: Vec<(String, String)> = stmt
            .query_map(params![cluster, by, status::STOPPED], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .context("listing a service's tasks")?
            .collect::<Result<_, _>>()
            .context("listing a service's tasks")?;
        for (id, doc) in rows {
            let task: Task = serde_json::from_str(&doc).map_err(|e| DbError::Query {
                context: "decoding a stored task".into(),
                source: rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                ),
            })?;
            out.push((id, task));
        }
    }
    Ok(out)
}
