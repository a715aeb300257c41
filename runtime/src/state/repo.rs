//! Queries over clusters, tasks, leases, host ports, RunTask tokens and tags. Every
//! function takes a connection (or transaction) and runs on the database thread.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use rusqlite::{Connection, OptionalExtension, params};

use super::model::{Cluster, Tag, Task, TaskRecord, status};
use crate::db::{CachedStatements, DbError, QueryContext};

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialize")
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, DbError> {
    serde_json::from_str(s).map_err(|e| DbError::Query {
        context: format!("decoding stored {what}"),
        source: rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(e),
        ),
    })
}

// ---------- clusters ----------

/// Inserts a cluster, or reactivates an INACTIVE one of the same name.
pub fn put_cluster(conn: &Connection, c: &Cluster, created_at: f64) -> Result<(), DbError> {
    conn.exec_cached(
        "INSERT INTO clusters (name, arn, status, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(name) DO UPDATE SET status = excluded.status, doc = excluded.doc",
        params![
            c.cluster_name,
            c.cluster_arn,
            c.status,
            created_at,
            to_json(c)
        ],
    )
    .context("storing cluster")?;
    Ok(())
}

/// A cluster by name.
pub fn get_cluster(conn: &Connection, name: &str) -> Result<Option<Cluster>, DbError> {
    let doc: Option<String> = conn
        .row_cached("SELECT doc FROM clusters WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()
        .context("reading cluster")?;
    doc.map(|d| from_json(&d, "cluster")).transpose()
}

/// ACTIVE cluster names after `after`, sorted, at most `limit`.
pub fn list_clusters(
    conn: &Connection,
    after: &str,
    limit: usize,
) -> Result<Vec<Cluster>, DbError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM clusters WHERE status = 'ACTIVE' AND name > ?1 ORDER BY name LIMIT ?2",
        )
        .context("listing clusters")?;
    let docs: Vec<String> = stmt
        .query_map(params![after, limit as i64], |r| r.get(0))
        .context("listing clusters")?
        .collect::<Result<_, _>>()
        .context("listing clusters")?;
    docs.iter().map(|d| from_json(d, "cluster")).collect()
}

/// Running and pending task counts of a cluster (ECS's cluster statistics).
pub fn cluster_task_counts(conn: &Connection, name: &str) -> Result<(i64, i64), DbError> {
    conn.row_cached(
        "SELECT
            coalesce(sum(CASE WHEN last_status = 'RUNNING' THEN 1 ELSE 0 END), 0),
            coalesce(sum(CASE WHEN last_status IN ('PROVISIONING','PENDING','ACTIVATING') THEN 1 ELSE 0 END), 0)
         FROM tasks WHERE cluster = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .context("counting cluster tasks")
}

// ---------- tasks ----------

/// Inserts a new task.
pub fn insert_task(conn: &Connection, t: &TaskRecord) -> Result<(), DbError> {
    conn.exec_cached(
        "INSERT INTO tasks (id, arn, cluster, family, started_by, desired_status, last_status, created_at, stopped_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            t.id,
            t.task.task_arn,
            t.cluster,
            t.family,
            t.task.started_by,
            t.task.desired_status,
            t.task.last_status,
            t.task.created_at,
            t.task.stopped_at,
            to_json(t)
        ],
    )
    .context("inserting task")?;
    Ok(())
}

/// Replaces a task's stored record.
pub fn update_task(conn: &Connection, t: &TaskRecord) -> Result<(), DbError> {
    conn.exec_cached(
        "UPDATE tasks SET desired_status = ?2, last_status = ?3, stopped_at = ?4, started_by = ?5, doc = ?6
         WHERE id = ?1",
        params![
            t.id,
            t.task.desired_status,
            t.task.last_status,
            t.task.stopped_at,
            t.task.started_by,
            to_json(t)
        ],
    )
    .context("updating task")?;
    Ok(())
}

