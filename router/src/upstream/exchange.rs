//! One request on one connection to one instance: the head (and the client's
//! body) out, the answer's head in. This is where it is decided how a request
//! is carried:
//!
//! - A request that could be sent again if its connection turned out stale
//!   (bodiless, idempotent) takes a pooled connection; every other request
//!   opens its own, so it is never lost to a connection the instance closed
//!   while it sat idle. Either way the connection goes back to the pool
//!   after a complete answer.
//! - A bodiless request is one write of its head; the answer is then read on
//!   the request's own task.
//! - A request with a body streams the client's frames out (as they are when
//!   their length is known, chunked otherwise) while the answer's head is
//!   read on the same task, so an answer that comes before the body is done
//!   (a 413, say) is passed on at once.
//! - After a 101 to a request that asked for an upgrade, the connection,
//!   with any bytes already read, becomes one end of a tunnel.
//!
//! The wait for an answer's head is bounded. A request whose wait was cut
//! short (the time ran out, or the client went away) still counts as in
//! flight at its instance until the instance answers or closes, so
//! balancing steers away from an instance that stopped answering.

use std::future::poll_fn;
use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::answer::AnswerBody;
use super::conn::{self, Conn};
use super::h1::{self, H1Error, ResponseHead};
use crate::table::{Backend, InFlight};

/// How long a request whose wait was cut short may still count as in flight
/// at an instance that neither answers nor closes (a stopped process).
const LINGER_MAX: Duration = Duration::from_secs(300);

/// A request ready to be sent to any instance, as often as needed.
#[derive(Debug)]
pub struct Outgoing {
    /// The whole request head, encoded once.
    pub head: Bytes,
    pub method: Method,
    /// The client's body; `None` for a bodiless request.
    pub body: Option<ClientBody>,
    /// The client's side of an upgrade it asked for.
    pub upgrade: Option<OnUpgrade>,
}

/// The body of a client's request, and how it goes out.
#[derive(Debug)]
pub struct ClientBody {
    pub incoming: Incoming,
    /// Chunk-encoded (the length is unknown) rather than sent as it is.
    pub chunked: bool,
}

impl Outgoing {
    /// Whether the request may be sent again after a failure that left its
    /// fate unknown: it has no body to lose and sending it twice is harmless.
    pub fn may_repeat(&self) -> bool {
        self.body.is_none() && h1::is_idempotent(&self.method)
    }
}

/// What an instance made of a request.
#[derive(Debug)]
pub enum Reply {
    Answer {
        head: ResponseHead,
        body: AnswerBody,
    },
    /// 101 Switching Protocols: the connection now carries the new protocol.
    Switched {
        head: ResponseHead,
        conn: Conn,
        guard: InFlight,
    },
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Answer { head, .. } | Reply::Switched { head, .. } => head.status,
        }
    }
}

/// Why an attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Could not connect: nothing was sent.
    Connect(io::Error),
    /// A pooled connection was closed before any answer came: the instance
    /// had closed it while it sat idle, so the request was never read.
    Stale,
    /// The request was (partly) sent and no usable answer came.
    Failed(String),
    /// The instance answered with something no client may be given (broken
    /// framing, a malformed head), before anything reached the client.
    Malformed(String),
    /// The client's body broke off or was malformed: the client's fault.
    Client(String),
    /// No answer's head within the time limit.
    Timeout,
}

/// Sends `out` to `backend` and reads the answer's head, then its body as
/// [`AnswerBody::read`] does with `whole_up_to`.
pub async fn attempt(
    backend: &Backend,
    out: &mut Outgoing,
    guard: InFlight,
    limit: Duration,
    whole_up_to: u64,
) -> Result<Reply, Failure> {
    let pooled = if out.may_repeat() {
        backend.pool.take()
    } else {
        None
    };
    let reused = pooled.is_some();
    let conn = match pooled {
        Some(conn) => conn,
        None => backend.pool.connect().await.map_err(Failure::Connect)?,
    };
    let mut waiting = Waiting::new(conn, guard);
    let conn = waiting.conn.as_mut().expect("set just now");
    let upgrade = out.upgrade.is_some();
    let sent = match out.body.as_mut() {
        None => send_bodiless(conn, &out.head, &out.method, upgrade, reused, limit).await,
        // Boxed: hyper keeps each connection's request future in one
        // allocation for the connection's life, sized for its largest
        // state, and this one (two halves, a timer, a select) would make
        // every connection, idle ones too, several KiB larger.
        Some(body) => {
            Box::pin(send_with_body(
                conn,
                &out.head,
                body,
                &out.method,
                upgrade,
                limit,
            ))
            .await
        }
    };
    let (head, complete) = match sent {
        Ok(sent) => sent,
        Err(Failure::Timeout) => {
            waiting.linger();
            return Err(Failure::Timeout);
        }
        Err(failure) => {
            drop(waiting.done());
            return Err(failure);
        }
    };
    let (conn, guard) = waiting.done();
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok(Reply::Switched { head, conn, guard });
    }
    let reusable = head.reusable && complete;
    let idle = backend.pool.idle();
    let body = AnswerBody::read(conn, head.framing, reusable, idle, guard, whole_up_to)
        .await
        .map_err(unusable)?;
    Ok(Reply::Answer { head, body })
}

/// An answer that could not be read, as a failure of the attempt.
fn unusable(err: H1Error) -> Failure {
    if err.is_malformed() {
        Failure::Malformed(err.to_string())
    } else {
        Failure::Failed(err.to_string())
    }
}

