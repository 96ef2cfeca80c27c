//! Keeping the illusion: what getsockname, getpeername, accept and socket
//! options report for converted sockets.
//!
//! Whether an fd is ours is read from the fd itself: a Unix socket bound
//! under the run directory (accepted connections report their listener's
//! path). The registry then says what the app asked for. A process that only
//! received connections (a Node cluster worker) learns that from the sidecar.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::{c_int, socklen_t};

use agentfs_contract::{naming, sidecar};

use crate::config::Config;
use crate::registry::{Listener, TABLE};
use crate::sockaddr::{self, Storage};
use crate::sys;

/// The address the app asked for on the listener `fd` belongs to (for an
/// accepted connection: its listener's), if `fd` is one of our sockets.
fn asked_address(config: &Config, fd: RawFd) -> Option<SocketAddr> {
    let path = sys::unix_socket_path(fd)?;
    if !config.owns_path(&path) {
        return None;
    }
    if let Some(listener) = TABLE.lock().by_path(&path) {
        return Some(listener.address_for(fd));
    }
    let learned = learn_from_sidecar(&path)?;
    let mut table = TABLE.lock();
    if table.by_path(&path).is_none() {
        table.listeners.push(learned);
    }
    table.by_path(&path).map(|l| l.address_for(fd))
}

fn learn_from_sidecar(path: &[u8]) -> Option<Listener> {
    let socket = Path::new(std::ffi::OsStr::from_bytes(path));
    let car = sidecar::read_file_checked(&naming::sidecar_path(socket)).ok()?;
    let ip = car.address.parse().ok()?;
    Some(Listener {
        path: path.to_vec(),
        requested: SocketAddr::new(ip, car.port),
        creator_pid: 0,
        lock_fd: -1,
        sidecar_written: true,
        aliases: Vec::new(),
        cleanup: None,
    })
}

/// Whether `fd` is a listener or connection of ours.
pub fn is_ours(config: &Config, fd: RawFd) -> bool {
    sys::unix_socket_path(fd).is_some_and(|path| config.owns_path(&path))
}

/// getsockname: a listener reports what it asked for; a connection reports
/// that address with a wildcard replaced by loopback.
pub fn local_address(config: &Config, fd: RawFd) -> Option<(Storage, socklen_t)> {
    let asked = asked_address(config, fd)?;
    let listening =
        sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    let local = if listening || !asked.ip().is_unspecified() {
        asked
    } else {
        sockaddr::loopback_like(&asked, asked.port())
    };
    Some(Storage::from_inet(&local))
}

/// getpeername (and accept's address): a loopback peer of the listener's
/// family, with a port derived from the fd so repeated calls agree.
pub fn peer_address(config: &Config, fd: RawFd) -> Option<(Storage, socklen_t)> {
    let asked = asked_address(config, fd)?;
    Some(Storage::from_inet(&sockaddr::loopback_like(
        &asked,
        fake_peer_port(fd),
    )))
}

fn fake_peer_port(fd: RawFd) -> u16 {
    const BASE: u16 = 32768;
    BASE + (fd.unsigned_abs() % 28000) as u16
}

/// Errors a Unix socket gives for TCP- or IP-level options.
pub fn is_unsupported_option_error(errno: c_int) -> bool {
    matches!(errno, libc::EOPNOTSUPP | libc::ENOPROTOOPT | libc::EINVAL) || errno == libc::ENOTSUP
}

/// Levels whose options we answer for converted sockets.
pub fn is_ip_level(level: c_int) -> bool {
    level == libc::IPPROTO_TCP || level == libc::IPPROTO_IP || level == libc::IPPROTO_IPV6
}

pub fn remember_option(fd: RawFd, level: c_int, name: c_int, value: c_int) {
    TABLE.lock().remember_option(fd, level, name, value);
}

pub fn recall_option(fd: RawFd, level: c_int, name: c_int) -> c_int {
    TABLE.lock().recall_option(fd, level, name)
}
