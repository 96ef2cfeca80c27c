//! Binding the router's sockets. The caller binds (so tests can use port 0);
//! these helpers bind the way the router is meant to listen.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// Binds `port` on 127.0.0.1 and [::1] (curl tries ::1 first for `.localhost`).
/// With port 0 both get the port the kernel picked for the first. A machine
/// without IPv6 loopback gets only 127.0.0.1.
pub fn bind_loopback(port: u16) -> io::Result<Vec<TcpListener>> {
    let v4 = bind_one(IpAddr::V4(Ipv4Addr::LOCALHOST), port)?;
    let port = v4.local_addr()?.port();
    let mut listeners = vec![v4];
    match bind_one(IpAddr::V6(Ipv6Addr::LOCALHOST), port) {
        Ok(v6) => listeners.push(v6),
        Err(err) if err.kind() == io::ErrorKind::AddrNotAvailable => {
            tracing::warn!(%err, "no IPv6 loopback: listening on 127.0.0.1 only");
        }
        Err(err) => return Err(err),
    }
    Ok(listeners)
}

/// Binds `port` on each address the user asked for with `--listen`.
pub fn bind_addrs(addrs: &[IpAddr], port: u16) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addrs.len());
    let mut port = port;
    for addr in addrs {
        let listener = bind_one(*addr, port)?;
        port = listener.local_addr()?.port();
        listeners.push(listener);
    }
    Ok(listeners)
}

fn bind_one(ip: IpAddr, port: u16) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("could not listen on {addr}: {e}")))
}

/// Binds the control socket at `path`, mode 0600. An existing file there is
/// replaced: call this only while holding the router lock, which proves any
/// previous router is gone.
pub fn bind_control(path: &Path) -> io::Result<UnixListener> {
    bind_private(path)
}

/// Binds the callers socket (see [`callers`](crate::callers)) at `path`,
/// as [`bind_control`] binds the control socket.
pub fn bind_callers(path: &Path) -> io::Result<UnixListener> {
    bind_private(path)
}

/// Binds a Unix socket at `path`, mode 0600, replacing whatever is there.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("could not bind {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}
