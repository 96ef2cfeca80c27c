//! The router of this `AGENTFS_HOME` as a process: found over its control
//! socket, or started in the background when none runs.
//!
//! One router per `AGENTFS_HOME`, guarded by the flock on `router.lock`. Its
//! JSON API on the control socket `router.sock` (0600) is how the other
//! commands find it and learn its port. A background router is
//! `agentfs router --foreground` re-executed in a session of its own,
//! writing to `router.log` ([`log`]).

pub mod log;

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentfs_contract::env::{self, DEFAULT_ROUTER_PORT};
use agentfs_contract::{layout, liveness};
use agentfs_router::client;
use anyhow::{bail, Context, Result};

/// How long a router may take to answer after being started.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long one API call over the control socket may take.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Gap between two checks of a condition being waited on.
pub(crate) const POLL_GAP: Duration = Duration::from_millis(20);

/// How a router is to be started: what `agentfs router` was given, or the
/// defaults when `wrap` starts one.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    /// `None`: `AGENTFS_ROUTER_PORT`, else the default port.
    pub port: Option<u16>,
    pub listen: Vec<IpAddr>,
    /// How long an app may take to start an answer.
    pub upstream_timeout: Duration,
    /// The hosts file to keep the live names in, if any.
    pub sync_hosts: Option<std::path::PathBuf>,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            port: None,
            listen: Vec::new(),
            upstream_timeout: agentfs_router::UPSTREAM_TIMEOUT,
            sync_hosts: None,
        }
    }
}

impl Launch {
    /// The port asked for, else [`configured_port`].
    pub(crate) fn port(&self) -> u16 {
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
        if let Some(file) = &self.sync_hosts {
            flags.push(format!("--sync-hosts={}", file.display()));
        }
        flags
    }
}

/// What callers need to know about the running router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouterInfo {
    pub port: u16,
    pub pid: u32,
    /// Whether this call started it.
    pub started: bool,
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
    let log = log::open_append(&log_path)?;
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
