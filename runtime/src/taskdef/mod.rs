//! Task definitions: the ECS wire model, its validation, RunTask overrides, and the
//! registry of families and revisions in SQLite.
//!
//! The flow for `RegisterTaskDefinition` (and `berth run FILE.json`):
//!
//! 1. [`parse_task_definition`] (API body) or [`parse_task_definition_file`] (a file,
//!    which may also be `describe-task-definition` output) reads JSON into
//!    [`TaskDefinition`]. Unknown members and wrong JSON types fail with a
//!    [`ParseError`] naming the path (`containerDefinitions[0].memory: …`).
//! 2. [`validate()`] applies ECS's rules and returns a [`ValidatedTaskDefinition`]:
//!    task `cpu`/`memory` normalized to CPU units and MiB, plus the [`Warning`]s for
//!    every field berth accepts but cannot honour on one Linux host (each listed
//!    once; nothing is dropped silently). Rule violations are a [`ValidationError`]
//!    carrying the ECS exception name the API must return.
//! 3. [`registry::register`] stores it as the next revision of its family; describe
//!    returns [`output::describe_json`]: what the user registered plus what ECS fills.
//!
//! # Decisions
//!
//! * **`networkMode` unset.** ECS validates an unset network mode as `bridge`, so berth
//!   does too (a definition valid on ECS is valid here and vice versa). Describe output
//!   keeps it unset, as registered, so re-registering the output on ECS or on berth
//!   means the same thing; [`ValidatedTaskDefinition::effective_network_mode`] tells the
//!   engine how berth *runs* it: `awsvpc`, berth's per-task network namespace.
//! * **`environmentFiles`.** ECS knows only S3 objects (`type: s3`, an S3 ARN ending in
//!   `.env`). berth additionally reads a local file when `value` is an absolute path or
//!   a `file://` URL (type still `s3`, the only value the model allows). S3 files are
//!   accepted with a warning and not read.
//! * **Exceptions.** Shape errors (unknown member, wrong JSON type, enum value, port out
//!   of range) and tag rules are `InvalidParameterException`; every rule ECS enforces at
//!   registration is a `ClientException`, as real ECS returns for those.
//! * **memory vs memoryReservation.** Real ECS accepts `memory == memoryReservation`
//!   (the developer guide was corrected to "greater than or equal to"), so berth only
//!   rejects `memory < memoryReservation`.

pub mod model;
pub mod output;
pub mod overrides;
pub mod registry;
mod units;
pub mod validate;
mod warnings;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ErrorClass;

pub use model::*;
pub use overrides::{
    ContainerOverride, InferenceAcceleratorOverride, TaskOverride, apply_overrides,
};
pub(crate) use validate::parse_port_range;
pub use validate::{ValidatedTaskDefinition, ValidationError, validate};

/// The ECS exception an error maps to on the API (`__type` of the error body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcsException {
    /// The request breaks a rule of the service ("Invalid setting for container …").
    ClientException,
    /// A parameter is malformed (wrong type, unknown member, bad token, bad tag).
    InvalidParameterException,
    /// berth failed (database, I/O).
    ServerException,
}

impl EcsException {
    /// The exception's name as ECS writes it.
    pub fn name(self) -> &'static str {
        match self {
            EcsException::ClientException => "ClientException",
            EcsException::InvalidParameterException => "InvalidParameterException",
            EcsException::ServerException => "ServerException",
        }
    }
}

impl fmt::Display for EcsException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A field berth accepted but cannot honour on a single Linux host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Warning {
    /// The field's path, e.g. `containerDefinitions[0].secrets`.
    pub field: String,
    /// What berth does instead, lower-case, no trailing period.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// JSON that does not have the shape of the ECS model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Wrong type, unknown member, missing required member, bad enum value or JSON
    /// syntax; `field` is the path (empty at the top level).
    #[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Invalid { field: String, message: String },
}

