//! A service's `setup` runs once per instance, before its first run, as
//! its run does (under wrap, in its directory, with `{instance}` expanded):
//! two `up`s run it once. A setup that fails stops `up` with its output and
//! starts nothing that needs the service.

mod common;

use common::bridge::free_port;
use common::stack::{assert_ok, Down, Repo};
use common::TestHome;

#[test]
fn setup_runs_once_across_two_ups() {
    let home = TestHome::new();
    let _router = home.start_router();
    let port = free_port();
    let toml = format!(
        r#"
[services.web]
setup = "mkdir -p data && echo {{instance}} >> data/setup-runs"
run = "exec python3 -m http.server {port} --bind 127.0.0.1"
dir = "site"
"#
    );
    let repo = Repo::new(&home, &[("agentfs.toml", &toml)]);
    std::fs::create_dir(repo.dir.join("site")).unwrap();
    let _down = Down {
        home: &home,
        dir: repo.dir.clone(),
    };
    for _ in 0..2 {
        assert_ok(&home.run_in(&repo.dir, &["up", "-d", "--wait"]), "up");
        assert_ok(&home.run_in(&repo.dir, &["down"]), "down");
    }
    let runs = std::fs::read_to_string(repo.dir.join("site/data/setup-runs")).unwrap();
    assert_eq!(runs, "main\n");
}

#[test]
fn a_failing_setup_stops_up_with_its_output() {
    let home = TestHome::new();
    let _router = home.start_router();
    let toml = format!(
        r#"
[services.db]
setup = "echo 'initdb: cannot create data directory' >&2; exit 3"
run = "exec python3 -m http.server {db} --bind 127.0.0.1"

[services.api]
run = "touch api-started; exec python3 -m http.server {api} --bind 127.0.0.1"
after = ["db"]
"#,
        db = free_port(),
        api = free_port()
    );
    let repo = Repo::new(&home, &[("agentfs.toml", &toml)]);
    let _down = Down {
        home: &home,
        dir: repo.dir.clone(),
    };
    let up = home.run_in(&repo.dir, &["up", "-d", "--wait"]);
    assert_eq!(up.status.code(), Some(1), "{up:?}");
    let said = String::from_utf8_lossy(&up.stderr);
    assert!(
        said.contains("db is failed: its setup exited with code 3"),
        "{said}"
    );
    assert!(
        said.contains("| initdb: cannot create data directory"),
        "{said}"
    );
    assert!(
        !repo.dir.join("api-started").exists(),
        "api needs db: never started"
    );
    let json = home.run_in(&repo.dir, &["wait", "--json", "--timeout", "5"]);
    assert_eq!(json.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["services"][1]["state"], "failed");
    assert_eq!(json["services"][1]["detail"], "not started: db is failed");
}
