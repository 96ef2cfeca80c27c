//! `agentfs router [--port N] [--listen ADDR] [--foreground]`, `agentfs router status`,
//! `agentfs router stop`; and [`ensure_running`], which `agentfs wrap` uses to
//! start a router in the background when none runs.
//!
//! One router per `AGENTFS_HOME`, guarded by the flock on `router.lock`. It
//! serves HTTP on 127.0.0.1 and [::1] (another address only with `--listen`)
//! and its JSON API on the control socket `router.sock` (0600), which is how
//! the other commands find it and learn its port. A background router writes
//! to `router.log`.

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentfs_contract::env::{self, DEFAULT_ROUTER_PORT};
use agentfs_contract::{layout, liveness};
use agentfs_router::{client, listen, Config, Listeners};
use anyhow::{bail, Context, Result};

use crate::router_log;
use serde_json::Value;

/// How long a router may take to answer after being started.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long `stop` waits for the router to let go of its lock.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long one API call over the control socket may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Gap between two checks of a condition being waited on.
const POLL_GAP: Duration = Duration::from_millis(20);

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RouterArgs {
    #[command(subcommand)]
    pub action: Option<RouterAction>,
    /// HTTP port to serve `*.localhost` on [default: 7380].
    #[arg(long, env = env::ROUTER_PORT)]
    pub port: Option<u16>,
    /// Run in this terminal instead of in the background.
    #[arg(long)]
    pub foreground: bool,
    /// Listen on ADDR instead of loopback (repeatable). Anyone who can reach
    /// ADDR can then reach your apps.
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<IpAddr>,
    /// Seconds an app may take to start its answer before the client gets a 504.
    #[arg(long, value_name = "SECS", default_value_t = agentfs_router::UPSTREAM_TIMEOUT.as_secs())]
    pub upstream_timeout: u64,
    /// Where a background router logs (set by the one who starts it).
    #[arg(long, hide = true, value_name = "PATH")]
    pub log_file: Option<std::path::PathBuf>,
}

/// How a router is to be started: what `agentfs router` was given, or the
/// defaults when `wrap` starts one.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    /// `None`: `AGENTFS_ROUTER_PORT`, else the default port.
    pub port: Option<u16>,
    pub listen: Vec<IpAddr>,
    /// How long an app may take to start an answer.
    pub upstream_timeout: Duration,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            port: None,
            listen: Vec::new(),
            upstream_timeout: agentfs_router::UPSTREAM_TIMEOUT,
        }
    }
}

impl Launch {
    /// The port asked for, else [`configured_port`].
    fn port(&self) -> u16 {
        self.port.unwrap_or_else(configured_port)
    }

    /// The flags that make a router started elsewhere this one.
    fn flags(&self) -> Vec<String> {
        let mut flags = vec!["--port".to_owned(), self.port().to_string()];
        for addr in &self.listen {
            flags.extend(["--listen".to_owned(), addr.to_string()]);
        }
        let timeout = self.upstream_timeout.as_secs().to_string();
        flags.extend(["--upstream-timeout".to_owned(), timeout]);
        flags
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum RouterAction {
    /// Whether a router runs for this AGENTFS_HOME, its port and routes (exit 1 if none).
    Status,
    /// Stop the router of this AGENTFS_HOME.
    Stop,
}

/// What callers need to know about the running router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouterInfo {
    pub port: u16,
    pub pid: u32,
    /// Whether this call started it.
    pub started: bool,
}

pub fn run(args: RouterArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let launch = Launch {
        port: args.port,
        listen: args.listen,
        upstream_timeout: Duration::from_secs(args.upstream_timeout),
    };
    match args.action {
        Some(RouterAction::Status) => status(&home),
        Some(RouterAction::Stop) => stop(&home),
        None if args.foreground => run_foreground(&home, &launch, args.log_file.as_deref()),
        None => {
            let info = ensure_running(&home, &launch)?;
            // Port 0 asks for any free port.
            if let Some(asked) = launch.port.filter(|p| *p != 0 && *p != info.port) {
                bail!(
                    "a router already runs for {} on port {} (pid {}), not on {asked}: \
                     stop it first with `agentfs router stop`",
                    home.display(),
                    info.port,
                    info.pid
                );
            }
            let verb = if info.started {
                "started"
            } else {
                "already running"
            };
            eprintln!(
                "agentfs: router {verb} (pid {}): http://APP.localhost:{}",
                info.pid, info.port
            );
            Ok(0)
        }
    }
}

/// The running router, asked over its control socket.
pub(crate) fn running(home: &Path) -> Option<RouterInfo> {
    let health =
        client::get_blocking(&layout::router_socket(home), "/health", CALL_TIMEOUT).ok()?;
    Some(RouterInfo {
        port: u16::try_from(health["port"].as_u64()?).ok()?,
        pid: u32::try_from(health["pid"].as_u64()?).ok()?,
        started: false,
    })
}

/// The port a router of this `AGENTFS_HOME` runs or would run on, when it
/// cannot be asked: `AGENTFS_ROUTER_PORT`, else the default.
pub(crate) fn configured_port() -> u16 {
    std::env::var(env::ROUTER_PORT)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_ROUTER_PORT)
}

/// The port URLs are printed with: the running router's, else [`configured_port`].
pub(crate) fn url_port(home: &Path) -> u16 {
    running(home).map_or_else(configured_port, |info| info.port)
}

