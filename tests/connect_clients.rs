//! Wired connects look like TCP to every kind of client: non-blocking
//! connects on libuv's and asyncio's event loops, a blocking one from C,
//! over IPv4, IPv6 and the name `localhost`; the addresses getpeername and
//! getsockname report and the TCP options set on the client side; an epoll
//! registration made before connect; and a listener whose backlog is full.

mod common;

use std::os::unix::ffi::OsStrExt;

use serde_json::json;

use common::bridge::free_port;
use common::clients::{
    body, c_client, node, plain_http_server, python, run_plain, run_wrapped, serve, Ran,
};
use common::{wait_for, TestHome};

/// The instance `x` with `ports.py` serving one port, and that port.
fn instance_with_app(home: &TestHome) -> (common::Wrapped, u16) {
    let port = free_port();
    (serve(home, "api", "x", &[port]), port)
}

/// Runs `cmd` as app `web` of instance `x`.
fn in_x(home: &TestHome, cmd: &[String]) -> Ran {
    run_wrapped(home, "web", "x", cmd)
}

fn hello(port: u16) -> String {
    format!("hello from api/x on {port}")
}

/// A client's `[address, port]` (or `"address port"`) report, checked: the
/// address is `ip` and the port is `port`, or any port when `None`.
fn assert_endpoint(ran: &Ran, field: &str, ip: &str, port: Option<u16>) {
    let value = &ran.report[field];
    let (got_ip, got_port) = match value {
        serde_json::Value::Array(pair) => (pair[0].as_str().unwrap().to_owned(), pair[1].as_u64()),
        serde_json::Value::String(text) => {
            let (ip, port) = text.split_once(' ').unwrap();
            (ip.to_owned(), port.parse().ok())
        }
        serde_json::Value::Object(map) => (
            map["address"].as_str().unwrap().to_owned(),
            map["port"].as_u64(),
        ),
        _ => panic!("no {field} in {}", ran.report),
    };
    assert_eq!(got_ip, ip, "{field} of {}", ran.report);
    let got_port = got_port.unwrap_or_else(|| panic!("{field} port in {}", ran.report));
    match port {
        Some(port) => assert_eq!(got_port, u64::from(port), "{}", ran.report),
        None => assert!(got_port > 0, "a local port: {}", ran.report),
    }
}

#[test]
fn a_node_client_connects_on_libuvs_event_loop_and_sees_tcp_addresses() {
    let home = TestHome::new();
    let (_app, port) = instance_with_app(&home);
    let port_text = port.to_string();
    for (host, family) in [
        ("127.0.0.1", "IPv4"),
        ("::1", "IPv6"),
        ("localhost", "IPv4"),
    ] {
        let ran = in_x(&home, &node("client.js", &["connect", host, &port_text]));
        assert_eq!(body(&ran), hello(port), "{host}");
        let loopback = if family == "IPv4" { "127.0.0.1" } else { "::1" };
        assert_endpoint(&ran, "remote", loopback, Some(port));
        assert_eq!(ran.report["remote"]["family"], family);
        assert_endpoint(&ran, "local", loopback, None);
    }
    let url = format!("http://localhost:{port}/");
    let ran = in_x(&home, &node("client.js", &["fetch", &url]));
    assert_eq!(body(&ran), hello(port));
}

#[test]
fn a_python_asyncio_client_connects_on_its_event_loop() {
    let home = TestHome::new();
    let (_app, port) = instance_with_app(&home);
    let port_text = port.to_string();
    for host in ["127.0.0.1", "::1"] {
        let ran = in_x(&home, &python("client.py", &["asyncio", host, &port_text]));
        assert_eq!(body(&ran), hello(port), "{host}");
        assert_endpoint(&ran, "peer", host, Some(port));
        assert_endpoint(&ran, "local", host, None);
    }
}

#[test]
fn blocking_clients_see_their_addresses_and_read_back_tcp_options() {
    let home = TestHome::new();
    let (_app, port) = instance_with_app(&home);
    let port_text = port.to_string();
    for (host, ip) in [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("localhost", "127.0.0.1"),
    ] {
        let from_c = in_x(&home, &c_client(&["blocking", host, &port_text]));
        let from_python = in_x(&home, &python("client.py", &["socket", host, &port_text]));
        for ran in [&from_c, &from_python] {
            assert_eq!(body(ran), hello(port), "{host}: {}", ran.report);
            assert_endpoint(ran, "peer", ip, Some(port));
            assert_endpoint(ran, "local", ip, None);
            assert_eq!(ran.report["nodelay"], 1, "{}", ran.report);
            assert_eq!(ran.report["keepalive"], 1, "{}", ran.report);
            assert_eq!(ran.report["keepidle"], 30, "{}", ran.report);
        }
        assert_eq!(from_c.report["connect"], "0");
        assert_eq!(from_c.report["so_error"], 0);
        assert_eq!(from_c.report["again"], "EISCONN", "connected, as TCP says");
        assert_eq!(
            from_c.report["peer_family"], from_c.report["family"],
            "addresses come in the socket's own family: {}",
            from_c.report
        );
    }
}

