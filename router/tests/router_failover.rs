//! When one of two instances dies (SIGKILL) under continuous load, no client
//! request fails: connect failures and dropped connections are retried on the
//! other instance.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use agentfs_contract::sidecar::Kind;

use common::*;

/// Concurrent keep-alive clients hammering the app name.
const CLIENTS: usize = 4;
/// Requests to see succeed before the kill, and again after it.
const BEFORE_KILL: usize = 200;
const AFTER_KILL: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_one_instance_under_load_fails_no_request() {
    let home = Home::new();
    let mut a = Instance::spawn(&home, "web", "a1", 3000);
    let _b = Instance::spawn(&home, "web", "b2", 3000);
    let router = TestRouter::start(&home);
    router.wait_instances("web", 2).await;

    let ok = Arc::new(AtomicUsize::new(0));
    let served_by_a = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (ok, by_a, stop) = (ok.clone(), served_by_a.clone(), stop.clone());
        let port = router.port;
        clients.push(tokio::spawn(async move {
            let mut client = Client::connect(port).await;
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.get("web.localhost", "/").await {
                    Ok(answer) if answer.status == 200 => {
                        if answer.json()["instance"] == "a1" {
                            by_a.fetch_add(1, Ordering::Relaxed);
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(answer) => failures.push(format!("{}: {}", answer.status, answer.text())),
                    Err(err) => {
                        failures.push(err.to_string());
                        client = Client::connect(port).await;
                    }
                }
            }
            failures
        }));
    }
    wait_until("load is flowing", || {
        ok.load(Ordering::Relaxed) >= BEFORE_KILL
    })
    .await;
    assert!(served_by_a.load(Ordering::Relaxed) > 0, "a1 never served");
    a.kill();
    let at_kill = ok.load(Ordering::Relaxed);
    wait_until("load continues after the kill", || {
        ok.load(Ordering::Relaxed) >= at_kill + AFTER_KILL
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    router.wait_instances("web", 1).await;
    router.stop().await;
}

/// An instance that sends an answer's headers and dies before its body: the
/// router reads small answers to replayable requests whole before passing
/// them on, so the client gets the other instance's full answer instead of
/// a cut-off body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_dying_between_headers_and_body_is_retried() {
    let home = Home::new();
    let mut dying = Instance::spawn_with(
        &home,
        "web",
        "a1",
        3000,
        true,
        Mode::DieMidAnswer,
        Kind::Shim,
    );
    let _healthy = Instance::spawn(&home, "web", "b2", 3000);
    let router = TestRouter::start(&home);
    router.wait_instances("web", 2).await;

    let mut client = Client::connect(router.port).await;
    let mut answered = 0;
    // Balancing sends one of the first requests to the dying instance.
    while !dying.has_exited() || answered < 2 {
        let answer = client
            .get("web.localhost", "/")
            .await
            .expect("every request gets a whole answer");
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["instance"], "b2");
        answered += 1;
        assert!(answered < 1000, "the dying instance was never asked");
    }
    router.stop().await;
}

/// An instance that stopped (SIGSTOP: it accepts, and never answers) costs
/// at most one request: that one gets a 504 when the time limit runs out,
/// and stays in flight at the stopped instance, so balancing sends the
/// rest to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_fails_at_most_one_request_of_twenty() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let home = Home::new();
    let _a = Instance::spawn(&home, "web", "a1", 3000);
    let b = Instance::spawn(&home, "web", "b2", 3000);
    let router = TestRouter::start_with(&home, |config| {
        config.upstream_timeout = std::time::Duration::from_secs(1);
    });
    router.wait_instances("web", 2).await;
    let mut client = Client::connect(router.port).await;
    for _ in 0..4 {
        assert_eq!(client.get("web.localhost", "/").await.unwrap().status, 200);
    }

    let stopped = Pid::from_raw(b.pid() as i32);
    kill(stopped, Signal::SIGSTOP).unwrap();
    let mut failures = Vec::new();
    for i in 0..20 {
        // The client's own limit, well past the router's.
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            get(router.port, "web.localhost", "/"),
        )
        .await;
        match answer {
            Ok(answer) if answer.status == 200 => assert_eq!(answer.json()["instance"], "a1"),
            Ok(answer) => {
                assert_eq!(answer.status, 504, "{}", answer.text());
                assert!(answer.text().contains("b2"), "{}", answer.text());
                failures.push(i);
            }
            Err(_) => failures.push(i),
        }
    }
    kill(stopped, Signal::SIGCONT).unwrap();
    assert!(failures.len() <= 1, "failed: {failures:?}");
    router.stop().await;
}

/// A slow answer gets the time limit, answered with the JSON envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_does_not_start_in_time_is_a_504() {
    let home = Home::new();
    let _a = Instance::spawn(&home, "web", "a1", 3000);
    let router = TestRouter::start_with(&home, |config| {
        config.upstream_timeout = std::time::Duration::from_millis(300);
    });
    router.wait_instances("web", 1).await;

    let mut client = Client::connect(router.port).await;
    let req = hyper::Request::get("/slow?ms=3000")
        .header("host", "a1.web.localhost")
        .header("accept", "application/json")
        .body(Default::default())
        .unwrap();
    let answer = collect(client.send(req).await.unwrap()).await.unwrap();
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "UPSTREAM_TIMEOUT");
    router.stop().await;
}
