//! The few system calls the shim's logic needs, as small functions over raw
//! descriptors. Callers hold the reentrancy guard, so calling functions we
//! also hook reaches the real ones.

use std::io;
use std::mem;
use std::os::fd::RawFd;

use libc::{c_int, c_void, socklen_t};

use crate::sockaddr::{self, Storage};

pub fn last_errno() -> c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

pub fn set_errno(errno: c_int) {
    // SAFETY: the errno location is valid for the calling thread.
    unsafe {
        #[cfg(target_os = "linux")]
        {
            *libc::__errno_location() = errno;
        }
        #[cfg(target_os = "macos")]
        {
            *libc::__error() = errno;
        }
    }
}

fn check(ret: c_int) -> io::Result<c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn getsockopt_int(fd: RawFd, level: c_int, name: c_int) -> io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = mem::size_of::<c_int>() as socklen_t;
    // SAFETY: value and len are valid for writes of the sizes given.
    check(unsafe {
        libc::getsockopt(fd, level, name, (&raw mut value).cast::<c_void>(), &mut len)
    })?;
    Ok(value)
}

pub fn setsockopt_int(fd: RawFd, level: c_int, name: c_int, value: c_int) -> io::Result<()> {
    // SAFETY: value lives across the call and its size is given.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast::<c_void>(),
            mem::size_of::<c_int>() as socklen_t,
        )
    })?;
    Ok(())
}

pub fn fd_flags(fd: RawFd) -> io::Result<c_int> {
    // SAFETY: F_GETFD takes no argument.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })
}

pub fn status_flags(fd: RawFd) -> io::Result<c_int> {
    // SAFETY: F_GETFL takes no argument.
    check(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

pub fn set_status_flags(fd: RawFd, flags: c_int) -> io::Result<()> {
    // SAFETY: F_SETFL takes an int.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) })?;
    Ok(())
}

/// Which socket (or file) `fd` is now: its device and inode.
pub fn file_id(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: stat is plain old data; fstat fills it or fails.
    let mut stat: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: stat is valid for writes.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    Some((stat.st_dev as u64, stat.st_ino as u64))
}

/// A TCP socket bound to a port the kernel picked on the wildcard address
/// of `family` (close-on-exec, moved out of the low descriptor numbers),
/// and that port: while it stays open, no other socket on the machine can
/// take the port. Falls back to IPv4 where IPv6 sockets cannot be made.
pub fn reserve_port(family: crate::sockaddr::Family) -> io::Result<(RawFd, u16)> {
    use crate::sockaddr::Family;
    let attempt = |family: Family| -> io::Result<(RawFd, u16)> {
        let domain = match family {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        };
        // SAFETY: plain socket creation.
        let fd = check(unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) })?;
        let fd = move_high(fd);
        let (storage, len) = Storage::from_inet(&family.wildcard(0));
        // SAFETY: storage holds a valid address of len bytes.
        let bound = check(unsafe { libc::bind(fd, storage.as_ptr(), len) });
        let port = bound.ok().and_then(|_| {
            let (local, len) = local_address(fd)?;
            // SAFETY: getsockname wrote len bytes.
            unsafe { sockaddr::read_inet(local.as_ptr(), len) }.map(|a| a.port())
        });
        match port {
            Some(port) if port != 0 => Ok((fd, port)),
            _ => {
                let err = io::Error::last_os_error();
                close(fd);
                Err(err)
            }
        }
    };
    attempt(family).or_else(|err| match family {
        Family::V6 => attempt(Family::V4),
        Family::V4 => Err(err),
    })
}

/// A new IPv4 TCP socket, close-on-exec.
pub fn tcp_socket() -> io::Result<RawFd> {
    // SAFETY: plain socket creation.
    let fd = check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) })?;
    // SAFETY: fd was just created by us.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(fd)
}

/// A new AF_UNIX stream socket, close-on-exec.
pub fn unix_stream_socket() -> io::Result<RawFd> {
    // SAFETY: plain socket creation.
    let fd = check(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) })?;
    // SAFETY: fd was just created by us.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        close(fd);
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A new AF_UNIX stream socket, close-on-exec and non-blocking.
pub fn unix_stream_socket_nonblocking() -> io::Result<RawFd> {
    #[cfg(target_os = "linux")]
    {
        let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: plain socket creation.
        check(unsafe { libc::socket(libc::AF_UNIX, kind, 0) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let fd = unix_stream_socket()?;
        if let Err(e) = set_nonblocking(fd, true) {
            close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

pub fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    let flags = status_flags(fd)?;
    let wanted = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if wanted != flags {
        set_status_flags(fd, wanted)?;
    }
    Ok(())
}

/// Connects `fd` to the Unix socket at `path`.
pub fn connect_unix(fd: RawFd, path: &[u8]) -> io::Result<()> {
    let (addr, len) =
        sockaddr::unix(path).ok_or_else(|| io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
    // SAFETY: addr is a valid sockaddr_un of length len.
    check(unsafe { libc::connect(fd, (&raw const addr).cast(), len) })?;
    Ok(())
}

/// Sends all of `bytes` on the connected socket `fd` (no SIGPIPE): a few
/// bytes on a new connection, which its empty buffer takes at once.
pub fn send_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(target_os = "linux"))]
    let flags = {
        // No MSG_NOSIGNAL on macOS: the socket itself is told.
        let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1);
        0
    };
    while !bytes.is_empty() {
        // SAFETY: bytes is valid for reads of its length.
        let sent = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
        match sent {
            n if n > 0 => bytes = &bytes[n as usize..],
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}

/// Sets how long a blocking send (and a blocking Unix connect) may wait.
pub fn set_send_timeout(fd: RawFd, timeout: std::time::Duration) -> io::Result<()> {
    let value = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: value lives across the call and its size is given.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&raw const value).cast::<c_void>(),
            mem::size_of::<libc::timeval>() as socklen_t,
        )
    })?;
    Ok(())
}

