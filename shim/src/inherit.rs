//! Taking over listeners inherited across `exec`.
//!
//! A server can be handed its listening socket by the program that ran it:
//! systemd socket activation (`LISTEN_FDS`, descriptors from 3), a server
//! that binds and then re-executes itself keeping the descriptor. The
//! socket survives the exec; the liveness lock does not (its descriptor is
//! close-on-exec), and neither does the registry that made the new program
//! answer `getsockname` with the TCP address it asked for. So at start, in
//! the constructor, every descriptor that is a converted listener or bound
//! socket (a Unix socket in the run directory with no peer) is learned from
//! its sidecar, and its lock taken again when nobody holds it: the new
//! program then owns the socket's files as its binder did, and removes them
//! when it ends. When another live process holds the lock (a parent that
//! forked and executed this one), the socket is only learned.

use std::net::SocketAddr;
use std::os::fd::{IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use agentfs_contract::{liveness, naming, sidecar};

use crate::config::{self, Config};
use crate::registry::{Listener, TABLE};
use crate::{cleanup, convert, guard, sys};

/// Looks at every descriptor this process started with. Called from the
/// constructor, once the configuration is read.
pub fn adopt() {
    let Some(config) = config::active().filter(|c| c.role == config::Role::App) else {
        return;
    };
    let Some(_guard) = guard::enter() else {
        return;
    };
    for fd in open_descriptors() {
        adopt_one(config, fd);
    }
}

fn adopt_one(config: &Config, fd: RawFd) {
    let Some(path) = sys::unix_socket_path(fd) else {
        return;
    };
    // A connection (accepted, or a wired client's) has a peer; a listener
    // or a socket bound for one has none.
    if !config.owns_path(&path) || sys::has_peer(fd) {
        return;
    }
    let socket = PathBuf::from(std::ffi::OsStr::from_bytes(&path));
    let Ok(car) = sidecar::read_file_checked(&naming::sidecar_path(&socket)) else {
        return;
    };
    let Ok(ip) = car.address.parse() else {
        return;
    };
    if car.socket != socket {
        return;
    }
    let requested = SocketAddr::new(ip, car.port);
    let mut listener = Listener::learned(path, requested, car.listening);
    listener.aliases.push((fd, requested));
    listener.socket = sys::file_id(fd);
    let lock = liveness::try_acquire(&naming::lock_path(&socket))
        .ok()
        .flatten();
    if let Some(lock) = lock {
        listener.lock_fd = sys::move_high(lock.into_raw_fd());
        listener.creator_pid = sys::getpid();
        listener.cleanup = convert::cleanup_paths(&socket);
        cleanup::install_signal_handlers();
    }
    config::log(format_args!(
        "{} inherited on fd {fd} (asked for {requested}){}",
        socket.display(),
        if listener.lock_fd >= 0 {
            ", its lock taken again"
        } else {
            ""
        }
    ));
    TABLE.lock().add(listener);
}

/// The descriptors open in this process.
#[cfg(target_os = "linux")]
fn open_descriptors() -> Vec<RawFd> {
    let Ok(listing) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    listing
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// The descriptors open in this process that are sockets.
#[cfg(target_os = "macos")]
fn open_descriptors() -> Vec<RawFd> {
    agentfs_procs::sockets::socket_fds(sys::getpid())
}
