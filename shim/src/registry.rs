//! What this process converted: one entry per socket path, behind a spin lock
//! that is held across `fork` so a child never inherits it locked.
//!
//! Hooks find entries by the path the fd itself is bound to (getsockname),
//! never by fd number alone: Node closes with a raw syscall we never see, so
//! fd numbers are reused behind our back. An entry lives while the process
//! holds its socket: when the last descriptor it knows of is closed
//! ([`crate::release`]) the entry goes, with its lock and reserved port.
//! Entries are named by an id that is never reused, so a connection
//! remembered for a listener that is gone never matches a later one.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

use crate::sockaddr::Family;
use crate::spin::SpinLock;

/// Which socket a descriptor is: device and inode, as fstat gives them.
pub type SocketId = (u64, u64);

/// One converted listener (or, with `creator_pid == 0`, one learned from a
/// sidecar because this process only received the socket or its connections).
#[derive(Debug)]
pub struct Listener {
    /// Unique in this process for its lifetime.
    pub id: u32,
    pub path: Vec<u8>,
    /// The address the app asked for; when it asked for port 0, the port
    /// reserved for it ([`Listener::reservation_fd`]).
    pub requested: SocketAddr,
    pub creator_pid: u32,
    /// The descriptor holding the liveness lock, or -1.
    pub lock_fd: RawFd,
    /// A TCP socket bound to the port given for a port-0 bind, which keeps
    /// the port this listener's alone on the machine, or -1.
    pub reservation_fd: RawFd,
    /// The socket itself, when this process made or inherited it: how a
    /// descriptor is known to still be it.
    pub socket: Option<SocketId>,
    /// Whether this process knows the socket listens: it saw the sidecar
    /// say so, or wrote it so.
    pub seen_listening: bool,
    /// Descriptors the app bound to this socket, each with the address it asked
    /// for: dual-stack servers bind `[::]:P` and `0.0.0.0:P` to one socket.
    pub aliases: Vec<(RawFd, SocketAddr)>,
    /// Paths prepared ahead, so the signal handler can unlink without allocating.
    pub cleanup: Option<CleanupPaths>,
}

#[derive(Debug)]
pub struct CleanupPaths {
    pub socket: CString,
    pub sidecar: CString,
    pub lock: CString,
}

impl Listener {
    /// An entry for the socket at `path`, which asked for `requested`,
    /// with no lock, no reservation and no descriptors yet: what a process
    /// that did not bind it learns from its sidecar. [`Table::add`] gives it its id.
    pub fn learned(path: Vec<u8>, requested: SocketAddr, seen_listening: bool) -> Listener {
        Listener {
            id: 0,
            path,
            requested,
            creator_pid: 0,
            lock_fd: -1,
            reservation_fd: -1,
            socket: None,
            seen_listening,
            aliases: Vec::new(),
            cleanup: None,
        }
    }

    /// The address `fd` asked for, if this process bound `fd` to this listener.
    pub fn alias(&self, fd: RawFd) -> Option<SocketAddr> {
        self.aliases
            .iter()
            .find(|(alias, _)| *alias == fd)
            .map(|(_, addr)| *addr)
    }

    /// The address a descriptor of `family` asked for: the first alias of
    /// that family, else the listener's.
    pub fn asked_in(&self, family: Family) -> SocketAddr {
        self.aliases
            .iter()
            .map(|(_, addr)| *addr)
            .find(|addr| Family::of(addr) == family)
            .unwrap_or(self.requested)
    }

    /// Whether this process made this listener (or took it over across exec)
    /// and so owns its lock and files.
    pub fn is_own(&self) -> bool {
        self.creator_pid == crate::sys::getpid()
    }
}

/// A connection this process accepted: from which listener (its id), and
/// the family of the descriptor it was accepted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Accepted {
    listener: u32,
    family: Family,
}

/// A client connection this process wired to a socket of its instance
/// (see [`crate::connect`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wired {
    /// The socket it is connected to: what getpeername says of it, which
    /// tells this entry from a stale one for a reused descriptor number.
    pub socket: Vec<u8>,
    /// The address the app connected to, with the family of its socket.
    pub connected_to: SocketAddr,
    /// The local port the app is told its end has.
    pub local_port: u16,
}

