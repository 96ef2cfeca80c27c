//! Real servers in several languages run under `agentfs wrap` and answer over
//! their Unix socket, with the sidecar saying whose socket it is.

mod common;

use common::fixtures::Fixture;
use common::{get_json, http_get, http_get_raw, TestHome};

#[test]
fn python_http_server_answers_over_its_socket() {
    let home = TestHome::new();
    let _app = home.wrap(
        "web",
        "py",
        &[
            "python3".into(),
            "-m".into(),
            "http.server".into(),
            "8000".into(),
        ],
    );
    let car = home.wait_sidecar("web", "py", None);
    let (status, body) = http_get(&car.socket, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("Directory listing"), "{body}");

    assert_eq!(car.version, 1);
    assert_eq!(car.kind, agentfs_contract::sidecar::Kind::Shim);
    assert_eq!(
        (car.address.as_str(), car.port, car.primary),
        ("0.0.0.0", 8000, true)
    );
    assert_eq!(car.socket, home.socket("web", "py", None));
    assert_eq!(car.hostname, "py.web.localhost");
    assert!(
        car.argv.iter().any(|a| a == "http.server"),
        "{:?}",
        car.argv
    );
    assert!(common::process_alive(car.pid));
    assert!(!car.cwd.is_empty() && car.started_at.ends_with('Z'));
}

#[test]
fn node_server_keeps_its_port_and_sees_a_loopback_peer() {
    let home = TestHome::new();
    let app = home.wrap("web", "node", &Fixture::Node.command(&["3000"]));
    let car = home.wait_sidecar("web", "node", Some(3000));
    let answer = get_json(&car.socket, "/hello");
    // server.address() comes from getsockname: the port the app asked for.
    assert_eq!(answer["address"]["port"], 3000);
    assert_eq!(answer["address"]["family"], "IPv6");
    assert_eq!(answer["remoteAddress"], "::1");
    assert_eq!(answer["url"], "/hello");
    assert!(app.wait_stdout("listening").contains("\"port\":3000"));
    // wrap announces the listener on stderr.
    app.wait_stderr("web/node listening on [::]:3000");
}

#[test]
fn c_servers_plain_epoll_and_epoll_before_bind() {
    let home = TestHome::new();
    let modes = ["plain", "epoll", "epoll-early"];
    let apps: Vec<_> = modes
        .iter()
        .map(|mode| home.wrap("c", mode, &Fixture::C.command(&["8080", mode])))
        .collect();
    for (mode, app) in modes.iter().zip(&apps) {
        let car = home.wait_sidecar("c", &mode.replace('_', "-"), Some(8080));
        let answer = http_get_raw(&car.socket, "/").unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{mode}: {answer}");
        assert!(answer.ends_with("hello from C on 8080"), "{mode}: {answer}");
        assert!(
            answer.contains(&format!("X-Pid: {}", car.pid)),
            "{mode}: {answer}"
        );
        assert!(answer.contains("X-Peer: 127.0.0.1"), "{mode}: {answer}");
        assert!(app.wait_stdout("listening on port").ends_with("8080"));
    }
}

#[test]
fn probe_sees_its_socket_options_and_addresses() {
    let home = TestHome::new();
    let _app = home.wrap(
        "probe",
        "opts",
        &Fixture::PythonProbe.command(&["--host", "127.0.0.1", "--port", "4000"]),
    );
    let car = home.wait_sidecar("probe", "opts", Some(4000));
    let answer = get_json(&car.socket, "/");
    assert_eq!(answer["listener"], serde_json::json!(["127.0.0.1", 4000]));
    assert_eq!(answer["sockname"], serde_json::json!(["127.0.0.1", 4000]));
    assert_eq!(answer["peername"][0], "127.0.0.1");
    // Set on the TCP socket before bind, read back from the Unix one after.
    assert_ne!(answer["reuseaddr"], 0);
    assert_ne!(answer["keepalive"], 0);
    // TCP_NODELAY on an accepted connection succeeds and reads back.
    assert_eq!(answer["nodelay"], 1);
    let mode = std::fs::metadata(&car.socket)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
        .unwrap();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(home.run_dir())
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
        .unwrap();
    assert_eq!(dir_mode & 0o777, 0o700);
}

#[test]
fn the_sidecar_records_where_the_instance_was_started_not_where_the_server_moved() {
    let home = TestHome::new();
    let started_in = home.dir.join("project");
    std::fs::create_dir_all(&started_in).unwrap();
    // Like a database changing into its data directory before it binds.
    let script = "import os, http.server\n\
                  os.chdir('/')\n\
                  http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=8411, bind='127.0.0.1')";
    let mut cmd = home.agentfs(&[
        "wrap",
        "--no-router",
        "--name",
        "db",
        "--instance",
        "a",
        "--",
        "python3",
        "-c",
        script,
    ]);
    cmd.current_dir(&started_in);
    let _app = common::Wrapped::spawn(cmd);
    let car = home.wait_sidecar("db", "a", Some(8411));
    assert_eq!(std::path::PathBuf::from(&car.cwd), started_in);
}
