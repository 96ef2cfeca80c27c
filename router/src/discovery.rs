//! Discovery: turning the run directory into a route table.
//!
//! Sidecars are the signal, not sockets: macOS FSEvents reports nothing when a
//! Unix socket is created, while a sidecar renamed into place is seen by every
//! backend. Every watcher event is only a hint to re-scan; a scan reads the
//! whole directory, and the new table replaces the old one only if it differs.
//! Scans run at start, on any event for a non-dot file, when a request could
//! not connect to an instance, and every [`RECONCILE_INTERVAL`] as a safety net.
//!
//! The directory is hostile ground: a sidecar that is oversized, unparseable,
//! of an unknown version, a symlink, foreign, or that names a socket that is
//! not its own socket in the run directory is ignored, with one log line.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentfs_contract::liveness;
use agentfs_contract::naming;
use agentfs_contract::sidecar::{self, Kind, Rejected};
use notify::{RecursiveMode, Watcher};
use tokio::sync::{watch, Notify};

use crate::table::{Backend, Table};

/// How often the run directory is re-scanned without any event. Catches an
/// instance killed with SIGKILL (whose files stay behind with no event) when no
/// request happens to notice it first, and any event a watcher dropped.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);

/// The state kept between scans.
#[derive(Debug)]
pub struct Discovery {
    run_dir: PathBuf,
    /// Backends by socket path, kept while their sidecar stays the same.
    backends: HashMap<PathBuf, Arc<Backend>>,
    /// Sidecars already logged as rejected, with the reason, so each is logged once.
    rejected: HashMap<PathBuf, String>,
}

impl Discovery {
    pub fn new(run_dir: PathBuf) -> Discovery {
        Discovery {
            run_dir,
            backends: HashMap::new(),
            rejected: HashMap::new(),
        }
    }

    /// Reads the whole run directory. Returns the new table, or `None` when
    /// the set of routes did not change.
    pub fn scan(&mut self) -> Option<Table> {
        let mut found: HashMap<PathBuf, Arc<Backend>> = HashMap::new();
        let mut rejected = HashMap::new();
        let entries = match fs::read_dir(&self.run_dir) {
            Ok(entries) => entries,
            Err(err) => {
                tracing::warn!(%err, dir = %self.run_dir.display(), "cannot read the run directory");
                return None;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !is_sidecar_name(&path) {
                continue;
            }
            match self.read(&path) {
                Ok(Some(backend)) => {
                    found.insert(backend.sidecar.socket.clone(), backend);
                }
                Ok(None) => {}
                Err(reason) => {
                    if self.rejected.get(&path) != Some(&reason) {
                        tracing::warn!(sidecar = %path.display(), "ignored: {reason}");
                    }
                    rejected.insert(path, reason);
                }
            }
        }
        self.rejected = rejected;
        let changed = found.len() != self.backends.len()
            || found
                .iter()
                .any(|(k, b)| !self.backends.get(k).is_some_and(|old| Arc::ptr_eq(old, b)));
        self.backends = found;
        changed.then(|| Table::from_backends(self.backends.values().cloned()))
    }

    /// One sidecar: a live backend, `None` when stale (its files are removed),
    /// or the reason it is refused.
    fn read(&self, path: &Path) -> Result<Option<Arc<Backend>>, String> {
        let car = match sidecar::read_checked(path, &self.run_dir) {
            Ok(car) => car,
            Err(Rejected::NotASocket(socket)) if is_own_missing_socket(path, &socket) => {
                remove_stale(&socket);
                return Ok(None);
            }
            Err(Rejected::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(rejected) => return Err(rejected.to_string()),
        };
        if car.kind == Kind::Manual {
            // `agentfs route` names a socket agentfs did not make, anywhere the
            // user owns one: it is live while that socket exists, and only its
            // sidecar is ever removed, never the user's socket.
            if !liveness::entry_is_live(&car) {
                let _ = liveness::remove_stale_entry(path, &car);
                return Ok(None);
            }
        } else if naming::sidecar_path(&car.socket) != path {
            return Err(format!(
                "names socket {}, which is not its own",
                car.socket.display()
            ));
        } else if !liveness::socket_is_live(&car.socket) {
            remove_stale(&car.socket);
            return Ok(None);
        }
        match self.backends.get(&car.socket) {
            Some(old) if old.sidecar == car => Ok(Some(Arc::clone(old))),
            _ => Ok(Some(Arc::new(Backend::new(car)))),
        }
    }
}

fn is_sidecar_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && path.extension().is_some_and(|e| e == naming::SIDECAR_EXT)
}

/// The sidecar names its own socket, and that socket is gone.
fn is_own_missing_socket(sidecar: &Path, socket: &Path) -> bool {
    naming::sidecar_path(socket) == sidecar && fs::symlink_metadata(socket).is_err()
}

fn remove_stale(socket: &Path) {
    match liveness::remove_if_stale(socket) {
        Ok(true) => tracing::info!(socket = %socket.display(), "removed stale instance"),
        Ok(false) => {}
        Err(err) => {
            tracing::warn!(%err, socket = %socket.display(), "could not remove stale files")
        }
    }
}

/// Starts watching `run_dir`; each relevant event wakes `poke`. The returned
/// watcher must be kept alive for as long as events are wanted.
pub fn watch_dir(run_dir: &Path, poke: Arc<Notify>) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(event) => is_hint(event),
            Err(_) => true,
        };
        if relevant {
            poke.notify_one();
        }
    })?;
    watcher.watch(run_dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Whether an event may mean the routes changed. Opening or reading a file
/// changes nothing, and a scan itself opens the directory, every sidecar and
/// every lock: counting those (inotify reports them) would make each scan
/// trigger the next, so the router would re-scan without pause even when idle.
pub fn is_hint(event: &notify::Event) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    let changes = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    changes
        && event.paths.iter().any(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
        })
}

/// Scans on every poke and every reconcile tick until `stop` turns true,
/// publishing each changed table.
pub async fn run(
    mut discovery: Discovery,
    table: watch::Sender<Arc<Table>>,
    poke: Arc<Notify>,
    reconcile: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(reconcile);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let run_dir = discovery.run_dir.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            let changed = discovery.scan();
            (discovery, changed)
        })
        .await;
        // A scan that panicked loses its cache, not the router: start afresh.
        let (back, changed) = scanned.unwrap_or_else(|err| {
            tracing::error!(%err, "scan failed; starting discovery afresh");
            (Discovery::new(run_dir), None)
        });
        discovery = back;
        if let Some(new) = changed {
            tracing::debug!(routes = new.backends().count(), "route table changed");
            table.send_replace(Arc::new(new));
        }
        tokio::select! {
            _ = poke.notified() => {}
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
    use notify::Event;

    fn event(kind: EventKind, name: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from("/run").join(name))
    }

    #[test]
    fn reads_are_no_hint_but_changes_are() {
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read_done = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(!is_hint(&event(open, "web-a.json")));
        assert!(!is_hint(&event(read_done, "web-a.lock")));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(is_hint(&event(written, "web-a.json")));
        assert!(is_hint(&event(renamed, "web-a.json")));
        assert!(is_hint(&event(
            EventKind::Create(CreateKind::File),
            "web-a.sock"
        )));
        assert!(!is_hint(&event(renamed, ".web-a.json.tmp")));
    }
}
