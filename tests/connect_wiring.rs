//! Each instance is a private localhost: a connect from a wrapped process
//! to a loopback port that a listener of its instance serves reaches that
//! listener's socket, whichever app it belongs to, and never another
//! instance's.

mod common;

use common::bridge::free_port;
use common::clients::{
    body, c_client, plain_http_server, python, run_wrapped, run_wrapped_logged, serve,
};
use common::{http_get, TestHome, Wrapped};

#[test]
fn a_handler_reaches_another_port_of_its_own_process_over_tcp() {
    let home = TestHome::new();
    let (front, back) = (free_port(), free_port());
    let _server = serve(&home, "two", "i1", &[front, back]);
    let socket = home.wait_sidecar("two", "i1", Some(front)).socket;
    let (status, answer) = http_get(&socket, &format!("/call/{back}")).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, format!("hello from two/i1 on {back}"));
}

#[test]
fn a_client_only_wrap_reaches_its_instances_app_and_exits_with_the_clients_status() {
    let home = TestHome::new();
    let port = free_port();
    let _app = serve(&home, "shop", "x", &[port]);
    let curl = |path: &str| {
        let url = format!("http://localhost:{port}{path}");
        let args = [
            "wrap",
            "--no-router",
            "--instance",
            "x",
            "--",
            "curl",
            "-sf",
        ];
        let mut command = home.agentfs(&args);
        command.args(["--max-time", "20", &url]);
        let mut wrapped = Wrapped::spawn(command);
        let status = wrapped.wait_exit();
        (status.code(), wrapped)
    };
    let (code, wrapped) = curl("/");
    let answer = format!("hello from shop/x on {port}");
    wrapped.wait_stdout(&answer);
    assert_eq!(code, Some(0), "{:?}", wrapped.stderr());
    assert!(
        !wrapped.stderr().iter().any(|l| l.contains("listening on")),
        "a command that never listens gets no URL line: {:?}",
        wrapped.stderr()
    );
    let (code, wrapped) = curl("/missing");
    assert_eq!(
        code,
        Some(22),
        "curl -f's own status for a 404: {:?}",
        wrapped.stderr()
    );
}

#[test]
fn two_instances_with_a_server_on_the_same_port_each_reach_only_their_own() {
    let home = TestHome::new();
    let port = free_port();
    let _x = serve(&home, "api", "x", &[port]);
    let _y = serve(&home, "api", "y", &[port]);
    let url = format!("http://127.0.0.1:{port}/");
    for id in ["x", "y"] {
        let ran = run_wrapped(&home, "web", id, &python("client.py", &["get", &url]));
        assert_eq!(body(&ran), format!("hello from api/{id} on {port}"));
    }
    let ran = run_wrapped(&home, "web", "z", &python("client.py", &["get", &url]));
    assert_eq!(
        ran.report["errno"], "ECONNREFUSED",
        "an instance without that port is refused as over TCP: {}",
        ran.report
    );
}

#[test]
fn with_two_apps_on_one_port_the_callers_own_app_wins_else_the_kernel_answers() {
    let home = TestHome::new();
    let port = free_port();
    let _a = serve(&home, "a", "x", &[port]);
    let _b = serve(&home, "b", "x", &[port]);
    let url = format!("http://127.0.0.1:{port}/");
    for app in ["a", "b"] {
        let ran = run_wrapped(&home, app, "x", &python("client.py", &["get", &url]));
        assert_eq!(body(&ran), format!("hello from {app}/x on {port}"));
    }
    let args = [
        "wrap",
        "--no-router",
        "--name",
        "c",
        "--instance",
        "x",
        "--",
    ];
    let mut command = home.agentfs(&args);
    command
        .args(python("client.py", &["get", &url]))
        .env("AGENTFS_LOG", "1");
    let ran = common::clients::finish(Wrapped::spawn(command));
    assert_eq!(ran.report["errno"], "ECONNREFUSED", "{}", ran.report);
    let said = ran.stderr.join("\n");
    assert!(
        said.contains("several other apps of this instance listen on that port")
            && said.contains(r#"apps ["a", "b"] of instance x"#),
        "AGENTFS_LOG says why: {said}"
    );
}

#[test]
fn a_bridged_apps_port_is_in_its_instances_scope() {
    let home = TestHome::new();
    let port = plain_http_server("127.0.0.1:0", "behind the bridge");
    let port_text = port.to_string();
    let args = [
        "bridge",
        "--port",
        &port_text,
        "--name",
        "old",
        "--instance",
        "x",
    ];
    let _bridge = common::bridge::Running::spawn(home.agentfs(&args));
    let bridge_socket = home.wait_sidecar("old", "x", Some(port)).socket;
    let ran = run_wrapped_logged(
        &home,
        "web",
        "x",
        &c_client(&["blocking", "127.0.0.1", &port_text]),
    );
    assert_eq!(body(&ran), "behind the bridge");
    let wired = format!("wired to {}", bridge_socket.display());
    assert!(
        ran.stderr.iter().any(|l| l.contains(&wired)),
        "the connect went through the bridge's socket: {:?}",
        ran.stderr
    );
}
