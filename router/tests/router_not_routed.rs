//! A name that is known but not routable gets a 404 that says why, for
//! each entry by that name (`APP/INSTANCE: why`): the sidecar's own
//! `not_routed` when it has one, else what its state says. Only a name
//! nothing is known by gets the list of live apps, or "No apps are running".

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;

use agentfs_contract::sidecar::Sidecar;
use agentfs_contract::{liveness, naming};
use common::*;

/// An entry held by this test (its lock, its socket listening), with a
/// sidecar as `edit` leaves it.
fn hold(
    home: &Home,
    app: &str,
    instance: &str,
    edit: impl FnOnce(&mut Sidecar),
) -> (OwnedFd, UnixListener) {
    let socket = naming::socket_path(&home.run_dir(), app, instance, None).unwrap();
    let lock = liveness::try_acquire(&naming::lock_path(&socket))
        .unwrap()
        .unwrap();
    let listener = UnixListener::bind(&socket).unwrap();
    let mut car = sidecar(app, instance, &socket, 3000, std::process::id());
    edit(&mut car);
    car.write_atomic(&naming::sidecar_path(&socket)).unwrap();
    (lock, listener)
}

/// The 404 for `host`, as a page and as JSON.
async fn not_found(port: u16, host: &str) -> (String, serde_json::Value) {
    let mut client = Client::connect(port).await;
    let page = client.get(host, "/").await.unwrap();
    assert_eq!(page.status, 404, "{host}: {}", page.text());
    let req = hyper::Request::get("/")
        .header("host", host)
        .header("accept", "application/json")
        .body(Default::default())
        .unwrap();
    let answer = collect(client.send(req).await.unwrap()).await.unwrap();
    assert_eq!(answer.status, 404, "{host}");
    let json = answer.json();
    assert_eq!(json["error"]["code"], "NO_ROUTE", "{json}");
    (page.text(), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_name_that_is_not_routed_says_why() {
    let home = Home::new();
    let shared = "port 20090 is shared with another process";
    // Live, but saying it is not to be routed (as wrap says of a bridged
    // app whose port another process shares).
    let _c1 = hold(&home, "caddy", "c1", |car| {
        car.not_routed = Some(shared.into());
    });
    // Bound, and not listening yet.
    let _w1 = hold(&home, "web", "w1", |car| car.listening = false);
    let router = TestRouter::start(&home);
    router
        .wait_routes("both entries known", |t| {
            let caddy = agentfs_router::host::Target::App {
                app: "caddy".into(),
            };
            let web = agentfs_router::host::Target::App { app: "web".into() };
            t.unrouted(&caddy).count() == 1 && t.unrouted(&web).count() == 1
        })
        .await;

    for host in [
        "caddy.localhost",
        "c1.caddy.localhost",
        "3000.c1.caddy.localhost",
    ] {
        let (page, json) = not_found(router.port, host).await;
        let line = format!("caddy/c1: {shared}");
        assert!(page.contains(&line), "{host}: {page}");
        assert!(!page.contains("No apps are running"), "{host}: {page}");
        assert_eq!(
            json["error"]["not_routed"],
            serde_json::json!([line]),
            "{json}"
        );
        assert!(json["error"]["message"].as_str().unwrap().contains(&line));
    }
    let (page, json) = not_found(router.port, "web.localhost").await;
    let line = "web/w1: port 3000 is not listening yet";
    assert!(page.contains(line), "{page}");
    assert_eq!(json["error"]["not_routed"], serde_json::json!([line]));

    // Nothing known by these names: the live apps, as before (none yet).
    let (page, json) = not_found(router.port, "nope.localhost").await;
    assert!(page.contains("No apps are running"), "{page}");
    assert!(json["error"].get("not_routed").is_none(), "{json}");
    let (page, _) = not_found(router.port, "c9.caddy.localhost").await;
    assert!(page.contains("No apps are running"), "{page}");

    let _api = Instance::spawn(&home, "api", "a1", 8080);
    router.wait_instances("api", 1).await;
    let (page, json) = not_found(router.port, "nope.localhost").await;
    assert!(page.contains("a1.api.localhost"), "{page}");
    assert_eq!(json["error"]["apps"][0]["app"], "api", "{json}");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_says_it_is_not_routed_is_never_routed() {
    let home = Home::new();
    let router = TestRouter::start(&home);
    let mut web = Instance::spawn(&home, "web", "a1", 3000);
    router.wait_instances("web", 1).await;
    // The same live instance, its sidecar now saying why it is not routed.
    let path = naming::sidecar_path(&web.socket);
    let mut car = Sidecar::parse(&std::fs::read(&path).unwrap()).unwrap();
    car.not_routed = Some("port 3000 is shared with another process".into());
    car.write_atomic(&path).unwrap();
    router.wait_instances("web", 0).await;
    let (page, _) = not_found(router.port, "web.localhost").await;
    assert!(
        page.contains("web/a1: port 3000 is shared with another process"),
        "{page}"
    );
    // And routed again once it no longer says so.
    car.not_routed = None;
    car.write_atomic(&path).unwrap();
    router.wait_instances("web", 1).await;
    assert_eq!(get(router.port, "web.localhost", "/").await.status, 200);
    web.kill();
    router.stop().await;
}
