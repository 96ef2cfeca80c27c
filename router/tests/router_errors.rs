//! The router's own answers: 404 for unknown names (listing live apps), 421
//! for names outside `.localhost` (never proxied), 502 when no instance can
//! take a request (and the bridge's "not listening yet"), 508 for a loop.

mod common;

use agentfs_contract::sidecar::Kind;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_get_a_404_listing_live_apps() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;
    let port = router.port;

    let page = get(port, "nope.localhost", "/").await;
    assert_eq!(page.status, 404);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        page.text()
            .contains(&format!("http://web.localhost:{port}")),
        "{}",
        page.text()
    );
    assert!(page
        .text()
        .contains(&format!("http://a1.web.localhost:{port}")));

    let mut client = Client::connect(port).await;
    let req = hyper::Request::get("/")
        .header("host", "zz.web.localhost")
        .header("accept", "application/json")
        .body(Default::default())
        .unwrap();
    let answer = collect(client.send(req).await.unwrap()).await.unwrap();
    assert_eq!(answer.status, 404);
    let json = answer.json();
    assert_eq!(json["status"], "error");
    assert_eq!(json["error"]["code"], "NO_ROUTE");
    assert_eq!(json["error"]["apps"][0]["app"], "web");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_hosts_are_refused_and_never_proxied() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    for host in ["example.com", "web.localhost.evil.com", "10.1.2.3:80"] {
        let answer = get(router.port, host, "/").await;
        assert_eq!(answer.status, 421, "{host}");
    }
    // Absolute-form: the URI's authority wins over a friendly Host.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", router.port))
        .await
        .unwrap();
    tcp.write_all(
        b"GET http://example.com/ HTTP/1.1\r\nHost: web.localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");

    let routes = get(router.port, "agentfs.localhost", "/api/routes")
        .await
        .json();
    let listener = &routes["data"]["apps"][0]["instances"][0]["listeners"][0];
    assert_eq!(listener["requests"], 0, "a refused request reached the app");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_instance_able_to_answer_is_a_502() {
    let home = Home::new();
    let mut deaf = Instance::spawn(&home, "deaf", "a1", 3000);
    let _bridge = Instance::spawn_with(&home, "late", "a1", 3000, true, Mode::Close, Kind::Bridge);
    // No safety-net scan during the test: only the request finds out.
    let router = TestRouter::start_with(&home, |config| {
        config.reconcile = std::time::Duration::from_secs(3600);
    });
    router.wait_routes("both apps", |t| t.apps.len() == 2).await;
    // Routed while it listened; refusing connections by the time a request comes.
    deaf.close_listener();

    let mut client = Client::connect(router.port).await;
    let req = hyper::Request::get("/")
        .header("host", "deaf.localhost")
        .header("accept", "application/json")
        .body(Default::default())
        .unwrap();
    let answer = collect(client.send(req).await.unwrap()).await.unwrap();
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"]["code"], "NO_UPSTREAM");

    let page = client.get("late.localhost", "/").await.unwrap();
    assert_eq!(page.status, 502);
    assert!(page.text().contains("not listening yet"), "{}", page.text());
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_loop_is_a_508() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    // The instance sends the request back to the router, headers and all.
    let path = format!("/loop?to={}", router.port);
    let answer = get(router.port, "web.localhost", &path).await;
    assert_eq!(answer.status, 508, "{}", answer.text());
    router.stop().await;
}

/// Sends `request` as it is on a new connection and reads until the router closes it.
async fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut raw))
        .await
        .expect("the router closes the connection")
        .unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_are_a_400_and_never_forwarded() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let raw = raw_exchange(
        router.port,
        b"GET / HTTP/1.1\r\nHost: web.localhost\r\nHost: evil.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(raw.contains("Host"), "{raw}");
    let routes = get(router.port, "agentfs.localhost", "/api/routes")
        .await
        .json();
    let listener = &routes["data"]["apps"][0]["instances"][0]["listeners"][0];
    assert_eq!(listener["requests"], 0, "the request reached the app");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_targets_authority_replaces_host() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let raw = raw_exchange(
        router.port,
        b"GET http://web.localhost/abs HTTP/1.1\r\nHost: evil.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    let seen: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(seen["path"], "/abs");
    assert_eq!(seen["headers"]["host"], "web.localhost", "{seen}");
    assert_eq!(seen["headers"]["x-forwarded-host"], "web.localhost");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_the_clients_400() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let raw = raw_exchange(
        router.port,
        b"POST /upload HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\nnot hex\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(raw.contains("client"), "named as the client's fault: {raw}");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upgrade_is_not_passed_on() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let raw = raw_exchange(
        router.port,
        b"GET /h2c HTTP/1.1\r\nHost: web.localhost\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    let seen: serde_json::Value = serde_json::from_str(body).unwrap();
    let headers = &seen["headers"];
    assert!(headers.get("upgrade").is_none(), "{headers}");
    assert!(headers.get("http2-settings").is_none(), "{headers}");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_gets_a_clear_405() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let raw = raw_exchange(
        router.port,
        b"CONNECT web.localhost:80 HTTP/1.1\r\nHost: web.localhost:80\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    assert!(raw.contains("CONNECT"), "{raw}");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_told_to_use_http1() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    // The client preface, then an empty SETTINGS frame.
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", router.port))
        .await
        .unwrap();
    tcp.write_all(&preface).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut raw))
        .await
        .expect("the router closes the connection")
        .unwrap();
    // Frames: a SETTINGS frame, then GOAWAY (type 7) with HTTP_1_1_REQUIRED (0xd).
    assert!(raw.len() > 9 + 17, "{raw:?}");
    assert_eq!(raw[3], 0x4, "SETTINGS first: {raw:?}");
    let goaway = &raw[9..];
    assert_eq!(goaway[3], 0x7, "then GOAWAY: {raw:?}");
    assert_eq!(&goaway[13..17], &[0, 0, 0, 0xd], "HTTP_1_1_REQUIRED");
    assert!(String::from_utf8_lossy(&goaway[17..]).contains("HTTP/1.1"));
    router.stop().await;
}
