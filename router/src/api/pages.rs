//! HTML the router writes itself: error pages and the bounded list of live
//! apps they carry, and the escaping every printed name goes through.

use agentfs_contract::naming::{app_hostname, instance_hostname};
use agentfs_contract::urls;
use hyper::{Response, StatusCode};

use super::window::{self, Window, ALL_ROUTES};
use super::{respond, ResBody};
use crate::error::RouteError;
use crate::host::RESERVED;
use crate::table::Table;

/// An error as a page. A 404 lists the live apps (a bounded number), or
/// for a name whose entries are not routed, says why for each.
pub fn error_page(err: &RouteError, table: &Table, port: u16) -> Response<ResBody> {
    let status = err.status();
    let mut page = format!(
        "<h1>{} {}</h1>\n",
        status.as_u16(),
        escape(status.canonical_reason().unwrap_or("")),
    );
    match err {
        RouteError::NotRouted { name, why } => {
            page.push_str(&format!("<p>{} is not routed:</p>\n<ul>\n", escape(name)));
            for line in why {
                page.push_str(&format!("<li>{}</li>\n", escape(line)));
            }
            page.push_str("</ul>\n");
        }
        RouteError::NoRoute(_) => {
            page.push_str(&format!("<p>{}</p>\n", escape(&err.to_string())));
            page.push_str(&app_list(table, port, &Window::PAGE));
        }
        _ => page.push_str(&format!("<p>{}</p>\n", escape(&err.to_string()))),
    }
    if matches!(err, RouteError::NoRoute(_) | RouteError::NotRouted { .. }) {
        let dashboard = urls::url(&app_hostname(RESERVED), port);
        page.push_str(&format!("<p>Every instance: {}</p>\n", link(&dashboard)));
    }
    html(status, "agentfs", &page)
}

/// The live apps in `window`, each instance's own URL first (the one to
/// open), then the app's shared name; and how many were left out.
pub fn app_list(table: &Table, port: u16, window: &Window) -> String {
    if table.apps.is_empty() {
        return "<p>No apps are running. Start one with <code>agentfs wrap -- CMD</code>.</p>\n"
            .into();
    }
    let mut list = String::from("<h2>Live apps</h2>\n<ul>\n");
    let mut shown = 0;
    let mut current: Option<&str> = None;
    for (app, name, _) in window.of(table) {
        if current != Some(app) {
            if let Some(done) = current {
                close_app(&mut list, done, port);
            }
            current = Some(app);
            list.push_str(&format!("<li>{}<ul>\n", escape(app)));
        }
        let u = urls::url(&instance_hostname(app, name), port);
        list.push_str(&format!("<li>{}</li>\n", link(&u)));
        shown += 1;
    }
    if let Some(done) = current {
        close_app(&mut list, done, port);
    }
    list.push_str("</ul>\n");
    list.push_str(&left_out(window::count(table), window.offset, shown));
    list
}

fn close_app(list: &mut String, app: &str, port: u16) {
    let app_url = urls::url(&app_hostname(app), port);
    list.push_str(&format!(
        "<li>{} (shared by its instances)</li>\n</ul></li>\n",
        link(&app_url)
    ));
}

/// The line that says how many instances a page did not list, and where
/// to see them all; empty when none were left out.
pub fn left_out(total: usize, offset: usize, shown: usize) -> String {
    let omitted = total.saturating_sub(shown);
    if omitted == 0 {
        return String::new();
    }
    format!(
        "<p class=\"omitted\">Showing {shown} of {total} instances (from {}); \
         {omitted} not listed here: see <a href=\"{ALL_ROUTES}\">{ALL_ROUTES}</a> \
         (<code>?limit=N&amp;offset=M</code> pages it).</p>\n",
        offset + 1
    )
}

/// A link whose text is its address.
pub fn link(url: &str) -> String {
    let url = escape(url);
    format!("<a href=\"{url}\">{url}</a>")
}

/// A whole page around `body`.
pub fn html(status: StatusCode, title: &str, body: &str) -> Response<ResBody> {
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body>\n{body}</body></html>\n",
        escape(title)
    );
    respond(status, "text/html; charset=utf-8", page)
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
    fn says_what_was_left_out() {
        assert_eq!(left_out(5, 0, 5), "");
        let line = left_out(1000, 0, 100);
        assert!(line.contains("Showing 100 of 1000"), "{line}");
        assert!(line.contains("900 not listed"), "{line}");
        assert!(line.contains("/api/routes"), "{line}");
    }
}
