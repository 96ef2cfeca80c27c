//! What wrap says when the app listens somewhere the router cannot reach:
//! a process of its tree on real TCP (with why and what to do), or a socket
//! of the instance that accepts while its sidecar says it does not listen.

mod common;

use common::bridge::free_port;
use common::TestHome;

fn python_server(port: u16) -> Vec<String> {
    let port = port.to_string();
    ["python3", "-m", "http.server", &port, "--bind", "127.0.0.1"]
        .map(String::from)
        .to_vec()
}

#[test]
fn a_server_whose_environment_lost_the_shim_is_named_with_the_reason() {
    let home = TestHome::new();
    let port = free_port();
    let mut cmd = vec!["env".to_owned(), "-u".into(), "LD_PRELOAD".into()];
    cmd.extend(python_server(port));
    let wrap = home.wrap("esc", "a", &cmd);
    let line = wrap.wait_stderr(&format!("listens on real TCP 127.0.0.1:{port}"));
    assert!(line.contains("esc/a: python3 (pid "), "{line}");
    assert!(line.contains("its environment has no shim"), "{line}");
    assert!(
        line.contains("second copy will find that port taken"),
        "{line}"
    );
}

#[test]
fn a_server_that_switched_user_is_named_with_the_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/usr/sbin/runuser").exists() {
        eprintln!("skipped: switching to another user needs root and runuser");
        return;
    }
    let home = TestHome::new();
    let port = free_port();
    let mut cmd = ["runuser", "-u", "nobody", "--"].map(String::from).to_vec();
    cmd.extend(python_server(port));
    let wrap = home.wrap("pg", "a", &cmd);
    let line = wrap.wait_stderr(&format!("listens on real TCP 127.0.0.1:{port}"));
    assert!(line.contains("runs as user nobody"), "{line}");
    assert!(line.contains("AGENTFS_HOME"), "{line}");
}

/// Binds under the shim, then has a child without the shim listen on the
/// socket: it accepts, but its sidecar never learns it listens.
const BIND_THEN_LISTEN_UNSHIMMED: &str = r#"
import socket, subprocess, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
child = "import socket,sys\ns=socket.socket(fileno=int(sys.argv[1]))\ns.listen()\nwhile True: s.accept()[0].close()"
subprocess.run(["env", "-u", "LD_PRELOAD", sys.executable, "-c", child, str(s.fileno())], pass_fds=[s.fileno()])
"#;

#[test]
fn a_socket_that_accepts_but_cannot_be_routed_is_reported() {
    let home = TestHome::new();
    let port = free_port().to_string();
    let cmd = ["python3", "-c", BIND_THEN_LISTEN_UNSHIMMED, &port].map(String::from);
    let wrap = home.wrap("half", "a", &cmd);
    let line = wrap.wait_stderr("listens, but the router cannot route it");
    assert!(line.contains("half/a: "), "{line}");
    assert!(!line.contains("real TCP"), "{line}");
}
