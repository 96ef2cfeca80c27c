//! `/proc` parsing on sample text, and discovery on real processes.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

#[cfg(target_endian = "little")]
#[test]
fn table_rows_parse() {
    let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 100 0 0 10 0\n";
    assert_eq!(
        parse_listeners(table),
        vec![("127.0.0.1:8080".parse().unwrap(), 12345)]
    );
    let v6 = "header\n   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 777 1\n";
    assert_eq!(
        parse_listeners(v6),
        vec![("[::1]:3000".parse().unwrap(), 777)]
    );
    assert!(parse_listeners("h\n 0: zz:zz 0:0 0A\n garbage\n").is_empty());
}

#[test]
fn stat_ppid_survives_odd_names() {
    assert_eq!(parent_of("42 (a) b) c) S 7 42 42 0"), Some(7));
    assert_eq!(parent_of("42 (x) R"), None);
    assert_eq!(parent_of(""), None);
}

#[test]
fn wildcards_connect_to_loopback() {
    assert_eq!(
        connect_addr("0.0.0.0:80".parse().unwrap()),
        "127.0.0.1:80".parse().unwrap()
    );
    assert_eq!(
        connect_addr("[::]:80".parse().unwrap()),
        "[::1]:80".parse().unwrap()
    );
    assert_eq!(
        connect_addr("10.1.2.3:80".parse().unwrap()),
        "10.1.2.3:80".parse().unwrap()
    );
}

#[test]
fn finds_our_own_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(listening_tcp_ports(std::process::id()).contains(&addr));
}

#[test]
fn finds_a_grandchilds_listener_and_not_a_strangers() {
    // sh -> python3: the listener belongs to a grandchild of this test.
    let script = "import socket,sys\n\
        s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
        print(s.getsockname()[1], flush=True); sys.stdin.read()";
    let mut tree = Command::new("sh")
        .args(["-c", "python3 -c \"$0\"; :", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(tree.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let found = listening_tcp_ports(tree.id());
    let stranger = TcpListener::bind("127.0.0.1:0").unwrap();
    let stranger_port = stranger.local_addr().unwrap().port();
    let found_after = listening_tcp_ports(tree.id());
    tree.stdin.take().unwrap().write_all(b"").unwrap();
    tree.wait().unwrap();
    assert!(
        found.iter().any(|a| a.port() == port),
        "port {port} not in {found:?}"
    );
    assert!(!found_after.iter().any(|a| a.port() == stranger_port));
    assert_eq!(listening_tcp_ports(u32::MAX), Vec::<SocketAddr>::new());
}
