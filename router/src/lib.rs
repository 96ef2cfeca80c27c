//! The agentfs router: finds every instance in the run directory and routes
//! `*.localhost` to its Unix sockets.
//!
//! # Layout
//! - [`watch`]: file events in the run directory, as hints of which sidecars to read again.
//! - [`discovery`]: reads the run directory (through the contract's reader) into route tables.
//! - [`reports`]: what discovery logs (refused sidecars, removed entries), bounded.
//! - [`table`]: the route table, backends, their counters and least-in-flight picking.
//! - [`activity`]: each backend's last requests and last failure, for the dashboard.
//! - [`host`]: what a Host header names.
//! - [`service`]: one request: the API, an error page, or a forward.
//! - [`proxy`]: what an instance is sent (header rewriting) and what the client gets back.
//! - [`affinity`]: keeping a client of `APP.localhost` on one instance, by cookie.
//! - [`upstream`]: everything toward instances: the router's own HTTP/1.1
//!   client, the connection pool, the retry policy, upgrade tunnels.
//! - [`body`]: response bodies on their way to the client.
//! - [`api`]: what the router says itself: the JSON API, the dashboard and
//!   its event stream (`/api/events`), error pages; its own layout.
//! - [`error`]: [`RouteError`], which knows its side and status code.
//! - [`server`]: accept loops, the connection limit, HTTP/1.1 and HTTP/2.
//! - [`tls`]: what a connection opens with (TLS or not), the handshake.
//! - [`extended_connect`]: WebSockets over HTTP/2 (RFC 8441) as the app's
//!   HTTP/1.1 upgrades.
//! - [`callers`]: the callers socket, where processes of instances say which
//!   instance they are, so `APP.localhost` reaches their own.
//! - [`limits`]: how many connections, from the descriptor limit.
//! - [`listen`]: binding helpers; the caller binds, [`run`] serves.
//! - [`client`]: a client for the API over the control socket.
//!
//! # API error codes
//! `BAD_REQUEST` (400), `BAD_REQUEST_BODY` (400: the client's request body
//! is malformed), `METHOD_NOT_ALLOWED` (405: CONNECT), `MISDIRECTED` (421:
//! Host outside `.localhost`), `NO_ROUTE` (404: nothing routed by that
//! name; `not_routed` says why when the name is known), `NOT_FOUND` (404: no
//! such API path), `LOOP_DETECTED` (508), `NO_UPSTREAM` (502: no instance
//! could take the request), `NOT_LISTENING` (502: a bridge's app is not
//! listening yet), `UPSTREAM_FAILED` (502: the instance failed mid-answer,
//! or answered with framing that cannot be passed on), `UPSTREAM_TIMEOUT`
//! (504: the instance did not start its answer in time),
//! `TOO_MANY_CONNECTIONS` (503: the connection limit).
#![forbid(unsafe_code)]

pub mod activity;
pub mod affinity;
pub mod api;
pub mod body;
pub mod callers;
pub mod client;
pub mod discovery;
pub mod error;
pub mod extended_connect;
pub mod host;
pub mod limits;
pub mod listen;
pub mod proxy;
pub mod reports;
pub mod server;
pub mod service;
pub mod table;
pub mod tls;
pub mod upstream;
pub mod watch;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentfs_contract::layout::{self, LayoutError};
use tokio::sync::{watch as channel, Notify};
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;

pub use error::{RouteError, Side};
pub use table::Table;

/// The router's version (the workspace's, so the CLI's too), as `/health`
/// reports it: `agentfs` can tell a router of another build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long requests in progress get to finish when the router stops.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an instance may take to start its answer by default: long
/// enough for a dev server's first compile of a large app, which answers
/// nothing until it is done.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

/// How the router runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The run directory to watch (`$AGENTFS_HOME/run`).
    pub run_dir: PathBuf,
    /// Interval of the safety-net scan; see [`discovery::RECONCILE_INTERVAL`].
    pub reconcile: Duration,
    /// How long an instance may take to start its answer before the client
    /// is answered 504; see [`UPSTREAM_TIMEOUT`].
    pub upstream_timeout: Duration,
    /// TLS on the HTTP ports and the callers socket (certificates from the
    /// home's CA, see [`tls`]); `None` serves plain HTTP only.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The most client connections served at once; see [`limits`].
    /// [`Config::for_home`] derives it from the descriptor limit, raising
    /// the process's soft limit toward the hard one on the way.
    pub max_connections: usize,
    /// Where to serve processes of instances ([`callers`]): bound by
    /// [`Router::start`], replacing what is there (so start only while
    /// holding the router lock), and removed at shutdown. [`Config::for_home`]
    /// says `$AGENTFS_HOME/router-clients.sock`. Bound here, not by the
    /// caller as the other listeners are, so that every router started for
    /// a home serves it.
    pub callers_socket: Option<PathBuf>,
}

