//! The TCP sockets a set of processes listens on, as macOS's kernel tells
//! them (`proc_pidinfo(PROC_PIDLISTFDS)`, then
//! `proc_pidfdinfo(PROC_PIDFDSOCKETINFO)` per socket, what `lsof` reads).
//! Linux reads `/proc` instead (the launcher's `procnet`).
//!
//! The kernel answers with a `struct socket_fdinfo` (xnu's
//! `bsd/sys/proc_info.h`); [`parse_listener`] reads the few fields it
//! needs at their fixed offsets, so it is plain byte parsing that is tested
//! on every platform:
//!
//! ```text
//! socket_fdinfo (792 bytes)
//!   pfi: proc_fileinfo            0   24 bytes
//!   psi: socket_info             24
//!     soi_stat: vinfo_stat       24   136 bytes
//!     soi_kind: int             256   SOCKINFO_TCP = 2
//!     soi_proto (union)         264   8-aligned, after rfu_1
//!       pri_tcp.tcpsi_ini: in_sockinfo
//!         insi_lport: int       268   the port in network byte order
//!         insi_vflag: u8        288   INI_IPV4 = 1, INI_IPV6 = 2
//!         insi_laddr (16 bytes) 312   v6 address, or v4 in its last 4 bytes
//!       pri_tcp.tcpsi_state     344   TSI_S_LISTEN = 1
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `sizeof(struct socket_fdinfo)`.
pub const SOCKET_FDINFO_SIZE: usize = 792;
const SOI_KIND: usize = 256;
const INSI_LPORT: usize = 268;
const INSI_VFLAG: usize = 288;
const INSI_LADDR: usize = 312;
const TCPSI_STATE: usize = 344;
const SOCKINFO_TCP: i32 = 2;
const TSI_S_LISTEN: i32 = 1;
const INI_IPV4: u8 = 1;
const INI_IPV6: u8 = 2;

fn int_at(info: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(info.get(at..at + 4)?.try_into().ok()?))
}

/// The address a `socket_fdinfo` listens on, if it is a listening TCP socket.
pub fn parse_listener(info: &[u8]) -> Option<SocketAddr> {
    if info.len() < SOCKET_FDINFO_SIZE
        || int_at(info, SOI_KIND)? != SOCKINFO_TCP
        || int_at(info, TCPSI_STATE)? != TSI_S_LISTEN
    {
        return None;
    }
    let port = u16::from_be(int_at(info, INSI_LPORT)? as u16);
    let addr = info.get(INSI_LADDR..INSI_LADDR + 16)?;
    let ip = match *info.get(INSI_VFLAG)? {
        flag if flag & INI_IPV6 != 0 => {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(addr).ok()?))
        }
        flag if flag & INI_IPV4 != 0 => {
            IpAddr::V4(Ipv4Addr::new(addr[12], addr[13], addr[14], addr[15]))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The listening TCP sockets of `pids`, each with the process that holds
/// it, sorted and one per address.
#[cfg(target_os = "macos")]
pub fn tcp_listeners(pids: &[u32]) -> Vec<(SocketAddr, u32)> {
    let mut found: Vec<(SocketAddr, u32)> = pids
        .iter()
        .flat_map(|&pid| socket_fds(pid).into_iter().map(move |fd| (pid, fd)))
        .filter_map(|(pid, fd)| Some((parse_listener(&socket_info(pid, fd)?)?, pid)))
        .collect();
    found.sort();
    found.dedup_by_key(|(addr, _)| *addr);
    found
}

/// No such kernel interface elsewhere.
#[cfg(not(target_os = "macos"))]
pub fn tcp_listeners(_pids: &[u32]) -> Vec<(SocketAddr, u32)> {
    Vec::new()
}

/// The descriptors of `pid` that are sockets (the shim asks it of its own
/// process, for listeners inherited across exec).
#[cfg(target_os = "macos")]
pub fn socket_fds(pid: u32) -> Vec<i32> {
    const MAX_LISTED: usize = 4096;
    let Ok(pid) = libc::c_int::try_from(pid) else {
        return Vec::new();
    };
    let mut fds: Vec<libc::proc_fdinfo> = Vec::with_capacity(MAX_LISTED);
    let room = (MAX_LISTED * std::mem::size_of::<libc::proc_fdinfo>()) as libc::c_int;
    // SAFETY: the buffer has room for MAX_LISTED entries, as `room` says.
    let bytes =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, fds.as_mut_ptr().cast(), room) };
    let count = usize::try_from(bytes).unwrap_or(0) / std::mem::size_of::<libc::proc_fdinfo>();
    // SAFETY: proc_pidinfo initialised `count` entries.
    unsafe { fds.set_len(count.min(MAX_LISTED)) };
    fds.iter()
        .filter(|info| info.proc_fdtype == libc::PROX_FDTYPE_SOCKET as u32)
        .map(|info| info.proc_fd)
        .collect()
}

