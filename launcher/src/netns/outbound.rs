//! Out of the namespace on its loopback: every port the instance serves in
//! its other apps, and every other port the host listens on (on loopback or
//! everywhere), is listened on at `127.0.0.1` and `::1` inside the
//! namespace and forwarded: an instance's port to that listener's socket
//! (so the program's `localhost:8000` is its instance's API, as a shimmed
//! program's connect is wired), a host's port through `netns-run`'s door
//! to the host's loopback (so a database on the host is reached as
//! before). The instance wins where both listen, as it does for a shimmed
//! program.
//!
//! Kept current on every tick, from the run directory and the host's
//! listening sockets (a [`Diag`] opened before init left the host's
//! network namespace; asked at most once a second): a port nobody serves
//! any more is closed, a
//! new one opened. pasta could map the host's ports itself (`-T auto`), but
//! the pasta Debian 12 ships does so only once, at start, and pasta ends on
//! the SIGTERM that tells the program to stop. An instance
//! listener's liveness is its lock (held by its live owner): the
//! run-directory reader's "still accepts" test reads `/proc/net/unix`,
//! which from inside this namespace lists none of the host's sockets. A
//! port the program itself holds cannot be bound here, and is tried again
//! on later ticks (it would have to share it, as on one machine).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use agentfs_contract::liveness;
use agentfs_contract::sidecar::{Kind, Sidecar};

use super::diag::Diag;
use super::{door, forward};

/// How often the host's listening ports are read again (pasta's own
/// `-T auto`, where it rescans, does so every second).
const HOST_EVERY: Duration = Duration::from_secs(1);

/// Where a forwarded port leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A listener of the instance.
    Socket(PathBuf),
    /// A port on the host's loopback, through `netns-run`'s door.
    Host(u16),
}

/// Where each forwarded port leads now.
type Targets = Arc<Mutex<BTreeMap<u16, Target>>>;

pub struct Outbound {
    app: String,
    instance: String,
    /// Asks the host's listening sockets (opened before init left the
    /// host's network namespace).
    host_diag: Diag,
    /// `netns-run`'s door to the host's loopback.
    door: PathBuf,
    /// The host's ports as last read, and when.
    host: (BTreeSet<u16>, Option<Instant>),
    targets: Targets,
    /// Accept loops by port, one per loopback address bound.
    listening: BTreeMap<u16, Vec<JoinHandle<()>>>,
}

impl Outbound {
    pub fn new(app: String, instance: String, host_diag: Diag, door: PathBuf) -> Outbound {
        Outbound {
            app,
            instance,
            host_diag,
            door,
            host: (BTreeSet::new(), None),
            targets: Arc::default(),
            listening: BTreeMap::new(),
        }
    }

    /// Brings the forwarded ports in line with the instance's listeners
    /// among `sidecars` (the run directory as just read).
    pub fn update(&mut self, sidecars: &[Arc<Sidecar>]) {
        let wanted = self.wanted(sidecars);
        let gone: Vec<u16> = self
            .listening
            .keys()
            .filter(|port| !wanted.contains_key(port))
            .copied()
            .collect();
        for port in gone {
            for task in self.listening.remove(&port).unwrap_or_default() {
                task.abort();
            }
        }
        for &port in wanted.keys() {
            if !self.listening.contains_key(&port) {
                let tasks = self.listen(port);
                if !tasks.is_empty() {
                    self.listening.insert(port, tasks);
                }
            }
        }
        *self.targets.lock().unwrap_or_else(|e| e.into_inner()) = wanted;
    }

    /// The instance's live listeners by port, not counting this program's
    /// own, then the host's other ports.
    fn wanted(&mut self, sidecars: &[Arc<Sidecar>]) -> BTreeMap<u16, Target> {
        let mut wanted = BTreeMap::new();
        for car in sidecars {
            let ours = car.app == self.app && car.kind == Kind::Netns;
            if car.instance != self.instance || ours || car.kind == Kind::Manual || !car.listening {
                continue;
            }
            if liveness::socket_is_live(&car.socket) {
                wanted
                    .entry(car.port)
                    .or_insert_with(|| Target::Socket(car.socket.clone()));
            }
        }
        if self.host.1.is_none_or(|at| at.elapsed() >= HOST_EVERY) {
            self.host = (host_ports(&self.host_diag), Some(Instant::now()));
        }
        for &port in &self.host.0 {
            wanted.entry(port).or_insert(Target::Host(port));
        }
        wanted
    }

    fn listen(&self, port: u16) -> Vec<JoinHandle<()>> {
        let addrs = [
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ];
        addrs
            .into_iter()
            .filter_map(|addr| std::net::TcpListener::bind(addr).ok())
            .filter_map(|listener| {
                listener.set_nonblocking(true).ok()?;
                TcpListener::from_std(listener).ok()
            })
            .map(|listener| {
                let targets = Arc::clone(&self.targets);
                tokio::spawn(accept_loop(listener, port, targets, self.door.clone()))
            })
            .collect()
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        for task in self.listening.values().flatten() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, port: u16, targets: Targets, door: PathBuf) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                let target = targets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&port)
                    .cloned();
                match target {
                    Some(Target::Socket(socket)) => {
                        tokio::spawn(forward::to_unix(client, socket));
                    }
                    Some(Target::Host(port)) => {
                        tokio::spawn(door::through(client, door.clone(), port));
                    }
                    None => {}
                }
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// The ports the host listens on where a loopback connect reaches them.
fn host_ports(diag: &Diag) -> BTreeSet<u16> {
    diag.listeners()
        .unwrap_or_default()
        .into_iter()
        .filter(|(addr, _)| addr.ip().is_loopback() || addr.ip().is_unspecified())
        .map(|(addr, _)| addr.port())
        .collect()
}
