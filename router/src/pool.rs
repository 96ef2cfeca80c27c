//! Upstream connections: kept-alive HTTP/1.1 connections to one Unix socket.
//!
//! A connection is taken out of the pool for one request and put back once
//! the instance has finished answering it (a task waits for the connection to
//! be ready again), so a pooled connection is always idle.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::body::UpBody;

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
}

impl Pool {
    pub fn new(socket: PathBuf) -> Pool {
        Pool {
            socket,
            idle: Arc::default(),
        }
    }

    /// An idle pooled connection, if one is still open.
    pub fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
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
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            if let Err(err) = conn.with_upgrades().await {
                tracing::debug!(%err, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Returns the connection to the pool once its current answer is complete.
    pub fn recycle(&self, mut sender: Sender) {
        let idle = Arc::clone(&self.idle);
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(sender);
                }
            }
        });
    }
}
