//! `agentfs bridge`: the real binary in front of real TCP servers, checked
//! through its Unix socket and through an in-process router.

mod common;
use common::{bridge as bridge_common, router as router_common};

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, Instant};

use bridge_common::*;

fn bridge(home: &Home, port: u16, name: &str, instance: &str, cmd: &[&str]) -> Running {
    let port = port.to_string();
    let mut args = vec![
        "bridge",
        "--port",
        &port,
        "--name",
        name,
        "--instance",
        instance,
    ];
    if !cmd.is_empty() {
        args.push("--");
        args.extend_from_slice(cmd);
    }
    Running::spawn(home.agentfs(&args))
}

#[test]
fn fronts_a_running_server_with_half_close_and_cleans_up() {
    let home = Home::new();
    let port = echo_until_eof_server();
    let running = bridge(&home, port, "web", "one", &[]);
    let car = home.wait_sidecar_json("web", "one", None);
    assert_eq!(car["kind"], "bridge");
    assert_eq!(car["target"], format!("127.0.0.1:{port}"));
    assert_eq!(car["port"], port);
    assert_eq!(car["primary"], true);
    assert_eq!(car["hostname"], "one.web.localhost");
    assert_eq!(car["pid"], running.0.id());
    let socket = home.socket("web", "one", None);
    assert_eq!(car["socket"], socket.to_str().unwrap());
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // The backend answers only after our half-close reaches it.
    assert_eq!(exchange(&socket, b"hello").unwrap(), b"echo:hello");
    // 8 MiB each way: more than any socket buffer, so backpressure must work.
    let big: Vec<u8> = (0..8u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    let answer = exchange(&socket, &big).unwrap();
    assert_eq!(answer.len(), big.len() + 5);
    assert!(answer[5..] == big[..], "payload corrupted");

    running.signal("TERM");
    let (code, stderr) = running.wait();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(all_files(&home.run_dir()), Vec::<String>::new());
}

#[test]
fn many_open_connections_need_no_thread_each() {
    let home = Home::new();
    let (port, accepted) = counting_echo_server();
    let running = bridge(&home, port, "many", "x", &[]);
    home.wait_sidecar_json("many", "x", None);
    let socket = home.socket("many", "x", None);
    let before = thread_count(running.0.id());
    // 48 connections held open at once: the backend answers none of them
    // until they half-close, so all are in flight together.
    let mut open: Vec<_> = (0..48)
        .map(|i| {
            let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
            std::io::Write::write_all(&mut s, format!("n{i}").as_bytes()).unwrap();
            s
        })
        .collect();
    wait_for("all connections to reach the backend", || {
        (accepted.load(std::sync::atomic::Ordering::SeqCst) == 48).then_some(())
    });
    assert_eq!(
        thread_count(running.0.id()),
        before,
        "a thread per connection?"
    );
    for (i, stream) in open.iter_mut().enumerate() {
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(stream, &mut answer).unwrap();
        assert_eq!(answer, format!("echo:n{i}"));
    }
}

#[test]
fn target_down_closes_the_connection_at_once() {
    let home = Home::new();
    let port = free_port();
    let _running = bridge(&home, port, "down", "x", &[]);
    home.wait_sidecar_json("down", "x", None);
    let started = Instant::now();
    let answer = exchange(&home.socket("down", "x", None), b"GET / HTTP/1.1\r\n\r\n");
    assert!(
        answer.map_or(true, |a| a.is_empty()),
        "nothing listens, nothing is answered"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn cmd_gets_port_and_its_exit_code_is_ours() {
    let home = Home::new();
    let port = free_port();
    let script = format!("test \"$PORT\" = {port} && exit 7");
    let (code, stderr) = bridge(&home, port, "code", "x", &["sh", "-c", &script]).wait();
    assert_eq!(code, Some(7), "{stderr}");
    assert_eq!(all_files(&home.run_dir()), Vec::<String>::new());
}

#[test]
fn cmd_server_is_reachable_and_signals_reach_it() {
    let home = Home::new();
    let server = build_c_server(&home.dir, false);
    let port = free_port();
    let running = bridge(&home, port, "csrv", "a", &[server.to_str().unwrap()]);
    home.wait_sidecar_json("csrv", "a", None);
    assert_c_server_on(&home.socket("csrv", "a", None), port);
    assert_stops_clean_on_term(&home, running);
}

#[test]
fn live_owner_is_refused_and_stale_files_are_replaced() {
    let home = Home::new();
    let port = echo_until_eof_server();
    let first = bridge(&home, port, "dup", "x", &[]);
    home.wait_sidecar_json("dup", "x", None);
    let (code, stderr) = bridge(&home, port, "dup", "x", &[]).wait();
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("already served by a live process"),
        "{stderr}"
    );

    first.signal("KILL");
    first.wait();
    // SIGKILL left the socket, sidecar and lock behind, unlocked.
    assert_eq!(
        all_files(&home.run_dir()),
        ["dup_x.json", "dup_x.lock", "dup_x.sock"]
    );
    let second = bridge(&home, port, "dup", "x", &[]);
    let car = wait_for("the new bridge's sidecar", || {
        let car = home.wait_sidecar_json("dup", "x", None);
        (car["pid"] == second.0.id()).then_some(car)
    });
    assert_eq!(car["kind"], "bridge");
    assert_eq!(
        exchange(&home.socket("dup", "x", None), b"again").unwrap(),
        b"echo:again"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let home = Home::new();
    let out = home.run(&["bridge", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = home.run(&["bridge", "--port", "80", "--host", "no such host!"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not resolve"));
    let out = home.run(&["bridge", "--port", "80", "--name", "!!!"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn reachable_through_the_router_and_down_page_when_not_listening() {
    let home = Home::new();
    let router = router_common::TestRouter::start(&home);

    let server = build_c_server(&home.dir, true);
    let port = free_port();
    let _server = Running::spawn({
        let mut cmd = std::process::Command::new(&server);
        cmd.arg(port.to_string());
        cmd
    });
    let _up = bridge(&home, port, "capp", "up", &[]);
    let _down = bridge(&home, free_port(), "dapp", "down", &[]);
    router.wait_instances("capp", 1);
    router.wait_instances("dapp", 1);

    let deadline = Instant::now() + DEADLINE;
    let answer = loop {
        let answer = router_common::get(router.port, "up.capp.localhost", "/");
        if answer.status == 200 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), format!("hello from C on {port}"));

    let down = router_common::get(router.port, "down.dapp.localhost", "/");
    assert!((500..600).contains(&down.status), "{}", down.status);
    assert!(
        down.text().to_lowercase().contains("not listening"),
        "{}",
        down.text()
    );
    router.stop();
}
