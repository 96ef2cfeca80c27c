//! Restart policy: a service that exits non-zero is started again with
//! backoff and says so in its log; one that keeps exiting without ever
//! becoming ready is reported failed (after 3 exits), and `wait` exits 1 at
//! once with its last line. `restart = "no"` fails on the first exit.
//! `agentfs restart` starts a failed service again.

mod common;

use common::bridge::free_port;
use common::stack::{assert_ok, Down, Repo};
use common::TestHome;

#[test]
fn a_service_that_keeps_failing_is_restarted_then_reported_failed() {
    let home = TestHome::new();
    let _router = home.start_router();
    let toml = format!(
        r#"
[services.web]
run = "exec python3 -m http.server {web} --bind 127.0.0.1"

[services.worker]
run = "echo starting worker; echo 'fatal: QUEUE_URL is not set' >&2; exit 1"

[services.once]
run = "exit 4"
restart = "no"
"#,
        web = free_port()
    );
    let repo = Repo::new(&home, &[("agentfs.toml", &toml)]);
    let _down = Down {
        home: &home,
        dir: repo.dir.clone(),
    };
    assert_ok(&home.run_in(&repo.dir, &["up", "-d", "web"]), "up web");

    let up = home.run_in(&repo.dir, &["up", "-d", "--wait", "--timeout", "60"]);
    assert_eq!(up.status.code(), Some(1), "{up:?}");
    // The first failure ends waiting for all at once.
    let said = String::from_utf8_lossy(&up.stderr);
    assert!(
        said.contains("once is failed: exited with code 4"),
        "{said}"
    );
    let wait = home.run_in(&repo.dir, &["wait", "worker", "--timeout", "60"]);
    assert_eq!(wait.status.code(), Some(1), "{wait:?}");
    let said = String::from_utf8_lossy(&wait.stderr);
    assert!(
        said.contains("worker is failed: exited 3 times without becoming ready (last: code 1)"),
        "{said}"
    );
    assert!(said.contains("  | fatal: QUEUE_URL is not set"), "{said}");

    let worker = home.wait_service("main", "worker", "failed", |s| s["state"] == "failed");
    assert_eq!(worker["restarts"], 2);
    assert_eq!(worker["last_exit"], 1);
    let log = assert_ok(&home.run_in(&repo.dir, &["logs", "worker"]), "logs worker");
    assert!(
        log.contains("agentfs: worker exited with code 1; restarting in 1s"),
        "{log}"
    );
    assert!(
        log.contains("agentfs: worker exited with code 1; restarting in 2s"),
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| *l == "starting worker").count(),
        3,
        "{log}"
    );
    // What was fine stays fine, and waiting for it alone succeeds.
    assert_ok(&home.run_in(&repo.dir, &["wait", "web"]), "wait web");

    // Started again on request: a fresh run (and it fails again).
    assert_ok(&home.run_in(&repo.dir, &["restart", "worker"]), "restart");
    home.wait_service("main", "worker", "started again", |s| {
        s["state"] != "failed"
    });
    let wait = home.run_in(&repo.dir, &["wait", "worker", "--json"]);
    assert_eq!(wait.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&wait.stdout).unwrap();
    assert_eq!(json["problems"], serde_json::json!(["worker"]));
}

#[test]
fn wait_times_out_with_what_is_not_ready_and_why() {
    let home = TestHome::new();
    let _router = home.start_router();
    let toml = "[services.quiet]\nrun = \"exec sleep 600\"\n";
    let repo = Repo::new(&home, &[("agentfs.toml", toml)]);
    let _down = Down {
        home: &home,
        dir: repo.dir.clone(),
    };
    assert_ok(&home.run_in(&repo.dir, &["up", "-d"]), "up -d");
    let wait = home.run_in(&repo.dir, &["wait", "--timeout", "1"]);
    assert_eq!(wait.status.code(), Some(2), "{wait:?}");
    let said = String::from_utf8_lossy(&wait.stderr);
    assert!(said.contains("not ready within 1s"), "{said}");
    assert!(
        said.contains("quiet is starting: not ready: not listening yet"),
        "{said}"
    );
    let not_up = home.run(&["wait", "--instance", "elsewhere"]);
    assert_eq!(not_up.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_up.stderr).contains("is not up"));
}
