//! What a wrapped process's instance does not serve reaches the kernel
//! untouched: a TCP server outside agentfs is reached, a port nobody
//! listens on refuses, and UDP and connects to other addresses are left
//! alone even on a port the instance serves.

mod common;

use std::net::UdpSocket;

use common::bridge::free_port;
use common::clients::{body, c_client, node, plain_http_server, python, run_wrapped, serve};
use common::fixtures::Fixture;
use common::TestHome;

#[test]
fn a_server_outside_agentfs_is_reached_and_a_port_nobody_serves_refuses() {
    let home = TestHome::new();
    let _app = serve(&home, "api", "x", &[free_port()]);
    let plain = plain_http_server("127.0.0.1:0", "plain tcp").to_string();
    let nobody = free_port().to_string();
    for port in [&plain, &nobody] {
        let url = format!("http://127.0.0.1:{port}/");
        let runs = [
            run_wrapped(&home, "web", "x", &python("client.py", &["get", &url])),
            run_wrapped(&home, "web", "x", &node("client.js", &["fetch", &url])),
            run_wrapped(
                &home,
                "web",
                "x",
                &c_client(&["blocking", "127.0.0.1", port]),
            ),
        ];
        for ran in &runs {
            if port == &plain {
                assert_eq!(body(ran), "plain tcp");
            } else {
                let refused = ["errno", "code", "connect"]
                    .iter()
                    .any(|field| ran.report[field] == "ECONNREFUSED");
                assert!(refused, "refused as before: {}", ran.report);
            }
        }
    }
}

#[test]
fn outbound_tcp_udp_and_unix_sockets_stay_untouched_in_an_instance_that_serves() {
    let home = TestHome::new();
    let _app = serve(&home, "api", "x", &[free_port()]);
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let (mut conn, _) = upstream.accept().unwrap();
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        got
    });
    let unix_path = home.dir.join("own.sock");
    let cmd = Fixture::PythonPassthrough
        .command(&[&upstream_port.to_string(), unix_path.to_str().unwrap()]);
    let ran = run_wrapped(&home, "pass", "x", &cmd);
    assert_eq!(ran.code, Some(0), "{:?}", ran.stderr);
    assert_eq!(reader.join().unwrap(), "hello");
    assert_eq!(ran.report["udp_echo"], "ping");
    assert_eq!(ran.report["unix_name"], unix_path.to_str().unwrap());
}

/// This machine's address on the interface a packet to the documentation
/// network would leave by, if it has one.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let probe = UdpSocket::bind("0.0.0.0:0").ok()?;
    probe.connect("192.0.2.1:9").ok()?;
    Some(probe.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

#[test]
fn udp_and_other_addresses_on_a_served_port_reach_the_kernel() {
    let home = TestHome::new();
    // A real TCP server on every address, and a UDP echo on loopback, with
    // the very port number the instance's app serves as a socket.
    let port = plain_http_server("0.0.0.0:0", "the host's own");
    let udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&buf[..n], from);
        }
    });
    let _app = serve(&home, "api", "x", &[port]);
    let port_text = port.to_string();
    let loopback = format!("http://127.0.0.1:{port}/");
    let ran = run_wrapped(&home, "web", "x", &python("client.py", &["get", &loopback]));
    assert_eq!(body(&ran), format!("hello from api/x on {port}"));
    let ran = run_wrapped(
        &home,
        "web",
        "x",
        &python("client.py", &["udp", "127.0.0.1", &port_text]),
    );
    assert_eq!(
        ran.report["echo"], "ping",
        "UDP is not wired: {}",
        ran.report
    );
    match non_loopback_address() {
        Some(ip) => {
            let url = format!("http://{}/", std::net::SocketAddr::new(ip, port));
            let ran = run_wrapped(&home, "web", "x", &python("client.py", &["get", &url]));
            assert_eq!(body(&ran), "the host's own", "{url} is not loopback");
        }
        None => eprintln!("no non-loopback address here: that part is not checked"),
    }
}
