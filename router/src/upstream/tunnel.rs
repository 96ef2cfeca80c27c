//! An upgraded connection (a WebSocket, say): after the instance's 101, bytes
//! are copied both ways between the client's connection and the instance's.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::conn::Conn;
use crate::table::InFlight;

/// Joins the client's side, once hyper hands it over, to `conn`. Bytes the
/// instance sent right after its 101 (already read) reach the client first.
/// The request stays in flight at its instance while the tunnel is open.
pub fn open(client: OnUpgrade, conn: Conn, guard: InFlight) {
    tokio::spawn(async move {
        let _guard = guard;
        let client = match client.await {
            Ok(client) => client,
            Err(err) => {
                tracing::debug!(%err, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let Conn { mut stream, buf } = conn;
        if !buf.is_empty() {
            if let Err(err) = client.write_all(&buf).await {
                tracing::debug!(%err, "tunnel closed");
                return;
            }
        }
        if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut stream).await {
            tracing::debug!(%err, "tunnel closed");
        }
    });
}
