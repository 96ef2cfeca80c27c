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
    let found = tree_listeners(std::process::id());
    let ours = found.iter().find(|l| l.addr == addr).expect("our listener");
    assert_eq!(ours.pid, std::process::id());
    assert!(!ours.shared);
}

#[test]
fn a_port_a_stranger_also_listens_on_is_shared() {
    // Two unrelated processes on one port, as SO_REUSEPORT allows: seen from
    // the first one's tree, the second is a stranger.
    let script = "import socket,sys\n\
        s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n\
        s.bind(('127.0.0.1',int(sys.argv[1]))); s.listen()\n\
        print('ok', flush=True); sys.stdin.read()";
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let spawn = || {
        let mut child = Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ok");
        child
    };
    let (mut a, mut b) = (spawn(), spawn());
    let seen = tree_listeners(a.id());
    for child in [&mut a, &mut b] {
        child.stdin.take();
        child.wait().unwrap();
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].shared, "{seen:?}");
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
    let found: Vec<SocketAddr> = tree_listeners(tree.id()).iter().map(|l| l.addr).collect();
    let stranger = TcpListener::bind("127.0.0.1:0").unwrap();
    let stranger_port = stranger.local_addr().unwrap().port();
    let found_after: Vec<SocketAddr> = tree_listeners(tree.id()).iter().map(|l| l.addr).collect();
    tree.stdin.take().unwrap().write_all(b"").unwrap();
    tree.wait().unwrap();
    assert!(
        found.iter().any(|a| a.port() == port),
        "port {port} not in {found:?}"
    );
    assert!(!found_after.iter().any(|a| a.port() == stranger_port));
    assert!(tree_listeners(u32::MAX).is_empty());
}