/// The local ports wired clients are told they have: Linux's default
/// ephemeral range, where a TCP client's port would come from.
const CLIENT_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;
/// Accepted connections are remembered by descriptor number up to this one
/// (8 bytes each, grown on demand); above it they get the fallback family.
const MAX_REMEMBERED_FD: usize = 1 << 16;

pub struct Table {
    pub listeners: Vec<Listener>,
    next_id: u32,
    /// Socket options our sockets could not take, by descriptor, level and
    /// name: at most as many as the app set on the descriptors it has, since
    /// a descriptor number bound or wired anew forgets its old ones.
    fake_options: BTreeMap<(RawFd, c_int, c_int), c_int>,
    /// Indexed by descriptor number: a number is reused only after a close,
    /// and the next accept or bind onto it overwrites its entry.
    accepted: Vec<Option<Accepted>>,
    /// Wired client connections by descriptor number, overwritten likewise.
    wired: BTreeMap<RawFd, Wired>,
    next_client_port: u16,
}

impl Table {
    const fn new() -> Table {
        Table {
            listeners: Vec::new(),
            next_id: 1,
            fake_options: BTreeMap::new(),
            accepted: Vec::new(),
            wired: BTreeMap::new(),
            next_client_port: *CLIENT_PORTS.start(),
        }
    }

    pub fn by_path(&self, path: &[u8]) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.path == path)
    }

    pub fn by_path_mut(&mut self, path: &[u8]) -> Option<&mut Listener> {
        self.listeners.iter_mut().find(|l| l.path == path)
    }

    pub fn by_id(&self, id: u32) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.id == id)
    }

    /// Adds `listener`, with its aliases marked, and returns its new id.
    pub fn add(&mut self, mut listener: Listener) -> u32 {
        listener.id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        for (fd, _) in &listener.aliases {
            mark_alias(*fd);
        }
        let id = listener.id;
        self.listeners.push(listener);
        id
    }

    /// Takes the listener `id` out of the table.
    pub fn remove(&mut self, id: u32) -> Option<Listener> {
        let index = self.listeners.iter().position(|l| l.id == id)?;
        Some(self.listeners.swap_remove(index))
    }

    /// Records that the app bound `fd` to the listener `id`, asking for `addr`.
    pub fn add_alias(&mut self, id: u32, fd: RawFd, addr: SocketAddr) {
        if let Some(listener) = self.listeners.iter_mut().find(|l| l.id == id) {
            listener.aliases.push((fd, addr));
            mark_alias(fd);
        }
    }

    /// The listener this process bound `fd` to (its id), and what `fd` asked for.
    pub fn by_alias(&self, fd: RawFd) -> Option<(u32, SocketAddr)> {
        self.listeners
            .iter()
            .find_map(|l| Some((l.id, l.alias(fd)?)))
    }

    /// Remembers that `fd` was accepted from `listener` on a descriptor of `family`.
    pub fn remember_accepted(&mut self, fd: RawFd, listener: u32, family: Family) {
        let Some(slot) = usize::try_from(fd).ok().filter(|&n| n < MAX_REMEMBERED_FD) else {
            return;
        };
        if self.accepted.len() <= slot {
            self.accepted.resize(slot + 1, None);
        }
        self.accepted[slot] = Some(Accepted { listener, family });
    }

    /// The family of the descriptor `fd` was accepted on, if it was accepted
    /// here from `listener`.
    pub fn accepted_family(&self, fd: RawFd, listener: u32) -> Option<Family> {
        let slot = usize::try_from(fd).ok()?;
        match self.accepted.get(slot).copied().flatten() {
            Some(accepted) if accepted.listener == listener => Some(accepted.family),
            _ => None,
        }
    }

    /// Forgets what earlier binds and accepts said about the descriptor
    /// number `fd`, which is being bound anew (its old socket was closed,
    /// perhaps by a raw system call we never saw).
    pub fn forget_descriptor(&mut self, fd: RawFd) {
        for listener in &mut self.listeners {
            listener.aliases.retain(|(alias, _)| *alias != fd);
        }
        unmark_alias(fd);
        if let Some(slot) = usize::try_from(fd)
            .ok()
            .and_then(|n| self.accepted.get_mut(n))
        {
            *slot = None;
        }
        self.wired.remove(&fd);
        self.fake_options
            .retain(|&(option_fd, _, _), _| option_fd != fd);
    }

    /// Remembers that `fd` is now a wired client connection: what earlier
    /// binds, accepts and socket options said about its number is forgotten.
    /// Returns the local port it is told it has.
    pub fn remember_wired(&mut self, fd: RawFd, socket: Vec<u8>, connected_to: SocketAddr) -> u16 {
        self.forget_descriptor(fd);
        let local_port = self.next_client_port;
        self.next_client_port = if local_port >= *CLIENT_PORTS.end() {
            *CLIENT_PORTS.start()
        } else {
            local_port + 1
        };
        self.wired.insert(
            fd,
            Wired {
                socket,
                connected_to,
                local_port,
            },
        );
        local_port
    }

    /// What this process wired `fd` to, if it did and `fd` is still
    /// connected to that socket (`peer`, what getpeername says now).
    pub fn wired(&self, fd: RawFd, peer: &[u8]) -> Option<&Wired> {
        self.wired.get(&fd).filter(|wired| wired.socket == peer)
    }

    /// This process's own listener for `port`, if any.
    pub fn own_by_port(&mut self, port: u16) -> Option<&mut Listener> {
        self.listeners
            .iter_mut()
            .find(|l| l.is_own() && l.requested.port() == port)
    }

    /// Whether this process already holds the instance's primary socket.
    pub fn has_own_primary(&self, primary_path: &[u8]) -> bool {
        self.listeners
            .iter()
            .any(|l| l.is_own() && l.path == primary_path)
    }

    pub fn remember_option(&mut self, fd: RawFd, level: c_int, name: c_int, value: c_int) {
        self.fake_options.insert((fd, level, name), value);
    }

    /// What the app set for an option on `fd`, if it did.
    pub fn recall_option(&self, fd: RawFd, level: c_int, name: c_int) -> Option<c_int> {
        self.fake_options.get(&(fd, level, name)).copied()
    }
}

