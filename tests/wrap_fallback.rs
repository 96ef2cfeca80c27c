//! wrap's fallback for programs that cannot take the shim: statically linked
//! C servers built here, run behind bridges, found even when they ignore PORT.
//!
//! Every test goes through `agentfs wrap --no-netns` (on Linux such programs
//! otherwise get a private network namespace: tests/netns.rs), whose bridge
//! discovery looks at the app's process tree for the ports it listens on.

mod common;
use common::{bridge as bridge_common, router as router_common};

use bridge_common::*;

/// Processes of the tree under `root` whose command name is `comm`.
fn descendants_named(root: u32, comm: &str) -> Vec<u32> {
    agentfs_procs::descendants(root)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|name| name.trim() == comm)
        })
        .collect()
}

/// The primary sidecar of `app`/one once it says the app listens.
fn primary_listening(home: &Home, app: &str) -> serde_json::Value {
    wait_for("the bridge to find the app listening", || {
        Some(home.wait_sidecar_json(app, "one", None)).filter(|car| car["listening"] == true)
    })
}

#[test]
fn wrap_bridge_finds_a_server_that_ignores_port() {
    let home = Home::new();
    let server = build_c_server(&home.dir, true);
    let own_port = free_port();
    let mut command = home.agentfs(&["wrap", "--no-router", "--no-netns", "--name", "ign"]);
    command
        .args(["--instance", "one", "--"])
        .arg(&server)
        .arg(own_port.to_string());
    let mut wrap = common::Wrapped::spawn(command);
    let car = home.wait_sidecar_json("ign", "one", None);
    assert_eq!(car["kind"], "bridge");
    // The primary socket ends up at the port the app chose itself, and
    // says it listens only then: the PORT it was given is never announced.
    let car = primary_listening(&home, "ign");
    assert_eq!(car["target"], format!("127.0.0.1:{own_port}"));
    assert_c_server_on(&home.socket("ign", "one", None), own_port);
    wrap.wait_stderr("ign/one ignores PORT=");
    assert!(
        !wrap
            .stderr()
            .iter()
            .any(|l| l.contains("listening on 127.0.0.1:") && !l.contains(&own_port.to_string())),
        "announced a port nothing listens on: {:?}",
        wrap.stderr()
    );
    // One listener, one entry: no second socket for the same port.
    assert_eq!(home.sidecars().len(), 1, "{:?}", home.sidecars());

    let pids = wait_for("the server process", || {
        Some(descendants_named(wrap.child.id(), "server-static")).filter(|p| !p.is_empty())
    });
    for pid in pids {
        std::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .unwrap();
    }
    assert_eq!(wrap.wait_exit().code(), Some(128 + 15));
    assert_eq!(all_files(&home.run_dir()), Vec::<String>::new());
}

#[test]
fn wrap_runs_a_static_server_behind_a_bridge_reachable_through_the_router() {
    let home = Home::new();
    let server = build_c_server(&home.dir, true);
    let router = router_common::TestRouter::start(&home);
    let wrapped = Running::spawn(home.agentfs(&[
        "wrap",
        "--no-netns",
        "--name",
        "st",
        "--instance",
        "one",
        "--",
        server.to_str().unwrap(),
    ]));
    let car = home.wait_sidecar_json("st", "one", None);
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
    assert!(
        stderr.contains("connects to localhost ports go to the host's ports"),
        "and what the bridge does not do: {stderr}"
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
    home.wait_sidecar_json("dyn", "one", None);
    assert_c_server_on(&home.socket("dyn", "one", None), own_port);
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
        "--no-netns",
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
    // own port has the instance's socket, a bridged router port would have one too.
    let car = primary_listening(&home, "rt");
    assert_eq!(car["target"], format!("127.0.0.1:{own_port}"));
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
