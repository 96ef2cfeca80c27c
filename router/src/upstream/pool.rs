//! Kept-alive connections to one instance socket: one kind of connection
//! (`Conn`), taken by a request and given back by its answer's body once
//! the answer has been read to its end, so a pooled connection is always idle.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::conn::Conn;

/// Idle connections kept per socket; more than this are closed when freed.
/// One HTTP/2 client connection alone may have 256 requests in progress
/// (`server::H2_MAX_STREAMS`), each on an instance connection of its own:
/// keeping fewer than a burst needs closes most of them after it and opens
/// them again on the next (at 128, HTTP/2 throughput was 0.65x of what it
/// is at 512, BENCHMARKS.md). An idle connection holds its socket and a
/// read buffer of up to 16 KiB.
const MAX_IDLE: usize = 512;

/// The idle connections to one socket, shared with the answers that give them back.
#[derive(Clone, Debug, Default)]
pub struct Idle(Arc<Mutex<Vec<Conn>>>);

impl Idle {
    /// Keeps an idle connection, unless enough are kept already.
    pub fn put_back(&self, conn: Conn) {
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// A std mutex: held only to push or pop, never across an await.
    fn lock(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The kept-alive connections to one socket.
#[derive(Debug)]
pub struct Pool {
    socket: PathBuf,
    idle: Idle,
}

impl Pool {
    pub fn new(socket: PathBuf) -> Pool {
        Pool {
            socket,
            idle: Idle::default(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The most recently used idle connection, if any.
    pub fn take(&self) -> Option<Conn> {
        self.idle.lock().pop()
    }

    /// Opens a new connection. An error here means nothing was sent.
    pub async fn connect(&self) -> io::Result<Conn> {
        Conn::connect(&self.socket).await
    }

    /// Closes every idle connection: after one turned out stale (the
    /// instance restarted, or closed idle connections), the rest likely are.
    pub fn clear(&self) {
        self.idle.lock().clear();
    }

    /// Where answers give their connection back.
    pub fn idle(&self) -> &Idle {
        &self.idle
    }
}
