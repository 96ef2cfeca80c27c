//! The door to the host's loopback: `netns-run`, which stays in the host's
//! network namespace, listens on a Unix socket in the handshake directory;
//! init, inside the namespace, connects there for a connection to one of
//! the host's ports, says which in two bytes, and the two copy both ways.
//! The host's services are reached this way rather than through pasta:
//! pasta ends on the SIGTERM that reaches every process of the app's tree
//! when the app is told to stop, and a program finishing its requests then
//! still needs its database on the host.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// The door's socket in the handshake directory.
pub fn path(scratch: &Path) -> PathBuf {
    scratch.join("door.sock")
}

/// `netns-run`'s side: serves the door until the runtime ends.
pub fn open(scratch: &Path) -> Result<UnixListener> {
    let path = path(scratch);
    UnixListener::bind(&path).with_context(|| format!("could not bind {}", path.display()))
}

pub async fn serve(door: UnixListener) {
    loop {
        match door.accept().await {
            Ok((client, _)) => {
                tokio::spawn(pass(client));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// One connection: the port, then the bytes, to the host's loopback (IPv4
/// first, then IPv6, as a client of `localhost` would try them).
async fn pass(mut client: UnixStream) {
    let Ok(port) = client.read_u16().await else {
        return;
    };
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let upstream = match TcpStream::connect(v4).await {
        Ok(stream) => Ok(stream),
        Err(_) => TcpStream::connect(v6).await,
    };
    let Ok(mut upstream) = upstream else {
        let _ = client.shutdown().await;
        return;
    };
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// init's side: a connection from the namespace's loopback to the host's `port`.
pub async fn through(mut client: TcpStream, door: PathBuf, port: u16) {
    let Ok(mut upstream) = UnixStream::connect(&door).await else {
        let _ = client.shutdown().await;
        return;
    };
    if upstream.write_u16(port).await.is_err() {
        return;
    }
    let _ = client.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
