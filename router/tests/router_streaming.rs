//! Bodies stream through the router both ways: large chunked uploads and
//! downloads, server-sent events, and upgraded (WebSocket) connections.

mod common;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;

/// A request body of `left` chunks of 1 MiB with no declared length, so it
/// goes out chunked.
struct Chunks {
    left: usize,
    chunk: Bytes,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chunked_bodies_stream_both_ways() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", router.port))
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Chunks>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let upload = hyper::Request::post("/upload")
        .header("host", "web.localhost")
        .body(Chunks {
            left: 64,
            chunk: Bytes::from(vec![7u8; MIB]),
        })
        .unwrap();
    let answer = collect(sender.send_request(upload).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["bytes"], 64 * MIB);

    // Download 128 MiB and check every byte of the pattern as it streams.
    sender.ready().await.unwrap();
    let download = hyper::Request::get(format!("/download?bytes={}", 128 * MIB))
        .header("host", "web.localhost")
        .body(Chunks {
            left: 0,
            chunk: Bytes::new(),
        })
        .unwrap();
    let resp = sender.send_request(download).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut offset = 0usize;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            // The fixture repeats 0..=255 from the start of each 64 KiB chunk.
            for (i, byte) in data.iter().enumerate() {
                assert_eq!(*byte as usize, (offset + i) % (64 * 1024) % 256);
            }
            offset += data.len();
        }
    }
    assert_eq!(offset, 128 * MIB);
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_arrive_while_the_stream_is_open() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let mut client = Client::connect(router.port).await;
    let req = hyper::Request::get("/sse")
        .header("host", "web.localhost")
        .body(Default::default())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    // The stream never ends, so this only passes if the router forwards as it goes.
    let first = tokio::time::timeout(DEADLINE, body.frame())
        .await
        .expect("first event never came through")
        .unwrap()
        .unwrap();
    assert_eq!(
        first.into_data().unwrap(),
        Bytes::from_static(b"data: first\n\n")
    );
    // A stream still open would hold the router's stop for its drain time.
    drop((body, client));
    router.stop().await;
}

/// A final client frame: masked, as RFC 6455 requires of clients.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 1 << 16 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_through_the_router() {
    let (_home, _a, router) = web_behind_router(Mode::Serve).await;

    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", router.port))
        .await
        .unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: a1.web.localhost\r\nConnection: Upgrade\r\n\
          Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "closed during handshake"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );

    // The key's accept value from RFC 6455's own example.
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");

    // Masked client frames, echoed back as unmasked server frames.
    for message in [&b"hello"[..], &b"HMR update"[..], &vec![42u8; 200_000][..]] {
        let (mut read, mut write) = tcp.split();
        let echo = async {
            let mut head = [0u8; 2];
            read.read_exact(&mut head).await.unwrap();
            assert_eq!(head[0], 0x82, "a final binary frame");
            let len = match head[1] {
                126 => u64::from(read.read_u16().await.unwrap()),
                127 => read.read_u64().await.unwrap(),
                n => u64::from(n),
            };
            let mut back = vec![0u8; len as usize];
            read.read_exact(&mut back).await.unwrap();
            back
        };
        let frame = masked_frame(0x2, message);
        let (_, back) = tokio::join!(write.write_all(&frame), echo);
        assert_eq!(back, message);
    }
    router.stop().await;
}
