//! macOS: hooks registered with dyld through `__DATA,__interpose`.
//!
//! dyld reads the `{replacement, original}` pairs of that section in every
//! image inserted at launch (DYLD_INSERT_LIBRARIES) and redirects every other
//! image's calls to `original` to `replacement`. Calls made from inside this
//! image are not redirected, so a replacement reaches the real function by
//! simply calling the libc one. Each pair is a `#[used]` static: redhook's
//! macOS macro declares its pairs without `#[used]`, and a release cdylib then
//! loses the section and interposes nothing (see docs/design.md).
//!
//! Each replacement is one call into the shared entry points of [`super`],
//! except execve and posix_spawn(p), which put `DYLD_INSERT_LIBRARIES` back
//! into a child's environment when something stripped it
//! ([`super::macos_env`]).
//!
//! What is hooked, and what is not, and why:
//! - bind, listen, getsockname, getpeername, setsockopt, getsockopt: as on Linux.
//!   None of them has a `$NOCANCEL` variant (they are not cancellation points).
//! - connect and `connect$NOCANCEL`: connect is a cancellation point, and
//!   libuv calls the second. A full backlog refuses a Unix connect on macOS,
//!   and the refusal passes through to the kernel (see [`crate::connect`]).
//! - getaddrinfo, gethostbyname, gethostbyname2: `*.localhost` resolves as
//!   `localhost` ([`crate::names`]); the system resolver does not do it.
//! - accept and `accept$NOCANCEL`: libSystem exports both, and libuv (Node)
//!   calls the second. There is no accept4 on macOS: accepted sockets get
//!   O_NONBLOCK through fcntl or ioctl(FIONBIO), which work on Unix sockets
//!   as they do on TCP ones.
//! - recvfrom, recvmsg and their `$NOCANCEL` variants: a sender's address
//!   on one of our sockets is reported as getpeername reports it. macOS's
//!   Unix stream sockets are not expected to return one, but the check is
//!   the same cheap one as on Linux and keeps both platforms alike.
//! - close and `close$NOCANCEL` (libuv's): closing a listener's last
//!   descriptor gives back its lock, reserved port and files
//!   ([`crate::release`]); every other close costs one atomic load.
//! - fcntl and ioctl are not hooked, so no C is needed for variadic hooks:
//!   the converted socket keeps the app's fd number, O_NONBLOCK and
//!   FD_CLOEXEC, and every file-status request works on it natively.
//! - `SO_NOSIGPIPE` (which libuv sets on every socket) is a SOL_SOCKET
//!   option that AF_UNIX sockets support on macOS; setsockopt and getsockopt
//!   pass SOL_SOCKET through, so it reaches the kernel and works as on TCP.

use libc::ssize_t;
use libc::{addrinfo, c_char, c_int, c_void, hostent, pid_t};
use libc::{msghdr, posix_spawn_file_actions_t, posix_spawnattr_t, size_t, sockaddr, socklen_t};

use agentfs_contract::env;

use super::macos_env::with_child_env;

/// One entry of `__DATA,__interpose`, as dyld reads it. Both fields have the
/// same function-pointer type, so a replacement cannot disagree with the
/// original's signature.
#[repr(C)]
pub struct Interpose<F> {
    replacement: F,
    original: F,
}

/// Defines `replacement` for one original function and registers the pair.
/// Each hook gets its own module, so the static and the function need no
/// generated names.
macro_rules! interpose {
    ($(
        $module:ident: $original:path =>
        unsafe fn($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
    )*) => {$(
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            unsafe extern "C" fn replacement($($arg: $ty),*) -> $ret $body

            #[used]
            #[link_section = "__DATA,__interpose"]
            static PAIR: Interpose<unsafe extern "C" fn($($ty),*) -> $ret> = Interpose {
                replacement,
                original: $original,
            };
        }
    )*};
}

/// libSystem's exports that have no name a Rust identifier can spell.
mod nocancel {
    use libc::{c_int, c_void, msghdr, size_t, sockaddr, socklen_t, ssize_t};

    extern "C" {
        #[link_name = "accept$NOCANCEL"]
        pub fn accept(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int;
        #[link_name = "recvfrom$NOCANCEL"]
        pub fn recvfrom(
            fd: c_int,
            buf: *mut c_void,
            n: size_t,
            flags: c_int,
            address: *mut sockaddr,
            len: *mut socklen_t,
        ) -> ssize_t;
        #[link_name = "recvmsg$NOCANCEL"]
        pub fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
        #[link_name = "connect$NOCANCEL"]
        pub fn connect(fd: c_int, address: *const sockaddr, len: socklen_t) -> c_int;
        #[link_name = "close$NOCANCEL"]
        pub fn close(fd: c_int) -> c_int;
    }
}

/// libSystem's plain `close`: the libc crate links its `close` to
/// `close$NOCANCEL` on x86_64, so both would name the same export there.
mod plain {
    use libc::c_int;

    extern "C" {
        #[link_name = "close"]
        pub fn close(fd: c_int) -> c_int;
    }
}

/// libSystem's resolver calls the libc crate does not declare.
mod resolver {
    use libc::{c_char, c_int, hostent};

