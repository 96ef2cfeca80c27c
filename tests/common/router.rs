//! The router for tests that drive the `agentfs` binary: `agentfs router
//! --foreground` as a real process on a port the kernel picks, asked over
//! plain blocking sockets. (The router's own tests, which run it in process,
//! live in `router/tests/`.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

pub use super::{http_get, wait_for, TestHome as Home, DEADLINE};

/// A running `agentfs router --foreground`, stopped on drop.
pub struct TestRouter {
    child: Child,
    pub port: u16,
    control: std::path::PathBuf,
}

impl TestRouter {
    /// Starts a router for `home` and waits until its control socket answers.
    pub fn start(home: &Home) -> TestRouter {
        TestRouter::start_with_args(home, &[])
    }

    /// Starts `agentfs router --foreground ARGS...` for `home`.
    pub fn start_with_args(home: &Home, args: &[&str]) -> TestRouter {
        let log = std::fs::File::create(home.dir.join("router-test.log")).unwrap();
        let child = home
            .agentfs(&["router", "--foreground"])
            .args(args)
            .env("AGENTFS_ROUTER_PORT", "0")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let control = home.control();
        let port = wait_for("the router to answer on its control socket", || {
            let (status, body) = http_get(&control, "/health").ok()?;
            let health: serde_json::Value = serde_json::from_str(&body).ok()?;
            (status == 200)
                .then(|| health["data"]["port"].as_u64())??
                .try_into()
                .ok()
        });
        TestRouter {
            child,
            port,
            control,
        }
    }

    /// Waits until the router routes exactly `n` instances of `app`.
    pub fn wait_instances(&self, app: &str, n: usize) {
        wait_for(&format!("{app} to have {n} instances"), || {
            let (_, body) = http_get(&self.control, "/api/routes").ok()?;
            let routes: serde_json::Value = serde_json::from_str(&body).ok()?;
            let apps = routes["data"]["apps"].as_array()?;
            let count = apps
                .iter()
                .find(|a| a["app"] == app)
                .and_then(|a| a["instances"].as_array())
                .map_or(0, Vec::len);
            (count == n).then_some(())
        });
    }

    /// Stops the router (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            super::send_signal(self.child.id(), libc::SIGTERM);
            let stopped = std::time::Instant::now() + DEADLINE;
            while self.child.try_wait().ok().flatten().is_none() {
                if std::time::Instant::now() > stopped {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = self.child.wait();
        }
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn text(&self) -> String {
        self.body.clone()
    }
}

/// `GET path` with `Host: host` on a fresh connection to the router.
pub fn get(port: u16, host: &str, path: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer { status, body }
}

/// The data of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
