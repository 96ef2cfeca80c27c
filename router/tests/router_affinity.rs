//! Session affinity on `APP.localhost`: a client that keeps cookies stays on
//! the instance it first got, for requests and WebSocket upgrades alike,
//! until that instance dies; then it moves, and the cookie says where.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The router's cookie pair (`agentfs-instance=NAME`) from an answer's
/// Set-Cookie, checking its attributes on the way.
fn routers_cookie(answer: &Answer) -> Option<String> {
    let value = answer.headers.get("set-cookie")?.to_str().unwrap();
    let lower = value.to_ascii_lowercase();
    for attribute in ["httponly", "samesite=lax", "path=/"] {
        assert!(lower.contains(attribute), "{value}");
    }
    assert!(!lower.contains("domain"), "host-only: {value}");
    Some(value.split(';').next().unwrap().to_owned())
}

/// GET on a fresh connection, sending `cookies`, as a browser would.
async fn get_with(port: u16, cookies: &str) -> Answer {
    let mut client = Client::connect(port).await;
    let req = hyper::Request::get("/")
        .header("host", "web.localhost")
        .header("cookie", cookies)
        .body(Default::default())
        .unwrap();
    collect(client.send(req).await.unwrap()).await.unwrap()
}

/// A WebSocket handshake with `cookies`: the instance that took it.
async fn upgrade_with(port: u16, cookies: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: web.localhost\r\nCookie: {cookies}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "closed in handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let line = head.lines().find(|l| l.starts_with("x-instance:")).unwrap();
    line["x-instance:".len()..].trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_keeping_client_stays_on_its_instance_while_it_lives() {
    let home = Home::new();
    let mut instances = [
        Instance::spawn(&home, "web", "a1", 3000),
        Instance::spawn(&home, "web", "b2", 3000),
    ];
    let router = TestRouter::start(&home);
    router.wait_instances("web", 2).await;
    let port = router.port;

    let first = get(port, "web.localhost", "/").await;
    let home_instance = first.json()["instance"].as_str().unwrap().to_owned();
    let cookie = routers_cookie(&first).expect("the first answer names the instance");
    assert_eq!(cookie, format!("agentfs-instance={home_instance}"));

    // Balancing alone would alternate: with the cookie, every request stays.
    let cookies = format!("theme=dark; {cookie}");
    for _ in 0..10 {
        let answer = get_with(port, &cookies).await;
        assert_eq!(answer.json()["instance"], home_instance.as_str());
        assert!(routers_cookie(&answer).is_none(), "already set");
        let seen = &answer.json()["headers"]["cookie"];
        assert_eq!(seen, "theme=dark", "the router's cookie is its own");
        assert_eq!(upgrade_with(port, &cookies).await, home_instance);
    }
    // Without cookies (curl, scripts), requests are still balanced.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        seen.insert(get(port, "web.localhost", "/").await.json()["instance"].clone());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    let at = instances
        .iter()
        .position(|i| i.instance == home_instance)
        .unwrap();
    instances[at].kill();
    let moved = get_with(port, &cookies).await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    let other = moved.json()["instance"].as_str().unwrap().to_owned();
    assert_ne!(other, home_instance);
    let reset = routers_cookie(&moved).expect("the cookie is reset");
    assert_eq!(reset, format!("agentfs-instance={other}"));
    let cookies = format!("theme=dark; {reset}");
    for _ in 0..5 {
        assert_eq!(
            get_with(port, &cookies).await.json()["instance"],
            other.as_str()
        );
        assert_eq!(upgrade_with(port, &cookies).await, other);
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_names_set_no_cookie() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let answer = get(router.port, "a1.web.localhost", "/").await;
    assert_eq!(answer.status, 200);
    assert!(answer.headers.get("set-cookie").is_none());
    router.stop().await;
}
