//! Giving back what a converted listener held, once the app closed it: its
//! liveness lock, its reserved port (for a port-0 bind) and its files, and
//! its entry in the registry.
//!
//! A listener is closed when none of the descriptors this process bound to
//! it is still that socket. The `close` hooks ([`after_close`]) see most
//! closes as they happen: libc's `close`, and on Linux libuv's
//! `syscall(SYS_close)`. What they miss (a `dup2` over the descriptor, a
//! close inside libc) is found at the next bind ([`sweep`]), which looks at
//! every listener of this process with one `fstat` per descriptor.
//!
//! A socket another descriptor still holds (a `dup` the app made, a worker
//! the socket was sent to) still accepts connections: such a listener keeps
//! everything until that one is closed too. Its files go only when nobody
//! else holds the lock ([`liveness::remove_own`]): a prefork child that
//! inherited it serves on.

use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use agentfs_contract::{accepting, liveness};

use crate::registry::{Listener, Table, TABLE};
use crate::sys;

/// How many times [`after_close`] tries for the registry's lock: `close`
/// may run in a signal handler that interrupted a hook holding it, and then
/// the next [`sweep`] does the work instead.
const CLOSE_LOCK_TRIES: u32 = 1000;

/// After the app closed `fd` (the real close succeeded): if `fd` was the
/// last descriptor of a listener of this process, gives its things back.
pub fn after_close(fd: RawFd) {
    let Some(mut table) = TABLE.lock_patiently(CLOSE_LOCK_TRIES) else {
        return;
    };
    let holders: Vec<u32> = table
        .listeners
        .iter()
        .filter(|l| l.alias(fd).is_some())
        .map(|l| l.id)
        .collect();
    table.forget_descriptor(fd);
    for id in holders {
        release_if_closed(&mut table, id);
    }
}

/// Gives back what every listener of this process that the app closed
/// unseen held. Called before a bind, without the registry's lock.
pub fn sweep() {
    let mut table = TABLE.lock();
    let ids: Vec<u32> = table
        .listeners
        .iter()
        .filter(|l| holds_something(l) && !has_open_descriptor(l))
        .map(|l| l.id)
        .collect();
    for id in ids {
        release_if_closed(&mut table, id);
    }
}

/// Whether the listener holds what a closed listener must give back.
fn holds_something(listener: &Listener) -> bool {
    listener.is_own() && (listener.lock_fd >= 0 || listener.reservation_fd >= 0)
}

/// Whether one of the descriptors this process bound to the listener is
/// still its socket (a descriptor number may have been closed and reused).
fn has_open_descriptor(listener: &Listener) -> bool {
    listener
        .aliases
        .iter()
        .any(|(fd, _)| listener.socket.is_some() && sys::file_id(*fd) == listener.socket)
}

/// Releases the listener `id` if nothing of this process holds its socket
/// any more and nothing else does either.
fn release_if_closed(table: &mut Table, id: u32) {
    let Some(listener) = table.by_id(id) else {
        return;
    };
    if !holds_something(listener) || has_open_descriptor(listener) {
        return;
    }
    let path = Path::new(OsStr::from_bytes(&listener.path));
    // Held by a descriptor we do not know of (a dup, a worker it was sent
    // to): it accepts still. A socket that never listened cannot tell.
    if listener.seen_listening && accepting::accepts_now(path) {
        return;
    }
    if let Some(listener) = table.remove(id) {
        give_back(&listener);
    }
}

/// Closes the listener's reserved port and lock, then removes its files
/// unless another process holds the lock.
fn give_back(listener: &Listener) {
    for fd in [listener.reservation_fd, listener.lock_fd] {
        if fd >= 0 {
            sys::close(fd);
        }
    }
    if listener.lock_fd >= 0 {
        let _ = liveness::remove_own(Path::new(OsStr::from_bytes(&listener.path)));
    }
}
