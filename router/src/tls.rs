//! TLS on the router's own port: what a connection's first bytes say it
//! speaks, and the handshake. One port serves plain HTTP/1.1, HTTP/2 with
//! prior knowledge and TLS (then HTTP/2 or HTTP/1.1 by ALPN), told apart by
//! the first bytes: a TLS record starts with 0x16 (a handshake), HTTP/2's
//! preface with `PRI * HTTP/2.0`, and HTTP/1 with a method's letters.
//!
//! Certificates come from the home's CA (the `agentfs-tls` crate), minted
//! per name. A client that names something outside `localhost` (its SNI)
//! gets no certificate: a fatal `unrecognized_name` alert, as a Host outside
//! `localhost` gets 421 over plain HTTP.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::Acceptor;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

/// The first byte of a TLS handshake record (RFC 8446 §5.1).
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// The start of HTTP/2's connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A fatal `unrecognized_name` alert (RFC 6066 §3), as a TLS record: sent
/// before any key is agreed, so in the clear.
const UNRECOGNIZED_NAME: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];

/// The TLS configuration for the router of `home`: its CA, made now if it
/// does not exist yet, and leaves minted from it.
pub fn config_for_home(home: &Path) -> Result<Arc<ServerConfig>, SetupError> {
    let ca = agentfs_tls::Ca::open_or_create(home)?;
    let leaves = Arc::new(agentfs_tls::Leaves::new(ca)?);
    Ok(agentfs_tls::server_config(leaves)?)
}

/// Why the router cannot serve TLS.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the local certificate authority cannot be used: {0}")]
    Ca(#[from] agentfs_tls::CaError),
    #[error("TLS cannot be set up: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What a connection opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Anything else: served as HTTP/1 (a malformed request gets hyper's 400).
    Http1,
    /// HTTP/2's preface, without TLS (prior knowledge).
    H2,
    /// A TLS handshake.
    Tls,
}

/// What the first bytes of a connection say it speaks. `first` holds at
/// least one byte; fewer than the preface's length is enough to tell.
pub fn opening(first: &[u8]) -> Opening {
    match first {
        [HANDSHAKE_RECORD, ..] => Opening::Tls,
        [b'P', ..] if first.len() >= 3 && H2_PREFACE.starts_with(first) => Opening::H2,
        _ => Opening::Http1,
    }
}

/// A TLS connection, established.
pub struct Secured<IO> {
    pub stream: TlsStream<IO>,
    /// Whether ALPN chose HTTP/2.
    pub h2: bool,
}

/// The handshake on `io`, within `limit`: `None` when it failed or the
/// client named something outside `localhost` (told so by an alert).
pub async fn handshake<IO>(
    io: IO,
    config: &Arc<ServerConfig>,
    limit: Duration,
) -> Option<Secured<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let secured = tokio::time::timeout(limit, async {
        let start = LazyConfigAcceptor::new(Acceptor::default(), io).await?;
        if let Some(name) = start.client_hello().server_name() {
            if !agentfs_tls::is_local_name(name) {
                tracing::debug!(name, "TLS for a name outside localhost: refused");
                let mut io = start.io;
                io.write_all(&UNRECOGNIZED_NAME).await?;
                let _ = io.shutdown().await;
                return Err(io::Error::other("name outside localhost"));
            }
        }
        let stream = start.into_stream(Arc::clone(config)).await?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        io::Result::Ok(Secured { stream, h2 })
    })
    .await;
    match secured {
        Ok(Ok(secured)) => Some(secured),
        Ok(Err(err)) => {
            tracing::debug!(%err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_tell_the_protocol() {
        assert_eq!(opening(&[0x16, 0x03, 0x01]), Opening::Tls);
        assert_eq!(opening(&[0x16]), Opening::Tls);
        assert_eq!(opening(b"PRI * HTTP/2.0\r\n"), Opening::H2);
        assert_eq!(opening(b"PRI"), Opening::H2);
        assert_eq!(opening(b"GET / HTTP/1.1\r\n"), Opening::Http1);
        assert_eq!(opening(b"POST"), Opening::Http1);
        assert_eq!(opening(b"PUT / HTTP/1.1"), Opening::Http1);
        assert_eq!(opening(b"P"), Opening::Http1);
    }
}
