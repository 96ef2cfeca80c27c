//! Answering one request: who is it for, and then the API, an error page, or a forward.
//!
//! A request from inside an instance (on the callers socket, see
//! [`callers`](crate::callers)) for `APP.localhost` goes to the caller's
//! own instance of APP when it has a live one, as `INSTANCE.APP.localhost`
//! would, and is balanced as any other only when it has none. Such an
//! answer neither follows nor sets the affinity cookie: the caller's
//! instance decides, not the client it was before.

use std::convert::Infallible;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST};
use hyper::{Method, Request, Response};
use tokio::sync::{watch, Notify};

use crate::api::{self, About};
use crate::body::ResBody;
use crate::error::RouteError;
use crate::extended_connect;
use crate::host::{self, Target};
use crate::proxy::{self, Forward};
use crate::table::{Table, Unrouted};

/// What every request handler shares.
#[derive(Debug)]
pub struct State {
    pub table: watch::Receiver<Arc<Table>>,
    pub poke: Arc<Notify>,
    /// Unique per router process; marks forwarded requests to catch loops.
    pub router_id: String,
    /// `router_id` as a header value, made once.
    pub via: hyper::header::HeaderValue,
    /// Addresses besides loopback that name the router itself.
    pub own: Vec<IpAddr>,
    /// The HTTP port, for the URLs the router prints.
    pub port: u16,
    pub run_dir: PathBuf,
    pub started: Instant,
    /// Turns true when the router begins to stop: event streams end then.
    pub stopping: watch::Receiver<bool>,
    /// How long an instance may take to start its answer.
    pub upstream_timeout: Duration,
    /// TLS on the HTTP port, when the router has a certificate authority.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Where a request came in.
#[derive(Clone, Debug)]
pub enum Peer {
    /// A client over TCP: its address, as it goes into X-Forwarded-For
    /// (made once per connection).
    Http(HeaderValue),
    /// A process of this instance, on the callers socket (local: its
    /// X-Forwarded-For is 127.0.0.1).
    Instance(Arc<str>),
    /// The control socket: only the API is served there.
    Control,
}

/// The X-Forwarded-For of a request from the callers socket.
static LOOPBACK: HeaderValue = HeaderValue::from_static("127.0.0.1");

/// Answers one request; errors become pages, so this never fails.
/// `secure`: it came over TLS.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: Peer,
    secure: bool,
) -> Result<Response<ResBody>, Infallible> {
    let table = state.table.borrow().clone();
    let about = About {
        table: &table,
        routes: &state.table,
        stopping: &state.stopping,
        port: state.port,
        run_dir: &state.run_dir,
        started: state.started,
    };
    let (client, caller) = match &peer {
        Peer::Control => return Ok(api::serve(req.uri(), req.headers(), &about)),
        Peer::Http(client) => (client, None),
        Peer::Instance(instance) => (&LOOPBACK, Some(&**instance)),
    };
    let as_json = api::wants_json(req.headers(), req.uri().path());
    let origin = Origin {
        client,
        caller,
        secure,
    };
    let resp = match route(&state, &table, req, &origin, &about).await {
        Ok(resp) => resp,
        Err(err) => {
            tracing::debug!(%err, side = ?err.side(), "request refused");
            api::error(&err, as_json, &about)
        }
    };
    Ok(resp)
}

/// The most entries a 404 says are not routed, and why.
const MAX_UNROUTED_SHOWN: usize = 10;

/// The 404 for a name without a live route: why, when the name is known
/// (it has entries that are not routed), else that nothing is registered.
fn no_route(table: &Table, target: &Target, authority: &str) -> RouteError {
    let name = host::normalise(authority);
    let mut why: Vec<String> = table
        .unrouted(target)
        .take(MAX_UNROUTED_SHOWN)
        .map(Unrouted::describe)
        .collect();
    if why.is_empty() {
        return RouteError::NoRoute(name);
    }
    let more = table.unrouted(target).count() - why.len();
    if more > 0 {
        why.push(format!("and {more} more"));
    }
    RouteError::NotRouted { name, why }
}

/// Who sent a request.
struct Origin<'a> {
    /// As it goes into X-Forwarded-For.
    client: &'a HeaderValue,
    /// The instance the caller runs in, if it said so on the callers socket.
    caller: Option<&'a str>,
    /// Whether it came over TLS.
    secure: bool,
}

async fn route(
    state: &State,
    table: &Table,
    req: Request<Incoming>,
    origin: &Origin<'_>,
    about: &About<'_>,
) -> Result<Response<ResBody>, RouteError> {
    // CONNECT is refused (no forward proxy), except HTTP/2's extended
    // CONNECT for a WebSocket (RFC 8441), which is a request to an app.
    if req.method() == Method::CONNECT && !extended_connect::is_websocket(&req) {
        return Err(RouteError::MethodNotAllowed("CONNECT".into()));
    }
    // Two Host headers leave it open which name the request is for: a
    // client error (RFC 9112 §3.2), never routed by one and forwarded with both.
    if req.headers().get_all(HOST).iter().nth(1).is_some() {
        return Err(RouteError::BadRequest("more than one Host header".into()));
    }
    // An absolute-form target's authority wins over Host (RFC 9112 §3.2.2).
    let authority = match req.uri().authority() {
        Some(authority) => authority.as_str().to_owned(),
        None => req
            .headers()
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RouteError::BadRequest("no Host header".into()))?
            .to_owned(),
    };
    let target = host::classify(&authority, &state.own);
    let own = match (&target, origin.caller) {
        (Target::App { app }, Some(caller)) => table.primary_of(app, caller),
        _ => None,
    };
    let sticky = own.is_none() && matches!(target, Target::App { .. });
    let candidates = match (&target, own) {
        (_, Some(own)) => own,
        (Target::Router, _) => return Ok(api::serve(req.uri(), req.headers(), about)),
        (Target::Foreign(name), _) => return Err(RouteError::Misdirected(name.clone())),
        (Target::Unknown(name), _) => return Err(RouteError::NoRoute(name.clone())),
        _ => match table.candidates(&target) {
            Some(found) => found,
            None => return Err(no_route(table, &target, &authority)),
        },
    };
    if proxy::is_loop(req.headers(), &state.router_id) {
        return Err(RouteError::Loop);
    }
    let ctx = Forward {
        host: &authority,
        client: origin.client,
        via: &state.via,
        poke: &state.poke,
        timeout: state.upstream_timeout,
        sticky,
        secure: origin.secure,
    };
    proxy::forward(&ctx, req, candidates).await
}
