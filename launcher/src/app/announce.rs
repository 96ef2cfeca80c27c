//! Announcing an instance's listeners: one stderr line each as it becomes
//! routable, with its URLs when a router runs; and, through the
//! [`Monitor`], what keeps one from being routable.
//!
//! Like the router, this reads the run directory through the contract's
//! reader and wakes on the router's watch of it: file events name the
//! sidecars to read again, so each wrap does work only for what changed. A
//! full look runs every [`LOOK_FAST`] while the app starts and every
//! [`LOOK_SLOW`] after (listeners mostly appear as an app starts, and a look
//! walks `/proc`), for what changes no file (a socket that starts
//! accepting, a process that listens on real TCP).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use agentfs_contract::rundir::{Entry, Reader};
use agentfs_contract::sidecar::Sidecar;
use agentfs_contract::urls;
use agentfs_router::watch::{self, Changes, Todo};

use crate::app::monitor::Monitor;
use crate::instance::Instance;

/// Full looks while the app starts, and after.
const LOOK_FAST: Duration = Duration::from_secs(1);
const LOOK_SLOW: Duration = Duration::from_secs(30);
/// How long the app counts as starting.
const STARTING_FOR: Duration = Duration::from_secs(10);

/// Watches the run directory for one instance's listeners.
pub struct Announcer {
    reader: Reader,
    app: String,
    id: String,
    router_port: Option<u16>,
    announced: HashSet<PathBuf>,
    changes: Arc<Changes>,
    _watcher: notify::RecommendedWatcher,
    monitor: Monitor,
    started: Instant,
    next_look: Instant,
}

impl Announcer {
    /// Starts watching; call before the child starts so no listener is missed.
    pub fn start(instance: &Instance, router_port: Option<u16>) -> Result<Announcer> {
        let changes = Changes::new();
        let watcher = watch::watch_dir(&instance.run_dir, Arc::clone(&changes))
            .with_context(|| format!("could not watch {}", instance.run_dir.display()))?;
        // One look at what is already there (a bridge writes its socket first).
        changes.everything();
        Ok(Announcer {
            reader: Reader::new(instance.run_dir.clone()),
            app: instance.app.clone(),
            id: instance.id.clone(),
            router_port,
            announced: HashSet::new(),
            changes,
            _watcher: watcher,
            monitor: Monitor::new(&instance.app, &instance.id),
            started: Instant::now(),
            next_look: Instant::now() + LOOK_FAST,
        })
    }

    /// Watches the app's process tree too, from `pid`; `shimmed`: its
    /// listeners should all be the shim's.
    pub fn watch(&mut self, pid: u32, shimmed: bool) {
        self.monitor.watch(pid, shimmed);
    }

    /// Waits for the run directory to change (or the next full look), then
    /// announces what is new.
    pub async fn next(&mut self) {
        let look = tokio::time::sleep_until(self.next_look.into());
        let todo = tokio::select! {
            () = self.changes.wait() => self.changes.take(),
            () = look => Todo::All,
        };
        let entries: Vec<Entry> = match todo {
            Todo::Nothing => Vec::new(),
            Todo::Sidecars(paths) => paths
                .iter()
                .filter_map(|path| self.reader.read(path).ok().flatten()?.ok())
                .collect(),
            Todo::All => self.look(),
        };
        for entry in entries {
            self.announce(&entry);
        }
    }

    /// A full look: every entry, and what the monitor finds.
    fn look(&mut self) -> Vec<Entry> {
        let now = Instant::now();
        let gap = if now.duration_since(self.started) < STARTING_FOR {
            LOOK_FAST
        } else {
            LOOK_SLOW
        };
        self.next_look = now + gap;
        let Ok(scan) = self.reader.scan() else {
            return Vec::new();
        };
        self.monitor.look(&scan);
        scan.entries
    }

    /// Prints a line for a live listener of this instance not announced before.
    fn announce(&mut self, entry: &Entry) {
        let car = &entry.sidecar;
        if entry.is_live()
            && car.app == self.app
            && car.instance == self.id
            && self.announced.insert(entry.sidecar_path.clone())
        {
            eprintln!("agentfs: {}", describe(car, self.router_port));
        }
    }
}

/// `web/a1 listening on 0.0.0.0:3000 → http://a1.web.localhost:7380 http://web.localhost:7380`
pub fn describe(car: &Sidecar, router_port: Option<u16>) -> String {
    let asked = if car.address.contains(':') {
        format!("[{}]:{}", car.address, car.port)
    } else {
        format!("{}:{}", car.address, car.port)
    };
    let head = format!("{}/{} listening on {asked}", car.app, car.instance);
    match router_port {
        Some(port) => format!("{head} → {}", urls::urls(car, port).join(" ")),
        None => format!("{head} at {}", car.socket.display()),
    }
}
