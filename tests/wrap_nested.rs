//! agentfs inside a wrapped process: its own processes never run under the
//! shim (a router listens on real TCP, a bridge forwards over real TCP), and
//! a nested wrap joins the outer instance. Outside any wrap, the instance id
//! defaults to the git work tree's branch.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::bridge::free_port;
use common::{agentfs_bin, http_get, wait_for, TestHome};

/// `sh -c SCRIPT` under `wrap --name outer --instance o1`.
fn in_wrapped_shell(home: &TestHome, script: &str) -> common::Wrapped {
    home.wrap("outer", "o1", &["sh".into(), "-c".into(), script.into()])
}

/// `GET /health` of a router on real TCP, if it answers.
fn tcp_health(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: agentfs.localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.contains("\"status\":\"success\"").then_some(answer)
}

#[test]
fn a_router_started_inside_a_wrapped_shell_listens_on_real_tcp() {
    let home = TestHome::new();
    let port = free_port();
    let _shell = in_wrapped_shell(
        &home,
        &format!("exec {} router --foreground --port {port}", agentfs_bin()),
    );
    wait_for("the router on real TCP", || tcp_health(port));
    assert!(
        home.sidecars().iter().all(|car| car.app != "outer"),
        "the router's listener was registered as the outer app: {:?}",
        home.sidecars()
    );
}

#[test]
fn a_bridge_started_inside_a_wrapped_shell_forwards_over_real_tcp() {
    let home = TestHome::new();
    let port = free_port();
    let _shell = in_wrapped_shell(
        &home,
        &format!(
            "exec {} bridge --port {port} --name api --instance o1 -- python3 -m http.server {port} --bind 127.0.0.1",
            agentfs_bin()
        ),
    );
    let car = home.wait_sidecar("api", "o1", None);
    assert_eq!(car.kind, agentfs_contract::sidecar::Kind::Bridge);
    let (status, body) = wait_for("the bridged app to answer", || {
        http_get(&car.socket, "/")
            .ok()
            .filter(|(status, _)| *status == 200)
    });
    assert_eq!(status, 200);
    assert!(body.contains("Directory listing"), "{body}");
}

#[test]
fn a_nested_wrap_joins_the_outer_instance() {
    let home = TestHome::new();
    let _shell = in_wrapped_shell(
        &home,
        &format!(
            "exec {} wrap --no-router --name inner -- python3 -m http.server 0 --bind 127.0.0.1",
            agentfs_bin()
        ),
    );
    let car = home.wait_sidecar("inner", "o1", None);
    assert_eq!(car.kind, agentfs_contract::sidecar::Kind::Shim);
}

#[test]
fn in_a_git_work_tree_the_instance_is_the_branch() {
    let home = TestHome::new();
    let repo = home.dir.join("shop");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feat/Login\n").unwrap();
    let spawn = || {
        let mut cmd = home.agentfs(&[
            "wrap",
            "--no-router",
            "--name",
            "web",
            "--",
            "python3",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
        ]);
        cmd.current_dir(&repo);
        common::Wrapped::spawn(cmd)
    };
    let first = spawn();
    first.wait_stderr("web/feat-login: running python3 -m http.server 0 --bind 127.0.0.1 (instance from git branch feat/Login)");
    let car = home.wait_sidecar("web", "feat-login", None);
    assert!(common::process_alive(car.pid));
    // The same app again in the same work tree: it joins the same instance,
    // and wrap says so, and how to run a copy beside it.
    let second = spawn();
    second.wait_stderr("web/feat-login already runs");
    second.wait_stderr("--instance NAME");
}
