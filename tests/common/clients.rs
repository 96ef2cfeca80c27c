//! Helpers for the connect and name tests: servers of an instance (the
//! `ports.py` fixture), clients in C, Python and Node (the `client.*`
//! fixtures) run under `wrap` or without it, and their one JSON line.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use super::fixtures::fixtures_dir;
use super::{wait_for, TestHome, Wrapped};

/// `python3 fixtures/python/NAME ARGS`.
pub fn python(script: &str, args: &[&str]) -> Vec<String> {
    interpreted("python3", &format!("python/{script}"), args)
}

/// `node fixtures/node/NAME ARGS`.
pub fn node(script: &str, args: &[&str]) -> Vec<String> {
    interpreted("node", &format!("node/{script}"), args)
}

fn interpreted(program: &str, script: &str, args: &[&str]) -> Vec<String> {
    let mut cmd = vec![
        program.to_owned(),
        fixtures_dir().join(script).to_string_lossy().into_owned(),
    ];
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd
}

/// `fixtures/c/client.c`, compiled once per test binary, with `args`.
pub fn c_client(args: &[&str]) -> Vec<String> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let binary = BUILT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("agentfs-c-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("client");
        let status = Command::new("cc")
            .args(["-O1", "-Wall", "-o"])
            .arg(&out)
            .arg(fixtures_dir().join("c/client.c"))
            .status()
            .expect("a C compiler (cc)");
        assert!(status.success(), "compiling fixtures/c/client.c failed");
        out
    });
    let mut cmd = vec![binary.to_string_lossy().into_owned()];
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd
}

/// `fixtures/python/ports.py PORTS` as app `app` of instance `id`, once
/// every port's sidecar says it listens.
pub fn serve(home: &TestHome, app: &str, id: &str, ports: &[u16]) -> Wrapped {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let server = home.wrap(app, id, &python("ports.py", &args));
    for port in &ports {
        home.wait_sidecar(app, id, Some(port.parse().unwrap()));
    }
    server
}

/// A client run to its end: its exit code and the JSON line it printed.
pub struct Ran {
    pub code: Option<i32>,
    pub report: Value,
    pub stderr: Vec<String>,
}

/// Waits for `wrapped` to exit and for the JSON line it printed.
pub fn finish(mut wrapped: Wrapped) -> Ran {
    let status = wrapped.wait_exit();
    let line = wait_for(
        &format!("a JSON line (stderr: {:?})", wrapped.stderr()),
        || wrapped.stdout().into_iter().find(|l| l.starts_with('{')),
    );
    let report = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    Ran {
        code: status.code(),
        report,
        stderr: wrapped.stderr(),
    }
}

/// Runs `cmd` under `agentfs wrap --name APP --instance ID` to its end.
pub fn run_wrapped(home: &TestHome, app: &str, id: &str, cmd: &[String]) -> Ran {
    finish(home.wrap(app, id, cmd))
}

/// [`run_wrapped`] with `AGENTFS_LOG` set, so stderr says what the shim did.
pub fn run_wrapped_logged(home: &TestHome, app: &str, id: &str, cmd: &[String]) -> Ran {
    let args = ["wrap", "--no-router", "--name", app, "--instance", id, "--"];
    let mut command = home.agentfs(&args);
    command.args(cmd).env(agentfs_contract::env::LOG, "1");
    finish(Wrapped::spawn(command))
}

/// Runs `cmd` without agentfs (no shim, no agentfs environment) to its end.
pub fn run_plain(cmd: &[String]) -> Ran {
    let mut command = Command::new(&cmd[0]);
    command.args(&cmd[1..]);
    for var in agentfs_contract::env::INSTANCE_VARS
        .iter()
        .chain(&[agentfs_contract::env::PRELOAD])
    {
        command.env_remove(var);
    }
    finish(Wrapped::spawn(command))
}

/// The `body` field of a report, which must be there.
pub fn body(ran: &Ran) -> &str {
    ran.report["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no body: {} (stderr: {:?})", ran.report, ran.stderr))
}

/// A plain HTTP server on a test thread, outside agentfs, listening at
/// `addr` (port 0: any); every request is answered with `body`. Returns
/// its port.
pub fn plain_http_server(addr: &str, body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes());
            });
        }
    });
    port
}
