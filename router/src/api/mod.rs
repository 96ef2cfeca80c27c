//! What the router says itself: the JSON API, the dashboard, its event
//! stream and error pages.
//!
//! JSON answers share one envelope:
//! `{"status":"success","data":…}` or
//! `{"status":"error","error":{"code":"NO_ROUTE","message":…}}`; the codes
//! are those of [`RouteError::code`](crate::RouteError::code). Every one
//! carries `X-Content-Type-Options: nosniff`, so a browser never reads a
//! JSON answer (which may echo a name from the request) as anything else.
//!
//! Endpoints (on `agentfs.localhost` and on the control socket):
//! - `GET /health`: `{version, pid, port, run_dir, routes, uptime_secs}`;
//!   `version` is the router's ([`crate::VERSION`]).
//! - `GET /api/routes[?limit=N&offset=M]`: apps, instances and listeners,
//!   with URLs and the per-socket `in_flight` and `requests` counters;
//!   every instance unless `limit` is given (see [`window`]). An
//!   instance's `urls` list its own name first (the one to open: it always
//!   reaches that instance), then the app's shared name.
//! - `GET /api/instances[?limit=N&offset=M]`: one entry per instance as
//!   the dashboard shows it (see [`instances`]); every instance unless
//!   `limit` is given.
//! - `GET /api/events[?limit=N&offset=M]`: the same, as server-sent
//!   events (see [`events`]); at most [`window::PAGE_LIMIT`] per event.
//! - `GET /`: the dashboard (HTML), or the routes as JSON when asked for JSON.
//!
//! Pages list at most [`window::PAGE_LIMIT`] instances and say how many
//! they left out.
//!
//! # Layout
//! - [`window`]: which instances an answer lists (`limit`, `offset`, the pages' bound).
//! - [`routes`]: the `/api/routes` JSON.
//! - [`instances`]: the `/api/instances` JSON, which the dashboard and events show.
//! - [`dashboard`]: the dashboard page, its script and style (`dashboard/`).
//! - [`events`]: the event stream.
//! - [`pages`]: error pages, the bounded app list, HTML escaping.

pub mod dashboard;
pub mod events;
pub mod instances;
pub mod pages;
pub mod routes;
pub mod window;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use hyper::{Response, StatusCode, Uri};
use serde_json::{json, Value};
use tokio::sync::watch;

use self::window::Window;
use crate::body::ResBody;
use crate::error::RouteError;
use crate::table::Table;

/// What the router's own answers are made from.
#[derive(Debug)]
pub struct About<'a> {
    /// The route table as the request found it.
    pub table: &'a Table,
    /// The route table from now on, for event streams.
    pub routes: &'a watch::Receiver<Arc<Table>>,
    /// Turns true when the router begins to stop.
    pub stopping: &'a watch::Receiver<bool>,
    pub port: u16,
    pub run_dir: &'a Path,
    pub started: Instant,
}

/// Whether the client prefers JSON.
pub fn wants_json(headers: &HeaderMap, path: &str) -> bool {
    path.starts_with("/api/")
        || headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"))
}

/// Serves one request for the router itself.
pub fn serve(uri: &Uri, headers: &HeaderMap, about: &About<'_>) -> Response<ResBody> {
    let path = uri.path();
    let as_json = wants_json(headers, path);
    let query = uri.query();
    let answer = match path {
        "/health" | "/api/health" => Ok(success(health(about))),
        "/api/routes" => listing(query, about, routes::routes),
        "/api/instances" => listing(query, about, instances::snapshot),
        "/api/events" => events::stream(query, about),
        "/" if as_json => listing(query, about, routes::routes),
        "/" => dashboard::page(query, about),
        other => dashboard::asset(other).ok_or_else(|| RouteError::NotFound(other.to_owned())),
    };
    answer.unwrap_or_else(|err| error(&err, as_json, about))
}

/// A JSON listing of the instances the query asks for (all by default).
fn listing(
    query: Option<&str>,
    about: &About<'_>,
    list: fn(&Table, u16, &Window) -> Value,
) -> Result<Response<ResBody>, RouteError> {
    let window = Window::from_query(query, Window::ALL)?;
    Ok(success(list(about.table, about.port, &window)))
}

fn health(about: &About<'_>) -> Value {
    json!({
        "version": crate::VERSION,
        "pid": std::process::id(),
        "port": about.port,
        "run_dir": about.run_dir,
        "routes": about.table.backends().count(),
        "uptime_secs": about.started.elapsed().as_secs(),
    })
}

/// A success envelope.
pub fn success(data: Value) -> Response<ResBody> {
    json_response(
        StatusCode::OK,
        &json!({ "status": "success", "data": data }),
    )
}

/// The answer to an error: a JSON envelope or an HTML page. A 404 for a
/// name nothing is known by lists the live apps, at most
/// [`window::PAGE_LIMIT`] of their instances (in JSON by name and URL, with
/// `total` and `omitted` counts); one for a name whose entries are not
/// routed says why for each (in JSON, `not_routed`).
pub fn error(err: &RouteError, as_json: bool, about: &About<'_>) -> Response<ResBody> {
    if !as_json {
        return pages::error_page(err, about.table, about.port);
    }
    let mut body = json!({ "code": err.code(), "message": err.to_string() });
    if let RouteError::NotRouted { why, .. } = err {
        body["not_routed"] = why.clone().into();
    }
    if matches!(err, RouteError::NoRoute(_)) {
        let total = window::count(about.table);
        let shown = Window::PAGE.of(about.table).count();
        body["total"] = total.into();
        body["omitted"] = (total - shown).into();
        body["apps"] = routes::names(about.table, about.port, &Window::PAGE);
    }
    json_response(err.status(), &json!({ "status": "error", "error": body }))
}

/// A whole HTTP/1.1 answer carrying `err` as a JSON envelope, closing the
/// connection: for connections that are refused before any request is read.
pub fn raw_error(err: &RouteError) -> Vec<u8> {
    let status = err.status();
    let body = json!({
        "status": "error",
        "error": { "code": err.code(), "message": err.to_string() },
    })
    .to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\n\
         x-content-type-options: nosniff\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

fn json_response(status: StatusCode, value: &Value) -> Response<ResBody> {
    let mut resp = respond(status, "application/json", format!("{value}\n"));
    resp.headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<ResBody> {
    let mut resp = Response::new(ResBody::page(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_chosen_by_accept_or_api_path() {
        let mut headers = HeaderMap::new();
        assert!(!wants_json(&headers, "/"));
        assert!(wants_json(&headers, "/api/routes"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&headers, "/"));
    }
}
