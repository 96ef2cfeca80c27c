//! The router's own pages stay small however many instances run: a 404 and
//! the status page list a bounded number and say how many they left out,
//! while `/api/routes` lists everything unless asked for a window.

mod common;

use common::*;

/// Instances held for these tests: at 10,000 the 404 page was 2.5 MB.
const MANY: usize = 1000;

/// What a 404 may weigh with [`MANY`] instances (unbounded, it was 91 KB).
const PAGE_BYTES: usize = 32 * 1024;

/// What the dashboard may weigh with [`MANY`] idle instances: its 100 rows
/// are about 72 KB (unbounded, its 1,000 rows would be about 720 KB).
const DASHBOARD_BYTES: usize = 128 * 1024;

async fn many_behind_router() -> (Home, Held, TestRouter) {
    let home = Home::new();
    let held = Held::instances(&home, "bench", MANY);
    let router = TestRouter::start(&home);
    router.wait_instances("bench", MANY).await;
    (home, held, router)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_lists_a_bounded_number_of_instances_and_says_where_the_rest_are() {
    let (_home, _held, router) = many_behind_router().await;
    let mut client = Client::connect(router.port).await;

    let page = client.get("nope.localhost", "/").await.unwrap();
    assert_eq!(page.status, 404);
    let text = page.text();
    assert!(
        page.body.len() < PAGE_BYTES,
        "404 page of {} bytes",
        page.body.len()
    );
    assert!(text.contains("Showing 100 of 1000 instances"), "{text}");
    assert!(text.contains("900 not listed"), "{text}");
    assert!(text.contains("href=\"/api/routes\""), "{text}");
    assert!(text.contains(&format!("http://i0.bench.localhost:{}", router.port)));
    let dashboard = format!("http://agentfs.localhost:{}", router.port);
    assert!(
        text.contains(&format!("<a href=\"{dashboard}\">")),
        "{text}"
    );

    let req = hyper::Request::get("/")
        .header("host", "nope.localhost")
        .header("accept", "application/json")
        .body(Default::default())
        .unwrap();
    let answer = collect(client.send(req).await.unwrap()).await.unwrap();
    assert_eq!(answer.status, 404);
    assert!(
        answer.body.len() < PAGE_BYTES,
        "404 JSON of {} bytes",
        answer.body.len()
    );
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "NO_ROUTE");
    assert_eq!(error["total"], MANY);
    assert_eq!(error["omitted"], MANY - 100);
    let listed = error["apps"][0]["instances"].as_array().unwrap().len();
    assert_eq!(listed, 100);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_is_bounded_and_api_routes_pages_on_request() {
    let (_home, _held, router) = many_behind_router().await;
    let mut client = Client::connect(router.port).await;

    let page = client.get("agentfs.localhost", "/").await.unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.body.len() < DASHBOARD_BYTES,
        "status page of {} bytes",
        page.body.len()
    );
    assert!(page.text().contains("Showing 100 of 1000 instances"));

    // Scripts rely on getting everything without asking.
    let all = client
        .get("agentfs.localhost", "/api/routes")
        .await
        .unwrap()
        .json();
    assert_eq!(
        all["data"]["apps"][0]["instances"]
            .as_array()
            .unwrap()
            .len(),
        MANY
    );
    assert_eq!(all["data"]["total"], MANY);

    let tail = client
        .get("agentfs.localhost", "/api/routes?offset=995&limit=10")
        .await
        .unwrap()
        .json();
    let data = &tail["data"];
    assert_eq!(data["total"], MANY);
    assert_eq!(data["offset"], 995);
    assert_eq!(data["limit"], 10);
    let names: Vec<&str> = data["apps"][0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance"].as_str().unwrap())
        .collect();
    // Table order is by name: i995..i999 sort last.
    assert_eq!(names, ["i995", "i996", "i997", "i998", "i999"]);

    let past = client
        .get("agentfs.localhost", "/api/routes?offset=5000")
        .await
        .unwrap()
        .json();
    assert_eq!(past["data"]["apps"], serde_json::json!([]));

    let bad = client
        .get("agentfs.localhost", "/api/routes?limit=lots")
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "BAD_REQUEST");
    router.stop().await;
}
