//! The connection limit: connections beyond it are answered 503 and closed,
//! never left hanging, and a closed connection frees its place.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_answered_503_and_closed() {
    let home = Home::new();
    let _web = Instance::spawn(&home, "web", "a1", 3000);
    let router = TestRouter::start_with(&home, |config| config.max_connections = 2);
    router.wait_instances("web", 1).await;

    let mut first = Client::connect(router.port).await;
    let mut second = Client::connect(router.port).await;
    assert_eq!(first.get("web.localhost", "/").await.unwrap().status, 200);
    assert_eq!(second.get("web.localhost", "/").await.unwrap().status, 200);

    let refused = raw_get(router.port).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("TOO_MANY_CONNECTIONS"), "{refused}");
    assert!(
        refused.contains("x-content-type-options: nosniff\r\n"),
        "{refused}"
    );

    // The kept connections still work, and a closed one makes room.
    assert_eq!(second.get("web.localhost", "/").await.unwrap().status, 200);
    drop(first);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let answer = raw_get(router.port).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room after a close"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    router.stop().await;
}

/// `GET /` on `web.localhost` with `Connection: close` on a new connection:
/// the raw answer, read until the router closes the connection.
async fn raw_get(port: u16) -> String {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: web.localhost\r\nConnection: close\r\n\r\n";
    // A refused connection may be closed before the request is all written.
    let _ = tcp.write_all(request).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut raw)).await;
    read.expect("the connection is closed after its answer")
        .unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}
