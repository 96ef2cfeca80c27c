//! The callers socket (`$AGENTFS_HOME/router-clients.sock`): the router's
//! port for processes inside instances, which say which instance they are.
//!
//! It serves what the TCP port serves, with one difference: every
//! connection starts with one line, exactly `AGENTFS-INSTANCE <label>\n`
//! (`<label>` a DNS label), and HTTP follows it on the same connection.
//! Anything else (no newline within [`PREAMBLE_MAX`] bytes or
//! [`PREAMBLE_TIMEOUT`], another first word, a name that is not a label)
//! closes the connection without an answer. A request on such a connection
//! knows its caller's instance, so `APP.localhost` can go to the caller's
//! own instance of APP (see [`service`](crate::service)).
//!
//! Only this socket carries a caller's instance, never a header: a browser
//! could send any header, while this socket is the user's own (0600, in the
//! private home), and only the shim connects to it on an instance's behalf.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use agentfs_contract::naming;
use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};

use crate::server::{Accept, HEADER_READ_TIMEOUT};
use crate::service::Peer;
use crate::tls::{self, Opening};

/// What a connection's first line starts with.
pub const PREAMBLE_PREFIX: &[u8] = b"AGENTFS-INSTANCE ";

/// The longest first line, newline included.
pub const PREAMBLE_MAX: usize = 96;

/// How long a caller has to send its first line.
pub const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The callers socket, listening.
#[derive(Debug)]
pub struct Callers(pub UnixListener);

impl Accept for Callers {
    type Stream = Preread<UnixStream>;
    type Accepted = ();

    async fn next(&self) -> io::Result<(Self::Stream, (), tracing::Span)> {
        let (stream, _) = self.0.accept().await?;
        Ok((Preread::new(stream), (), tracing::debug_span!("caller")))
    }

    /// The first line, then a look at what the HTTP stream opens with
    /// (TLS or not): read, and put back in front.
    async fn greet(mut stream: Self::Stream, (): ()) -> Option<(Self::Stream, Peer, Opening)> {
        let read = tokio::time::timeout(PREAMBLE_TIMEOUT, preamble(&mut stream.inner)).await;
        let Ok(Some((instance, mut rest))) = read else {
            tracing::debug!("no valid AGENTFS-INSTANCE line: closed");
            return None;
        };
        if rest.is_empty() {
            rest = tokio::time::timeout(HEADER_READ_TIMEOUT, first_bytes(&mut stream.inner))
                .await
                .ok()??;
        }
        let opening = tls::opening(&rest);
        stream.unread = rest;
        Some((stream, Peer::Instance(instance.into()), opening))
    }
}

/// Reads the first line and returns the instance it names and the bytes
/// read after it (the start of the HTTP stream); `None` for anything else.
async fn preamble<R: AsyncRead + Unpin>(reader: &mut R) -> Option<(String, Bytes)> {
    let mut buf = [0u8; PREAMBLE_MAX];
    let mut filled = 0;
    loop {
        let n = reader.read(&mut buf[filled..]).await.ok()?;
        if n == 0 {
            return None;
        }
        let from = filled;
        filled += n;
        if let Some(at) = buf[from..filled].iter().position(|&b| b == b'\n') {
            let end = from + at;
            let instance = instance_named(&buf[..end])?;
            return Some((instance, Bytes::copy_from_slice(&buf[end + 1..filled])));
        }
        if filled == PREAMBLE_MAX {
            return None;
        }
    }
}

/// The first bytes of the HTTP stream; `None` when the caller closed.
async fn first_bytes<R: AsyncRead + Unpin>(reader: &mut R) -> Option<Bytes> {
    let mut buf = [0u8; 24];
    match reader.read(&mut buf).await {
        Ok(n) if n > 0 => Some(Bytes::copy_from_slice(&buf[..n])),
        _ => None,
    }
}

/// The instance a first line (without its newline) names, if it is one.
fn instance_named(line: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(line.strip_prefix(PREAMBLE_PREFIX)?).ok()?;
    naming::is_label(name).then(|| name.to_owned())
}

/// A stream with bytes already read from it put back in front: what came
/// after the first line in the same read is the start of the HTTP stream.
#[derive(Debug)]
pub struct Preread<S> {
    unread: Bytes,
    inner: S,
}

impl<S> Preread<S> {
    pub fn new(inner: S) -> Preread<S> {
        Preread {
            unread: Bytes::new(),
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Preread<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.unread.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Preread<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> Option<(String, Bytes)> {
        preamble(&mut &bytes[..]).await
    }

    #[tokio::test]
    async fn the_first_line_names_an_instance_and_the_rest_is_kept() {
        let (name, rest) = read(b"AGENTFS-INSTANCE feat-x\nGET / HTTP/1.1\r\n")
            .await
            .unwrap();
        assert_eq!(name, "feat-x");
        assert_eq!(&rest[..], b"GET / HTTP/1.1\r\n");
        let (_, rest) = read(b"AGENTFS-INSTANCE a1\n").await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        let long = format!("AGENTFS-INSTANCE {}\n", "a".repeat(PREAMBLE_MAX));
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n"[..],
            b"AGENTFS-INSTANCE a1\r\n",
            b"AGENTFS-INSTANCE Bad_Name\n",
            b"AGENTFS-INSTANCE \n",
            b"AGENTFS-INSTANCE  a1\n",
            b"agentfs-instance a1\n",
            b"AGENTFS-INSTANCE a1",
            b"",
            long.as_bytes(),
        ] {
            assert!(
                read(bad).await.is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn bytes_read_past_the_line_come_first() {
        let mut stream = Preread::new(&b" world"[..]);
        stream.unread = Bytes::from_static(b"hello");
        let mut all = String::new();
        stream.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
    }
}