impl Config {
    /// The defaults for an agentfs home.
    pub fn for_home(home: &Path) -> Config {
        Config {
            run_dir: layout::run_dir(home),
            reconcile: discovery::RECONCILE_INTERVAL,
            upstream_timeout: UPSTREAM_TIMEOUT,
            tls: None,
            max_connections: limits::connection_limit(),
            callers_socket: Some(layout::router_clients_socket(home)),
        }
    }
}

/// The sockets the router serves, bound by the caller.
#[derive(Debug, Default)]
pub struct Listeners {
    /// HTTP listeners (normally from [`listen::bind_loopback`]).
    pub http: Vec<std::net::TcpListener>,
    /// The control socket (normally from [`listen::bind_control`]).
    pub control: Option<std::os::unix::net::UnixListener>,
}

/// Why the router could not start. The cause of `Watch` and `Io` is their
/// `source`, not part of their message, so a chain printer shows it once.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("cannot watch the run directory")]
    Watch(#[from] notify::Error),
    #[error("cannot use a listener")]
    Io(#[from] std::io::Error),
}

/// A running router. Dropping it does not stop it; call [`Router::shutdown`].
#[derive(Debug)]
pub struct Router {
    table: channel::Receiver<Arc<Table>>,
    http_addrs: Vec<SocketAddr>,
    stop: channel::Sender<bool>,
    tasks: JoinSet<()>,
    /// Open client connections, waited for at shutdown.
    connections: TaskTracker,
    _watcher: notify::RecommendedWatcher,
    /// The Unix sockets to remove at shutdown.
    socket_paths: Vec<PathBuf>,
}

impl Router {
    /// Starts serving: the watcher, the first read of the run directory,
    /// and then the accept loops, so that no request is answered before the
    /// live instances are known. Must be called inside a tokio runtime.
    pub fn start(config: Config, listeners: Listeners) -> Result<Router, StartError> {
        layout::ensure_private_dir(&config.run_dir)?;
        let poke = Arc::new(Notify::new());
        let changes = watch::Changes::new();
        let watcher = watch::watch_dir(&config.run_dir, Arc::clone(&changes))?;
        let mut discovery = discovery::Discovery::new(config.run_dir.clone());
        let first = discovery.scan().unwrap_or_default();
        let (table_tx, table) = channel::channel(Arc::new(first));
        let (stop, stop_rx) = channel::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(discovery::run(
            discovery,
            table_tx,
            changes,
            Arc::clone(&poke),
            config.reconcile,
            stop_rx.clone(),
        ));
        let mut http = Vec::new();
        for listener in listeners.http {
            listener.set_nonblocking(true)?;
            http.push(tokio::net::TcpListener::from_std(listener)?);
        }
        let http_addrs: Vec<SocketAddr> = http.iter().filter_map(|l| l.local_addr().ok()).collect();
        let state = shared_state(&config, &table, poke, &http_addrs, &stop_rx);
        let refusal = api::raw_error(&RouteError::Overloaded(config.max_connections));
        let connections = TaskTracker::new();
        let mut loops = Loops {
            tasks: &mut tasks,
            state,
            gate: server::Gate::new(config.max_connections, refusal),
            stop: stop_rx,
            connections: connections.clone(),
        };
        for listener in http {
            loops.serve(listener);
        }
        let mut socket_paths = Vec::new();
        if let Some(callers) = config.callers_socket.as_deref().and_then(bind_callers) {
            loops.serve(callers);
            socket_paths.extend(config.callers_socket);
        }
        if let Some(control) = listeners.control {
            control.set_nonblocking(true)?;
            socket_paths.extend(control.local_addr()?.as_pathname().map(Path::to_path_buf));
            loops.serve(tokio::net::UnixListener::from_std(control)?);
        }
        Ok(Router {
            table,
            http_addrs,
            stop,
            tasks,
            connections,
            _watcher: watcher,
            socket_paths,
        })
    }

    /// The current route table, and a way to wait for the next one.
    pub fn routes(&self) -> channel::Receiver<Arc<Table>> {
        self.table.clone()
    }

    /// The addresses the router serves HTTP on.
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// Stops accepting and scanning, lets every open connection finish the
    /// request in progress (for up to [`DRAIN_TIMEOUT`]; idle ones close at
    /// once), and removes the control and callers sockets. Upgraded
    /// connections (WebSockets) are not waited for.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.connections.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.connections.len(),
                "requests still in progress after {DRAIN_TIMEOUT:?} are cut off"
            );
        }
        for path in &self.socket_paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What every request handler shares, made once at start.
