//! The task definition registry in SQLite: families with revisions, their status
//! lifecycle (ACTIVE → INACTIVE → DELETE_IN_PROGRESS → gone), listing with paging,
//! and tags.
//!
//! Every function takes the connection (reads) or a transaction (writes) and is meant
//! to run on the daemon's database thread inside [`crate::db::DbHandle::call`]; a
//! write function does all its statements in the caller's transaction, so the caller
//! decides what commits together.

mod paging;
mod reference;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use super::EcsException;
use super::model::{
    SortOrder, Tag, TaskDefinition, TaskDefinitionFamilyStatus, TaskDefinitionStatus,
};
use super::output::{self, RevisionMeta};
use super::validate::{ValidatedTaskDefinition, ValidationError, validate_tags};
use crate::db::{CachedStatements, Db, DbError, QueryContext};
use crate::error::ErrorClass;

pub use paging::{MAX_RESULTS, Page};
use reference::RefError;
pub use reference::{ArnScope, TaskDefinitionRef};

/// Errors of the registry operations.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Nothing matches (ECS: "Unable to describe task definition.").
    #[error("unable to describe task definition {reference}: it does not exist")]
    NotFound { reference: String },
    /// Not `family`, `family:revision` or a task definition ARN.
    #[error(
        "task definition {reference:?} is invalid: use a family, family:revision or a full \
         task definition ARN"
    )]
    InvalidReference { reference: String },
    /// The operation needs a revision (Deregister, Delete, tags).
    #[error("task definition {reference:?} must name a revision (family:revision or a full ARN)")]
    RevisionRequired { reference: String },
    /// RunTask/StartTask/CreateService on a revision that is not ACTIVE.
    #[error("task definition {arn} is {status}; only ACTIVE task definitions can start new tasks")]
    NotActive {
        arn: String,
        status: TaskDefinitionStatus,
    },
    /// A `nextToken` this berth did not issue for the same filter.
    #[error("nextToken is invalid: pass the token of the previous page with the same filters")]
    InvalidToken,
    /// `maxResults` outside 1–100.
    #[error("maxResults ({0}) must be between 1 and 100")]
    InvalidMaxResults(i32),
    /// DeleteTaskDefinitions with no or too many identifiers.
    #[error("taskDefinitions must name between 1 and 10 task definitions (it names {0})")]
    DeleteCount(usize),
    /// Invalid tags.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A stored definition no longer parses (a bug, or a hand-edited database).
    #[error("stored task definition {family}:{revision} cannot be read")]
    Corrupt {
        family: String,
        revision: u32,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl RegistryError {
    /// The error's class, for logs and the exhaustive API mapping.
    pub fn class(&self) -> ErrorClass {
        match self {
            RegistryError::NotFound { .. } => ErrorClass::NotFound,
            RegistryError::InvalidReference { .. }
            | RegistryError::RevisionRequired { .. }
            | RegistryError::NotActive { .. }
            | RegistryError::InvalidToken
            | RegistryError::InvalidMaxResults(_)
            | RegistryError::DeleteCount(_) => ErrorClass::Invalid,
            RegistryError::Invalid(e) => e.class(),
            RegistryError::Corrupt { .. } | RegistryError::Db(_) => ErrorClass::Internal,
        }
    }

    /// The ECS exception the API returns (ECS has no TaskDefinitionNotFoundException:
    /// a missing task definition is a `ClientException`).
    pub fn ecs_exception(&self) -> EcsException {
        match self {
            RegistryError::NotFound { .. }
            | RegistryError::RevisionRequired { .. }
            | RegistryError::NotActive { .. } => EcsException::ClientException,
            RegistryError::InvalidReference { .. }
            | RegistryError::InvalidToken
            | RegistryError::InvalidMaxResults(_)
            | RegistryError::DeleteCount(_) => EcsException::InvalidParameterException,
            RegistryError::Invalid(e) => e.ecs_exception(),
            RegistryError::Corrupt { .. } | RegistryError::Db(_) => EcsException::ServerException,
        }
    }
}

/// One stored revision.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredTaskDefinition {
    pub arn: String,
    pub family: String,
    pub revision: u32,
    pub status: TaskDefinitionStatus,
    pub registered_at: SystemTime,
    pub registered_by: Option<String>,
    pub deregistered_at: Option<SystemTime>,
    pub delete_requested_at: Option<SystemTime>,
    /// The definition as registered (task cpu/memory normalized), with its warnings.
    pub definition: ValidatedTaskDefinition,
}

