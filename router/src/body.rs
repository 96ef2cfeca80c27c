//! What goes back to the client: an instance's answer body (streamed frame by
//! frame, never buffered whole; see [`answer`](crate::upstream::answer)), a
//! page the router wrote itself, or its event stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::error::BoxError;
use crate::upstream::answer::{AnswerBody, Streaming};

/// A response body on its way to the client.
#[derive(Debug)]
pub enum ResBody {
    /// An instance's answer, read as the client takes it.
    Stream(Streaming),
    /// Bytes already at hand: a page, or a small answer read whole.
    Whole(Option<Bytes>),
    /// Bytes a task of the router sends as it makes them (the event
    /// stream, see [`events`](crate::api::events)); ends when it stops.
    Feed(tokio::sync::mpsc::Receiver<Bytes>),
}

impl ResBody {
    pub fn page(bytes: impl Into<Bytes>) -> ResBody {
        ResBody::Whole(Some(bytes.into()))
    }

    pub fn empty() -> ResBody {
        ResBody::Whole(None)
    }
}

impl From<AnswerBody> for ResBody {
    fn from(body: AnswerBody) -> ResBody {
        match body {
            AnswerBody::Whole(bytes) if bytes.is_empty() => ResBody::empty(),
            AnswerBody::Whole(bytes) => ResBody::page(bytes),
            AnswerBody::Stream(body) => ResBody::Stream(body),
        }
    }
}

impl Body for ResBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResBody::Stream(body) => Pin::new(body).poll_frame(cx),
            ResBody::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResBody::Feed(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResBody::Stream(body) => body.is_end_stream(),
            ResBody::Whole(bytes) => bytes.is_none(),
            ResBody::Feed(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResBody::Stream(body) => body.size_hint(),
            ResBody::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResBody::Feed(_) => SizeHint::default(),
        }
    }
}