    extern "C" {
        pub fn gethostbyname(name: *const c_char) -> *mut hostent;
        pub fn gethostbyname2(name: *const c_char, family: c_int) -> *mut hostent;
    }
}

/// Runs `spawn` with the environment a child should get (see [`with_child_env`]).
///
/// # Safety
/// `envp` must be NULL or a valid environment array.
unsafe fn child_env<R>(
    envp: *const *const c_char,
    spawn: impl FnOnce(*const *const c_char) -> R,
) -> R {
    let Some(_guard) = crate::guard::enter() else {
        return spawn(envp);
    };
    // SAFETY: forwarded from the caller.
    unsafe { with_child_env(envp, env::PRELOAD.as_bytes(), env::SHIM.as_bytes(), spawn) }
}

interpose! {
    bind: libc::bind => unsafe fn(fd: c_int, address: *const sockaddr, len: socklen_t) -> c_int {
        // SAFETY: the app's arguments, passed on.
        unsafe { crate::hooks::bind(fd, address, len, libc::bind) }
    }

    listen: libc::listen => unsafe fn(fd: c_int, backlog: c_int) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::listen(fd, backlog, libc::listen) }
    }

    getsockname: libc::getsockname => unsafe fn(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::getsockname(fd, address, len, libc::getsockname) }
    }

    getpeername: libc::getpeername => unsafe fn(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::getpeername(fd, address, len, libc::getpeername) }
    }

    accept: libc::accept => unsafe fn(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::accept(fd, address, len, || libc::accept(fd, address, len)) }
    }

    accept_nocancel: nocancel::accept => unsafe fn(fd: c_int, address: *mut sockaddr, len: *mut socklen_t) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::accept(fd, address, len, || nocancel::accept(fd, address, len)) }
    }

    recvfrom: libc::recvfrom => unsafe fn(
        fd: c_int,
        buf: *mut c_void,
        n: size_t,
        flags: c_int,
        address: *mut sockaddr,
        len: *mut socklen_t,
    ) -> ssize_t {
        // SAFETY: as above.
        unsafe { crate::hooks::recvfrom(fd, buf, n, flags, address, len, libc::recvfrom) }
    }

    recvfrom_nocancel: nocancel::recvfrom => unsafe fn(
        fd: c_int,
        buf: *mut c_void,
        n: size_t,
        flags: c_int,
        address: *mut sockaddr,
        len: *mut socklen_t,
    ) -> ssize_t {
        // SAFETY: as above.
        unsafe { crate::hooks::recvfrom(fd, buf, n, flags, address, len, nocancel::recvfrom) }
    }

    recvmsg: libc::recvmsg => unsafe fn(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
        // SAFETY: as above.
        unsafe { crate::hooks::recvmsg(fd, msg, flags, libc::recvmsg) }
    }

    recvmsg_nocancel: nocancel::recvmsg => unsafe fn(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
        // SAFETY: as above.
        unsafe { crate::hooks::recvmsg(fd, msg, flags, nocancel::recvmsg) }
    }

    close: plain::close => unsafe fn(fd: c_int) -> c_int {
        // SAFETY: as above.
        crate::hooks::close(fd, || unsafe { plain::close(fd) })
    }

    close_nocancel: nocancel::close => unsafe fn(fd: c_int) -> c_int {
        // SAFETY: as above.
        crate::hooks::close(fd, || unsafe { nocancel::close(fd) })
    }

    connect: libc::connect => unsafe fn(fd: c_int, address: *const sockaddr, len: socklen_t) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::connect(fd, address, len, libc::connect) }
    }

    connect_nocancel: nocancel::connect => unsafe fn(fd: c_int, address: *const sockaddr, len: socklen_t) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::connect(fd, address, len, nocancel::connect) }
    }

    getaddrinfo: libc::getaddrinfo => unsafe fn(
        node: *const c_char,
        service: *const c_char,
        hints: *const addrinfo,
        res: *mut *mut addrinfo,
    ) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::getaddrinfo(node, service, hints, res, libc::getaddrinfo) }
    }

    gethostbyname: resolver::gethostbyname => unsafe fn(name: *const c_char) -> *mut hostent {
        // SAFETY: as above.
        unsafe { crate::hooks::gethostbyname(name, resolver::gethostbyname) }
    }

    gethostbyname2: resolver::gethostbyname2 => unsafe fn(name: *const c_char, family: c_int) -> *mut hostent {
        // SAFETY: as above.
        unsafe { crate::hooks::gethostbyname2(name, family, resolver::gethostbyname2) }
    }

    setsockopt: libc::setsockopt => unsafe fn(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::setsockopt(fd, level, name, value, len, libc::setsockopt) }
    }

    getsockopt: libc::getsockopt => unsafe fn(fd: c_int, level: c_int, name: c_int, value: *mut c_void, len: *mut socklen_t) -> c_int {
        // SAFETY: as above.
        unsafe { crate::hooks::getsockopt(fd, level, name, value, len, libc::getsockopt) }
    }

    execve: libc::execve => unsafe fn(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
        // SAFETY: the app's arguments; the environment is the app's or a copy of it.
        unsafe { child_env(envp, |envp| libc::execve(path, argv, envp)) }
    }

    posix_spawn: libc::posix_spawn => unsafe fn(
        pid: *mut pid_t,
        path: *const c_char,
        actions: *const posix_spawn_file_actions_t,
        attrs: *const posix_spawnattr_t,
        argv: *const *mut c_char,
        envp: *const *mut c_char,
    ) -> c_int {
        // SAFETY: as above.
        unsafe {
            child_env(envp.cast(), |envp| {
                libc::posix_spawn(pid, path, actions, attrs, argv, envp.cast())
            })
        }
    }

    posix_spawnp: libc::posix_spawnp => unsafe fn(
        pid: *mut pid_t,
        file: *const c_char,
        actions: *const posix_spawn_file_actions_t,
        attrs: *const posix_spawnattr_t,
        argv: *const *mut c_char,
        envp: *const *mut c_char,
    ) -> c_int {
        // SAFETY: as above.
        unsafe {
            child_env(envp.cast(), |envp| {
                libc::posix_spawnp(pid, file, actions, attrs, argv, envp.cast())
            })
        }
    }
}
