//! How the router reads instances' answers to requests without a body (its
//! own HTTP/1.1 client, `wire`): HEAD, interim 1xx answers, bodies ended by
//! closing, answers that are not HTTP, and instances that close kept-alive
//! connections behind the router's back; and answers still in progress when
//! the router stops.

mod common;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use common::*;

/// The client's connection still carries requests: the last answer was framed right.
async fn still_serves(client: &mut Client) {
    let after = client.get("web.localhost", "/after").await.unwrap();
    assert_eq!(after.json()["path"], "/after");
}

#[tokio::test]
async fn head_answers_keep_their_length_and_carry_no_body() {
    let (_home, _web, router) = web_behind_router(Mode::Serve).await;

    let mut client = Client::connect(router.port).await;
    let req = Request::head("/")
        .header("host", "web.localhost")
        .body(Full::<Bytes>::default())
        .unwrap();
    let answer = collect(client.send(req).await.unwrap()).await.unwrap();
    assert_eq!(answer.status, 200);
    let length: usize = answer.headers["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 0, "the instance's length is passed on");
    assert!(answer.body.is_empty());
    still_serves(&mut client).await;
    router.stop().await;
}

#[tokio::test]
async fn interim_answers_are_skipped_and_bodies_may_end_at_close() {
    let (_home, _web, router) = web_behind_router(Mode::Serve).await;

    let mut client = Client::connect(router.port).await;
    let early = client.get("web.localhost", "/early").await.unwrap();
    assert_eq!(early.status, 200);
    assert_eq!(early.json()["path"], "/early");
    let until_close = client.get("web.localhost", "/until-close").await.unwrap();
    assert_eq!(until_close.status, 200);
    assert_eq!(until_close.text(), "all of it, until the end");
    // The client's own connection stays open: only the instance's closed.
    still_serves(&mut client).await;
    router.stop().await;
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_a_502() {
    let (_home, _web, router) = web_behind_router(Mode::Serve).await;

    let garbage = get(router.port, "web.localhost", "/garbage").await;
    assert_eq!(garbage.status, 502, "{}", garbage.text());
    assert!(garbage.text().contains("malformed"), "{}", garbage.text());
    router.stop().await;
}

/// The instance closes every connection after one answer, without a
/// `Connection: close`: each pooled connection is stale by the next request,
/// which is sent again on a new connection, so every request succeeds.
#[tokio::test]
async fn connections_the_instance_closed_while_idle_are_replaced() {
    let (_home, _web, router) = web_behind_router(Mode::OncePerConnection).await;

    let mut client = Client::connect(router.port).await;
    for i in 0..20 {
        let path = format!("/n{i}");
        let answer = client.get("web.localhost", &path).await.unwrap();
        assert_eq!(answer.status, 200, "request {i}: {}", answer.text());
        assert_eq!(answer.json()["path"], path);
        // A POST must not be sent twice, so it never takes a pooled connection.
        let post = Request::post(&path)
            .header("host", "web.localhost")
            .body(Full::<Bytes>::default())
            .unwrap();
        let answer = collect(client.send(post).await.unwrap()).await.unwrap();
        assert_eq!(answer.status, 200, "POST {i}: {}", answer.text());
        assert_eq!(answer.json()["method"], "POST");
    }
    router.stop().await;
}

/// Stopping the router lets a request in progress finish: `stop` returns
/// only once its answer is complete, and the client gets all of it.
#[tokio::test]
async fn a_request_in_progress_is_answered_before_the_router_stops() {
    let (_home, _web, router) = web_behind_router(Mode::Serve).await;
    let table = router.routes();
    let backend = table.borrow().backends().next().unwrap().clone();

    let port = router.port;
    let slow = tokio::spawn(async move { get(port, "web.localhost", "/slow?ms=1000").await });
    wait_until("the slow request is in flight", || backend.in_flight() == 1).await;
    router.stop().await;
    assert_eq!(
        backend.in_flight(),
        0,
        "stop returned before the answer was done"
    );
    assert_eq!(backend.requests(), 1);
    let answer = slow.await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["path"], "/slow?ms=1000");
}