pub static TABLE: SpinLock<Table> = SpinLock::new(Table::new());

/// Descriptor numbers below this are marked in [`ALIASES`]; a larger one
/// is always looked up in the table.
const MARKED_FDS: usize = 1 << 16;

/// One bit per descriptor number that is (or was, until a close we did not
/// see) an alias of a listener: `close` is called for every descriptor an
/// app closes, and must cost one atomic load for all the others.
static ALIASES: [AtomicU64; MARKED_FDS / 64] = [const { AtomicU64::new(0) }; MARKED_FDS / 64];

fn alias_bit(fd: RawFd) -> Option<(usize, u64)> {
    let n = usize::try_from(fd).ok().filter(|&n| n < MARKED_FDS)?;
    Some((n / 64, 1 << (n % 64)))
}

fn mark_alias(fd: RawFd) {
    if let Some((word, bit)) = alias_bit(fd) {
        ALIASES[word].fetch_or(bit, Ordering::Relaxed);
    }
}

fn unmark_alias(fd: RawFd) {
    if let Some((word, bit)) = alias_bit(fd) {
        ALIASES[word].fetch_and(!bit, Ordering::Relaxed);
    }
}

/// Whether `fd` may be an alias of a listener: lock-free, allocation-free
/// and async-signal-safe, for the `close` hook's fast path.
pub fn may_be_alias(fd: RawFd) -> bool {
    match alias_bit(fd) {
        Some((word, bit)) => ALIASES[word].load(Ordering::Relaxed) & bit != 0,
        None => fd >= 0,
    }
}

extern "C" fn before_fork() {
    TABLE.raw_lock();
}

extern "C" fn after_fork() {
    TABLE.raw_unlock();
}

