//! An entry is stale only when its lock is free *and* its socket refuses a
//! connection: a socket that accepts is never removed, whatever became of
//! its lock. A listener handed across `exec` (systemd socket activation, a
//! server that re-executes itself) keeps its route and its TCP address in
//! the new program, which takes the lock again; a lock file removed or
//! replaced by another user's loses nothing; and nobody removes a file of
//! another owner.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::clients::python;
use common::fixtures::fixtures_dir;
use common::other_user::OtherUser;
use common::{get_json, http_get, wait_for, TestHome, Wrapped};

/// Runs `agentfs ps --prune` (the same judgement the router and wrap make)
/// and checks that the socket of `app`/`id` and its sidecar are still there
/// and serve.
fn survives_pruning(home: &TestHome, app: &str, id: &str, port: u16) -> serde_json::Value {
    let pruned = home.run(&["ps", "--prune"]);
    assert!(pruned.status.success(), "{pruned:?}");
    let socket = home.socket(app, id, None);
    let sidecar = agentfs_contract::naming::sidecar_path(&socket);
    assert!(
        socket.exists() && sidecar.exists(),
        "a socket that accepts is never removed: {:?}",
        home.run_dir_files()
    );
    let answer = get_json(&socket, "/");
    assert_eq!(
        answer["sockname"],
        serde_json::json!(["127.0.0.1", port]),
        "the new program still sees the TCP address it listens on"
    );
    let ps = home.run(&["ps", "--json"]);
    let listing = String::from_utf8_lossy(&ps.stdout);
    assert!(listing.contains("\"live\""), "{listing}");
    answer
}

fn inherited(args: &[&str]) -> String {
    fixtures_dir()
        .join("python/inherited_listener.py")
        .to_string_lossy()
        .into_owned()
        + &args.iter().map(|a| format!(" {a}")).collect::<String>()
}

#[test]
fn a_socket_activated_server_keeps_its_route_after_the_exec() {
    let home = TestHome::new();
    let script = inherited(&["activated"]);
    let cmd: Vec<String> = [
        "systemd-socket-activate",
        "-l",
        "127.0.0.1:7310",
        "sh",
        "-c",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("exec python3 {script}")])
    .collect();
    let server = home.wrap("act", "a", &cmd);
    let car = home.wait_sidecar("act", "a", Some(7310));
    // systemd-socket-activate executes the server at the first connection.
    let (status, _) = http_get(&car.socket, "/").unwrap();
    assert_eq!(status, 200);
    server.wait_stdout("serving on 127.0.0.1 7310");
    let answer = survives_pruning(&home, "act", "a", 7310);
    assert_eq!(answer["pid"], car.pid, "the same process, after its exec");
}

#[test]
fn a_server_that_reexecutes_itself_keeps_its_route() {
    let home = TestHome::new();
    let cmd: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        format!("exec python3 {}", inherited(&["reexec", "7311"])),
    ];
    let server = home.wrap("reexec", "a", &cmd);
    server.wait_stdout("serving on 127.0.0.1 7311");
    home.wait_sidecar("reexec", "a", Some(7311));
    survives_pruning(&home, "reexec", "a", 7311);
}

fn lock_of(home: &TestHome, app: &str, id: &str) -> std::path::PathBuf {
    agentfs_contract::naming::lock_path(&home.socket(app, id, None))
}

#[test]
fn a_removed_lock_file_never_loses_a_live_socket() {
    let home = TestHome::new();
    let _server = home.wrap(
        "rmlock",
        "a",
        &python("inherited_listener.py", &["reexec", "7312"]),
    );
    home.wait_sidecar("rmlock", "a", Some(7312));
    let lock = lock_of(&home, "rmlock", "a");
    wait_for("the lock file", || lock.exists().then_some(()));
    std::fs::remove_file(&lock).unwrap();
    survives_pruning(&home, "rmlock", "a", 7312);
    // A new lock file made by the user's own clean-up changes nothing either.
    std::fs::write(&lock, b"").unwrap();
    survives_pruning(&home, "rmlock", "a", 7312);
}

#[test]
fn a_lock_file_of_another_user_is_neither_trusted_nor_removed() {
    let Some(other) =
        OtherUser::create_or_skip("a_lock_file_of_another_user_is_neither_trusted_nor_removed")
    else {
        return;
    };
    let home = TestHome::new();
    let mut server = Wrapped::spawn({
        let mut cmd = home.agentfs(&[
            "wrap",
            "--no-router",
            "--name",
            "foreign",
            "--instance",
            "a",
            "--",
        ]);
        cmd.args(python("ports.py", &["7313"]));
        cmd
    });
    let car = home.wait_sidecar("foreign", "a", Some(7313));
    let lock = lock_of(&home, "foreign", "a");
    std::fs::remove_file(&lock).unwrap();
    std::fs::write(&lock, b"theirs").unwrap();
    std::os::unix::fs::chown(&lock, Some(other.uid), Some(other.gid)).unwrap();
    let pruned = home.run(&["ps", "--prune"]);
    assert!(pruned.status.success(), "{pruned:?}");
    assert!(car.socket.exists(), "{:?}", home.run_dir_files());
    // Stopping the app, as Ctrl-C would: wrap cleans up what is ours only.
    server.signal(libc::SIGTERM);
    server.wait_exit();
    let meta = std::fs::symlink_metadata(&lock).expect("another user's file is never removed");
    assert_eq!(meta.uid(), other.uid);
    assert_eq!(std::fs::read(&lock).unwrap(), b"theirs");
    // Nor anything it guards: a name whose lock is someone else's is not
    // ours to free (its files stay until that file is gone).
    assert!(Path::new(&car.socket).exists());
}
