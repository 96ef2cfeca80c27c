//! `after`: a service starts only once what it needs is ready, however slow
//! that is to start; a cycle (or an unknown name) is refused before anything
//! starts, naming the line.

mod common;

use std::process::Stdio;

use common::bridge::{free_port, Running};
use common::stack::{assert_ok, Down, Repo};
use common::{wait_for, TestHome};

#[test]
fn a_service_starts_once_its_slow_dependency_is_ready() {
    let home = TestHome::new();
    let _router = home.start_router();
    let (db, app) = (free_port(), free_port());
    // db listens only once the test lets it; app gives up at once
    // (`restart = "no"`) if db does not answer when it starts.
    let toml = format!(
        r#"
[services.app]
run = "python3 -c 'import socket; socket.create_connection((\"localhost\", {db}), 5); print(\"reached db\")' && exec python3 -m http.server {app} --bind 127.0.0.1"
after = ["db"]
restart = "no"

[services.db]
run = "while [ ! -e go ]; do sleep 0.05; done; exec python3 -m http.server {db} --bind 127.0.0.1"
ready = "http://localhost:{db}/"
"#
    );
    let repo = Repo::new(&home, &[("agentfs.toml", &toml)]);
    let _down = Down {
        home: &home,
        dir: repo.dir.clone(),
    };
    let mut up = home.agentfs_in(&repo.dir, &["up", "-d", "--wait"]);
    up.stdout(Stdio::null()).stderr(Stdio::piped());
    let up = Running::spawn(up);
    let app_state = home.wait_service("main", "app", "waiting for db", |s| {
        s["detail"] == "waiting for db to be ready"
    });
    assert_eq!(app_state["state"], "starting");
    assert_eq!(app_state["pid"], serde_json::Value::Null, "not started yet");
    home.wait_service("main", "db", "running", |s| s["pid"].is_u64());
    assert!(home.sidecars().iter().all(|c| c.app != "app"));

    std::fs::write(repo.dir.join("go"), "").unwrap();
    let (code, stderr) = up.wait();
    assert_eq!(code, Some(0), "{stderr}");
    let log = assert_ok(&home.run_in(&repo.dir, &["logs", "app"]), "logs app");
    assert!(log.contains("reached db"), "{log}");
    wait_for("app to be ready", || {
        let state = home.stack_state("main")?;
        (state["services"][0]["state"] == "ready").then_some(())
    });
}

#[test]
fn a_cycle_is_refused_before_anything_starts() {
    let home = TestHome::new();
    let toml = "\
[services.first]
run = \"touch first-started; exec sleep 600\"

[services.a]
run = \"touch a-started; exec sleep 600\"
after = [\"b\"]

[services.b]
run = \"exec sleep 600\"
after = [\"a\"]
";
    let repo = Repo::new(&home, &[("agentfs.toml", toml)]);
    let up = home.run_in(&repo.dir, &["up", "-d"]);
    assert_eq!(up.status.code(), Some(1));
    let said = String::from_utf8_lossy(&up.stderr);
    assert!(
        said.contains("agentfs.toml line 4: `after` makes a cycle: a -> b -> a"),
        "{said}"
    );
    assert!(!repo.dir.join("first-started").exists());
    assert!(
        !home.dir.join("stacks").exists(),
        "no supervisor was started"
    );
    assert!(!home.control().exists(), "no router was started");

    let unknown = "[services.web]\nrun = \"x\"\nafter = [\"api\"]\n";
    std::fs::write(repo.dir.join("agentfs.toml"), unknown).unwrap();
    let up = home.run_in(&repo.dir, &["up", "-d"]);
    assert_eq!(up.status.code(), Some(1));
    let said = String::from_utf8_lossy(&up.stderr);
    assert!(
        said.contains("line 1: service web is started after \"api\""),
        "{said}"
    );
}
