//! The retry policy, written once: which instance gets each try, and which
//! failures are tried again.
//!
//! - Nothing was sent (the connection was refused, or the socket is gone):
//!   always tried again, on another instance; this one counts as down until
//!   discovery, asked to look again now, says otherwise.
//! - A pooled connection turned out stale: the request was never read, so it
//!   is sent again on a new connection to the same instance (only requests
//!   that may be repeated ever take a pooled connection).
//! - The request was sent and no whole answer came, or the answer was one no
//!   client may be given (broken framing: then the instance is not down, it
//!   answered): tried again on another instance only when it may be repeated
//!   (bodiless and idempotent) and there is another to try. Small answers to such requests are read whole
//!   before they are passed on, so an instance that dies between its headers
//!   and its body counts as such a failure too. That is what keeps every
//!   client request succeeding when one of several instances dies.
//! - The client's body failed (400), or no answer came in time (504): never
//!   tried again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use tokio::sync::Notify;

use super::exchange::{self, Failure, Outgoing, Reply};
use crate::error::RouteError;
use crate::table::{pick, Backend};

/// Most tries for one request, over all instances.
const MAX_ATTEMPTS: usize = 8;

/// Largest answer to a replayable request that is read whole before it is
/// passed on, so that an instance dying between its headers and its body is
/// retried like one that died before answering. Larger (or unsized) answers
/// stream, and fail with the instance.
const MAX_WHOLE_ANSWER: u64 = 64 * 1024;

/// Where a request may go, and what its failures should wake.
#[derive(Debug)]
pub struct Route<'a> {
    /// The name the client asked for, for error pages.
    pub host: &'a str,
    pub candidates: &'a [Arc<Backend>],
    /// The instance this client was on before (session affinity), tried first.
    pub preferred: Option<&'a Arc<Backend>>,
    /// Wakes discovery to re-check the run directory after a connect failure.
    pub poke: &'a Notify,
    /// How long an instance may take to start its answer.
    pub timeout: Duration,
}

impl Route<'_> {
    /// The next instance to try: the preferred one first (unless it failed
    /// or is down), then the least busy of those not tried yet.
    fn next(&self, tried: &[Arc<Backend>]) -> Option<Arc<Backend>> {
        self.preferred
            .filter(|b| !b.is_down() && !tried.iter().any(|t| Arc::ptr_eq(t, b)))
            .cloned()
            .or_else(|| pick(self.candidates, tried))
    }

    /// Nothing could be sent to `backend`: it is down until discovery,
    /// asked to look again now, says otherwise.
    fn refused(&self, backend: &Backend) {
        backend.mark_down();
        self.poke.notify_one();
    }

    /// The request failed after it was (partly) sent and before a whole
    /// answer came; returns the error to answer with. A bridge closes (or
    /// resets) a connection at once when its app is not listening, so from a
    /// bridge that means "not listening yet", and the bridge stays up.
    fn failed(&self, backend: &Backend, err: String) -> RouteError {
        tracing::debug!(%err, socket = %backend.sidecar.socket.display(), "upstream failed");
        if backend.is_bridge() {
            return RouteError::NotListening(backend.sidecar.app.clone());
        }
        self.refused(backend);
        RouteError::Upstream(err)
    }
}

/// Carries `out` to one of the route's instances, trying again as described
/// above. Returns the reply and the instance that gave it. The request is
/// recorded at the instance that answered it or whose failure ended it, and
/// every failure at the instance it happened at (see [`activity`](crate::activity)).
pub async fn carry(
    route: &Route<'_>,
    out: &mut Outgoing,
) -> Result<(Reply, Arc<Backend>), RouteError> {
    let started = Instant::now();
    // A failed instance is not tried again, so with one candidate there is
    // nothing to replay on.
    let replayable = out.may_repeat() && route.candidates.len() > 1;
    let whole_up_to = if replayable { MAX_WHOLE_ANSWER } else { 0 };
    let mut tried: Vec<Arc<Backend>> = Vec::new();
    let mut last = RouteError::NoUpstream(route.host.to_owned());
    for _ in 0..MAX_ATTEMPTS {
        let Some(backend) = route.next(&tried) else {
            break;
        };
        let guard = backend.start();
        last = match exchange::attempt(&backend, out, guard, route.timeout, whole_up_to).await {
            Ok(reply) => {
                ended(&backend, out, reply.status(), started);
                return Ok((reply, backend));
            }
            Err(Failure::Connect(err)) => {
                tracing::debug!(%err, socket = %backend.sidecar.socket.display(), "connect failed");
                backend
                    .activity
                    .failed(&format!("could not connect: {err}"));
                route.refused(&backend);
                tried.push(backend);
                continue;
            }
            Err(Failure::Stale) => {
                backend.pool.clear();
                continue;
            }
            Err(Failure::Client(err)) => {
                let err = RouteError::BadBody(err);
                ended(&backend, out, err.status(), started);
                return Err(err);
            }
            Err(Failure::Timeout) => {
                let name = format!(
                    "instance {} of {}",
                    backend.sidecar.instance, backend.sidecar.app
                );
                let err = RouteError::UpstreamTimeout(name, route.timeout);
                backend.activity.failed(&err.to_string());
                ended(&backend, out, err.status(), started);
                return Err(err);
            }
            Err(Failure::Failed(err)) => route.failed(&backend, err),
            Err(Failure::Malformed(err)) => {
                tracing::debug!(%err, socket = %backend.sidecar.socket.display(), "unusable answer");
                RouteError::Upstream(err)
            }
        };
        backend.activity.failed(&last.to_string());
        if !replayable {
            ended(&backend, out, last.status(), started);
            return Err(last);
        }
        tried.push(backend);
    }
    Err(last)
}

/// Records how a request ended at `backend`.
fn ended(backend: &Backend, out: &Outgoing, status: StatusCode, started: Instant) {
    backend.activity.record(&out.head, status.as_u16(), started);
}
