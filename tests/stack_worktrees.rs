//! A whole stack in one command, once per work tree: two work trees of one
//! repository (branches feat-x and feat-y) with the same agentfs.toml — a
//! Node web calling a Python API that counts in a real redis-server, each
//! on the same ports in both — are each brought up with `agentfs up -d
//! --wait`. Both webs answer through the router with their own instance's
//! data; `agentfs down` in one leaves the other answering and no process of
//! the first alive.

mod common;

use common::bridge::free_port;
use common::stack::runs;
use common::stack::{assert_ok, processes_of, router_get, Down, Repo};
use common::{wait_for, TestHome};

fn fixture(name: &str) -> String {
    format!("{}/fixtures/stack/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn stack_file(web: u16, api: u16, redis: u16) -> String {
    format!(
        r#"
[services.redis]
run = "exec redis-server --port {redis} --save '' --appendonly no"

[services.api]
run = "exec python3 {api_py} {api} {redis}"
after = ["redis"]

[services.web]
run = "exec node {web_js} {web} {api}"
after = ["api"]
ready = "port {web}"
"#,
        api_py = fixture("api.py"),
        web_js = fixture("web.js"),
    )
}

#[test]
fn each_work_tree_runs_its_own_stack_and_down_leaves_the_other() {
    let home = TestHome::new();
    let router = home.start_router();
    let toml = stack_file(free_port(), free_port(), free_port());
    let repo = Repo::new(&home, &[("agentfs.toml", &toml)]);
    let (x, y) = (repo.worktree("feat-x"), repo.worktree("feat-y"));
    let _down_y = Down {
        home: &home,
        dir: y.clone(),
    };
    let _down_x = Down {
        home: &home,
        dir: x.clone(),
    };
    for dir in [&x, &y] {
        let out = home.run_in(dir, &["up", "-d", "--wait"]);
        let table = assert_ok(&out, "up -d --wait");
        assert_eq!(table.matches(" ready ").count(), 3, "{table}");
    }

    let count = |instance: &str| -> serde_json::Value {
        let host = format!("{instance}.web.localhost");
        let (status, body) = router_get(router.port, &host, "/count");
        assert_eq!(status, 200, "{instance}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let visits = |instance: &str| count(instance)["api"]["visits"].as_u64().unwrap();
    let x1 = visits("feat-x");
    assert_eq!(visits("feat-x"), x1 + 1);
    let y1 = visits("feat-y");
    assert_eq!(
        visits("feat-x"),
        x1 + 2,
        "feat-y's requests never count in feat-x"
    );
    assert_eq!(visits("feat-y"), y1 + 1);
    // Each web reached its own instance's API process.
    let api_pid = |instance: &str| {
        let name = format!("{instance}.api");
        let listed = assert_ok(&home.run(&["ps", "--json"]), "ps --json");
        let entries: serde_json::Value = serde_json::from_str(&listed).unwrap();
        let entry = entries
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                format!(
                    "{}.{}",
                    e["instance"].as_str().unwrap(),
                    e["app"].as_str().unwrap()
                ) == name
            })
            .unwrap()
            .clone();
        assert_eq!(entry["stack"], instance, "{entry}");
        entry["pid"].clone()
    };
    assert_eq!(count("feat-x")["api"]["api"], api_pid("feat-x"));
    assert_eq!(count("feat-y")["api"]["api"], api_pid("feat-y"));

    // Everything of feat-x that runs: its supervisor, its wraps, its apps.
    let state = home.stack_state("feat-x").unwrap();
    let mut pids: Vec<u32> = vec![state["supervisor"].as_u64().unwrap() as u32];
    pids.extend(
        state["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["pid"].as_u64().unwrap() as u32),
    );
    // The apps: each listener's owner, and whatever else carries the
    // instance in its environment (redis rewrites its own).
    let listed = assert_ok(&home.run(&["ps", "--json"]), "ps --json");
    let entries: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let owners: Vec<u32> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["instance"] == "feat-x")
        .map(|e| e["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(owners.len(), 3, "redis, api and web of feat-x: {entries}");
    pids.extend(owners);
    pids.extend(processes_of(&home.dir, "feat-x"));

    let out = home.run_in(&x, &["down"]);
    let said = assert_ok(&out, "down");
    assert!(said.contains("web, api, redis"), "reverse order: {said}");
    for pid in pids {
        wait_for(&format!("pid {pid} of feat-x to be gone"), || {
            (!runs(pid)).then_some(())
        });
    }
    assert_eq!(processes_of(&home.dir, "feat-x"), Vec::<u32>::new());
    assert!(home.stack_state("feat-x").is_none(), "its state is gone");
    let (status, _) = router_get(router.port, "feat-x.web.localhost", "/count");
    assert_eq!(status, 404);
    // feat-y answers on, with its own count.
    assert_eq!(
        visits("feat-y"),
        y1 + 3,
        "one more than the pid check above"
    );
    // Down twice is not an error.
    let again = assert_ok(&home.run_in(&x, &["down"]), "down again");
    assert!(again.contains("was not up"), "{again}");
}
