//! Liveness: telling a live socket from a stale one, even after SIGKILL.
//!
//! The process that creates a socket takes an exclusive `flock` on the
//! socket's `.lock` file and keeps the descriptor open for its lifetime.
//! `flock` locks belong to the open file description, so forked children
//! (prefork servers) share it: the lock is held while any of them lives, and
//! the kernel drops it when the last one dies, however it dies. Anyone can
//! then ask [`lock_state`].
//!
//! A free lock is not enough to call a socket stale: the descriptor is
//! close-on-exec, so a server handed its listener across `exec` holds the
//! socket without the lock until its shim takes the lock again, and a user
//! may remove a lock file by hand. An entry is stale only when its lock is
//! free **and** its socket refuses a connection ([`remove_if_stale`]); a
//! socket that accepts is never removed. Its owner, leaving, removes its own
//! files when nobody else holds the lock ([`remove_own`]): its descriptors
//! are still open then, so asking the socket would tell it nothing.
//!
//! A lock file that belongs to another user is never trusted: it is neither
//! held nor free ([`LockState::Foreign`]), nothing it guards is removed, and
//! [`try_acquire`] refuses it.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::layout::current_uid;
use crate::naming;
use crate::sidecar::{Kind, Sidecar};

/// How long [`try_acquire`] keeps trying while only probers hold the lock:
/// [`lock_state`] takes a shared lock for a moment, and a prober on a busy
/// machine may be descheduled while it holds it.
const PROBE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: the descriptor is valid for the lifetime of `file`.
        if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Refuses a lock file another user owns: its "lock" would be theirs to give.
fn check_owner(file: &File, path: &Path) -> io::Result<()> {
    let owner = file.metadata()?.uid();
    if owner == current_uid() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} belongs to uid {owner}, not to us: agentfs does not trust it",
            path.display()
        ),
    ))
}

/// Takes the lock at `path` (created 0600 if missing). `Ok(None)` means a live
/// process holds it. The returned descriptor is close-on-exec and holds the
/// lock until every copy of it is closed. A lock file of another user is an error.
///
/// Owners hold the lock exclusively and probers ([`lock_state`]) share it
/// for a moment: when the exclusive lock is refused but a shared one is
/// not, only probers hold it, and the attempt is made again (for up to
/// [`PROBE_PATIENCE`]) instead of taking a prober for an owner.
pub fn try_acquire(path: &Path) -> io::Result<Option<OwnedFd>> {
    let deadline = std::time::Instant::now() + PROBE_PATIENCE;
    loop {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)?;
        check_owner(&file, path)?;
        if !flock(&file, libc::LOCK_EX)? {
            let only_probers = flock(&file, libc::LOCK_SH)?;
            if !only_probers || std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            drop(file);
            std::thread::yield_now();
            continue;
        }
        // Someone who held the lock before us may have removed the file and a
        // third party created a new one: a lock on an unlinked inode guards nothing.
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.ino() == file.metadata()?.ino() => return Ok(Some(file.into())),
            _ => continue,
        }
    }
}

/// What a lock file says about its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// No lock file (or none we can open): nobody holds it.
    Missing,
    /// Nobody holds it: its owner is gone.
    Free,
    /// A live process holds it.
    Held,
    /// It belongs to another user: not to be trusted either way.
    Foreign(u32),
}

/// The state of the lock at `path`.
pub fn lock_state(path: &Path) -> LockState {
    let Ok(file) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return LockState::Missing;
    };
    match file.metadata() {
        Ok(meta) if meta.uid() != current_uid() => return LockState::Foreign(meta.uid()),
        Ok(meta) if !meta.is_file() => return LockState::Missing,
        Ok(_) => {}
        Err(_) => return LockState::Missing,
    }
    // Taking a shared lock succeeds only if nobody holds it exclusively;
    // it is released again when `file` drops.
    match flock(&file, libc::LOCK_SH) {
        Ok(true) => LockState::Free,
        _ => LockState::Held,
    }
}

/// Whether the lock at `path` may be held by a live process: held, or
/// another user's (which is never treated as free). A missing lock is not held.
pub fn is_held(path: &Path) -> bool {
    matches!(lock_state(path), LockState::Held | LockState::Foreign(_))
}

/// Whether the socket at `socket` is owned by a live process.
pub fn socket_is_live(socket: &Path) -> bool {
    is_held(&naming::lock_path(socket))
}

/// Removes a socket, its sidecar and its lock if their owner is gone: the
/// lock is free and the socket refuses a connection. Returns whether they
/// were stale (and so removed); a socket that accepts is never touched, and
/// neither is anything guarded by another user's lock file.
pub fn remove_if_stale(socket: &Path) -> io::Result<bool> {
    let lock = naming::lock_path(socket);
    let Some(_held) = try_acquire(&lock)? else {
        return Ok(false);
    };
    if crate::accepting::accepts_now(socket) {
        return Ok(false);
    }
    remove_entry_files(socket);
    Ok(true)
}

/// For the owner of `socket`, leaving (after closing its own lock
/// descriptor): removes the socket's files unless another process holds the
/// lock (a prefork child that serves on). Returns whether it did.
pub fn remove_own(socket: &Path) -> io::Result<bool> {
    let lock = naming::lock_path(socket);
    let Some(_held) = try_acquire(&lock)? else {
        return Ok(false);
    };
    remove_entry_files(socket);
    Ok(true)
}

