//! Forwarding one request to an instance: header rewriting, balancing with
//! retries, and tunnelling upgraded connections.
//!
//! Requests without a body (nearly all of them) go over [`wire`]; requests
//! with a body, and upgrades, over hyper's client.
//!
//! A request is retried on another instance when nothing was sent (the
//! connection was refused or the socket is gone), and also after a failure
//! when it has no body and an idempotent method, since replaying it is safe;
//! small answers to such requests are read whole before they are passed on,
//! so an instance that dies between its headers and its body counts as a
//! failure to retry too. That is what keeps every client request succeeding
//! when one of several instances dies.

use std::sync::Arc;

use hyper::body::{Body, Incoming};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

use crate::body::{ResBody, UpBody};
use crate::error::RouteError;
use crate::h1;
use crate::pool::Lease;
use crate::table::{pick, Backend, InFlight};
use crate::wire::{self, AnswerBody, WireError};

/// Most tries for one request, over all instances.
const MAX_ATTEMPTS: usize = 8;

/// Largest answer to a replayable request that is read whole before it is
/// passed on, so that an instance dying between its headers and its body is
/// retried like one that died before answering. Larger (or unsized) answers
/// stream, and fail with the instance.
const MAX_WHOLE_ANSWER: u64 = 64 * 1024;

/// Marks a request as having passed through a router; the value is the router's id.
pub const VIA_HEADER: &str = "x-agentfs-via";

/// How many routers a request may pass through before it counts as a loop
/// even when none of them is this one (two routers pointing at each other).
const MAX_HOPS: usize = 4;

/// Headers that describe one connection and must not be forwarded (RFC 9110 §7.6.1).
/// Names, not strings: a `&str` key is parsed again on every lookup.
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static VIA: HeaderName = HeaderName::from_static(VIA_HEADER);

/// What a forward needs to know besides the request.
#[derive(Debug)]
pub struct Forward<'a> {
    /// The name the client asked for, for X-Forwarded-Host and error pages.
    pub host: &'a str,
    /// The client's address, as it goes into X-Forwarded-For.
    pub client: &'a HeaderValue,
    /// This router's id as a header value, for [`VIA_HEADER`].
    pub via: &'a HeaderValue,
    /// Wakes discovery to re-check the run directory after a connect failure.
    pub poke: &'a Notify,
}

/// Whether this request already went through this router, or through too many.
pub fn is_loop(headers: &HeaderMap, router_id: &str) -> bool {
    let hops = headers.get_all(VIA_HEADER);
    hops.iter().count() >= MAX_HOPS || hops.iter().any(|v| v.as_bytes() == router_id.as_bytes())
}

/// Sends the request to one of `candidates`, retrying as described above.
pub async fn forward(
    ctx: &Forward<'_>,
    mut req: Request<Incoming>,
    candidates: &[Arc<Backend>],
) -> Result<Response<ResBody>, RouteError> {
    let upgrade = wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let req = prepare(req, ctx, upgrade)?;
    if !upgrade && matches!(req.body(), UpBody::Empty) {
        return forward_bodiless(ctx, req, candidates).await;
    }
    // A failed instance is not tried again, so with one candidate there is
    // nothing to replay on: skip the copy of the headers then.
    let replay = if candidates.len() > 1 {
        Replay::of(&req)
    } else {
        None
    };
    let mut pending = Some(req);
    let mut tried: Vec<Arc<Backend>> = Vec::new();
    let mut last = RouteError::NoUpstream(ctx.host.to_owned());
    for _ in 0..MAX_ATTEMPTS {
        let Some(backend) = pick(candidates, &tried) else {
            break;
        };
        let Some(this) = pending
            .take()
            .or_else(|| replay.as_ref().map(Replay::build))
        else {
            break;
        };
        let guard = backend.start();
        match attempt(&backend, this, upgrade).await {
            Ok((resp, lease)) => return Ok(respond(resp, guard, lease, client_upgrade)),
            Err(Failure::Unsent { req, refused }) => {
                pending = Some(*req);
                if refused {
                    ctx.refused(&backend);
                    tried.push(backend);
                }
            }
            Err(Failure::Sent(err)) => {
                last = ctx.failed(&backend, err.to_string());
                tried.push(backend);
                if replay.is_none() {
                    return Err(last);
                }
            }
        }
    }
    Err(last)
}

