//! Which TCP ports a process tree listens on, read from Linux's `/proc`.
//!
//! For apps that ignore `PORT`, and for servers that escaped the shim: the
//! tree is every process whose `ppid` chain reaches the root (from
//! `/proc/*/stat`); its sockets are the `socket:[inode]` links in
//! `/proc/PID/fd`; the listening ones are the rows of
//! `/proc/PID/net/tcp{,6}` in state `0A` with one of those inodes. A
//! listener is *shared* when a socket outside the tree listens on the same
//! port where connections could reach either (same address, or a wildcard):
//! `SO_REUSEPORT` lets a second copy of a server bind the same port, and the
//! kernel then spreads connections over both. macOS has no `/proc`: there
//! the kernel lists the tree's listening sockets (`agentfs_procs::sockets`,
//! through libproc, what `lsof` uses), and sharing is not looked for.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// `TCP_LISTEN` in the `st` column of `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// A TCP socket that a process of the tree listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeListener {
    /// As bound: `0.0.0.0:8080`, `[::]:8080`, ...
    pub addr: SocketAddr,
    /// A process of the tree that holds it.
    pub pid: u32,
    /// Another socket, outside the tree, listens where connections could reach either.
    pub shared: bool,
}

/// The listening TCP sockets of `root_pid` and all its descendants, sorted
/// by address (one entry per address).
pub fn tree_listeners(root_pid: u32) -> Vec<TreeListener> {
    if cfg!(target_os = "macos") {
        let tree = agentfs_procs::descendants(root_pid);
        return agentfs_procs::sockets::tcp_listeners(&tree)
            .into_iter()
            .map(|(addr, pid)| TreeListener {
                addr,
                pid,
                shared: false,
            })
            .collect();
    }
    listeners_in(Path::new("/proc"), root_pid)
}

/// [`tree_listeners`] under another procfs mount.
pub fn listeners_in(proc_root: &Path, root_pid: u32) -> Vec<TreeListener> {
    let owners: HashMap<u64, u32> = process_tree(proc_root, root_pid)
        .into_iter()
        .flat_map(|pid| {
            socket_inodes(proc_root, pid)
                .into_iter()
                .map(move |i| (i, pid))
        })
        .collect();
    if owners.is_empty() {
        return Vec::new();
    }
    let all: Vec<(SocketAddr, u64)> = ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| {
            fs::read_to_string(proc_root.join(format!("{root_pid}/net/{table}"))).ok()
        })
        .flat_map(|text| parse_listeners(&text))
        .collect();
    let mut found: Vec<TreeListener> = all
        .iter()
        .filter_map(|(addr, inode)| {
            let pid = *owners.get(inode)?;
            let shared = all
                .iter()
                .any(|(other, i)| !owners.contains_key(i) && overlap(addr, other));
            Some(TreeListener {
                addr: *addr,
                pid,
                shared,
            })
        })
        .collect();
    found.sort_by_key(|l| l.addr);
    found.dedup_by_key(|l| l.addr);
    found
}

/// A process outside the tree of `root_pid` that listens where the tree's
/// listener `addr` does (the other half of a shared port), when `/proc`
/// tells which. Scans every process's descriptors: for reports, not polls.
pub fn other_listener(root_pid: u32, addr: SocketAddr) -> Option<u32> {
    let proc_root = Path::new("/proc");
    let tree: Vec<u32> = process_tree(proc_root, root_pid);
    let ours: std::collections::HashSet<u64> = tree
        .iter()
        .flat_map(|pid| socket_inodes(proc_root, *pid))
        .collect();
    let theirs: Vec<u64> = ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| {
            fs::read_to_string(proc_root.join(format!("{root_pid}/net/{table}"))).ok()
        })
        .flat_map(|text| parse_listeners(&text))
        .filter(|(other, inode)| !ours.contains(inode) && overlap(&addr, other))
        .map(|(_, inode)| inode)
        .collect();
    let pids = fs::read_dir(proc_root).ok()?;
    pids.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !tree.contains(pid))
        .find(|pid| {
            socket_inodes(proc_root, *pid)
                .iter()
                .any(|inode| theirs.contains(inode))
        })
}

/// Whether connections to one listening address could reach the other.
fn overlap(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Where to connect to reach a listener: its own address, or loopback for a
/// wildcard bind.
pub fn connect_addr(listening: SocketAddr) -> SocketAddr {
    let ip = match listening.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listening.port())
}

/// `root` and every process descended from it.
fn process_tree(proc_root: &Path, root: u32) -> Vec<u32> {
    agentfs_procs::descendants_in(proc_root, root)
}

/// The inodes of the sockets process `pid` holds (`socket:[N]` links in
/// `/proc/PID/fd`).
pub fn socket_inodes(proc_root: &Path, pid: u32) -> Vec<u64> {
    let Ok(fds) = fs::read_dir(proc_root.join(format!("{pid}/fd"))) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let text = target.to_str()?;
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The listening rows of a `/proc/net/tcp` or `tcp6` table: `(address, inode)`.
pub fn parse_listeners(table: &str) -> Vec<(SocketAddr, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            if cols.get(3) != Some(&TCP_LISTEN) {
                return None;
            }
            let addr = parse_hex_addr(cols.get(1)?)?;
            let inode = cols.get(9)?.parse().ok()?;
            Some((addr, inode))
        })
        .collect()
}

/// `0100007F:1F90` → `127.0.0.1:8080`. The kernel prints each 32-bit word of
/// the address as a native-endian integer, and the port in hex.
fn parse_hex_addr(field: &str) -> Option<SocketAddr> {
    let (ip_hex, port_hex) = field.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let words: Option<Vec<[u8; 4]>> = (0..ip_hex.len() / 8)
        .map(|i| {
            let word = u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
            Some(word.to_ne_bytes())
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    let ip = match (ip_hex.len(), bytes.len()) {
        (8, 4) => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        (32, 16) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
#[path = "procnet_tests.rs"]
mod tests;
