//! `agentfs router` as a real process: started in the background, found by
//! `status`, refused a second time, and stopped by `stop`.
//! Needs `Router(RouterArgs)` wired into `src/main.rs`.

mod common;
use common::router as router_common;

use std::process::{Command, Output};

use agentfs_contract::{layout, liveness};
use router_common::*;

fn agentfs(home: &Home, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentfs"))
        .args(args)
        .env("AGENTFS_HOME", &home.dir)
        .env("AGENTFS_ROUTER_PORT", "0")
        .output()
        .unwrap()
}

/// Stops the background router even when an assertion fails first.
struct StopOnDrop<'a>(&'a Home);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = agentfs(self.0, &["router", "stop"]);
    }
}

#[test]
fn background_router_lifecycle() {
    let home = Home::new();
    let help = agentfs(&home, &["router", "--help"]);
    assert!(
        help.status.success(),
        "`agentfs router` is not wired into src/main.rs"
    );
    assert_eq!(agentfs(&home, &["router", "status"]).status.code(), Some(1));

    let _stop = StopOnDrop(&home);
    let started = agentfs(&home, &["router"]);
    assert!(started.status.success(), "{started:?}");
    assert!(liveness::is_held(&layout::router_lock(&home.dir)));
    let status = agentfs(&home, &["router", "status"]);
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    let port: u16 = text
        .split("port ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {text}"));
    let answer = get(port, "agentfs.localhost", "/health");
    assert_eq!(answer.json()["data"]["port"], port);
    // The CLI and the router it started are one build.
    assert_eq!(answer.json()["data"]["version"], env!("CARGO_PKG_VERSION"));

    let second = agentfs(&home, &["router", "--foreground"]);
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already runs"));

    let stopped = agentfs(&home, &["router", "stop"]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(!liveness::is_held(&layout::router_lock(&home.dir)));
    assert!(!layout::router_socket(&home.dir).exists());
    assert_eq!(agentfs(&home, &["router", "status"]).status.code(), Some(1));
}

#[test]
fn a_router_started_from_inside_a_wrapped_app_stays_on_tcp() {
    // `agentfs wrap -- bash`, then `agentfs wrap ...` in that shell: the
    // inner agentfs runs with the outer instance's shim settings, which the
    // router it starts must not inherit.
    let home = Home::new();
    let shim = home.installed_shim();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _stop = StopOnDrop(&home);
    let started = Command::new(env!("CARGO_BIN_EXE_agentfs"))
        .arg("router")
        .env("AGENTFS_HOME", &home.dir)
        .env("AGENTFS_ROUTER_PORT", port.to_string())
        .env("LD_PRELOAD", &shim)
        .env("AGENTFS_APP", "outer")
        .env("AGENTFS_INSTANCE", "a")
        .env("AGENTFS_RUN_DIR", home.run_dir())
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    let answer = get(port, "agentfs.localhost", "/health");
    assert_eq!(answer.json()["data"]["port"], port);
    assert!(
        home.run_dir_files().is_empty(),
        "{:?}",
        home.run_dir_files()
    );
}

#[test]
fn every_flag_reaches_a_router_started_in_the_background() {
    let home = Home::new();
    let _stop = StopOnDrop(&home);
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, other) = (free(), free());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_agentfs"))
            .args(args)
            .env("AGENTFS_HOME", &home.dir)
            .env_remove("AGENTFS_ROUTER_PORT")
            .output()
            .unwrap()
    };
    let port_arg = port.to_string();
    let started = run(&["router", "--port", &port_arg, "--listen", "127.0.0.1"]);
    assert!(started.status.success(), "{started:?}");
    let answer = get(port, "agentfs.localhost", "/health");
    assert_eq!(answer.json()["data"]["port"], port);
    // --listen 127.0.0.1 only: not on ::1.
    assert!(std::net::TcpStream::connect(("::1", port)).is_err());
    // Asking for another port while it runs says so, rather than "taken".
    let again = run(&["router", "--port", &other.to_string()]);
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("already runs") && said.contains(&port_arg),
        "{said}"
    );
}

#[test]
fn the_upstream_timeout_flag_reaches_the_router() {
    let home = Home::new();
    // Listening, so connects succeed, but nothing ever accepts or answers.
    let socket = home.dir.join("hang.sock");
    let _silent = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let routed = home.run(&["route", "hang", socket.to_str().unwrap()]);
    assert!(routed.status.success(), "{routed:?}");
    let router = TestRouter::start_with_args(&home, &["--upstream-timeout", "1"]);
    router.wait_instances("hang", 1);
    // With the default limit (minutes) this would outlast the client's own.
    let answer = get(router.port, "hang.localhost", "/");
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert!(
        answer.text().contains("no answer within 1s"),
        "{}",
        answer.text()
    );
    router.stop();
}
