//! Servers that bind in one process and listen in another they start
//! afresh (a new exec, not a fork): the socket is announced at bind, marked
//! listening by the first listen in any process, and every process holding
//! it sees the TCP address the app asked for.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use agentfs_contract::sidecar::{self, Sidecar};
use common::fixtures::{fixtures_dir, Fixture};
use common::{get_json, http_get, http_get_raw, wait_for, TestHome, Wrapped};

/// Waits for the sidecar of `app`/`id` that says its socket does not listen yet.
fn wait_bound_sidecar(home: &TestHome, app: &str, id: &str) -> Sidecar {
    wait_for(&format!("the bound sidecar of {app}/{id}"), || {
        let entries = std::fs::read_dir(home.run_dir()).ok()?;
        entries
            .flatten()
            .filter_map(|e| sidecar::read_checked(&e.path(), &home.run_dir()).ok())
            .find(|car| car.app == app && car.instance == id && !car.listening)
    })
}

/// Checks what a child that listens on a socket its parent bound answers.
fn check_child_answer(car: &Sidecar, answer: &serde_json::Value, port: u16) {
    assert_eq!(
        answer["ppid"], car.pid,
        "the sidecar names the binding parent"
    );
    assert_ne!(answer["pid"], car.pid, "a child serves");
    assert_eq!(answer["family"], "inet", "{answer}");
    assert_eq!(answer["sockname"], serde_json::json!(["127.0.0.1", port]));
    assert_eq!(answer["peername"][0], "127.0.0.1", "{answer}");
}

#[test]
fn a_socket_bound_in_a_parent_listens_in_an_execd_child() {
    let home = TestHome::new();
    let hold = home.dir.join("go");
    let app = home.wrap(
        "spawn",
        "a",
        &Fixture::PythonSpawnListener.command(&["7100", "--hold", hold.to_str().unwrap()]),
    );
    let bound = wait_bound_sidecar(&home, "spawn", "a");
    assert_eq!((bound.address.as_str(), bound.port), ("127.0.0.1", 7100));
    assert!(
        home.sidecars().is_empty(),
        "nothing listens until the child does"
    );
    std::fs::write(&hold, b"").unwrap();
    let car = home.wait_sidecar("spawn", "a", Some(7100));
    assert_eq!(car.socket, bound.socket);
    assert_eq!(
        car.pid, bound.pid,
        "the child keeps the parent as the owner"
    );
    check_child_answer(&car, &get_json(&car.socket, "/"), 7100);
    app.wait_stdout("listening on 127.0.0.1 7100");
}

#[test]
fn a_socket_received_over_scm_rights_answers_as_tcp() {
    let home = TestHome::new();
    let app = home.wrap(
        "scm",
        "a",
        &Fixture::PythonSpawnListener.command(&["7101", "--pass", "scm"]),
    );
    let car = home.wait_sidecar("scm", "a", Some(7101));
    check_child_answer(&car, &get_json(&car.socket, "/"), 7101);
    app.wait_stdout("listening on 127.0.0.1 7101");
}

/// A copy of the ASGI fixture in its own directory, for a reloader to watch.
fn asgi_app_copy(home: &TestHome) -> PathBuf {
    let dir = home.dir.join("asgi");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixtures_dir().join("python/asgi_app.py"),
        dir.join("asgi_app.py"),
    )
    .unwrap();
    dir
}

fn uvicorn(home: &TestHome, app: &str, dir: &Path, args: &[&str]) -> Wrapped {
    let mut command: Vec<String> = ["python3", "-m", "uvicorn", "asgi_app:app", "--app-dir"]
        .map(String::from)
        .to_vec();
    command.push(dir.to_string_lossy().into_owned());
    command.extend(args.iter().map(|a| a.to_string()));
    home.wrap(app, "a", &command)
}

