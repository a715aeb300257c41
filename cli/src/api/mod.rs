//! The ECS JSON 1.1 API over HTTP/1.1 (hyper), on a unix socket and optionally TCP.
//!
//! Every ECS operation is `POST /` with `X-Amz-Target:
//! AmazonEC2ContainerServiceV20141113.<Operation>` and a JSON body; berth's own
//! operations (image pull, logs, volumes, …) use the target prefix `Berth.` and may
//! stream their answer as JSON lines. Requests on TCP must carry a valid SigV4
//! signature unless the daemon runs with `--insecure-no-auth`.

pub(crate) mod error;
mod ops;
pub(crate) mod sigv4;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

pub(crate) use error::ApiError;

use crate::daemon::Daemon;

/// The ECS target prefix.
pub(crate) const ECS_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
/// berth's own operations.
pub(crate) const BERTH_PREFIX: &str = "Berth.";
/// The largest request body accepted (ECS caps task definitions far below this).
const MAX_BODY: usize = 2 * 1024 * 1024;
/// How much of an oversized body is read (and dropped) before answering.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The unix socket: trusted by its file mode.
    Unix,
    /// TCP: authenticated by SigV4 unless `auth` is false (`--insecure-no-auth`).
    Tcp { auth: bool },
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn respond(status: StatusCode, body: Body, rid: &str) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

fn error_response(e: &ApiError, rid: &str) -> Response<Body> {
    let mut r = respond(e.status, full(e.body()), rid);
    if let Ok(v) = HeaderValue::from_str(e.code) {
        r.headers_mut().insert("x-amzn-ErrorType", v);
    }
    r
}

/// Handles one HTTP request. Never fails: every error becomes an ECS error body.
pub(crate) async fn handle(
    daemon: Arc<Daemon>,
    transport: Transport,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let rid = request_id();
    // A bug in one operation answers that request with a ServerException; it does not
    // drop the connection with no answer (SDKs would retry a non-idempotent call).
    let outcome = std::panic::AssertUnwindSafe(handle_inner(&daemon, transport, req))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(ApiError::server(format!("internal error: {what}")))
        });
    match outcome {
        Ok(Reply::Json(mut v)) => {
            // Absent, not null: an optional member without a value (a last page's
            // nextToken) is left out, as ECS does.
            if let serde_json::Value::Object(m) = &mut v {
                m.retain(|_, x| !x.is_null());
            }
            let body = serde_json::to_vec(&v).unwrap_or_default();
            Ok(respond(StatusCode::OK, full(body), &rid))
        }
        Ok(Reply::Upgrade(protocol)) => {
            let mut r = respond(StatusCode::SWITCHING_PROTOCOLS, full(Bytes::new()), &rid);
            let h = r.headers_mut();
            h.remove(http::header::CONTENT_TYPE);
            h.insert(
                http::header::CONNECTION,
                HeaderValue::from_static("upgrade"),
            );
            h.insert(http::header::UPGRADE, HeaderValue::from_static(protocol));
            Ok(r)
        }
        Ok(Reply::Stream(body)) => {
            let mut r = respond(StatusCode::OK, body, &rid);
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            Ok(r)
        }
        Err(e) => {
            if e.status.is_server_error() {
                tracing::error!(code = e.code, message = %e.message, "request failed");
            } else {
                tracing::debug!(code = e.code, message = %e.message, "request refused");
            }
            Ok(error_response(&e, &rid))
        }
    }
}

/// An operation's answer.
pub(crate) enum Reply {
    Json(serde_json::Value),
    /// JSON lines, written as they are produced (pull progress, log follow).
    Stream(Body),
    /// `101 Switching Protocols` to this protocol; the operation took the connection.
    Upgrade(&'static str),
}

async fn handle_inner(
    daemon: &Arc<Daemon>,
    transport: Transport,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    if req.method() == Method::GET && req.uri().path() == "/ping" {
        return Ok(Reply::Json(serde_json::json!({"status": "ok"})));
    }
    if req.method() != Method::POST || req.uri().path() != "/" {
        return Err(ApiError::new(
            "UnknownOperationException",
            StatusCode::NOT_FOUND,
            format!("no operation at {} {}", req.method(), req.uri().path()),
        ));
    }
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::client("missing X-Amz-Target header"))?;
    let (mut parts, body) = req.into_parts();
    let body = read_body(body).await?;

    if let Transport::Tcp { auth } = transport {
        if auth {
            authenticate(daemon, &parts, &body)?;
        } else if !host_is_loopback(&parts) {
            // Without signatures, a browser on this machine could be steered to the
            // API by DNS rebinding; only loopback Host names are accepted then.
            return Err(ApiError::new(
                "AccessDeniedException",
                StatusCode::FORBIDDEN,
                "Host header must name a loopback address when authentication is off",
            ));
        }
    }

    if let Some(op) = target.strip_prefix(ECS_PREFIX) {
        ops::ecs(daemon, op, &body).await.map(Reply::Json)
    } else if let Some(op) = target.strip_prefix(BERTH_PREFIX) {
        match upgrade_to(&mut parts, crate::exec_frames::PROTOCOL) {
            Some(upgrade) if op == "Exec" => ops::exec_attached(daemon, &body, upgrade).await,
            Some(_) => Err(ApiError::client(format!(
                "{target} does not upgrade the connection"
            ))),
            None => ops::berth(daemon, op, &body).await,
        }
    } else {
        Err(ApiError::new(
            "UnknownOperationException",
            StatusCode::BAD_REQUEST,
            format!("unknown target {target:?}"),
        ))
    }
}

/// The pending upgrade of a request that asks for `protocol` (`Connection: upgrade`,
/// `Upgrade: protocol`).
fn upgrade_to(
    parts: &mut http::request::Parts,
    protocol: &str,
) -> Option<hyper::upgrade::OnUpgrade> {
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    let connection = header(http::header::CONNECTION)?;
    let wanted = header(http::header::UPGRADE)?;
    if !connection.split(',').any(|t| t.trim() == "upgrade") || wanted != protocol {
        return None;
    }
    parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
}

/// Reads the body, refusing one larger than [`MAX_BODY`]. An oversized body is still
/// read to its end (up to [`MAX_DRAIN`]) before the refusal is sent: a client writes
/// its whole request before reading, and closing on it would turn the clear error
/// into a reset connection that SDKs retry.
async fn read_body(mut body: Incoming) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::client(format!("reading request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len();
        if total <= MAX_BODY {
            buf.extend_from_slice(&data);
        } else if total > MAX_DRAIN {
            break;
        }
    }
    if total > MAX_BODY {
        return Err(ApiError::client(format!(
            "request body larger than {MAX_BODY} bytes"
        )));
    }
    Ok(Bytes::from(buf))
}

fn authenticate(
    daemon: &Daemon,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<(), ApiError> {
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let req = sigv4::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    sigv4::verify(&req, daemon.credentials(), chrono::Utc::now())
        .map_err(|e| ApiError::new(e.code(), StatusCode::FORBIDDEN, e.to_string()))
}

fn host_is_loopback(parts: &http::request::Parts) -> bool {
    let Some(host) = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
