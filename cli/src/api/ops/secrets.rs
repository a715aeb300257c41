//! berth's secret store and task role credentials (see `berth_runtime::secrets`):
//! `PutSecret`, `ListSecrets`, `DeleteSecret`, `PutRoleCredentials`,
//! `ListRoleCredentials`, `DeleteRoleCredentials`. Listings never carry a value, a
//! secret key or a token; nothing here echoes one back.

use berth_runtime::secrets::RoleCredentials;
use serde::Deserialize;
use serde_json::{Value, json};

use super::engine_error;
use crate::api::ApiError;
use crate::daemon::Daemon;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PutSecret {
    /// The secret's name (as in its Secrets Manager ARN) or the parameter's name.
    name: String,
    value: String,
}

pub(super) async fn put_secret(d: &Daemon, r: PutSecret) -> Result<Value, ApiError> {
    let replaced = d
        .engine
        .put_secret(r.name.clone(), r.value)
        .await
        .map_err(engine_error)?;
    Ok(json!({"name": r.name, "replaced": replaced}))
}

pub(super) async fn list_secrets(d: &Daemon) -> Result<Value, ApiError> {
    let secrets = d.engine.list_secrets().await.map_err(engine_error)?;
    Ok(json!({"secrets": secrets}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DeleteSecret {
    name: String,
}

pub(super) async fn delete_secret(d: &Daemon, r: DeleteSecret) -> Result<Value, ApiError> {
    d.engine
        .delete_secret(r.name.clone())
        .await
        .map_err(engine_error)?;
    Ok(json!({"name": r.name}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PutRoleCredentials {
    role_arn: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// RFC 3339.
    expiration: Option<String>,
}

pub(super) async fn put_role(d: &Daemon, r: PutRoleCredentials) -> Result<Value, ApiError> {
    let role_arn = r.role_arn.clone();
    let replaced = d
        .engine
        .put_role(RoleCredentials {
            role_arn: r.role_arn,
            access_key_id: r.access_key_id,
            secret_access_key: r.secret_access_key,
            session_token: r.session_token.filter(|t| !t.is_empty()),
            expiration: r.expiration.filter(|e| !e.is_empty()),
        })
        .await
        .map_err(engine_error)?;
    Ok(json!({"roleArn": role_arn, "replaced": replaced}))
}

pub(super) async fn list_roles(d: &Daemon) -> Result<Value, ApiError> {
    let roles = d.engine.list_roles().await.map_err(engine_error)?;
    Ok(json!({"roles": roles}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DeleteRoleCredentials {
    role_arn: String,
}

pub(super) async fn delete_role(d: &Daemon, r: DeleteRoleCredentials) -> Result<Value, ApiError> {
    d.engine
        .delete_role(r.role_arn.clone())
        .await
        .map_err(engine_error)?;
    Ok(json!({"roleArn": r.role_arn}))
}
