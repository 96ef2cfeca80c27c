//! Accepting connections and serving HTTP on them, with keep-alive and
//! upgrades. At stop, each open connection finishes the request in progress
//! and closes; the caller waits for them through the [`TaskTracker`].
//!
//! The TCP port and the callers socket serve plain HTTP/1.1 and TLS, told
//! apart by the first byte of the HTTP stream (see [`tls`](crate::tls));
//! over TLS, ALPN chooses HTTP/2 or HTTP/1.1. At most
//! `Config::max_connections` are served at once (see
//! [`limits`](crate::limits)); one more is answered 503 and closed. A client
//! speaking HTTP/2 in the clear without asking first (prior knowledge) is
//! told in its own protocol to use HTTP/1.1 there (HTTP/2 is served over TLS).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::limits::Throttle;
use crate::service::{handle, Peer, State};
use crate::tls::{self, Opening};

/// A client has this long to send a request's headers (slow-loris guard),
/// and to finish a TLS handshake.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Streams one HTTP/2 connection may have open at once (each holds a
/// request in progress, as one HTTP/1.1 connection holds one).
const H2_MAX_STREAMS: u32 = 256;

/// How often an idle HTTP/2 connection is pinged, and how long the answer
/// may take before the connection is taken for dead.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(30);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

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

    /// What happens on a new connection before HTTP, on its own task, and
    /// what the HTTP stream opens with: `None` when it is closed there.
    fn greet(
        stream: Self::Stream,
        accepted: Self::Accepted,
    ) -> impl Future<Output = Option<(Self::Stream, Peer, Opening)>> + Send;
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

    /// What the client opens with, from a look at its first bytes without
    /// taking them (one peek per connection).
    async fn greet(stream: TcpStream, client: HeaderValue) -> Option<(TcpStream, Peer, Opening)> {
        let mut first = [0u8; 24];
        let peeked = tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await;
        let opening = match peeked {
            Ok(Ok(n)) if n > 0 => tls::opening(&first[..n]),
            _ => Opening::Http1,
        };
        Some((stream, Peer::Http(client), opening))
    }
}

impl Accept for UnixListener {
    type Stream = UnixStream;
    type Accepted = ();

    async fn next(&self) -> io::Result<(UnixStream, (), tracing::Span)> {
        let (stream, _) = self.accept().await?;
        Ok((stream, (), tracing::debug_span!("control")))
    }

    /// The control socket speaks plain HTTP/1.1 only.
    async fn greet(stream: UnixStream, (): ()) -> Option<(UnixStream, Peer, Opening)> {
        Some((stream, Peer::Control, Opening::Http1))
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
    stop: watch::Receiver<bool>,
) {
    // Boxed, as are the TLS and HTTP/2 paths: awaited in place, they would
    // make every plain connection's task larger for its whole life.
    let Some((mut stream, peer, opening)) = Box::pin(L::greet(stream, accepted)).await else {
        return;
    };
    match opening {
        Opening::Http1 => serve_http1(stream, state, peer, false, stop).await,
        Opening::Tls => Box::pin(serve_tls(stream, state, peer, stop)).await,
        Opening::H2 => {
            tracing::debug!("HTTP/2 without TLS: told to use HTTP/1.1");
            Box::pin(say_and_close(&mut stream, &h2_goaway())).await;
        }
    }
}

/// A TLS connection: the handshake, then HTTP/2 or HTTP/1.1 as ALPN chose.
async fn serve_tls<S>(stream: S, state: Arc<State>, peer: Peer, stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(config) = state.tls.clone() else {
        tracing::debug!("TLS, but this router has no certificate authority: closed");
        return;
    };
    let Some(secured) = tls::handshake(stream, &config, HEADER_READ_TIMEOUT).await else {
        return;
    };
    if secured.h2 {
        serve_h2(secured.stream, state, peer, stop).await;
    } else {
        serve_http1(secured.stream, state, peer, true, stop).await;
    }
}

/// HTTP/1.1, with keep-alive and upgrades.
async fn serve_http1<S>(
    stream: S,
    state: Arc<State>,
    peer: Peer,
    secure: bool,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(Arc::clone(&state), req, peer.clone(), secure));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        // One buffer and one write() per flush rather than writev() of
        // headers and body: fewer cycles per small answer (BENCHMARKS.md).
        .writev(false)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    until_stopped(conn, stop).await;
}

/// HTTP/2 (over TLS), with WebSockets by extended CONNECT (RFC 8441).
async fn serve_h2<S>(stream: S, state: Arc<State>, peer: Peer, stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: hyper spawns each stream's future as a task of its own, and
    // moving the whole request future into every task cost more than one
    // allocation (BENCHMARKS.md).
    let service =
        service_fn(move |req| Box::pin(handle(Arc::clone(&state), req, peer.clone(), true)));
    let conn = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    until_stopped(conn, stop).await;
}

/// A connection of either version, which can be asked to end gracefully.
trait Graceful: Future<Output = hyper::Result<()>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S> Graceful for http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<I, S, E> Graceful for http2::Connection<I, S, E>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

/// Serves `conn` until it ends or, once `stop` turns true, until its
/// requests in progress are answered (an idle connection closes at once).
async fn until_stopped(conn: impl Graceful, mut stop: watch::Receiver<bool>) {
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => Some(ended),
        _ = stop.wait_for(|s| *s) => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = ended {
        tracing::debug!(%err, "connection ended");
    }
}
