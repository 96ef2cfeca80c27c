//! Everything toward instances: one HTTP/1.1 client of the router's own, one
//! pool of connections per socket, one retry policy, and the one place that
//! decides how a request is carried ([`exchange`]).
//!
//! Every request goes over this client: bodiless ones (nearly all), those
//! with a body, and upgrades. hyper's client would need a task per
//! connection and channels between it and the request, which cost more than
//! the proxying itself for small answers (BENCHMARKS.md); here the request's
//! own task writes the head, streams the body and reads the answer.
//!
//! # Layout
//! - [`exchange`]: one request on one connection: head and body out, the
//!   answer's head in; pooled or fresh connection; the time limit.
//! - [`retry`]: which instance gets each try, and which failures are tried again.
//! - [`answer`]: the answer's body, streamed to the client or read whole.
//! - `tunnel`: an upgraded connection, after a 101.
//! - [`pool`]: kept-alive connections per socket.
//! - `conn`: one connection and the bytes read from it.
//! - [`h1`]: the HTTP/1.1 wire format, without IO.

pub mod answer;
mod conn;
pub mod exchange;
pub mod h1;
pub mod pool;
pub mod retry;
mod tunnel;

use std::sync::Arc;

use bytes::Bytes;

use self::answer::AnswerBody;
use self::exchange::{Outgoing, Reply};
use self::h1::ResponseHead;
use self::retry::Route;
use crate::error::RouteError;
use crate::table::Backend;

/// An instance's answer, on its way to the client.
#[derive(Debug)]
pub struct Forwarded {
    pub head: ResponseHead,
    pub body: AnswerBody,
    /// The instance that answered.
    pub backend: Arc<Backend>,
}

/// Sends `out` to one of the route's instances (see [`retry`]). After a 101,
/// the client's connection is joined to the instance's in a tunnel.
pub async fn forward(route: &Route<'_>, mut out: Outgoing) -> Result<Forwarded, RouteError> {
    let (reply, backend) = retry::carry(route, &mut out).await?;
    Ok(match reply {
        Reply::Answer { head, body } => Forwarded {
            head,
            body,
            backend,
        },
        Reply::Switched { head, conn, guard } => {
            if let Some(client) = out.upgrade.take() {
                tunnel::open(client, conn, guard);
            }
            Forwarded {
                head,
                body: AnswerBody::Whole(Bytes::new()),
                backend,
            }
        }
    })
}
