//! Keeping the illusion: what getsockname, getpeername, accept and socket
//! options report for converted sockets and wired client connections.
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
//!
//! A wired client connection ([`crate::connect`]) is an unnamed Unix socket
//! whose peer is a socket in the run directory, and which this process
//! remembers wiring to that socket: it reports the address the app connected
//! to as its peer, and a loopback address of the same family with its own
//! fake port as its own. A Unix socket the app connected by itself is not
//! remembered, and is left alone.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use libc::{c_int, socklen_t};

use crate::config::Config;
use crate::pass::Pass;
use crate::registry::TABLE;
use crate::sockaddr::Family;
use crate::{announce, sys};

/// One of our descriptors as the app knows it.
struct View {
    /// Its listener's id in the registry.
    listener: u32,
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
    if let Some(view) = view_known(&path, fd) {
        return Ok(view);
    }
    // Read without the table lock held: reading a file may take a while.
    let learned = announce::learn(&path).ok_or(Pass::Unknown)?;
    {
        let mut table = TABLE.lock();
        if table.by_path(&path).is_none() {
            table.add(learned);
        }
    }
    view_known(&path, fd).ok_or(Pass::Unknown)
}

/// [`view`] of `fd`, bound to `path`, when the registry knows `path`.
fn view_known(path: &[u8], fd: RawFd) -> Option<View> {
    let table = TABLE.lock();
    let entry = table.by_path(path)?;
    let (asked, family) = match table.accepted_family(fd, entry.id) {
        Some(family) => (entry.asked_in(family), Some(family)),
        None => match entry.alias(fd) {
            Some(asked) => (asked, Some(Family::of(&asked))),
            None => (entry.requested, None),
        },
    };
    Some(View {
        listener: entry.id,
        asked,
        family,
    })
}

/// Whether `fd` is a listener or connection of ours, or a wired client.
pub fn is_ours(config: &Config, fd: RawFd) -> bool {
    sys::unix_socket_path(fd).is_some_and(|path| config.owns_path(&path)) || is_wired(config, fd)
}

/// What the app connected the wired client `fd` to, and the local port it
/// was given.
fn wired(config: &Config, fd: RawFd) -> Result<(SocketAddr, u16), Pass> {
    let peer = sys::unix_peer_path(fd).ok_or(Pass::NotOurs)?;
    if !config.owns_path(&peer) && !config.is_router_door(&peer) {
        return Err(Pass::NotOurs);
    }
    TABLE
        .lock()
        .wired(fd, &peer)
        .map(|wired| (wired.connected_to, wired.local_port))
        .ok_or(Pass::NotOurs)
}

/// Whether `fd` is a client connection this process wired.
pub fn is_wired(config: &Config, fd: RawFd) -> bool {
    wired(config, fd).is_ok()
}

/// getsockname of a wired client: loopback in the family it connected
/// with (v4-mapped when it connected to a v4-mapped address).
fn wired_local(config: &Config, fd: RawFd) -> Result<Answer, Pass> {
    let (connected_to, port) = wired(config, fd)?;
    let over_v4 = match connected_to.ip() {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    };
    let local = if over_v4 {
        Family::V4.loopback(port)
    } else {
        Family::V6.loopback(port)
    };
    Ok((local, Family::of(&connected_to)))
}

/// getpeername of a wired client: what it connected to.
fn wired_peer(config: &Config, fd: RawFd) -> Result<Answer, Pass> {
    let (connected_to, _) = wired(config, fd)?;
    Ok((connected_to, Family::of(&connected_to)))
}

/// An address to report, and the family to report it in.
pub type Answer = (SocketAddr, Family);

/// getsockname: a listener reports what it asked for; a connection reports
/// that address with a wildcard replaced by loopback; a wired client, a
/// loopback address with its own port.
pub fn local_address(config: &Config, fd: RawFd, room: socklen_t) -> Result<Answer, Pass> {
    let view = match view(config, fd) {
        Err(Pass::NotOurs) => return wired_local(config, fd),
        view => view?,
    };
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

/// getpeername (and recvfrom's address): for an accepted connection, a
/// loopback peer with a port derived from the fd so repeated calls agree;
/// for a wired client, the address it connected to.
pub fn peer_address(config: &Config, fd: RawFd, room: socklen_t) -> Result<Answer, Pass> {
    let family = match view(config, fd) {
        Err(Pass::NotOurs) => return wired_peer(config, fd),
        view => view?.family(room),
    };
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

/// What an option reads on `fd`: what the app set, else what a new TCP socket says.
pub fn recall_option(fd: RawFd, level: c_int, name: c_int) -> c_int {
    let set = TABLE.lock().recall_option(fd, level, name);
    set.unwrap_or_else(|| tcp_default(level, name))
}

/// The TCP options a wired socket carries over from the TCP socket it
/// replaces, and whose defaults [`tcp_default`] knows.
#[cfg(target_os = "linux")]
pub const TCP_OPTIONS: [c_int; 4] = [
    libc::TCP_NODELAY,
    libc::TCP_KEEPIDLE,
    libc::TCP_KEEPINTVL,
    libc::TCP_KEEPCNT,
];
#[cfg(not(target_os = "linux"))]
pub const TCP_OPTIONS: [c_int; 4] = [
    libc::TCP_NODELAY,
    libc::TCP_KEEPALIVE,
    libc::TCP_KEEPINTVL,
    libc::TCP_KEEPCNT,
];

/// Each of [`TCP_OPTIONS`] as a new TCP socket reports it, or -1 until read.
static TCP_DEFAULTS: [AtomicI32; 4] = [const { AtomicI32::new(-1) }; 4];

/// What option `name` at `level` reads on a new TCP socket: the keepalive
/// timings are not 0 (the system's settings), everything else is taken as
/// 0. Read once per process from a TCP socket made for it; threads that
/// race both read the same values.
pub fn tcp_default(level: c_int, name: c_int) -> c_int {
    let Some(index) = TCP_OPTIONS.iter().position(|&n| n == name) else {
        return 0;
    };
    if level != libc::IPPROTO_TCP {
        return 0;
    }
    let known = TCP_DEFAULTS[index].load(Ordering::Relaxed);
    if known >= 0 {
        return known;
    }
    let Ok(probe) = sys::tcp_socket() else {
        return 0;
    };
    for (slot, name) in TCP_DEFAULTS.iter().zip(TCP_OPTIONS) {
        let value = sys::getsockopt_int(probe, libc::IPPROTO_TCP, name).unwrap_or(0);
        slot.store(value.max(0), Ordering::Relaxed);
    }
    sys::close(probe);
    TCP_DEFAULTS[index].load(Ordering::Relaxed)
}
