//! `agentfs router [--port N] [--listen ADDR] [--foreground]`, `agentfs router status`,
//! `agentfs router stop`.
//!
//! One router per `AGENTFS_HOME`, guarded by the flock on `router.lock`. It
//! serves HTTP on 127.0.0.1 and `[::1]` (another address only with `--listen`)
//! and its JSON API on the control socket `router.sock` (0600), which is how
//! the other commands find it and learn its port. Without `--foreground` it
//! starts in the background (`router_process::ensure_running`, which
//! `agentfs wrap` uses too) and writes to `router.log`.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use agentfs_contract::env;
use agentfs_contract::{layout, liveness};
use agentfs_router::{client, listen, Config, Listeners};
use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::hosts;
use crate::router_process::{self, ensure_running, running, Launch, CALL_TIMEOUT, POLL_GAP};

/// How long `stop` waits for the router to let go of its lock.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

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
    /// Keep the live names in a managed block of FILE (default /etc/hosts) while the
    /// router runs, when this user may write it (see `agentfs hosts`).
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true,
          default_missing_value = crate::hosts::DEFAULT_FILE)]
    pub sync_hosts: Option<std::path::PathBuf>,
    /// Where a background router logs (set by the one who starts it).
    #[arg(long, hide = true, value_name = "PATH")]
    pub log_file: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum RouterAction {
    /// Whether a router runs for this AGENTFS_HOME, its port and routes (exit 1 if none).
    Status,
    /// Stop the router of this AGENTFS_HOME.
    Stop,
}

pub fn run(args: RouterArgs) -> Result<i32> {
    let home = layout::home_from_env()?;
    let launch = Launch {
        port: args.port,
        listen: args.listen,
        upstream_timeout: Duration::from_secs(args.upstream_timeout),
        sync_hosts: args.sync_hosts,
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

fn run_foreground(home: &Path, launch: &Launch, log_file: Option<&Path>) -> Result<i32> {
    router_process::log::init(log_file)?;
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
        let tls = agentfs_router::tls::config_for_home(home)?;
        let config = Config {
            upstream_timeout: launch.upstream_timeout,
            tls: Some(tls),
            ..Config::for_home(home)
        };
        let router = agentfs_router::Router::start(config, listeners)?;
        if let Some(file) = &launch.sync_hosts {
            tokio::spawn(hosts::keep_current(file.clone(), router.routes()));
        }
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
