//! Bind: turning an IP stream socket into a Unix socket in the run
//! directory, with its sidecar ([`crate::announce`]) written at once.
//!
//! `bind` builds an AF_UNIX socket at the contract path, copies over what the
//! app already set on its socket, and puts it at the app's fd number with
//! `dup3`, so the fd, O_NONBLOCK and FD_CLOEXEC stay as the app had them.
//!
//! A bind to port 0 gets a real port the kernel picks, kept reserved by a
//! bound (never listening) TCP socket for as long as the listener lives:
//! so the port is unique on the machine, however many processes of an
//! instance ask for port 0 at once, and a connect to it from inside the
//! instance finds exactly this listener. Before it binds, the process gives
//! back what listeners it closed without our seeing it ([`crate::release`]).

use std::net::SocketAddr;
use std::os::fd::{IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::c_int;

use agentfs_contract::{liveness, naming};

use crate::config::{Config, Role};
use crate::pass::{Outcome, Pass};
use crate::registry::{CleanupPaths, Listener, Table, TABLE};
use crate::sockaddr::Family;
use crate::{announce, cleanup, config, release, sys};

/// Converts `fd`, which the app is binding to `requested`.
pub fn bind(config: &Config, fd: RawFd, requested: SocketAddr) -> Outcome {
    if config.role == Role::Client {
        return Outcome::Pass(Pass::Client);
    }
    match sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) {
        Ok(libc::SOCK_STREAM) => {}
        _ => return Outcome::Pass(Pass::NotStream),
    }
    // Already converted: binding a bound socket again fails as it would over TCP.
    if sys::unix_socket_path(fd).is_some_and(|path| config.owns_path(&path)) {
        return Outcome::Failed(libc::EINVAL);
    }
    release::sweep();
    let mut table = TABLE.lock();
    table.forget_descriptor(fd);
    let mut requested = requested;
    let mut reservation = -1;
    if requested.port() == 0 {
        match sys::reserve_port(Family::of(&requested)) {
            Ok((fd, port)) => {
                requested.set_port(port);
                reservation = fd;
            }
            Err(e) => return Outcome::Failed(e.raw_os_error().unwrap_or(libc::EADDRINUSE)),
        }
    }
    match join_existing(&mut table, fd, requested) {
        Some(Ok(Joined::Shared)) => return Outcome::Done,
        Some(Ok(Joined::Rebuilt { path, requested })) => {
            drop(table);
            announce::bound(config, &path, requested);
            return Outcome::Done;
        }
        Some(Err(errno)) => return Outcome::Failed(errno),
        None => {}
    }
    let made = claim_path(config, &table, requested.port()).and_then(|(path, lock_fd)| {
        let path_bytes = path.as_os_str().as_encoded_bytes().to_vec();
        match replace_with_unix_socket(fd, &path_bytes) {
            Ok(()) => Ok((path, path_bytes, lock_fd)),
            Err(errno) => {
                // Files first, lock last: once the lock is free the path is anyone's.
                liveness::remove_entry_files(&path);
                sys::close(lock_fd);
                Err(errno)
            }
        }
    });
    let (path, path_bytes, lock_fd) = match made {
        Ok(made) => made,
        Err(errno) => {
            if reservation >= 0 {
                sys::close(reservation);
            }
            return Outcome::Failed(errno);
        }
    };
    table.add(Listener {
        cleanup: cleanup_paths(&path),
        path: path_bytes.clone(),
        requested,
        creator_pid: sys::getpid(),
        lock_fd,
        reservation_fd: reservation,
        socket: sys::file_id(fd),
        seen_listening: false,
        aliases: vec![(fd, requested)],
        id: 0,
    });
    drop(table);
    cleanup::install_signal_handlers();
    announce::bound(config, &path_bytes, requested);
    Outcome::Done
}

/// How a bind joined a socket this process already had for its port.
enum Joined {
    /// The fd now shares a live socket (dual stack).
    Shared,
    /// The socket was made again at its path: its sidecar must be rewritten.
    Rebuilt {
        path: Vec<u8>,
        requested: SocketAddr,
    },
}

/// A second bind to a port this process already listens on. While one of
/// its fds is still that socket (dual stack: `[::]:P` and `0.0.0.0:P`), the
/// new fd shares it. When none is (the app closed its server, unseen since
/// libuv closes with a raw syscall, and listens again: dev servers restart
/// like this), the socket is rebuilt at the same path under the lock this
/// process still holds, so the instance keeps its primary name.
fn join_existing(
    table: &mut Table,
    fd: RawFd,
    requested: SocketAddr,
) -> Option<Result<Joined, c_int>> {
    let listener = table.own_by_port(requested.port())?;
    let id = listener.id;
    let live_alias = listener
        .aliases
        .iter()
        .map(|(alias, _)| *alias)
        .find(|&alias| {
            alias != fd && sys::unix_socket_path(alias).as_deref() == Some(&listener.path[..])
        });
    let result = match live_alias {
        Some(source) => {
            let cloexec = sys::fd_flags(fd).map_or(true, |flags| flags & libc::FD_CLOEXEC != 0);
            sys::dup_onto(source, fd, cloexec)
                .map(|()| Joined::Shared)
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
        }
        None => {
            let _ = std::fs::remove_file(std::ffi::OsStr::from_bytes(&listener.path));
            listener.aliases.clear();
            listener.seen_listening = false;
            let rebuilt = replace_with_unix_socket(fd, &listener.path);
            if rebuilt.is_ok() {
                listener.socket = sys::file_id(fd);
            }
            rebuilt.map(|()| Joined::Rebuilt {
                path: listener.path.clone(),
                requested: listener.requested,
            })
        }
    };
    if result.is_ok() {
        table.add_alias(id, fd, requested);
    }
    Some(result)
}

