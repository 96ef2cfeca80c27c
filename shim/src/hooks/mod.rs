//! The hook entry points, shared by every platform: each takes the app's
//! arguments and the real function, and either rewrites the call or passes it
//! through. The platform modules only export symbols that call these.
//!
//! Every entry takes the reentrancy guard first and checks the configuration;
//! without both, the real function runs untouched.

use std::os::fd::RawFd;

use libc::{c_int, c_void, sockaddr, socklen_t};

use crate::{answers, config, convert, guard, sockaddr as addr, sys};

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(any(target_os = "macos", test))]
mod macos_env;

pub type BindFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
pub type ListenFn = unsafe extern "C" fn(c_int, c_int) -> c_int;
pub type AddressFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
pub type SetOptFn = unsafe extern "C" fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int;
pub type GetOptFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int;

/// bind: IP stream sockets become Unix sockets in the run directory.
///
/// # Safety
/// The arguments are the app's, as it passed them to bind.
pub unsafe fn bind(fd: c_int, address: *const sockaddr, len: socklen_t, real: BindFn) -> c_int {
    let Some(_guard) = guard::enter() else {
        // SAFETY: the app's own arguments, unchanged.
        return unsafe { real(fd, address, len) };
    };
    // SAFETY: the app passed len readable bytes at address.
    let requested = unsafe { addr::read_inet(address, len) };
    let (Some(config), Some(requested)) = (config::active(), requested) else {
        // SAFETY: as above.
        return unsafe { real(fd, address, len) };
    };
    match convert::bind(config, fd, requested) {
        convert::Outcome::Converted => 0,
        convert::Outcome::Failed(errno) => {
            config::log(format_args!(
                "bind({fd}, {requested}) failed: {}",
                std::io::Error::from_raw_os_error(errno)
            ));
            sys::set_errno(errno);
            -1
        }
        convert::Outcome::Pass(why) => {
            config::log(format_args!(
                "bind({fd}, {requested}) passed through: {why:?}"
            ));
            // SAFETY: as above.
            unsafe { real(fd, address, len) }
        }
    }
}

/// listen: once a converted socket listens, its sidecar is written.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn listen(fd: c_int, backlog: c_int, real: ListenFn) -> c_int {
    // SAFETY: the app's own arguments.
    let ret = unsafe { real(fd, backlog) };
    if ret == 0 {
        if let (Some(_guard), Some(config)) = (guard::enter(), config::active()) {
            convert::listened(config, fd);
        }
    }
    ret
}

/// Whether the real call left an AF_UNIX address in the app's buffer.
///
/// # Safety
/// `address` must be valid for `*len` bytes when both are non-null.
unsafe fn app_got_unix_address(
    address: *const sockaddr,
    len: *const socklen_t,
    room: socklen_t,
) -> bool {
    // SAFETY: non-null pointers from a call that just succeeded; the kernel
    // wrote at least the family when there was room for it.
    !address.is_null()
        && !len.is_null()
        && room as usize >= std::mem::size_of::<libc::sa_family_t>()
        && i32::from(unsafe { (*address).sa_family }) == libc::AF_UNIX
}

/// Rewrites the address a call returned for `fd` when `answer` has one.
///
/// # Safety
/// As for [`app_got_unix_address`].
unsafe fn rewrite_address(
    fd: RawFd,
    address: *mut sockaddr,
    len: *mut socklen_t,
    room: socklen_t,
    answer: fn(&config::Config, RawFd) -> Option<(addr::Storage, socklen_t)>,
) {
    // SAFETY: forwarded from the caller.
    if !unsafe { app_got_unix_address(address, len, room) } {
        return;
    }
    let (Some(_guard), Some(config)) = (guard::enter(), config::active()) else {
        return;
    };
    if let Some((storage, storage_len)) = answer(config, fd) {
        // SAFETY: the app's buffer holds `room` bytes; write_to_app writes at most that.
        unsafe {
            *len = room;
            addr::write_to_app(&storage, storage_len, address, len);
        }
    }
}

/// getsockname: a converted socket reports the address the app asked for.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn getsockname(
    fd: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    real: AddressFn,
) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe { address_query(fd, address, len, real, answers::local_address) }
}

/// getpeername: connections to a converted listener have a loopback peer.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn getpeername(
    fd: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    real: AddressFn,
) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe { address_query(fd, address, len, real, answers::peer_address) }
}

/// The real address call, then `answer`'s address in place of a Unix one.
///
/// # Safety
/// The arguments are the app's.
unsafe fn address_query(
    fd: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    real: AddressFn,
    answer: fn(&config::Config, RawFd) -> Option<(addr::Storage, socklen_t)>,
) -> c_int {
    // SAFETY: len is the app's pointer, read only when non-null.
    let room = if len.is_null() { 0 } else { unsafe { *len } };
    // SAFETY: the app's own arguments.
    let ret = unsafe { real(fd, address, len) };
    if ret == 0 {
        // SAFETY: the call succeeded with these buffers.
        unsafe { rewrite_address(fd, address, len, room, answer) };
    }
    ret
}

/// accept and accept4, after the real call returned `accepted`: the peer
/// address, when asked for, is a loopback one.
///
/// # Safety
/// `address`/`len` are the app's, as passed to accept.
pub unsafe fn after_accept(
    accepted: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    room: socklen_t,
) -> c_int {
    if accepted >= 0 {
        // SAFETY: the call succeeded with these buffers.
        unsafe { rewrite_address(accepted, address, len, room, answers::peer_address) };
    }
    accepted
}

/// setsockopt: TCP- and IP-level options on converted sockets succeed.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
    real: SetOptFn,
) -> c_int {
    // SAFETY: the app's own arguments.
    let ret = unsafe { real(fd, level, name, value, len) };
    if ret == 0 || !answers::is_ip_level(level) {
        return ret;
    }
    let errno = sys::last_errno();
    if answers::is_unsupported_option_error(errno) {
        if let (Some(_guard), Some(config)) = (guard::enter(), config::active()) {
            if answers::is_ours(config, fd) {
                let int_value = if !value.is_null() && len as usize >= std::mem::size_of::<c_int>()
                {
                    // SAFETY: the app passed len readable bytes.
                    unsafe { value.cast::<c_int>().read_unaligned() }
                } else {
                    0
                };
                answers::remember_option(fd, level, name, int_value);
                return 0;
            }
        }
    }
    sys::set_errno(errno);
    ret
}

/// getsockopt: TCP- and IP-level options on converted sockets read back what was set.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut socklen_t,
    real: GetOptFn,
) -> c_int {
    // SAFETY: the app's own arguments.
    let ret = unsafe { real(fd, level, name, value, len) };
    if ret == 0 || !answers::is_ip_level(level) || value.is_null() || len.is_null() {
        return ret;
    }
    let errno = sys::last_errno();
    if answers::is_unsupported_option_error(errno) {
        if let (Some(_guard), Some(config)) = (guard::enter(), config::active()) {
            if answers::is_ours(config, fd) {
                let bytes = answers::recall_option(fd, level, name).to_ne_bytes();
                // SAFETY: the app's buffer holds *len bytes; we write at most that.
                unsafe {
                    let count = (*len as usize).min(bytes.len());
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), value.cast::<u8>(), count);
                    *len = count as socklen_t;
                }
                return 0;
            }
        }
    }
    sys::set_errno(errno);
    ret
}