/// A request without a body, over [`wire`]: its head is encoded once and
/// sent as is to whichever instance takes it, as often as needed.
async fn forward_bodiless(
    ctx: &Forward<'_>,
    req: Request<UpBody>,
    candidates: &[Arc<Backend>],
) -> Result<Response<ResBody>, RouteError> {
    let (parts, _) = req.into_parts();
    let head = h1::encode_request(&parts);
    let method = parts.method;
    let idempotent = h1::is_idempotent(&method);
    let replayable = idempotent && candidates.len() > 1;
    let whole_up_to = if replayable { MAX_WHOLE_ANSWER } else { 0 };
    let mut tried: Vec<Arc<Backend>> = Vec::new();
    let mut last = RouteError::NoUpstream(ctx.host.to_owned());
    for _ in 0..MAX_ATTEMPTS {
        let Some(backend) = pick(candidates, &tried) else {
            break;
        };
        let guard = backend.start();
        let failure = match wire::exchange(&backend.pool, &head, &method, whole_up_to).await {
            Ok(answer) => return Ok(wire_response(answer, guard)),
            Err(WireError::Connect(err)) => {
                tracing::debug!(%err, socket = %backend.sidecar.socket.display(), "connect failed");
                ctx.refused(&backend);
                tried.push(backend);
                continue;
            }
            // The instance closed a pooled connection while it was idle, so
            // the request was never read: safe to send again when idempotent.
            Err(WireError::Stale) if idempotent => {
                backend.pool.clear_conns();
                continue;
            }
            Err(WireError::Stale) => "the instance closed a kept-alive connection".to_owned(),
            Err(WireError::Failed(err)) => err,
        };
        last = ctx.failed(&backend, failure);
        tried.push(backend);
        if !replayable {
            return Err(last);
        }
    }
    Err(last)
}

fn wire_response(answer: wire::Answer, guard: InFlight) -> Response<ResBody> {
    let mut resp = Response::new(ResBody::empty());
    *resp.status_mut() = answer.head.status;
    *resp.headers_mut() = answer.head.headers;
    strip_hop_by_hop(resp.headers_mut(), false);
    *resp.body_mut() = match answer.body {
        AnswerBody::Whole(bytes) if bytes.is_empty() => ResBody::empty(),
        AnswerBody::Whole(bytes) => ResBody::page(bytes),
        AnswerBody::Stream(body) => ResBody::Wire {
            body,
            guard: Some(guard),
        },
    };
    resp
}

enum Failure {
    /// Nothing reached the instance; the request comes back for another try.
    Unsent {
        req: Box<Request<UpBody>>,
        refused: bool,
    },
    /// The request (or part of it) was sent.
    Sent(hyper::Error),
}

async fn attempt(
    backend: &Backend,
    req: Request<UpBody>,
    upgrade: bool,
) -> Result<(Response<Incoming>, Option<Lease>), Failure> {
    // An upgraded connection is never returned to the pool, so take a fresh one.
    let pooled = if upgrade {
        None
    } else {
        backend.pool.take_idle()
    };
    let mut sender = match pooled {
        Some(sender) => sender,
        None => match backend.pool.connect().await {
            Ok(sender) => sender,
            Err(err) => {
                tracing::debug!(%err, socket = %backend.sidecar.socket.display(), "connect failed");
                return Err(Failure::Unsent {
                    req: Box::new(req),
                    refused: true,
                });
            }
        },
    };
    match sender.try_send_request(req).await {
        Ok(resp) => Ok((resp, (!upgrade).then(|| backend.pool.lease(sender)))),
        Err(mut err) => match err.take_message() {
            Some(req) => Err(Failure::Unsent {
                req: Box::new(req),
                refused: false,
            }),
            None => Err(Failure::Sent(err.into_error())),
        },
    }
}

impl Forward<'_> {
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

/// A bodiless idempotent request, kept so it can be sent again.
struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Replay {
    fn of(req: &Request<UpBody>) -> Option<Replay> {
        (h1::is_idempotent(req.method()) && req.body().is_end_stream()).then(|| Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        })
    }

    fn build(&self) -> Request<UpBody> {
        let mut req = Request::new(UpBody::Empty);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE) && has_token(headers, CONNECTION, "upgrade")
}

fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Removes hop-by-hop headers, including those named in `Connection`;
/// keeps `Connection: upgrade` and `Upgrade` when the connection is being upgraded.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names finds which are present (most requests carry
    // none); only those are looked up to be removed.
    let mut present = [false; HOP_BY_HOP.len()];
    for name in headers.keys() {
        if let Some(at) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            present[at] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    let upgrade = keep_upgrade
        .then(|| headers.get(UPGRADE).cloned())
        .flatten();
    // Names listed in Connection go too; "keep-alive" and "close" (nearly
    // always the only ones) need no parsing: one is in the list, the other
    // names no header.
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for (hop, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, here)| *here) {
        headers.remove(hop);
    }
    if let Some(upgrade) = upgrade {
        headers.insert(UPGRADE, upgrade);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

fn prepare(
    req: Request<Incoming>,
    ctx: &Forward<'_>,
    upgrade: bool,
) -> Result<Request<UpBody>, RouteError> {
    let (mut parts, body) = req.into_parts();
    // Most requests are already in origin form: only an absolute-form target
    // is rebuilt, which saves a parse and an allocation per request.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = Uri::try_from(path).map_err(|e| RouteError::BadRequest(e.to_string()))?;
    }
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, upgrade);
    let bad = |e: hyper::header::InvalidHeaderValue| RouteError::BadRequest(e.to_string());
    // The name the client asked for: the Host header's own value (shared,
    // not copied) unless an absolute-form target named another.
    let host = match headers.get(HOST) {
        Some(value) if value.as_bytes() == ctx.host.as_bytes() => value.clone(),
        Some(_) => HeaderValue::from_str(ctx.host).map_err(bad)?,
        None => {
            let host = HeaderValue::from_str(ctx.host).map_err(bad)?;
            headers.insert(HOST, host.clone());
            host
        }
    };
    let forwarded_for = match headers.get(&X_FORWARDED_FOR).map(|v| v.to_str()) {
        Some(Ok(prior)) => {
            let client = ctx.client.to_str().unwrap_or_default();
            HeaderValue::from_str(&format!("{prior}, {client}")).map_err(bad)?
        }
        _ => ctx.client.clone(),
    };
    headers.insert(&X_FORWARDED_FOR, forwarded_for);
    headers.insert(&X_FORWARDED_HOST, host);
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.append(&VIA, ctx.via.clone());
    let body = if body.is_end_stream() {
        UpBody::Empty
    } else {
        UpBody::Client(body)
    };
    Ok(Request::from_parts(parts, body))
}

fn respond(
    mut resp: Response<Incoming>,
    guard: InFlight,
    lease: Option<Lease>,
    client_upgrade: Option<OnUpgrade>,
) -> Response<ResBody> {
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(resp.headers_mut(), switching);
    match client_upgrade {
        Some(client) if switching => {
            let upstream = hyper::upgrade::on(&mut resp);
            tunnel(client, upstream, guard);
            resp.map(|_| ResBody::empty())
        }
        _ => resp.map(|body| ResBody::upstream(body, guard, lease)),
    }
}

/// Copies bytes both ways between the upgraded client and instance connections.
fn tunnel(client: OnUpgrade, upstream: OnUpgrade, guard: InFlight) {
    tokio::spawn(async move {
        let _guard = guard;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(err) => {
                tracing::debug!(%err, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!(%err, "tunnel closed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_named_ones_too() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers, false);
        let names: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn upgrade_headers_survive_an_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&headers));
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers[UPGRADE], "websocket");
        assert_eq!(headers[CONNECTION], "upgrade");
    }

    #[test]
    fn loops_are_seen() {
        let mut headers = HeaderMap::new();
        assert!(!is_loop(&headers, "r1"));
        headers.append(VIA_HEADER, HeaderValue::from_static("r2"));
        assert!(!is_loop(&headers, "r1"));
        headers.append(VIA_HEADER, HeaderValue::from_static("r1"));
        assert!(is_loop(&headers, "r1"));
    }
}