/// Picks the socket path and takes its liveness lock: the instance's primary
/// path if nobody holds it, else the port's own path. A path held by a live
/// process for the same port is EADDRINUSE, as it would be over TCP.
fn claim_path(
    config: &Config,
    table: &Table,
    port: u16,
) -> Result<(std::path::PathBuf, RawFd), c_int> {
    let name_error = |e: naming::PathTooLong| {
        config::log(format_args!("{e}"));
        libc::ENAMETOOLONG
    };
    let primary = naming::socket_path(&config.run_dir, &config.app, &config.instance, None)
        .map_err(name_error)?;
    let primary_bytes = primary.as_os_str().as_encoded_bytes();
    if !table.has_own_primary(primary_bytes) {
        if let Some(lock_fd) = claim(&primary)? {
            return Ok((primary, lock_fd));
        }
        if announce::port_of(&primary) == Some(port) {
            return Err(libc::EADDRINUSE);
        }
    }
    let own = naming::socket_path(&config.run_dir, &config.app, &config.instance, Some(port))
        .map_err(name_error)?;
    match claim(&own)? {
        Some(lock_fd) => Ok((own, lock_fd)),
        None => Err(libc::EADDRINUSE),
    }
}

/// Takes the lock of `socket`; stale files left by a dead owner are removed.
/// A socket that still accepts is someone's, whatever its lock says (a
/// server that took it across exec, a lock file removed by hand): taken.
fn claim(socket: &Path) -> Result<Option<RawFd>, c_int> {
    match liveness::try_acquire(&naming::lock_path(socket)) {
        Ok(Some(_)) if agentfs_contract::accepting::accepts_now(socket) => Ok(None),
        Ok(Some(lock)) => {
            let _ = std::fs::remove_file(naming::sidecar_path(socket));
            let _ = std::fs::remove_file(socket);
            Ok(Some(sys::move_high(lock.into_raw_fd())))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e.raw_os_error().unwrap_or(libc::EACCES)),
    }
}

/// SOL_SOCKET options the app may have set before bind; they must read back the same after.
const COPIED_OPTIONS: [c_int; 5] = [
    libc::SO_REUSEADDR,
    libc::SO_REUSEPORT,
    libc::SO_KEEPALIVE,
    libc::SO_RCVBUF,
    libc::SO_SNDBUF,
];

/// Builds the Unix socket and puts it at `fd`'s number.
fn replace_with_unix_socket(fd: RawFd, path: &[u8]) -> Result<(), c_int> {
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let unix = sys::unix_stream_socket().map_err(errno)?;
    let result = (|| {
        copy_options(fd, unix);
        sys::bind_unix(unix, path).map_err(errno)?;
        sys::chmod(path, 0o600);
        let nonblocking = sys::status_flags(fd).map_err(errno)? & libc::O_NONBLOCK;
        if nonblocking != 0 {
            let flags = sys::status_flags(unix).map_err(errno)?;
            sys::set_status_flags(unix, flags | libc::O_NONBLOCK).map_err(errno)?;
        }
        let cloexec = sys::fd_flags(fd).map_err(errno)? & libc::FD_CLOEXEC != 0;
        #[cfg(target_os = "linux")]
        let registrations = crate::epoll::registrations_of(fd);
        sys::dup_onto(unix, fd, cloexec).map_err(errno)?;
        #[cfg(target_os = "linux")]
        crate::epoll::restore(fd, &registrations);
        Ok(())
    })();
    sys::close(unix);
    result
}

fn copy_options(from: RawFd, to: RawFd) {
    for name in COPIED_OPTIONS {
        let Ok(mut value) = sys::getsockopt_int(from, libc::SOL_SOCKET, name) else {
            continue;
        };
        // Linux doubles buffer sizes on set and reports the doubled value.
        if cfg!(target_os = "linux") && (name == libc::SO_RCVBUF || name == libc::SO_SNDBUF) {
            value /= 2;
        }
        let _ = sys::setsockopt_int(to, libc::SOL_SOCKET, name, value);
    }
}

/// The paths the signal handler removes, prepared ahead.
pub fn cleanup_paths(socket: &Path) -> Option<CleanupPaths> {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok();
    Some(CleanupPaths {
        socket: c(socket)?,
        sidecar: c(&naming::sidecar_path(socket))?,
        lock: c(&naming::lock_path(socket))?,
    })
}
