//! The resolver entry points: getaddrinfo, gethostbyname and
//! gethostbyname2 answer `localhost` and `*.localhost` as libc answers
//! `localhost` ([`crate::names`]), in a process the shim is configured for.
//! Every other name goes to the real function untouched, without a lock
//! or a system call.

use std::ffi::CStr;

use libc::{addrinfo, c_char, c_int, hostent};

use super::enter;
use crate::guard::Guard;
use crate::names;
use crate::pass::{self, Hook, Pass};

pub type GetaddrinfoFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;
pub type GethostbynameFn = unsafe extern "C" fn(*const c_char) -> *mut hostent;
pub type Gethostbyname2Fn = unsafe extern "C" fn(*const c_char, c_int) -> *mut hostent;

/// The name to resolve instead of `name`, with the guard held while the
/// real resolver runs; or `name` itself.
///
/// # Safety
/// `name` must be null or a NUL-terminated string.
unsafe fn resolve_as(hook: Hook, name: *const c_char) -> (*const c_char, Option<Guard>) {
    // SAFETY: non-null, so the app's NUL-terminated string.
    let is_localhost =
        !name.is_null() && names::is_localhost(unsafe { CStr::from_ptr(name) }.to_bytes());
    let decided = if is_localhost {
        enter().map(|(guard, _config)| guard)
    } else {
        Err(Pass::NotLocalhostName)
    };
    match decided {
        Ok(guard) => (names::LOCALHOST.as_ptr(), Some(guard)),
        Err(why) => {
            pass::note(hook, pass::NO_FD, why);
            (name, None)
        }
    }
}

/// getaddrinfo: `*.localhost` resolves as `localhost`.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
    real: GetaddrinfoFn,
) -> c_int {
    // SAFETY: the app's string.
    let (node, _guard) = unsafe { resolve_as(Hook::Getaddrinfo, node) };
    // SAFETY: the app's arguments, the name perhaps replaced by a static one.
    unsafe { real(node, service, hints, res) }
}

/// gethostbyname: `*.localhost` resolves as `localhost`.
///
/// # Safety
/// As for [`getaddrinfo`].
pub unsafe fn gethostbyname(name: *const c_char, real: GethostbynameFn) -> *mut hostent {
    // SAFETY: as above.
    let (name, _guard) = unsafe { resolve_as(Hook::Gethostbyname, name) };
    // SAFETY: as above.
    unsafe { real(name) }
}

/// gethostbyname2: `*.localhost` resolves as `localhost`, in the family asked for.
///
/// # Safety
/// As for [`getaddrinfo`].
pub unsafe fn gethostbyname2(
    name: *const c_char,
    family: c_int,
    real: Gethostbyname2Fn,
) -> *mut hostent {
    // SAFETY: as above.
    let (name, _guard) = unsafe { resolve_as(Hook::Gethostbyname, name) };
    // SAFETY: as above.
    unsafe { real(name, family) }
}
