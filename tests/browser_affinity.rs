//! In a real browser (Debian's headless Chromium), through the shared name
//! `APP.localhost` with two instances of each app: a Vite page's HMR
//! WebSocket reaches the instance that served the page (and an edit there
//! hot-updates it), and a socket.io client gets from long-polling to a
//! WebSocket on one instance. Before session affinity, each request was
//! balanced on its own and every load broke.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{get_json, wait_for, TestHome, Wrapped};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A copy of the Vite fixture project for one instance.
fn vite_project(home: &TestHome, instance: &str) -> PathBuf {
    let dir = home.dir.join(format!("vite-{instance}"));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["index.html", "main.js"] {
        std::fs::copy(repo("fixtures/vite").join(file), dir.join(file)).unwrap();
    }
    dir
}

fn wrap_in(
    home: &TestHome,
    dir: &Path,
    app: &str,
    instance: &str,
    env: (&str, String),
    cmd: &[String],
) -> Wrapped {
    let mut command = home.agentfs(&[
        "wrap",
        "--no-router",
        "--name",
        app,
        "--instance",
        instance,
        "--",
    ]);
    command.args(cmd).current_dir(dir).env(env.0, env.1);
    Wrapped::spawn(command)
}

/// How many instances of `app` the router routes.
fn routed(home: &TestHome, app: &str) -> usize {
    let routes = get_json(&home.control(), "/api/routes");
    routes["data"]["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["app"] == app)
        .and_then(|a| a["instances"].as_array())
        .map_or(0, Vec::len)
}

#[test]
fn a_browser_session_through_the_shared_name_stays_on_one_instance() {
    let home = TestHome::new();
    let router = Wrapped::spawn(home.agentfs(&["router", "--foreground", "--port", "0"]));
    router.wait_stderr("router listening");
    let port = get_json(&home.control(), "/health")["data"]["port"]
        .as_u64()
        .unwrap();
    let node_modules = repo("tests/node/node_modules");
    let vite_bin = node_modules.join("vite/bin/vite.js").display().to_string();
    let sio_server = repo("fixtures/socketio/server.js").display().to_string();

    let mut apps = Vec::new();
    let mut dirs = Vec::new();
    for instance in ["a", "b"] {
        let dir = vite_project(&home, instance);
        let vite = [
            "node",
            &vite_bin,
            "--port",
            "5173",
            "--strictPort",
            "--host",
            "127.0.0.1",
        ];
        let vite = vite.map(String::from);
        apps.push(wrap_in(
            &home,
            &dir,
            "vite-demo",
            instance,
            ("VITE_INSTANCE", instance.into()),
            &vite,
        ));
        let sio = ["node", &sio_server, "3000"].map(String::from);
        let path = node_modules.display().to_string();
        apps.push(wrap_in(
            &home,
            &home.dir,
            "sio",
            instance,
            ("NODE_PATH", path),
            &sio,
        ));
        dirs.push(format!("{instance}={}", dir.display()));
    }
    wait_for("two instances of each app to be routed", || {
        (routed(&home, "vite-demo") == 2 && routed(&home, "sio") == 2).then_some(())
    });

    let out = Command::new("node")
        .current_dir(repo("tests/node"))
        .arg("affinity_browser.js")
        .args([&port.to_string(), "4", "vite-demo", "sio", &dirs.join(",")])
        .output()
        .expect("node runs the browser driver");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    for load in results["vite"].as_array().unwrap() {
        assert_eq!(load["connected"], true, "HMR did not connect: {load}");
        assert!(load["instance"].is_string(), "{load}");
        assert_eq!(load["errors"], serde_json::json!([]), "{load}");
    }
    let last = results["vite"].as_array().unwrap().last().unwrap();
    assert_eq!(last["updated"], true, "no hot update: {last}");
    for load in results["socketio"].as_array().unwrap() {
        assert_eq!(load["state"], "connected", "{load}");
        assert_eq!(load["transport"], "websocket", "{load}");
        assert_eq!(load["errors"], serde_json::json!([]), "{load}");
        let instances = load["instances"].as_array().unwrap();
        assert!(
            instances.len() >= 2 && instances.iter().all(|i| *i == instances[0]),
            "{load}"
        );
    }
    drop(apps);
}
