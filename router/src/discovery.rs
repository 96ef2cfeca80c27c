//! Discovery: turning the run directory into a route table.
//!
//! The run directory is read through the contract's reader
//! ([`agentfs_contract::rundir`]), which decides what is a sidecar, whose it
//! is and whether its owner is live. Discovery keeps one backend per live
//! listener and publishes a new [`Table`] only when the set changed.
//!
//! Work follows what changed: a file event re-reads just the sidecars it
//! names ([`watch`]), and the whole directory is read at start, when
//! something asks for it (a request that could not connect, a watcher
//! error), and every [`RECONCILE_INTERVAL`] as a safety net (2 ms per route
//! on large run directories, so that idle cost stays small at 10,000). Sidecars that
//! did not change are not parsed again. Stale and closed entries are removed
//! as they are found.
//!
//! The directory is hostile ground: a sidecar that is refused is logged when
//! the kind of its fault changes, a few times per file at most, however
//! often it changes, and removals are summarised (see [`reports`]); a run
//! directory that stops being private is refused as a whole (nothing is
//! routed or removed there) until it is private again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentfs_contract::rundir::{self, Entry, Reader, State};
use tokio::sync::{watch as channel, Notify};
use tokio::time::Instant;

use crate::reports::{Refusals, Removals};
use crate::table::{Backend, Table, Unrouted};
use crate::watch::{Changes, Todo};

/// How often the run directory is read whole without any event. Catches an
/// instance killed with SIGKILL (whose files stay behind with no event) or a
/// listener its owner closed, when no request happens to notice it first,
/// and any event a watcher dropped.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);

/// The state kept between reads.
#[derive(Debug)]
pub struct Discovery {
    reader: Reader,
    /// Backends by sidecar path, kept while their sidecar stays the same.
    backends: HashMap<PathBuf, Arc<Backend>>,
    /// Entries known but not routed, by sidecar path.
    unrouted: HashMap<PathBuf, Unrouted>,
    /// What was logged about refused sidecars.
    refusals: Refusals,
    /// Removed entries not logged yet.
    removals: Removals,
    /// Why the directory itself was last refused, if it is.
    refused: Option<String>,
}

impl Discovery {
    pub fn new(run_dir: PathBuf) -> Discovery {
        Discovery {
            reader: Reader::new(run_dir),
            backends: HashMap::new(),
            unrouted: HashMap::new(),
            refusals: Refusals::default(),
            removals: Removals::default(),
            refused: None,
        }
    }

    pub fn run_dir(&self) -> &Path {
        self.reader.dir()
    }

    /// Reads the whole run directory. Returns the new table, or `None` when
    /// the set of routes did not change.
    pub fn scan(&mut self) -> Option<Table> {
        let scan = match self.reader.scan() {
            Ok(scan) => scan,
            Err(err) => return self.refuse(err.to_string()),
        };
        self.accept_dir();
        let mut backends = HashMap::with_capacity(scan.entries.len());
        let mut unrouted = HashMap::new();
        for entry in &scan.entries {
            let path = entry.sidecar_path.clone();
            match self.judge(entry) {
                Judged::Routed(backend) => {
                    backends.insert(path, backend);
                }
                Judged::Unrouted(why) => {
                    unrouted.insert(path, why);
                }
                Judged::Gone => {}
            }
        }
        let present: HashSet<&Path> = (scan.entries.iter().map(|e| e.sidecar_path.as_path()))
            .chain(scan.rejected.iter().map(|r| r.path.as_path()))
            .collect();
        self.refusals.keep_only(&present);
        for entry in &scan.entries {
            self.refusals.accepted(&entry.sidecar_path);
        }
        for rejection in &scan.rejected {
            self.refusals.refused(rejection);
        }
        self.removals.flush(std::time::Instant::now());
        let changed = backends.len() != self.backends.len()
            || backends.iter().any(|(path, backend)| {
                !self
                    .backends
                    .get(path)
                    .is_some_and(|old| Arc::ptr_eq(old, backend))
            })
            || unrouted != self.unrouted;
        self.backends = backends;
        self.unrouted = unrouted;
        changed.then(|| self.table())
    }

