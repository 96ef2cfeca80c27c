//! connect: wiring a client to a listener of its own instance.
//!
//! A connect from a wrapped process to a loopback (or unspecified) address
//! and port P, on a TCP socket, goes to the socket that P's listener of the
//! process's instance has in the run directory ([`crate::scope`] says
//! which), when there is one. The descriptor becomes a Unix socket connected
//! to it, at the same number, with the app's O_NONBLOCK, FD_CLOEXEC, socket
//! options and epoll registrations, and [`crate::answers`] keeps the
//! illusion of a TCP connection (addresses, TCP options). Anything else goes
//! to the kernel untouched, and so does a connect whose socket refuses (its
//! owner is gone): a server on the host keeps working, and a port nobody
//! listens on still refuses.
//!
//! A connect to the router's port (`AGENTFS_ROUTER_PORT`) that no listener
//! of the instance serves goes to the router's door for instances,
//! `router-clients.sock`, whose first line says the caller's instance: so
//! `APP.localhost` through the router reaches the instance's own APP, and a
//! header a browser could send is never what decides it.
//!
//! A non-blocking connect to a Unix socket completes at once, or on Linux
//! fails with EAGAIN when the listener's backlog is full: an error TCP never
//! gives, which event loops treat as fatal. Then the connect is made again,
//! blocking, for up to [`BACKLOG_WAIT`]; it returns as soon as the server
//! accepts. On macOS a full backlog refuses, and the refusal passes through.
//! See docs/design.md.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libc::c_int;

use crate::config::{self, Config};
use crate::pass::{Outcome, Pass};
use crate::registry::TABLE;
use crate::{answers, scope, sockaddr, sys};

/// How long a connect waits for room in a listener's full backlog before
/// it fails with ETIMEDOUT, as a TCP connect whose SYNs go unanswered would.
pub const BACKLOG_WAIT: Duration = Duration::from_secs(5);

/// Whether a connect to `ip` means this machine: loopback, or unspecified
/// (Linux connects `0.0.0.0` and `::` to the local host), also v4-mapped.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_loopback() || v4.is_unspecified(),
            None => v6.is_loopback() || v6.is_unspecified(),
        },
    }
}

/// connect(`fd`, `dest`), `dest` being local: wires it, or says why not.
pub fn connect(config: &Config, fd: RawFd, dest: SocketAddr) -> Outcome {
    let sockets = match scope::sockets_for(config, dest.port()) {
        Ok(sockets) => sockets,
        Err(Pass::NoListener)
            if config
                .router
                .as_ref()
                .is_some_and(|r| r.port == dest.port()) =>
        {
            return connect_router(config, fd, dest);
        }
        Err(why) => return Outcome::Pass(why),
    };
    if let Err(outcome) = check_socket(config, fd, dest) {
        return outcome;
    }
    for socket in &sockets {
        match open_connection(socket) {
            Ok(unix) => return place(fd, unix, socket, dest),
            Err(Attempt::Refused) => continue,
            Err(Attempt::Failed(errno)) => return Outcome::Failed(errno),
        }
    }
    Outcome::Pass(Pass::Refused)
}

/// connect(`fd`, the router's port): to the router's door, saying whose
/// connection it is. When the door refuses (an older router, or none), the
/// kernel connects to the router's TCP port as before.
fn connect_router(config: &Config, fd: RawFd, dest: SocketAddr) -> Outcome {
    let Some(door) = &config.router else {
        return Outcome::Pass(Pass::NoListener);
    };
    if let Err(outcome) = check_socket(config, fd, dest) {
        return outcome;
    }
    let unix = match open_connection(&door.socket) {
        Ok(unix) => unix,
        Err(Attempt::Refused) => return Outcome::Pass(Pass::Refused),
        Err(Attempt::Failed(errno)) => return Outcome::Failed(errno),
    };
    // A new connection's send buffer is empty: the line goes at once.
    if sys::send_all(unix, &door.preamble).is_err() {
        sys::close(unix);
        return Outcome::Pass(Pass::Refused);
    }
    place(fd, unix, &door.socket, dest)
}

/// Whether `fd` is a fresh TCP socket of `dest`'s family. A descriptor
/// already wired (a second connect on it) is connected, as TCP would say.
fn check_socket(config: &Config, fd: RawFd, dest: SocketAddr) -> Result<(), Outcome> {
    match sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) {
        Ok(libc::SOCK_STREAM) => {}
        _ => return Err(Outcome::Pass(Pass::NotStream)),
    }
    let (local, len) = sys::local_address(fd).ok_or(Outcome::Pass(Pass::NotIpSocket))?;
    if local.family() == libc::AF_UNIX && answers::is_wired(config, fd) {
        return Err(Outcome::Failed(libc::EISCONN));
    }
    // SAFETY: the storage holds len bytes written by getsockname.
    let local = unsafe { sockaddr::read_inet(local.as_ptr(), len) };
    match local {
        Some(local) if sockaddr::Family::of(&local) != sockaddr::Family::of(&dest) => {
            Err(Outcome::Pass(Pass::NotIpSocket))
        }
        // A port means bound, or connected or connecting already.
        Some(local) if local.port() != 0 => Err(Outcome::Pass(Pass::AlreadyConnected)),
        Some(_) => Ok(()),
        None => Err(Outcome::Pass(Pass::NotIpSocket)),
    }
}

/// Why a Unix connect did not give a connected socket.
enum Attempt {
    /// Nobody accepts there (its owner is gone): try the next, or the kernel.
    Refused,
    /// The connect fails with this errno, as a TCP one could.
    Failed(c_int),
}

