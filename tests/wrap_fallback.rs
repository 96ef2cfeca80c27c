//! wrap's fallback for programs that cannot take the shim: statically linked
//! C servers built here, run behind bridges, found even when they ignore PORT.
//!
//! `run_bridged_finds_a_server_that_ignores_port` drives the library entry
//! directly. The `wrap_*` tests go through `agentfs wrap` and need wrap to
//! call `agentfs_launcher::wrap_bridge::run_bridged` (they were ignored until
//! it does). No test here opens TCP listeners in this process: discovery
//! looks at this process's tree.

mod common;
use common::{bridge as bridge_common, router as router_common};

use std::ffi::OsString;

use bridge_common::*;

/// Children of this process whose command name is `comm`.
fn children_named(comm: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let name = stat
                .split('(')
                .nth(1)
                .and_then(|s| s.rsplit_once(')'))
                .map(|(n, _)| n);
            let ppid = agentfs_launcher::bridge::procnet::parent_of(&stat);
            name == Some(comm) && ppid == Some(me)
        })
        .collect()
}

#[test]
fn run_bridged_finds_a_server_that_ignores_port() {
    let home = Home::new();
    let server = build_c_server(&home.dir, true);
    let own_port = free_port();
    let cmd: Vec<OsString> = vec![server.clone().into(), own_port.to_string().into()];
    let dir = home.dir.clone();
    let bridged = std::thread::spawn(move || {
        agentfs_launcher::wrap_bridge::run_bridged(&cmd, "ign", "one", &dir, "test: not injectable")
    });
    let car = home.wait_sidecar_json("ign-one");
    assert_eq!(car["kind"], "bridge");
    let given_port = car["port"].as_u64().unwrap() as u16;
    assert_ne!(given_port, own_port);
    // The primary socket ends up at the port the app chose itself...
    assert_c_server_on(&home.run_dir().join("ign-one.sock"), own_port);
    let car = home.wait_sidecar_json("ign-one");
    assert_eq!(car["target"], format!("127.0.0.1:{own_port}"));
    // ...and that port has a socket of its own too.
    let secondary = home.wait_sidecar_json(&format!("ign-one-{own_port}"));
    assert_eq!(secondary["primary"], false);
    assert_c_server_on(
        &home.run_dir().join(format!("ign-one-{own_port}.sock")),
        own_port,
    );

    let pids = wait_for("the server process", || {
        Some(children_named("server-static")).filter(|p| !p.is_empty())
    });
    for pid in pids {
        std::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .unwrap();
    }
    let code = bridged.join().unwrap().unwrap();
    assert_eq!(code, 128 + 15);
    assert_eq!(all_files(&home.run_dir()), Vec::<String>::new());
}

#[test]
fn wrap_runs_a_static_server_behind_a_bridge_reachable_through_the_router() {
    let home = Home::new();
    let server = build_c_server(&home.dir, true);
    let router = router_common::TestRouter::start(&home);
    let wrapped = Running::spawn(home.agentfs(&[
        "wrap",
        "--name",
        "st",
        "--instance",
        "one",
        "--",
        server.to_str().unwrap(),
    ]));
    let car = home.wait_sidecar_json("st-one");
    assert_eq!(car["kind"], "bridge");
    let port = car["port"].as_u64().unwrap();
    router.wait_instances("st", 1);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let answer = router_common::get(router.port, "one.st.localhost", "/");
        if answer.status == 200 {
            assert_eq!(answer.text(), format!("hello from C on {port}"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", answer.text());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    wrapped.signal("TERM");
    let (code, stderr) = wrapped.wait();
    assert!(
        stderr.contains("statically linked"),
        "one line says why: {stderr}"
    );
    assert_eq!(code, Some(128 + 15), "{stderr}");
    router.stop();
}

#[test]
fn wrap_bridge_flag_finds_a_dynamic_server_that_ignores_port() {
    let home = Home::new();
    let server = build_c_server(&home.dir, false);
    let own_port = free_port();
    let wrapped = Running::spawn(home.agentfs(&[
        "wrap",
        "--no-router",
        "--bridge",
        "--name",
        "dyn",
        "--instance",
        "one",
        "--",
        server.to_str().unwrap(),
        &own_port.to_string(),
    ]));
    home.wait_sidecar_json("dyn-one");
    assert_c_server_on(&home.run_dir().join("dyn-one.sock"), own_port);
    assert_stops_clean_on_term(&home, wrapped);
}

#[test]
fn the_router_wrap_starts_is_never_bridged_as_the_apps_port() {
    // wrap starts the router as its own child before the app: the search for
    // the app's ports must look at the app's process tree, not wrap's.
    let home = Home::new();
    let server = build_c_server(&home.dir, true);
    let (own_port, router_port) = (free_port(), free_port());
    let mut command = home.agentfs(&[
        "wrap",
        "--name",
        "rt",
        "--instance",
        "one",
        "--",
        server.to_str().unwrap(),
        &own_port.to_string(),
    ]);
    command.env("AGENTFS_ROUTER_PORT", router_port.to_string());
    let wrapped = Running::spawn(command);
    // Both ports of the tree are found in one look at /proc: once the app's
    // own port has its socket, a bridged router port would have one too.
    home.wait_sidecar_json(&format!("rt-one-{own_port}"));
    let files = all_files(&home.run_dir());
    assert!(
        !files.iter().any(|f| f.contains(&router_port.to_string())),
        "{files:?}"
    );
    wrapped.signal("TERM");
    let (code, stderr) = wrapped.wait();
    assert_eq!(code, Some(128 + 15), "{stderr}");
    assert!(home.run(&["router", "stop"]).status.success());
}
