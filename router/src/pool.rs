//! Upstream connections: kept-alive HTTP/1.1 connections to one Unix socket.
//!
//! Two kinds are kept apart. Plain connections ([`wire::Conn`]) carry
//! requests without a body, driven by the request's own task. Hyper client
//! connections ([`Sender`]) carry requests with a body; one is taken out of
//! the pool for one request and travels with the answer's body as a
//! [`Lease`]; when the body's last frame has been read, the lease puts the
//! connection straight back, so a pooled connection is always idle. No task
//! per request: only a connection that is not ready yet at that moment gets
//! a task that waits for it.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::body::UpBody;
use crate::wire::{self, Conn};

/// Idle connections kept per socket; more than this are closed when freed.
const MAX_IDLE: usize = 128;

/// A sender for requests on one upstream connection.
pub type Sender = SendRequest<UpBody>;

/// The idle connections to one socket.
#[derive(Debug)]
pub struct Pool {
    socket: PathBuf,
    /// A std mutex: held only to push or pop, never across an await.
    idle: Arc<Mutex<Vec<Sender>>>,
    conns: wire::Idle,
}

impl Pool {
    pub fn new(socket: PathBuf) -> Pool {
        Pool {
            socket,
            idle: Arc::default(),
            conns: Arc::default(),
        }
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// The most recently used idle plain connection, if any.
    pub fn take_conn(&self) -> Option<Conn> {
        lock(&self.conns).pop()
    }

    /// Closes every idle plain connection: after one turned out stale (the
    /// instance restarted, or closed idle connections), the rest likely are.
    pub fn clear_conns(&self) {
        lock(&self.conns).clear();
    }

    pub fn idle_conns(&self) -> wire::Idle {
        Arc::clone(&self.conns)
    }

    /// An idle pooled connection, if one is still open.
    pub fn take_idle(&self) -> Option<Sender> {
        let mut idle = lock(&self.idle);
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    /// Opens a new connection. An error here means nothing was sent.
    pub async fn connect(&self) -> io::Result<Sender> {
        let stream = UnixStream::connect(&self.socket).await?;
        // writev off for the same reason as on the client side (server.rs).
        let (sender, conn) = http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            if let Err(err) = conn.with_upgrades().await {
                tracing::debug!(%err, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Lends out a connection whose request was sent; see [`Lease`].
    pub fn lease(&self, sender: Sender) -> Lease {
        Lease {
            sender: Some(sender),
            idle: Arc::clone(&self.idle),
            complete: false,
        }
    }
}

/// A connection answering one request. Dropped after [`Lease::complete`]
/// (the answer was read to its end), it goes back to the pool; dropped
/// before, it is closed, since the rest of an answer may still be on it.
#[derive(Debug)]
pub struct Lease {
    sender: Option<Sender>,
    idle: Arc<Mutex<Vec<Sender>>>,
    complete: bool,
}

impl Lease {
    /// Marks the answer as read to its end.
    pub fn complete(&mut self) {
        self.complete = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut sender) = self.sender.take().filter(|_| self.complete) else {
            return;
        };
        if sender.is_ready() {
            put_back(&self.idle, sender);
            return;
        }
        // The connection task has not yet seen the end of the answer: wait for it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let idle = Arc::clone(&self.idle);
        runtime.spawn(async move {
            if sender.ready().await.is_ok() {
                put_back(&idle, sender);
            }
        });
    }
}

/// Keeps an idle connection, unless enough are kept already.
pub(crate) fn put_back<T>(idle: &Mutex<Vec<T>>, conn: T) {
    let mut idle = lock(idle);
    if idle.len() < MAX_IDLE {
        idle.push(conn);
    }
}

fn lock<T>(idle: &Mutex<Vec<T>>) -> std::sync::MutexGuard<'_, Vec<T>> {
    idle.lock().unwrap_or_else(|e| e.into_inner())
}
