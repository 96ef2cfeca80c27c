//! Everything a wrap started ends with it, whatever session or process
//! group it moved to (`setsid`, a daemon's double fork), and a wrap lives
//! as long as anything it started lives.

mod common;

use common::clients::python;
use common::{http_get, process_alive, wait_for, TestHome, Wrapped};

/// The pid a fixture printed after `prefix`.
fn printed_pid(app: &Wrapped, prefix: &str) -> u32 {
    let line = app.wait_stdout(prefix);
    line[prefix.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn wait_gone(pid: u32) {
    wait_for(&format!("process {pid} to end"), || {
        (!process_alive(pid) || is_zombie(pid)).then_some(())
    });
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `setsid python3 daemonize.py PORT` under wrap, once its daemon serves.
fn daemon(home: &TestHome, app: &str, port: u16) -> (Wrapped, u32) {
    let mut cmd = vec!["setsid".to_owned()];
    cmd.extend(python("daemonize.py", &[&port.to_string()]));
    let wrapped = home.wrap(app, "a", &cmd);
    let daemon = printed_pid(&wrapped, "daemon ");
    let car = home.wait_sidecar(app, "a", Some(port));
    assert_eq!(car.pid, daemon);
    (wrapped, daemon)
}

#[test]
fn a_daemon_keeps_its_wrap_alive_and_ends_with_it() {
    let home = TestHome::new();
    let (mut wrapped, daemon) = daemon(&home, "daemon", 7330);
    let parent = printed_pid(&wrapped, "parent ");
    wait_gone(parent);
    let (status, body) = http_get(&home.socket("daemon", "a", None), "/").unwrap();
    assert_eq!((status, body), (200, format!("daemon {daemon}")));
    assert!(
        wrapped.child.try_wait().unwrap().is_none(),
        "the app exited, but what it started runs on: so does its wrap"
    );
    wrapped.signal(libc::SIGTERM);
    let status = wrapped.wait_exit();
    assert_eq!(status.code(), Some(0), "the app's own exit code");
    wait_gone(daemon);
    assert!(home.sidecars().is_empty(), "{:?}", home.run_dir_files());
}

#[test]
fn a_daemon_ends_when_its_wrap_is_killed() {
    let home = TestHome::new();
    let (mut wrapped, daemon) = daemon(&home, "killed", 7331);
    wrapped.signal(libc::SIGKILL);
    wrapped.wait_exit();
    wait_gone(daemon);
}

#[test]
fn agentfs_stop_ends_a_daemon_and_its_wrap() {
    let home = TestHome::new();
    let (mut wrapped, daemon) = daemon(&home, "stopped", 7332);
    let stopped = home.run(&["stop", "a.stopped"]);
    assert!(stopped.status.success(), "{stopped:?}");
    wait_gone(daemon);
    wrapped.wait_exit();
}