/// A task by id.
pub fn get_task(conn: &Connection, id: &str) -> Result<Option<TaskRecord>, DbError> {
    let doc: Option<String> = conn
        .row_cached("SELECT doc FROM tasks WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .context("reading task")?;
    doc.map(|d| from_json(&d, "task")).transpose()
}

/// A task's cluster and ECS shape, decoding only the record's `task` member (what
/// DescribeTasks shows; the engine's bookkeeping, with the whole task definition, is
/// most of a record and is not parsed).
pub fn get_task_view(conn: &Connection, id: &str) -> Result<Option<(String, Task)>, DbError> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT cluster, json_extract(doc, '$.task') FROM tasks WHERE id = ?1")
        .context("reading task")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .context("reading task")?;
    row.map(|(cluster, task)| Ok((cluster, from_json(&task, "task")?)))
        .transpose()
}

/// Every task that is not STOPPED, oldest first (for reconciliation and admission).
pub fn active_tasks(conn: &Connection) -> Result<Vec<TaskRecord>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT doc FROM tasks WHERE last_status != ?1 ORDER BY created_at, id")
        .context("listing active tasks")?;
    let docs: Vec<String> = stmt
        .query_map([status::STOPPED], |r| r.get(0))
        .context("listing active tasks")?
        .collect::<Result<_, _>>()
        .context("listing active tasks")?;
    docs.iter().map(|d| from_json(d, "task")).collect()
}

/// Filters for ListTasks.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub cluster: String,
    pub family: Option<String>,
    pub started_by: Option<String>,
    /// The task's group (`service:NAME` for a service's tasks).
    pub group: Option<String>,
    /// `RUNNING` (anything not stopped, as ECS), `PENDING` or `STOPPED`.
    pub desired_status: Option<String>,
}