impl RegisteredTaskDefinition {
    /// ECS's `TaskDefinition` output object (see [`output`]).
    pub fn to_ecs_json(&self) -> serde_json::Value {
        output::describe_json(self.definition.definition(), &self.meta())
    }

    /// The registry facts, for [`output::describe_json`].
    pub fn meta(&self) -> RevisionMeta<'_> {
        RevisionMeta {
            arn: &self.arn,
            revision: self.revision,
            status: self.status,
            registered_at: self.registered_at,
            registered_by: self.registered_by.as_deref(),
            deregistered_at: self.deregistered_at,
            delete_requested_at: self.delete_requested_at,
        }
    }
}

/// One entry of DeleteTaskDefinitions' `failures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// DeleteTaskDefinitions' result: what moved to (or already was) DELETE_IN_PROGRESS,
/// and a failure per identifier that could not be deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteOutcome {
    pub task_definitions: Vec<RegisteredTaskDefinition>,
    pub failures: Vec<Failure>,
}

/// `ListTaskDefinitions` request members (deserializable from the API body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTaskDefinitions {
    /// Despite the name, ECS matches the *full* family name.
    pub family_prefix: Option<String>,
    /// Default ACTIVE.
    pub status: Option<TaskDefinitionStatus>,
    /// Default ASC (family, then revision).
    pub sort: Option<SortOrder>,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
}

/// `ListTaskDefinitionFamilies` request members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTaskDefinitionFamilies {
    /// A real prefix of the family name.
    pub family_prefix: Option<String>,
    /// Default ALL: families with any revision left (ACTIVE: with an ACTIVE revision;
    /// INACTIVE: with revisions but none ACTIVE).
    pub status: Option<TaskDefinitionFamilyStatus>,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
}

fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

fn resolve(scope: &ArnScope, reference: &str) -> Result<TaskDefinitionRef, RegistryError> {
    reference::parse(scope, reference).map_err(|e| match e {
        RefError::Malformed => RegistryError::InvalidReference {
            reference: reference.to_owned(),
        },
        RefError::ElsewhereArn => RegistryError::NotFound {
            reference: reference.to_owned(),
        },
    })
}

fn resolve_revision(scope: &ArnScope, reference: &str) -> Result<(String, u32), RegistryError> {
    match resolve(scope, reference)? {
        TaskDefinitionRef::Revision { family, revision } => Ok((family, revision)),
        TaskDefinitionRef::Family(_) => Err(RegistryError::RevisionRequired {
            reference: reference.to_owned(),
        }),
    }
}

const COLUMNS: &str = "family, revision, status, definition, registered_at_ms, registered_by, \
                       deregistered_at_ms, delete_requested_at_ms";

/// A row as read, before its JSON is parsed.
struct RawRow {
    family: String,
    revision: u32,
    status: String,
    definition: String,
    registered_at_ms: i64,
    registered_by: Option<String>,
    deregistered_at_ms: Option<i64>,
    delete_requested_at_ms: Option<i64>,
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        family: r.get(0)?,
        revision: r.get(1)?,
        status: r.get(2)?,
        definition: r.get(3)?,
        registered_at_ms: r.get(4)?,
        registered_by: r.get(5)?,
        deregistered_at_ms: r.get(6)?,
        delete_requested_at_ms: r.get(7)?,
    })
}

fn load(scope: &ArnScope, raw: RawRow) -> Result<RegisteredTaskDefinition, RegistryError> {
    let corrupt = |source| RegistryError::Corrupt {
        family: raw.family.clone(),
        revision: raw.revision,
        source,
    };
    let def: TaskDefinition = serde_json::from_str(&raw.definition).map_err(corrupt)?;
    let status = raw.status.parse().map_err(|_| {
        corrupt(serde::de::Error::custom(format!(
            "unknown status {:?}",
            raw.status
        )))
    })?;
    Ok(RegisteredTaskDefinition {
        arn: scope.task_definition_arn(&raw.family, raw.revision),
        family: raw.family,
        revision: raw.revision,
        status,
        registered_at: from_ms(raw.registered_at_ms),
        registered_by: raw.registered_by,
        deregistered_at: raw.deregistered_at_ms.map(from_ms),
        delete_requested_at: raw.delete_requested_at_ms.map(from_ms),
        definition: ValidatedTaskDefinition::from_stored(def),
    })
}

