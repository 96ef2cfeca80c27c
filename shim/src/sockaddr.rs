//! Socket addresses across the FFI boundary: reading what the app passes,
//! and writing answers into its buffers in the family of the descriptor it
//! asked about, with the kernel's truncation rules.

use std::mem::{self, MaybeUninit};
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

/// The address family of a descriptor as the app created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }

    /// The family an address buffer of `room` bytes was sized for, when the
    /// size tells: big enough for a `sockaddr_in` but not a `sockaddr_in6`
    /// can only be meant for AF_INET (Python sizes buffers this way).
    pub fn sized_for(room: socklen_t) -> Option<Family> {
        let room = room as usize;
        (mem::size_of::<sockaddr_in>()..mem::size_of::<sockaddr_in6>())
            .contains(&room)
            .then_some(Family::V4)
    }

    /// The wildcard address of this family.
    pub fn wildcard(self, port: u16) -> SocketAddr {
        match self {
            Family::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            Family::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        }
    }

    /// The loopback address of this family.
    pub fn loopback(self, port: u16) -> SocketAddr {
        match self {
            Family::V4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            Family::V6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        }
    }
}

/// `addr` as an address of `family`, as a socket of that family would see
/// it: an IPv4 address on an IPv6 socket is v4-mapped (`::ffff:a.b.c.d`,
/// the wildcard stays a wildcard); an IPv6 address on an IPv4 socket is its
/// IPv4 counterpart where it has one, else IPv4 loopback, where agentfs
/// really serves.
pub fn in_family(addr: SocketAddr, family: Family) -> SocketAddr {
    let port = addr.port();
    match (addr.ip(), family) {
        (IpAddr::V4(_), Family::V4) | (IpAddr::V6(_), Family::V6) => addr,
        (IpAddr::V4(v4), Family::V6) if v4.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
        }
        (IpAddr::V4(v4), Family::V6) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), port),
        (IpAddr::V6(v6), Family::V4) => {
            let v4 = if v6.is_unspecified() {
                Ipv4Addr::UNSPECIFIED
            } else {
                v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::LOCALHOST)
            };
            SocketAddr::new(IpAddr::V4(v4), port)
        }
    }
}

/// Writes `addr`, as an address of `family`, into the app's buffer `dst` as
/// the kernel would: the first `dst.len()` bytes of the encoded address at
/// most, nothing beyond. Returns the full size of the address, which is
/// what the kernel stores in the caller's length.
pub fn write_answer(addr: SocketAddr, family: Family, dst: &mut [MaybeUninit<u8>]) -> socklen_t {
    let (storage, len) = Storage::from_inet(&in_family(addr, family));
    // SAFETY: the storage holds `len` initialised bytes.
    let src = unsafe { std::slice::from_raw_parts(storage.as_ptr().cast::<u8>(), len as usize) };
    for (to, &from) in dst.iter_mut().zip(src) {
        to.write(from);
    }
    len
}

/// The app's address buffer as bytes to write: `room` bytes at `addr`, or
/// none when `addr` is null.
///
/// # Safety
/// `addr` must be null or valid for writes of `room` bytes for `'a`.
pub unsafe fn app_buffer<'a>(addr: *mut sockaddr, room: socklen_t) -> &'a mut [MaybeUninit<u8>] {
    if addr.is_null() {
        return &mut [];
    }
    // SAFETY: the caller guarantees room writable bytes; MaybeUninit makes
    // no claim about their contents.
    unsafe { std::slice::from_raw_parts_mut(addr.cast::<MaybeUninit<u8>>(), room as usize) }
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

    /// Decodes what `write_answer` left in a buffer big enough for it.
    fn decode(buf: &[MaybeUninit<u8>], len: socklen_t) -> SocketAddr {
        let mut storage = Storage::zeroed();
        // SAFETY: write_answer initialised the first len bytes; they fit the storage.
        unsafe {
            std::ptr::copy_nonoverlapping(
                buf.as_ptr().cast::<u8>(),
                storage.as_mut_ptr().cast::<u8>(),
                len as usize,
            );
            read_inet(storage.as_ptr(), len).expect("an IP address")
        }
    }

    #[test]
    fn answers_are_in_the_asked_family_and_truncated_like_the_kernel() {
        const SENTINEL: u8 = 0xa5;
        let bound: [SocketAddr; 6] = [
            "0.0.0.0:8081".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
            "10.1.2.3:65535".parse().unwrap(),
            "[::]:8081".parse().unwrap(),
            "[::1]:80".parse().unwrap(),
            "[fe80::1]:443".parse().unwrap(),
        ];
        let in_len = mem::size_of::<sockaddr_in>();
        let in6_len = mem::size_of::<sockaddr_in6>();
        for addr in bound {
            for family in [Family::V4, Family::V6] {
                let full = match family {
                    Family::V4 => in_len,
                    Family::V6 => in6_len,
                };
                let expected = in_family(addr, family);
                assert_eq!(Family::of(&expected), family, "{addr} as {family:?}");
                assert_eq!(expected.port(), addr.port());
                let (whole, whole_len) = Storage::from_inet(&expected);
                // SAFETY: the storage holds whole_len bytes.
                let whole = unsafe {
                    std::slice::from_raw_parts(whole.as_ptr().cast::<u8>(), whole_len as usize)
                };
                for room in 0..=in6_len + 4 {
                    let mut buf = [MaybeUninit::new(SENTINEL); 40];
                    let len = write_answer(addr, family, &mut buf[..room]);
                    let case = format!("{addr} as {family:?} into {room} bytes");
                    assert_eq!(len as usize, full, "{case}: the full size");
                    let written = room.min(full);
                    // SAFETY: every byte was initialised, by the sentinel or the answer.
                    let bytes: Vec<u8> = buf.iter().map(|b| unsafe { b.assume_init() }).collect();
                    assert_eq!(&bytes[..written], &whole[..written], "{case}: the prefix");
                    assert!(
                        bytes[written..].iter().all(|&b| b == SENTINEL),
                        "{case}: nothing written past the answer or the buffer"
                    );
                    if room >= full {
                        assert_eq!(decode(&buf, len), expected, "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn addresses_keep_their_meaning_across_families() {
        let cases = [
            ("0.0.0.0:1", Family::V6, "[::]:1"),
            ("127.0.0.1:2", Family::V6, "[::ffff:127.0.0.1]:2"),
            ("[::]:3", Family::V4, "0.0.0.0:3"),
            ("[::1]:4", Family::V4, "127.0.0.1:4"),
            ("[::ffff:10.0.0.1]:5", Family::V4, "10.0.0.1:5"),
            ("[fe80::1]:6", Family::V4, "127.0.0.1:6"),
            ("[::1]:7", Family::V6, "[::1]:7"),
        ];
        for (addr, family, expected) in cases {
            assert_eq!(
                in_family(addr.parse().unwrap(), family),
                expected.parse::<SocketAddr>().unwrap(),
                "{addr} as {family:?}"
            );
        }
    }

    #[test]
    fn only_an_inet_sized_buffer_tells_its_family() {
        let in_len = mem::size_of::<sockaddr_in>() as socklen_t;
        let in6_len = mem::size_of::<sockaddr_in6>() as socklen_t;
        assert_eq!(Family::sized_for(in_len), Some(Family::V4));
        assert_eq!(Family::sized_for(in6_len - 1), Some(Family::V4));
        for room in [0, 2, in_len - 1, in6_len, 128] {
            assert_eq!(Family::sized_for(room), None, "{room}");
        }
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
