//! One forwarded connection, either way across the namespace's edge: copy
//! both ways at once until both sides are done, so backpressure and
//! half-close carry through. A target that refuses just closes the client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};

/// A local target accepts or refuses at once; this only guards against a
/// wedged one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection from the run directory to the program's port in the namespace.
pub async fn to_tcp(mut client: UnixStream, target: SocketAddr) {
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
    let Ok(Ok(mut upstream)) = connected else {
        let _ = client.shutdown().await;
        return;
    };
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// A connection from the namespace's loopback to a listener of the instance.
pub async fn to_unix(mut client: TcpStream, socket: PathBuf) {
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&socket)).await;
    let Ok(Ok(mut upstream)) = connected else {
        let _ = client.shutdown().await;
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
