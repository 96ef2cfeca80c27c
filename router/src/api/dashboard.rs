//! The dashboard at `agentfs.localhost/`: one table of live instances,
//! rendered here so it reads without JavaScript, and kept current by a
//! small script over the event stream (`/api/events`). The page, its
//! script and its style are files in `dashboard/`, embedded in the binary:
//! no build step, no framework.
//!
//! Both renderings start from the same data, [`instances::snapshot`], and
//! make the same markup; every text from it is escaped here (the script
//! sets text, never markup). The page forbids inline script and anything
//! not from the router itself (Content-Security-Policy).

use std::time::{Duration, SystemTime};

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::pages::{escape, left_out, link};
use super::window::{Window, PAGE_LIMIT};
use super::{instances, respond, About, ResBody, RouteError};

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// Only the router's own script, style and event stream.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      connect-src 'self'; img-src 'self'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

/// The columns of the instance table (the detail row spans them all).
const COLUMNS: usize = 11;

/// The page, listing the instances in the window the query asks for
/// (`?offset=M`, and `limit` up to [`PAGE_LIMIT`]).
pub fn page(query: Option<&str>, about: &About<'_>) -> Result<Response<ResBody>, RouteError> {
    let window = Window::from_query(query, Window::PAGE)?.at_most(PAGE_LIMIT);
    let data = instances::snapshot(about.table, about.port, &window);
    let listed = data["instances"].as_array().map_or(&[][..], Vec::as_slice);
    let now = SystemTime::now();
    let rows: String = if listed.is_empty() {
        empty_row()
    } else {
        listed.iter().map(|i| row(i, now)).collect()
    };
    let html = PAGE
        .replace("{{version}}", &escape(crate::VERSION))
        .replace("{{port}}", &about.port.to_string())
        .replace("{{omitted}}", &omitted(&data, listed.len()))
        .replace("{{rows}}", &rows);
    let mut resp = respond(StatusCode::OK, "text/html; charset=utf-8", html);
    resp.headers_mut()
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    Ok(resp)
}

/// The dashboard's script or style, by path.
pub fn asset(path: &str) -> Option<Response<ResBody>> {
    let (content_type, body) = match path {
        "/dashboard.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "/dashboard.css" => ("text/css; charset=utf-8", STYLE),
        _ => return None,
    };
    let mut resp = respond(StatusCode::OK, content_type, body.to_owned());
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(resp)
}

fn empty_row() -> String {
    format!(
        "<tbody class=\"empty\"><tr><td colspan=\"{COLUMNS}\">No apps are running. \
         Start one with <code>agentfs wrap -- CMD</code>.</td></tr></tbody>\n"
    )
}

/// How many instances were left out, and a link to the next ones.
fn omitted(data: &Value, shown: usize) -> String {
    let number = |key: &str| data[key].as_u64().unwrap_or(0) as usize;
    let (total, offset) = (number("total"), number("offset"));
    let mut text = left_out(total, offset, shown);
    if offset + shown < total {
        let next = offset + shown;
        text.push_str(&format!(
            "<p><a href=\"/?offset={next}\">Next {PAGE_LIMIT} instances</a></p>\n"
        ));
    }
    text
}

/// One instance: its row, then a row with its last requests.
fn row(inst: &Value, now: SystemTime) -> String {
    let text = |key: &str| escape(inst[key].as_str().unwrap_or(""));
    let number = |key: &str| inst[key].as_u64().map_or(String::new(), |n| n.to_string());
    let started = inst["started_at"].as_str().unwrap_or("");
    let uptime = parse(started).map_or(String::new(), |t| span(since(t, now)));
    let name_link = format!("<a href=\"{}\">{}</a>", text("url"), text("instance"));
    format!(
        "<tbody class=\"instance\" data-key=\"{app}/{name}\">\n<tr>\
         <td class=\"app\">{app}</td><td class=\"name\">{name_link}</td>\
         <td>{kind}</td><td class=\"num pid\">{pid}</td><td class=\"ports\">{ports}</td>\
         <td class=\"num uptime\" data-since=\"{since}\">{uptime}</td>\
         <td class=\"num requests\">{requests}</td><td class=\"num in-flight\">{in_flight}</td>\
         <td class=\"error\">{error}</td><td class=\"cwd\">{cwd}</td>\
         <td class=\"branch\">{branch}</td></tr>\n\
         <tr class=\"recent\"><td colspan=\"{COLUMNS}\">{recent}</td></tr>\n</tbody>\n",
        app = text("app"),
        name = text("instance"),
        kind = text("kind"),
        pid = number("pid"),
        ports = ports(&inst["ports"]),
        since = escape(started),
        requests = number("requests"),
        in_flight = number("in_flight"),
        error = last_error(&inst["last_error"], now),
        cwd = text("cwd"),
        branch = text("branch"),
        recent = recent(&inst["recent"], now),
    )
}

