//! Where a stack's supervisor keeps what others read:
//! `$AGENTFS_HOME/stacks/INSTANCE/` (0700), holding
//!
//! - `supervisor.lock`: `flock`ed by the supervisor for its lifetime, so a
//!   stack is up exactly while its lock is held (even after a SIGKILL).
//! - `control.sock` (0600): the supervisor's control socket ([`super::control`]).
//! - `state.json` (0600, written atomically on every change): the
//!   [`StackStatus`] that `wait`, `ps` and `mcp` read without asking.
//! - `supervisor.log` (0600): what the supervisor itself says.
//! - `setup/SERVICE` (0600): the setup command that last succeeded for the
//!   service in this instance, so it runs once (again only if it changes).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use agentfs_contract::{layout, liveness, naming, sidecar};

/// Largest `state.json` read back: a stack of many services fits easily.
const MAX_STATE: u64 = 4 * 1024 * 1024;

/// A stack's files, for one instance.
#[derive(Clone, Debug)]
pub struct StackDir {
    pub instance: String,
    pub path: PathBuf,
}

/// Where all stacks of `home` keep their directories.
pub fn stacks_dir(home: &Path) -> PathBuf {
    home.join("stacks")
}

impl StackDir {
    pub fn new(home: &Path, instance: &str) -> StackDir {
        StackDir {
            instance: instance.to_owned(),
            path: stacks_dir(home).join(instance),
        }
    }

    /// Makes the directories (private) if needed.
    pub fn ensure(&self) -> Result<()> {
        layout::ensure_private_dir(self.path.parent().unwrap_or(&self.path))?;
        layout::ensure_private_dir(&self.path)?;
        layout::ensure_private_dir(&self.path.join("setup"))?;
        Ok(())
    }

    pub fn lock(&self) -> PathBuf {
        self.path.join("supervisor.lock")
    }

    pub fn control(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    pub fn state(&self) -> PathBuf {
        self.path.join("state.json")
    }

    pub fn log(&self) -> PathBuf {
        self.path.join("supervisor.log")
    }

    fn setup_marker(&self, service: &str) -> PathBuf {
        self.path.join("setup").join(service)
    }

    /// Whether a supervisor runs this stack.
    pub fn is_up(&self) -> bool {
        liveness::is_held(&self.lock())
    }

    /// What the supervisor last wrote, if it runs.
    pub fn status(&self) -> Option<StackStatus> {
        if !self.is_up() {
            return None;
        }
        self.last_status()
    }

    /// What a supervisor last wrote, whether it still runs or not.
    pub fn last_status(&self) -> Option<StackStatus> {
        let file = fs::File::open(self.state()).ok()?;
        if file.metadata().ok()?.len() > MAX_STATE {
            return None;
        }
        serde_json::from_reader(std::io::BufReader::new(file)).ok()
    }

    pub fn write_state(&self, status: &StackStatus) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
        sidecar::write_atomic(&self.state(), &json)
    }

    /// Whether `command` is the setup that last succeeded for `service`.
    pub fn setup_done(&self, service: &str, command: &str) -> bool {
        fs::read_to_string(self.setup_marker(service)).is_ok_and(|done| done == command)
    }

    pub fn mark_setup_done(&self, service: &str, command: &str) -> std::io::Result<()> {
        sidecar::write_atomic(&self.setup_marker(service), command.as_bytes())
    }

    /// Appends a line to the supervisor's own log.
    pub fn say(&self, line: &str) {
        let file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(self.log());
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{} {line}", sidecar::now_rfc3339());
        }
    }
}

/// Every stack directory under `home` whose supervisor runs, by instance.
pub fn running(home: &Path) -> Vec<StackStatus> {
    let mut found: Vec<StackStatus> = fs::read_dir(stacks_dir(home))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            naming::is_label(&name).then(|| StackDir::new(home, &name).status())?
        })
        .collect();
    found.sort_by(|a, b| a.instance.cmp(&b.instance));
    found
}

/// A stack as its supervisor reports it (`state.json`, and the JSON of
/// `up`, `wait`, `down`, `restart` and `ps --stacks`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StackStatus {
    pub instance: String,
    /// The stack file.
    pub file: PathBuf,
    /// The supervisor's pid.
    pub supervisor: u32,
    /// The router port its URLs use.
    pub router_port: u16,
    /// In the stack file's order.
    pub services: Vec<ServiceStatus>,
}

impl StackStatus {
    pub fn service(&self, name: &str) -> Option<&ServiceStatus> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// One service of a stack, now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServiceStatus {
    pub name: String,
    pub state: State,
    /// Why it is in that state, in a few words.
    pub detail: String,
    /// Its current `agentfs wrap` process, while one runs.
    pub pid: Option<u32>,
    /// `http://INSTANCE.SERVICE.localhost:PORT`
    pub url: String,
    /// How often it was started again after exiting.
    pub restarts: u32,
    /// The exit code of its last run (128+N: killed by signal N).
    pub last_exit: Option<i32>,
    /// When it entered this state (RFC 3339).
    pub since: String,
    /// The last lines of its output, when it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_lines: Vec<String>,
}

/// What a service is doing.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for what it needs, running its setup, or running and not ready yet.
    Starting,
    Ready,
    /// Exited; started again after a delay.
    Restarting,
    /// Gave up: it exited 3 times without becoming ready (or once with
    /// `restart = "no"`), its setup failed, or what it needs failed.
    Failed,
    /// Not running, and not to be started again (never started, stopped, or
    /// exited 0 with no restart due).
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Restarting => "restarting",
            State::Failed => "failed",
            State::Stopped => "stopped",
        }
    }

    /// Whether it runs or is about to (what `up` leaves alone).
    pub fn is_active(self) -> bool {
        matches!(self, State::Starting | State::Ready | State::Restarting)
    }
}

/// Removes a stack's state and control socket once its supervisor is gone
/// (its setup markers and the services' logs stay).
pub fn clear(dir: &StackDir) -> Result<()> {
    for path in [dir.state(), dir.control()] {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => {}
        }
    }
    Ok(())
}