fn get_revision(
    conn: &Connection,
    scope: &ArnScope,
    family: &str,
    revision: u32,
) -> Result<Option<RegisteredTaskDefinition>, RegistryError> {
    let raw = conn
        .row_cached(
            &format!("SELECT {COLUMNS} FROM task_definitions WHERE family = ?1 AND revision = ?2"),
            params![family, revision],
            raw_row,
        )
        .optional()
        .context("reading a task definition")?;
    raw.map(|r| load(scope, r)).transpose()
}

/// Runs the registry operation `op` in one transaction, committed when it succeeds.
pub fn in_transaction<T>(
    db: &mut Db,
    what: &str,
    op: impl FnOnce(&Transaction<'_>) -> Result<T, RegistryError>,
) -> Result<T, RegistryError> {
    let tx = db.conn_mut().transaction().context(what)?;
    let out = op(&tx)?;
    tx.commit().context(what)?;
    Ok(out)
}

/// Stores `def` as the next revision of its family (revisions are never reused), with
/// status ACTIVE and the definition's register-time tags.
pub fn register(
    tx: &Transaction<'_>,
    scope: &ArnScope,
    def: ValidatedTaskDefinition,
    registered_by: Option<&str>,
    now: SystemTime,
) -> Result<(RegisteredTaskDefinition, Vec<Tag>), RegistryError> {
    let family = def.family().to_owned();
    let revision: u32 = tx
        .row_cached(
            "INSERT INTO task_definition_families (name, last_revision) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET last_revision = last_revision + 1
             RETURNING last_revision",
            [&family],
            |r| r.get(0),
        )
        .context("allocating a task definition revision")?;
    let json =
        serde_json::to_string(def.definition()).map_err(|source| RegistryError::Corrupt {
            family: family.clone(),
            revision,
            source,
        })?;
    tx.exec_cached(
        "INSERT INTO task_definitions (family, revision, status, definition, registered_at_ms, registered_by)
         VALUES (?1, ?2, 'ACTIVE', ?3, ?4, ?5)",
        params![family, revision, json, to_ms(now), registered_by],
    )
    .context("storing a task definition")?;
    let tags = def.tags().to_vec();
    put_tags(tx, &family, revision, &tags)?;
    let (definition, _) = def.into_parts();
    let stored = RegisteredTaskDefinition {
        arn: scope.task_definition_arn(&family, revision),
        family,
        revision,
        status: TaskDefinitionStatus::Active,
        registered_at: from_ms(to_ms(now)),
        registered_by: registered_by.map(str::to_owned),
        deregistered_at: None,
        delete_requested_at: None,
        definition: ValidatedTaskDefinition::from_stored(definition),
    };
    Ok((stored, tags))
}

/// DescribeTaskDefinition: `family` (its latest ACTIVE revision), `family:revision` or
/// a full ARN (any status until the revision is finally deleted).
pub fn describe(
    conn: &Connection,
    scope: &ArnScope,
    reference: &str,
) -> Result<RegisteredTaskDefinition, RegistryError> {
    let found = match resolve(scope, reference)? {
        TaskDefinitionRef::Revision { family, revision } => {
            get_revision(conn, scope, &family, revision)?
        }
        TaskDefinitionRef::Family(family) => {
            let raw = conn
                .row_cached(
                    &format!(
                        "SELECT {COLUMNS} FROM task_definitions WHERE family = ?1 AND status = 'ACTIVE'
                         ORDER BY revision DESC LIMIT 1"
                    ),
                    [&family],
                    raw_row,
                )
                .optional()
                .context("reading the latest task definition revision")?;
            raw.map(|r| load(scope, r)).transpose()?
        }
    };
    found.ok_or_else(|| RegistryError::NotFound {
        reference: reference.to_owned(),
    })
}

/// The definition RunTask/StartTask/CreateService may start: as [`describe`], but the
/// revision must be ACTIVE.
pub fn resolve_runnable(
    conn: &Connection,
    scope: &ArnScope,
    reference: &str,
) -> Result<RegisteredTaskDefinition, RegistryError> {
    resolve_with_status(conn, scope, reference, &[TaskDefinitionStatus::Active])
}

/// The revision a service's deployment starts tasks of: ACTIVE, or INACTIVE when it
/// was deregistered after the service deployed it (ECS keeps such a service running
/// and scaling); not one being deleted.
pub fn resolve_for_service(
    conn: &Connection,
    scope: &ArnScope,
    reference: &str,
) -> Result<RegisteredTaskDefinition, RegistryError> {
    let startable = [TaskDefinitionStatus::Active, TaskDefinitionStatus::Inactive];
    resolve_with_status(conn, scope, reference, &startable)
}

/// As [`describe`], refusing a revision whose status is not one of `allowed`.
fn resolve_with_status(
    conn: &Connection,
    scope: &ArnScope,
    reference: &str,
    allowed: &[TaskDefinitionStatus],
) -> Result<RegisteredTaskDefinition, RegistryError> {
    let td = describe(conn, scope, reference)?;
    if allowed.contains(&td.status) {
        return Ok(td);
    }
    Err(RegistryError::NotActive {
        arn: td.arn,
        status: td.status,
    })
}

/// DeregisterTaskDefinition: ACTIVE → INACTIVE (`deregisteredAt` = now). A revision
/// that is already INACTIVE or being deleted is returned unchanged.
pub fn deregister(
    tx: &Transaction<'_>,
    scope: &ArnScope,
    reference: &str,
    now: SystemTime,
) -> Result<RegisteredTaskDefinition, RegistryError> {
    let (family, revision) = resolve_revision(scope, reference)?;
    tx.exec_cached(
        "UPDATE task_definitions SET status = 'INACTIVE', deregistered_at_ms = ?3
         WHERE family = ?1 AND revision = ?2 AND status = 'ACTIVE'",
        params![family, revision, to_ms(now)],
    )
    .context("deregistering a task definition")?;
    get_revision(tx, scope, &family, revision)?.ok_or_else(|| RegistryError::NotFound {
        reference: reference.to_owned(),
    })
}

/// DeleteTaskDefinitions: each INACTIVE revision → DELETE_IN_PROGRESS
/// (`deleteRequestedAt` = now). Per-identifier problems are failures, as ECS reports
/// them, not errors: `MISSING` (no such revision), `ACTIVE` (deregister it first),
/// `INVALID_ARGUMENT` (not an identifier, or no revision).
pub fn delete(
    tx: &Transaction<'_>,
    scope: &ArnScope,
    references: &[String],
    now: SystemTime,
) -> Result<DeleteOutcome, RegistryError> {
    if references.is_empty() || references.len() > 10 {
        return Err(RegistryError::DeleteCount(references.len()));
    }
    let mut out = DeleteOutcome {
        task_definitions: Vec::new(),
        failures: Vec::new(),
    };
    let mut done: Vec<(String, u32)> = Vec::new();
    for reference in references {
        let fail = |reason: &str, detail: String| Failure {
            arn: Some(reference.clone()),
            reason: reason.to_owned(),
            detail: Some(detail),
        };
        let (family, revision) = match resolve_revision(scope, reference) {
            Ok(r) => r,
            Err(RegistryError::NotFound { .. }) => {
                out.failures
                    .push(fail("MISSING", "the task definition does not exist".into()));
                continue;
            }
            Err(
                e @ (RegistryError::RevisionRequired { .. }
                | RegistryError::InvalidReference { .. }),
            ) => {
                out.failures.push(fail("INVALID_ARGUMENT", e.to_string()));
                continue;
            }
            Err(e) => return Err(e),
        };
        if done.contains(&(family.clone(), revision)) {
            continue;
        }
        let Some(current) = get_revision(tx, scope, &family, revision)? else {
            out.failures
                .push(fail("MISSING", "the task definition does not exist".into()));
            continue;
        };
        if current.status == TaskDefinitionStatus::Active {
            out.failures.push(fail(
                "ACTIVE",
                format!("task definition {family}:{revision} is ACTIVE; deregister it before deleting it"),
            ));
            continue;
        }
        tx.exec_cached(
            "UPDATE task_definitions SET status = 'DELETE_IN_PROGRESS', delete_requested_at_ms = ?3
             WHERE family = ?1 AND revision = ?2 AND status = 'INACTIVE'",
            params![family, revision, to_ms(now)],
        )
        .context("deleting a task definition")?;
        let updated =
            get_revision(tx, scope, &family, revision)?.ok_or_else(|| RegistryError::NotFound {
                reference: reference.clone(),
            })?;
        out.task_definitions.push(updated);
        done.push((family, revision));
    }
    Ok(out)
}

/// Removes DELETE_IN_PROGRESS revisions that no task or service uses any more
/// (`in_use(family, revision)`), as ECS does once their last task stops. The family
/// and its revision counter stay. Returns the revisions removed.
pub fn finish_deletions(
    tx: &Transaction<'_>,
    in_use: &dyn Fn(&str, u32) -> bool,
) -> Result<Vec<(String, u32)>, RegistryError> {
    let pending: Vec<(String, u32)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT family, revision FROM task_definitions WHERE status = 'DELETE_IN_PROGRESS'",
            )
            .context("listing task definitions being deleted")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .context("listing task definitions being deleted")?;
        rows.collect::<Result<_, _>>()
            .context("listing task definitions being deleted")?
    };
    let mut removed = Vec::new();
    for (family, revision) in pending {
        if in_use(&family, revision) {
            continue;
        }
        tx.exec_cached(
            "DELETE FROM task_definitions WHERE family = ?1 AND revision = ?2",
            params![family, revision],
        )
        .context("removing a deleted task definition")?;
        removed.push((family, revision));
    }
    Ok(removed)
}

