//! What the router says itself: the JSON API, the status page and error pages.
//!
//! JSON answers share one envelope:
//! `{"status":"success","data":…}` or
//! `{"status":"error","error":{"code":"NO_ROUTE","message":…}}`; the codes
//! are those of [`RouteError::code`](crate::RouteError::code).
//!
//! Endpoints (on `agentfs.localhost` and on the control socket):
//! - `GET /health`: `{pid, port, run_dir, routes, uptime_secs}`.
//! - `GET /api/routes`: every app, instance and listener, with URLs and the
//!   per-socket `in_flight` and `requests` counters. An instance's `urls`
//!   list its own name first (the one to open: it always reaches that
//!   instance), then the app's shared name.
//! - `GET /`: the status page (HTML, or the routes as JSON when asked for JSON).

use std::path::Path;
use std::time::Instant;

use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::ResBody;
use crate::error::RouteError;
use crate::table::Table;

/// What the status endpoints report about the router.
#[derive(Debug)]
pub struct About<'a> {
    pub table: &'a Table,
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

/// Serves one API path.
pub fn serve(path: &str, headers: &HeaderMap, about: &About<'_>) -> Response<ResBody> {
    match path {
        "/health" | "/api/health" => success(json!({
            "pid": std::process::id(),
            "port": about.port,
            "run_dir": about.run_dir,
            "routes": about.table.backends().count(),
            "uptime_secs": about.started.elapsed().as_secs(),
        })),
        "/api/routes" => success(routes(about.table, about.port)),
        "/" if wants_json(headers, path) => success(routes(about.table, about.port)),
        "/" => html(StatusCode::OK, &status_page(about.table, about.port)),
        other => error(&RouteError::NotFound(other.to_owned()), true, about),
    }
}

/// Every route with its URLs and counters.
pub fn routes(table: &Table, port: u16) -> Value {
    let apps: Vec<Value> = table
        .apps
        .iter()
        .map(|(app, instances)| {
            let instances: Vec<Value> = instances
                .iter()
                .map(|(name, inst)| {
                    let listeners: Vec<Value> = inst
                        .listeners
                        .iter()
                        .map(|b| {
                            let car = &b.sidecar;
                            json!({
                                "port": car.port,
                                "primary": car.primary,
                                "kind": car.kind,
                                "socket": car.socket,
                                "url": url(&format!("{}.{name}.{app}", car.port), port),
                                "in_flight": b.in_flight(),
                                "requests": b.requests(),
                                "down": b.is_down(),
                            })
                        })
                        .collect();
                    let pid = inst.primary().map(|b| b.sidecar.pid);
                    let own = url(&format!("{name}.{app}"), port);
                    json!({
                        "instance": name,
                        "url": own,
                        "urls": [own, url(app, port)],
                        "pid": pid,
                        "listeners": listeners,
                    })
                })
                .collect();
            json!({ "app": app, "url": url(app, port), "instances": instances })
        })
        .collect();
    json!({ "port": port, "apps": apps })
}

fn url(name: &str, port: u16) -> String {
    format!("http://{name}.localhost:{port}")
}

/// A success envelope.
pub fn success(data: Value) -> Response<ResBody> {
    json_response(
        StatusCode::OK,
        &json!({ "status": "success", "data": data }),
    )
}

/// The answer to an error: a JSON envelope or an HTML page. A 404 lists the live apps.
pub fn error(err: &RouteError, as_json: bool, about: &About<'_>) -> Response<ResBody> {
    let status = err.status();
    let no_route = matches!(err, RouteError::NoRoute(_));
    if as_json {
        let mut body = json!({ "code": err.code(), "message": err.to_string() });
        if no_route {
            body["apps"] = routes(about.table, about.port)["apps"].clone();
        }
        return json_response(status, &json!({ "status": "error", "error": body }));
    }
    let mut page = format!(
        "<h1>{} {}</h1>\n<p>{}</p>\n",
        status.as_u16(),
        escape(status.canonical_reason().unwrap_or("")),
        escape(&err.to_string())
    );
    if no_route {
        page.push_str(&app_list(about.table, about.port));
    }
    html(status, &page)
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
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

fn status_page(table: &Table, port: u16) -> String {
    format!(
        "<h1>agentfs router</h1>\n<p>Listening on port {port}. API: \
         <a href=\"/api/routes\">/api/routes</a>, <a href=\"/health\">/health</a>.</p>\n{}",
        app_list(table, port)
    )
}

fn app_list(table: &Table, port: u16) -> String {
    if table.apps.is_empty() {
        return "<p>No apps are running. Start one with <code>agentfs wrap -- CMD</code>.</p>\n"
            .into();
    }
    // Each instance's own URL first: that is the one to open. The app's
    // shared name follows, balanced over the instances.
    let mut list = String::from("<h2>Live apps</h2>\n<ul>\n");
    for (app, instances) in &table.apps {
        list.push_str(&format!("<li>{}<ul>\n", escape(app)));
        for name in instances.keys() {
            let u = url(&format!("{name}.{app}"), port);
            list.push_str(&format!("<li><a href=\"{u}\">{u}</a></li>\n"));
        }
        let app_url = url(app, port);
        list.push_str(&format!(
            "<li><a href=\"{app_url}\">{app_url}</a> (shared by its instances)</li>\n"
        ));
        list.push_str("</ul></li>\n");
    }
    list.push_str("</ul>\n");
    list
}

fn html(status: StatusCode, body: &str) -> Response<ResBody> {
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>agentfs</title></head>\
         <body>\n{body}</body></html>\n"
    );
    respond(status, "text/html; charset=utf-8", page)
}

fn json_response(status: StatusCode, value: &Value) -> Response<ResBody> {
    respond(status, "application/json", format!("{value}\n"))
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<ResBody> {
    let mut resp = Response::new(ResBody::page(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Escapes text for HTML (names come from hostile requests and files).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }

    #[test]
    fn json_is_chosen_by_accept_or_api_path() {
        let mut headers = HeaderMap::new();
        assert!(!wants_json(&headers, "/"));
        assert!(wants_json(&headers, "/api/routes"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&headers, "/"));
    }
}
