//! In: every TCP port the program listens on inside its namespace becomes a
//! socket of its instance in the run directory, forwarded to that port.
//!
//! The namespace's `/proc/net/tcp{,6}` is read on every tick (a few hundred
//! bytes); only when its listening sockets changed is the process tree
//! asked which of them are the program's ([`procnet::tree_listeners`] from
//! init down, init's own excluded): pasta also listens in the namespace,
//! for the host's ports, and those are not the program's. The first port
//! gets the instance's primary socket, later ones `{app}_{instance}_{port}`,
//! as the shim names them. Each socket is claimed as the contract says (its
//! lock held for its life, bound 0600, then its sidecar of kind `netns`),
//! and its files go when the program stops listening there or init ends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use agentfs_contract::sidecar::{self, Kind, Sidecar};
use agentfs_contract::{layout, liveness, naming};

use super::forward;
use crate::app::procnet;

/// Whose sockets these are, as the sidecars say.
#[derive(Clone, Debug)]
pub struct Owner {
    pub app: String,
    pub instance: String,
    pub run_dir: PathBuf,
    /// The wrap, which `stop` signals and which passes it on.
    pub pid: u32,
    pub argv: Vec<String>,
}

/// The program's listeners and the sockets in front of them.
pub struct Inbound {
    owner: Owner,
    /// init's pid as the host's `/proc` numbers it: the root of the tree.
    init_pid: u32,
    /// The namespace's listening sockets at the last look.
    table: Vec<(SocketAddr, u64)>,
    served: BTreeMap<u16, Served>,
}

/// One port served: its socket's accept loop, and its files.
struct Served {
    primary: bool,
    accepting: JoinHandle<()>,
    _claim: Claim,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Inbound {
    pub fn new(owner: Owner, init_pid: u32) -> Inbound {
        Inbound {
            owner,
            init_pid,
            table: Vec::new(),
            served: BTreeMap::new(),
        }
    }

    /// One look: sockets made for new ports, removed for ports gone.
    pub fn poll(&mut self) {
        let table = namespace_listeners();
        if table == self.table {
            return;
        }
        self.table = table;
        let mut ports: BTreeMap<u16, SocketAddr> = BTreeMap::new();
        for listener in procnet::tree_listeners(self.init_pid) {
            if listener.pid != self.init_pid {
                ports.entry(listener.addr.port()).or_insert(listener.addr);
            }
        }
        self.served.retain(|port, _| ports.contains_key(port));
        for (port, addr) in ports {
            if self.served.contains_key(&port) {
                continue;
            }
            let primary = !self.served.values().any(|s| s.primary);
            match Claim::bind(&self.owner, addr, primary) {
                Ok((claim, listener)) => {
                    let target = procnet::connect_addr(addr);
                    let accepting = tokio::spawn(accept_loop(listener, target));
                    let served = Served {
                        primary,
                        accepting,
                        _claim: claim,
                    };
                    self.served.insert(port, served);
                }
                Err(err) => eprintln!("agentfs: port {port} is not routed: {err:#}"),
            }
        }
    }
}

async fn accept_loop(listener: UnixListener, target: SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(forward::to_tcp(client, target));
            }
            // Out of descriptors: pause rather than spin.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// The listening rows of this network namespace's TCP tables.
fn namespace_listeners() -> Vec<(SocketAddr, u64)> {
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| procnet::parse_listeners(&text))
        .collect()
}

/// A socket of the instance, claimed under the contract; its files are
/// removed when it drops, while its lock is still held.
struct Claim {
    socket: PathBuf,
    _lock: OwnedFd,
}

impl Drop for Claim {
    fn drop(&mut self) {
        liveness::remove_entry_files(&self.socket);
    }
}

impl Claim {
    fn bind(owner: &Owner, addr: SocketAddr, primary: bool) -> Result<(Claim, UnixListener)> {
        layout::ensure_private_dir(&owner.run_dir)?;
        let port = (!primary).then_some(addr.port());
        let socket = naming::socket_path(&owner.run_dir, &owner.app, &owner.instance, port)?;
        let lock_path = naming::lock_path(&socket);
        let lock = liveness::try_acquire(&lock_path)
            .with_context(|| format!("could not lock {}", lock_path.display()))?
            .ok_or_else(|| anyhow!("{} is served by another live process", socket.display()))?;
        // We hold the lock: whatever files are there are stale.
        let _ = std::fs::remove_file(naming::sidecar_path(&socket));
        let _ = std::fs::remove_file(&socket);
        let listener = bind_private(&socket)?;
        let claim = Claim {
            socket: socket.clone(),
            _lock: lock,
        };
        sidecar_for(owner, &socket, addr, primary)
            .write_atomic(&naming::sidecar_path(&socket))
            .with_context(|| format!("could not write the sidecar of {}", socket.display()))?;
        Ok((claim, listener))
    }
}

/// Binds and makes the socket 0600 before its sidecar tells anyone of it.
fn bind_private(socket: &Path) -> Result<UnixListener> {
    let listener = std::os::unix::net::UnixListener::bind(socket)
        .with_context(|| format!("could not bind {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(UnixListener::from_std(listener)?)
}

fn sidecar_for(owner: &Owner, socket: &Path, addr: SocketAddr, primary: bool) -> Sidecar {
    Sidecar {
        version: sidecar::VERSION,
        kind: Kind::Netns,
        app: owner.app.clone(),
        instance: owner.instance.clone(),
        pid: owner.pid,
        socket: socket.to_owned(),
        address: addr.ip().to_string(),
        port: addr.port(),
        primary,
        listening: true,
        hostname: naming::instance_hostname(&owner.app, &owner.instance),
        argv: owner.argv.clone(),
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        started_at: sidecar::now_rfc3339(),
        target: Some(procnet::connect_addr(addr).to_string()),
        not_routed: None,
    }
}
