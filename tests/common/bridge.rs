//! Helpers for the bridge, wrap-fallback, ps and route tests: a private
//! `AGENTFS_HOME`, the real `agentfs` binary, TCP backends (a test thread or
//! C servers built here with `cc`), HTTP over a Unix socket, and polling
//! with a deadline.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use super::{wait_for, TestHome as Home, DEADLINE};

pub const AGENTFS: &str = env!("CARGO_BIN_EXE_agentfs");

/// A child process killed (and reaped) on drop.
pub struct Running(pub Child);

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        Running(cmd.spawn().unwrap())
    }

    /// Sends a signal by name (`TERM`, `INT`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit, with the deadline; returns the exit code and stderr.
    pub fn wait(mut self) -> (Option<i32>, String) {
        let status = wait_for("the process to exit", || self.0.try_wait().unwrap());
        let mut stderr = String::new();
        if let Some(mut err) = self.0.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        (status.code(), stderr)
    }
}

impl Drop for Running {
    /// SIGTERM first, so an `agentfs` under test passes it on and its app
    /// does not outlive the test; SIGKILL only if that does not end it.
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            super::send_signal(self.0.id(), libc::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while self.0.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A backend on a test thread: for each connection, reads to EOF (the
/// client's half-close), then answers `echo:` + what it read and closes.
pub fn echo_until_eof_server() -> u16 {
    counting_echo_server().0
}

/// [`echo_until_eof_server`], also counting the connections it accepted.
pub fn counting_echo_server() -> (u16, std::sync::Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                if conn.read_to_end(&mut got).is_ok() {
                    let _ = conn.write_all(b"echo:");
                    let _ = conn.write_all(&got);
                }
            });
        }
    });
    (port, accepted)
}

/// The number of threads of process `pid`, from `/proc/PID/status`.
pub fn thread_count(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Sends `data` over the Unix socket, half-closes, and reads the answer to EOF.
pub fn exchange(socket: &Path, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let writer = {
        let mut stream = stream.try_clone()?;
        let data = data.to_vec();
        // Written on another thread, so a large payload cannot deadlock
        // against an answer that is not read yet.
        std::thread::spawn(move || -> std::io::Result<()> {
            stream.write_all(&data)?;
            stream.shutdown(Shutdown::Write)
        })
    };
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    writer.join().unwrap()?;
    Ok(answer)
}

pub use super::http_get_raw as http_get_unix;

/// Polls until an HTTP GET over `socket` answers 200; returns the answer.
pub fn wait_http_ok(socket: &Path, path: &str) -> String {
    wait_for(&format!("HTTP 200 from {}", socket.display()), || {
        http_get_unix(socket, path)
            .ok()
            .filter(|a| a.starts_with("HTTP/1.0 200") || a.starts_with("HTTP/1.1 200"))
    })
}

pub use super::fixtures::compile_c_server as build_c_server;

/// Waits until the C server fixture answers on `socket`, and checks that it
/// is the one serving `port`.
pub fn assert_c_server_on(socket: &Path, port: u16) {
    let answer = wait_http_ok(socket, "/");
    assert!(
        answer.ends_with(&format!("hello from C on {port}")),
        "{answer}"
    );
}

/// SIGTERM ends `running` (bridge or wrap, with its app) with the signal's
/// exit code, and nothing is left in the run dir.
pub fn assert_stops_clean_on_term(home: &Home, running: Running) {
    running.signal("TERM");
    let (code, stderr) = running.wait();
    assert_eq!(code, Some(128 + 15), "the server died of SIGTERM: {stderr}");
    assert_eq!(all_files(&home.run_dir()), Vec::<String>::new());
}

/// The `*.json` sidecars in `dir`, by file name, sorted.
pub fn sidecar_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub use super::files_in as all_files;
