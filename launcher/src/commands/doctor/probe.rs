//! `agentfs doctor-probe --port P` (hidden): the tiny server doctor starts
//! under the shim. It is the one agentfs process meant to run with the
//! shim loaded.
//!
//! With std's networking only, as any app would, it binds and listens on
//! 127.0.0.1:P, prints one JSON line (`{"listening":true,"getsockname":…}`
//! or `{"error":…}`), then answers each HTTP request with what the socket
//! calls told it: `getsockname` of the listener, the peer `accept` gave,
//! and `getpeername` and `getsockname` of the accepted connection. It ends
//! when its stdin closes, so it never outlives the doctor that started it.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

/// How long the probe waits for a request's head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The port to listen on, on 127.0.0.1.
    #[arg(long)]
    pub port: u16,
}

pub fn run(args: ProbeArgs) -> Result<i32> {
    std::thread::spawn(|| {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        // A normal exit, so the shim removes its files on the way out.
        std::process::exit(0);
    });
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)) {
        Ok(listener) => listener,
        Err(err) => {
            say(&json!({ "error": format!("bind 127.0.0.1:{}: {err}", args.port) }));
            return Ok(1);
        }
    };
    let sockname = shown(listener.local_addr());
    say(&json!({ "listening": true, "getsockname": sockname }));
    loop {
        match listener.accept() {
            Ok((stream, peer)) => answer(stream, &sockname, &peer.to_string()),
            Err(err) => eprintln!("agentfs doctor-probe: accept: {err}"),
        }
    }
}

/// One line on stdout, at once.
fn say(value: &serde_json::Value) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn shown(addr: io::Result<std::net::SocketAddr>) -> String {
    addr.map_or_else(|e| format!("error: {e}"), |a| a.to_string())
}

fn answer(mut stream: TcpStream, sockname: &str, accepted: &str) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = json!({
        "getsockname": sockname,
        "accept": accepted,
        "getpeername": shown(stream.peer_addr()),
        "local": shown(stream.local_addr()),
    })
    .to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}
