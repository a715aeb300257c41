//! Task role credentials, as the ECS agent serves them: `GET /v2/credentials/{id}` (what
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` and `…_FULL_URI` name) and
//! `GET /v1/credentials?id={id}`, answering
//! `{"RoleArn","AccessKeyId","SecretAccessKey","Token","Expiration"}` or the agent's
//! error body `{"code","message","HTTPErrorCode"}`.
//!
//! berth cannot assume roles: it serves what `berth role put` stored for the task's
//! role. Credentials stored without an expiration are given one an hour ahead, so SDKs
//! come back for them (and see replaced ones) at least that often; without a session
//! token, `Token` is empty, which SDKs treat as none.

use berth_runtime::engine::Engine;
use berth_runtime::engine::credentials::TaskCredentials;
use http::{Response, StatusCode};
use serde_json::json;

use super::json_response;
use crate::api::Body;

/// How long SDKs may keep credentials that were stored without an expiration.
const DEFAULT_VALIDITY: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// A credentials request: the agent's API version (for its error messages) and the id.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct CredentialsRequest<'a> {
    version: &'static str,
    id: Option<&'a str>,
}

/// The request a path (and query) asks for, if it is a credentials path.
pub(super) fn route<'a>(path: &'a str, query: Option<&'a str>) -> Option<CredentialsRequest<'a>> {
    if let Some(rest) = path.strip_prefix("/v2/credentials") {
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        let id = rest.strip_prefix('/').filter(|id| !id.is_empty());
        return Some(CredentialsRequest {
            version: "CredentialsV2Request",
            id,
        });
    }
    (path == "/v1/credentials").then(|| CredentialsRequest {
        version: "CredentialsV1Request",
        id: query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("id="))
            .filter(|id| !id.is_empty()),
    })
}

fn error(code: &str, message: String) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"code": code, "message": message, "HTTPErrorCode": 400}),
    )
}

/// The answer to a credentials request.
pub(super) async fn answer(engine: &Engine, r: CredentialsRequest<'_>) -> Response<Body> {
    let v = r.version;
    let Some(id) = r.id else {
        return error("NoIdInRequest", format!("{v}: No ID in the request"));
    };
    match engine.task_credentials(id).await {
        Ok(TaskCredentials::Found(c)) => {
            let expiration = c.expiration.clone().unwrap_or_else(|| {
                (chrono::Utc::now() + DEFAULT_VALIDITY)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            });
            json_response(
                StatusCode::OK,
                &json!({
                    "RoleArn": c.role_arn,
                    "AccessKeyId": c.access_key_id,
                    "SecretAccessKey": c.secret_access_key,
                    "Token": c.session_token.unwrap_or_default(),
                    "Expiration": expiration,
                }),
            )
        }
        Ok(TaskCredentials::NotStored { role_arn }) => error(
            "NoCredentialsAssociated",
            format!(
                "{v}: Credentials not found: berth has no credentials for role {role_arn}; \
                 store them with `berth role put {role_arn}`"
            ),
        ),
        Ok(TaskCredentials::Unknown) => {
            error("InvalidIdInRequest", format!("{v}: Credentials not found"))
        }
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"code": "InternalServerError", "message": berth_runtime::engine::chain(&e), "HTTPErrorCode": 500}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_api_versions_route_with_their_id() {
        assert_eq!(
            route("/v2/credentials/abc-1", None),
            Some(CredentialsRequest {
                version: "CredentialsV2Request",
                id: Some("abc-1")
            })
        );
        assert_eq!(
            route("/v2/credentials", None),
            Some(CredentialsRequest {
                version: "CredentialsV2Request",
                id: None
            })
        );
        assert_eq!(
            route("/v1/credentials", Some("x=1&id=abc-1")),
            Some(CredentialsRequest {
                version: "CredentialsV1Request",
                id: Some("abc-1")
            })
        );
        assert_eq!(
            route("/v1/credentials", None),
            Some(CredentialsRequest {
                version: "CredentialsV1Request",
                id: None
            })
        );
        assert_eq!(route("/v4/abc", None), None);
        assert_eq!(route("/v2/credentialsX", None), None);
    }
}
