//! What this process converted: one entry per socket path, behind a spin lock
//! that is held across `fork` so a child never inherits it locked.
//!
//! Hooks find entries by the path the fd itself is bound to (getsockname),
//! never by fd number alone: Node closes with a raw syscall we never see, so
//! fd numbers are reused behind our back. Entries are never removed while the
//! process lives; there are as many as the app has listeners.

use std::cell::UnsafeCell;
use std::ffi::CString;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::c_int;

/// One converted listener (or, with `creator_pid == 0`, one learned from a
/// sidecar because this process only received its connections).
#[derive(Debug)]
pub struct Listener {
    pub path: Vec<u8>,
    /// The address the app asked for, with the fake port when it asked for 0.
    pub requested: SocketAddr,
    pub creator_pid: u32,
    /// The descriptor holding the liveness lock, or -1.
    pub lock_fd: RawFd,
    pub sidecar_written: bool,
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
    /// The address `fd` asked for, falling back to the listener's.
    pub fn address_for(&self, fd: RawFd) -> SocketAddr {
        self.aliases
            .iter()
            .find(|(alias, _)| *alias == fd)
            .map_or(self.requested, |(_, addr)| *addr)
    }
}

/// Where fake ports for `listen(0)` start: the IANA dynamic range.
const FIRST_FAKE_PORT: u16 = 49152;
/// Socket options remembered for fds whose real setsockopt cannot take them.
const MAX_FAKE_OPTIONS: usize = 4096;

pub struct Table {
    pub listeners: Vec<Listener>,
    next_fake_port: u16,
    fake_options: Vec<(RawFd, c_int, c_int, c_int)>,
}

impl Table {
    const fn new() -> Table {
        Table {
            listeners: Vec::new(),
            next_fake_port: FIRST_FAKE_PORT,
            fake_options: Vec::new(),
        }
    }

    pub fn by_path(&self, path: &[u8]) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.path == path)
    }

    pub fn by_path_mut(&mut self, path: &[u8]) -> Option<&mut Listener> {
        self.listeners.iter_mut().find(|l| l.path == path)
    }

    /// This process's own listener for `port`, if any.
    pub fn own_by_port(&mut self, port: u16) -> Option<&mut Listener> {
        let pid = crate::sys::getpid();
        self.listeners
            .iter_mut()
            .find(|l| l.creator_pid == pid && l.requested.port() == port)
    }

    /// Whether this process already holds the instance's primary socket.
    pub fn has_own_primary(&self, primary_path: &[u8]) -> bool {
        let pid = crate::sys::getpid();
        self.listeners
            .iter()
            .any(|l| l.creator_pid == pid && l.path == primary_path)
    }

    /// A port no listener of this process uses, for an app that asked for 0.
    pub fn fake_port(&mut self) -> u16 {
        loop {
            let port = self.next_fake_port;
            self.next_fake_port = self
                .next_fake_port
                .checked_add(1)
                .unwrap_or(FIRST_FAKE_PORT);
            if !self.listeners.iter().any(|l| l.requested.port() == port) {
                return port;
            }
        }
    }

    pub fn remember_option(&mut self, fd: RawFd, level: c_int, name: c_int, value: c_int) {
        if let Some(slot) = self
            .fake_options
            .iter_mut()
            .find(|o| (o.0, o.1, o.2) == (fd, level, name))
        {
            slot.3 = value;
        } else if self.fake_options.len() < MAX_FAKE_OPTIONS {
            self.fake_options.push((fd, level, name, value));
        }
    }

    pub fn recall_option(&self, fd: RawFd, level: c_int, name: c_int) -> c_int {
        self.fake_options
            .iter()
            .find(|o| (o.0, o.1, o.2) == (fd, level, name))
            .map_or(0, |o| o.3)
    }
}

/// A minimal spin lock: it must be lockable in `pthread_atfork`'s prepare
/// handler and unlockable in another function, which std's guards do not allow.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `locked`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

pub struct SpinGuard<'a, T>(&'a SpinLock<T>);

impl<T> SpinLock<T> {
    const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> SpinGuard<'_, T> {
        self.raw_lock();
        SpinGuard(self)
    }

    /// For the signal handler: never waits, since the holder may be the very
    /// code the signal interrupted.
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| SpinGuard(self))
    }

    fn raw_lock(&self) {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn raw_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock.
        unsafe { &*self.0.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold the lock.
        unsafe { &mut *self.0.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.0.raw_unlock();
    }
}

pub static TABLE: SpinLock<Table> = SpinLock::new(Table::new());

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
    fn fake_ports_skip_ports_in_use() {
        let mut table = Table::new();
        table.listeners.push(Listener {
            path: b"/r/a.sock".to_vec(),
            requested: "0.0.0.0:49152".parse().unwrap(),
            creator_pid: 1,
            lock_fd: -1,
            sidecar_written: true,
            aliases: Vec::new(),
            cleanup: None,
        });
        assert_eq!(table.fake_port(), 49153);
        assert_eq!(table.fake_port(), 49154);
    }

    #[test]
    fn options_are_remembered_per_fd() {
        let mut table = Table::new();
        table.remember_option(5, 6, 1, 1);
        table.remember_option(5, 6, 1, 0);
        table.remember_option(6, 6, 1, 1);
        assert_eq!(table.recall_option(5, 6, 1), 0);
        assert_eq!(table.recall_option(6, 6, 1), 1);
        assert_eq!(table.recall_option(7, 6, 1), 0);
    }

    #[test]
    fn try_lock_fails_while_held() {
        let lock = SpinLock::new(1);
        let held = lock.lock();
        assert!(lock.try_lock().is_none());
        drop(held);
        assert_eq!(*lock.try_lock().unwrap(), 1);
    }
}
