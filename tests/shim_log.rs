//! `AGENTFS_LOG` names the reason for every call the shim leaves alone, and
//! without it the shim says nothing at all.

mod common;

use std::process::Output;

use common::fixtures::Fixture;
use common::TestHome;

/// Runs the pass-through fixture (an outbound TCP connection, a UDP socket,
/// an AF_UNIX listener) under wrap, with `AGENTFS_LOG` set to `log`.
fn passthrough_run(home: &TestHome, log: Option<&str>) -> Output {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port().to_string();
    let unix_path = home.dir.join(format!("own-{}.sock", log.unwrap_or("off")));
    let mut command = home.agentfs(&[
        "wrap",
        "--no-router",
        "--name",
        "log",
        "--instance",
        "a",
        "--",
    ]);
    command.args(Fixture::PythonPassthrough.command(&[&port, unix_path.to_str().unwrap()]));
    if let Some(value) = log {
        command.env("AGENTFS_LOG", value);
    }
    // Reads the fixture's "hello" to the end, so the connection closes cleanly.
    let accepting = std::thread::spawn(move || {
        let (mut conn, _) = upstream.accept().unwrap();
        std::io::Read::read_to_end(&mut conn, &mut Vec::new()).unwrap();
    });
    let output = command.output().unwrap();
    accepting.join().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn every_pass_through_is_logged_with_its_reason() {
    let home = TestHome::new();
    let stderr = String::from_utf8(passthrough_run(&home, Some("1")).stderr).unwrap();
    let shim_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("agentfs shim["))
        .collect();
    for (hook, reason) in [
        ("bind(", "passed through: not a stream socket"),
        ("bind(", "passed through: not an IPv4 or IPv6 address"),
        ("getpeername(", "passed through: not a Unix socket"),
    ] {
        assert!(
            shim_lines
                .iter()
                .any(|l| l.contains(hook) && l.contains(reason)),
            "no shim line with {hook}…{reason:?} in:\n{stderr}"
        );
    }
}

#[test]
fn without_agentfs_log_the_shim_is_silent() {
    let home = TestHome::new();
    for log in [None, Some("0")] {
        let stderr = String::from_utf8(passthrough_run(&home, log).stderr).unwrap();
        assert!(
            !stderr.contains("agentfs shim"),
            "AGENTFS_LOG={log:?}:\n{stderr}"
        );
    }
}
