//! From inside an instance, `APP.localhost` reaches that instance's own APP:
//! on the callers socket (`router-clients.sock`), a connection first says
//! which instance it belongs to (`AGENTFS-INSTANCE <label>\n`), and the
//! router routes by it. Only that socket carries an instance: TCP clients
//! are balanced as before whatever they send.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use agentfs_contract::layout;
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const ROUNDS: usize = 20;

/// Two instances of `api` (a1, b1) and one of `web` (w1, which has no api).
async fn stack() -> (Home, Vec<Instance>, TestRouter) {
    let home = Home::new();
    let instances = vec![
        Instance::spawn(&home, "api", "a1", 8080),
        Instance::spawn(&home, "api", "b1", 8080),
        Instance::spawn(&home, "web", "w1", 3000),
    ];
    let router = TestRouter::start(&home);
    router
        .wait_routes("api twice and web", |t| {
            t.apps.get("api").is_some_and(|i| i.len() == 2) && t.apps.contains_key("web")
        })
        .await;
    (home, instances, router)
}

/// A kept-alive HTTP connection on the callers socket, as `instance`.
async fn caller(
    home: &Home,
    instance: &str,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let mut stream = UnixStream::connect(layout::router_clients_socket(&home.dir))
        .await
        .unwrap();
    let line = format!("AGENTFS-INSTANCE {instance}\n");
    stream.write_all(line.as_bytes()).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// `GET /` for `host` on `sender`, with `cookie` if given: the answer.
async fn ask(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: &str,
    cookie: Option<&str>,
) -> Answer {
    let mut req = hyper::Request::get("/").header("host", host);
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    sender.ready().await.unwrap();
    let resp = sender
        .send_request(req.body(Full::default()).unwrap())
        .await;
    collect(resp.unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_localhost_from_inside_an_instance_reaches_its_own() {
    let (home, _instances, router) = stack().await;
    let mut a1 = caller(&home, "a1").await;
    for n in 0..ROUNDS {
        // A cookie naming the other instance changes nothing either.
        let cookie = (n % 2 == 1).then_some("agentfs-instance=b1");
        let answer = ask(&mut a1, "api.localhost:7380", cookie).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let seen = answer.json();
        assert_eq!(seen["instance"], "a1", "round {n}");
        assert!(answer.headers.get("set-cookie").is_none(), "round {n}");
        assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
        assert!(seen["headers"].get("cookie").is_none(), "{seen}");
    }
    // Names of one instance are as they were.
    let other = ask(&mut a1, "b1.api.localhost", None).await;
    assert_eq!(other.json()["instance"], "b1");
    let port = ask(&mut a1, "8080.b1.api.localhost", None).await;
    assert_eq!(port.json()["instance"], "b1");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_the_app_is_balanced_as_before() {
    let (home, _instances, router) = stack().await;
    let mut w1 = caller(&home, "w1").await;
    let mut seen = HashSet::new();
    for _ in 0..ROUNDS {
        let answer = ask(&mut w1, "api.localhost", None).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        seen.insert(answer.json()["instance"].as_str().unwrap().to_owned());
        // Balanced, so the affinity cookie is set as for any client.
        assert!(answer.headers.get("set-cookie").is_some());
    }
    assert_eq!(seen, HashSet::from(["a1".to_owned(), "b1".to_owned()]));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_line_and_the_request_may_come_in_one_write() {
    let (home, _instances, router) = stack().await;
    for n in 0..ROUNDS {
        let mut stream = UnixStream::connect(layout::router_clients_socket(&home.dir))
            .await
            .unwrap();
        let request = format!(
            "AGENTFS-INSTANCE b1\nGET /{n} HTTP/1.1\r\nHost: api.localhost\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        tokio::time::timeout(DEADLINE, stream.read_to_string(&mut raw))
            .await
            .expect("the router answers and closes")
            .unwrap();
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        assert!(raw.contains("\"instance\": \"b1\""), "{raw}");
        assert!(raw.contains(&format!("\"/{n}\"")), "{raw}");
    }
    router.stop().await;
}

/// Sends `first` on a new connection to the callers socket, then waits for
/// the router to close it: what it answered.
async fn closed_after(home: &Home, first: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(layout::router_clients_socket(&home.dir))
        .await
        .unwrap();
    stream.write_all(first).await.unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw)).await;
    let _ = read.expect("the router closes the connection");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_valid_first_line_is_closed_unanswered() {
    let (home, _instances, router) = stack().await;
    let long = format!("AGENTFS-INSTANCE {}\n", "a".repeat(100));
    for first in [
        &b"GET / HTTP/1.1\r\nHost: api.localhost\r\n\r\n"[..],
        b"AGENTFS-INSTANCE Not_A_Label\nGET / HTTP/1.1\r\nHost: api.localhost\r\n\r\n",
        b"AGENTFS-INSTANCE a1\r\nGET / HTTP/1.1\r\nHost: api.localhost\r\n\r\n",
        long.as_bytes(),
        // Nothing at all: closed when the time for the first line is up.
        b"",
    ] {
        let raw = closed_after(&home, first).await;
        assert!(
            raw.is_empty(),
            "{:?} got {:?}",
            String::from_utf8_lossy(first),
            String::from_utf8_lossy(&raw)
        );
    }
    assert_eq!(get(router.port, "a1.api.localhost", "/").await.status, 200);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_clients_never_carry_an_instance() {
    let (home, _instances, router) = stack().await;
    // The first line means nothing over TCP: it is a bad request there.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", router.port))
        .await
        .unwrap();
    tcp.write_all(b"AGENTFS-INSTANCE a1\nGET / HTTP/1.1\r\nHost: api.localhost\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_string(&mut raw)).await;
    assert!(!raw.contains("\"instance\""), "{raw}");
    // Balanced over both instances, as before.
    let mut seen = HashSet::new();
    let mut client = Client::connect(router.port).await;
    for _ in 0..ROUNDS {
        let answer = client.get("api.localhost", "/").await.unwrap();
        seen.insert(answer.json()["instance"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    let socket = layout::router_clients_socket(&home.dir);
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    router.stop().await;
    assert!(!socket.exists(), "the callers socket is removed at stop");
}
