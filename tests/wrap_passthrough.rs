//! What is not a TCP listener is left alone: outbound TCP, UDP, Unix sockets.

mod common;

use std::io::Read;

use common::fixtures::Fixture;
use common::TestHome;

#[test]
fn outbound_tcp_udp_and_unix_sockets_are_untouched() {
    let home = TestHome::new();
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let unix_path = home.dir.join("app_own.sock");
    std::fs::create_dir_all(&home.dir).unwrap();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = upstream.accept().unwrap();
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        got
    });
    let output = home
        .agentfs(&[
            "wrap",
            "--no-router",
            "--name",
            "pass",
            "--instance",
            "a",
            "--",
        ])
        .args(
            Fixture::PythonPassthrough
                .command(&[&upstream_port.to_string(), unix_path.to_str().unwrap()]),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        reader.join().unwrap(),
        "hello",
        "the outbound connection reached the real TCP server"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["outbound_peer"],
        serde_json::json!(["127.0.0.1", upstream_port])
    );
    assert_eq!(report["udp_family"], libc::AF_INET);
    assert_eq!(
        report["udp_echo"], "ping",
        "UDP works over the real network stack"
    );
    assert_eq!(report["unix_name"], unix_path.to_str().unwrap());
    assert!(home.run_dir_files().is_empty(), "nothing was converted");
}
