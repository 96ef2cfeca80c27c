//! The stack's supervisor is a process of its own: `up -d` returns while
//! it keeps the services running. When it is killed (SIGKILL) its services
//! run on unsupervised: `up` then refuses to start a second copy beside
//! them, saying how to stop them, and `down` stops them.

mod common;

use common::bridge::free_port;
use common::stack::{assert_ok, runs, Down, Repo};
use common::{send_signal, wait_for, TestHome};

#[test]
fn services_a_killed_supervisor_left_are_refused_by_up_and_stopped_by_down() {
    let home = TestHome::new();
    let _router = home.start_router();
    let toml = format!(
        "[services.web]\nrun = \"exec python3 -m http.server {} --bind 127.0.0.1\"\n",
        free_port()
    );
    let repo = Repo::new(&home, &[("agentfs.toml", &toml)]);
    let _down = Down {
        home: &home,
        dir: repo.dir.clone(),
    };
    assert_ok(&home.run_in(&repo.dir, &["up", "-d", "--wait"]), "up");
    let state = home.stack_state("main").unwrap();
    let supervisor = state["supervisor"].as_u64().unwrap() as u32;
    let web = home.wait_sidecar("web", "main", None).pid;
    send_signal(supervisor, libc::SIGKILL);
    wait_for("the supervisor to be gone", || {
        (!runs(supervisor)).then_some(())
    });
    assert!(runs(web), "its service runs on");

    let up = home.run_in(&repo.dir, &["up", "-d"]);
    assert_eq!(up.status.code(), Some(1), "{up:?}");
    let said = String::from_utf8_lossy(&up.stderr);
    assert!(
        said.contains("main.web already runs in instance main outside the stack's supervisor"),
        "{said}"
    );
    assert!(said.contains("`agentfs down` stops them"), "{said}");

    let down = assert_ok(&home.run_in(&repo.dir, &["down"]), "down");
    assert!(down.contains("stopped the stack of main: web"), "{down}");
    wait_for("web to be gone", || (!runs(web)).then_some(()));
    assert_ok(&home.run_in(&repo.dir, &["up", "-d", "--wait"]), "up again");
}