/// ListTaskDefinitions: ARNs, sorted by family then revision.
pub fn list_task_definitions(
    conn: &Connection,
    scope: &ArnScope,
    req: &ListTaskDefinitions,
) -> Result<Page<String>, RegistryError> {
    let limit = paging::page_size(req.max_results).ok_or(RegistryError::InvalidMaxResults(
        req.max_results.unwrap_or(0),
    ))?;
    let status = req.status.unwrap_or(TaskDefinitionStatus::Active);
    let sort = req.sort.unwrap_or(SortOrder::Asc);
    let family = req.family_prefix.as_deref().filter(|f| !f.is_empty());
    let filter = format!("defs|{status}|{sort}|{}", family.unwrap_or_default());
    let after: Option<(String, u32)> = match &req.next_token {
        Some(t) => Some(paging::decode(t, &filter).ok_or(RegistryError::InvalidToken)?),
        None => None,
    };
    let (cmp, order) = match sort {
        SortOrder::Asc => (">", "ASC"),
        SortOrder::Desc => ("<", "DESC"),
    };
    let sql = format!(
        "SELECT family, revision FROM task_definitions
         WHERE status = ?1 AND (?2 IS NULL OR family = ?2)
           AND (?3 IS NULL OR (family, revision) {cmp} (?3, ?4))
         ORDER BY family {order}, revision {order} LIMIT ?5"
    );
    let (after_family, after_rev) = after.map_or((None, None), |(f, r)| (Some(f), Some(r)));
    let mut stmt = conn.prepare(&sql).context("listing task definitions")?;
    let rows: Vec<(String, u32)> = stmt
        .query_map(
            params![
                status.as_str(),
                family,
                after_family,
                after_rev,
                (limit + 1) as i64
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .context("listing task definitions")?
        .collect::<Result<_, _>>()
        .context("listing task definitions")?;
    Ok(page(rows, limit, &filter, |(f, r)| {
        scope.task_definition_arn(f, *r)
    }))
}

/// ListTaskDefinitionFamilies: family names, sorted.
pub fn list_families(
    conn: &Connection,
    req: &ListTaskDefinitionFamilies,
) -> Result<Page<String>, RegistryError> {
    let limit = paging::page_size(req.max_results).ok_or(RegistryError::InvalidMaxResults(
        req.max_results.unwrap_or(0),
    ))?;
    let status = req.status.unwrap_or(TaskDefinitionFamilyStatus::All);
    let prefix = req.family_prefix.as_deref().filter(|p| !p.is_empty());
    let filter = format!("families|{status}|{}", prefix.unwrap_or_default());
    let after: Option<String> = match &req.next_token {
        Some(t) => Some(paging::decode(t, &filter).ok_or(RegistryError::InvalidToken)?),
        None => None,
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT f.name FROM task_definition_families f
             WHERE (?1 IS NULL OR substr(f.name, 1, length(?1)) = ?1)
               AND (?2 IS NULL OR f.name > ?2)
               AND EXISTS (SELECT 1 FROM task_definitions t WHERE t.family = f.name)
               AND CASE ?3
                   WHEN 'ACTIVE' THEN EXISTS (SELECT 1 FROM task_definitions t
                                              WHERE t.family = f.name AND t.status = 'ACTIVE')
                   WHEN 'INACTIVE' THEN NOT EXISTS (SELECT 1 FROM task_definitions t
                                                   WHERE t.family = f.name AND t.status = 'ACTIVE')
                   ELSE 1 END
             ORDER BY f.name LIMIT ?4",
        )
        .context("listing task definition families")?;
    let rows: Vec<String> = stmt
        .query_map(
            params![prefix, after, status.as_str(), (limit + 1) as i64],
            |r| r.get(0),
        )
        .context("listing task definition families")?
        .collect::<Result<_, _>>()
        .context("listing task definition families")?;
    Ok(page(rows, limit, &filter, String::clone))
}

/// Cuts `rows` (fetched with one extra) to a page and issues the next token.
fn page<K: Serialize + Clone>(
    mut rows: Vec<K>,
    limit: usize,
    filter: &str,
    item: impl Fn(&K) -> String,
) -> Page<String> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_token = match (more, rows.last()) {
        (true, Some(last)) => Some(paging::encode(filter, last.clone())),
        _ => None,
    };
    Page {
        items: rows.iter().map(item).collect(),
        next_token,
    }
}

/// The revision a task definition ARN names, if it exists.
fn tagged_revision(
    conn: &Connection,
    scope: &ArnScope,
    arn: &str,
) -> Result<(String, u32), RegistryError> {
    let (family, revision) = resolve_revision(scope, arn)?;
    if get_revision(conn, scope, &family, revision)?.is_none() {
        return Err(RegistryError::NotFound {
            reference: arn.to_owned(),
        });
    }
    Ok((family, revision))
}

/// ListTagsForResource on a task definition ARN (or `family:revision`).
pub fn list_tags(
    conn: &Connection,
    scope: &ArnScope,
    arn: &str,
) -> Result<Vec<Tag>, RegistryError> {
    let (family, revision) = tagged_revision(conn, scope, arn)?;
    let mut stmt = conn
        .prepare_cached("SELECT key, value FROM task_definition_tags WHERE family = ?1 AND revision = ?2 ORDER BY key")
        .context("listing task definition tags")?;
    let tags = stmt
        .query_map(params![family, revision], |r| {
            Ok(Tag {
                key: Some(r.get(0)?),
                value: Some(r.get(1)?),
            })
        })
        .context("listing task definition tags")?
        .collect::<Result<_, _>>()
        .context("listing task definition tags")?;
    Ok(tags)
}

/// TagResource: adds tags or replaces the values of existing keys (at most 50 tags
/// per revision in total). On error the caller must drop (roll back) the transaction.
pub fn tag(
    tx: &Transaction<'_>,
    scope: &ArnScope,
    arn: &str,
    tags: &[Tag],
) -> Result<(), RegistryError> {
    validate_tags(tags, "tags")?;
    let (family, revision) = tagged_revision(tx, scope, arn)?;
    put_tags(tx, &family, revision, tags)?;
    // The limit is on the merged set; on error the caller drops the transaction.
    let total = list_tags(tx, scope, arn)?.len();
    if total > 50 {
        return Err(ValidationError::InvalidParameter {
            field: "tags".into(),
            message: format!("tags would be {total} on {arn}; at most 50 are allowed"),
        }
        .into());
    }
    Ok(())
}

/// UntagResource: removes the given keys (absent keys are ignored).
pub fn untag(
    tx: &Transaction<'_>,
    scope: &ArnScope,
    arn: &str,
    keys: &[String],
) -> Result<(), RegistryError> {
    let (family, revision) = tagged_revision(tx, scope, arn)?;
    for key in keys {
        tx.exec_cached(
            "DELETE FROM task_definition_tags WHERE family = ?1 AND revision = ?2 AND key = ?3",
            params![family, revision, key],
        )
        .context("removing a task definition tag")?;
    }
    Ok(())
}

fn put_tags(
    tx: &Transaction<'_>,
    family: &str,
    revision: u32,
    tags: &[Tag],
) -> Result<(), RegistryError> {
    for t in tags {
        tx.exec_cached(
            "INSERT INTO task_definition_tags (family, revision, key, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (family, revision, key) DO UPDATE SET value = excluded.value",
            params![family, revision, t.key.as_deref().unwrap_or_default(), t.value.as_deref().unwrap_or_default()],
        )
        .context("storing a task definition tag")?;
    }
    Ok(())
}

/// Whether `arn` is a task definition ARN (for the API's tag operations router).
pub fn is_task_definition_arn(arn: &str) -> bool {
    arn.starts_with("arn:")
        && arn
            .split(':')
            .nth(5)
            .is_some_and(|r| r.starts_with("task-definition/"))
}
