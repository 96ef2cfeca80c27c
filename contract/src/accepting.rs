//! Whether a bound Unix socket still accepts connections.
//!
//! A live owner (its lock held) is not enough: a server can close one of its
//! listeners and live on (nginx reloaded with one `listen` removed), and then
//! connects to that socket are refused. Linux lists every listening Unix
//! socket with its path in `/proc/net/unix` (flag `__SO_ACCEPTCON`), read
//! once per [`Accepting::snapshot`] without touching the sockets. Elsewhere
//! (macOS) a connect is the only way to ask, so each [`Accepting::accepts`]
//! connects and closes at once; an HTTP server sees a connection that ends
//! before any request, which servers treat as nothing.

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
            !self.probe || std::os::unix::net::UnixStream::connect(path).is_ok()
        }
    }
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