/// A bodiless request: its head in one write, then the answer's head.
/// Returns the head and whether the request went out whole (always).
async fn send_bodiless(
    conn: &mut Conn,
    head: &Bytes,
    method: &Method,
    upgrade: bool,
    reused: bool,
    limit: Duration,
) -> Result<(ResponseHead, bool), Failure> {
    if let Err(err) = conn.stream.write_all(head).await {
        return Err(failed(reused, false, err.to_string()));
    }
    let Conn { stream, buf } = conn;
    let read = read_head(stream, buf, method, upgrade, reused);
    match tokio::time::timeout(limit, read).await {
        Ok(head) => Ok((head?, true)),
        Err(_) => Err(Failure::Timeout),
    }
}

/// A request with a body: the body goes out while the answer's head is
/// read, both on this task over the connection's two halves. The time limit
/// runs while the instance keeps us waiting: while a write cannot go out,
/// and from the end of the body until the head. Returns the head and
/// whether the whole body went out before it.
async fn send_with_body(
    conn: &mut Conn,
    head: &Bytes,
    body: &mut ClientBody,
    method: &Method,
    upgrade: bool,
    limit: Duration,
) -> Result<(ResponseHead, bool), Failure> {
    let Conn { stream, buf } = conn;
    let (mut reader, mut writer) = stream.split();
    let send = send_request(&mut writer, head, body, limit);
    let read = read_head(&mut reader, buf, method, upgrade, false);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(send, read, deadline);
    let mut sent: Option<Result<(), Failure>> = None;
    loop {
        tokio::select! {
            biased;
            head = &mut read => {
                return Ok((head?, matches!(sent, Some(Ok(())))));
            }
            done = &mut send, if sent.is_none() => match done {
                Err(Failure::Client(err)) => return Err(Failure::Client(err)),
                Err(Failure::Timeout) => return Err(Failure::Timeout),
                // The instance stopped reading (it may have answered early
                // and closed): its answer, if any, is still to be read.
                done => {
                    deadline.as_mut().reset(Instant::now() + limit);
                    sent = Some(done);
                }
            },
            _ = &mut deadline, if sent.is_some() => return Err(Failure::Timeout),
        }
    }
}

/// Writes the head, then the client's body frame by frame. Trailers are
/// dropped: the client's TE was not forwarded.
async fn send_request<W: AsyncWrite + Unpin>(
    writer: &mut W,
    head: &Bytes,
    body: &mut ClientBody,
    limit: Duration,
) -> Result<(), Failure> {
    write_within(writer, head.clone(), limit).await?;
    while let Some(frame) = body.incoming.frame().await {
        let frame = frame.map_err(|err| Failure::Client(err.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if body.chunked {
            let chunk = h1::chunk_head(data.len()).chain(data).chain(h1::CHUNK_END);
            write_within(writer, chunk, limit).await?;
        } else {
            write_within(writer, data, limit).await?;
        }
    }
    if body.chunked {
        write_within(writer, h1::LAST_CHUNK, limit).await?;
    }
    Ok(())
}

async fn write_within<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut bytes: impl Buf,
    limit: Duration,
) -> Result<(), Failure> {
    match tokio::time::timeout(limit, writer.write_all_buf(&mut bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(Failure::Failed(err.to_string())),
        Err(_) => Err(Failure::Timeout),
    }
}

/// Reads until the answer's head is complete. A connection that ends with
/// nothing read was stale when it came from the pool (`reused`).
async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    method: &Method,
    upgrade: bool,
    reused: bool,
) -> Result<ResponseHead, Failure> {
    let mut received = false;
    loop {
        match h1::parse_response(buf, method, upgrade) {
            Ok(Some(head)) => return Ok(head),
            Ok(None) => {}
            Err(err) => return Err(unusable(err)),
        }
        match poll_fn(|cx| conn::poll_fill(reader, buf, cx)).await {
            Ok(0) => return Err(failed(reused, received, H1Error::Truncated.to_string())),
            Ok(_) => received = true,
            Err(err) => return Err(failed(reused, received, err.to_string())),
        }
    }
}

/// A stale pooled connection fails at the first write or read with nothing
/// read: told apart from a real failure by `reused`.
fn failed(reused: bool, received: bool, err: String) -> Failure {
    if reused && !received {
        Failure::Stale
    } else {
        Failure::Failed(err)
    }
}

/// A connection waiting for an answer's head, with its request's guard. If
/// the wait is cut short (the future is dropped because the client went
/// away, or the time ran out), both stay alive until the instance answers
/// or closes: its side of the request is not done before that.
struct Waiting {
    conn: Option<Conn>,
    guard: Option<InFlight>,
}

impl Waiting {
    fn new(conn: Conn, guard: InFlight) -> Waiting {
        Waiting {
            conn: Some(conn),
            guard: Some(guard),
        }
    }

    /// The wait is over (the head came, or the attempt failed): the
    /// connection and guard go on with the answer, or are dropped.
    fn done(mut self) -> (Conn, InFlight) {
        let conn = self.conn.take().expect("taken once");
        let guard = self.guard.take().expect("taken once");
        (conn, guard)
    }

    fn linger(&mut self) {
        let (Some(mut conn), Some(guard)) = (self.conn.take(), self.guard.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let answered = poll_fn(|cx| conn.poll_fill(cx));
            let _ = tokio::time::timeout(LINGER_MAX, answered).await;
            drop(guard);
        });
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.linger();
    }
}
