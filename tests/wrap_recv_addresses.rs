//! recvfrom and recvmsg on a converted connection: a client that bound its
//! own Unix socket makes the kernel return its path as the sender, which a
//! TCP server must never see; it gets the loopback peer of its socket's
//! family instead, as getpeername reports. A client that did not bind gets
//! no address at all, as over TCP.

mod common;

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use common::fixtures::Fixture;
use common::{get_json, TestHome};

/// A Unix stream socket bound at `own`, connected to `server`.
fn bound_client(own: &Path, server: &Path) -> UnixStream {
    let address = |path: &Path| {
        // SAFETY: all-zero bytes are a valid sockaddr_un.
        let mut un: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        un.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_encoded_bytes();
        assert!(bytes.len() < un.sun_path.len(), "{}", path.display());
        for (to, from) in un.sun_path.iter_mut().zip(bytes) {
            *to = *from as libc::c_char;
        }
        un
    };
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns, with
    // addresses that live across the calls.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let stream = UnixStream::from_raw_fd(fd);
        let own = address(own);
        assert_eq!(libc::bind(fd, (&raw const own).cast(), len), 0, "bind");
        let server = address(server);
        assert_eq!(
            libc::connect(fd, (&raw const server).cast(), len),
            0,
            "connect"
        );
        stream
    }
}

fn get_json_from(mut stream: UnixStream) -> serde_json::Value {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t.localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

#[test]
fn a_bound_clients_path_becomes_the_loopback_peer_of_each_family() {
    let home = TestHome::new();
    for (instance, host, loopback) in [("v4", "0.0.0.0", "127.0.0.1"), ("v6", "::", "::1")] {
        let app = home.wrap(
            "recv",
            instance,
            &Fixture::PythonRecv.command(&["7070", host]),
        );
        app.wait_stdout("listening");
        let car = home.wait_sidecar("recv", instance, Some(7070));
        let own = home.dir.join(format!("client-{instance}.sock"));
        let answer = get_json_from(bound_client(&own, &car.socket));
        for call in ["recvfrom", "recvmsg"] {
            assert_eq!(answer[call][0], loopback, "{call}: {answer}");
            assert!(answer[call][1].is_u64(), "{call}: {answer}");
        }
    }
}

#[test]
fn an_unbound_client_gives_no_sender_address() {
    let home = TestHome::new();
    let app = home.wrap(
        "recv",
        "a",
        &Fixture::PythonRecv.command(&["7071", "::", "0.0.0.0"]),
    );
    app.wait_stdout("listening");
    let car = home.wait_sidecar("recv", "a", Some(7071));
    let answer = get_json(&car.socket, "/");
    assert!(answer["recvfrom"].is_null(), "{answer}");
    assert!(answer["recvmsg"].is_null(), "{answer}");
}
