//! One small HTTP/1.0 GET with a deadline, over TCP or a Unix socket: how
//! doctor asks the router and its probe, the way a client would.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Largest answer read.
const MAX_ANSWER: u64 = 1024 * 1024;

/// An answer's status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// `GET path` with `Host: host` to `addr` over TCP.
pub fn get_tcp(addr: SocketAddr, host: &str, path: &str, timeout: Duration) -> io::Result<Answer> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    exchange(stream, host, path)
}

/// `GET path` with `Host: host` over the Unix socket at `socket`.
pub fn get_unix(socket: &Path, host: &str, path: &str, timeout: Duration) -> io::Result<Answer> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    exchange(stream, host, path)
}

fn exchange(mut stream: impl Read + Write, host: &str, path: &str) -> io::Result<Answer> {
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut raw)?;
    parse(&raw).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not an HTTP answer: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(80)])
            ),
        )
    })
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = String::from_utf8_lossy(&raw[end + 4..]).into_owned();
    Some(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let answer = parse(b"HTTP/1.1 404 Not Found\r\nA: b\r\n\r\n{\"x\":1}").unwrap();
        assert_eq!(answer.status, 404);
        assert_eq!(answer.json().unwrap()["x"], 1);
        assert!(parse(b"SSH-2.0-OpenSSH\r\n").is_none());
    }
}
