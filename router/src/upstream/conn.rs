//! One open connection to an instance's Unix socket, with the bytes read from
//! it but not used yet.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncRead;
use tokio::net::UnixStream;

/// Read buffer growth: room for a typical answer in one read.
const READ_SIZE: usize = 16 * 1024;

/// An open connection to an instance.
#[derive(Debug)]
pub struct Conn {
    pub stream: UnixStream,
    /// Read from the stream, not yet used: the start of an answer, or after
    /// a 101, the first bytes of the upgraded protocol.
    pub buf: BytesMut,
}

impl Conn {
    /// Connects to `socket`. An error here means nothing was sent.
    pub async fn connect(socket: &Path) -> io::Result<Conn> {
        Ok(Conn {
            stream: UnixStream::connect(socket).await?,
            buf: BytesMut::new(),
        })
    }

    /// Reads what the socket has into the buffer; `Ok(0)` is end of stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        poll_fill(&mut self.stream, &mut self.buf, cx)
    }
}

/// Reads what `reader` has into `buf`; `Ok(0)` is end of stream. Through
/// `AsyncRead` rather than `try_read`: after a short read tokio knows the
/// socket is drained and waits for the next event instead of asking the
/// kernel again (one recv per answer, not two).
pub fn poll_fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
    tokio_util::io::poll_read_buf(Pin::new(reader), cx, buf)
}
