//! Session affinity on `APP.localhost`: a client stays on the instance it
//! first got, for every later request and WebSocket upgrade, while that
//! instance lives. A browser's page, its scripts and its dev server's
//! WebSocket (Vite's HMR, socket.io) then all talk to one instance.
//!
//! The answer that put a client on an instance sets a cookie naming it:
//! host-only (no `Domain`, so `INSTANCE.APP.localhost` never sees it),
//! `HttpOnly`, `SameSite=Lax`, `Path=/`. A request carrying it goes to that
//! instance first; when the instance is gone, the request goes wherever
//! balancing sends it and the answer names the new one. Clients without
//! cookies (curl, scripts) are balanced per request as before. The cookie is
//! the router's own: it is removed from what the app sees.

use hyper::header::{HeaderMap, HeaderValue, COOKIE};

/// The cookie's name.
pub const COOKIE_NAME: &str = "agentfs-instance";

/// The `Set-Cookie` value that puts a client on `instance`; `None` for a
/// name that cannot be a cookie value (instance names are DNS labels, so
/// never in practice).
pub fn set_cookie(instance: &str) -> Option<HeaderValue> {
    if !is_cookie_value(instance) {
        return None;
    }
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={instance}; Path=/; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

/// Removes the router's cookie from `headers` (leaving the app's own
/// cookies as they were) and returns the instance it named, if any.
pub fn take(headers: &mut HeaderMap) -> Option<String> {
    // Nearly every request has no Cookie header, or none of ours.
    let ours = headers.get_all(COOKIE).iter().any(|v| {
        v.as_bytes()
            .windows(COOKIE_NAME.len())
            .any(|w| w == COOKIE_NAME.as_bytes())
    });
    if !ours {
        return None;
    }
    let mut named = None;
    let mut kept = Vec::new();
    for value in headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else {
            kept.push(value.clone());
            continue;
        };
        let mut rest = Vec::new();
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some((name, value)) if name.trim() == COOKIE_NAME => {
                    let value = value.trim().trim_matches('"');
                    if is_cookie_value(value) {
                        named = Some(value.to_owned());
                    }
                }
                _ => rest.push(pair),
            }
        }
        if !rest.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&rest.join("; ")) {
                kept.push(value);
            }
        }
    }
    headers.remove(COOKIE);
    for value in kept {
        headers.append(COOKIE, value);
    }
    named
}

/// Instance names as the contract allows them: letters, digits, `-` and `_`.
fn is_cookie_value(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routers_cookie_is_taken_out_and_the_apps_stay() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; agentfs-instance=b2; sid=\"x y\""),
        );
        headers.append(COOKIE, HeaderValue::from_static("agentfs-instance=b2"));
        assert_eq!(take(&mut headers).as_deref(), Some("b2"));
        let left: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(left, vec!["a=1; sid=\"x y\""]);
    }

    #[test]
    fn requests_without_it_are_left_alone() {
        let mut headers = HeaderMap::new();
        assert_eq!(take(&mut headers), None);
        headers.insert(COOKIE, HeaderValue::from_static("agentfs-instancex=1; b=2"));
        assert_eq!(take(&mut headers), None);
        assert_eq!(
            headers[COOKIE], "agentfs-instancex=1; b=2",
            "a look-alike name is not ours"
        );
        headers.insert(COOKIE, HeaderValue::from_static("agentfs-instance=<bad>"));
        assert_eq!(take(&mut headers), None);
        assert!(headers.get(COOKIE).is_none());
    }

    #[test]
    fn the_cookie_is_host_only_and_out_of_scripts_reach() {
        let cookie = set_cookie("a1").unwrap();
        assert_eq!(
            cookie,
            "agentfs-instance=a1; Path=/; HttpOnly; SameSite=Lax"
        );
        assert!(!cookie.to_str().unwrap().to_lowercase().contains("domain"));
        assert!(set_cookie("no;way").is_none());
    }
}