/// The JSON answer of the ASGI app, or `None` while it cannot answer (a
/// reloader between two workers).
fn try_get_json(socket: &Path) -> Option<serde_json::Value> {
    match http_get(socket, "/") {
        Ok((200, body)) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}

#[test]
fn uvicorn_reload_serves_from_its_worker_and_again_after_an_edit() {
    let home = TestHome::new();
    let dir = asgi_app_copy(&home);
    let reload_dir = dir.to_string_lossy().into_owned();
    // uvicorn's polling reloader (StatReload, when watchfiles is not
    // installed) records the files' times on its first look, one reload
    // delay after it starts the worker: an edit made before that look is
    // never seen. A worker cannot start and answer within 10 ms, so with
    // that delay the edit below always comes after the first look.
    let _app = uvicorn(
        &home,
        "uvr",
        &dir,
        &[
            "--port",
            "8003",
            "--reload",
            "--reload-dir",
            &reload_dir,
            "--reload-delay",
            "0.01",
        ],
    );
    let car = home.wait_sidecar("uvr", "a", Some(8003));
    let first = get_json(&car.socket, "/");
    assert_eq!(first["version"], "one");
    assert_eq!(first["server"], serde_json::json!(["127.0.0.1", 8003]));
    assert_eq!(first["client"][0], "127.0.0.1", "{first}");
    assert_ne!(
        first["pid"], car.pid,
        "the reloader binds, its worker serves"
    );

    let source = dir.join("asgi_app.py");
    let edited = std::fs::read_to_string(&source)
        .unwrap()
        .replace("VERSION = \"one\"", "VERSION = \"two\"");
    std::fs::write(&source, edited).unwrap();
    let second = wait_for("the reloaded worker's answer", || {
        try_get_json(&car.socket).filter(|answer| answer["version"] == "two")
    });
    assert_ne!(second["pid"], first["pid"], "a new worker");
    assert_eq!(second["server"], serde_json::json!(["127.0.0.1", 8003]));
    let after = home.wait_sidecar("uvr", "a", Some(8003));
    assert_eq!((after.socket, after.pid), (car.socket, car.pid));
}

/// The `x-pid` header of an answer.
fn answering_pid(socket: &Path) -> Option<u32> {
    let response = http_get_raw(socket, "/").ok()?;
    response
        .lines()
        .find_map(|line| line.strip_prefix("x-pid: "))
        .and_then(|pid| pid.trim().parse().ok())
}

#[test]
fn uvicorn_with_two_workers_answers_from_both() {
    let home = TestHome::new();
    let dir = fixtures_dir().join("python");
    let _app = uvicorn(&home, "uvw", &dir, &["--port", "8005", "--workers", "2"]);
    let car = home.wait_sidecar("uvw", "a", Some(8005));
    let mut pids = BTreeSet::new();
    wait_for("answers from two workers", || {
        pids.extend(answering_pid(&car.socket));
        (pids.len() >= 2).then_some(())
    });
    assert!(!pids.contains(&car.pid), "workers answer, not the parent");
    let answer = get_json(&car.socket, "/");
    assert_eq!(answer["server"], serde_json::json!(["127.0.0.1", 8005]));
}

#[test]
fn hypercorn_says_it_runs_on_the_address_it_was_given() {
    let home = TestHome::new();
    let app_path = fixtures_dir().join("python/asgi_app:app");
    let app = home.wrap(
        "hyp",
        "a",
        &[
            "python3".into(),
            "-m".into(),
            "hypercorn".into(),
            app_path.to_string_lossy().into_owned(),
            "--bind".into(),
            "127.0.0.1:8004".into(),
        ],
    );
    let running = wait_for("hypercorn's Running on line", || {
        app.stdout()
            .into_iter()
            .chain(app.stderr())
            .find(|line| line.contains("Running on"))
    });
    assert!(
        running.contains("http://127.0.0.1:8004"),
        "hypercorn printed: {running}"
    );
    let car = home.wait_sidecar("hyp", "a", Some(8004));
    let answer = get_json(&car.socket, "/");
    assert_eq!(answer["server"], serde_json::json!(["127.0.0.1", 8004]));
    assert_eq!(answer["client"][0], "127.0.0.1", "{answer}");
}
