//! A bridged app (`wrap --no-netns`; in the namespace lane the two copies
//! simply work, tests/netns.rs) that ignores PORT and shares its port with
//! another copy (real Caddy, which sets SO_REUSEPORT): agentfs never routes
//! a name there, says why, and never answers for one instance with
//! another's files.

mod common;

use common::bridge::free_port;
use common::{http_get, TestHome};

/// A directory whose index page names its instance.
fn site(home: &TestHome, instance: &str) -> String {
    let dir = home.dir.join(format!("site-{instance}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), format!("files of {instance}\n")).unwrap();
    dir.display().to_string()
}

#[test]
fn two_caddies_on_one_port_never_answer_for_each_other() {
    let home = TestHome::new();
    let port = free_port().to_string();
    let caddy = |instance: &str| {
        let root = site(&home, instance);
        let listen = format!(":{port}");
        let mut command = home.agentfs(&["wrap", "--no-router", "--no-netns", "--name", "caddy"]);
        command.args(["--instance", instance, "--"]).args([
            "caddy",
            "file-server",
            "--listen",
            &listen,
            "--root",
            &root,
        ]);
        common::Wrapped::spawn(command)
    };
    let a = caddy("a");
    a.wait_stderr("caddy/a ignores PORT=");
    let b = caddy("b");
    // Each names the other: the first copy was routed until the second came.
    a.wait_stderr(&format!(
        "caddy/a is no longer routed: port {port} is now shared with caddy/b"
    ));
    b.wait_stderr(&format!(
        "caddy/b listens on port {port}, and so does caddy/a"
    ));
    for wrap in [&a, &b] {
        wrap.wait_stderr("Make the app listen on $PORT");
    }
    // Neither name is routed, and neither bridge forwards to the shared port.
    for car in home.sidecars() {
        assert!(!car.listening, "{car:?}");
    }
    // The router's 404 for either name says why.
    let router = home.start_router();
    for (instance, other) in [("a", "b"), ("b", "a")] {
        let host = format!("{instance}.caddy.localhost");
        let why = format!("caddy/{instance}: port {port} is shared with caddy/{other}");
        common::wait_for(&format!("the 404 for {host} to say why"), || {
            let answer = common::router::get(router.port, &host, "/");
            (answer.status == 404 && answer.text().contains(&why)).then_some(())
        });
    }
    for (instance, other) in [("a", "b"), ("b", "a")] {
        let socket = home.socket("caddy", instance, None);
        for _ in 0..20 {
            if let Ok((_, body)) = http_get(&socket, "/") {
                assert!(
                    !body.contains(&format!("files of {other}")),
                    "{instance} answered with {other}'s files"
                );
            }
        }
    }
}
