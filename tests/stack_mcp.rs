//! `agentfs mcp` driven by a real MCP client, the `mcp` package from PyPI
//! (`fixtures/python/mcp_stack_client.py`), over stdio: it initialises,
//! lists the tools, brings a two-service stack of a temporary git work tree
//! up, waits for it, asks for a URL and logs, the status, a restart of a
//! service that does not exist (an error result), and takes it down. Each
//! tool's result is the JSON of the command of the same name.

mod common;

use std::process::Command;

use common::bridge::free_port;
use common::stack::{Down, Repo};
use common::TestHome;

#[test]
fn an_mcp_client_brings_a_stack_up_and_down() {
    let home = TestHome::new();
    let router = home.start_router();
    let (web, api) = (free_port(), free_port());
    let toml = format!(
        r#"
[services.api]
run = "echo api starting; exec python3 -m http.server {api} --bind 127.0.0.1"

[services.web]
run = "echo web starting; exec python3 -m http.server {web} --bind 127.0.0.1"
after = ["api"]
ready = "http://localhost:{web}/"
"#
    );
    let repo = Repo::new(&home, &[("agentfs.toml", &toml)]);
    let worktree = repo.worktree("feat-mcp");
    let _down = Down {
        home: &home,
        dir: worktree.clone(),
    };
    let script = format!(
        "{}/fixtures/python/mcp_stack_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("python3")
        .args([&script, common::agentfs_bin(), worktree.to_str().unwrap()])
        .env("AGENTFS_HOME", &home.dir)
        .env_remove("AGENTFS_INSTANCE")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the MCP client (pip install mcp) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(steps["server"], "agentfs");
    assert_eq!(
        steps["tools"],
        serde_json::json!(["down", "logs", "restart", "status", "stop", "up", "url", "wait"])
    );
    let up = &steps["up"];
    assert_eq!(up["is_error"], false, "{up}");
    assert_eq!(up["data"]["instance"], "feat-mcp");
    assert_eq!(up["data"]["started"], serde_json::json!(["api", "web"]));
    let states: Vec<&str> = up["data"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["ready", "ready"]);
    assert_eq!(
        steps["up_again"]["data"]["already"],
        serde_json::json!(["api", "web"])
    );
    assert_eq!(steps["wait"]["is_error"], false, "{}", steps["wait"]);
    assert_eq!(
        steps["url"]["data"]["url"],
        format!("http://feat-mcp.web.localhost:{}", router.port)
    );
    let lines = &steps["logs"]["data"]["services"][0]["lines"];
    assert!(
        lines.as_array().unwrap().contains(&"web starting".into()),
        "{lines}"
    );
    let status = &steps["status"]["data"];
    assert_eq!(status["stacks"][0]["instance"], "feat-mcp");
    assert_eq!(status["instances"].as_array().unwrap().len(), 2, "{status}");
    let unknown = &steps["restart_unknown"];
    assert_eq!(unknown["is_error"], true);
    assert!(
        unknown["data"]["error"]
            .as_str()
            .unwrap()
            .contains("there is no service \"nope\""),
        "{unknown}"
    );
    assert_eq!(
        steps["down"]["data"]["stopped"],
        serde_json::json!(["web", "api"])
    );
    assert_eq!(
        steps["status_after"]["data"]["stacks"],
        serde_json::json!([])
    );
    assert_eq!(
        steps["status_after"]["data"]["instances"],
        serde_json::json!([])
    );
}
