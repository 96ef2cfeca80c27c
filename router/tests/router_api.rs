//! The router's JSON API on `agentfs.localhost` and on its control socket.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use agentfs_router::client;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_list_urls_and_live_counters() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;
    let port = router.port;

    let mut client = Client::connect(port).await;
    for _ in 0..3 {
        assert_eq!(client.get("web.localhost", "/").await.unwrap().status, 200);
    }
    let answer = client
        .get("agentfs.localhost", "/api/routes")
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    let json = answer.json();
    assert_eq!(json["status"], "success");
    let app = &json["data"]["apps"][0];
    assert_eq!(app["app"], "web");
    assert_eq!(app["url"], format!("http://web.localhost:{port}"));
    let instance = &app["instances"][0];
    assert_eq!(instance["url"], format!("http://a1.web.localhost:{port}"));
    let urls = [
        format!("http://a1.web.localhost:{port}"),
        format!("http://web.localhost:{port}"),
    ];
    assert_eq!(instance["urls"], serde_json::json!(urls), "instance first");
    let listener = &instance["listeners"][0];
    assert_eq!(listener["requests"], 3);
    assert_eq!(listener["in_flight"], 0);
    assert_eq!(listener["primary"], true);

    let missing = client.get("agentfs.localhost", "/api/nope").await.unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "NOT_FOUND");
    for host in ["agentfs.localhost", "localhost", "127.0.0.1", "[::1]"] {
        let page = client.get(host, "/").await.unwrap();
        assert_eq!(page.status, 200, "{host}");
        assert!(page.text().contains("<table id=\"instances\">"), "{host}");
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_answer_says_nosniff() {
    let home = Home::new();
    let _web = Instance::spawn(&home, "web", "a1", 3000);
    let _late = Instance::spawn_with(
        &home,
        "late",
        "a1",
        3000,
        true,
        Mode::Close,
        agentfs_contract::sidecar::Kind::Bridge,
    );
    let router = TestRouter::start(&home);
    router.wait_routes("both apps", |t| t.apps.len() == 2).await;
    let mut client = Client::connect(router.port).await;
    let asks = [
        ("agentfs.localhost", "/health", 200),
        ("agentfs.localhost", "/api/routes", 200),
        ("agentfs.localhost", "/api/instances", 200),
        ("agentfs.localhost", "/api/routes?limit=x", 400),
        ("agentfs.localhost", "/api/nope", 404),
        ("agentfs.localhost", "/", 200),
        ("nope.localhost", "/", 404),
        ("late.localhost", "/", 502),
        ("example.com", "/", 421),
    ];
    for (host, path, status) in asks {
        let req = hyper::Request::get(path)
            .header("host", host)
            .header("accept", "application/json")
            .body(Default::default())
            .unwrap();
        let answer = collect(client.send(req).await.unwrap()).await.unwrap();
        assert_eq!(answer.status, status, "{host}{path}: {}", answer.text());
        assert_eq!(answer.headers["content-type"], "application/json");
        assert_eq!(
            answer.headers["x-content-type-options"], "nosniff",
            "{host}{path}"
        );
    }
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_serves_the_api_privately() {
    let (home, _a, router) = web_behind_router(Mode::Serve).await;

    let control = home.control();
    let meta = std::fs::metadata(&control).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let health = client::get(&control, "/health").await.unwrap();
    assert_eq!(health["port"], router.port);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["version"], agentfs_router::VERSION);
    assert_eq!(health["pid"], std::process::id());
    assert_eq!(health["routes"], 1);
    let routes = client::get(&control, "/api/routes").await.unwrap();
    assert_eq!(routes["apps"][0]["instances"][0]["instance"], "a1");
    let err = client::get(&control, "/api/nope").await.unwrap_err();
    assert!(matches!(err, client::ClientError::Api { ref code, .. } if code == "NOT_FOUND"));

    router.stop().await;
    assert!(!control.exists(), "control socket left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_listens_on_ipv6_loopback_too() {
    let home = Home::new();
    let router = TestRouter::start(&home);
    let stream = tokio::net::TcpStream::connect(("::1", router.port)).await;
    assert!(stream.is_ok(), "nothing on [::1]:{}", router.port);
    router.stop().await;
}
