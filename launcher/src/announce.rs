//! Announcing an instance's listeners: one stderr line each as its sidecar
//! appears in the run directory, with its URLs when a router runs.
//!
//! Like the router, this watches sidecars (not sockets): their rename into
//! place is the one event every platform's watcher reports.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use agentfs_contract::{naming, sidecar};

use crate::wrap::Instance;

/// Watches the run directory for one instance's sidecars.
pub struct Announcer {
    run_dir: PathBuf,
    app: String,
    id: String,
    router_port: Option<u16>,
    seen: HashSet<PathBuf>,
    events: mpsc::UnboundedReceiver<PathBuf>,
    _watcher: notify::RecommendedWatcher,
}

impl Announcer {
    /// Starts watching; call before the child starts so no listener is missed.
    pub fn start(instance: &Instance, router_port: Option<u16>) -> Result<Announcer> {
        let (sender, events) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Reading a sidecar is itself an event (inotify reports opens
                // and closes): reacting to those would read again, forever.
                if let Some(event) = event.ok().filter(|e| !is_access(&e.kind)) {
                    for path in event.paths {
                        let _ = sender.send(path);
                    }
                }
            })
            .context("could not start watching the run directory")?;
        watcher
            .watch(&instance.run_dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("could not watch {}", instance.run_dir.display()))?;
        Ok(Announcer {
            run_dir: instance.run_dir.clone(),
            app: instance.app.clone(),
            id: instance.id.clone(),
            router_port,
            seen: HashSet::new(),
            events,
            _watcher: watcher,
        })
    }

    /// Handles the next watcher event; pending forever once the watcher stops.
    pub async fn next(&mut self) {
        match self.events.recv().await {
            Some(path) => self.consider(&path),
            None => std::future::pending().await,
        }
    }

    fn consider(&mut self, path: &Path) {
        let is_sidecar = path
            .extension()
            .is_some_and(|ext| ext == naming::SIDECAR_EXT)
            && !path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if !is_sidecar || self.seen.contains(path) {
            return;
        }
        let Ok(car) = sidecar::read_checked(path, &self.run_dir) else {
            return;
        };
        if car.app != self.app || car.instance != self.id {
            return;
        }
        self.seen.insert(path.to_owned());
        eprintln!("agentfs: {}", describe(&car, self.router_port));
    }
}

/// Whether an event only says a file was opened or read, which changes nothing.
fn is_access(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    matches!(kind, EventKind::Access(access) if *access != AccessKind::Close(AccessMode::Write))
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

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};

    #[test]
    fn reading_a_sidecar_is_no_event_but_writing_one_is() {
        assert!(is_access(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(is_access(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_access(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!is_access(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(!is_access(&EventKind::Create(CreateKind::File)));
    }
}