impl ParseError {
    /// Always [`ErrorClass::Invalid`].
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }

    /// Always `InvalidParameterException`.
    pub fn ecs_exception(&self) -> EcsException {
        EcsException::InvalidParameterException
    }

    /// The path of the offending member.
    pub fn field(&self) -> &str {
        match self {
            ParseError::Invalid { field, .. } => field,
        }
    }

    fn from_path_error(
        err: serde_path_to_error::Error<serde_json::Error>,
        prefix: &str,
    ) -> ParseError {
        let path = err.path().to_string();
        // A syntax error's path is where parsing stopped ("containerDefinitions[0].?"),
        // not a field; its line and column say more.
        let syntax = matches!(
            err.inner().classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        let path = if path == "." || syntax {
            String::new()
        } else {
            path
        };
        let field = match (prefix.is_empty(), path.is_empty()) {
            (true, _) => path,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{path}"),
        };
        ParseError::Invalid {
            field,
            message: err.into_inner().to_string(),
        }
    }
}

/// Deserializes any request or model type from JSON, naming the path of the first
/// error. The API layer uses this for every request body.
pub fn from_json<T: DeserializeOwned>(json: &[u8]) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ParseError::from_path_error(e, ""))?;
    de.end().map_err(|e| ParseError::Invalid {
        field: String::new(),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// Reads a task definition in `register-task-definition --cli-input-json` form or in
/// the form `describe-task-definition` returns (its output-only members are ignored).
pub fn parse_task_definition(json: &[u8]) -> Result<TaskDefinition, ParseError> {
    let value: serde_json::Value = from_json(json)?;
    reject_positional_structs(&value, "")?;
    // Parse the bytes again (not the value) so errors keep their line and column.
    from_json(json)
}

/// Reads RunTask/StartTask `overrides`.
pub fn parse_task_override(json: &[u8]) -> Result<TaskOverride, ParseError> {
    let value: serde_json::Value = from_json(json)?;
    reject_positional_structs(&value, "")?;
    from_json(json)
}

/// Members of the task definition and override shapes whose value is a structure.
const STRUCT_MEMBERS: &[&str] = &[
    "proxyConfiguration",
    "ephemeralStorage",
    "runtimePlatform",
    "trustedExecutionConfiguration",
    "repositoryCredentials",
    "restartPolicy",
    "linuxParameters",
    "logConfiguration",
    "healthCheck",
    "firelensConfiguration",
    "capabilities",
    "sharingStrategy",
    "nvidiaMps",
    "host",
    "dockerVolumeConfiguration",
    "efsVolumeConfiguration",
    "authorizationConfig",
    "s3filesVolumeConfiguration",
    "fsxWindowsFileServerVolumeConfiguration",
];

/// Members whose value is a list of structures.
const STRUCT_LIST_MEMBERS: &[&str] = &[
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "tags",
    "inferenceAccelerators",
    "portMappings",
    "environment",
    "environmentFiles",
    "mountPoints",
    "volumesFrom",
    "secrets",
    "dependsOn",
    "extraHosts",
    "ulimits",
    "systemControls",
    "resourceRequirements",
    "devices",
    "tmpfs",
    "secretOptions",
    "properties",
    "containerOverrides",
    "inferenceAcceleratorOverrides",
];

/// serde's derived structs also accept a JSON array (members by position); ECS does
/// not, so an array where a structure belongs is a type error here.
fn reject_positional_structs(value: &serde_json::Value, path: &str) -> Result<(), ParseError> {
    use serde_json::Value;
    let not_object = |field: String, v: &Value| ParseError::Invalid {
        field,
        message: format!("invalid type: {}, expected an object", json_kind(v)),
    };
    let Value::Object(members) = value else {
        return Err(not_object(path.to_owned(), value));
    };
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    for (k, v) in members {
        match v {
            Value::Array(items) if STRUCT_LIST_MEMBERS.contains(&k.as_str()) => {
                for (i, item) in items.iter().enumerate() {
                    reject_positional_structs(item, &format!("{}[{i}]", join(k)))?;
                }
            }
            Value::Null => {}
            _ if STRUCT_MEMBERS.contains(&k.as_str()) => reject_positional_structs(v, &join(k))?,
            _ => {}
        }
    }
    Ok(())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "sequence",
        serde_json::Value::Object(_) => "map",
    }
}

/// Reads a task definition file for `berth run FILE.json` / `berth register`: a bare
/// definition (either form above), or the whole `describe-task-definition` output
/// `{"taskDefinition": {...}, "tags": [...]}`, whose tags become the definition's.
pub fn parse_task_definition_file(json: &[u8]) -> Result<TaskDefinition, ParseError> {
    let value: serde_json::Value = from_json(json)?;
    let wrapped = value.as_object().is_some_and(|o| {
        o.get("taskDefinition")
            .is_some_and(serde_json::Value::is_object)
            && o.keys()
                .all(|k| matches!(k.as_str(), "taskDefinition" | "tags" | "ResponseMetadata"))
    });
    if !wrapped {
        reject_positional_structs(&value, "")?;
        return from_json(json);
    }
    let serde_json::Value::Object(mut outer) = value else {
        unreachable!("checked above")
    };
    let inner = outer.remove("taskDefinition").unwrap_or_default();
    reject_positional_structs(&inner, "taskDefinition")?;
    let mut td: TaskDefinition = from_value(inner, "taskDefinition")?;
    if let Some(tags) = outer.remove("tags") {
        let tags: Vec<Tag> = from_value(tags, "tags")?;
        if td.tags.is_empty() {
            td.tags = tags;
        }
    }
    Ok(td)
}

fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| ParseError::from_path_error(e, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> ParseError {
        parse_task_definition(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn shape_errors_name_the_path() {
        let table: &[(&str, &str, &str)] = &[
            (
                r#"{"family": "f", "containerDefinitions": [{"name": "a"}, {"name": "b", "memory": "100"}]}"#,
                "containerDefinitions[1].memory",
                "invalid type: string \"100\", expected i32",
            ),
            (
                r#"{"family": "f", "containerDefinitions": [{"name": "a", "colour": "red"}]}"#,
                "containerDefinitions[0].colour",
                "unknown field `colour`, expected one of `name`, `image`",
            ),
            (
                r#"{"family": "f", "netwrkMode": "host"}"#,
                "netwrkMode",
                "unknown field `netwrkMode`",
            ),
            (
                r#"{"family": "f", "networkMode": "nat"}"#,
                "networkMode",
                "unknown variant `nat`, expected one of `bridge`, `host`, `awsvpc`, `none`",
            ),
            (
                r#"{"containerDefinitions": [{"portMappings": [{"containerPort": 0}]}]}"#,
                "containerDefinitions[0].portMappings[0].containerPort",
                "invalid port 0: must be between 1 and 65535",
            ),
            (
                r#"{"containerDefinitions": [{"healthCheck": {"interval": 5}}]}"#,
                "containerDefinitions[0].healthCheck",
                "missing field `command`",
            ),
            (
                r#"{"family": 7}"#,
                "family",
                "invalid type: integer `7`, expected a string",
            ),
            (r#"[1]"#, "", "invalid type: sequence, expected an object"),
            (
                r#"{"containerDefinitions": [{"healthCheck": [["CMD", "true"]]}]}"#,
                "containerDefinitions[0].healthCheck",
                "invalid type: sequence, expected an object",
            ),
            (
                r#"{"containerDefinitions": [["web", "busybox"]]}"#,
                "containerDefinitions[0]",
                "invalid type: sequence, expected an object",
            ),
        ];
        for (json, field, message) in table {
            let e = err(json);
            assert_eq!(e.field(), *field, "{json}");
            let text = e.to_string();
            let want = if field.is_empty() {
                message.to_string()
            } else {
                format!("{field}: {message}")
            };
            assert!(
                text.starts_with(&want),
                "{json}\n got: {text}\nwant: {want}"
            );
            assert_eq!(e.ecs_exception(), EcsException::InvalidParameterException);
        }
    }

    #[test]
    fn syntax_errors_and_trailing_data_are_reported() {
        let e = err(r#"{"family": "f",}"#);
        assert!(e.to_string().contains("trailing comma"), "{e}");
        let e = err(r#"{"family": "f"} {}"#);
        assert!(e.to_string().contains("trailing characters"), "{e}");
    }

    #[test]
    fn a_file_may_be_the_whole_describe_output_with_tags() {
        let td = parse_task_definition_file(
            br#"{"taskDefinition": {"family": "f", "revision": 2, "containerDefinitions": []},
                 "tags": [{"key": "team", "value": "a"}]}"#,
        )
        .unwrap();
        assert_eq!(td.family(), "f");
        assert_eq!(td.tags, vec![Tag::new("team", "a")]);
        let e = parse_task_definition_file(br#"{"taskDefinition": {"family": "f", "bogus": 1}}"#)
            .unwrap_err();
        assert_eq!(e.field(), "taskDefinition.bogus");
        let td = parse_task_definition_file(br#"{"family": "g"}"#).unwrap();
        assert_eq!(td.family(), "g");
    }
}
