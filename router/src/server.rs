//! Accepting connections and serving HTTP/1.1 on them, with keep-alive and
//! upgrades. At stop, each open connection finishes the request in progress
//! and closes; the caller waits for them through the [`TaskTracker`].
//!
//! At most `Config::max_connections` are served at once (see
//! [`limits`](crate::limits)); one more is answered 503 and closed. A client
//! speaking HTTP/2 without asking first (prior knowledge) is told in its own
//! protocol that this router speaks HTTP/1.1 only.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::limits::Throttle;
use crate::service::{handle, Peer, State};

/// A client has this long to send a request's headers (slow-loris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after an accept error (such as running out of descriptors) so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Connections over the limit that may be answered 503 at once (each holds
/// a descriptor for up to [`REFUSE_LINGER`]): an eighth of the limit, at
/// most this. Past that, a flood's connections get the 503 only if it can
/// be written at once, and are closed straight away.
const MAX_REFUSING: usize = 512;

/// How long a refused client gets to read its answer before the close.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// The start of HTTP/2's connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A listener the router serves: how a connection is accepted, what it must
/// say before HTTP starts, and who is on the other end. TCP clients get
/// proxied; the callers socket too, knowing the caller's instance; the
/// control socket gets only the API.
pub trait Accept: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// What accepting told about the client.
    type Accepted: Send + 'static;

    fn next(
        &self,
    ) -> impl Future<Output = io::Result<(Self::Stream, Self::Accepted, tracing::Span)>> + Send;

    /// What happens on a new connection before HTTP, on its own task:
    /// `None` when it is closed there.
    fn greet(
        stream: Self::Stream,
        accepted: Self::Accepted,
    ) -> impl Future<Output = Option<(Self::Stream, Peer)>> + Send;
}

impl Accept for TcpListener {
    type Stream = TcpStream;
    /// The client's address, as it goes into X-Forwarded-For.
    type Accepted = HeaderValue;

    async fn next(&self) -> io::Result<(TcpStream, HeaderValue, tracing::Span)> {
        let (stream, addr) = self.accept().await?;
        let _ = stream.set_nodelay(true);
        let client = HeaderValue::from_str(&addr.ip().to_string())
            .expect("an IP address is a valid header value");
        let span = tracing::debug_span!("conn", peer = %addr);
        Ok((stream, client, span))
    }

    /// A client that opens with HTTP/2's preface instead of HTTP/1 is told
    /// in HTTP/2 to use HTTP/1.1, and closed.
    async fn greet(mut stream: TcpStream, client: HeaderValue) -> Option<(TcpStream, Peer)> {
        if speaks_h2(&stream).await {
            tracing::debug!("HTTP/2 without upgrade: told to use HTTP/1.1");
            say_and_close(&mut stream, &h2_goaway()).await;
            return None;
        }
        Some((stream, Peer::Http(client)))
    }
}

/// Whether the client opened with HTTP/2's preface: a look at the first
/// bytes without taking them (one peek per connection). An HTTP/1 request
/// never starts like the preface.
async fn speaks_h2(stream: &TcpStream) -> bool {
    let mut first = [0u8; 24];
    let peeked = tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(n)) if n >= 3 => H2_PREFACE.starts_with(&first[..n]),
        _ => false,
    }
}

impl Accept for UnixListener {
    type Stream = UnixStream;
    type Accepted = ();

    async fn next(&self) -> io::Result<(UnixStream, (), tracing::Span)> {
        let (stream, _) = self.accept().await?;
        Ok((stream, (), tracing::debug_span!("control")))
    }

    async fn greet(stream: UnixStream, (): ()) -> Option<(UnixStream, Peer)> {
        Some((stream, Peer::Control))
    }
}

/// What every accept loop of one router shares.
#[derive(Clone, Debug)]
pub struct Gate {
    /// One permit per connection the router may hold.
    pub open: Arc<Semaphore>,
    /// One permit per over-the-limit connection being answered 503.
    pub refusing: Arc<Semaphore>,
    /// The 503 answer, made once.
    pub refusal: Arc<[u8]>,
    pub limit: usize,
}

impl Gate {
    pub fn new(max_connections: usize, refusal: Vec<u8>) -> Gate {
        Gate {
            open: Arc::new(Semaphore::new(max_connections)),
            refusing: Arc::new(Semaphore::new((max_connections / 8).clamp(1, MAX_REFUSING))),
            refusal: refusal.into(),
            limit: max_connections,
        }
    }
}

/// Serves `listener` until `stop` turns true; its connections are spawned
/// on `connections`, as long as `gate` lets them in.
pub async fn serve<L: Accept>(
    listener: L,
    state: Arc<State>,
    gate: Gate,
    mut stop: watch::Receiver<bool>,
    connections: TaskTracker,
) {
    let mut throttle = Throttle::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.next() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, accepted, span)) => match Arc::clone(&gate.open).try_acquire_owned() {
                Ok(permit) => {
                    let state = Arc::clone(&state);
                    let conn = serve_conn::<L>(stream, state, accepted, permit, stop.clone());
                    connections.spawn(conn.instrument(span));
                }
                Err(_) => refuse(stream, &gate, &mut throttle),
            },
            Err(err) => {
                if let Some(unlogged) = throttle.report(Instant::now()) {
                    tracing::warn!(%err, unlogged, "accept failed");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Answers a connection over the limit with the 503 and closes it, after
/// giving the client a moment to read it (closing with its request unread
/// would reset the connection and lose the answer).
fn refuse<S>(mut stream: S, gate: &Gate, throttle: &mut Throttle)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some(unlogged) = throttle.report(Instant::now()) {
        tracing::warn!(
            limit = gate.limit,
            unlogged,
            "connection limit reached: refusing new connections"
        );
    }
    let Ok(permit) = Arc::clone(&gate.refusing).try_acquire_owned() else {
        // No waiting for a write that cannot go out now.
        let mut cx = Context::from_waker(Waker::noop());
        let _ = Pin::new(&mut stream).poll_write(&mut cx, &gate.refusal);
        return;
    };
    let refusal = Arc::clone(&gate.refusal);
    tokio::spawn(async move {
        let _permit = permit;
        say_and_close(&mut stream, &refusal).await;
    });
}

/// Writes `last` and closes, reading what the client still sends for a
/// moment: closing with its bytes unread would reset the connection, and
/// the client could lose what it was told.
async fn say_and_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, last: &[u8]) {
    let answer = async {
        stream.write_all(last).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSE_LINGER, answer).await;
}

/// HTTP/2's answer to a client that spoke it without asking: our SETTINGS
/// (the server's preface), then GOAWAY with HTTP_1_1_REQUIRED and why.
fn h2_goaway() -> Vec<u8> {
    let why = b"this router speaks HTTP/1.1 only";
    let mut out = vec![0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    let len = 8 + why.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, 0x7, 0]);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&0xdu32.to_be_bytes());
    out.extend_from_slice(why);
    out
}

/// One connection, served until the client closes it or, after `stop`,
/// until the request in progress is answered. It holds its place under the
/// connection limit (`_permit`) until then. (Held here rather than by a
/// wrapping future: an async fn keeps its argument and the future it awaits
/// side by side, and the task of every connection would be twice the size.)
async fn serve_conn<L: Accept>(
    stream: L::Stream,
    state: Arc<State>,
    accepted: L::Accepted,
    _permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    // Boxed: awaited in place, it would make every connection's task
    // larger for its whole life, though it is done with at once.
    let Some((stream, peer)) = Box::pin(L::greet(stream, accepted)).await else {
        return;
    };
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