fn shared_state(
    config: &Config,
    table: &channel::Receiver<Arc<Table>>,
    poke: Arc<Notify>,
    http_addrs: &[SocketAddr],
    stopping: &channel::Receiver<bool>,
) -> Arc<service::State> {
    let router_id = router_id();
    Arc::new(service::State {
        table: table.clone(),
        poke,
        via: hyper::header::HeaderValue::from_str(&router_id).expect("a router id is hex digits"),
        router_id,
        own: own_addrs(http_addrs),
        port: http_addrs.first().map_or(0, |a| a.port()),
        run_dir: config.run_dir.clone(),
        started: Instant::now(),
        stopping: stopping.clone(),
        upstream_timeout: config.upstream_timeout,
        tls: config.tls.clone(),
    })
}

/// What each accept loop starts with.
struct Loops<'a> {
    tasks: &'a mut JoinSet<()>,
    state: Arc<service::State>,
    gate: server::Gate,
    stop: channel::Receiver<bool>,
    connections: TaskTracker,
}

impl Loops<'_> {
    /// Starts serving `listener`.
    fn serve<L: server::Accept>(&mut self, listener: L) {
        self.tasks.spawn(server::serve(
            listener,
            Arc::clone(&self.state),
            self.gate.clone(),
            self.stop.clone(),
            self.connections.clone(),
        ));
    }
}

/// The callers socket at `path`, or `None` (said in the log) when it cannot
/// be bound: the router serves on without it, as before it had one, and
/// `APP.localhost` from inside an instance is balanced as from anywhere.
fn bind_callers(path: &Path) -> Option<callers::Callers> {
    let bound = listen::bind_callers(path).and_then(|callers| {
        callers.set_nonblocking(true)?;
        tokio::net::UnixListener::from_std(callers)
    });
    match bound {
        Ok(listener) => Some(callers::Callers(listener)),
        Err(err) => {
            tracing::warn!(%err, "not serving processes of instances on their own socket");
            None
        }
    }
}

/// Runs the router until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let router = Router::start(config, listeners)?;
    shutdown.await;
    router.shutdown().await;
    Ok(())
}

/// Task polls between two looks at the sockets (tokio's default is 61).
/// Every task the router runs is short, so finishing more of the ready work
/// first costs no fairness, and it lets each wakeup of the apps and clients
/// carry more answers: more requests/s and less CPU per request in the apps
/// (BENCHMARKS.md).
const EVENT_INTERVAL: u32 = 256;

/// The runtime the router should run on, with `workers` worker threads, or
/// [`default_workers`] when `None`. One worker means tokio's current-thread
/// scheduler on the calling thread: the same single thread of work without
/// the multi-threaded scheduler's cross-thread bookkeeping, which made the
/// backend do less work per request too (BENCHMARKS.md).
pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    match workers.unwrap_or_else(default_workers) {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .event_interval(EVENT_INTERVAL)
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
}

/// Half the cores, at least one. The router shares the machine with the
/// clients and apps it proxies: on 2 cores shared with wrk and the backend,
/// one worker gave more requests/s and about half the p99 of two
/// (BENCHMARKS.md), since two workers mostly wake each other and take CPU
/// from the processes they serve.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// An id unique to this router process, carried in forwarded requests.
fn router_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{}-{nanos}", std::process::id());
    format!(
        "{:016x}",
        agentfs_contract::naming::fnv1a64(seed.as_bytes())
    )
}

/// Listening addresses that are neither loopback nor unspecified: a Host
/// naming one of them addresses the router itself.
fn own_addrs(addrs: &[SocketAddr]) -> Vec<IpAddr> {
    addrs
        .iter()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect()
}
