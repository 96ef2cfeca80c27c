//! Socket addresses across the FFI boundary: reading what the app passes,
//! and writing answers into its buffers with the kernel's truncation rules.

use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libc::{
    sa_family_t, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_storage, sockaddr_un, socklen_t,
};

/// A `sockaddr_storage` we own.
pub struct Storage(sockaddr_storage);

impl Storage {
    pub fn zeroed() -> Storage {
        // SAFETY: all-zero bytes are a valid sockaddr_storage.
        Storage(unsafe { mem::zeroed() })
    }

    pub fn capacity() -> socklen_t {
        mem::size_of::<sockaddr_storage>() as socklen_t
    }

    pub fn as_mut_ptr(&mut self) -> *mut sockaddr {
        (&raw mut self.0).cast()
    }

    pub fn as_ptr(&self) -> *const sockaddr {
        (&raw const self.0).cast()
    }

    pub fn family(&self) -> i32 {
        i32::from(self.0.ss_family)
    }

    /// The path of a bound AF_UNIX address (empty for unnamed sockets).
    pub fn unix_path(&self, len: socklen_t) -> Option<&[u8]> {
        if self.family() != libc::AF_UNIX {
            return None;
        }
        // SAFETY: the family says this storage holds a sockaddr_un, which fits in it.
        let un: &sockaddr_un = unsafe { &*(&raw const self.0).cast::<sockaddr_un>() };
        let offset = mem::offset_of!(sockaddr_un, sun_path);
        let max = (len as usize).saturating_sub(offset).min(un.sun_path.len());
        // SAFETY: c_char and u8 have the same size; max is within sun_path.
        let bytes: &[u8] =
            unsafe { std::slice::from_raw_parts(un.sun_path.as_ptr().cast::<u8>(), max) };
        Some(bytes.split(|&b| b == 0).next().unwrap_or(&[]))
    }

    /// Encodes an IP socket address.
    pub fn from_inet(addr: &SocketAddr) -> (Storage, socklen_t) {
        let mut storage = Storage::zeroed();
        let len = match addr {
            SocketAddr::V4(v4) => {
                // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
                let sin = unsafe { &mut *(&raw mut storage.0).cast::<sockaddr_in>() };
                sin.sin_family = libc::AF_INET as sa_family_t;
                sin.sin_port = v4.port().to_be();
                sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
                #[cfg(target_os = "macos")]
                {
                    sin.sin_len = mem::size_of::<sockaddr_in>() as u8;
                }
                mem::size_of::<sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
                let sin6 = unsafe { &mut *(&raw mut storage.0).cast::<sockaddr_in6>() };
                sin6.sin6_family = libc::AF_INET6 as sa_family_t;
                sin6.sin6_port = v6.port().to_be();
                sin6.sin6_addr.s6_addr = v6.ip().octets();
                sin6.sin6_flowinfo = v6.flowinfo();
                sin6.sin6_scope_id = v6.scope_id();
                #[cfg(target_os = "macos")]
                {
                    sin6.sin6_len = mem::size_of::<sockaddr_in6>() as u8;
                }
                mem::size_of::<sockaddr_in6>()
            }
        };
        (storage, len as socklen_t)
    }
}

