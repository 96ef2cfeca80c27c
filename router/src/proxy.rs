//! Forwarding one request to an instance: what the instance is sent (header
//! rewriting: hop-by-hop headers out, forwarding headers in, Host made
//! unambiguous, the router's own cookie out) and what the client gets back.
//! Carrying it is [`upstream`]'s job.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use hyper::{Request, Response, StatusCode, Uri, Version};
use tokio::sync::Notify;

use crate::affinity;
use crate::body::ResBody;
use crate::error::RouteError;
use crate::extended_connect;
use crate::table::Backend;
use crate::upstream::exchange::{ClientBody, Outgoing};
use crate::upstream::retry::Route;
use crate::upstream::{self, h1, Forwarded};

/// Marks a request as having passed through a router; the value is the router's id.
pub const VIA_HEADER: &str = "x-agentfs-via";

/// How many routers a request may pass through before it counts as a loop
/// even when none of them is this one (two routers pointing at each other).
const MAX_HOPS: usize = 4;

/// Headers that describe one connection and must not be forwarded (RFC 9110 §7.6.1).
/// Names, not strings: a `&str` key is parsed again on every lookup.
static HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    // Only ever sent with an h2c upgrade, which is never passed on.
    HeaderName::from_static("http2-settings"),
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static VIA: HeaderName = HeaderName::from_static(VIA_HEADER);

/// What a forward needs to know besides the request.
#[derive(Debug)]
pub struct Forward<'a> {
    /// The name the client asked for (the Host header, or an absolute-form
    /// target's authority), for Host, X-Forwarded-Host and error pages.
    pub host: &'a str,
    /// The client's address, as it goes into X-Forwarded-For.
    pub client: &'a HeaderValue,
    /// This router's id as a header value, for [`VIA_HEADER`].
    pub via: &'a HeaderValue,
    /// Wakes discovery to re-check the run directory after a connect failure.
    pub poke: &'a Notify,
    /// How long an instance may take to start its answer.
    pub timeout: Duration,
    /// Whether the name is shared by the app's instances, so a client is
    /// kept on one (see [`affinity`]).
    pub sticky: bool,
    /// Whether the client came over TLS (`X-Forwarded-Proto: https`).
    pub secure: bool,
}

/// Whether this request already went through this router, or through too many.
pub fn is_loop(headers: &HeaderMap, router_id: &str) -> bool {
    let hops = headers.get_all(VIA_HEADER);
    hops.iter().count() >= MAX_HOPS || hops.iter().any(|v| v.as_bytes() == router_id.as_bytes())
}

/// Sends the request to one of `candidates` and makes the client's answer.
pub async fn forward(
    ctx: &Forward<'_>,
    mut req: Request<Incoming>,
    candidates: &[Arc<Backend>],
) -> Result<Response<ResBody>, RouteError> {
    // A WebSocket over HTTP/2 goes to the app as an HTTP/1.1 upgrade.
    let websocket_h2 = extended_connect::is_websocket(&req);
    if websocket_h2 {
        extended_connect::to_upgrade(&mut req);
    }
    let chosen = affinity::take(req.headers_mut());
    let preferred = match (&chosen, ctx.sticky) {
        (Some(name), true) => candidates.iter().find(|b| b.sidecar.instance == *name),
        _ => None,
    };
    let out = prepare(req, ctx)?;
    let route = Route {
        host: ctx.host,
        candidates,
        preferred,
        poke: ctx.poke,
        timeout: ctx.timeout,
    };
    let Forwarded {
        head,
        body,
        backend,
    } = upstream::forward(&route, out).await?;
    let mut resp = Response::new(ResBody::from(body));
    *resp.status_mut() = head.status;
    *resp.headers_mut() = head.headers;
    strip_hop_by_hop(
        resp.headers_mut(),
        head.status == StatusCode::SWITCHING_PROTOCOLS,
    );
    if websocket_h2 {
        extended_connect::to_stream_answer(&mut resp);
    }
    if ctx.sticky && chosen.as_deref() != Some(backend.sidecar.instance.as_str()) {
        if let Some(cookie) = &backend.cookie {
            resp.headers_mut().append(SET_COOKIE, cookie.clone());
        }
    }
    Ok(resp)
}