/// Task ARNs matching `f`, newest first, after the `(created_at, id)` cursor.
pub fn list_task_arns(
    conn: &Connection,
    f: &TaskFilter,
    after: Option<(f64, String)>,
    limit: usize,
) -> Result<Vec<(f64, String, String)>, DbError> {
    let (after_t, after_id) = after.unwrap_or((f64::MAX, String::new()));
    let mut stmt = conn
        .prepare_cached(
            "SELECT created_at, id, arn FROM tasks
             WHERE cluster = ?1
               AND (?2 IS NULL OR family = ?2)
               AND (?3 IS NULL OR started_by = ?3)
               AND (?4 IS NULL OR desired_status = ?4)
               AND (created_at < ?5 OR (created_at = ?5 AND id < ?6) OR ?6 = '')
               AND (?8 IS NULL OR json_extract(doc, '$.task.group') = ?8)
             ORDER BY created_at DESC, id DESC
             LIMIT ?7",
        )
        .context("listing tasks")?;
    let rows = stmt
        .query_map(
            params![
                f.cluster,
                f.family,
                f.started_by,
                f.desired_status,
                after_t,
                after_id,
                limit as i64,
                f.group
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .context("listing tasks")?
        .collect::<Result<_, _>>()
        .context("listing tasks")?;
    Ok(rows)
}

/// Forgets STOPPED tasks that stopped before `before` (ECS shows stopped tasks for
/// about an hour). Returns their ids, whose leftovers on disk the caller removes.
pub fn prune_stopped(conn: &Connection, before: f64) -> Result<Vec<String>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, arn FROM tasks WHERE last_status = ?1 AND stopped_at < ?2")
        .context("finding old tasks")?;
    let rows: Vec<(String, String)> = stmt
        .query_map(params![status::STOPPED, before], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .context("finding old tasks")?
        .collect::<Result<_, _>>()
        .context("finding old tasks")?;
    for (id, arn) in &rows {
        conn.exec_cached("DELETE FROM tasks WHERE id = ?1", [id])
            .context("deleting old task")?;
        conn.exec_cached("DELETE FROM resource_tags WHERE resource_arn = ?1", [arn])
            .context("deleting old task tags")?;
    }
    Ok(rows.into_iter().map(|(id, _)| id).collect())
}

/// The (task id, container) whose awslogs stream is `group`/`stream`.
pub fn find_log_stream(
    conn: &Connection,
    group: &str,
    stream: &str,
) -> Result<Option<(String, String)>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT doc FROM tasks ORDER BY created_at DESC")
        .context("reading tasks")?;
    let docs: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .context("reading tasks")?
        .collect::<Result<_, _>>()
        .context("reading tasks")?;
    for d in docs {
        let t: TaskRecord = from_json(&d, "task")?;
        for (container, name) in &t.runtime.log_names {
            if name.group == group && name.stream == stream {
                return Ok(Some((t.id.clone(), container.clone())));
            }
        }
    }
    Ok(None)
}

// ---------- IP leases ----------

/// Leases the first free address of `candidates` to `task_id`, or returns the one it
/// already holds. `None` when every candidate is taken.
pub fn lease_address(
    conn: &Connection,
    task_id: &str,
    candidates: impl Iterator<Item = Ipv4Addr>,
    now: f64,
) -> Result<Option<Ipv4Addr>, DbError> {
    if let Some(a) = task_addresses(conn, task_id)?.into_iter().next() {
        return Ok(Some(a));
    }
    let used = leased_addresses(conn)?;
    for c in candidates {
        if !used.contains(&c) {
            conn.exec_cached(
                "INSERT INTO ip_leases (address, task_id, allocated_at) VALUES (?1, ?2, ?3)",
                params![c.to_string(), task_id, now],
            )
            .context("leasing address")?;
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Records that `task_id` holds `address` (the caller picked a free one in the same
/// transaction).
pub fn insert_lease(
    conn: &Connection,
    task_id: &str,
    address: Ipv4Addr,
    now: f64,
) -> Result<(), DbError> {
    conn.exec_cached(
        "INSERT INTO ip_leases (address, task_id, allocated_at) VALUES (?1, ?2, ?3)",
        params![address.to_string(), task_id, now],
    )
    .context("leasing address")?;
    Ok(())
}

/// Every leased address.
pub fn leased_addresses(conn: &Connection) -> Result<BTreeSet<Ipv4Addr>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT address FROM ip_leases")
        .context("reading leases")?;
    let v: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .context("reading leases")?
        .collect::<Result<_, _>>()
        .context("reading leases")?;
    Ok(v.iter().filter_map(|a| a.parse().ok()).collect())
}

/// The addresses a task holds.
pub fn task_addresses(conn: &Connection, task_id: &str) -> Result<Vec<Ipv4Addr>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT address FROM ip_leases WHERE task_id = ?1")
        .context("reading leases")?;
    let v: Vec<String> = stmt
        .query_map([task_id], |r| r.get(0))
        .context("reading leases")?
        .collect::<Result<_, _>>()
        .context("reading leases")?;
    Ok(v.iter().filter_map(|a| a.parse().ok()).collect())
}

/// Releases everything a task holds: addresses and host ports.
pub fn release_task_resources(conn: &Connection, task_id: &str) -> Result<(), DbError> {
    conn.exec_cached("DELETE FROM ip_leases WHERE task_id = ?1", [task_id])
        .context("releasing leases")?;
    conn.exec_cached("DELETE FROM host_ports WHERE task_id = ?1", [task_id])
        .context("releasing host ports")?;
    Ok(())
}

/// Releases some of a task's recorded host ports (dynamic ports it chose and is about
/// to choose again).
pub fn release_host_ports(
    conn: &Connection,
    task_id: &str,
    ports: &[HostPort],
) -> Result<(), DbError> {
    for p in ports {
        conn.exec_cached(
            "DELETE FROM host_ports WHERE task_id = ?1 AND bind_ip = ?2 AND protocol = ?3 \
             AND port = ?4",
            params![task_id, p.bind_ip, p.protocol, p.port],
        )
        .context("releasing host ports")?;
    }
    Ok(())
}

/// Ids of tasks holding leases or ports (for reconciliation).
pub fn resource_holders(conn: &Connection) -> Result<BTreeSet<String>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT task_id FROM ip_leases UNION SELECT task_id FROM host_ports")
        .context("reading resource holders")?;
    let v: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .context("reading resource holders")?
        .collect::<Result<_, _>>()
        .context("reading resource holders")?;
    Ok(v.into_iter().collect())
}

// ---------- host ports ----------

/// A published host port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    pub bind_ip: String,
    pub protocol: String,
    pub port: u16,
}

/// Reserves `ports` for `task_id`, all or none. Returns the ports already held by
/// other tasks when any conflicts.
pub fn reserve_host_ports(
    conn: &Connection,
    task_id: &str,
    ports: &[HostPort],
) -> Result<Result<(), Vec<HostPort>>, DbError> {
    let taken = host_ports_in_use(conn)?;
    let conflicts: Vec<HostPort> = ports
        .iter()
        .filter(|p| {
            taken.iter().any(|(t, holder)| {
                holder != task_id
                    && t.protocol == p.protocol
                    && t.port == p.port
                    && (t.bind_ip == p.bind_ip || t.bind_ip == "0.0.0.0" || p.bind_ip == "0.0.0.0")
            })
        })
        .cloned()
        .collect();
    if !conflicts.is_empty() {
        return Ok(Err(conflicts));
    }
    for p in ports {
        conn.exec_cached(
            "INSERT OR REPLACE INTO host_ports (bind_ip, protocol, port, task_id) VALUES (?1, ?2, ?3, ?4)",
            params![p.bind_ip, p.protocol, p.port, task_id],
        )
        .context("reserving host port")?;
    }
    Ok(Ok(()))
}

/// Every reserved host port and its task.
pub fn host_ports_in_use(conn: &Connection) -> Result<Vec<(HostPort, String)>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT bind_ip, protocol, port, task_id FROM host_ports")
        .context("reading host ports")?;
    let v = stmt
        .query_map([], |r| {
            Ok((
                HostPort {
                    bind_ip: r.get(0)?,
                    protocol: r.get(1)?,
                    port: r.get(2)?,
                },
                r.get(3)?,
            ))
        })
        .context("reading host ports")?
        .collect::<Result<_, _>>()
        .context("reading host ports")?;
    Ok(v)
}

