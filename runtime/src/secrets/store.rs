//! Queries over the `secrets` and `role_credentials` tables. Every function takes a
//! connection and runs on the database thread.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::db::{DbError, QueryContext};

/// A stored secret as listings show it: never its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretEntry {
    /// The secret or parameter name.
    pub name: String,
    /// The value's length in bytes.
    pub length: usize,
    /// When it was last written (seconds since the epoch).
    pub updated_at: f64,
}

/// Inserts or replaces a secret; true if it replaced one.
pub fn put_secret(conn: &Connection, name: &str, value: &str, now: f64) -> Result<bool, DbError> {
    let existed = get_secret(conn, name)?.is_some();
    conn.execute(
        "INSERT INTO secrets (name, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![name, value, now],
    )
    .context("storing secret")?;
    Ok(existed)
}

/// A secret's value.
pub fn get_secret(conn: &Connection, name: &str) -> Result<Option<String>, DbError> {
    conn.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
    .context("reading secret")
}

/// Removes a secret; false if there was none.
pub fn delete_secret(conn: &Connection, name: &str) -> Result<bool, DbError> {
    let n = conn
        .execute("DELETE FROM secrets WHERE name = ?1", [name])
        .context("removing secret")?;
    Ok(n > 0)
}

/// Every secret, by name.
pub fn list_secrets(conn: &Connection) -> Result<Vec<SecretEntry>, DbError> {
    let mut stmt = conn
        .prepare("SELECT name, length(CAST(value AS BLOB)), updated_at FROM secrets ORDER BY name")
        .context("listing secrets")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(SecretEntry {
                name: r.get(0)?,
                length: r.get::<_, i64>(1)?.max(0) as usize,
                updated_at: r.get(2)?,
            })
        })
        .context("listing secrets")?;
    rows.collect::<Result<Vec<_>, _>>()
        .context("listing secrets")
}

/// Credentials stored for a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    /// The role's ARN, as task definitions name it in `taskRoleArn`.
    pub role_arn: String,
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// `SecretAccessKey`.
    pub secret_access_key: String,
    /// `Token` (a session token), when the credentials are temporary.
    pub session_token: Option<String>,
    /// `Expiration` (RFC 3339), when the credentials expire.
    pub expiration: Option<String>,
}

/// A role as listings show it: never its secret key or token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleEntry {
    /// The role's ARN.
    pub role_arn: String,
    /// The access key id served for it.
    pub access_key_id: String,
    /// Whether a session token is served with it.
    pub has_session_token: bool,
    /// When the credentials expire, if they do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// When they were last written (seconds since the epoch).
    pub updated_at: f64,
}

/// Inserts or replaces a role's credentials; true if it replaced some.
pub fn put_role(conn: &Connection, c: &RoleCredentials, now: f64) -> Result<bool, DbError> {
    let existed = get_role(conn, &c.role_arn)?.is_some();
    conn.execute(
        "INSERT INTO role_credentials (role_arn, access_key_id, secret_access_key, session_token,
             expiration, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(role_arn) DO UPDATE SET access_key_id = excluded.access_key_id,
             secret_access_key = excluded.secret_access_key,
             session_token = excluded.session_token, expiration = excluded.expiration,
             updated_at = excluded.updated_at",
        params![
            c.role_arn,
            c.access_key_id,
            c.secret_access_key,
            c.session_token,
            c.expiration,
            now
        ],
    )
    .context("storing role credentials")?;
    Ok(existed)
}

/// A role's credentials.
pub fn get_role(conn: &Connection, role_arn: &str) -> Result<Option<RoleCredentials>, DbError> {
    conn.query_row(
        "SELECT role_arn, access_key_id, secret_access_key, session_token, expiration
         FROM role_credentials WHERE role_arn = ?1",
        [role_arn],
        |r| {
            Ok(RoleCredentials {
                role_arn: r.get(0)?,
                access_key_id: r.get(1)?,
                secret_access_key: r.get(2)?,
                session_token: r.get(3)?,
                expiration: r.get(4)?,
            })
        },
    )
    .optional()
    .context("reading role credentials")
}

/// Removes a role's credentials; false if there were none.
pub fn delete_role(conn: &Connection, role_arn: &str) -> Result<bool, DbError> {
    let n = conn
        .execute(
            "DELETE FROM role_credentials WHERE role_arn = ?1",
            [role_arn],
        )
        .context("removing role credentials")?;
    Ok(n > 0)
}

/// Every role with credentials, by ARN.
pub fn list_roles(conn: &Connection) -> Result<Vec<RoleEntry>, DbError> {
    let mut stmt = conn
        .prepare(
            "SELECT role_arn, access_key_id, session_token IS NOT NULL, expiration, updated_at
             FROM role_credentials ORDER BY role_arn",
        )
        .context("listing roles")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(RoleEntry {
                role_arn: r.get(0)?,
                access_key_id: r.get(1)?,
                has_session_token: r.get(2)?,
                expiration: r.get(3)?,
                updated_at: r.get(4)?,
            })
        })
        .context("listing roles")?;
    rows.collect::<Result<Vec<_>, _>>().context("listing roles")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        (dir, db)
    }

    #[test]
    fn secrets_are_put_replaced_listed_without_values_and_removed() {
        let (_d, db) = db();
        let c = db.conn();
        assert!(!put_secret(c, "db-pass", "hunter2", 1.0).unwrap());
        assert!(put_secret(c, "db-pass", "correct horse", 2.0).unwrap());
        put_secret(c, "/app/token", "é", 3.0).unwrap();
        assert_eq!(
            get_secret(c, "db-pass").unwrap().as_deref(),
            Some("correct horse")
        );
        let listed = list_secrets(c).unwrap();
        assert_eq!(
            listed,
            [
                SecretEntry {
                    name: "/app/token".into(),
                    length: 2,
                    updated_at: 3.0
                },
                SecretEntry {
                    name: "db-pass".into(),
                    length: 13,
                    updated_at: 2.0
                },
            ]
        );
        assert!(delete_secret(c, "db-pass").unwrap());
        assert!(!delete_secret(c, "db-pass").unwrap());
        assert_eq!(get_secret(c, "db-pass").unwrap(), None);
    }

    #[test]
    fn role_credentials_are_put_replaced_and_listed_without_secrets() {
        let (_d, db) = db();
        let c = db.conn();
        let mut creds = RoleCredentials {
            role_arn: "arn:aws:iam::123456789012:role/app".into(),
            access_key_id: "AKIA1".into(),
            secret_access_key: "s1".into(),
            session_token: None,
            expiration: None,
        };
        assert!(!put_role(c, &creds, 1.0).unwrap());
        creds.session_token = Some("tok".into());
        creds.expiration = Some("2026-12-08T00:00:00Z".into());
        assert!(put_role(c, &creds, 2.0).unwrap());
        assert_eq!(get_role(c, &creds.role_arn).unwrap(), Some(creds.clone()));
        let listed = list_roles(c).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].has_session_token);
        let json = serde_json::to_string(&listed).unwrap();
        assert!(!json.contains("s1") && !json.contains("tok"), "{json}");
        assert!(delete_role(c, &creds.role_arn).unwrap());
        assert_eq!(get_role(c, &creds.role_arn).unwrap(), None);
    }
}