/// Each listener's port and URLs, the instance's own first.
fn ports(ports: &Value) -> String {
    let mut out = String::new();
    for port in ports.as_array().into_iter().flatten() {
        let links: Vec<String> = port["urls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(link)
            .collect();
        let down = if port["down"].as_bool() == Some(true) {
            " <span class=\"down\">down</span>"
        } else {
            ""
        };
        out.push_str(&format!(
            "<div class=\"port\"><span class=\"port-num\">{}</span>\
             <span class=\"urls\">{}{down}</span></div>",
            port["port"].as_u64().unwrap_or(0),
            links.join(" ")
        ));
    }
    out
}

fn last_error(error: &Value, now: SystemTime) -> String {
    let Some(message) = error["message"].as_str() else {
        return String::new();
    };
    format!("{} {}", escape(message), when(&error["at"], now))
}

/// The last requests, in a table folded away by default.
fn recent(recent: &Value, now: SystemTime) -> String {
    let seen = recent.as_array().map_or(&[][..], Vec::as_slice);
    if seen.is_empty() {
        return "<details><summary>No requests yet</summary></details>".into();
    }
    let mut rows = String::new();
    for r in seen {
        let status = r["status"].as_u64().unwrap_or(0);
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"path\">{}</td>\
             <td class=\"status s{}\">{status}</td><td class=\"num\">{} ms</td></tr>",
            when(&r["at"], now),
            escape(r["method"].as_str().unwrap_or("")),
            escape(r["path"].as_str().unwrap_or("")),
            status / 100,
            r["duration_ms"].as_f64().unwrap_or(0.0),
        ));
    }
    format!(
        "<details><summary>Last requests ({})</summary><table class=\"requests\">\
         <thead><tr><th>When</th><th>Method</th><th>Path</th><th>Status</th>\
         <th>Duration</th></tr></thead><tbody>{rows}</tbody></table></details>",
        seen.len()
    )
}

/// A time as how long ago it was, with the time itself for the script.
fn when(at: &Value, now: SystemTime) -> String {
    let at = at.as_str().unwrap_or("");
    let ago = parse(at).map_or(String::new(), |t| ago(since(t, now)));
    format!("<time datetime=\"{}\">{ago}</time>", escape(at))
}

fn parse(time: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(time).ok()
}

fn since(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

fn ago(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        "just now".into()
    } else {
        format!("{} ago", span(elapsed).split(' ').next().unwrap_or(""))
    }
}

/// A duration in its two largest units: `42s`, `3m 12s`, `5h 2m`, `2d 3h`.
fn span(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {}s", s % 60),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_two_largest_units() {
        let secs = Duration::from_secs;
        assert_eq!(span(secs(42)), "42s");
        assert_eq!(span(secs(192)), "3m 12s");
        assert_eq!(span(secs(5 * 3600 + 120)), "5h 2m");
        assert_eq!(span(secs(2 * 86_400 + 3 * 3600)), "2d 3h");
        assert_eq!(ago(secs(192)), "3m ago");
        assert_eq!(ago(Duration::from_millis(300)), "just now");
    }

    #[test]
    fn everything_printed_is_escaped() {
        let inst = serde_json::json!({
            "app": "<b>", "instance": "a\"1", "url": "http://x/\"><script>",
            "kind": "shim", "pid": 1, "started_at": "<t>", "cwd": "/<src>",
            "branch": "feat/<x>", "requests": 0, "in_flight": 0,
            "ports": [{"port": 3000, "urls": ["http://a/<i>"], "down": false}],
            "last_error": {"message": "<img src=x>", "at": "2024-01-01T00:00:00Z"},
            "recent": [{"method": "<M>", "path": "/<p>", "status": 200,
                        "duration_ms": 1.5, "at": "2024-01-01T00:00:00Z"}],
        });
        let html = row(&inst, SystemTime::now());
        for raw in [
            "<b>", "<script>", "<t>", "<src>", "<x>", "<i>", "<img", "<M>", "<p>",
        ] {
            assert!(!html.contains(raw), "{raw} printed raw in {html}");
        }
        assert!(html.contains("&lt;img src=x&gt;"));
        assert!(html.contains("a&quot;1"));
    }
}