// ---------- RunTask client tokens ----------

/// The tasks a `(cluster, clientToken)` produced within `ttl_secs`, with the hash of
/// the request that produced them.
pub fn get_run_token(
    conn: &Connection,
    cluster: &str,
    token: &str,
    now: f64,
    ttl_secs: f64,
) -> Result<Option<(String, Vec<String>)>, DbError> {
    let row: Option<(String, String)> = conn
        .row_cached(
            "SELECT request_hash, task_ids FROM run_tokens WHERE cluster = ?1 AND token = ?2 AND created_at > ?3",
            params![cluster, token, now - ttl_secs],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .context("reading client token")?;
    row.map(|(h, ids)| Ok((h, from_json(&ids, "client token")?)))
        .transpose()
}

/// Records the tasks a `(cluster, clientToken)` produced.
pub fn put_run_token(
    conn: &Connection,
    cluster: &str,
    token: &str,
    request_hash: &str,
    task_ids: &[String],
    now: f64,
) -> Result<(), DbError> {
    conn.exec_cached(
        "INSERT OR REPLACE INTO run_tokens (cluster, token, request_hash, task_ids, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![cluster, token, request_hash, to_json(&task_ids), now],
    )
    .context("storing client token")?;
    Ok(())
}

// ---------- tags ----------

/// Adds or replaces tags on a resource.
pub fn put_tags(conn: &Connection, arn: &str, tags: &[Tag]) -> Result<(), DbError> {
    for t in tags {
        conn.exec_cached(
            "INSERT OR REPLACE INTO resource_tags (resource_arn, key, value) VALUES (?1, ?2, ?3)",
            params![arn, t.key, t.value],
        )
        .context("tagging resource")?;
    }
    Ok(())
}

/// Removes tags by key.
pub fn remove_tags(conn: &Connection, arn: &str, keys: &[String]) -> Result<(), DbError> {
    for k in keys {
        conn.exec_cached(
            "DELETE FROM resource_tags WHERE resource_arn = ?1 AND key = ?2",
            params![arn, k],
        )
        .context("untagging resource")?;
    }
    Ok(())
}

/// A resource's tags, sorted by key.
pub fn tags_of(conn: &Connection, arn: &str) -> Result<Vec<Tag>, DbError> {
    let mut stmt = conn
        .prepare_cached("SELECT key, value FROM resource_tags WHERE resource_arn = ?1 ORDER BY key")
        .context("reading tags")?;
    let v = stmt
        .query_map([arn], |r| {
            Ok(Tag {
                key: r.get(0)?,
                value: r.get(1)?,
            })
        })
        .context("reading tags")?
        .collect::<Result<_, _>>()
        .context("reading tags")?;
    Ok(v)
}
