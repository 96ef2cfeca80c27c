//! Shared helpers for the router's integration tests: a private home, real
//! instance processes (`tests/fixtures/backend.py`) with sidecars written
//! through the contract, an in-process router on port 0, and an HTTP client.
//! Everything is real: processes, sockets, files.
// Each test binary uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

pub mod log;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use agentfs_contract::sidecar::{now_rfc3339, Kind, Sidecar, VERSION};
use agentfs_contract::{layout, naming};
use agentfs_router::{listen, Config, Listeners, Router, Table};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

const BACKEND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/backend.py");

/// A private, short (for `sun_path`) `AGENTFS_HOME` for one test, with its
/// run directory made, removed at the end.
pub struct Home {
    pub dir: PathBuf,
}

impl Home {
    pub fn new() -> Home {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("afr-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        layout::ensure_private_dir(&layout::run_dir(&dir)).unwrap();
        Home { dir }
    }

    pub fn run_dir(&self) -> PathBuf {
        layout::run_dir(&self.dir)
    }

    /// The router's control socket.
    pub fn control(&self) -> PathBuf {
        layout::router_socket(&self.dir)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// All file names in `dir`, sorted (empty if it does not exist).
pub fn file_names(dir: &Path) -> Vec<String> {
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

/// How an instance fixture behaves (`--mode` of the backend script).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Serve,
    Refuse,
    Close,
    /// Sends the first answer's headers, then exits before its body.
    DieMidAnswer,
    /// One request per connection, then closes it without saying so.
    OncePerConnection,
}

/// A real instance process serving one socket in the run dir.
pub struct Instance {
    child: Child,
    pub socket: PathBuf,
    pub app: String,
    pub instance: String,
    pub port: u16,
}

impl Instance {
    /// An instance's primary listener, serving HTTP.
    pub fn spawn(home: &Home, app: &str, instance: &str, port: u16) -> Instance {
        Instance::spawn_with(home, app, instance, port, true, Mode::Serve, Kind::Shim)
    }

    pub fn spawn_with(
        home: &Home,
        app: &str,
        instance: &str,
        port: u16,
        primary: bool,
        mode: Mode,
        kind: Kind,
    ) -> Instance {
        let run_dir = home.run_dir();
        let socket =
            naming::socket_path(&run_dir, app, instance, (!primary).then_some(port)).unwrap();
        let mode_arg = match mode {
            Mode::Serve => "serve",
            Mode::Refuse => "refuse",
            Mode::Close => "close",
            Mode::DieMidAnswer => "die",
            Mode::OncePerConnection => "once",
        };
        let mut child = Command::new("python3")
            .arg(BACKEND)
            .arg("--socket")
            .arg(&socket)
            .args(["--instance", instance, "--port", &port.to_string()])
            .args(["--mode", mode_arg])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the backend fixture");
        wait_ready(&mut child);
        let mut car = sidecar(app, instance, &socket, port, child.id());
        car.primary = primary;
        car.kind = kind;
        car.target = (kind == Kind::Bridge).then(|| format!("127.0.0.1:{port}"));
        car.write_atomic(&naming::sidecar_path(&socket)).unwrap();
        Instance {
            child,
            socket,
            app: app.into(),
            instance: instance.into(),
            port,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Rewrites the instance's sidecar to say it was started in `cwd`, as
    /// wrap would have written it from there.
    pub fn set_cwd(&self, cwd: &str) {
        let path = naming::sidecar_path(&self.socket);
        let mut car = Sidecar::parse(&std::fs::read(&path).unwrap()).unwrap();
        car.cwd = cwd.into();
        car.write_atomic(&path).unwrap();
    }

    /// Whether the process has exited (reaping it if so).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL, then reap: its lock is free once this returns.
    /// Closes the listening socket while the process (and its lock) lives
    /// on; returns once the socket refuses connections.
    pub fn close_listener(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"close\n").unwrap();
        stdin.flush().unwrap();
        let deadline = std::time::Instant::now() + DEADLINE;
        while std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the listener never closed"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The sidecar of a live primary listener of a shim-made instance, as
/// the shim writes it.
pub fn sidecar(app: &str, instance: &str, socket: &Path, port: u16, pid: u32) -> Sidecar {
    Sidecar {
        version: VERSION,
        kind: Kind::Shim,
        app: app.into(),
        instance: instance.into(),
        pid,
        socket: socket.to_owned(),
        address: "127.0.0.1".into(),
        port,
        primary: true,
        listening: true,
        hostname: naming::instance_hostname(app, instance),
        argv: vec!["test-instance".into()],
        cwd: "/".into(),
        started_at: now_rfc3339(),
        target: None,
        not_routed: None,
    }
}

fn wait_ready(child: &mut Child) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(DEADLINE)
        .expect("backend fixture never got ready");
    assert_eq!(line.trim(), "ready", "backend fixture failed to start");
}

/// A router running in this process on port 0, with its control socket.
pub struct TestRouter {
    router: Option<Router>,
    pub port: u16,
}

impl TestRouter {
    pub fn start(home: &Home) -> TestRouter {
        TestRouter::start_with(home, |_| {})
    }

    /// A router whose config `tweak` changed from the defaults.
    pub fn start_with(home: &Home, tweak: impl FnOnce(&mut Config)) -> TestRouter {
        let listeners = Listeners {
            http: listen::bind_loopback(0).unwrap(),
            control: Some(listen::bind_control(&home.control()).unwrap()),
        };
        let mut config = Config::for_home(&home.dir);
        tweak(&mut config);
        let router = Router::start(config, listeners).unwrap();
        let port = router.http_addrs()[0].port();
        TestRouter {
            router: Some(router),
            port,
        }
    }

    /// The route table now, and a way to wait for the next.
    pub fn routes(&self) -> tokio::sync::watch::Receiver<std::sync::Arc<Table>> {
        self.router.as_ref().unwrap().routes()
    }

    /// Waits until the route table satisfies `ready`.
    pub async fn wait_routes(&self, what: &str, ready: impl Fn(&Table) -> bool) {
        let mut routes = self.router.as_ref().unwrap().routes();
        tokio::time::timeout(DEADLINE, routes.wait_for(|t| ready(t)))
            .await
            .unwrap_or_else(|_| panic!("routes never became: {what}"))
            .unwrap();
    }

    /// Waits until the app has exactly `n` instances.
    pub async fn wait_instances(&self, app: &str, n: usize) {
        self.wait_routes(&format!("{app} has {n} instances"), |t| {
            t.apps.get(app).map_or(0, |i| i.len()) == n
        })
        .await;
    }

    pub async fn stop(mut self) {
        self.router.take().unwrap().shutdown().await;
    }
}

/// Instance "a1" of app "web" (asked-for port 3000) behind a router that
/// already routes it.
pub async fn web_behind_router(mode: Mode) -> (Home, Instance, TestRouter) {
    let home = Home::new();
    let web = Instance::spawn_with(&home, "web", "a1", 3000, true, mode, Kind::Shim);
    let router = TestRouter::start(&home);
    router.wait_instances("web", 1).await;
    (home, web, router)
}

/// The body of an answer, collected.
pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One kept-alive client connection to the router.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn.with_upgrades());
        Client { sender }
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    /// GET `path` with `Host: host`, body collected.
    pub async fn get(&mut self, host: &str, path: &str) -> hyper::Result<Answer> {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::default())
            .unwrap();
        collect(self.send(req).await?).await
    }
}

pub async fn collect(resp: Response<Incoming>) -> hyper::Result<Answer> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// GET on a fresh connection.
pub async fn get(port: u16, host: &str, path: &str) -> Answer {
    Client::connect(port).await.get(host, path).await.unwrap()
}

/// Waits (with [`DEADLINE`]) until `cond` holds, checking after each router
/// table change or at most every few milliseconds for file-system conditions.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Many live instances of one app held by this test process (a lock, a
/// listening socket and a sidecar each, as the shim makes them), for tests
/// about scale: no process per instance. Nothing answers on the sockets.
pub struct Held {
    _held: Vec<(std::os::fd::OwnedFd, std::os::unix::net::UnixListener)>,
}

impl Held {
    /// Instances `i0`..`i{n-1}` of `app`.
    pub fn instances(home: &Home, app: &str, n: usize) -> Held {
        // Two descriptors each: raise the soft limit as the router would.
        agentfs_router::limits::connection_limit();
        let run_dir = home.run_dir();
        let mut held = Vec::with_capacity(n);
        for i in 0..n {
            let instance = format!("i{i}");
            let socket = naming::socket_path(&run_dir, app, &instance, None).unwrap();
            let lock = agentfs_contract::liveness::try_acquire(&naming::lock_path(&socket))
                .unwrap()
                .expect("a fresh lock is free");
            let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
            sidecar(app, &instance, &socket, 3000, std::process::id())
                .write_atomic(&naming::sidecar_path(&socket))
                .unwrap();
            held.push((lock, listener));
        }
        Held { _held: held }
    }
}
