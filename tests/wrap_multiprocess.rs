//! Servers of several processes: Node cluster, a prefork server whose workers
//! come and go, and two copies of one app on the same port at once.

mod common;

use std::collections::HashSet;

use common::fixtures::Fixture;
use common::{get_json, http_get, process_alive, wait_for, TestHome};

#[test]
fn node_cluster_workers_answer_through_the_primary_socket() {
    let home = TestHome::new();
    let app = home.wrap(
        "cluster",
        "a",
        &Fixture::NodeCluster.command(&["3000", "2"]),
    );
    app.wait_stdout("cluster of 2 listening");
    let car = home.wait_sidecar("cluster", "a", Some(3000));
    let mut workers = HashSet::new();
    for _ in 0..8 {
        let answer = get_json(&car.socket, "/");
        assert_eq!(answer["address"]["port"], 3000);
        assert_eq!(
            answer["remoteAddress"], "::1",
            "a worker learns the listener's family from the sidecar"
        );
        workers.insert(answer["pid"].as_u64().unwrap());
    }
    assert_eq!(
        workers.len(),
        2,
        "round-robin reaches both workers: {workers:?}"
    );
    assert!(
        !workers.contains(&u64::from(car.pid)),
        "the primary owns the socket, workers answer"
    );
}

#[test]
fn prefork_workers_exiting_never_remove_the_parents_socket() {
    let home = TestHome::new();
    let app = home.wrap(
        "prefork",
        "a",
        &Fixture::PythonProbe.command(&["--prefork", "3", "--port", "7000"]),
    );
    app.wait_stdout("workers");
    let car = home.wait_sidecar("prefork", "a", Some(7000));
    // One worker closes every inherited fd and exits, another exits plainly.
    for path in ["/closefds-exit", "/exit"] {
        let (status, _) = http_get(&car.socket, path).unwrap();
        assert_eq!(status, 200);
    }
    wait_for("two workers to exit", || {
        (app.stdout().iter().filter(|l| l.contains("exited")).count() == 2).then_some(())
    });
    assert!(car.socket.exists() && home.run_dir().join("prefork_a.json").exists());
    let answer = get_json(&car.socket, "/");
    assert_ne!(
        answer["pid"].as_u64().unwrap(),
        u64::from(car.pid),
        "the remaining worker answers"
    );
    assert!(process_alive(car.pid));
}

#[test]
fn two_copies_of_one_app_on_the_same_port_run_side_by_side() {
    let home = TestHome::new();
    let one = home.wrap("shop", "one", &Fixture::Node.command(&["3000"]));
    let two = home.wrap("shop", "two", &Fixture::Node.command(&["3000"]));
    let first = home.wait_sidecar("shop", "one", Some(3000));
    let second = home.wait_sidecar("shop", "two", Some(3000));
    assert_ne!(first.socket, second.socket);
    let a = get_json(&first.socket, "/");
    let b = get_json(&second.socket, "/");
    assert_eq!(a["pid"].as_u64().unwrap(), u64::from(first.pid));
    assert_eq!(b["pid"].as_u64().unwrap(), u64::from(second.pid));
    drop((one, two));
}

#[test]
fn a_second_listener_gets_a_port_named_socket() {
    let home = TestHome::new();
    let script = "import socket,time\n\
                  a=socket.socket(); a.bind(('127.0.0.1',3000)); a.listen()\n\
                  b=socket.socket(); b.bind(('127.0.0.1',3001)); b.listen()\n\
                  print('ready', flush=True); time.sleep(60)";
    let app = home.wrap(
        "multi",
        "a",
        &["python3".into(), "-c".into(), script.into()],
    );
    app.wait_stdout("ready");
    let primary = home.wait_sidecar("multi", "a", Some(3000));
    let second = home.wait_sidecar("multi", "a", Some(3001));
    assert!(primary.primary && !second.primary);
    assert_eq!(second.socket, home.run_dir().join("multi_a_3001.sock"));
}

#[test]
fn hooks_from_many_threads_while_forking_never_deadlock() {
    let home = TestHome::new();
    let app = home.wrap("threads", "a", &Fixture::CThreads.command(&["9100"]));
    assert_eq!(
        app.wait_stdout("ready"),
        "ready 8",
        "every listener reports the port it asked for"
    );
    for port in 9100..9108 {
        home.wait_sidecar("threads", "a", Some(port));
    }
}
