//! The secret store and task role credentials, as the engine serves them: managing what
//! is stored (`berth secret`, `berth role`), and answering a task's credentials id (see
//! [`crate::secrets`]).

use super::{Engine, EngineError};
use crate::db::DbError;
use crate::secrets::{self, RoleCredentials, RoleEntry, SecretEntry, SecretError, store};
use crate::state::model::status;
use crate::state::repo;

/// What the credentials endpoint answers for an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCredentials {
    /// No running task has this credentials id.
    Unknown,
    /// The task's role has no credentials in berth's store.
    NotStored {
        /// The task's `taskRoleArn`.
        role_arn: String,
    },
    /// The role's credentials.
    Found(RoleCredentials),
}

fn secret_error(e: SecretError) -> EngineError {
    match e {
        SecretError::Db(e) => EngineError::Db(e),
        e => match e.class() {
            crate::ErrorClass::NotFound => EngineError::NotFound(e.to_string()),
            _ => EngineError::Invalid(e.to_string()),
        },
    }
}

impl Engine {
    /// Stores (or replaces) a secret; true if it replaced one.
    pub async fn put_secret(&self, name: String, value: String) -> Result<bool, EngineError> {
        secrets::check_name(&name).map_err(secret_error)?;
        let now = super::now();
        Ok(self
            .db()
            .call(move |db| store::put_secret(db.conn(), &name, &value, now))
            .await?)
    }

    /// Every stored secret, without values.
    pub async fn list_secrets(&self) -> Result<Vec<SecretEntry>, EngineError> {
        Ok(self.db().call(|db| store::list_secrets(db.conn())).await?)
    }

    /// Removes a secret.
    pub async fn delete_secret(&self, name: String) -> Result<(), EngineError> {
        let n = name.clone();
        let removed = self
            .db()
            .call(move |db| store::delete_secret(db.conn(), &n))
            .await?;
        if removed {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!(
                "secret {name} is not in berth's secret store"
            )))
        }
    }

    /// Stores (or replaces) a role's credentials; true if it replaced some.
    pub async fn put_role(&self, creds: RoleCredentials) -> Result<bool, EngineError> {
        secrets::check_role_arn(&creds.role_arn).map_err(secret_error)?;
        if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
            return Err(EngineError::Invalid(
                "accessKeyId and secretAccessKey must not be empty".into(),
            ));
        }
        if let Some(exp) = &creds.expiration
            && chrono::DateTime::parse_from_rfc3339(exp).is_err()
        {
            return Err(EngineError::Invalid(format!(
                "expiration {exp:?} is not an RFC 3339 time (e.g. 2026-12-31T23:59:59Z)"
            )));
        }
        let now = super::now();
        Ok(self
            .db()
            .call(move |db| store::put_role(db.conn(), &creds, now))
            .await?)
    }

    /// Every role with stored credentials, without secret keys or tokens.
    pub async fn list_roles(&self) -> Result<Vec<RoleEntry>, EngineError> {
        Ok(self.db().call(|db| store::list_roles(db.conn())).await?)
    }

    /// Removes a role's credentials.
    pub async fn delete_role(&self, role_arn: String) -> Result<(), EngineError> {
        let arn = role_arn.clone();
        let removed = self
            .db()
            .call(move |db| store::delete_role(db.conn(), &arn))
            .await?;
        if removed {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!(
                "role {role_arn} has no credentials stored"
            )))
        }
    }

    /// The credentials for a task's credentials id (the last segment of its
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`). Only a task that has not stopped has
    /// credentials, as on ECS; the store is read on every request, so new credentials
    /// reach running tasks at once.
    pub async fn task_credentials(&self, id: &str) -> Result<TaskCredentials, EngineError> {
        let Some(task_id) = super::arn::task_of_endpoint_id(id) else {
            return Ok(TaskCredentials::Unknown);
        };
        let (task_id, id) = (task_id.to_owned(), id.to_owned());
        self.db()
            .call(move |db| {
                let Some(rec) = repo::get_task(db.conn(), &task_id)? else {
                    return Ok::<_, DbError>(TaskCredentials::Unknown);
                };
                if rec.runtime.credentials_id.as_deref() != Some(id.as_str())
                    || rec.task.last_status == status::STOPPED
                {
                    return Ok(TaskCredentials::Unknown);
                }
                let role_arn = rec.runtime.definition["taskRoleArn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                Ok(match store::get_role(db.conn(), &role_arn)? {
                    Some(c) => TaskCredentials::Found(c),
                    None => TaskCredentials::NotStored { role_arn },
                })
            })
            .await
            .map_err(EngineError::from)
    }
}