fn errno_of(error: std::io::Error) -> c_int {
    error.raw_os_error().unwrap_or(libc::EIO)
}

/// A new Unix socket connected to `path` (close-on-exec, non-blocking
/// unless it had to wait for room in the backlog).
fn open_connection(path: &[u8]) -> Result<RawFd, Attempt> {
    let unix = sys::unix_stream_socket_nonblocking().map_err(|e| Attempt::Failed(errno_of(e)))?;
    let result = match sys::connect_unix(unix, path).map_err(errno_of) {
        Ok(()) => Ok(()),
        Err(libc::EAGAIN) => wait_for_room(unix, path),
        Err(_) => Err(Attempt::Refused),
    };
    match result {
        Ok(()) => Ok(unix),
        Err(attempt) => {
            sys::close(unix);
            Err(attempt)
        }
    }
}

/// Connects again, blocking until the listener's full backlog has room
/// (the server accepted) or [`BACKLOG_WAIT`] passed.
fn wait_for_room(unix: RawFd, path: &[u8]) -> Result<(), Attempt> {
    let deadline = Instant::now() + BACKLOG_WAIT;
    sys::set_nonblocking(unix, false).map_err(|e| Attempt::Failed(errno_of(e)))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Attempt::Failed(libc::ETIMEDOUT));
        }
        sys::set_send_timeout(unix, left).map_err(|e| Attempt::Failed(errno_of(e)))?;
        match sys::connect_unix(unix, path).map_err(errno_of) {
            Ok(()) => return Ok(()),
            Err(libc::EINTR) => continue,
            Err(libc::EAGAIN) => return Err(Attempt::Failed(libc::ETIMEDOUT)),
            Err(_) => return Err(Attempt::Refused),
        }
    }
}

/// SOL_SOCKET options a client may set before connect that must hold on
/// the wired socket. Buffer sizes are left at the Unix socket's own, larger
/// defaults: copying TCP's would slow large transfers.
const COPIED_OPTIONS: [c_int; 4] = [
    libc::SO_KEEPALIVE,
    libc::SO_LINGER,
    libc::SO_RCVTIMEO,
    libc::SO_SNDTIMEO,
];

/// Puts the connected Unix socket `unix` at the app's `fd` and remembers
/// what the app connected to.
fn place(fd: RawFd, unix: RawFd, socket: &[u8], dest: SocketAddr) -> Outcome {
    let placed = (|| {
        for name in COPIED_OPTIONS {
            sys::copy_option(fd, unix, libc::SOL_SOCKET, name);
        }
        // TCP options the app set before connect read back the same after.
        let tcp_options = answers::TCP_OPTIONS.map(|name| {
            let value = sys::getsockopt_int(fd, libc::IPPROTO_TCP, name).unwrap_or(0);
            (name, value)
        });
        let nonblocking = sys::status_flags(fd)? & libc::O_NONBLOCK != 0;
        sys::set_nonblocking(unix, nonblocking)?;
        let cloexec = sys::fd_flags(fd)? & libc::FD_CLOEXEC != 0;
        #[cfg(target_os = "linux")]
        let registrations = crate::epoll::registrations_of_known(fd);
        sys::dup_onto(unix, fd, cloexec)?;
        #[cfg(target_os = "linux")]
        crate::epoll::restore(fd, &registrations);
        Ok::<_, std::io::Error>(tcp_options)
    })();
    sys::close(unix);
    let tcp_options = match placed {
        Ok(options) => options,
        Err(e) => return Outcome::Failed(errno_of(e)),
    };
    TABLE
        .lock()
        .remember_wired(fd, socket.to_vec(), peer_of(dest));
    for (name, value) in tcp_options {
        if value != answers::tcp_default(libc::IPPROTO_TCP, name) {
            answers::remember_option(fd, libc::IPPROTO_TCP, name, value);
        }
    }
    log_first_wiring(fd, dest, socket);
    Outcome::Done
}

/// The peer a TCP connection to `dest` reports: the address itself, or
/// for an unspecified one the loopback address the kernel would connect to.
fn peer_of(dest: SocketAddr) -> SocketAddr {
    let ip = match dest.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_unspecified()) => {
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped())
        }
        ip => ip,
    };
    SocketAddr::new(ip, dest.port())
}

/// Says under `AGENTFS_LOG` that connects are wired, once per process.
fn log_first_wiring(fd: RawFd, dest: SocketAddr, socket: &[u8]) {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    if config::logging() && !LOGGED.swap(true, Ordering::Relaxed) {
        config::log(format_args!(
            "connect({fd}) to {dest} wired to {} (further wired connects are not logged)",
            String::from_utf8_lossy(socket)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_unspecified_are_local_in_every_form() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:0.0.0.0",
        ] {
            assert!(is_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "192.0.2.2",
            "10.0.0.1",
            "fd00::2",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_local(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn an_unspecified_destination_reports_a_loopback_peer() {
        for (dest, peer) in [
            ("0.0.0.0:80", "127.0.0.1:80"),
            ("[::]:80", "[::1]:80"),
            ("[::ffff:0.0.0.0]:80", "[::ffff:127.0.0.1]:80"),
            ("127.0.0.2:80", "127.0.0.2:80"),
            ("[::1]:80", "[::1]:80"),
        ] {
            assert_eq!(
                peer_of(dest.parse().unwrap()),
                peer.parse::<SocketAddr>().unwrap()
            );
        }
    }
}
