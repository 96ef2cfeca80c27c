//! Every instance is a private localhost: two copies (feat-x, feat-y) of a
//! whole stack — a Node web app, a Python API and a real redis-server, each
//! started by its own wrap and asking for the same ports as in the other
//! copy — run side by side. Each web reaches its own API and each API its
//! own Redis over `localhost`; the counters stay apart; and a plain Redis on
//! the host's real TCP port, outside agentfs, keeps its own data.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use common::bridge::free_port;
use common::{get_json, wait_for, TestHome, Wrapped};

fn fixture(name: &str) -> String {
    format!("{}/fixtures/stack/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// One command to a Redis over real TCP; the reply without its type byte
/// (a bulk string's content).
fn redis(port: u16, args: &[&str]) -> Option<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    conn.write_all(command.as_bytes()).ok()?;
    let mut reply = BufReader::new(conn);
    let mut line = String::new();
    reply.read_line(&mut line).ok()?;
    if line.starts_with('$') {
        line.clear();
        reply.read_line(&mut line).ok()?;
        return Some(line.trim_end().to_owned());
    }
    Some(line.trim_end().get(1..)?.to_owned())
}

/// The host's own Redis, on real TCP, outside agentfs.
struct HostRedis(Child);

impl HostRedis {
    fn start(port: u16) -> HostRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        wait_for("the host's redis to answer", || {
            redis(port, &["PING"]).filter(|r| r == "PONG")
        });
        HostRedis(child)
    }
}

impl Drop for HostRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One copy of the stack, as instance `id`: every service asks for the
/// same ports as in every other copy.
fn stack(home: &TestHome, id: &str, ports: (u16, u16, u16)) -> Vec<Wrapped> {
    let (web, api, redis) = (
        ports.0.to_string(),
        ports.1.to_string(),
        ports.2.to_string(),
    );
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        home.wrap(
            "redis",
            id,
            &args(&[
                "redis-server",
                "--port",
                &redis,
                "--save",
                "",
                "--appendonly",
                "no",
            ]),
        ),
        home.wrap(
            "api",
            id,
            &args(&["python3", &fixture("api.py"), &api, &redis]),
        ),
        home.wrap("web", id, &args(&["node", &fixture("web.js"), &web, &api])),
    ]
}

#[test]
fn two_copies_of_a_whole_stack_each_see_their_own_localhost() {
    let home = TestHome::new();
    let ports = (free_port(), free_port(), free_port());
    let host = HostRedis::start(ports.2);
    assert_eq!(
        redis(ports.2, &["SET", "visits", "1000"]).as_deref(),
        Some("OK")
    );

    let _x = stack(&home, "feat-x", ports);
    let _y = stack(&home, "feat-y", ports);
    let web = |id: &str| home.wait_sidecar("web", id, Some(ports.0)).socket;
    for id in ["feat-x", "feat-y"] {
        for app in ["redis", "api"] {
            home.wait_sidecar(app, id, None);
        }
    }
    let count = |id: &str| -> serde_json::Value {
        let answer = get_json(&web(id), "/count");
        assert!(answer["api"]["visits"].is_number(), "{id}: {answer}");
        answer
    };
    let visits = |id: &str| count(id)["api"]["visits"].as_u64().unwrap();

    assert_eq!(
        (visits("feat-x"), visits("feat-x"), visits("feat-x")),
        (1, 2, 3)
    );
    assert_eq!((visits("feat-y"), visits("feat-y")), (1, 2));
    assert_eq!(visits("feat-x"), 4);
    // Each web reached its own copy's API process.
    let api_pid = |id: &str| home.wait_sidecar("api", id, None).pid;
    assert_eq!(count("feat-x")["api"]["api"], api_pid("feat-x"));
    assert_eq!(count("feat-y")["api"]["api"], api_pid("feat-y"));
    // The host's Redis on the real port was never touched.
    assert_eq!(redis(ports.2, &["GET", "visits"]).as_deref(), Some("1000"));
    drop(host);
}
