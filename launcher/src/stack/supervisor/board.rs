//! The supervisor's view of its stack: one [`ServiceStatus`] per service,
//! shared by the services' tasks. Every change is written to `state.json`
//! at once (atomically) and announced on a watch channel, which is how a
//! service waiting for what it needs learns that it became ready.

use std::sync::Mutex;

use tokio::sync::watch;

use agentfs_contract::naming;
use agentfs_contract::sidecar::now_rfc3339;
use agentfs_contract::urls;

use crate::stack::state::{ServiceStatus, StackDir, StackStatus, State};

/// The detail of a service no `up` has asked for yet.
pub const NOT_STARTED: &str = "not started";

pub struct Board {
    status: Mutex<StackStatus>,
    dir: StackDir,
    changed: watch::Sender<u64>,
}

impl Board {
    pub fn new(status: StackStatus, dir: StackDir) -> Board {
        let board = Board {
            status: Mutex::new(status),
            dir,
            changed: watch::channel(0).0,
        };
        board.publish(&board.snapshot());
        board
    }

    /// A service not started yet, as the board first shows it.
    pub fn fresh(name: &str, instance: &str, router_port: u16) -> ServiceStatus {
        ServiceStatus {
            name: name.to_owned(),
            state: State::Stopped,
            detail: NOT_STARTED.to_owned(),
            pid: None,
            url: urls::url(&naming::instance_hostname(name, instance), router_port),
            restarts: 0,
            last_exit: None,
            since: now_rfc3339(),
            last_lines: Vec::new(),
        }
    }

    pub fn snapshot(&self) -> StackStatus {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Adds a service the stack file gained since the supervisor started.
    pub fn add(&self, service: ServiceStatus) {
        self.change(|status| {
            if status.service(&service.name).is_none() {
                status.services.push(service);
            }
        });
    }

    /// Changes one service's status (`since` moves when its state does).
    pub fn update(&self, name: &str, change: impl FnOnce(&mut ServiceStatus)) {
        self.change(|status| {
            if let Some(service) = status.services.iter_mut().find(|s| s.name == name) {
                let was = service.state;
                change(service);
                if service.state != was {
                    service.since = now_rfc3339();
                }
                if service.state != State::Failed {
                    service.last_lines.clear();
                }
            }
        });
    }

    /// Sets a service's state and detail.
    pub fn set(&self, name: &str, state: State, detail: impl Into<String>) {
        let detail = detail.into();
        self.update(name, |s| {
            s.state = state;
            s.detail = detail;
        });
    }

    pub fn state_of(&self, name: &str) -> Option<State> {
        self.snapshot().service(name).map(|s| s.state)
    }

    fn change(&self, change: impl FnOnce(&mut StackStatus)) {
        let snapshot = {
            let mut status = self
                .status
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            change(&mut status);
            status.clone()
        };
        self.publish(&snapshot);
    }

    fn publish(&self, snapshot: &StackStatus) {
        if let Err(err) = self.dir.write_state(snapshot) {
            self.dir.say(&format!("cannot write state.json: {err}"));
        }
        self.changed.send_modify(|n| *n += 1);
    }
}
