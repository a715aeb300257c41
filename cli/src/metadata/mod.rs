//! The task metadata endpoint, on the ECS agent's port: `GET /v4/{id}`,
//! `/v4/{id}/task`, `/v4/{id}/taskWithTags`, `/v4/{id}/stats`, `/v4/{id}/task/stats`
//! and their `/v3/` twins, which
//! containers reach at `$ECS_CONTAINER_METADATA_URI_V4` (set by the engine). Task
//! namespaces reach it on the bridge gateway, host-mode tasks on 127.0.0.1.
//!
//! The same listeners serve task role credentials (`credentials.rs`).
//!
//! The gateway address exists only once the bridge does (the first namespaced task
//! creates it), so that listener binds with `IP_FREEBIND`. The endpoint answers only
//! what a container's unguessable endpoint id names; it changes nothing.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

use berth_runtime::engine::Engine;
use berth_runtime::engine::metadata::MetadataView;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, sockopt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{Body, full};

mod credentials;

/// The ECS agent's task metadata port.
pub(crate) const METADATA_PORT: u16 = 51679;

/// A listener on `addr`, which need not be a local address yet.
pub(crate) fn bind(addr: SocketAddrV4) -> std::io::Result<TcpListener> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::IpFreebind, &true)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
    socket::listen(
        &fd,
        socket::Backlog::new(128).map_err(std::io::Error::from)?,
    )?;
    TcpListener::from_std(std::net::TcpListener::from(fd))
}

/// Serves the endpoint on the gateway and on loopback; a listener that cannot bind
/// is logged and skipped (its tasks' metadata URIs then do not answer).
pub(crate) fn start(engine: &Engine, gateway: Ipv4Addr) -> Vec<JoinHandle<()>> {
    [gateway, Ipv4Addr::LOCALHOST]
        .into_iter()
        .filter_map(|ip| {
            let addr = SocketAddrV4::new(ip, METADATA_PORT);
            match bind(addr) {
                Ok(listener) => Some(tokio::spawn(serve(engine.clone(), listener))),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "task metadata endpoint not served");
                    None
                }
            }
        })
        .collect()
}

async fn serve(engine: Engine, listener: TcpListener) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        // Tasks only: a namespaced task comes from berth's subnet, a host-mode task
        // from loopback. A LAN host that routes berth's subnet through this one could
        // reach the gateway address too; it gets nothing.
        let from_task = match peer.ip() {
            std::net::IpAddr::V4(ip) => ip.is_loopback() || engine.in_task_subnet(ip),
            std::net::IpAddr::V6(_) => false,
        };
        if !from_task {
            continue;
        }
        let engine = engine.clone();
        tokio::spawn(async move {
            let conn = http1::Builder::new().serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| handle(engine.clone(), req)),
            );
            let _ = conn.await;
        });
    }
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `(endpoint id, view)` of a metadata path.
fn route(path: &str) -> Option<(&str, MetadataView)> {
    let rest = path
        .strip_prefix("/v4/")
        .or_else(|| path.strip_prefix("/v3/"))?;
    let (id, sub) = rest.split_once('/').unwrap_or((rest, ""));
    let view = match sub {
        "" => MetadataView::Container,
        "task" => MetadataView::Task,
        "taskWithTags" => MetadataView::TaskWithTags,
        "stats" => MetadataView::Stats,
        "task/stats" => MetadataView::TaskStats,
        _ => return None,
    };
    Some((id, view))
}

async fn handle(engine: Engine, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET {
        return Ok(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &"the task metadata endpoint answers GET only".into(),
        ));
    }
    let path = req.uri().path().trim_end_matches('/');
    if let Some(request) = credentials::route(path, req.uri().query()) {
        return Ok(credentials::answer(&engine, request).await);
    }
    let Some((id, view)) = route(path) else {
        return Ok(json_response(
            StatusCode::NOT_FOUND,
            &format!("berth serves /v4/{{id}}, /v4/{{id}}/task, /v4/{{id}}/taskWithTags, /v4/{{id}}/stats and /v4/{{id}}/task/stats (and /v3/), not {path}").into(),
        ));
    };
    Ok(match engine.task_metadata(id, view).await {
        Ok(Some(doc)) => json_response(StatusCode::OK, &doc),
        Ok(None) => json_response(
            StatusCode::BAD_REQUEST,
            &format!("unable to get task metadata: no container has the endpoint id {id}").into(),
        ),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &berth_runtime::engine::chain(&e).into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_views() {
        assert_eq!(route("/v4/abc"), Some(("abc", MetadataView::Container)));
        assert_eq!(route("/v3/abc/task"), Some(("abc", MetadataView::Task)));
        assert_eq!(
            route("/v4/abc/taskWithTags"),
            Some(("abc", MetadataView::TaskWithTags))
        );
        assert_eq!(route("/v4/abc/stats"), Some(("abc", MetadataView::Stats)));
        assert_eq!(
            route("/v4/abc/task/stats"),
            Some(("abc", MetadataView::TaskStats))
        );
        assert_eq!(route("/v4/abc/tasks"), None);
        assert_eq!(route("/v2/metadata"), None);
    }
}
