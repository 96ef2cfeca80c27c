//! In: every TCP port the program listens on inside its namespace becomes a
//! socket of its instance in the run directory, forwarded to that port.
//!
//! The namespace's listening sockets are asked of the kernel on every tick
//! ([`Diag`], cheap); only when they changed is the process tree asked
//! which of them are the program's (the socket inodes its processes hold;
//! init's own listeners forward out of the namespace). The first port
//! gets the instance's primary socket, later ones `{app}_{instance}_{port}`,
//! as the shim names them. Each socket is claimed as the contract says (its
//! lock held for its life, bound 0600, then its sidecar of kind `netns`),
//! and its files go when the program stops listening there or init ends.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use agentfs_contract::sidecar::{self, Kind, Sidecar};
use agentfs_contract::{layout, liveness, naming};

use super::diag::Diag;
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
    /// Asks the namespace's listening sockets.
    diag: Diag,
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
    pub fn new(owner: Owner, init_pid: u32, diag: Diag) -> Inbound {
        Inbound {
            owner,
            init_pid,
            diag,
            table: Vec::new(),
            served: BTreeMap::new(),
        }
    }

    /// One look: sockets made for new ports, removed for ports gone.
    pub fn poll(&mut self) {
        let Ok(mut table) = self.diag.listeners() else {
            return;
        };
        table.sort();
        if table == self.table {
            return;
        }
        self.table = table;
        let programs = program_sockets(self.init_pid);
        let mut ports: BTreeMap<u16, SocketAddr> = BTreeMap::new();
        for (addr, inode) in &self.table {
            if programs.contains(inode) {
                ports.entry(addr.port()).or_insert(*addr);
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

/// The socket inodes the program's processes hold: every process below
/// init, not init itself.
fn program_sockets(init_pid: u32) -> HashSet<u64> {
    agentfs_procs::descendants(init_pid)
        .into_iter()
        .filter(|pid| *pid != init_pid)
        .flat_map(|pid| crate::app::procnet::socket_inodes(std::path::Path::new("/proc"), pid))
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
