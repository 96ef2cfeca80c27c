//! TLS on the router's own port, with a real TLS client (rustls) that trusts
//! only the home's CA: HTTP/2 and HTTP/1.1 by ALPN to an instance by name,
//! with `X-Forwarded-Proto: https`; plain HTTP on the same port; a WebSocket
//! over HTTP/2 (RFC 8441 extended CONNECT) reaching the app as an HTTP/1.1
//! upgrade and echoing frames; a name outside `localhost` refused in the
//! handshake; TLS on the callers socket after its first line, still routed
//! by the caller's instance.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{get, Home, Instance, Mode, TestRouter};
use http_body_util::{BodyExt, Empty};
use hyper::ext::Protocol;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

async fn router_with_tls() -> (Home, Instance, TestRouter) {
    let home = Home::new();
    let web = Instance::spawn_with(
        &home,
        "web",
        "a1",
        3000,
        true,
        Mode::Serve,
        agentfs_contract::sidecar::Kind::Shim,
    );
    let tls = agentfs_router::tls::config_for_home(&home.dir).unwrap();
    let router = TestRouter::start_with(&home, |config| config.tls = Some(tls));
    router.wait_instances("web", 1).await;
    (home, web, router)
}

/// A TLS connection to the router naming `name`, offering `alpn`, trusting
/// only the home's CA.
async fn connect(
    home: &Home,
    port: u16,
    name: &str,
    alpn: &[u8],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    secure(home, tcp, name, alpn).await
}

/// TLS over `io`, as [`connect`].
async fn secure<IO>(home: &Home, io: IO, name: &str, alpn: &[u8]) -> std::io::Result<TlsStream<IO>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let ca = agentfs_tls::Ca::open(&home.dir).unwrap().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, io)
        .await
}

type H2 = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

async fn h2<IO>(stream: TlsStream<IO>) -> H2
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test]
async fn http2_and_http1_over_tls_reach_an_instance_by_name() {
    let (home, _web, router) = router_with_tls().await;
    let mut sender = h2(connect(&home, router.port, "a1.web.localhost", b"h2")
        .await
        .unwrap())
    .await;
    for _ in 0..3 {
        let req = Request::get("https://a1.web.localhost/hello")
            .body(Empty::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(seen["instance"], "a1");
        assert_eq!(seen["path"], "/hello");
        assert_eq!(seen["headers"]["host"], "a1.web.localhost");
        assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    }

    let tls = connect(&home, router.port, "a1.web.localhost", b"http/1.1")
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/")
        .header("host", "a1.web.localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");

    // The same port, plain.
    let plain = get(router.port, "a1.web.localhost", "/").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.json()["headers"]["x-forwarded-proto"], "http");
    router.stop().await;
}

#[tokio::test]
async fn host_rules_hold_over_http2() {
    let (home, _web, router) = router_with_tls().await;
    let mut sender = h2(connect(&home, router.port, "a1.web.localhost", b"h2")
        .await
        .unwrap())
    .await;
    let answer = |uri: &str| Request::get(uri).body(Empty::new()).unwrap();
    // :authority names something outside localhost: 421, never proxied.
    let resp = sender
        .send_request(answer("https://example.com/"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST);
    let resp = sender
        .send_request(answer("https://nothing.localhost/"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // A plain CONNECT is still no forward proxy.
    let connect = Request::builder()
        .method(Method::CONNECT)
        .uri("a1.web.localhost:443")
        .body(Empty::new())
        .unwrap();
    let resp = sender.send_request(connect).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    router.stop().await;
}

#[tokio::test]
async fn a_websocket_over_http2_reaches_the_app_as_an_upgrade() {
    let (home, _web, router) = router_with_tls().await;
    let mut sender = h2(connect(&home, router.port, "a1.web.localhost", b"h2")
        .await
        .unwrap())
    .await;
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri("https://a1.web.localhost/ws")
        .header("sec-websocket-version", "13")
        .body(Empty::new())
        .unwrap();
    req.extensions_mut()
        .insert(Protocol::from_static("websocket"));
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{resp:?}");
    assert_eq!(resp.headers()["x-instance"], "a1");
    assert!(!resp.headers().contains_key("sec-websocket-accept"));
    let mut ws = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    // A masked text frame "hello", as a client sends it.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 5];
    frame.extend_from_slice(&mask);
    frame.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    ws.write_all(&frame).await.unwrap();
    let mut echo = [0u8; 7];
    ws.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"\x81\x05hello");
    router.stop().await;
}

#[tokio::test]
async fn a_name_outside_localhost_gets_no_certificate() {
    let (home, _web, router) = router_with_tls().await;
    let err = connect(&home, router.port, "example.com", b"h2")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("UnrecognisedName") || err.to_string().contains("nrecogni"),
        "{err}"
    );
    // Without a name (by address), the loopback certificate.
    let by_address = connect(&home, router.port, "127.0.0.1", b"h2").await;
    assert!(by_address.is_ok(), "{by_address:?}");
    router.stop().await;
}

#[tokio::test]
async fn tls_on_the_callers_socket_is_routed_by_the_callers_instance() {
    let home = Home::new();
    let _instances = [
        Instance::spawn(&home, "api", "a1", 8080),
        Instance::spawn(&home, "api", "b1", 8080),
    ];
    let tls = agentfs_router::tls::config_for_home(&home.dir).unwrap();
    let router = TestRouter::start_with(&home, |config| config.tls = Some(tls));
    router.wait_instances("api", 2).await;
    for (instance, alpn) in [("a1", &b"h2"[..]), ("b1", b"h2"), ("b1", b"http/1.1")] {
        let socket = agentfs_contract::layout::router_clients_socket(&home.dir);
        let mut unix = tokio::net::UnixStream::connect(socket).await.unwrap();
        let line = format!("AGENTFS-INSTANCE {instance}\n");
        unix.write_all(line.as_bytes()).await.unwrap();
        let stream = secure(&home, unix, "api.localhost", alpn).await.unwrap();
        let body = if alpn == b"h2" {
            let mut sender = h2(stream).await;
            let req = Request::get("https://api.localhost/")
                .body(Empty::new())
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            resp.into_body().collect().await.unwrap().to_bytes()
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let req = Request::get("/")
                .header("host", "api.localhost")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            resp.into_body().collect().await.unwrap().to_bytes()
        };
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(seen["instance"], instance, "{seen}");
        assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    }
    router.stop().await;
}
