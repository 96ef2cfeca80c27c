//! An instance's answer body on its way to the client: read from its
//! connection frame by frame as the client takes it, never buffered whole,
//! or (small answers to replayable requests) read whole before it is passed on.
//!
//! A streamed body holds the request's [`InFlight`] guard until its last
//! frame, so "in flight" means until the instance's answer is complete, and
//! gives its connection back to the pool then. Dropped before its end, it
//! closes the connection, since the rest of the answer may still be on it.
//!
//! A body that breaks (bad framing, the instance gone) breaks the client's
//! connection too, and when that happens decides what the client sees. What
//! arrived with the head is decoded before the answer is passed on, so a
//! body broken from its start is an error the client gets as a 502 instead
//! of an answer. Later, the break is handed to hyper one poll after it was
//! found: hyper then first writes out the head and data it holds (it drops
//! them when a body fails with them still buffered, and the client would
//! get an empty reply), and then closes the connection.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

use super::conn::Conn;
use super::h1::{Decoded, Decoder, Framing, H1Error};
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
    /// body that already arrived with the head. Any other body is streamed,
    /// once what is at hand of it has been looked at. `reusable` says
    /// whether the connection may carry another request once the body is read.
    pub async fn read(
        conn: Conn,
        framing: Framing,
        reusable: bool,
        idle: &Idle,
        guard: InFlight,
        whole_up_to: u64,
    ) -> Result<AnswerBody, H1Error> {
        let body = Streaming {
            decoder: Decoder::new(framing),
            reusable,
            conn: Some(conn),
            idle: idle.clone(),
            guard: Some(guard),
            first: None,
            broken: None,
        };
        let whole = match body.decoder.remaining() {
            Some(n) if n <= whole_up_to => Some(n),
            Some(n) if n <= body.buffered() as u64 => Some(n),
            _ => None,
        };
        match whole {
            Some(n) => body.read_whole(n).await.map(AnswerBody::Whole),
            None => body.first_look().await,
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
    /// Data decoded before the answer was passed on, handed out first.
    first: Option<Bytes>,
    /// A break found by the last poll, for the next one (see the module doc).
    broken: Option<H1Error>,
}

impl Streaming {
    fn buffered(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.buf.len())
    }

    /// Reads a sized body of `n` bytes whole. Usually it came with the head
    /// and is one frame, handed on as it is; only a body in pieces is copied.
    async fn read_whole(mut self, n: u64) -> Result<Bytes, H1Error> {
        let mut pieces: Option<BytesMut> = None;
        loop {
            match poll_fn(|cx| self.poll_decode(cx)).await {
                Some(Ok(data)) => {
                    if pieces.is_none() && data.len() as u64 == n {
                        return Ok(data);
                    }
                    pieces
                        .get_or_insert_with(|| BytesMut::with_capacity(n as usize))
                        .extend_from_slice(&data);
                }
                Some(Err(err)) => return Err(err),
                None => return Ok(pieces.map_or_else(Bytes::new, BytesMut::freeze)),
            }
        }
    }

    /// Decodes what is at hand of the body (what came with the head, or is
    /// ready on the socket) without waiting for more: a body broken from
    /// its start is an error here, before anything reached the client. A
    /// body complete already is whole.
    async fn first_look(mut self) -> Result<AnswerBody, H1Error> {
        let look = poll_fn(|cx| Poll::Ready(self.poll_decode(cx))).await;
        match look {
            Poll::Ready(Some(Err(err))) => Err(err),
            Poll::Ready(None) => Ok(AnswerBody::Whole(Bytes::new())),
            Poll::Ready(Some(Ok(data))) if self.decoder.is_done() => Ok(AnswerBody::Whole(data)),
            Poll::Ready(Some(Ok(data))) => {
                self.first = Some(data);
                Ok(AnswerBody::Stream(self))
            }
            Poll::Pending => Ok(AnswerBody::Stream(self)),
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
    fn fail(&mut self, err: H1Error) -> H1Error {
        if let Some(guard) = &self.guard {
            let message = format!("failed while answering: {err}");
            guard.backend().activity.failed(&message);
        }
        self.conn = None;
        self.guard = None;
        err
    }

    /// The body's next piece of data, as it comes off the connection.
    fn poll_decode(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, H1Error>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match self.decoder.decode(&mut conn.buf) {
                // hyper stops polling once is_end_stream() says so, so the
                // frame that completes a body counts as its end too.
                Ok(Decoded::Data(data)) => {
                    if self.decoder.is_done() {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Ok(Decoded::Done) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(err) => return Poll::Ready(Some(Err(self.fail(err)))),
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => {
                    return match self.decoder.eof() {
                        Ok(()) => {
                            // Read until close: the connection is spent.
                            self.reusable = false;
                            self.finish();
                            Poll::Ready(None)
                        }
                        Err(err) => Poll::Ready(Some(Err(self.fail(err)))),
                    };
                }
                Ok(_) => {}
                Err(err) => return Poll::Ready(Some(Err(self.fail(err.into())))),
            }
        }
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
        if let Some(err) = this.broken.take() {
            return Poll::Ready(Some(Err(err.into())));
        }
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match ready!(this.poll_decode(cx)) {
            Some(Ok(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None => Poll::Ready(None),
            // Handed out on the next poll, once hyper wrote what it holds.
            Some(Err(err)) => {
                this.broken = Some(err);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.broken.is_none() && self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().map_or(0, |f| f.len() as u64);
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n + first),
            None => SizeHint::default(),
        }
    }
}