#[test]
fn options_the_client_never_set_read_as_on_a_tcp_connection() {
    let home = TestHome::new();
    let (_app, port) = instance_with_app(&home);
    let plain = plain_http_server("127.0.0.1:0", "plain tcp").to_string();
    let over_tcp = run_plain(&python("client.py", &["socket", "127.0.0.1", &plain]));
    let wired = in_x(
        &home,
        &python("client.py", &["socket", "127.0.0.1", &port.to_string()]),
    );
    assert_eq!(body(&wired), hello(port));
    for option in ["keepintvl", "keepcnt"] {
        assert!(over_tcp.report[option].as_u64().is_some_and(|v| v > 0));
        assert_eq!(wired.report[option], over_tcp.report[option], "{option}");
    }
}

#[test]
fn a_socket_registered_with_epoll_before_connect_keeps_its_registration() {
    let home = TestHome::new();
    let (_app, port) = instance_with_app(&home);
    let ran = in_x(
        &home,
        &c_client(&["epoll-early", "127.0.0.1", &port.to_string()]),
    );
    assert_eq!(ran.code, Some(0), "{}", ran.report);
    assert_eq!(body(&ran), hello(port));
}

/// Non-blocking Unix connects to `socket` until one finds the backlog full
/// (EAGAIN); returns the connected descriptors, which keep it full.
fn fill_backlog(socket: &std::path::Path) -> Vec<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let path = socket.as_os_str().as_bytes();
    let mut held = Vec::new();
    loop {
        assert!(held.len() < 64, "the backlog never filled");
        // SAFETY: plain socket calls on a descriptor we own; addr is a
        // zeroed sockaddr_un with a path that fits.
        let (fd, ret, errno) = unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
            let mut addr: libc::sockaddr_un = std::mem::zeroed();
            addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (dst, &src) in addr.sun_path.iter_mut().zip(path) {
                *dst = src as libc::c_char;
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            let ret = libc::connect(fd, (&raw const addr).cast(), len);
            (fd, ret, *libc::__errno_location())
        };
        // SAFETY: fd is ours.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        if ret == 0 {
            held.push(fd);
            continue;
        }
        assert_eq!(errno, libc::EAGAIN, "a full backlog");
        return held;
    }
}

/// Whether process `pid` is blocked in connect(2), by /proc/PID/syscall;
/// `None` while it runs, `Some(false)` once it is gone.
fn blocked_in_connect(pid: &str) -> Option<bool> {
    match std::fs::read_to_string(format!("/proc/{pid}/syscall")) {
        Err(_) => Some(false),
        Ok(line) => {
            let number = line
                .split_whitespace()
                .next()?
                .parse::<libc::c_long>()
                .ok()?;
            (number == libc::SYS_connect).then_some(true)
        }
    }
}

#[test]
fn a_full_backlog_never_fails_a_non_blocking_connect() {
    let home = TestHome::new();
    let port = free_port();
    let port_text = port.to_string();
    let _server = home.wrap("slow", "x", &python("backlog_server.py", &[&port_text]));
    let car = home.wait_sidecar("slow", "x", Some(port));
    let _held = fill_backlog(&car.socket);
    let client = home.wrap(
        "web",
        "x",
        &c_client(&["nonblocking", "127.0.0.1", &port_text]),
    );
    let line = client.wait_stderr("connecting ");
    let pid = line.rsplit(' ').next().unwrap().to_owned();
    let blocked = wait_for("the client to wait in connect or exit", || {
        blocked_in_connect(&pid)
    });
    assert!(blocked, "the client never waited: {:?}", client.stdout());
    common::send_signal(car.pid, libc::SIGUSR1);
    let ran = common::clients::finish(client);
    assert_eq!(ran.code, Some(0), "{}", ran.report);
    assert!(
        ran.report["connect"] == json!("0") || ran.report["connect"] == json!("EINPROGRESS"),
        "connect returned what TCP returns, never EAGAIN: {}",
        ran.report
    );
    assert_eq!(ran.report["so_error"], 0);
    assert!(body(&ran).starts_with("served "), "{}", ran.report);
}
