//! Announcing an instance's listeners: one stderr line each as its sidecar
//! appears in the run directory, with its URLs when a router runs.
//!
//! Like the router, this watches sidecars (not sockets): their rename into
//! place is the one event every platform's watcher reports.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use agentfs_contract::{naming, sidecar};
use agentfs_router::discovery;

use crate::wrap::Instance;

/// Watches the run directory for one instance's sidecars. Events are only
/// hints to look again: they coalesce in a [`Notify`], so a storm of them
/// costs one scan and no memory, and none can be lost.
pub struct Announcer {
    run_dir: PathBuf,
    app: String,
    id: String,
    router_port: Option<u16>,
    seen: HashSet<PathBuf>,
    changed: Arc<Notify>,
    _watcher: notify::RecommendedWatcher,
}

impl Announcer {
    /// Starts watching; call before the child starts so no listener is missed.
    pub fn start(instance: &Instance, router_port: Option<u16>) -> Result<Announcer> {
        let changed = Arc::new(Notify::new());
        let poke = Arc::clone(&changed);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Reading a sidecar is itself an event (inotify reports opens
                // and closes): reacting to those would read again, forever.
                if event.map_or(true, |e| discovery::is_hint(&e)) {
                    poke.notify_one();
                }
            })
            .context("could not start watching the run directory")?;
        watcher
            .watch(&instance.run_dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("could not watch {}", instance.run_dir.display()))?;
        // One look at what is already there (a bridge writes its socket first).
        changed.notify_one();
        Ok(Announcer {
            run_dir: instance.run_dir.clone(),
            app: instance.app.clone(),
            id: instance.id.clone(),
            router_port,
            seen: HashSet::new(),
            changed,
            _watcher: watcher,
        })
    }

    /// Waits for the run directory to change, then announces what is new.
    pub async fn next(&mut self) {
        self.changed.notified().await;
        self.scan();
    }

    /// Prints a line for each of this instance's sidecars not seen before.
    fn scan(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.run_dir) else {
            return;
        };
        for path in entries.flatten().map(|entry| entry.path()) {
            let is_sidecar = path
                .extension()
                .is_some_and(|ext| ext == naming::SIDECAR_EXT)
                && !path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with('.'));
            if !is_sidecar || self.seen.contains(&path) {
                continue;
            }
            let Ok(car) = sidecar::read_checked(&path, &self.run_dir) else {
                continue;
            };
            if car.app == self.app && car.instance == self.id {
                eprintln!("agentfs: {}", describe(&car, self.router_port));
                self.seen.insert(path);
            }
        }
    }
}

/// `web/a1 listening on 0.0.0.0:3000 → http://web.localhost:7380 http://a1.web.localhost:7380`
pub fn describe(car: &sidecar::Sidecar, router_port: Option<u16>) -> String {
    let asked = if car.address.contains(':') {
        format!("[{}]:{}", car.address, car.port)
    } else {
        format!("{}:{}", car.address, car.port)
    };
    let head = format!("{}/{} listening on {asked}", car.app, car.instance);
    match router_port {
        Some(port) => format!("{head} → {}", urls(car, port).join(" ")),
        None => format!("{head} at {}", car.socket.display()),
    }
}

/// The URLs a router on `router_port` serves this listener at.
pub fn urls(car: &sidecar::Sidecar, router_port: u16) -> Vec<String> {
    let instance_host = naming::instance_hostname(&car.app, &car.instance);
    if car.primary {
        vec![
            format!("http://{}:{router_port}", naming::app_hostname(&car.app)),
            format!("http://{instance_host}:{router_port}"),
        ]
    } else {
        vec![format!("http://{}.{instance_host}:{router_port}", car.port)]
    }
}
