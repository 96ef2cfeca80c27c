//! `agentfs stop` ends an instance as Ctrl-C on its wrap would (SIGTERM to
//! its process group, SIGKILL after the grace period, files removed) and
//! says what it stopped; `agentfs url` prints the instance's URL.

mod common;

use std::process::{Command, Output};

use common::fixtures::Fixture;
use common::{process_alive, TestHome};

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn stop_sends_term_to_the_apps_group_and_says_what_it_stopped() {
    let home = TestHome::new();
    let mut app = home.wrap("web", "a", &Fixture::Node.command(&["3000"]));
    let car = home.wait_sidecar("web", "a", Some(3000));
    // SAFETY: getpgid has no memory preconditions.
    let group = unsafe { libc::getpgid(car.pid as i32) };
    let said = stdout(&home.run(&["stop", "web"]));
    for part in [
        "stopped a.web",
        "server.js 3000",
        &format!("process group {group}"),
        "after SIGTERM",
    ] {
        assert!(said.contains(part), "{said}");
    }
    assert_eq!(home.run_dir_files(), Vec::<String>::new());
    assert_eq!(app.wait_exit().code(), Some(128 + libc::SIGTERM));
    assert!(!process_alive(car.pid), "ended, and reaped by wrap");
    let again = home.run(&["stop", "web"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no instance"));
}

/// Listens on 8000 and ignores SIGTERM.
const STUBBORN: &str = "\
import signal, socket
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket()
s.bind(('127.0.0.1', 8000))
s.listen()
signal.pause()
";

#[test]
fn stop_kills_what_ignores_term_and_removes_the_files_without_a_wrap() {
    let home = TestHome::new();
    let shim = home.installed_shim();
    // Preloaded directly: no wrap will clean up after it.
    let mut app = Command::new("python3")
        .args(["-c", STUBBORN])
        .env("LD_PRELOAD", &shim)
        .env("AGENTFS_APP", "held")
        .env("AGENTFS_INSTANCE", "a")
        .env("AGENTFS_RUN_DIR", home.run_dir())
        .spawn()
        .unwrap();
    home.wait_sidecar("held", "a", Some(8000));
    let said = stdout(&home.run(&["stop", "-t", "1", "held"]));
    // It shares the test's process group: only the process itself is signalled.
    assert!(said.contains(&format!("pid {}", app.id())), "{said}");
    assert!(
        said.contains("did not end within 1s of SIGTERM: killed"),
        "{said}"
    );
    let status = app.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert_eq!(home.run_dir_files(), Vec::<String>::new());
}

/// Listens on 8001, then forks a daemon (a session of its own) that keeps
/// the listener, prints its pid and waits; the first process exits at once.
const DAEMON: &str = "\
import os, signal, socket, sys
s = socket.socket()
s.bind(('127.0.0.1', 8001))
s.listen()
if os.fork():
    os._exit(0)
os.setsid()
print(os.getpid(), flush=True)
signal.pause()
";

#[test]
fn a_daemon_whose_first_process_exited_is_found_by_its_lock() {
    let home = TestHome::new();
    let shim = home.installed_shim();
    let mut started = Command::new("python3")
        .args(["-c", DAEMON])
        .env("LD_PRELOAD", &shim)
        .env("AGENTFS_APP", "daemon")
        .env("AGENTFS_INSTANCE", "a")
        .env("AGENTFS_RUN_DIR", home.run_dir())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // One line, not to the end: the daemon keeps the pipe open.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(started.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    started.wait().unwrap();
    let daemon: u32 = line.trim().parse().unwrap();
    let _reaper = KillOnDrop(daemon);
    let car = home.wait_sidecar("daemon", "a", Some(8001));
    assert_ne!(car.pid, daemon, "the sidecar names the process that exited");
    let said = stdout(&home.run(&["stop", "daemon"]));
    assert!(said.contains(&format!("process group {daemon}")), "{said}");
    assert_eq!(home.run_dir_files(), Vec::<String>::new());
    common::wait_for("the daemon to be gone", || {
        (!process_alive(daemon) || is_zombie(daemon)).then_some(())
    });
}

/// Kills a process the test cannot wait for, should the test end early.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        common::send_signal(self.0, libc::SIGKILL);
    }
}

/// Whether `pid` has ended and waits to be reaped (by whatever adopted it).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_bridged_instance_is_stopped_through_its_wrap_alone() {
    let home = TestHome::new();
    let mut wrapped = common::Wrapped::spawn(home.agentfs(&[
        "wrap",
        "--no-router",
        "--bridge",
        "--name",
        "br",
        "--instance",
        "a",
        "--",
        "sh",
        "-c",
        "exec python3 -m http.server --bind 127.0.0.1 \"$PORT\"",
    ]));
    let car = home.wait_sidecar("br", "a", None);
    assert_eq!(car.pid, wrapped.child.id(), "a bridge's pid is wrap's");
    // wrap shares this test's process group: a signal to that group would
    // end the test itself.
    let said = stdout(&home.run(&["stop", "a.br"]));
    assert!(said.contains(&format!("pid {}", car.pid)), "{said}");
    assert_eq!(wrapped.wait_exit().code(), Some(128 + libc::SIGTERM));
    assert_eq!(home.run_dir_files(), Vec::<String>::new());
}

#[test]
fn stop_leaves_a_manual_route_alone() {
    let home = TestHome::new();
    let socket = home.dir.join("own.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    stdout(&home.run(&["route", "v2.api", socket.to_str().unwrap()]));
    let out = home.run(&["stop", "v2.api"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agentfs route --remove v2.api"));
    assert!(socket.exists());
}

#[test]
fn url_prints_the_instance_url_with_the_routers_port() {
    let home = TestHome::new();
    let _app = home.wrap("shop", "blue", &Fixture::Node.command(&["3000"]));
    home.wait_sidecar("shop", "blue", Some(3000));
    assert_eq!(
        stdout(&home.run(&["url", "shop"])),
        "http://blue.shop.localhost:7380\n"
    );
    let configured = home
        .agentfs(&["url", "blue.shop"])
        .env("AGENTFS_ROUTER_PORT", "4321")
        .output()
        .unwrap();
    assert_eq!(stdout(&configured), "http://blue.shop.localhost:4321\n");
    let router = home.start_router();
    assert_eq!(
        stdout(&home.run(&["url", "blue"])),
        format!("http://blue.shop.localhost:{}\n", router.port)
    );
    let unknown = home.run(&["url", "red.shop"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("there are: blue.shop"));
}
