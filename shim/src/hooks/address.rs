//! The entry points that report addresses: getsockname, getpeername and
//! accept. The real call runs first; when it left an AF_UNIX address of one
//! of our sockets in the app's buffer, the IP address the app expects
//! replaces it, truncated as the kernel truncates.

use std::os::fd::RawFd;

use libc::{c_int, sockaddr, socklen_t};

use super::{enter, AddressFn};
use crate::config::Config;
use crate::pass::{self, Hook, Outcome, Pass};
use crate::{answers, sockaddr as addr};

type Answer = fn(&Config, RawFd) -> Option<(addr::Storage, socklen_t)>;

/// Whether the real call left an AF_UNIX address in the app's buffer.
///
/// # Safety
/// `address` must be valid for `*len` bytes when both are non-null.
unsafe fn app_got_unix_address(
    address: *const sockaddr,
    len: *const socklen_t,
    room: socklen_t,
) -> Result<(), Pass> {
    if address.is_null() || len.is_null() {
        return Err(Pass::NoBuffer);
    }
    // SAFETY: non-null pointers from a call that just succeeded; the kernel
    // wrote at least the family when there was room for it.
    let is_unix = room as usize >= std::mem::size_of::<libc::sa_family_t>()
        && i32::from(unsafe { (*address).sa_family }) == libc::AF_UNIX;
    if is_unix {
        Ok(())
    } else {
        Err(Pass::NotUnixAnswer)
    }
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
    answer: Answer,
) -> Result<(), Pass> {
    // SAFETY: forwarded from the caller.
    unsafe { app_got_unix_address(address, len, room) }?;
    let (_guard, config) = enter()?;
    let (storage, storage_len) = answer(config, fd).ok_or(Pass::NotOurs)?;
    // SAFETY: the app's buffer holds `room` bytes; write_to_app writes at most that.
    unsafe {
        *len = room;
        addr::write_to_app(&storage, storage_len, address, len);
    }
    Ok(())
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
    unsafe {
        address_query(
            Hook::Getsockname,
            fd,
            address,
            len,
            real,
            answers::local_address,
        )
    }
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
    unsafe {
        address_query(
            Hook::Getpeername,
            fd,
            address,
            len,
            real,
            answers::peer_address,
        )
    }
}

/// The real address call, then `answer`'s address in place of a Unix one.
///
/// # Safety
/// The arguments are the app's.
unsafe fn address_query(
    hook: Hook,
    fd: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    real: AddressFn,
    answer: Answer,
) -> c_int {
    // SAFETY: len is the app's pointer, read only when non-null.
    let room = if len.is_null() { 0 } else { unsafe { *len } };
    // SAFETY: the app's own arguments.
    let ret = unsafe { real(fd, address, len) };
    let outcome = if ret == 0 {
        // SAFETY: the call succeeded with these buffers.
        Outcome::from(unsafe { rewrite_address(fd, address, len, room, answer) })
    } else {
        Outcome::Pass(Pass::RealCallFailed)
    };
    pass::note_outcome(hook, fd, &outcome);
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
    let outcome = if accepted >= 0 {
        // SAFETY: the call succeeded with these buffers.
        Outcome::from(unsafe {
            rewrite_address(accepted, address, len, room, answers::peer_address)
        })
    } else {
        Outcome::Pass(Pass::RealCallFailed)
    };
    pass::note_outcome(Hook::Accept, accepted, &outcome);
    accepted
}