    /// Reads the sidecars at `paths` again. Returns the new table, or
    /// `None` when the set of routes did not change.
    pub fn update(&mut self, paths: &[PathBuf]) -> Option<Table> {
        let mut changed = false;
        for path in paths {
            let read = match self.reader.read(path) {
                Ok(read) => read,
                Err(err) => return self.refuse(err.to_string()),
            };
            let judged = match read {
                Some(Ok(entry)) => {
                    self.refusals.accepted(path);
                    self.judge(&entry)
                }
                Some(Err(rejection)) => {
                    self.refusals.refused(&rejection);
                    Judged::Gone
                }
                None => {
                    self.refusals.gone(path);
                    Judged::Gone
                }
            };
            changed |= self.note(path, judged);
        }
        self.accept_dir();
        self.removals.flush(std::time::Instant::now());
        changed.then(|| self.table())
    }

    /// Records what became of the sidecar at `path`; returns whether the
    /// table changed.
    fn note(&mut self, path: &Path, judged: Judged) -> bool {
        let (routed, unrouted) = match judged {
            Judged::Routed(backend) => (Some(backend), None),
            Judged::Unrouted(why) => (None, Some(why)),
            Judged::Gone => (None, None),
        };
        let routes_changed = match routed {
            Some(backend) => self
                .backends
                .insert(path.to_owned(), Arc::clone(&backend))
                .is_none_or(|old| !Arc::ptr_eq(&old, &backend)),
            None => self.backends.remove(path).is_some(),
        };
        let known_changed = match unrouted {
            Some(why) => self.unrouted.insert(path.to_owned(), why.clone()) != Some(why),
            None => self.unrouted.remove(path).is_some(),
        };
        routes_changed || known_changed
    }

    fn table(&self) -> Table {
        Table::new(
            self.backends.values().cloned(),
            self.unrouted.values().cloned(),
        )
    }

    /// What an entry is for the table: the backend of a live entry (the one
    /// already known while its sidecar is the same), or why it is not
    /// routed; a stale or closed entry's files are removed.
    fn judge(&mut self, entry: &Entry) -> Judged {
        let car = &entry.sidecar;
        let port = car.port;
        let why = match entry.state {
            State::Live if car.not_routed.is_none() => {
                return Judged::Routed(match self.backends.get(&entry.sidecar_path) {
                    Some(old) if old.sidecar == *car => Arc::clone(old),
                    _ => Arc::new(Backend::new(Arc::clone(car))),
                });
            }
            // It says why itself.
            State::Live => String::new(),
            State::Bound => format!("port {port} is not listening yet"),
            State::Stale => {
                self.remove(entry);
                return Judged::Gone;
            }
            State::Closed => {
                if self.remove(entry) {
                    return Judged::Gone;
                }
                format!("port {port} was closed by its process")
            }
        };
        Judged::Unrouted(Unrouted {
            app: car.app.clone(),
            instance: car.instance.clone(),
            port,
            why: car.not_routed.clone().unwrap_or(why),
        })
    }

    /// Removes what is left of a stale or closed entry, noting it for the
    /// log; returns whether it is gone.
    fn remove(&mut self, entry: &Entry) -> bool {
        let socket = &entry.sidecar.socket;
        match rundir::remove(entry) {
            Ok(true) => {
                self.removals.removed(socket, entry.state);
                true
            }
            Ok(false) => false,
            Err(err) => {
                self.removals.failed(socket, &err);
                false
            }
        }
    }

    /// The directory itself is not to be trusted: route nothing from it.
    fn refuse(&mut self, why: String) -> Option<Table> {
        if self.refused.as_ref() != Some(&why) {
            tracing::error!("the run directory is refused, nothing is routed: {why}");
            self.refused = Some(why);
        }
        let had_routes = !self.backends.is_empty() || !self.unrouted.is_empty();
        self.backends.clear();
        self.unrouted.clear();
        had_routes.then(Table::default)
    }

    fn accept_dir(&mut self) {
        if self.refused.take().is_some() {
            tracing::info!(dir = %self.run_dir().display(), "the run directory is private again");
        }
    }
}

/// What an entry is for the route table.
enum Judged {
    Routed(Arc<Backend>),
    Unrouted(Unrouted),
    /// Nothing: refused, removed, or gone.
    Gone,
}

