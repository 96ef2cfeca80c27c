//! Whether a bound Unix socket still accepts connections.
//!
//! A live owner (its lock held) is not enough: a server can close one of its
//! listeners and live on (nginx reloaded with one `listen` removed), and then
//! connects to that socket are refused. Nor is a free lock proof that a
//! socket is dead: a server handed its listener across `exec` lost its
//! close-on-exec lock until it takes it again, and a user may remove a lock
//! file. Linux lists every listening Unix socket with its path in
//! `/proc/net/unix` (flag `__SO_ACCEPTCON`), read once per
//! [`Accepting::snapshot`] without touching the sockets; that list holds the
//! sockets of the reader's network namespace only. Elsewhere (macOS), and
//! for a socket the list does not show, a connect is the only way to ask
//! ([`accepts_now`]); an HTTP server sees a connection that ends before any
//! request, which servers treat as nothing.

use std::path::Path;

/// What is known about listening Unix sockets at one moment.
#[derive(Debug)]
pub struct Accepting {
    /// Paths of listening sockets, when the platform lists them (`None`:
    /// ask each socket, or, when the list could not be read, assume yes).
    #[cfg(target_os = "linux")]
    listening: Option<std::collections::HashSet<Vec<u8>>>,
    /// Whether to connect to ask (`false`: assume yes).
    #[cfg(not(target_os = "linux"))]
    probe: bool,
}

/// `__SO_ACCEPTCON` in `/proc/net/unix`'s flags column: the socket listens.
#[cfg(target_os = "linux")]
const SO_ACCEPTCON: u32 = 1 << 16;

impl Accepting {
    /// Takes the listening sockets' snapshot (Linux); cheap elsewhere.
    pub fn snapshot() -> Accepting {
        #[cfg(target_os = "linux")]
        {
            let listening = std::fs::read("/proc/net/unix")
                .ok()
                .map(|table| listening_paths(&table));
            Accepting { listening }
        }
        #[cfg(not(target_os = "linux"))]
        Accepting { probe: true }
    }

    /// A snapshot that takes every socket to accept, for when asking is not
    /// worth its cost.
    pub fn assumed() -> Accepting {
        #[cfg(target_os = "linux")]
        {
            Accepting { listening: None }
        }
        #[cfg(not(target_os = "linux"))]
        Accepting { probe: false }
    }

    /// Whether the socket at `path` listens.
    pub fn accepts(&self, path: &Path) -> bool {
        #[cfg(target_os = "linux")]
        {
            match &self.listening {
                Some(paths) => paths.contains(path.as_os_str().as_encoded_bytes()),
                None => true,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            !self.probe || accepts_now(path)
        }
    }

    /// Whether the socket at `path` accepts, asked as surely as can be: from
    /// the snapshot when it lists the socket, else by connecting. For a
    /// socket whose lock is free, where a wrong "no" would remove a live
    /// socket, and which is rare enough to be worth a connect.
    pub fn accepts_surely(&self, path: &Path) -> bool {
        #[cfg(target_os = "linux")]
        if self
            .listening
            .as_ref()
            .is_some_and(|paths| paths.contains(path.as_os_str().as_encoded_bytes()))
        {
            return true;
        }
        accepts_now(path)
    }
}

/// Whether a connect to the Unix socket at `path` succeeds now. It never
/// blocks: a listener whose backlog is full (Linux answers `EAGAIN`) is
/// alive and counts as accepting. The connection is closed at once.
pub fn accepts_now(path: &Path) -> bool {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return false;
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: plain socket creation; the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd was just created and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl on our own descriptor.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes.
    let ret = unsafe { libc::connect(socket.as_raw_fd(), (&raw const addr).cast(), len) };
    if ret == 0 {
        return true;
    }
    matches!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EAGAIN | libc::EINPROGRESS)
    )
}

/// The paths of listening sockets in a `/proc/net/unix` table:
/// `Num RefCount Protocol Flags Type St Inode Path`, the path last (and
/// possibly containing spaces).
#[cfg(target_os = "linux")]
fn listening_paths(table: &[u8]) -> std::collections::HashSet<Vec<u8>> {
    table
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.splitn(8, |&b| b == b' ').filter(|f| !f.is_empty());
            let flags = fields.nth(3)?;
            let flags = u32::from_str_radix(std::str::from_utf8(flags).ok()?, 16).ok()?;
            let path = line.splitn(8, |&b| b == b' ').nth(7)?;
            (flags & SO_ACCEPTCON != 0 && path.first() == Some(&b'/')).then(|| path.to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn parses_the_kernel_table() {
        let table = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4242 /r/web_a.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 4243 /r/web_a.sock\n\
            0000000000000000: 00000002 00000000 00000000 0001 01 4244 /r/closed.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4245 /r/with space.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4246 @abstract\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4247\n";
        let paths = listening_paths(table);
        assert!(paths.contains(&b"/r/web_a.sock"[..]));
        assert!(paths.contains(&b"/r/with space.sock"[..]));
        assert_eq!(paths.len(), 2);
    }

    #[test]
    fn a_connect_tells_a_listening_socket_from_a_dead_one() {
        let dir = tempfile::tempdir().unwrap();
        let listening = dir.path().join("l.sock");
        let listener = std::os::unix::net::UnixListener::bind(&listening).unwrap();
        assert!(accepts_now(&listening));
        assert!(Accepting::assumed().accepts_surely(&listening));
        drop(listener);
        assert!(
            !accepts_now(&listening),
            "a socket file nobody holds refuses"
        );
        assert!(!accepts_now(&dir.path().join("missing.sock")));
        let bound = dir.path().join("b.sock");
        let _sock = std::os::unix::net::UnixDatagram::bind(&bound).unwrap();
        assert!(!accepts_now(&bound));
    }

    #[test]
    fn a_listening_socket_accepts_and_a_bound_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let listening = dir.path().join("l.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&listening).unwrap();
        // Bound without listen: a real socket file that refuses connections.
        let bound = dir.path().join("b.sock");
        let _sock = std::os::unix::net::UnixDatagram::bind(&bound).unwrap();
        let snapshot = Accepting::snapshot();
        assert!(snapshot.accepts(&listening));
        assert!(!snapshot.accepts(&bound));
    }
}
