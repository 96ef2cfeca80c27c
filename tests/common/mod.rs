//! Shared helpers for the integration tests: a private `AGENTFS_HOME` per
//! test, running `agentfs wrap`, waiting on conditions with a deadline, and
//! HTTP over Unix sockets. Everything is real: processes, sockets, files.
// Each test binary uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

pub mod bridge;
pub mod clients;
pub mod fixtures;
pub mod go;
pub mod other_user;
pub mod router;
pub mod stack;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentfs_contract::layout;
use agentfs_contract::sidecar::{self, Sidecar};

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Pause between two looks at a condition.
const POLL: Duration = Duration::from_millis(10);

/// Polls `probe` until it returns `Some`, failing the test after [`DEADLINE`].
pub fn wait_for<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    wait_within(DEADLINE, what, probe)
}

/// [`wait_for`] with a deadline of its own, for work whose length the test
/// chose (thousands of cycles on a loaded machine), not a condition that
/// should simply come true.
pub fn wait_within<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// The `agentfs` binary under test.
pub fn agentfs_bin() -> &'static str {
    env!("CARGO_BIN_EXE_agentfs")
}

/// A private, short (for `sun_path`) `AGENTFS_HOME` for one test, with its
/// run directory made, removed at the end.
pub struct TestHome {
    pub dir: PathBuf,
}

