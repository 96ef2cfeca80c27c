//! An instance that answers with broken framing: an answer with both
//! Content-Length and Transfer-Encoding is never forwarded (RFC 9112 §6.3),
//! a framing error before anything reached the client is a 502
//! `UPSTREAM_FAILED`, and one after the head went out closes the client's
//! connection. Never an empty reply, never a hang, and the router keeps
//! serving.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};

/// `method path` to `web.localhost`, asking for JSON, with `body`.
fn request(method: &str, path: &str, body: &'static [u8]) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "web.localhost")
        .header("accept", "application/json")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

/// Sends `req` on a fresh connection and expects the router's 502.
async fn expect_upstream_failed(port: u16, req: hyper::Request<Full<Bytes>>) {
    let what = format!("{} {}", req.method(), req.uri());
    let mut client = Client::connect(port).await;
    let sent = tokio::time::timeout(DEADLINE, client.send(req))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer"));
    let answer = collect(sent.unwrap_or_else(|e| panic!("{what}: no answer: {e}")))
        .await
        .unwrap();
    assert_eq!(answer.status, 502, "{what}: {}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "UPSTREAM_FAILED", "{what}");
}

/// The instance still answers through the router.
async fn still_serving(port: u16) {
    let answer = get(port, "web.localhost", "/").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["instance"], "a1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_both_lengths_is_a_502_never_forwarded() {
    let (_home, _web, router) = web_behind_router(Mode::Serve).await;
    // Bodiless: the answer is read on the request's task; with a body: the
    // body streams out while the answer is read.
    expect_upstream_failed(router.port, request("GET", "/both-lengths", b"")).await;
    expect_upstream_failed(router.port, request("POST", "/both-lengths", b"a body")).await;
    still_serving(router.port).await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_size_that_overflows_before_anything_was_sent_is_a_502() {
    let (_home, _web, router) = web_behind_router(Mode::Serve).await;
    expect_upstream_failed(router.port, request("GET", "/chunk-overflow", b"")).await;
    expect_upstream_failed(router.port, request("POST", "/chunk-overflow", b"a body")).await;
    still_serving(router.port).await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_answering_broken_framing_are_a_502_too() {
    // Two instances: small answers to a bodiless GET are read whole, so
    // that a failure can be tried again on the other instance.
    let home = Home::new();
    let _a = Instance::spawn(&home, "web", "a1", 3000);
    let _b = Instance::spawn(&home, "web", "b1", 3000);
    let router = TestRouter::start(&home);
    router.wait_instances("web", 2).await;
    expect_upstream_failed(router.port, request("GET", "/both-lengths", b"")).await;
    expect_upstream_failed(router.port, request("GET", "/chunk-overflow", b"")).await;
    let answer = get(router.port, "web.localhost", "/").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_size_that_overflows_after_the_head_closes_the_connection() {
    let (_home, _web, router) = web_behind_router(Mode::Serve).await;
    for path in ["/overflow-after?bytes=5", "/overflow-after?bytes=100000"] {
        let mut client = Client::connect(router.port).await;
        let resp = tokio::time::timeout(DEADLINE, client.send(request("GET", path, b"")))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"))
            .unwrap_or_else(|e| panic!("{path}: no head: {e}"));
        assert_eq!(resp.status(), 200, "{path}");
        // The good bytes, then the connection closes mid-body: an error,
        // not a body that looks complete, and not a wait for more.
        let body = tokio::time::timeout(DEADLINE, resp.into_body().collect())
            .await
            .unwrap_or_else(|_| panic!("{path}: the body never ended"));
        assert!(body.is_err(), "{path}: the cut-off body looked complete");
    }
    still_serving(router.port).await;
    router.stop().await;
}