/// Returns the router of `home`, starting one in the background as `launch`
/// says if none runs: `agentfs router --foreground` re-executed in its own
/// session, logging to `router.log`, waited for until its control socket answers.
pub(crate) fn ensure_running(home: &Path, launch: &Launch) -> Result<RouterInfo> {
    if let Some(info) = running(home) {
        return Ok(info);
    }
    layout::ensure_private_dir(home)?;
    // A router holding the lock is starting up (or another wrap just started
    // one): wait for it rather than start a second, which would only exit.
    let child = if liveness::is_held(&layout::router_lock(home)) {
        None
    } else {
        Some(spawn_background(home, launch)?)
    };
    let info = wait_until_running(home, child)?;
    Ok(info)
}

fn spawn_background(home: &Path, launch: &Launch) -> Result<Child> {
    let log_path = layout::router_log(home);
    // What the router itself writes before its logging starts, and panics.
    let log = router_log::open_append(&log_path)?;
    let exe = std::env::current_exe().context("could not find the agentfs executable")?;
    let mut command = Command::new(exe);
    // Started from inside a wrapped app, agentfs carries that instance's
    // shim settings: the router must not, or its own listener is converted.
    for var in env::INSTANCE_VARS.iter().chain([&env::PRELOAD]) {
        command.env_remove(var);
    }
    let child = command
        .args(["router", "--foreground", "--log-file"])
        .arg(&log_path)
        .args(launch.flags())
        .env(env::HOME, home)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("could not start the router")?;
    Ok(child)
}

fn wait_until_running(home: &Path, mut child: Option<Child>) -> Result<RouterInfo> {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Some(mut info) = running(home) {
            info.started = child.is_some();
            if let Some(mut child) = child {
                // Reap it whenever it ends, so it never lingers as a zombie of ours.
                std::thread::spawn(move || child.wait());
            }
            return Ok(info);
        }
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            // It may have lost the lock to a router another process started.
            if liveness::is_held(&layout::router_lock(home)) {
                child = None;
                continue;
            }
            bail!(
                "the router exited ({status}) before answering; see {}",
                layout::router_log(home).display()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the router did not answer on {} within {START_DEADLINE:?}; see {}",
                layout::router_socket(home).display(),
                layout::router_log(home).display()
            );
        }
        std::thread::sleep(POLL_GAP);
    }
}

fn run_foreground(home: &Path, launch: &Launch, log_file: Option<&Path>) -> Result<i32> {
    router_log::init(log_file)?;
    let (port, listen_on) = (launch.port(), &launch.listen);
    layout::ensure_private_dir(home)?;
    let lock_path = layout::router_lock(home);
    let Some(_lock) = liveness::try_acquire(&lock_path)
        .with_context(|| format!("could not open {}", lock_path.display()))?
    else {
        bail!(
            "a router already runs for {} (see `agentfs router status`)",
            home.display()
        );
    };
    let http = if listen_on.is_empty() {
        listen::bind_loopback(port)
    } else {
        listen::bind_addrs(listen_on, port)
    }
    .with_context(|| {
        format!(
            "port {port} is taken? choose another with --port or {}",
            env::ROUTER_PORT
        )
    })?;
    let control = listen::bind_control(&layout::router_socket(home))?;
    let listeners = Listeners {
        http,
        control: Some(control),
    };
    let runtime = agentfs_router::runtime(None)?;
    runtime.block_on(async {
        let config = Config {
            upstream_timeout: launch.upstream_timeout,
            ..Config::for_home(home)
        };
        let router = agentfs_router::Router::start(config, listeners)?;
        let addrs: Vec<String> = router.http_addrs().iter().map(|a| a.to_string()).collect();
        tracing::info!(
            pid = std::process::id(),
            "router listening on {}",
            addrs.join(", ")
        );
        shutdown_signal().await;
        tracing::info!("router stopping");
        router.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(0)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn status(home: &Path) -> Result<i32> {
    let socket = layout::router_socket(home);
    let Ok(health) = client::get_blocking(&socket, "/health", CALL_TIMEOUT) else {
        println!("no router is running for {}", home.display());
        return Ok(1);
    };
    println!(
        "router running: pid {}, port {}, {} route(s), up {}s",
        health["pid"], health["port"], health["routes"], health["uptime_secs"]
    );
    if let Ok(routes) = client::get_blocking(&socket, "/api/routes", CALL_TIMEOUT) {
        print_routes(&routes);
    }
    Ok(0)
}

fn print_routes(routes: &Value) {
    for app in routes["apps"].as_array().into_iter().flatten() {
        println!("  {}", app["url"].as_str().unwrap_or(""));
        for instance in app["instances"].as_array().into_iter().flatten() {
            println!("    {}", instance["url"].as_str().unwrap_or(""));
        }
    }
}

fn stop(home: &Path) -> Result<i32> {
    let Some(info) = running(home) else {
        println!("no router is running for {}", home.display());
        return Ok(0);
    };
    let pid = nix::unistd::Pid::from_raw(i32::try_from(info.pid)?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
        .with_context(|| format!("could not signal the router (pid {})", info.pid))?;
    let lock = layout::router_lock(home);
    let deadline = Instant::now() + STOP_DEADLINE;
    while liveness::is_held(&lock) {
        if Instant::now() >= deadline {
            bail!(
                "the router (pid {}) did not stop within {STOP_DEADLINE:?}",
                info.pid
            );
        }
        std::thread::sleep(POLL_GAP);
    }
    println!("router stopped (pid {})", info.pid);
    Ok(0)
}
