//! Out to the instance: every port the instance serves in its other apps is
//! listened on at `127.0.0.1` and `::1` inside the namespace and forwarded
//! to that listener's socket, so the program's `localhost:8000` is its
//! instance's API, as a shimmed program's connect is wired.
//!
//! Kept current from the run directory on every tick: a port whose last
//! listener went away is closed, a new one opened. Liveness is the
//! listener's lock (held by its live owner); the run-directory reader's
//! "still accepts" test reads `/proc/net/unix`, which from inside this
//! namespace lists none of the host's sockets. A port the program itself
//! (or pasta, for a port the host listens on) holds already cannot be
//! bound here; it is tried again on later ticks.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use agentfs_contract::liveness;
use agentfs_contract::sidecar::{Kind, Sidecar};

use super::forward;

/// Which socket each forwarded port leads to now.
type Targets = Arc<Mutex<BTreeMap<u16, PathBuf>>>;

pub struct Outbound {
    app: String,
    instance: String,
    targets: Targets,
    /// Accept loops by port, one per loopback address bound.
    listening: BTreeMap<u16, Vec<JoinHandle<()>>>,
}

impl Outbound {
    pub fn new(app: String, instance: String) -> Outbound {
        Outbound {
            app,
            instance,
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

    /// The instance's live listeners by port, not counting this program's own.
    fn wanted(&self, sidecars: &[Arc<Sidecar>]) -> BTreeMap<u16, PathBuf> {
        let mut wanted = BTreeMap::new();
        for car in sidecars {
            let ours = car.app == self.app && car.kind == Kind::Netns;
            if car.instance != self.instance || ours || car.kind == Kind::Manual || !car.listening
            {
                continue;
            }
            if liveness::socket_is_live(&car.socket) {
                wanted.entry(car.port).or_insert_with(|| car.socket.clone());
            }
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
            .map(|listener| tokio::spawn(accept_loop(listener, port, Arc::clone(&self.targets))))
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

async fn accept_loop(listener: TcpListener, port: u16, targets: Targets) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                let target = targets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&port)
                    .cloned();
                if let Some(socket) = target {
                    tokio::spawn(forward::to_unix(client, socket));
                }
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}