/// Reads an AF_INET or AF_INET6 address the app passed; anything else is `None`.
///
/// # Safety
/// `addr` must be null or valid for reads of `len` bytes.
pub unsafe fn read_inet(addr: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    if addr.is_null() || (len as usize) < mem::size_of::<sa_family_t>() + 2 {
        return None;
    }
    // SAFETY: the caller guarantees len readable bytes; we check len per family.
    let family = i32::from(unsafe { (*addr).sa_family });
    match family {
        libc::AF_INET if len as usize >= mem::size_of::<sockaddr_in>() => {
            // SAFETY: checked length; read_unaligned since the app's buffer may be unaligned.
            let sin = unsafe { addr.cast::<sockaddr_in>().read_unaligned() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= mem::size_of::<sockaddr_in6>() => {
            // SAFETY: as above.
            let sin6 = unsafe { addr.cast::<sockaddr_in6>().read_unaligned() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Copies an address into the app's buffer as the kernel would: at most
/// `*len` bytes, then `*len` set to the address's full size.
///
/// # Safety
/// `addr` must be null or valid for writes of `*len` bytes; `len` must be
/// null or valid.
pub unsafe fn write_to_app(
    src: &Storage,
    src_len: socklen_t,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) {
    if addr.is_null() || len.is_null() {
        return;
    }
    // SAFETY: the caller guarantees len is valid.
    let room = unsafe { *len } as usize;
    let count = room.min(src_len as usize);
    // SAFETY: src holds at least src_len bytes; the app's buffer holds room bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr().cast::<u8>(), addr.cast::<u8>(), count);
        *len = src_len;
    }
}

/// A `sockaddr_un` for `path`, or `None` if it does not fit `sun_path`.
pub fn unix(path: &[u8]) -> Option<(sockaddr_un, socklen_t)> {
    // SAFETY: all-zero bytes are a valid sockaddr_un.
    let mut un: sockaddr_un = unsafe { mem::zeroed() };
    if path.len() >= un.sun_path.len() || path.contains(&0) {
        return None;
    }
    un.sun_family = libc::AF_UNIX as sa_family_t;
    for (dst, &src) in un.sun_path.iter_mut().zip(path) {
        *dst = src as libc::c_char;
    }
    let len = mem::offset_of!(sockaddr_un, sun_path) + path.len() + 1;
    #[cfg(target_os = "macos")]
    {
        un.sun_len = len as u8;
    }
    Some((un, len as socklen_t))
}

/// The loopback address of the same family as `like`.
pub fn loopback_like(like: &SocketAddr, port: u16) -> SocketAddr {
    match like {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_round_trip() {
        for addr in ["127.0.0.1:3000", "[::]:0", "[::1]:8080", "0.0.0.0:65535"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let (storage, len) = Storage::from_inet(&addr);
            // SAFETY: storage holds len bytes.
            assert_eq!(unsafe { read_inet(storage.as_ptr(), len) }, Some(addr));
        }
    }

    #[test]
    fn short_or_foreign_addresses_are_not_inet() {
        let (storage, len) = Storage::from_inet(&"127.0.0.1:1".parse().unwrap());
        // SAFETY: shorter reads of a valid buffer.
        assert_eq!(unsafe { read_inet(storage.as_ptr(), len - 1) }, None);
        assert_eq!(unsafe { read_inet(std::ptr::null(), 16) }, None);
        let (un, un_len) = unix(b"/tmp/x.sock").unwrap();
        assert_eq!(unsafe { read_inet((&raw const un).cast(), un_len) }, None);
    }

    #[test]
    fn writes_truncate_like_the_kernel() {
        let (storage, full) = Storage::from_inet(&"[::1]:80".parse().unwrap());
        let mut buf = [0xffu8; 8];
        let mut len: socklen_t = 8;
        // SAFETY: buf holds len bytes.
        unsafe { write_to_app(&storage, full, buf.as_mut_ptr().cast(), &mut len) };
        assert_eq!(len, full);
        assert_eq!(
            i32::from(u16::from_ne_bytes([buf[0], buf[1]])),
            libc::AF_INET6
        );
    }

    #[test]
    fn unix_paths_must_fit() {
        assert!(unix(&[b'a'; 200]).is_none());
        let (un, len) = unix(b"/r/a.sock").unwrap();
        let mut storage = Storage::zeroed();
        // SAFETY: sockaddr_un fits in sockaddr_storage.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&raw const un).cast::<u8>(),
                storage.as_mut_ptr().cast::<u8>(),
                len as usize,
            )
        };
        assert_eq!(storage.unix_path(len), Some(&b"/r/a.sock"[..]));
    }
}