/// Whether the entry a sidecar describes is live. A manual route
/// ([`Kind::Manual`]) has no owner process and no lock: it is live while its
/// socket exists as a socket. Everything else is live while its lock is
/// held or its socket accepts.
pub fn entry_is_live(car: &Sidecar) -> bool {
    match car.kind {
        Kind::Manual => fs::symlink_metadata(&car.socket)
            .is_ok_and(|m| m.file_type().is_socket() && m.uid() == current_uid()),
        Kind::Shim | Kind::Bridge | Kind::Netns => {
            socket_is_live(&car.socket) || crate::accepting::accepts_now(&car.socket)
        }
    }
}

/// Removes the entry of the sidecar at `sidecar_path` if it is stale; returns
/// whether it was. For a manual route only the sidecar goes: the socket it
/// names is somebody else's and is never touched. For the other kinds the
/// socket is the one beside the sidecar, whatever the sidecar claims.
pub fn remove_stale_entry(sidecar_path: &Path, car: &Sidecar) -> io::Result<bool> {
    match car.kind {
        Kind::Manual if entry_is_live(car) => Ok(false),
        Kind::Manual => match fs::remove_file(sidecar_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(true),
        },
        Kind::Shim | Kind::Bridge | Kind::Netns => {
            remove_if_stale(&sidecar_path.with_extension(naming::SOCKET_EXT))
        }
    }
}

/// Removes a socket's files that are ours, the lock last; the caller must
/// hold the lock.
pub fn remove_entry_files(socket: &Path) {
    let sidecar = naming::sidecar_path(socket);
    let lock = naming::lock_path(socket);
    remove_own_files(&[&sidecar, socket, &lock]);
}

/// Removes each of `paths` that exists and is ours; another user's file is left.
pub fn remove_own_files(paths: &[&Path]) {
    for path in paths {
        if fs::symlink_metadata(path).is_ok_and(|m| m.uid() == current_uid()) {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("a.lock");
        assert!(!is_held(&lock));
        let held = try_acquire(&lock).unwrap().expect("free lock");
        assert!(is_held(&lock));
        assert!(try_acquire(&lock).unwrap().is_none());
        drop(held);
        assert!(!is_held(&lock));
    }

    #[test]
    fn held_by_a_child_process_and_freed_when_it_dies() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path();
        let lock = dir.join("a.lock");
        // flock(1) holds the lock for as long as it lives: a real other process.
        // `-o` keeps the lock out of its shell child, so killing flock frees it.
        let mut child = std::process::Command::new("flock")
            .arg("-o")
            .arg(&lock)
            .args(["-c", "read _"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("flock(1) from util-linux");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_held(&lock) {
            assert!(
                std::time::Instant::now() < deadline,
                "child never took the lock"
            );
            std::thread::yield_now();
        }
        let socket = dir.join("a.sock");
        fs::write(&socket, b"").unwrap();
        assert!(!remove_if_stale(&socket).unwrap());
        assert!(socket.exists());
        child.kill().unwrap();
        child.wait().unwrap();
        // flock's shell child holds the lock for the moment between its fork
        // and closing the descriptor (`-o`): freed by then, or soon after.
        while is_held(&lock) {
            assert!(
                std::time::Instant::now() < deadline,
                "the lock outlived its holder"
            );
            std::thread::yield_now();
        }
        assert!(remove_if_stale(&socket).unwrap());
        assert!(!socket.exists() && !lock.exists());
    }

    #[test]
    fn a_socket_that_accepts_is_never_stale_whatever_its_lock_says() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("a.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        // Free lock, then no lock file at all: the socket still accepts.
        drop(try_acquire(&naming::lock_path(&socket)).unwrap());
        assert!(!remove_if_stale(&socket).unwrap());
        fs::remove_file(naming::lock_path(&socket)).unwrap();
        assert!(!remove_if_stale(&socket).unwrap());
        assert!(socket.exists());
        // Its owner, leaving, removes its own files while its socket is open.
        assert!(remove_own(&socket).unwrap());
        assert!(!socket.exists());
        drop(listener);
    }

    fn manual(socket: &Path) -> Sidecar {
        let json = format!(
            r#"{{"version":1,"kind":"manual","app":"web","instance":"m","pid":0,
            "socket":{socket:?},"address":"unix","port":0,"primary":true,
            "hostname":"m.web.localhost","argv":[],"cwd":"/","started_at":"x"}}"#
        );
        Sidecar::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn manual_routes_live_with_their_socket_and_never_lose_it() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path();
        let socket = dir.join("outside.sock");
        let car_path = dir.join("web-m.json");
        let car = manual(&socket);
        car.write_atomic(&car_path).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert!(entry_is_live(&car));
        assert!(!remove_stale_entry(&car_path, &car).unwrap());
        assert!(car_path.exists() && socket.exists());
        // A socket whose server exited is still a route to it (servers that
        // come back rebind the same path); a missing socket is stale.
        drop(listener);
        assert!(entry_is_live(&car));
        fs::remove_file(&socket).unwrap();
        fs::write(&socket, b"not a socket").unwrap();
        assert!(!entry_is_live(&car));
        assert!(remove_stale_entry(&car_path, &car).unwrap());
        assert!(!car_path.exists(), "the sidecar goes");
        assert!(socket.exists(), "what it named is never touched");
    }
}
