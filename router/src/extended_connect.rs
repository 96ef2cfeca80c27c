//! WebSockets over HTTP/2 (RFC 8441): a browser opens one with an extended
//! CONNECT (`:protocol websocket`) on a stream of its HTTP/2 connection,
//! once the router's SETTINGS say `ENABLE_CONNECT_PROTOCOL`. Instances are
//! spoken to in HTTP/1.1, so the request goes to the app as the HTTP/1.1
//! upgrade it would have been (GET, `Upgrade: websocket`, a fresh
//! `Sec-WebSocket-Key`), and the app's 101 comes back to the browser as the
//! 200 that opens the stream. The bytes after that are WebSocket frames
//! either way, copied through unchanged.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::ext::Protocol;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};

static SEC_WEBSOCKET_KEY: &str = "sec-websocket-key";
static SEC_WEBSOCKET_ACCEPT: &str = "sec-websocket-accept";

/// Whether `req` is an extended CONNECT for a WebSocket.
pub fn is_websocket<B>(req: &Request<B>) -> bool {
    req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}

/// Makes the extended CONNECT the HTTP/1.1 upgrade request the app expects.
pub fn to_upgrade<B>(req: &mut Request<B>) {
    *req.method_mut() = Method::GET;
    let headers = req.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    let key = HeaderValue::from_str(&new_key()).expect("base64 is a valid header value");
    headers.insert(SEC_WEBSOCKET_KEY, key);
}

/// Makes the app's 101 the 200 that opens the WebSocket's stream: HTTP/2
/// has no 101, and the handshake's HTTP/1.1 headers mean nothing there.
pub fn to_stream_answer<B>(resp: &mut Response<B>) {
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    *resp.status_mut() = StatusCode::OK;
    strip_handshake(resp.headers_mut());
}

fn strip_handshake(headers: &mut HeaderMap) {
    headers.remove(UPGRADE);
    headers.remove(CONNECTION);
    headers.remove(SEC_WEBSOCKET_ACCEPT);
}

/// A `Sec-WebSocket-Key`: 16 bytes, base64. It only has to differ from
/// one handshake to the next (RFC 6455 §4.1), not be secret.
fn new_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = std::collections::hash_map::RandomState::new();
    let mut bytes = [0u8; 16];
    for (i, half) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = seed.build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_usize(i);
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    base64(&bytes)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn keys_are_24_characters_and_differ() {
        let (a, b) = (new_key(), new_key());
        assert_eq!(a.len(), 24);
        assert!(a.ends_with("=="));
        assert_ne!(a, b);
    }

    #[test]
    fn an_extended_connect_becomes_an_upgrade_and_its_101_a_200() {
        let mut req = Request::builder()
            .method(Method::CONNECT)
            .uri("https://web.localhost/ws")
            .body(())
            .unwrap();
        assert!(!is_websocket(&req));
        req.extensions_mut()
            .insert(Protocol::from_static("websocket"));
        assert!(is_websocket(&req));
        to_upgrade(&mut req);
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.headers()[UPGRADE], "websocket");
        assert!(req.headers().contains_key(SEC_WEBSOCKET_KEY));
        let mut resp = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_ACCEPT, "x")
            .header("sec-websocket-protocol", "vite-hmr")
            .body(())
            .unwrap();
        to_stream_answer(&mut resp);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers().len(), 1, "{:?}", resp.headers());
    }
}
