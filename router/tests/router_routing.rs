//! Routing by Host: an app balanced over its instances, one instance, one
//! instance's listener by port, and the forwarding headers instances see.

mod common;

use std::collections::HashSet;

use agentfs_contract::sidecar::Kind;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_app_name() {
    let home = Home::new();
    let _a = Instance::spawn(&home, "web", "a1", 3000);
    let _b = Instance::spawn(&home, "web", "b2", 3000);
    let router = TestRouter::start(&home);
    router.wait_instances("web", 2).await;

    let mut client = Client::connect(router.port).await;
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let answer = client.get("web.localhost", "/").await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text());
        seen.insert(answer.json()["instance"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, HashSet::from(["a1".to_owned(), "b2".to_owned()]));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_and_port_names_reach_one_listener() {
    let home = Home::new();
    let _a = Instance::spawn(&home, "web", "a1", 3000);
    let _a_api = Instance::spawn_with(&home, "web", "a1", 4000, false, Mode::Serve, Kind::Shim);
    let _b = Instance::spawn(&home, "web", "b2", 3000);
    let router = TestRouter::start(&home);
    router
        .wait_routes("a1 has two listeners and b2 is there", |t| {
            t.apps.get("web").is_some_and(|w| {
                w.len() == 2 && w.get("a1").is_some_and(|a| a.listeners.len() == 2)
            })
        })
        .await;

    let mut client = Client::connect(router.port).await;
    for _ in 0..4 {
        let answer = client.get("B2.Web.LocalHost.:80", "/x?y=1").await.unwrap();
        assert_eq!(answer.json()["instance"], "b2");
        assert_eq!(answer.json()["path"], "/x?y=1");
    }
    let primary = client.get("a1.web.localhost", "/").await.unwrap();
    assert_eq!(primary.json()["port"], 3000);
    let by_port = client.get("4000.a1.web.localhost", "/").await.unwrap();
    assert_eq!(by_port.json()["instance"], "a1");
    assert_eq!(by_port.json()["port"], 4000);
    // The app name balances over primary listeners only.
    for _ in 0..6 {
        assert_eq!(
            client.get("web.localhost", "/").await.unwrap().json()["port"],
            3000
        );
    }
    let missing = client.get("5000.a1.web.localhost", "/").await.unwrap();
    assert_eq!(missing.status, 404);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_see_forwarding_headers_not_hop_by_hop_ones() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let mut client = Client::connect(router.port).await;
    let req = hyper::Request::get("/")
        .header("host", "a1.web.localhost:7380")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "hop")
        .header("x-kept", "end")
        .body(Default::default())
        .unwrap();
    let answer = collect(client.send(req).await.unwrap()).await.unwrap();
    let headers = &answer.json()["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-host"], "a1.web.localhost:7380");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["host"], "a1.web.localhost:7380");
    assert_eq!(headers["x-kept"], "end");
    assert!(headers.get("x-private").is_none(), "{headers}");
    // The same client connection keeps working (keep-alive on both sides).
    assert_eq!(
        client.get("a1.web.localhost", "/").await.unwrap().status,
        200
    );
    router.stop().await;
}
