//! Removing this process's sockets and sidecars when it ends.
//!
//! At exit (the library destructor) and on SIGTERM/SIGINT when the app left
//! them at their default action. Only the process that created a socket
//! removes it, and only once nobody else holds its lock: prefork children
//! share the lock, so a parent that exits while its workers serve leaves the
//! socket alone, and a child that exits never touches its parent's.
//! After SIGKILL nothing runs here; the lock shows the files stale instead.

use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::c_int;

use agentfs_contract::liveness;

use crate::registry::TABLE;
use crate::{guard, sys};

/// Runs from the library destructor at normal exit.
pub fn at_exit() {
    let Some(_guard) = guard::enter() else { return };
    // Another thread may be inside a hook while we exit: never wait on it.
    let Some(mut table) = TABLE.try_lock() else {
        return;
    };
    for listener in table.listeners.iter_mut().filter(|l| l.is_own()) {
        if listener.reservation_fd >= 0 {
            sys::close(listener.reservation_fd);
            listener.reservation_fd = -1;
        }
        if listener.lock_fd < 0 {
            continue;
        }
        sys::close(listener.lock_fd);
        listener.lock_fd = -1;
        let socket = std::path::Path::new(std::ffi::OsStr::from_bytes(&listener.path));
        let _ = liveness::remove_own(socket);
    }
}

static HANDLERS_INSTALLED: AtomicBool = AtomicBool::new(false);
const CLEANUP_SIGNALS: [c_int; 2] = [libc::SIGTERM, libc::SIGINT];

/// Installs the cleanup handler for SIGTERM and SIGINT where their action is
/// still the default. A handler the app installs later replaces ours, and
/// then the app's own exit path (and the destructor) takes over.
pub fn install_signal_handlers() {
    if HANDLERS_INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    for signal in CLEANUP_SIGNALS {
        // SAFETY: sigaction with a zeroed struct and a null new action only reads.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) != 0
                || current.sa_sigaction != libc::SIG_DFL
            {
                continue;
            }
            let mut ours: libc::sigaction = std::mem::zeroed();
            ours.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
            ours.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut ours.sa_mask);
            libc::sigaction(signal, &ours, std::ptr::null_mut());
        }
    }
}

/// Async-signal-safe: only syscalls on paths prepared in advance. A lock
/// file that is not ours (replaced by another user) is left, and so is
/// everything it would guard.
extern "C" fn on_signal(signal: c_int) {
    if let Some(table) = TABLE.try_lock() {
        // SAFETY: getpid and geteuid are async-signal-safe.
        let (pid, me) = unsafe { (libc::getpid() as u32, libc::geteuid()) };
        for listener in table.listeners.iter().filter(|l| l.creator_pid == pid) {
            let Some(paths) = &listener.cleanup else {
                continue;
            };
            // SAFETY: close, open, fstat, flock and unlink are
            // async-signal-safe; the paths are NUL-terminated strings
            // allocated before the signal; stat is plain old data.
            unsafe {
                if listener.reservation_fd >= 0 {
                    libc::close(listener.reservation_fd);
                }
                libc::close(listener.lock_fd);
                let flags = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW;
                let lock = libc::open(paths.lock.as_ptr(), flags);
                let mut stat: libc::stat = std::mem::zeroed();
                let ours = lock >= 0 && libc::fstat(lock, &mut stat) == 0 && stat.st_uid == me;
                if ours && libc::flock(lock, libc::LOCK_EX | libc::LOCK_NB) == 0 {
                    libc::unlink(paths.sidecar.as_ptr());
                    libc::unlink(paths.socket.as_ptr());
                    libc::unlink(paths.lock.as_ptr());
                }
                if lock >= 0 {
                    libc::close(lock);
                }
            }
        }
    }
    // SAFETY: restoring the default action and re-raising ends the process
    // the way the signal would have without us.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}
