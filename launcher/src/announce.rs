//! Announcing an instance's listeners: one stderr line each as it becomes
//! routable, with its URLs when a router runs.
//!
//! Like the router, this reads the run directory through the contract's
//! reader and wakes on the router's watch of it: file events name the
//! sidecars to read again, so each wrap does work only for what changed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use agentfs_contract::rundir::{Entry, Reader};
use agentfs_contract::sidecar::Sidecar;
use agentfs_contract::urls;
use agentfs_router::watch::{self, Changes, Todo};

use crate::instance::Instance;

/// Watches the run directory for one instance's listeners.
pub struct Announcer {
    reader: Reader,
    app: String,
    id: String,
    router_port: Option<u16>,
    announced: HashSet<PathBuf>,
    changes: Arc<Changes>,
    _watcher: notify::RecommendedWatcher,
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
        })
    }

    /// Waits for the run directory to change, then announces what is new.
    pub async fn next(&mut self) {
        self.changes.wait().await;
        let entries: Vec<Entry> = match self.changes.take() {
            Todo::Nothing => Vec::new(),
            Todo::Sidecars(paths) => paths
                .iter()
                .filter_map(|path| self.reader.read(path).ok().flatten()?.ok())
                .collect(),
            Todo::All => self
                .reader
                .scan()
                .map(|scan| scan.entries)
                .unwrap_or_default(),
        };
        for entry in entries {
            self.announce(&entry);
        }
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
