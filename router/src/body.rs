//! The body types the router moves: streamed through frame by frame, never buffered whole.
//!
//! [`UpBody`] is what goes to an instance: the client's own body, or nothing
//! when a bodiless request is replayed on another instance. [`ResBody`] is what
//! goes back to the client: the instance's body (holding the [`InFlight`] guard
//! until its last frame, so "in flight" means until the answer is complete, and
//! the upstream connection's [`Lease`], which returns it to the pool then), or
//! a page the router wrote itself. An answer read by [`wire`](crate::wire)
//! holds its own connection and returns it to the pool itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::pool::Lease;
use crate::table::InFlight;
use crate::wire::WireBody;

/// Boxed error for bodies that can fail for more than one reason.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body on its way to an instance.
#[derive(Debug)]
pub enum UpBody {
    Client(Incoming),
    Empty,
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpBody::Client(body) => Pin::new(body).poll_frame(cx),
            UpBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Client(body) => body.is_end_stream(),
            UpBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Client(body) => body.size_hint(),
            UpBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A response body on its way to the client.
#[derive(Debug)]
pub enum ResBody {
    Upstream {
        body: Incoming,
        guard: Option<InFlight>,
        /// None for an upgraded connection, which never goes back to the pool.
        lease: Option<Lease>,
    },
    Wire {
        body: WireBody,
        guard: Option<InFlight>,
    },
    Page(Option<Bytes>),
}

impl ResBody {
    pub fn page(bytes: impl Into<Bytes>) -> ResBody {
        ResBody::Page(Some(bytes.into()))
    }

    pub fn empty() -> ResBody {
        ResBody::Page(None)
    }

    /// An instance's answer body; a bodiless one is complete already.
    pub fn upstream(body: Incoming, guard: InFlight, mut lease: Option<Lease>) -> ResBody {
        if let Some(lease) = lease.as_mut().filter(|_| body.is_end_stream()) {
            lease.complete();
        }
        ResBody::Upstream {
            body,
            guard: Some(guard),
            lease,
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
            ResBody::Wire { body, guard } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                let end = match &polled {
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    Poll::Ready(_) => true,
                    Poll::Pending => false,
                };
                if end {
                    guard.take();
                }
                polled
            }
            ResBody::Upstream { body, guard, lease } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                // hyper stops polling once is_end_stream() says so, so the
                // frame that completes a sized body counts as the end too.
                let end = match &polled {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    Poll::Ready(Some(Err(_))) => {
                        lease.take();
                        true
                    }
                    Poll::Pending => false,
                };
                if end {
                    guard.take();
                    if let Some(mut lease) = lease.take() {
                        lease.complete();
                    }
                }
                polled.map_err(BoxError::from)
            }
            ResBody::Page(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResBody::Upstream { body, .. } => body.is_end_stream(),
            ResBody::Wire { body, .. } => body.is_end_stream(),
            ResBody::Page(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResBody::Upstream { body, .. } => body.size_hint(),
            ResBody::Wire { body, .. } => body.size_hint(),
            ResBody::Page(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