/// Copies a socket option of up to 32 bytes (an int, a `linger`, a
/// `timeval`) from `from` to `to`, unless it is all zeros, which every
/// option copied this way is on a new socket.
pub fn copy_option(from: RawFd, to: RawFd, level: c_int, name: c_int) {
    let mut value = [0u8; 32];
    let mut len = value.len() as socklen_t;
    // SAFETY: value and len are valid for writes of the sizes given.
    let ret = unsafe { libc::getsockopt(from, level, name, value.as_mut_ptr().cast(), &mut len) };
    let len = (len as usize).min(value.len());
    if ret == 0 && value[..len].iter().any(|&b| b != 0) {
        // SAFETY: value holds len initialised bytes.
        unsafe { libc::setsockopt(to, level, name, value.as_ptr().cast(), len as socklen_t) };
    }
}

pub fn bind_unix(fd: RawFd, path: &[u8]) -> io::Result<()> {
    let (addr, len) =
        sockaddr::unix(path).ok_or_else(|| io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
    // SAFETY: addr is a valid sockaddr_un of length len.
    check(unsafe { libc::bind(fd, (&raw const addr).cast(), len) })?;
    Ok(())
}

/// Puts `src`'s socket at descriptor number `dst`, replacing what `dst` was,
/// in one step; `dst` gets close-on-exec if `cloexec`.
pub fn dup_onto(src: RawFd, dst: RawFd, cloexec: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
        // SAFETY: both are descriptors; dup3 replaces dst atomically.
        check(unsafe { libc::dup3(src, dst, flags) })?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: both are descriptors; dup2 replaces dst atomically.
        check(unsafe { libc::dup2(src, dst) })?;
        if cloexec {
            // SAFETY: dst is now a valid descriptor.
            check(unsafe { libc::fcntl(dst, libc::F_SETFD, libc::FD_CLOEXEC) })?;
        }
    }
    Ok(())
}

pub fn close(fd: RawFd) {
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fd) };
}

/// The local address of `fd`, whole, whatever its family.
pub fn local_address(fd: RawFd) -> Option<(Storage, socklen_t)> {
    let mut storage = Storage::zeroed();
    let mut len = Storage::capacity();
    // SAFETY: storage is valid for len bytes.
    let ret = unsafe { libc::getsockname(fd, storage.as_mut_ptr(), &mut len) };
    (ret == 0).then_some((storage, len))
}

/// The path a Unix socket is bound to, if `fd` is one.
pub fn unix_socket_path(fd: RawFd) -> Option<Vec<u8>> {
    with_unix_socket_path(fd, <[u8]>::to_vec)
}

/// `f` of the path a Unix socket is bound to, if `fd` is one, without
/// allocating (for a child between fork and exec).
pub fn with_unix_socket_path<R>(fd: RawFd, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let (storage, len) = local_address(fd)?;
    storage.unix_path(len).map(f)
}

/// Calls `f` with each descriptor open in this process, read from
/// `/proc/self/fd` with raw system calls into a stack buffer: nothing is
/// allocated, so a child between fork and exec may call it.
#[cfg(target_os = "linux")]
pub fn for_each_open_fd(mut f: impl FnMut(RawFd)) {
    let path = c"/proc/self/fd";
    // SAFETY: path is NUL-terminated.
    let dir = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: buf is valid for writes of its length.
        let got = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        let Ok(got) = usize::try_from(got) else { break };
        if got == 0 {
            break;
        }
        let mut at = 0;
        // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
        while at + 19 < got {
            let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
            if reclen == 0 || at + reclen > got {
                break;
            }
            let name = &buf[at + 19..at + reclen];
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            let fd = std::str::from_utf8(name)
                .ok()
                .and_then(|n| n.parse::<RawFd>().ok());
            if let Some(fd) = fd.filter(|&fd| fd != dir) {
                f(fd);
            }
            at += reclen;
        }
    }
    close(dir);
}

/// Whether `fd` is a connected socket (it has a peer, named or not).
pub fn has_peer(fd: RawFd) -> bool {
    let mut storage = Storage::zeroed();
    let mut len = Storage::capacity();
    // SAFETY: storage is valid for len bytes.
    unsafe { libc::getpeername(fd, storage.as_mut_ptr(), &mut len) == 0 }
}

/// The path of the socket a connected Unix socket's peer is bound to (for
/// a client, its listener's), if `fd` is one.
pub fn unix_peer_path(fd: RawFd) -> Option<Vec<u8>> {
    let mut storage = Storage::zeroed();
    let mut len = Storage::capacity();
    // SAFETY: storage is valid for len bytes.
    let ret = unsafe { libc::getpeername(fd, storage.as_mut_ptr(), &mut len) };
    if ret != 0 {
        return None;
    }
    storage.unix_path(len).map(<[u8]>::to_vec)
}

pub fn getpid() -> u32 {
    std::process::id()
}

pub fn chmod(path: &[u8], mode: libc::mode_t) {
    if let Ok(path) = std::ffi::CString::new(path) {
        // SAFETY: path is NUL-terminated.
        unsafe { libc::chmod(path.as_ptr(), mode) };
    }
}

/// Moves `fd` to a high descriptor number (close-on-exec), out of the way of
/// apps that assume the low numbers are theirs, and returns the new number.
pub fn move_high(fd: RawFd) -> RawFd {
    const FLOOR: c_int = 512;
    // SAFETY: duplicating a descriptor we own.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, FLOOR) };
    if high < 0 {
        return fd;
    }
    close(fd);
    high
}
