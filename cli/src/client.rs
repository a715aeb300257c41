//! The CLI's client of `berth daemon`: the ECS API over the unix socket.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;

use crate::api::{BERTH_PREFIX, ECS_PREFIX};

/// A connection to the daemon.
pub(crate) struct Client {
    socket: PathBuf,
}

/// An ECS error the daemon answered with.
#[derive(Debug)]
pub(crate) struct ApiFailure {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiFailure {}

impl ApiFailure {
    /// The failure an error answer's JSON body (`__type`, `message`) describes.
    fn from_body(v: &Value) -> ApiFailure {
        let member = |k: &str, default: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        ApiFailure {
            code: member("__type", "Error"),
            message: member("message", ""),
        }
    }
}

impl Client {
    pub(crate) fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
        }
    }

    async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            anyhow!(
                "cannot reach the berth daemon at {}: {e}\n\
                 Start it with `berth daemon` (add --data-root/--run-root as you use them), \
                 or install it as a service with `berth system install`.",
                self.socket.display()
            )
        })?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .context("talking to the daemon")?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    fn request(target: String, body: &Value) -> Result<http::Request<Full<Bytes>>> {
        let body = serde_json::to_vec(body)?;
        Ok(http::Request::builder()
            .method("POST")
            .uri("/")
            .header("host", "berth")
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .body(Full::new(Bytes::from(body)))?)
    }

    async fn call(&self, target: String, body: &Value) -> Result<Value> {
        let mut sender = self.connect().await?;
        let resp = sender
            .send_request(Self::request(target, body)?)
            .await
            .context("sending a request to the daemon")?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .context("reading the daemon's answer")?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(ApiFailure::from_body(&v).into());
        }
        Ok(v)
    }

    /// Calls an ECS operation.
    pub(crate) async fn ecs(&self, op: &str, body: Value) -> Result<Value> {
        self.call(format!("{ECS_PREFIX}{op}"), &body).await
    }

    /// Calls a berth operation with a JSON answer.
    pub(crate) async fn berth(&self, op: &str, body: Value) -> Result<Value> {
        self.call(format!("{BERTH_PREFIX}{op}"), &body).await
    }

    /// Calls a berth operation that takes the connection over (`101 Switching
    /// Protocols` to `protocol`) and returns the connection.
    pub(crate) async fn berth_upgrade(
        &self,
        op: &str,
        body: Value,
        protocol: &'static str,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let mut sender = self.connect().await?;
        let mut req = Self::request(format!("{BERTH_PREFIX}{op}"), &body)?;
        let h = req.headers_mut();
        h.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
        h.insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static(protocol),
        );
        let resp = sender
            .send_request(req)
            .await
            .context("sending a request to the daemon")?;
        if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status.is_success() {
                bail!("the daemon did not switch to {protocol} (is it an older berth?)");
            }
            return Err(ApiFailure::from_body(&v).into());
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .context("taking over the connection to the daemon")?;
        Ok(TokioIo::new(upgraded))
    }

    /// Calls a berth operation whose answer is a stream of JSON lines, handing each to
    /// `on_line` as it arrives.
    pub(crate) async fn berth_stream(
        &self,
        op: &str,
        body: Value,
        mut on_line: impl FnMut(Value) -> Result<()>,
    ) -> Result<()> {
        let mut sender = self.connect().await?;
        let resp = sender
            .send_request(Self::request(format!("{BERTH_PREFIX}{op}"), &body)?)
            .await
            .context("sending a request to the daemon")?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let bytes = body.collect().await?.to_bytes();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(ApiFailure::from_body(&v).into());
        }
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.context("reading the daemon's stream")?;
            if let Some(data) = frame.data_ref() {
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let v: Value =
                        serde_json::from_slice(&line).context("malformed stream line")?;
                    if let Some(err) = v.get("error") {
                        bail!("{}", err.as_str().unwrap_or("the daemon reported an error"));
                    }
                    on_line(v)?;
                }
            }
        }
        Ok(())
    }
}