/// Holds the table lock across fork, so the child never starts with it held
/// by a thread that does not exist there.
pub fn install_fork_handlers() {
    // SAFETY: the handlers are plain functions that only touch an atomic.
    unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_keep_their_ids_and_aliases_are_marked_until_forgotten() {
        let mut table = Table::new();
        let addr: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let mut first = Listener::learned(b"/r/a.sock".to_vec(), addr, true);
        first.aliases.push((700, addr));
        let a = table.add(first);
        let b = table.add(Listener::learned(b"/r/b.sock".to_vec(), addr, true));
        assert_ne!(a, b);
        assert!(may_be_alias(700));
        assert!(!may_be_alias(701));
        table.add_alias(b, 701, addr);
        assert_eq!(table.by_alias(701), Some((b, addr)));
        table.remember_accepted(9, a, Family::V4);
        assert_eq!(table.remove(a).map(|l| l.path), Some(b"/r/a.sock".to_vec()));
        let c = table.add(Listener::learned(b"/r/c.sock".to_vec(), addr, true));
        assert_ne!(c, a, "ids are never reused");
        assert_eq!(table.accepted_family(9, c), None);
        table.forget_descriptor(700);
        table.forget_descriptor(701);
        assert!(!may_be_alias(700) && !may_be_alias(701));
        assert!(table.by_id(b).unwrap().aliases.is_empty());
    }

    #[test]
    fn options_are_remembered_per_fd() {
        let mut table = Table::new();
        table.remember_option(5, 6, 1, 1);
        table.remember_option(5, 6, 1, 0);
        table.remember_option(6, 6, 1, 1);
        assert_eq!(table.recall_option(5, 6, 1), Some(0));
        assert_eq!(table.recall_option(6, 6, 1), Some(1));
        assert_eq!(table.recall_option(7, 6, 1), None);
        table.forget_descriptor(5);
        assert_eq!(table.recall_option(5, 6, 1), None, "bound anew");
        assert_eq!(table.recall_option(6, 6, 1), Some(1));
    }

    #[test]
    fn wired_connections_are_known_by_descriptor_and_peer() {
        let mut table = Table::new();
        let to: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        table.remember_option(7, 6, 1, 1);
        let first = table.remember_wired(7, b"/r/api_x.sock".to_vec(), to);
        let second = table.remember_wired(8, b"/r/api_x.sock".to_vec(), to);
        assert_ne!(first, second, "each connection has its own local port");
        assert!(CLIENT_PORTS.contains(&first));
        assert_eq!(
            table.recall_option(7, 6, 1),
            None,
            "the old socket's options are gone"
        );
        let wired = table.wired(7, b"/r/api_x.sock").unwrap();
        assert_eq!((wired.connected_to, wired.local_port), (to, first));
        assert!(
            table.wired(7, b"/r/web_x.sock").is_none(),
            "reused for another socket"
        );
        assert!(table.wired(9, b"/r/api_x.sock").is_none());
        table.forget_descriptor(7);
        assert!(table.wired(7, b"/r/api_x.sock").is_none());
        table.next_client_port = *CLIENT_PORTS.end();
        table.remember_wired(7, b"/r/a.sock".to_vec(), to);
        assert_eq!(
            table.remember_wired(7, b"/r/a.sock".to_vec(), to),
            *CLIENT_PORTS.start()
        );
    }

    #[test]
    fn accepted_connections_remember_their_listener_and_family() {
        let mut table = Table::new();
        table.remember_accepted(7, 0, Family::V4);
        table.remember_accepted(9, 1, Family::V6);
        assert_eq!(table.accepted_family(7, 0), Some(Family::V4));
        assert_eq!(table.accepted_family(7, 1), None, "another listener's");
        assert_eq!(table.accepted_family(9, 1), Some(Family::V6));
        assert_eq!(table.accepted_family(8, 0), None);
        table.remember_accepted(7, 0, Family::V6);
        assert_eq!(table.accepted_family(7, 0), Some(Family::V6), "reused fd");
        table.forget_descriptor(7);
        assert_eq!(table.accepted_family(7, 0), None);
        table.remember_accepted(-1, 0, Family::V4);
        table.remember_accepted(MAX_REMEMBERED_FD as RawFd, 0, Family::V4);
        assert_eq!(table.accepted_family(MAX_REMEMBERED_FD as RawFd, 0), None);
        assert!(table.accepted.len() <= MAX_REMEMBERED_FD);
    }
}
