//! The entry points that report addresses: getsockname, getpeername, accept
//! (and accept4), recvfrom and recvmsg. The real call runs first; when it
//! answered with an AF_UNIX address of one of our sockets, the IP address the
//! app expects replaces it, in the family of the descriptor asked about and
//! truncated as the kernel truncates.
//!
//! recvfrom and recvmsg run on every read of some servers: a null address
//! goes straight to the real call, and an answer that is empty or not
//! AF_UNIX is left without a system call or a lock.

use std::mem::size_of;
use std::os::fd::RawFd;

use libc::{c_int, c_void, msghdr, sa_family_t, size_t, sockaddr, socklen_t, ssize_t};

use super::{enter, AddressFn};
use crate::answers::{self, Answer};
use crate::config::Config;
use crate::pass::{self, Hook, Outcome, Pass};
use crate::sockaddr as addr;

pub type RecvFromFn = unsafe extern "C" fn(
    c_int,
    *mut c_void,
    size_t,
    c_int,
    *mut sockaddr,
    *mut socklen_t,
) -> ssize_t;
pub type RecvMsgFn = unsafe extern "C" fn(c_int, *mut msghdr, c_int) -> ssize_t;

/// The room the app gave for an address, read before the real call changes it.
///
/// # Safety
/// `len` must be null or valid.
unsafe fn room(len: *const socklen_t) -> socklen_t {
    if len.is_null() {
        0
    } else {
        // SAFETY: non-null, so the app's valid socklen_t.
        unsafe { *len }
    }
}

/// Replaces the AF_UNIX address a successful call left in the app's buffer
/// (`room` bytes at `address`, its length at `len`) with `answer`'s.
///
/// # Safety
/// `address` must be null or valid for `room` bytes; `len` null or valid.
unsafe fn rewrite(
    address: *mut sockaddr,
    len: *mut socklen_t,
    room: socklen_t,
    answer: impl FnOnce(&Config, socklen_t) -> Result<Answer, Pass>,
) -> Result<(), Pass> {
    if len.is_null() {
        return Err(Pass::NoBuffer);
    }
    // With room for the family the kernel wrote it, and it tells whether the
    // socket can be ours; with less, the answer's own check decides.
    if !address.is_null() && room as usize >= size_of::<sa_family_t>() {
        // SAFETY: the app's buffer, which the kernel just wrote the family into.
        let family = unsafe { address.cast::<sa_family_t>().read_unaligned() };
        if i32::from(family) != libc::AF_UNIX {
            return Err(Pass::NotUnixAnswer);
        }
    }
    let (_guard, config) = enter()?;
    let (answer, family) = answer(config, room)?;
    // SAFETY: the app's buffer holds `room` bytes; write_answer writes at most that.
    unsafe {
        *len = addr::write_answer(answer, family, addr::app_buffer(address, room));
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
    unsafe { address_query(Hook::Getsockname, fd, address, len, real) }
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
    unsafe { address_query(Hook::Getpeername, fd, address, len, real) }
}

/// The real getsockname or getpeername, then our answer in place of a Unix address.
///
/// # Safety
/// The arguments are the app's.
unsafe fn address_query(
    hook: Hook,
    fd: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    real: AddressFn,
) -> c_int {
    // SAFETY: the app's pointer.
    let room = unsafe { room(len) };
    // SAFETY: the app's own arguments.
    let ret = unsafe { real(fd, address, len) };
    let outcome = if ret == 0 {
        let answer = |config: &Config, room| match hook {
            Hook::Getsockname => answers::local_address(config, fd, room),
            _ => answers::peer_address(config, fd, room),
        };
        // SAFETY: the call succeeded with these buffers.
        Outcome::from(unsafe { rewrite(address, len, room, answer) })
    } else {
        Outcome::Pass(Pass::RealCallFailed)
    };
    pass::note_outcome(hook, fd, &outcome);
    ret
}

/// accept and accept4 (`real` is the call, made here): the peer is a
/// loopback address of the listening descriptor's family, remembered for
/// the new connection even when the app asked for no address.
///
/// # Safety
/// `address`/`len` are the app's, as passed to accept; `real` makes the call
/// with them.
pub unsafe fn accept(
    listening: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    real: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the app's pointer.
    let room = if address.is_null() {
        0
    } else {
        unsafe { room(len) }
    };
    let connection = real();
    let outcome = if connection < 0 {
        Outcome::Pass(Pass::RealCallFailed)
    } else if address.is_null() {
        Outcome::from(enter().and_then(|_| answers::accepted_unasked(listening, connection)))
    } else {
        let answer = |config: &Config, room| answers::accepted(config, listening, connection, room);
        // SAFETY: the call succeeded with these buffers.
        Outcome::from(unsafe { rewrite(address, len, room, answer) })
    };
    pass::note_outcome(Hook::Accept, listening, &outcome);
    connection
}

/// After a receive that may have returned a sender's address: a Unix one
/// on one of our sockets becomes the loopback peer getpeername reports.
///
/// # Safety
/// As for [`rewrite`]; `len` holds the length the call returned.
unsafe fn after_receive(
    hook: Hook,
    fd: RawFd,
    received: ssize_t,
    address: *mut sockaddr,
    len: *mut socklen_t,
    room: socklen_t,
) {
    let outcome = if received < 0 {
        Outcome::Pass(Pass::RealCallFailed)
    // SAFETY: len is null or the app's valid length, just written by the call.
    } else if len.is_null() || unsafe { *len } == 0 {
        // Stream sockets return no address (TCP never does; a Unix peer
        // only when it bound its own socket).
        Outcome::Pass(Pass::NoAddressReturned)
    } else {
        let answer = |config: &Config, room| answers::peer_address(config, fd, room);
        // SAFETY: forwarded from the caller.
        Outcome::from(unsafe { rewrite(address, len, room, answer) })
    };
    pass::note_outcome(hook, fd, &outcome);
}

/// recvfrom: a null address goes straight to the real call.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    address: *mut sockaddr,
    len: *mut socklen_t,
    real: RecvFromFn,
) -> ssize_t {
    if address.is_null() {
        // SAFETY: the app's own arguments.
        return unsafe { real(fd, buf, n, flags, address, len) };
    }
    // SAFETY: the app's pointer.
    let room = unsafe { room(len) };
    // SAFETY: the app's own arguments.
    let received = unsafe { real(fd, buf, n, flags, address, len) };
    // SAFETY: the call returned with these buffers.
    unsafe { after_receive(Hook::Recvfrom, fd, received, address, len, room) };
    received
}

/// recvmsg: a message without a name buffer goes straight to the real call.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int, real: RecvMsgFn) -> ssize_t {
    // SAFETY: msg is null or the app's valid msghdr.
    if msg.is_null() || unsafe { (*msg).msg_name.is_null() } {
        // SAFETY: the app's own arguments.
        return unsafe { real(fd, msg, flags) };
    }
    // SAFETY: msg is the app's valid msghdr.
    let room = unsafe { (*msg).msg_namelen };
    // SAFETY: the app's own arguments.
    let received = unsafe { real(fd, msg, flags) };
    // SAFETY: msg_name holds `room` bytes; msg_namelen is the returned length.
    unsafe {
        let name = (*msg).msg_name.cast::<sockaddr>();
        after_receive(
            Hook::Recvmsg,
            fd,
            received,
            name,
            &raw mut (*msg).msg_namelen,
            room,
        );
    }
    received
}
