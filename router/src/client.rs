//! A small client for the router's JSON API over its control socket, for
//! `agentfs router status`, `agentfs wrap` and tests.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;

/// Largest API answer accepted.
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    // The cause is in the message and not a `source`, so a chain printer
    // shows it once.
    #[error("no router answers on {path}: {error}")]
    Connect { path: String, error: std::io::Error },
    #[error("the router's answer was cut short: {0}")]
    Http(String),
    #[error("the router answered with something that is not its JSON envelope: {0}")]
    Envelope(String),
    #[error("the router answered {code}: {message}")]
    Api { code: String, message: String },
}

/// `GET path` on the control socket; returns the envelope's `data`.
pub async fn get(socket: &Path, path: &str) -> Result<Value, ClientError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|error| ClientError::Connect {
            path: socket.display().to_string(),
            error,
        })?;
    let http = |e: hyper::Error| ClientError::Http(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "agentfs.localhost")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(http)?;
    let body = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes();
    envelope(&body)
}

/// `GET path` on the control socket without an async runtime (usable from
/// inside one too): one HTTP/1.0 exchange, bounded by `timeout`.
pub fn get_blocking(
    socket: &Path,
    path: &str,
    timeout: std::time::Duration,
) -> Result<Value, ClientError> {
    use std::io::{Read, Write};
    let connect = |error| ClientError::Connect {
        path: socket.display().to_string(),
        error,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(connect)?;
    stream.set_read_timeout(Some(timeout)).map_err(connect)?;
    stream.set_write_timeout(Some(timeout)).map_err(connect)?;
    let io = |e: std::io::Error| ClientError::Http(e.to_string());
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: agentfs.localhost\r\n\r\n"
    )
    .map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER as u64)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| &answer[at + 4..])
        .ok_or_else(|| ClientError::Http("no end of headers".into()))?;
    envelope(body)
}

fn envelope(body: &[u8]) -> Result<Value, ClientError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ClientError::Envelope(e.to_string()))?;
    match value["status"].as_str() {
        Some("success") => Ok(value["data"].clone()),
        Some("error") => Err(ClientError::Api {
            code: value["error"]["code"].as_str().unwrap_or("").to_owned(),
            message: value["error"]["message"].as_str().unwrap_or("").to_owned(),
        }),
        _ => Err(ClientError::Envelope(value.to_string())),
    }
}
