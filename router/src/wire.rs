//! Requests without a body, sent by the request's own task on a pooled
//! Unix-socket connection: the head goes out in one write, the answer is read
//! with [`h1`](crate::h1), and its body streams to the client from the same
//! task. Hyper's client needs a task per connection and channels between it
//! and the request, which cost more than the proxying itself for small
//! answers (BENCHMARKS.md). Requests with a body, and upgrades, still go
//! through hyper's client (see [`pool`](crate::pool)).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::Method;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::body::BoxError;
use crate::h1::{self, Decoded, Decoder, H1Error, ResponseHead};
use crate::pool::Pool;

/// Read buffer growth: room for a typical answer in one read.
const READ_SIZE: usize = 16 * 1024;

/// An open connection to an instance, with what was read from it but not used yet.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    buf: BytesMut,
}

/// Idle connections of one socket, shared with the bodies that return them.
pub type Idle = Arc<Mutex<Vec<Conn>>>;

/// Why an exchange failed.
#[derive(Debug)]
pub enum WireError {
    /// Could not connect: nothing was sent.
    Connect(io::Error),
    /// A pooled connection was closed before any answer came: the instance
    /// had closed it while it sat idle, so the request was never read.
    Stale,
    /// The request was sent and no usable answer came.
    Failed(String),
}

/// An answer: its head, and its body streamed or already read whole.
#[derive(Debug)]
pub struct Answer {
    pub head: ResponseHead,
    pub body: AnswerBody,
}

#[derive(Debug)]
pub enum AnswerBody {
    Whole(Bytes),
    Stream(WireBody),
}

/// Sends `request` (a whole request head, no body) and reads the answer's
/// head. A sized body of at most `whole_up_to` bytes is read whole before
/// this returns; so is any sized body that already arrived with the head.
/// A request that must not be sent twice (not idempotent) gets a new
/// connection, since a pooled one may turn out [`WireError::Stale`].
pub async fn exchange(
    pool: &Pool,
    request: &Bytes,
    method: &Method,
    whole_up_to: u64,
) -> Result<Answer, WireError> {
    let pooled = if h1::is_idempotent(method) {
        pool.take_conn()
    } else {
        None
    };
    let reused = pooled.is_some();
    let mut conn = match pooled {
        Some(conn) => conn,
        None => Conn::connect(pool).await.map_err(WireError::Connect)?,
    };
    // A stale pooled connection fails here or at the first read, with
    // nothing read: told apart from a real failure by `reused`.
    let failed = |received: bool, err: String| {
        if reused && !received {
            WireError::Stale
        } else {
            WireError::Failed(err)
        }
    };
    if let Err(err) = conn.stream.write_all(request).await {
        return Err(failed(false, err.to_string()));
    }
    let mut received = false;
    let head = loop {
        match h1::parse_response(&mut conn.buf, method) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(err) => return Err(WireError::Failed(err.to_string())),
        }
        match poll_fn(|cx| conn.poll_fill(cx)).await {
            Ok(0) => {
                return Err(failed(received, H1Error::Truncated.to_string()));
            }
            Ok(_) => received = true,
            Err(err) => return Err(failed(received, err.to_string())),
        }
    };
    let body = WireBody {
        decoder: Decoder::new(head.framing),
        reusable: head.reusable,
        conn: Some(conn),
        idle: pool.idle_conns(),
    };
    let whole = match body.decoder.remaining() {
        Some(n) if n <= whole_up_to => Some(n),
        Some(n) if n <= body.buffered() as u64 => Some(n),
        _ => None,
    };
    let body = match whole {
        Some(n) => AnswerBody::Whole(body.read_whole(n).await.map_err(WireError::Failed)?),
        None => AnswerBody::Stream(body),
    };
    Ok(Answer { head, body })
}

impl Conn {
    async fn connect(pool: &Pool) -> io::Result<Conn> {
        Ok(Conn {
            stream: UnixStream::connect(pool.socket()).await?,
            buf: BytesMut::new(),
        })
    }

    /// Reads what the socket has into the buffer; `Ok(0)` is end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
            self.buf.reserve(READ_SIZE);
        }
        // Through AsyncRead rather than try_read: after a short read tokio
        // knows the socket is drained and waits for the next event instead
        // of asking the kernel again (one recv per answer, not two).
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf)
    }
}

/// An answer's body read from its connection as the client takes it. The
/// connection goes back to the pool when the body ends cleanly; dropped
/// before that, it is closed, since the rest of the answer may still be on it.
#[derive(Debug)]
pub struct WireBody {
    decoder: Decoder,
    reusable: bool,
    conn: Option<Conn>,
    idle: Idle,
}

impl WireBody {
    fn buffered(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.buf.len())
    }

    /// Reads a sized body of `n` bytes whole. Usually it came with the head
    /// and is one frame, handed on as it is; only a body in pieces is copied.
    async fn read_whole(mut self, n: u64) -> Result<Bytes, String> {
        let mut pieces: Option<BytesMut> = None;
        loop {
            match poll_fn(|cx| Pin::new(&mut self).poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if pieces.is_none() && data.len() as u64 == n {
                        return Ok(data);
                    }
                    pieces
                        .get_or_insert_with(|| BytesMut::with_capacity(n as usize))
                        .extend_from_slice(&data);
                }
                Some(Err(err)) => return Err(err.to_string()),
                None => return Ok(pieces.map_or_else(Bytes::new, BytesMut::freeze)),
            }
        }
    }

    /// The body ended: its connection goes back if it can carry another request.
    fn finish(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.reusable && conn.buf.is_empty() {
            crate::pool::put_back(&self.idle, conn);
        }
    }
}

impl Body for WireBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut conn.buf) {
                Ok(Decoded::Data(data)) => {
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::Done) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(err) => return Poll::Ready(Some(Err(this.fail(err.into())))),
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => {
                    return match this.decoder.eof() {
                        Ok(()) => {
                            // Read until close: the connection is spent.
                            this.conn = None;
                            Poll::Ready(None)
                        }
                        Err(err) => Poll::Ready(Some(Err(this.fail(err.into())))),
                    };
                }
                Ok(_) => {}
                Err(err) => return Poll::Ready(Some(Err(this.fail(err.into())))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl WireBody {
    /// A failed body closes its connection.
    fn fail(&mut self, err: BoxError) -> BoxError {
        self.conn = None;
        err
    }
}