/// `struct socket_fdinfo` of descriptor `fd` of `pid`, as bytes.
#[cfg(target_os = "macos")]
fn socket_info(pid: u32, fd: i32) -> Option<Vec<u8>> {
    const PROC_PIDFDSOCKETINFO: libc::c_int = 3;
    let mut info = vec![0u8; SOCKET_FDINFO_SIZE];
    // SAFETY: the buffer holds SOCKET_FDINFO_SIZE bytes, as the size says.
    let got = unsafe {
        libc::proc_pidfdinfo(
            libc::c_int::try_from(pid).ok()?,
            fd,
            PROC_PIDFDSOCKETINFO,
            info.as_mut_ptr().cast(),
            SOCKET_FDINFO_SIZE as libc::c_int,
        )
    };
    (usize::try_from(got).ok()? == SOCKET_FDINFO_SIZE).then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `socket_fdinfo` as the kernel would fill it.
    fn info(kind: i32, state: i32, vflag: u8, addr: [u8; 16], port: u16) -> Vec<u8> {
        let mut info = vec![0u8; SOCKET_FDINFO_SIZE];
        info[SOI_KIND..SOI_KIND + 4].copy_from_slice(&kind.to_ne_bytes());
        info[TCPSI_STATE..TCPSI_STATE + 4].copy_from_slice(&state.to_ne_bytes());
        info[INSI_VFLAG] = vflag;
        info[INSI_LADDR..INSI_LADDR + 16].copy_from_slice(&addr);
        let lport = i32::from(u16::from_ne_bytes(port.to_be_bytes()));
        info[INSI_LPORT..INSI_LPORT + 4].copy_from_slice(&lport.to_ne_bytes());
        info
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut addr = [0u8; 16];
        addr[12..].copy_from_slice(&a);
        addr
    }

    #[test]
    fn listening_tcp_sockets_give_their_address() {
        let loopback = info(
            SOCKINFO_TCP,
            TSI_S_LISTEN,
            INI_IPV4,
            v4([127, 0, 0, 1]),
            8080,
        );
        assert_eq!(
            parse_listener(&loopback),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        let any6 = info(SOCKINFO_TCP, TSI_S_LISTEN, INI_IPV6, [0; 16], 20090);
        assert_eq!(parse_listener(&any6), Some("[::]:20090".parse().unwrap()));
        let mut one = [0u8; 16];
        one[15] = 1;
        let dual = info(SOCKINFO_TCP, TSI_S_LISTEN, INI_IPV4 | INI_IPV6, one, 3000);
        assert_eq!(parse_listener(&dual), Some("[::1]:3000".parse().unwrap()));
    }

    #[test]
    fn everything_else_is_not_a_listener() {
        let established = info(SOCKINFO_TCP, 4, INI_IPV4, v4([127, 0, 0, 1]), 8080);
        assert_eq!(parse_listener(&established), None);
        let unix = info(3, TSI_S_LISTEN, 0, [0; 16], 0);
        assert_eq!(parse_listener(&unix), None);
        let no_family = info(SOCKINFO_TCP, TSI_S_LISTEN, 0, [0; 16], 80);
        assert_eq!(parse_listener(&no_family), None);
        let short = info(SOCKINFO_TCP, TSI_S_LISTEN, INI_IPV4, v4([1, 2, 3, 4]), 1);
        assert_eq!(parse_listener(&short[..SOCKET_FDINFO_SIZE - 1]), None);
        assert_eq!(parse_listener(&[]), None);
    }
}
