//! What apps ask for in bind comes back to them: port 0 gets a fake port, IPv6
//! stays IPv6, and a dual-stack server's two binds share one socket.

mod common;

use common::fixtures::Fixture;
use common::{get_json, TestHome};

#[test]
fn port_zero_gets_a_fake_port_the_app_and_sidecar_agree_on() {
    let home = TestHome::new();
    let app = home.wrap("zero", "a", &Fixture::PythonProbe.command(&["--port", "0"]));
    let line = app.wait_stdout("listening on");
    let port: u16 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let car = home.wait_sidecar("zero", "a", None);
    assert_eq!(
        car.port, port,
        "the sidecar records the port the app was told"
    );
    assert_eq!(get_json(&car.socket, "/")["listener"][1], port);
}

#[test]
fn ipv6_loopback_listener_reports_ipv6() {
    let home = TestHome::new();
    let _app = home.wrap(
        "six",
        "a",
        &Fixture::PythonProbe.command(&["--host", "::1", "--port", "5000"]),
    );
    let car = home.wait_sidecar("six", "a", Some(5000));
    assert_eq!(car.address, "::1");
    let answer = get_json(&car.socket, "/");
    assert_eq!(answer["listener"], serde_json::json!(["::1", 5000]));
    assert_eq!(answer["peername"][0], "::1");
}

#[test]
fn dual_stack_binds_share_one_socket() {
    let home = TestHome::new();
    let app = home.wrap(
        "dual",
        "a",
        &Fixture::PythonProbe.command(&["--dual-stack", "--port", "6000"]),
    );
    app.wait_stdout("listening on :: port 6000");
    app.wait_stdout("listening on 0.0.0.0 port 6000");
    let car = home.wait_sidecar("dual", "a", Some(6000));
    for _ in 0..4 {
        assert_eq!(get_json(&car.socket, "/")["listener"][1], 6000);
    }
    let sockets: Vec<_> = home
        .run_dir_files()
        .into_iter()
        .filter(|f| f.ends_with(".sock"))
        .collect();
    assert_eq!(sockets, vec!["dual_a.sock"], "one socket serves both binds");
}

#[test]
fn node_listening_on_a_specific_host_and_port_zero() {
    let home = TestHome::new();
    let app = home.wrap("nodezero", "a", &Fixture::Node.command(&["0", "127.0.0.1"]));
    let car = home.wait_sidecar("nodezero", "a", None);
    let answer = get_json(&car.socket, "/");
    assert_eq!(answer["address"]["address"], "127.0.0.1");
    assert_eq!(answer["address"]["port"], car.port);
    assert_eq!(answer["remoteAddress"], "127.0.0.1");
    assert!(app
        .wait_stdout("listening")
        .contains(&format!("\"port\":{}", car.port)));
}
