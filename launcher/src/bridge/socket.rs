//! One bridge socket: claimed under the contract, forwarded to a TCP target.
//!
//! [`BoundBridge::bind`] takes the `.lock` (refusing a live owner like
//! `EADDRINUSE`, replacing a stale one), binds `{stem}.sock` with mode 0600
//! and only then writes the sidecar of kind `bridge`. [`BoundBridge::serve`]
//! accepts until shutdown; each connection is one task that connects to the
//! target and copies both ways at once, so backpressure and half-close carry
//! through. A target that refuses closes the client at once: the router then
//! answers with its "not listening yet" page. Dropping the bridge removes its
//! files while the lock is still held.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentfs_contract::{layout, liveness, naming, sidecar};
use anyhow::{anyhow, bail, Context, Result};
use sidecar::{Kind, Sidecar};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;

/// A local target either accepts or refuses at once; this only guards
/// against a firewalled or wedged address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused client may keep sending before we close on it.
const DRAIN_FOR: Duration = Duration::from_secs(2);
/// Pause after a failed accept (out of descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the sidecar says about a bridge, besides its target.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub app: String,
    pub instance: String,
    /// The host the app listens on, e.g. `127.0.0.1`.
    pub address: String,
    /// The port the app listens on.
    pub port: u16,
    /// The instance's first listener: `{app}_{instance}.sock`.
    pub primary: bool,
    /// Whether the app is known to listen at the target yet (a bridge that
    /// is not is neither announced nor routed until [`TargetHandle::set`]).
    pub listening: bool,
    /// The command line recorded in the sidecar.
    pub argv: Vec<String>,
}

/// A claimed, listening bridge socket; its files go away when it drops.
pub struct BoundBridge {
    listener: UnixListener,
    target: TargetHandle,
    /// Held for the socket's lifetime; released after the files are removed.
    _lock: OwnedFd,
}

/// Changes where a serving bridge forwards new connections, and says so in
/// its sidecar.
#[derive(Clone)]
pub struct TargetHandle {
    inner: Arc<Mutex<Sidecar>>,
}

impl TargetHandle {
    pub fn socket(&self) -> PathBuf {
        self.lock().socket.clone()
    }

