//! berth's stand-ins, on one host, for what ECS fetches from AWS when it starts a task:
//!
//! * **secrets**: a container's `secrets[].valueFrom` (a Secrets Manager secret ARN, with
//!   an optional JSON key, an SSM parameter ARN, or a parameter name) is looked up by name
//!   in berth's own store (`berth secret put NAME`) when the task starts, and set as the
//!   variable `secrets[].name`. A secret that is not there fails the task's start, as on
//!   ECS, with a reason that names it and says how to add it. A container's
//!   `repositoryCredentials` name a secret holding `{"username", "password"}`: the
//!   login its image is pulled with.
//! * **task role credentials**: a task whose `taskRoleArn` names a role gets
//!   `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, and the credentials endpoint answers with
//!   what is stored for the role (`berth role put ARN`). berth cannot assume the role: it
//!   serves the credentials it was given.
//!
//! Both live in the database, in the data root that only root may enter; listings never
//! show a value, a secret key or a token.

pub mod reference;
pub mod store;

use std::collections::BTreeMap;

use berth_registry::Login;
use rusqlite::Connection;

use crate::db::DbError;
use crate::error::ErrorClass;
use crate::taskdef::TaskDefinition;

pub use reference::{SecretRef, SecretService};
pub use store::{RoleCredentials, RoleEntry, SecretEntry};

/// Errors of the secret store and of resolving a task's secrets.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret name {0:?} is not valid: use 1 to 2048 letters, digits and /_+=.@- \
         (the name of the Secrets Manager secret or SSM parameter)"
    )]
    InvalidName(String),
    #[error(
        "valueFrom {0:?} is not a Secrets Manager secret ARN, an SSM parameter ARN or a \
         parameter name"
    )]
    InvalidReference(String),
    #[error(
        "valueFrom {value_from:?} asks for {what}; berth keeps one version of each secret \
         (AWSCURRENT)"
    )]
    Version { value_from: String, what: String },
    #[error("secret {name} has no JSON key {key:?}: {why}")]
    JsonKey {
        name: String,
        key: String,
        why: String,
    },
    #[error("{value_from} is not in berth's secret store; add it with `berth secret put {name}`")]
    NotFound { value_from: String, name: String },
    #[error(
        "{value_from} is not a registry login: repositoryCredentials needs a secret \
         {{\"username\": \"…\", \"password\": \"…\"}}"
    )]
    NotALogin { value_from: String },
    #[error("role ARN {0:?} is not valid: expected arn:PARTITION:iam::ACCOUNT:role/NAME")]
    InvalidRoleArn(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl SecretError {
    /// The API class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            SecretError::InvalidName(_)
            | SecretError::InvalidReference(_)
            | SecretError::Version { .. }
            | SecretError::JsonKey { .. }
            | SecretError::NotALogin { .. }
            | SecretError::InvalidRoleArn(_) => ErrorClass::Invalid,
            SecretError::NotFound { .. } => ErrorClass::NotFound,
            SecretError::Db(e) => e.class(),
        }
    }
}

/// Checks a name for `berth secret put`.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    if reference::valid_name(name) {
        Ok(())
    } else {
        Err(SecretError::InvalidName(name.to_owned()))
    }
}

/// Checks a role ARN for `berth role put`: `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
pub fn check_role_arn(arn: &str) -> Result<(), SecretError> {
    let bad = || SecretError::InvalidRoleArn(arn.to_owned());
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty()
                && !account.is_empty()
                && resource
                    .strip_prefix("role/")
                    .is_some_and(|n| !n.is_empty()) =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// What a task's start takes from berth's store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TaskSecrets {
    /// The variables each container gets from its `secrets`, by container name, in the
    /// order the definition lists them.
    pub env: BTreeMap<String, Vec<(String, String)>>,
    /// The registry login for each image a container names with `repositoryCredentials`
    /// (the first such container's, when several name one image).
    pub logins: BTreeMap<String, Login>,
}

/// Whether `def` names anything [`resolve_for_task`] reads from the store: a
/// container's `secrets` or `repositoryCredentials`.
pub fn declared(def: &TaskDefinition) -> bool {
    def.container_definitions
        .iter()
        .any(|c| !c.secrets.is_empty() || c.repository_credentials.is_some())
}

/// Resolves `def`'s `secrets` and `repositoryCredentials`. Reads the store on the
/// database thread; a task with neither reads nothing.
///
/// The error is the task's `stoppedReason`, worded as the ECS agent's.
pub fn resolve_for_task(conn: &Connection, def: &TaskDefinition) -> Result<TaskSecrets, String> {
    let fail = |service: Option<SecretService>, what: String, e: SecretError| {
        format!(
            "ResourceInitializationError: unable to pull secrets or registry auth: \
             unable to retrieve secret from {}: {what}: {e}",
            service.map_or("asm", SecretService::short),
        )
    };
    let mut out = TaskSecrets::default();
    for c in &def.container_definitions {
        let name = c.name.as_deref().unwrap_or_default();
        if !c.secrets.is_empty() {
            let mut vars = Vec::with_capacity(c.secrets.len());
            for s in &c.secrets {
                let value = resolve_one(conn, &s.value_from).map_err(|(service, e)| {
                    fail(service, format!("container {name}, variable {}", s.name), e)
                })?;
                vars.push((s.name.clone(), value));
            }
            out.env.insert(name.to_owned(), vars);
        }
        if let Some(rc) = &c.repository_credentials {
            let image = c.image.clone().unwrap_or_default();
            if out.logins.contains_key(&image) {
                continue;
            }
            let what = || format!("container {name}, repositoryCredentials");
            let value = resolve_one(conn, &rc.credentials_parameter)
                .map_err(|(service, e)| fail(service, what(), e))?;
            let login = registry_login(&rc.credentials_parameter, &value)
                .map_err(|e| fail(Some(SecretService::SecretsManager), what(), e))?;
            out.logins.insert(image, login);
        }
    }
    Ok(out)
}

