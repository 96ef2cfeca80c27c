//! Accepting connections and serving HTTP/1.1 on them, with keep-alive and upgrades.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tracing::Instrument;

use crate::service::{handle, Peer, State};

/// A client has this long to send a request's headers (slow-loris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after an accept error (such as running out of descriptors) so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves HTTP on a TCP listener until `stop` turns true.
pub async fn serve_tcp(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let span = tracing::debug_span!("conn", peer = %addr);
                let client = HeaderValue::from_str(&addr.ip().to_string())
                    .expect("an IP address is a valid header value");
                serve_conn(stream, Arc::clone(&state), Peer::Http(client), span);
            }
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Serves the API on the control socket until `stop` turns true.
pub async fn serve_control(
    listener: UnixListener,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let span = tracing::debug_span!("control");
                serve_conn(stream, Arc::clone(&state), Peer::Control, span);
            }
            Err(err) => {
                tracing::warn!(%err, "control accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

fn serve_conn<S>(stream: S, state: Arc<State>, peer: Peer, span: tracing::Span)
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
    tokio::spawn(
        async move {
            if let Err(err) = conn.await {
                tracing::debug!(%err, "connection ended");
            }
        }
        .instrument(span),
    );
}
