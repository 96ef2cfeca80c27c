//! The TCP sockets listening in one network namespace, asked of the kernel
//! over `NETLINK_SOCK_DIAG` (what `ss -lt` uses) with a filter for the
//! listening state.
//!
//! Not `/proc/net/tcp`: reading that walks the whole established-connection
//! hash table, which the kernel shares between namespaces (262,144 buckets
//! on the machines this was measured on: about 10 ms per read, per family,
//! even in a namespace with three sockets). A listening-only dump walks
//! only the listening table. A diag socket answers for the namespace it
//! was opened in, wherever its holder moves later: init opens one before
//! it leaves the host's namespace (the host's ports) and one after (the
//! program's).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

/// `SOCK_DIAG_BY_FAMILY`, the request and answer type.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// `TCP_LISTEN` is state 10; the filter is a bit mask of states.
const LISTENING: u32 = 1 << 10;
const NLMSG_HEADER: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, extensions, padding,
/// states, and a socket id of 48 bytes.
const REQUEST: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retrans, the socket id
/// (ports, addresses, interface, cookie), then expires, queues, uid, inode.
const DIAG_MSG: usize = 72;

/// A diag socket, bound to the network namespace it was opened in.
pub struct Diag(OwnedFd);

impl Diag {
    pub fn open() -> io::Result<Diag> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?;
        // The kernel answers at once; never wait on it for long.
        let limit = nix::sys::time::TimeVal::new(1, 0);
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &limit)?;
        Ok(Diag(fd))
    }

    /// The listening TCP sockets of both families: address and inode.
    pub fn listeners(&self) -> io::Result<Vec<(SocketAddr, u64)>> {
        let mut found = self.dump(nix::libc::AF_INET as u8)?;
        found.extend(self.dump(nix::libc::AF_INET6 as u8)?);
        Ok(found)
    }

    fn dump(&self, family: u8) -> io::Result<Vec<(SocketAddr, u64)>> {
        let kernel = NetlinkAddr::new(0, 0);
        sendto(
            std::os::fd::AsRawFd::as_raw_fd(&self.0),
            &request(family),
            &kernel,
            MsgFlags::empty(),
        )?;
        let mut found = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = recv(
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                &mut buf,
                MsgFlags::empty(),
            )?;
            if n == 0 {
                return Ok(found);
            }
            if parse(&buf[..n], &mut found)? {
                return Ok(found);
            }
        }
    }
}

/// A dump request for `family`'s listening TCP sockets.
fn request(family: u8) -> Vec<u8> {
    let len = NLMSG_HEADER + REQUEST;
    let mut msg = Vec::with_capacity(len);
    msg.extend((len as u32).to_ne_bytes());
    msg.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg.extend(1u32.to_ne_bytes()); // sequence
    msg.extend(0u32.to_ne_bytes()); // port id: the kernel picks
                                    // struct inet_diag_req_v2: family, protocol, extensions, padding, states,
                                    // then a socket id that a dump ignores (48 bytes).
    msg.extend([family, nix::libc::IPPROTO_TCP as u8, 0, 0]);
    msg.extend(LISTENING.to_ne_bytes());
    msg.extend([0u8; 48]);
    msg
}

/// Adds the sockets in one datagram of answers; true once the dump is done.
fn parse(mut data: &[u8], found: &mut Vec<(SocketAddr, u64)>) -> io::Result<bool> {
    while data.len() >= NLMSG_HEADER {
        let len = u32::from_ne_bytes(data[0..4].try_into().unwrap_or_default()) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap_or_default());
        if len < NLMSG_HEADER || len > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a torn netlink answer",
            ));
        }
        let body = &data[NLMSG_HEADER..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = body
                    .get(0..4)
                    .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap_or_default()));
                return Err(io::Error::from_raw_os_error(-errno));
            }
            SOCK_DIAG_BY_FAMILY => found.extend(socket_of(body)),
            _ => {}
        }
        // Messages are aligned to 4 bytes.
        data = data.get((len + 3) & !3..).unwrap_or_default();
    }
    Ok(false)
}

/// The address and inode of one `inet_diag_msg`.
fn socket_of(msg: &[u8]) -> Option<(SocketAddr, u64)> {
    if msg.len() < DIAG_MSG {
        return None;
    }
    let port = u16::from_be_bytes([msg[4], msg[5]]);
    let ip = match i32::from(msg[0]) {
        nix::libc::AF_INET => IpAddr::V4(Ipv4Addr::new(msg[8], msg[9], msg[10], msg[11])),
        nix::libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&msg[8..24]).ok()?)),
        _ => return None,
    };
    let inode = u32::from_ne_bytes(msg[68..72].try_into().ok()?);
    Some((SocketAddr::new(ip, port), u64::from(inode)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_listener_of_this_namespace_with_its_inode() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let inode = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&listener)
        ))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
        let found = Diag::open().unwrap().listeners().unwrap();
        assert!(
            found.contains(&(addr, inode)),
            "{addr} {inode} not in {found:?}"
        );
        // A connection is not a listener.
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let found = Diag::open().unwrap().listeners().unwrap();
        assert_eq!(
            found
                .iter()
                .filter(|(a, _)| a.port() == addr.port())
                .count(),
            1
        );
    }
}