/// A `repositoryCredentials` secret's value: `{"username": …, "password": …}`, as ECS
/// requires.
fn registry_login(value_from: &str, value: &str) -> Result<Login, SecretError> {
    #[derive(serde::Deserialize)]
    struct Creds {
        username: String,
        password: String,
    }
    let c: Creds = serde_json::from_str(value).map_err(|_| SecretError::NotALogin {
        value_from: value_from.to_owned(),
    })?;
    Ok(Login {
        username: c.username,
        password: c.password,
    })
}

fn resolve_one(
    conn: &Connection,
    value_from: &str,
) -> Result<String, (Option<SecretService>, SecretError)> {
    let r = reference::parse(value_from).map_err(|e| (None, e))?;
    let err = |e| (Some(r.service), e);
    for name in &r.candidates {
        if let Some(value) = store::get_secret(conn, name).map_err(|e| err(e.into()))? {
            return reference::select(&r, name, &value).map_err(err);
        }
    }
    Err(err(SecretError::NotFound {
        value_from: value_from.to_owned(),
        // What to `put`: a secret's name without the ARN's random suffix, a parameter's
        // name as written.
        name: match r.service {
            SecretService::SecretsManager => r.candidates.last(),
            SecretService::ParameterStore => r.candidates.first(),
        }
        .cloned()
        .unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn def(json: serde_json::Value) -> TaskDefinition {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn each_containers_secrets_become_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        let c = db.conn();
        store::put_secret(c, "db", r#"{"user":"ada","password":"pw"}"#, 1.0).unwrap();
        store::put_secret(c, "/app/token", "t0k", 1.0).unwrap();
        let d = def(serde_json::json!({
            "family": "f",
            "containerDefinitions": [
                {"name": "app", "image": "x", "secrets": [
                    {"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf:password::"},
                    {"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/app/token"}
                ]},
                {"name": "side", "image": "x"}
            ]
        }));
        let got = resolve_for_task(c, &d).unwrap().env;
        assert_eq!(
            got,
            BTreeMap::from([(
                "app".to_owned(),
                vec![
                    ("DB_PASSWORD".to_owned(), "pw".to_owned()),
                    ("TOKEN".to_owned(), "t0k".to_owned())
                ]
            )])
        );
    }

    #[test]
    fn repository_credentials_become_the_images_login() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        let c = db.conn();
        store::put_secret(c, "hub", r#"{"username":"ada","password":"pw"}"#, 1.0).unwrap();
        store::put_secret(c, "plain", "pw", 1.0).unwrap();
        let with = |param: &str| {
            def(serde_json::json!({"family": "f", "containerDefinitions": [
                {"name": "app", "image": "reg.example/app:1",
                 "repositoryCredentials": {"credentialsParameter": param}},
                {"name": "side", "image": "busybox"}
            ]}))
        };
        let got =
            resolve_for_task(c, &with("arn:aws:secretsmanager:r:1:secret:hub-AbCdEf")).unwrap();
        assert_eq!(
            got.logins,
            BTreeMap::from([(
                "reg.example/app:1".to_owned(),
                Login {
                    username: "ada".into(),
                    password: "pw".into()
                }
            )])
        );
        assert!(got.env.is_empty());
        let e = resolve_for_task(c, &with("arn:aws:secretsmanager:r:1:secret:plain")).unwrap_err();
        assert!(
            e.contains("container app, repositoryCredentials")
                && e.contains("not a registry login"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_secret_is_a_start_failure_naming_it_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        let d = def(serde_json::json!({
            "family": "f",
            "containerDefinitions": [{"name": "app", "image": "x", "secrets": [
                {"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:r:1:secret:api-key-AbCdEf"}
            ]}]
        }));
        let e = resolve_for_task(db.conn(), &d).unwrap_err();
        assert!(
            e.starts_with("ResourceInitializationError: unable to pull secrets"),
            "{e}"
        );
        assert!(
            e.contains("from asm") && e.contains("container app, variable API_KEY"),
            "{e}"
        );
        assert!(e.contains("berth secret put api-key`"), "{e}");
    }

    #[test]
    fn role_arns_must_name_an_iam_role() {
        check_role_arn("arn:aws:iam::123456789012:role/app").unwrap();
        check_role_arn("arn:aws-cn:iam::1:role/path/to/app").unwrap();
        for bad in [
            "app",
            "arn:aws:iam::1:user/app",
            "arn:aws:iam::1:role/",
            "arn:aws:s3:::role/x",
            "arn:aws:iam:us-east-1:1:role/x",
        ] {
            assert!(check_role_arn(bad).is_err(), "{bad}");
        }
    }
}
