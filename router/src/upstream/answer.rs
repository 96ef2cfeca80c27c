//! An instance's answer body on its way to the client: read from its
//! connection frame by frame as the client takes it, never buffered whole,
//! or (small answers to replayable requests) read whole before it is passed on.
//!
//! A streamed body holds the request's [`InFlight`] guard until its last
//! frame, so "in flight" means until the instance's answer is complete, and
//! gives its connection back to the pool then. Dropped before its end, it
//! closes the connection, since the rest of the answer may still be on it.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

use super::conn::Conn;
use super::h1::{Decoded, Decoder, Framing};
use super::pool::Idle;
use crate::error::BoxError;
use crate::table::InFlight;

/// An answer's body: whole, or streamed from the instance.
#[derive(Debug)]
pub enum AnswerBody {
    Whole(Bytes),
    Stream(Streaming),
}

impl AnswerBody {
    /// The body that follows a head with `framing` on `conn`. A sized body
    /// of at most `whole_up_to` bytes is read whole first; so is any sized
    /// body that already arrived with the head. `reusable` says whether the
    /// connection may carry another request once the body is read.
    pub async fn read(
        conn: Conn,
        framing: Framing,
        reusable: bool,
        idle: &Idle,
        guard: InFlight,
        whole_up_to: u64,
    ) -> Result<AnswerBody, String> {
        let body = Streaming {
            decoder: Decoder::new(framing),
            reusable,
            conn: Some(conn),
            idle: idle.clone(),
            guard: Some(guard),
        };
        let whole = match body.decoder.remaining() {
            Some(n) if n <= whole_up_to => Some(n),
            Some(n) if n <= body.buffered() as u64 => Some(n),
            _ => None,
        };
        match whole {
            Some(n) => body.read_whole(n).await.map(AnswerBody::Whole),
            None => Ok(AnswerBody::Stream(body)),
        }
    }
}

/// An answer's body read from its connection as the client takes it.
#[derive(Debug)]
pub struct Streaming {
    decoder: Decoder,
    reusable: bool,
    conn: Option<Conn>,
    idle: Idle,
    guard: Option<InFlight>,
}

impl Streaming {
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

    /// The body ended: the request is done at its instance, and the
    /// connection goes back if it can carry another request.
    fn finish(&mut self) {
        self.guard = None;
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.reusable && conn.buf.is_empty() {
            self.idle.put_back(conn);
        }
    }

    /// A failed body closes its connection, and is the instance's failure.
    fn fail(&mut self, err: BoxError) -> BoxError {
        if let Some(guard) = &self.guard {
            let message = format!("failed while answering: {err}");
            guard.backend().activity.failed(&message);
        }
        self.conn = None;
        self.guard = None;
        err
    }
}

impl Body for Streaming {
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
                // hyper stops polling once is_end_stream() says so, so the
                // frame that completes a body counts as its end too.
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
                            this.reusable = false;
                            this.finish();
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
