//! Whether a service is ready, judged from the run directory (the
//! supervisor never runs under the shim, so it reaches an instance's
//! listener through its socket, not through a TCP port).
//!
//! - default: the service's first listener is live;
//! - `port P`: the instance has a live listener on P, in any of its apps;
//! - `http://localhost:P/path`: `GET /path` on the instance's listener for
//!   P (its own app's first) answers 2xx or 3xx.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use agentfs_contract::rundir::{self, Entry};

use crate::stack::spec::{Ready, Service};

/// How long one HTTP probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most of an answer's head read to find its status line.
const HEAD_LIMIT: usize = 1024;
/// Most of an answer read in all: the rest of it is read and dropped, so the
/// app never sees its answer cut short (a broken pipe in its log) unless it
/// is this large.
const ANSWER_LIMIT: u64 = 1024 * 1024;

/// A probe's verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    Ready,
    /// Not yet, and why.
    NotYet(String),
}

pub async fn probe(run_dir: &Path, instance: &str, service: &Service) -> Probe {
    let scan = match rundir::scan(run_dir) {
        Ok(scan) => scan,
        Err(err) => return Probe::NotYet(format!("cannot read the run directory: {err}")),
    };
    match &service.ready {
        Ready::Listener => {
            if scan
                .of_instance(&service.name, instance)
                .any(Entry::is_live)
            {
                Probe::Ready
            } else {
                Probe::NotYet("not listening yet".to_owned())
            }
        }
        Ready::Port(port) => match listener(&scan, instance, *port, &service.name) {
            Some(_) => Probe::Ready,
            None => Probe::NotYet(format!("nothing listens on port {port} yet")),
        },
        Ready::Http { port, path } => match listener(&scan, instance, *port, &service.name) {
            Some(socket) => http(&socket, *port, path).await,
            None => Probe::NotYet(format!("nothing listens on port {port} yet")),
        },
    }
}

/// The socket of the instance's live listener on `port`, the service's own first.
fn listener(
    scan: &rundir::Scan,
    instance: &str,
    port: u16,
    own: &str,
) -> Option<std::path::PathBuf> {
    let mut live: Vec<&Entry> = scan
        .in_scope(instance, port)
        .filter(|e| e.is_live())
        .collect();
    live.sort_by_key(|e| e.sidecar.app != own);
    live.first().map(|e| e.sidecar.socket.clone())
}

async fn http(socket: &Path, port: u16, path: &str) -> Probe {
    let what = format!("GET http://localhost:{port}{path}");
    match tokio::time::timeout(PROBE_TIMEOUT, status_of(socket, port, path)).await {
        Err(_) => Probe::NotYet(format!("{what} did not answer within {PROBE_TIMEOUT:?}")),
        Ok(Err(err)) => Probe::NotYet(format!("{what} failed: {err}")),
        Ok(Ok(status)) if (200..400).contains(&status) => Probe::Ready,
        Ok(Ok(status)) => Probe::NotYet(format!("{what} answered {status}")),
    }
}

/// The status code of `GET path` on `socket`.
async fn status_of(socket: &Path, port: u16, path: &str) -> std::io::Result<u16> {
    let mut stream = UnixStream::connect(socket).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nUser-Agent: agentfs-ready\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < HEAD_LIMIT {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let mut rest = (&mut stream).take(ANSWER_LIMIT);
    tokio::io::copy(&mut rest, &mut tokio::io::sink()).await?;
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .filter(|_| line.starts_with("HTTP/"))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("the answer is not HTTP"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    #[tokio::test]
    async fn an_http_probe_reads_the_status() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("s.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 204 No Content\r\n\r\n",
                "HTTP/1.1 503 Busy\r\n\r\n",
                "hello",
            ] {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let n = conn.read(&mut buf).await.unwrap();
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /health HTTP/1.1"));
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        assert_eq!(http(&socket, 8000, "/health").await, Probe::Ready);
        let busy = http(&socket, 8000, "/health").await;
        assert_eq!(
            busy,
            Probe::NotYet("GET http://localhost:8000/health answered 503".into())
        );
        assert!(
            matches!(http(&socket, 8000, "/health").await, Probe::NotYet(why) if why.contains("not HTTP"))
        );
        server.await.unwrap();
    }
}
