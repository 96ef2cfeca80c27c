//! `agentfs ps` and `agentfs route`: the real binary over a real run
//! directory, with bridges and user sockets, with and without a router.

mod common;
use common::{bridge as bridge_common, router as router_common};

use std::os::unix::net::UnixListener;
use std::path::Path;

use agentfs_contract::sidecar;
use bridge_common::*;
use serde_json::Value;

fn start_bridge(home: &Home, port: u16, name: &str, instance: &str) -> Running {
    let running = Running::spawn(home.agentfs(&[
        "bridge",
        "--port",
        &port.to_string(),
        "--name",
        name,
        "--instance",
        instance,
    ]));
    home.wait_sidecar_json(name, instance, None);
    running
}

fn ps_json(home: &Home, extra_env: &[(&str, &str)]) -> Vec<Value> {
    let mut cmd = home.agentfs(&["ps", "--json"]);
    cmd.envs(extra_env.iter().copied());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A user's own HTTP server on a Unix socket outside the run dir.
fn user_socket_server(path: &Path) {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nmanual",
                );
            });
        }
    });
}

#[test]
fn ps_json_shows_live_then_stale_and_prune_removes() {
    let home = Home::new();
    let port = echo_until_eof_server();
    let running = start_bridge(&home, port, "web", "one");
    let rows = ps_json(&home, &[("AGENTFS_ROUTER_PORT", "4321")]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    let added_by_ps = ["target", "status", "url", "requests"];
    for field in sidecar::FIELDS.iter().chain(&added_by_ps) {
        assert!(row.get(field).is_some(), "{field} missing from {row}");
    }
    assert_eq!(row["kind"], "bridge");
    assert_eq!(row["status"], "live");
    assert_eq!(row["pid"], running.0.id());
    assert_eq!(row["port"], port);
    assert_eq!(row["url"], "http://one.web.localhost:4321");
    assert_eq!(row["requests"], Value::Null, "no router runs");

    running.signal("KILL");
    running.wait();
    let rows = ps_json(&home, &[]);
    assert_eq!(rows[0]["status"], "stale");
    assert_eq!(rows[0]["url"], "http://one.web.localhost:7380");
    let table = home.run(&["ps"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("APP"), "{text}");
    assert!(text.lines().nth(1).unwrap().contains("stale"), "{text}");

    // --json holds with --prune: the removed entries, as JSON on stdout.
    let pruned = home.run(&["ps", "--prune", "--json"]);
    assert!(String::from_utf8_lossy(&pruned.stderr).contains("removed 1 stale entry"));
    let removed: Vec<Value> = serde_json::from_slice(&pruned.stdout).unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(
        (&removed[0]["app"], &removed[0]["status"]),
        (&"web".into(), &"stale".into())
    );
    assert_eq!(all_files(&home.run_dir()), Vec::<String>::new());
    assert_eq!(ps_json(&home, &[]), Vec::<Value>::new());
}

#[test]
fn manual_route_lifecycle() {
    let home = Home::new();
    let outside = home.dir.join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let socket = outside.join("api.sock");
    user_socket_server(&socket);

    let added = home.run(&["route", "v2.api", socket.to_str().unwrap()]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let rows = ps_json(&home, &[]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["kind"], "manual");
    assert_eq!(rows[0]["app"], "api");
    assert_eq!(rows[0]["instance"], "v2");
    assert_eq!(rows[0]["socket"], socket.to_str().unwrap());
    assert_eq!(rows[0]["status"], "live");
    // Only a sidecar: nothing is linked or copied into the run dir.
    assert_eq!(all_files(&home.run_dir()), ["api_v2.json"]);

    let removed = home.run(&["route", "--remove", "v2.api.localhost"]);
    assert!(removed.status.success());
    assert_eq!(all_files(&home.run_dir()), Vec::<String>::new());
    assert!(socket.exists(), "the user's socket is never touched");
    let again = home.run(&["route", "--remove", "v2.api"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no manual route"));

    // Stale once the socket is gone; prune takes the sidecar only.
    assert!(home
        .run(&["route", "api", socket.to_str().unwrap()])
        .status
        .success());
    std::fs::remove_file(&socket).unwrap();
    assert_eq!(ps_json(&home, &[])[0]["status"], "stale");
    assert!(home.run(&["ps", "--prune"]).status.success());
    assert_eq!(all_files(&home.run_dir()), Vec::<String>::new());
}

#[test]
fn manual_route_refuses_bad_sockets_and_live_names() {
    let home = Home::new();
    let file = home.dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let cases = [
        (vec!["route", "api", "/no/such/socket"], "does not exist"),
        (
            vec!["route", "api", file.to_str().unwrap()],
            "not a Unix socket",
        ),
        (
            vec!["route", "a.b.c", file.to_str().unwrap()],
            "APP or INSTANCE.APP",
        ),
    ];
    for (args, message) in cases {
        let out = home.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let socket = home.dir.join("s.sock");
    user_socket_server(&socket);
    let _bridge = start_bridge(&home, free_port(), "taken", "one");
    let out = home.run(&["route", "one.taken", socket.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already served by a bridge"));
}

#[test]
fn ps_counts_requests_from_the_router() {
    let home = Home::new();
    let router = router_common::TestRouter::start(&home);
    let server = build_c_server(&home.dir, false);
    let port = free_port();
    let _server = Running::spawn({
        let mut cmd = std::process::Command::new(&server);
        cmd.arg(port.to_string());
        cmd
    });
    let _bridge = start_bridge(&home, port, "counted", "one");
    router.wait_instances("counted", 1);
    let mut ok = 0;
    let deadline = std::time::Instant::now() + DEADLINE;
    while ok < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "router never answered 200"
        );
        let answer = router_common::get(router.port, "one.counted.localhost", "/");
        if answer.status == 200 {
            ok += 1;
        } else {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let rows = ps_json(&home, &[]);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["url"],
        format!("http://one.counted.localhost:{}", router.port)
    );
    assert!(rows[0]["requests"].as_u64().unwrap() >= 3, "{}", rows[0]);
    router.stop();
}

#[test]
fn manual_route_is_reachable_through_the_router() {
    let home = Home::new();
    let router = router_common::TestRouter::start(&home);
    let socket = home.dir.join("user.sock");
    user_socket_server(&socket);
    assert!(home
        .run(&["route", "mine", socket.to_str().unwrap()])
        .status
        .success());
    router.wait_instances("mine", 1);
    let answer = router_common::get(router.port, "mine.localhost", "/");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "manual");
    router.stop();
}

#[test]
fn the_routers_own_control_socket_is_never_a_route() {
    let home = Home::new();
    let router = router_common::TestRouter::start(&home);
    // Through agentfs route: refused with the reason, by path or by a link to it.
    let link = home.dir.join("innocent.sock");
    std::os::unix::fs::symlink(home.control(), &link).unwrap();
    for socket in [home.control(), link] {
        let out = home.run(&["route", "api", socket.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{socket:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("the router's own control socket"), "{said}");
    }
    // A sidecar written by hand is refused by the router too.
    let car = sidecar::Sidecar {
        version: sidecar::VERSION,
        kind: sidecar::Kind::Manual,
        app: "api".into(),
        instance: "manual".into(),
        pid: 0,
        socket: home.control(),
        address: "unix".into(),
        port: 0,
        primary: true,
        listening: true,
        hostname: "manual.api.localhost".into(),
        argv: vec![],
        cwd: "/".into(),
        started_at: sidecar::now_rfc3339(),
        target: None,
        not_routed: None,
    };
    let path = agentfs_contract::naming::sidecar_path(&home.socket("api", "manual", None));
    car.write_atomic(&path).unwrap();
    let scan = agentfs_contract::rundir::scan(&home.run_dir()).unwrap();
    assert_eq!(scan.rejected[0].reason.kind(), "router-socket");
    // A route written after it is routed: the router has read both by then.
    let _bridge = start_bridge(&home, free_port(), "later", "one");
    router.wait_instances("later", 1);
    let answer = router_common::get(router.port, "api.localhost", "/health");
    assert_eq!(answer.status, 404, "{}", answer.text());
    router.stop();
}
