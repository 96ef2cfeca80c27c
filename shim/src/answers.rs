//! Keeping the illusion: what getsockname, getpeername, accept and socket
//! options report for converted sockets.
//!
//! Whether an fd is ours is read from the fd itself: a Unix socket bound
//! under the run directory (accepted connections report their listener's
//! path). The registry then says what the app asked for. A process that only
//! received the socket (a Node cluster worker, a spawned worker) learns that
//! from the sidecar.
//!
//! Every answer is in the family of the descriptor asked about: the address
//! the app bound that descriptor to, or for an accepted connection the
//! listening descriptor it came from. Dual-stack servers bind `0.0.0.0:P` and
//! `[::]:P` to one socket, and size their buffers by the descriptor's family.
//! A process that did not bind the descriptor does not know its family; a
//! buffer sized for `sockaddr_in` then says AF_INET, anything else gets the
//! family of the address the sidecar records.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use libc::{c_int, socklen_t};

use crate::config::Config;
use crate::pass::Pass;
use crate::registry::TABLE;
use crate::sockaddr::Family;
use crate::{announce, sys};

/// One of our descriptors as the app knows it.
struct View {
    /// Its listener's index in the registry.
    listener: usize,
    /// What it asked for (for a connection, what its listening descriptor did).
    asked: SocketAddr,
    /// Its family, when this process knows it.
    family: Option<Family>,
}

impl View {
    /// The family to answer in for a caller that gave `room` bytes.
    fn family(&self, room: socklen_t) -> Family {
        self.family
            .or_else(|| Family::sized_for(room))
            .unwrap_or_else(|| Family::of(&self.asked))
    }
}

/// What the app knows `fd` as, if `fd` is one of our sockets.
fn view(config: &Config, fd: RawFd) -> Result<View, Pass> {
    let path = sys::unix_socket_path(fd).ok_or(Pass::NotOurs)?;
    if !config.owns_path(&path) {
        return Err(Pass::NotOurs);
    }
    let known = TABLE.lock().index_by_path(&path);
    let listener = match known {
        Some(index) => index,
        None => {
            let learned = announce::learn(&path).ok_or(Pass::Unknown)?;
            let mut table = TABLE.lock();
            match table.index_by_path(&path) {
                Some(index) => index,
                None => {
                    table.listeners.push(learned);
                    table.listeners.len() - 1
                }
            }
        }
    };
    let table = TABLE.lock();
    let entry = &table.listeners[listener];
    let (asked, family) = match table.accepted_family(fd, listener) {
        Some(family) => (entry.asked_in(family), Some(family)),
        None => match entry.alias(fd) {
            Some(asked) => (asked, Some(Family::of(&asked))),
            None => (entry.requested, None),
        },
    };
    Ok(View {
        listener,
        asked,
        family,
    })
}

/// Whether `fd` is a listener or connection of ours.
pub fn is_ours(config: &Config, fd: RawFd) -> bool {
    sys::unix_socket_path(fd).is_some_and(|path| config.owns_path(&path))
}

/// An address to report, and the family to report it in.
pub type Answer = (SocketAddr, Family);

/// getsockname: a listener reports what it asked for; a connection reports
/// that address with a wildcard replaced by loopback.
pub fn local_address(config: &Config, fd: RawFd, room: socklen_t) -> Result<Answer, Pass> {
    let view = view(config, fd)?;
    let family = view.family(room);
    let listening =
        sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    let local = if listening || !view.asked.ip().is_unspecified() {
        view.asked
    } else {
        family.loopback(view.asked.port())
    };
    Ok((local, family))
}

/// getpeername (and recvfrom's address): a loopback peer, with a port
/// derived from the fd so repeated calls agree.
pub fn peer_address(config: &Config, fd: RawFd, room: socklen_t) -> Result<Answer, Pass> {
    let family = view(config, fd)?.family(room);
    Ok((family.loopback(fake_peer_port(fd)), family))
}

/// accept: `connection` came from `listening`, which the app called accept
/// on. Its peer is a loopback address of the listening descriptor's family,
/// which is remembered so later calls on the connection agree.
pub fn accepted(
    config: &Config,
    listening: RawFd,
    connection: RawFd,
    room: socklen_t,
) -> Result<Answer, Pass> {
    let view = view(config, listening)?;
    let family = view.family(room);
    TABLE
        .lock()
        .remember_accepted(connection, view.listener, family);
    Ok((family.loopback(fake_peer_port(connection)), family))
}

/// accept without an address buffer: remembers the family of `connection`
/// when this process bound `listening`, without a system call (servers such
/// as Node accept every connection this way).
pub fn accepted_unasked(listening: RawFd, connection: RawFd) -> Result<(), Pass> {
    let mut table = TABLE.lock();
    let (listener, asked) = table.by_alias(listening).ok_or(Pass::NoBuffer)?;
    table.remember_accepted(connection, listener, Family::of(&asked));
    Ok(())
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
