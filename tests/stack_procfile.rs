//! A Procfile is a stack file too: each `name: command` line a service,
//! ready when it listens. `up -d --wait` brings it up in the work tree's
//! instance (its branch), one service or all, `ps` shows the stack, `url` and `logs` take a bare
//! service name, `logs` without a name shows every service prefixed, and
//! `up` twice starts nothing the second time.

mod common;

use common::bridge::free_port;
use common::stack::{assert_ok, router_get, Down, Repo};
use common::TestHome;

#[test]
fn a_procfile_stack_comes_up_and_is_listed_and_logged_by_service() {
    let home = TestHome::new();
    let router = home.start_router();
    let (web, docs) = (free_port(), free_port());
    let procfile = format!(
        "# two static servers\nweb: exec python3 -m http.server {web} --bind 127.0.0.1\n\
         docs: echo docs here && exec python3 -m http.server {docs} --bind 127.0.0.1\n"
    );
    let repo = Repo::new(&home, &[("Procfile", &procfile), ("index.html", "hello\n")]);
    let _down = Down {
        home: &home,
        dir: repo.dir.clone(),
    };
    // One service first: waiting without names waits for what was started.
    let up = home.run_in(&repo.dir, &["up", "-d", "--wait", "web"]);
    assert_ok(&up, "up -d --wait web");
    assert!(String::from_utf8_lossy(&up.stderr).contains("starting web"));
    let wait = assert_ok(&home.run_in(&repo.dir, &["wait"]), "wait");
    assert!(wait.contains("docs     stopped"), "{wait}");
    let up = home.run_in(&repo.dir, &["up", "-d", "--wait"]);
    assert_ok(&up, "up -d --wait");
    let said = String::from_utf8_lossy(&up.stderr);
    assert!(
        said.contains("starting docs; already running: web"),
        "{said}"
    );

    let (status, body) = router_get(router.port, "main.web.localhost", "/index.html");
    assert_eq!((status, body.as_str()), (200, "hello\n"));

    let stacks = assert_ok(&home.run(&["ps", "--stacks", "--json"]), "ps --stacks");
    let stacks: serde_json::Value = serde_json::from_str(&stacks).unwrap();
    assert_eq!(stacks[0]["instance"], "main");
    let states: Vec<(&str, &str)> = stacks[0]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("web", "ready"), ("docs", "ready")]);
    let table = assert_ok(&home.run(&["ps"]), "ps");
    assert!(table.starts_with("stack main ("), "{table}");

    let url = assert_ok(&home.run_in(&repo.dir, &["url", "web"]), "url web");
    assert_eq!(
        url.trim(),
        format!("http://main.web.localhost:{}", router.port)
    );
    let logs = assert_ok(&home.run_in(&repo.dir, &["logs"]), "logs");
    assert!(logs.lines().any(|l| l == "docs | docs here"), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.starts_with("web  | agentfs: web is ready")),
        "{logs}"
    );
    let one = assert_ok(
        &home.run_in(&repo.dir, &["logs", "--json", "docs"]),
        "logs docs",
    );
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert!(one["services"][0]["lines"]
        .as_array()
        .unwrap()
        .contains(&"docs here".into()));

    // `--since`: only what was written after a time. Once the supervisor
    // has noted the log as it stands, nothing is newer than now...
    let since_now = || humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let since = |from: &str| {
        let out = home.run_in(&repo.dir, &["logs", "web", "--since", from]);
        assert_ok(&out, "logs --since")
    };
    let from = common::wait_for("the web log's growth to be noted", || {
        let from = since_now();
        since(&from).is_empty().then_some(from)
    });
    // ...and a request made after it is all that shows.
    let (status, _) = router_get(router.port, "main.web.localhost", "/index.html?after");
    assert_eq!(status, 200);
    let shown = common::wait_for("the request in the web log", || {
        let shown = since(&from);
        shown.contains("GET /index.html?after").then_some(shown)
    });
    assert!(!shown.contains("web is ready"), "{shown}");

    let again = home.run_in(&repo.dir, &["up", "-d"]);
    assert_ok(&again, "up again");
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("nothing to start; already running: web, docs"),
        "{said}"
    );
}
