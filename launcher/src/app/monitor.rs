//! What wrap notices while the app runs and says in one line each, instead
//! of leaving the user with silence and a 404:
//!
//! - a socket of the instance that accepts connections but that the router
//!   cannot route: its sidecar still says it is not listening (the process
//!   that listens on it does not run with the shim), or it has none;
//! - a process of the app's tree listening on real TCP (Linux, `/proc`): it
//!   escaped the shim, so a second copy will fail with "address in use".
//!   Which process, why (another user, a cleared environment, a program the
//!   shim cannot enter) and what to do.
//!
//! Each finding is reported once. An unreachable socket is reported only
//! when it was so at two looks at least [`SETTLE`] apart: a socket between
//! its `listen` and the sidecar's rewrite is not a finding.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agentfs_contract::accepting::Accepting;
use agentfs_contract::rundir::{Scan, State};
use agentfs_contract::sidecar::Kind;
use agentfs_contract::{layout, naming};

use crate::app::procnet;

/// How long a socket must stay unreachable before it is reported.
const SETTLE: Duration = Duration::from_secs(1);

/// One instance's findings so far.
pub(crate) struct Monitor {
    app: String,
    id: String,
    /// The app's process, once it runs, and whether it runs with the shim.
    root: Option<(u32, bool)>,
    /// Unreachable sockets, since when they were first seen so.
    pending: HashMap<PathBuf, Instant>,
    reported: HashSet<String>,
}

impl Monitor {
    pub(crate) fn new(app: &str, id: &str) -> Monitor {
        Monitor {
            app: app.to_owned(),
            id: id.to_owned(),
            root: None,
            pending: HashMap::new(),
            reported: HashSet::new(),
        }
    }

    /// Watches the tree of `pid`; `shimmed`: the shim should catch its listeners.
    pub(crate) fn watch(&mut self, pid: u32, shimmed: bool) {
        self.root = Some((pid, shimmed));
    }

    /// One look: prints what is new.
    pub(crate) fn look(&mut self, scan: &Scan) {
        let unreachable = self.unreachable(scan);
        let now = Instant::now();
        self.pending
            .retain(|socket, _| unreachable.iter().any(|(s, _)| s == socket));
        for (socket, why) in unreachable {
            let since = *self.pending.entry(socket.clone()).or_insert(now);
            if now.duration_since(since) >= SETTLE {
                self.report(
                    socket.display().to_string(),
                    format!(
                        "{} listens, but the router cannot route it: {why}",
                        socket.display()
                    ),
                );
            }
        }
        if let Some((root, true)) = self.root {
            for listener in procnet::tree_listeners(root) {
                let key = format!("{}@{}", listener.pid, listener.addr);
                self.report(key, escaped(&listener));
            }
        }
    }

    /// This instance's sockets that accept connections the router cannot route.
    fn unreachable(&self, scan: &Scan) -> Vec<(PathBuf, &'static str)> {
        let bound = scan
            .of_instance(&self.app, &self.id)
            .filter(|e| e.state == State::Bound && e.sidecar.kind == Kind::Shim)
            .map(|e| {
                let why = "its sidecar says it does not listen (the process that listens on \
                           it does not run with the shim)";
                (e.sidecar.socket.clone(), why)
            });
        // A socket without a sidecar has no owner to read but its name.
        let own_prefix = naming::socket_stem(&self.app, &self.id, None);
        let orphans = scan
            .orphans
            .iter()
            .filter(|socket| {
                socket
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|stem| stem.starts_with(&own_prefix))
            })
            .map(|socket| {
                (
                    socket.clone(),
                    "it has no sidecar (it could not be written)",
                )
            });
        let candidates: Vec<_> = bound.chain(orphans).collect();
        if candidates.is_empty() {
            return candidates;
        }
        let accepting = Accepting::snapshot();
        candidates
            .into_iter()
            .filter(|(socket, _)| accepting.accepts(socket))
            .collect()
    }

    fn report(&mut self, key: String, message: String) {
        if self.reported.insert(key) {
            eprintln!("agentfs: {}/{}: {message}", self.app, self.id);
        }
    }
}

/// What to say of a process that listens on real TCP under the shim.
fn escaped(listener: &procnet::TreeListener) -> String {
    let pid = listener.pid;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|_| "a process".to_owned());
    let (why, fix) = diagnose(pid);
    format!(
        "{name} (pid {pid}) listens on real TCP {}, outside agentfs: {why}. \
         A second copy will find that port taken. {fix}",
        listener.addr
    )
}

/// Why a process escaped the shim, and what to do about it.
fn diagnose(pid: u32) -> (String, String) {
    let me = layout::current_uid();
    if let Some(uid) = process_uid(pid).filter(|uid| *uid != me) {
        let user = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |u| u.name);
        return (
            format!("it runs as user {user}, who cannot load the shim from your private agentfs directory"),
            format!(
                "Run it as yourself under wrap, or run wrap itself as {user} with a home of its own \
                 (sudo -u {user} env AGENTFS_HOME=<dir> agentfs wrap ...)"
            ),
        );
    }
    if !environment_has_shim(pid) {
        return (
            "its environment has no shim (something between wrap and it cleared the preload \
             variable, e.g. env -i or a launcher that sanitises the environment)"
                .to_owned(),
            "Start it under wrap directly, or with --bridge".to_owned(),
        );
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap_or_else(|_| PathBuf::from(format!("/proc/{pid}/exe")));
    let platform = agentfs_injectable::Platform::Linux;
    if let agentfs_injectable::Verdict::NotInjectable { reason, .. } =
        agentfs_injectable::check_binary(&exe, platform)
    {
        return (
            format!("the shim cannot enter it: {reason}"),
            "Run it with `agentfs wrap --bridge`".to_owned(),
        );
    }
    (
        "it bound its socket without going through the C library".to_owned(),
        "Run it with `agentfs wrap --bridge`".to_owned(),
    )
}

/// The effective uid of a process, from `/proc/PID/status`.
fn process_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether a process's environment preloads an agentfs shim (unreadable: assume so).
fn environment_has_shim(pid: u32) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return true;
    };
    let preload = format!("{}=", agentfs_contract::env::PRELOAD);
    environ.split(|&b| b == 0).any(|var| {
        var.strip_prefix(preload.as_bytes())
            .is_some_and(|value| String::from_utf8_lossy(value).contains("libagentfs_shim"))
    })
}
