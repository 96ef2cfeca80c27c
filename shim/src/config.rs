//! The shim's settings, read once from the environment in the constructor.
//!
//! With `AGENTFS_APP` the process is part of an app: its listeners are
//! converted. With `AGENTFS_INSTANCE` but no app (`agentfs exec`) it is a
//! client of its instance: its connects are wired and its names resolve,
//! and its listeners stay real TCP, never announced or routed. With
//! neither, the shim is not under agentfs and does nothing. With
//! settings that are present but unusable (a bad name, a run directory that is
//! not private), it also does nothing, and says why on stderr only when
//! `AGENTFS_LOG` asks: the app must run exactly as it would without us.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use agentfs_contract::{env, layout, naming};

/// What an active shim does for its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Part of an app: listeners are converted, connects wired.
    App,
    /// A client of its instance: connects wired, listeners left alone.
    Client,
}

/// Settings of an active shim.
#[derive(Debug)]
pub struct Config {
    pub role: Role,
    /// The app's name; empty for a client.
    pub app: String,
    pub instance: String,
    pub run_dir: PathBuf,
    /// `run_dir` and a trailing `/`, as bytes: the prefix of every socket path we own.
    pub run_dir_prefix: Vec<u8>,
    /// Where the instance was started from, for sidecars (else the process's own directory).
    pub workdir: Option<String>,
    /// The router's port on loopback (`AGENTFS_ROUTER_PORT`), and the socket
    /// where it learns whose a connection is: a connect to that port from
    /// inside the instance goes there, so `APP.localhost` reaches the
    /// instance's own APP.
    pub router: Option<RouterDoor>,
}

/// The router as a process of an instance reaches it.
#[derive(Debug)]
pub struct RouterDoor {
    pub port: u16,
    /// `$AGENTFS_HOME/router-clients.sock`.
    pub socket: Vec<u8>,
    /// `AGENTFS-INSTANCE <instance>\n`: the first line of every connection there.
    pub preamble: Vec<u8>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static LOG: AtomicBool = AtomicBool::new(false);

/// Reads the environment. Called from the constructor.
pub fn init() {
    LOG.store(
        env::log_enabled(std::env::var(env::LOG).ok().as_deref()),
        Ordering::Relaxed,
    );
    match from_env() {
        Ok(Some(config)) => {
            match config.role {
                Role::App => log(format_args!(
                    "active for {}/{} in {}",
                    config.app,
                    config.instance,
                    config.run_dir.display()
                )),
                Role::Client => log(format_args!(
                    "active as a client of instance {} in {}",
                    config.instance,
                    config.run_dir.display()
                )),
            }
            let _ = CONFIG.set(config);
        }
        Ok(None) => {}
        Err(why) => log(format_args!("disabled: {why}")),
    }
}

/// The settings, or `None` when the shim must pass everything through
/// (not configured, badly configured, or the constructor has not run yet).
pub fn active() -> Option<&'static Config> {
    CONFIG.get()
}

/// Whether `AGENTFS_LOG` asked for diagnostics: check this before building
/// a message in a hot path.
#[inline]
pub fn logging() -> bool {
    LOG.load(Ordering::Relaxed)
}

/// Writes one diagnostic line to stderr when `AGENTFS_LOG` is set.
/// Never on stdout, and never a panic if stderr is gone. errno is kept: a
/// hook may log after a real call whose error the app is about to read.
pub fn log(message: std::fmt::Arguments<'_>) {
    if LOG.load(Ordering::Relaxed) {
        let errno = crate::sys::last_errno();
        let _ = writeln!(
            std::io::stderr(),
            "agentfs shim[{}]: {message}",
            std::process::id()
        );
        crate::sys::set_errno(errno);
    }
}

fn from_env() -> Result<Option<Config>, String> {
    let (role, app) = match std::env::var_os(env::APP) {
        Some(app) => (Role::App, app),
        None if std::env::var_os(env::INSTANCE).is_some() => (Role::Client, "client".into()),
        None => return Ok(None),
    };
    let app = app
        .into_string()
        .map_err(|_| format!("{} is not UTF-8", env::APP))?;
    let instance = std::env::var(env::INSTANCE)
        .map_err(|_| format!("{} is missing or not UTF-8", env::INSTANCE))?;
    let Some(run_dir) = std::env::var_os(env::RUN_DIR) else {
        return match role {
            Role::App => Err(format!("{} is missing", env::RUN_DIR)),
            // An instance id alone (set by hand, say) is no client's.
            Role::Client => Ok(None),
        };
    };
    let run_dir = PathBuf::from(run_dir);
    if !naming::is_label(&app) || !naming::is_label(&instance) {
        return Err(format!(
            "app {app:?} or instance {instance:?} is not a DNS label"
        ));
    }
    if !run_dir.is_absolute() {
        return Err(format!(
            "{} must be absolute, got {}",
            env::RUN_DIR,
            run_dir.display()
        ));
    }
    layout::check_private_dir(&run_dir).map_err(|e| e.to_string())?;
    let mut run_dir_prefix = run_dir.as_os_str().as_encoded_bytes().to_vec();
    run_dir_prefix.push(b'/');
    let app = match role {
        Role::App => app,
        Role::Client => String::new(),
    };
    let router = router_door(&run_dir, &instance);
    Ok(Some(Config {
        role,
        app,
        instance,
        run_dir,
        run_dir_prefix,
        workdir: std::env::var(env::WORKDIR).ok().filter(|d| !d.is_empty()),
        router,
    }))
}

/// The router of the home the run directory is in, when wrap said its port.
fn router_door(run_dir: &std::path::Path, instance: &str) -> Option<RouterDoor> {
    let port = std::env::var(env::ROUTER_PORT)
        .ok()?
        .parse()
        .ok()
        .filter(|&p| p != 0)?;
    let home = run_dir.parent()?;
    Some(RouterDoor {
        port,
        socket: layout::router_clients_socket(home)
            .into_os_string()
            .into_encoded_bytes(),
        preamble: format!("AGENTFS-INSTANCE {instance}\n").into_bytes(),
    })
}

impl Config {
    /// Whether a Unix socket path is one of ours.
    pub fn owns_path(&self, path: &[u8]) -> bool {
        path.starts_with(&self.run_dir_prefix) && !path[self.run_dir_prefix.len()..].contains(&b'/')
    }

    /// Whether a Unix socket path is the router's door for instances.
    pub fn is_router_door(&self, path: &[u8]) -> bool {
        self.router.as_ref().is_some_and(|door| door.socket == path)
    }
}