impl TestHome {
    pub fn new() -> TestHome {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("afs-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        layout::ensure_private_dir(&layout::run_dir(&dir)).unwrap();
        TestHome { dir }
    }

    pub fn run_dir(&self) -> PathBuf {
        layout::run_dir(&self.dir)
    }

    /// The router's control socket.
    pub fn control(&self) -> PathBuf {
        layout::router_socket(&self.dir)
    }

    /// `agentfs ARGS` with this home and a clean agentfs environment, stdin
    /// closed, output piped.
    pub fn agentfs(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(agentfs_bin());
        // Whatever instance the test itself may run in is not the test's.
        for var in agentfs_contract::env::INSTANCE_VARS
            .iter()
            .chain(&[agentfs_contract::env::PRELOAD, "AGENTFS_ROUTER_PORT"])
        {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .env("AGENTFS_HOME", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `agentfs ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.agentfs(args).output().unwrap()
    }

    /// The socket path of `app`/`id`'s listener (`port: None`: its first).
    pub fn socket(&self, app: &str, id: &str, port: Option<u16>) -> PathBuf {
        agentfs_contract::naming::socket_path(&self.run_dir(), app, id, port).unwrap()
    }

    /// The raw JSON of the sidecar of `app`/`id`'s listener (`port: None`:
    /// its first), once it exists.
    pub fn wait_sidecar_json(&self, app: &str, id: &str, port: Option<u16>) -> serde_json::Value {
        let path = agentfs_contract::naming::sidecar_path(&self.socket(app, id, port));
        wait_for(&format!("{} to appear", path.display()), || {
            serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
        })
    }

    /// Starts `agentfs wrap --name APP --instance ID -- CMD...`.
    pub fn wrap(&self, app: &str, id: &str, cmd: &[String]) -> Wrapped {
        let mut command =
            self.agentfs(&["wrap", "--no-router", "--name", app, "--instance", id, "--"]);
        command.args(cmd);
        Wrapped::spawn(command)
    }

    /// Every sidecar in the run directory that reads back valid and whose
    /// socket listens (a socket is announced at bind, not yet listening).
    pub fn sidecars(&self) -> Vec<Sidecar> {
        let Ok(entries) = std::fs::read_dir(self.run_dir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| sidecar::read_checked(&e.path(), &self.run_dir()).ok())
            .filter(|car| car.listening)
            .collect()
    }

    /// Waits for the sidecar of `app`/`id` whose port is `port` (any port if `None`).
    pub fn wait_sidecar(&self, app: &str, id: &str, port: Option<u16>) -> Sidecar {
        wait_for(&format!("the sidecar of {app}/{id} port {port:?}"), || {
            self.sidecars()
                .into_iter()
                .find(|c| c.app == app && c.instance == id && port.is_none_or(|p| c.port == p))
        })
    }

    /// Names of the files in the run directory, sorted.
    pub fn run_dir_files(&self) -> Vec<String> {
        files_in(&self.run_dir())
    }

    /// The shim library wrap installed under this home.
    pub fn installed_shim(&self) -> PathBuf {
        let lib = self.dir.join("lib");
        assert!(self
            .run(&["wrap", "--no-router", "--", "true"])
            .status
            .success());
        let hash_dir = std::fs::read_dir(&lib)
            .unwrap()
            .flatten()
            .next()
            .expect("a shim directory")
            .path();
        hash_dir.join("libagentfs_shim.so")
    }
}

/// `agentfs router` started in the background for a [`TestHome`] on a port
/// the kernel picked, stopped (with `agentfs router stop`) when dropped.
pub struct BackgroundRouter<'a> {
    home: &'a TestHome,
    pub port: u16,
}

impl TestHome {
    pub fn start_router(&self) -> BackgroundRouter<'_> {
        let started = self
            .agentfs(&["router"])
            .env("AGENTFS_ROUTER_PORT", "0")
            .output()
            .unwrap();
        assert!(started.status.success(), "{started:?}");
        let health = get_json(&self.control(), "/health");
        let port = health["data"]["port"].as_u64().expect("a port") as u16;
        BackgroundRouter { home: self, port }
    }
}

impl Drop for BackgroundRouter<'_> {
    fn drop(&mut self) {
        let _ = self.home.run(&["router", "stop"]);
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `agentfs wrap` with its output collected line by line.
pub struct Wrapped {
    pub child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Wrapped {
    pub fn spawn(command: Command) -> Wrapped {
        Wrapped::spawn_with_stdin(command, Stdio::null())
    }

    /// [`Wrapped::spawn`] with `stdin` (`Stdio::piped()`: the test holds it
    /// in `child.stdin`).
    pub fn spawn_with_stdin(mut command: Command, stdin: Stdio) -> Wrapped {
        let mut child = command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Wrapped {
            child,
            stdout,
            stderr,
        }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a stdout line containing `needle` and returns it.
    pub fn wait_stdout(&self, needle: &str) -> String {
        wait_for(
            &format!("stdout line with {needle:?} (stderr: {:?})", self.stderr()),
            || self.stdout().into_iter().find(|l| l.contains(needle)),
        )
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_stderr(&self, needle: &str) -> String {
        wait_for(&format!("stderr line with {needle:?}"), || {
            self.stderr().into_iter().find(|l| l.contains(needle))
        })
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill with a pid we spawned.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits for wrap to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_for("wrap to exit", || self.child.try_wait().unwrap())
    }
}

impl Drop for Wrapped {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// All file names in `dir`, sorted (empty if it does not exist).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether a process exists.
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

/// Sends `signal` to a process.
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: plain kill.
    unsafe { libc::kill(pid as i32, signal) };
}

/// `GET path` over a Unix socket with `Connection: close`; the whole raw answer.
/// The request goes out in one write: a server that reads once and closes
/// with bytes unread would otherwise reset the connection under our read.
pub fn http_get_raw(socket: &Path, path: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: test.localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// `GET path` over a Unix socket; returns status and body.
pub fn http_get(socket: &Path, path: &str) -> std::io::Result<(u16, String)> {
    let response = http_get_raw(socket, path)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// `GET path` answered 200 with a JSON body.
pub fn get_json(socket: &Path, path: &str) -> serde_json::Value {
    let (status, body) = http_get(socket, path)
        .unwrap_or_else(|e| panic!("GET {path} via {}: {e}", socket.display()));
    assert_eq!(status, 200, "body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