    /// The current target address.
    pub fn get(&self) -> SocketAddr {
        let car = self.lock();
        car.target
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], car.port)))
    }

    /// Where new connections go: nowhere while the app is not known to
    /// listen at the target (they are refused, as the router expects).
    fn current(&self) -> Option<SocketAddr> {
        let listening = self.lock().listening;
        listening.then(|| self.get())
    }

    /// Stops forwarding (the target cannot be told apart from another
    /// process's any more), or never starts, and says why in the sidecar
    /// (`not_routed`), where the router's 404 reads it.
    pub fn unset(&self, why: &str) -> Result<()> {
        let mut car = self.lock();
        if !car.listening && car.not_routed.as_deref() == Some(why) {
            return Ok(());
        }
        car.listening = false;
        car.not_routed = Some(why.to_owned());
        let path = naming::sidecar_path(&car.socket);
        car.write_atomic(&path)
            .with_context(|| format!("could not rewrite {}", path.display()))
    }

    /// Points new connections at `target`, where the app listens, and
    /// rewrites the sidecar (which now says it listens).
    pub fn set(&self, target: SocketAddr) -> Result<()> {
        let mut car = self.lock();
        car.listening = true;
        car.not_routed = None;
        car.target = Some(target.to_string());
        car.port = target.port();
        car.address = target.ip().to_string();
        let path = naming::sidecar_path(&car.socket);
        car.write_atomic(&path)
            .with_context(|| format!("could not rewrite {}", path.display()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sidecar> {
        // A poisoned lock only means a panic elsewhere; the data is still whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BoundBridge {
    /// Claims and binds the socket for `endpoint` in `run_dir` (created
    /// private if missing), then writes its sidecar. Needs a tokio runtime.
    pub fn bind(run_dir: &Path, endpoint: &Endpoint, target: SocketAddr) -> Result<BoundBridge> {
        layout::ensure_private_dir(run_dir)?;
        let port = (!endpoint.primary).then_some(endpoint.port);
        let socket = naming::socket_path(run_dir, &endpoint.app, &endpoint.instance, port)?;
        let lock_path = naming::lock_path(&socket);
        let lock = liveness::try_acquire(&lock_path)
            .with_context(|| format!("could not lock {}", lock_path.display()))?
            .ok_or_else(|| {
                anyhow!(
                    "{} is already served by a live process (app {:?}, instance {:?}): \
                     stop it or choose another --name/--instance",
                    socket.display(),
                    endpoint.app,
                    endpoint.instance
                )
            })?;
        // We hold the lock, so whatever files are there are stale.
        let _ = std::fs::remove_file(naming::sidecar_path(&socket));
        let _ = std::fs::remove_file(&socket);
        let listener = bind_private(&socket)?;
        let car = sidecar_for(endpoint, &socket, target)?;
        let bridge = BoundBridge {
            listener,
            target: TargetHandle {
                inner: Arc::new(Mutex::new(car)),
            },
            _lock: lock,
        };
        let car = bridge.target.lock().clone();
        car.write_atomic(&naming::sidecar_path(&socket))
            .with_context(|| format!("could not write the sidecar of {}", socket.display()))?;
        Ok(bridge)
    }

    pub fn socket(&self) -> PathBuf {
        self.target.socket()
    }

    pub fn target_handle(&self) -> TargetHandle {
        self.target.clone()
    }

    /// Accepts and forwards until `shutdown` completes.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = self.listener.accept() => match accepted {
                    Ok((client, _)) => match self.target.current() {
                        Some(target) => {
                            tokio::spawn(forward(client, target));
                        }
                        None => {
                            tokio::spawn(refuse(client));
                        }
                    },
                    Err(err) => {
                        tracing::warn!("accept on {} failed: {err}", self.socket().display());
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
    }
}

/// A shutdown for [`BoundBridge::serve`] that many bridges share: done once
/// `stopped` says stop.
pub(crate) async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

impl Drop for BoundBridge {
    fn drop(&mut self) {
        // The lock field drops after this body: the files go first.
        liveness::remove_entry_files(&self.target.socket());
    }
}

/// Binds a Unix socket and makes it 0600 before anyone is told about it
/// (the run directory is 0700, so nobody else could reach it meanwhile).
fn bind_private(socket: &Path) -> Result<UnixListener> {
    let std_listener = std::os::unix::net::UnixListener::bind(socket)
        .with_context(|| format!("could not bind {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("could not chmod {}", socket.display()))?;
    std_listener.set_nonblocking(true)?;
    UnixListener::from_std(std_listener).context("could not register the socket with tokio")
}

fn sidecar_for(endpoint: &Endpoint, socket: &Path, target: SocketAddr) -> Result<Sidecar> {
    if !naming::is_label(&endpoint.app) || !naming::is_label(&endpoint.instance) {
        bail!(
            "app {:?} and instance {:?} must be DNS labels (lowercase letters, digits, '-')",
            endpoint.app,
            endpoint.instance
        );
    }
    Ok(Sidecar {
        version: sidecar::VERSION,
        kind: Kind::Bridge,
        app: endpoint.app.clone(),
        instance: endpoint.instance.clone(),
        pid: std::process::id(),
        socket: socket.to_owned(),
        address: endpoint.address.clone(),
        port: endpoint.port,
        primary: endpoint.primary,
        listening: endpoint.listening,
        hostname: naming::instance_hostname(&endpoint.app, &endpoint.instance),
        argv: endpoint.argv.clone(),
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        started_at: sidecar::now_rfc3339(),
        target: Some(target.to_string()),
        not_routed: None,
    })
}

/// One connection: connect to the target, then copy both ways until both
/// sides are done. Any failure just closes both ends.
async fn forward(mut client: UnixStream, target: SocketAddr) {
    let upstream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
    let Ok(Ok(mut upstream)) = upstream else {
        tracing::debug!("{target} is not accepting: closing the client");
        refuse(client).await;
        return;
    };
    let _ = upstream.set_nodelay(true);
    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!("connection to {target} ended: {err}");
    }
}

/// Ends a connection the target refused: EOF to the client at once, then
/// what it already sent is read and dropped, because closing a Unix socket
/// with unread data resets the peer, and a reset reads as "the app failed"
/// where a clean EOF reads as "not listening yet".
async fn refuse(mut client: UnixStream) {
    let _ = client.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
