//! Files of another user in the run directory are never trusted: a lock file
//! another user swapped in does not make a live instance stale, so its
//! socket is never removed and its name never taken; and a run directory
//! loosened after start is refused as a whole.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::other_user::OtherUser;
use common::{get_json, process_alive, wait_for, TestHome, Wrapped};

fn set_mode(path: &std::path::Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `agentfs wrap --instance blue` of a python server asking for `port`.
fn blue(home: &TestHome, port: &str) -> Wrapped {
    home.wrap(
        "shop",
        "blue",
        &["python3", "-m", "http.server", port, "--bind", "127.0.0.1"].map(String::from),
    )
}

#[test]
fn a_lock_file_another_user_swapped_in_is_never_trusted() {
    let Some(other) = OtherUser::create_or_skip("a_lock_file_another_user_swapped_in") else {
        return;
    };
    let home = TestHome::new();
    let router = Wrapped::spawn(home.agentfs(&["router", "--foreground", "--port", "0"]));
    let first = blue(&home, "8201");
    let car = home.wait_sidecar("shop", "blue", Some(8201));
    wait_for("the router to route shop/blue", || {
        let routes = get_json(&home.control(), "/api/routes").to_string();
        routes.contains("blue").then_some(())
    });

    // Loosened by mistake; the other user swaps in a lock file of their own.
    set_mode(&home.dir, 0o755);
    set_mode(&home.run_dir(), 0o777);
    let lock = agentfs_contract::naming::lock_path(&car.socket);
    let swapped = Command::new("runuser")
        .args([
            "-u",
            &other.name,
            "--",
            "sh",
            "-c",
            "rm -f \"$0\" && : > \"$0\"",
        ])
        .arg(&lock)
        .status()
        .unwrap();
    assert!(swapped.success());
    router.wait_stderr("the run directory is refused");
    // Refused, not read: a second copy cannot start there either.
    let mut second = blue(&home, "8201");
    assert!(!second.wait_exit().success());

    // Private again: the swapped lock is refused, not taken as stale.
    set_mode(&home.run_dir(), 0o700);
    router.wait_stderr("lock file that belongs to uid");
    assert!(car.socket.exists() && process_alive(car.pid));
    let mut third = blue(&home, "8201");
    assert!(!third.wait_exit().success(), "{:?}", third.stderr());
    assert!(car.socket.exists() && process_alive(car.pid));
    drop(first);
}