/// Whether the client asks to switch protocols. `h2c` (HTTP/2 by upgrade,
/// which RFC 9113 dropped) is taken out of the request and never passed on:
/// instances are spoken to in HTTP/1.1 only.
fn wants_upgrade(headers: &mut HeaderMap) -> bool {
    if !headers.contains_key(UPGRADE) || !has_token(headers, CONNECTION, "upgrade") {
        return false;
    }
    let protocols: Vec<String> = headers
        .get_all(UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let wanted: Vec<&str> = protocols
        .iter()
        .map(String::as_str)
        .filter(|p| !p.eq_ignore_ascii_case("h2c"))
        .collect();
    if wanted.len() == protocols.len() {
        return true;
    }
    match HeaderValue::from_str(&wanted.join(", ")) {
        Ok(value) if !wanted.is_empty() => {
            headers.insert(UPGRADE, value);
            true
        }
        _ => {
            headers.remove(UPGRADE);
            false
        }
    }
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

/// The request as the instance is sent it: origin form, hop-by-hop headers
/// out, Host and the forwarding headers set, and the body's framing decided.
fn prepare(mut req: Request<Incoming>, ctx: &Forward<'_>) -> Result<Outgoing, RouteError> {
    let upgrade = wants_upgrade(req.headers_mut()).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let bad = |e: hyper::header::InvalidHeaderValue| RouteError::BadRequest(e.to_string());
    // Most requests are already in origin form: only an absolute-form target
    // is rebuilt, which saves a parse and an allocation per request. Its
    // authority is what the request was routed by, so it replaces Host
    // (RFC 9112 §3.2.2): the instance never sees a name the router did not check.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = Uri::try_from(path).map_err(|e| RouteError::BadRequest(e.to_string()))?;
        let host = HeaderValue::from_str(ctx.host).map_err(bad)?;
        parts.headers.insert(HOST, host);
    }
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers, upgrade.is_some());
    // The name the client asked for: the Host header's own value (shared, not copied).
    let host = match headers.get(HOST) {
        Some(value) => value.clone(),
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
    let proto = if ctx.secure { "https" } else { "http" };
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    headers.append(&VIA, ctx.via.clone());
    let body = (!body.is_end_stream()).then(|| frame_body(headers, body));
    Ok(Outgoing {
        head: h1::encode_request(&parts),
        method: parts.method,
        body,
        upgrade,
    })
}

/// How the client's body goes out: with the length hyper read it by (a
/// client's Content-Length), or chunked when that is unknown. Decided from
/// what hyper decoded, never from the client's headers alone, so a request
/// with both Transfer-Encoding and Content-Length cannot reach the instance
/// framed two ways.
fn frame_body(headers: &mut HeaderMap, incoming: Incoming) -> ClientBody {
    let chunked = match incoming.size_hint().exact() {
        Some(length) => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            false
        }
        None => {
            headers.remove(CONTENT_LENGTH);
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            true
        }
    };
    ClientBody { incoming, chunked }
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
        assert!(wants_upgrade(&mut headers));
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers[UPGRADE], "websocket");
        assert_eq!(headers[CONNECTION], "upgrade");
    }

    #[test]
    fn h2c_is_never_an_upgrade() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONNECTION,
            HeaderValue::from_static("Upgrade, HTTP2-Settings"),
        );
        headers.insert(UPGRADE, HeaderValue::from_static("h2c"));
        headers.insert(
            "http2-settings",
            HeaderValue::from_static("AAMAAABkAAQAAP__"),
        );
        assert!(!wants_upgrade(&mut headers));
        strip_hop_by_hop(&mut headers, false);
        assert!(headers.is_empty(), "{headers:?}");
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("h2c, websocket"));
        assert!(wants_upgrade(&mut headers));
        assert_eq!(headers[UPGRADE], "websocket");
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