/// The time between two safety-net reads: `base`, or 2 ms per route when
/// that is longer. A full read costs a few microseconds per entry (a stat, a
/// lock probe); file events already bring every change of files, so only
/// listeners closed by a live owner (which change no file) wait this long.
fn reconcile_gap(base: Duration, routes: usize) -> Duration {
    const PER_ROUTE: Duration = Duration::from_millis(2);
    base.max(PER_ROUTE.saturating_mul(u32::try_from(routes).unwrap_or(u32::MAX)))
}

/// Reads on every change, poke and reconcile tick until `stop` turns true,
/// publishing each changed table. The first table is the caller's, read
/// before the router accepted anything, so no request is answered from an
/// empty table while live instances exist.
pub async fn run(
    mut discovery: Discovery,
    table: channel::Sender<Arc<Table>>,
    changes: Arc<Changes>,
    poke: Arc<Notify>,
    reconcile: Duration,
    mut stop: channel::Receiver<bool>,
) {
    let mut next_full = Instant::now() + reconcile_gap(reconcile, discovery.backends.len());
    loop {
        let todo = tokio::select! {
            () = changes.wait() => changes.take(),
            () = poke.notified() => Todo::All,
            () = tokio::time::sleep_until(next_full) => Todo::All,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        if todo == Todo::All {
            next_full = Instant::now() + reconcile_gap(reconcile, discovery.backends.len());
        }
        let run_dir = discovery.run_dir().to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let changed = match todo {
                Todo::Nothing => None,
                Todo::Sidecars(paths) => discovery.update(&paths),
                Todo::All => discovery.scan(),
            };
            (discovery, changed)
        })
        .await;
        // A read that panicked loses its cache, not the router: start afresh.
        let (back, changed) = read.unwrap_or_else(|err| {
            tracing::error!(%err, "reading the run directory failed; starting discovery afresh");
            let mut fresh = Discovery::new(run_dir);
            let table = fresh.scan();
            (fresh, table)
        });
        discovery = back;
        if let Some(new) = changed {
            tracing::debug!(routes = new.backends().count(), "route table changed");
            table.send_replace(Arc::new(new));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentfs_contract::sidecar::{now_rfc3339, Kind, Sidecar, VERSION};
    use agentfs_contract::{layout, liveness, naming};

    #[test]
    fn an_event_spelled_canonically_is_read_as_the_run_dir_is_spelled() {
        // A home reached through a symlink in a parent, as $TMPDIR is on
        // macOS, whose FSEvents reports the canonical spelling.
        let base = tempfile::tempdir().unwrap();
        let real = base.path().canonicalize().unwrap().join("real");
        layout::ensure_private_dir(&layout::run_dir(&real)).unwrap();
        let home = base.path().join("home");
        std::os::unix::fs::symlink(&real, &home).unwrap();
        let run = layout::run_dir(&home);
        // A live instance held by this test: its lock, its listening socket.
        let socket = naming::socket_path(&run, "web", "a1", None).unwrap();
        let _lock = liveness::try_acquire(&naming::lock_path(&socket))
            .unwrap()
            .unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let car = Sidecar {
            version: VERSION,
            kind: Kind::Shim,
            app: "web".into(),
            instance: "a1".into(),
            pid: std::process::id(),
            socket: socket.clone(),
            address: "127.0.0.1".into(),
            port: 3000,
            primary: true,
            listening: true,
            hostname: naming::instance_hostname("web", "a1"),
            argv: vec![],
            cwd: "/".into(),
            started_at: now_rfc3339(),
            target: None,
            not_routed: None,
        };
        car.write_atomic(&naming::sidecar_path(&socket)).unwrap();
        let canonical = layout::run_dir(&real).join("web_a1.json");

        let mut discovery = Discovery::new(run.clone());
        // Unlike with unlike: the sidecar seems to name another's socket.
        assert!(discovery.update(std::slice::from_ref(&canonical)).is_none());
        let event = crate::watch::Spelling::of(&run).as_given(&canonical);
        let table = discovery.update(&[event]).expect("the instance is routed");
        assert!(table.apps["web"].contains_key("a1"));
    }

    #[test]
    fn the_safety_net_read_comes_less_often_on_large_directories() {
        let base = Duration::from_secs(5);
        assert_eq!(reconcile_gap(base, 0), base);
        assert_eq!(reconcile_gap(base, 1_000), base);
        assert_eq!(reconcile_gap(base, 10_000), Duration::from_secs(20));
    }
}
