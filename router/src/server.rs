//! Accepting connections and serving HTTP/1.1 on them, with keep-alive and
//! upgrades. At stop, each open connection finishes the request in progress
//! and closes; the caller waits for them through the [`TaskTracker`].

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::service::{handle, Peer, State};

/// A client has this long to send a request's headers (slow-loris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after an accept error (such as running out of descriptors) so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A listener the router serves: how a connection is accepted and who is on
/// the other end. TCP clients get proxied; the control socket gets only the API.
pub trait Accept: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    fn next(&self) -> impl Future<Output = io::Result<(Self::Stream, Peer, tracing::Span)>> + Send;
}

impl Accept for TcpListener {
    type Stream = TcpStream;

    async fn next(&self) -> io::Result<(TcpStream, Peer, tracing::Span)> {
        let (stream, addr) = self.accept().await?;
        let _ = stream.set_nodelay(true);
        let client = HeaderValue::from_str(&addr.ip().to_string())
            .expect("an IP address is a valid header value");
        let span = tracing::debug_span!("conn", peer = %addr);
        Ok((stream, Peer::Http(client), span))
    }
}

impl Accept for UnixListener {
    type Stream = UnixStream;

    async fn next(&self) -> io::Result<(UnixStream, Peer, tracing::Span)> {
        let (stream, _) = self.accept().await?;
        Ok((stream, Peer::Control, tracing::debug_span!("control")))
    }
}

/// Serves `listener` until `stop` turns true; its connections are spawned
/// on `connections`.
pub async fn serve<L: Accept>(
    listener: L,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.next() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, peer, span)) => {
                let conn = serve_conn(stream, Arc::clone(&state), peer, stop.clone());
                connections.spawn(conn.instrument(span));
            }
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// One connection, served until the client closes it or, after `stop`,
/// until the request in progress is answered.
async fn serve_conn<S>(stream: S, state: Arc<State>, peer: Peer, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(Arc::clone(&state), req, peer.clone()));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        // One buffer and one write() per flush rather than writev() of
        // headers and body: fewer cycles per small answer (BENCHMARKS.md).
        .writev(false)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => Some(ended),
        _ = stop.wait_for(|s| *s) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            // An idle connection closes at once, a busy one after its answer.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = ended {
        tracing::debug!(%err, "connection ended");
    }
}
