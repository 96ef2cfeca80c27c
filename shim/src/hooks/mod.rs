//! The hook entry points, shared by every platform: each takes the app's
//! arguments and the real function, asks safe logic what to do, and either
//! answers the call or passes it through. The platform modules only export
//! symbols that call these.
//!
//! The logic returns an [`Outcome`]: done, failed with an errno, or passed
//! through with a [`Pass`] reason, which `AGENTFS_LOG` prints. Every entry
//! takes the reentrancy guard and the configuration first ([`enter`]);
//! without both, the real function runs untouched.
//!
//! - this file: bind, listen, close and socket options.
//! - [`address`]: the calls that report addresses (getsockname, getpeername,
//!   accept, recvfrom, recvmsg).
//! - [`connect`]: connect, wired to the instance's sockets.
//! - [`names`]: getaddrinfo, gethostbyname, gethostbyname2 for `*.localhost`.

use std::os::fd::RawFd;

use libc::{c_int, c_void, sockaddr, socklen_t};

use crate::config::Config;
use crate::pass::{self, Hook, Outcome, Pass};
use crate::{announce, answers, config, convert, guard, registry, release, sockaddr as addr, sys};

mod address;
mod connect;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(any(target_os = "macos", test))]
mod macos_env;
mod names;

pub use address::{accept, getpeername, getsockname, recvfrom, recvmsg};
pub use connect::connect;
pub use names::{getaddrinfo, gethostbyname, gethostbyname2};

pub type BindFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
pub type ListenFn = unsafe extern "C" fn(c_int, c_int) -> c_int;
pub type AddressFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
pub type SetOptFn = unsafe extern "C" fn(c_int, c_int, c_int, *const c_void, socklen_t) -> c_int;
pub type GetOptFn = unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int;

/// The reentrancy guard and the settings, or why the call passes through.
fn enter() -> Result<(guard::Guard, &'static Config), Pass> {
    let guard = guard::enter().ok_or(Pass::Reentered)?;
    let config = config::active().ok_or(Pass::Inactive)?;
    Ok((guard, config))
}

/// What a call that either acts or passes through returns for `outcome`
/// (logged first): 0 when done, -1 with errno when failed, else what
/// `real` returns.
fn returned(hook: Hook, fd: c_int, outcome: Outcome, real: impl FnOnce() -> c_int) -> c_int {
    pass::note_outcome(hook, fd, &outcome);
    match outcome {
        Outcome::Done => 0,
        Outcome::Failed(errno) => {
            sys::set_errno(errno);
            -1
        }
        Outcome::Pass(_) => real(),
    }
}

/// bind: IP stream sockets become Unix sockets in the run directory.
///
/// # Safety
/// The arguments are the app's, as it passed them to bind.
pub unsafe fn bind(fd: c_int, address: *const sockaddr, len: socklen_t, real: BindFn) -> c_int {
    // SAFETY: the app passed len readable bytes at address.
    let requested = unsafe { addr::read_inet(address, len) };
    let outcome = match enter() {
        Err(why) => Outcome::Pass(why),
        Ok((_guard, config)) => match requested {
            Some(requested) => convert::bind(config, fd, requested),
            None => Outcome::Pass(Pass::NotInet),
        },
    };
    // SAFETY: the app's own arguments, unchanged.
    returned(Hook::Bind, fd, outcome, || unsafe {
        real(fd, address, len)
    })
}

/// listen: the first listen on a converted socket, in any process, marks
/// its sidecar listening.
///
/// # Safety
/// The arguments are the app's.
pub unsafe fn listen(fd: c_int, backlog: c_int, real: ListenFn) -> c_int {
    // SAFETY: the app's own arguments.
    let ret = unsafe { real(fd, backlog) };
    let outcome = if ret == 0 {
        Outcome::from(enter().and_then(|(_guard, config)| announce::listened(config, fd)))
    } else {
        Outcome::Pass(Pass::RealCallFailed)
    };
    pass::note_outcome(Hook::Listen, fd, &outcome);
    ret
}

/// close (and on Linux `syscall(SYS_close)`, libuv's): when `fd` was the
/// last descriptor of a listener of this process, what it held is given
/// back ([`release`]). Any other descriptor costs one atomic load.
pub fn close(fd: c_int, real: impl FnOnce() -> c_int) -> c_int {
    if !registry::may_be_alias(fd) {
        return real();
    }
    let Some(_guard) = guard::enter() else {
        return real();
    };
    let ret = real();
    if ret == 0 && config::active().is_some() {
        let errno = sys::last_errno();
        release::after_close(fd);
        sys::set_errno(errno);
    }
    ret
}

/// Whether a failed socket-option call on `fd` is one we answer: an IP- or
/// TCP-level option a Unix socket refused, on one of our sockets.
fn answers_option(fd: RawFd, level: c_int, errno: c_int) -> Result<guard::Guard, Pass> {
    if !answers::is_ip_level(level) {
        return Err(Pass::NotIpLevel);
    }
    if !answers::is_unsupported_option_error(errno) {
        return Err(Pass::RealCallFailed);
    }
    let (guard, config) = enter()?;
    if !answers::is_ours(config, fd) {
        return Err(Pass::NotOurs);
    }
    Ok(guard)
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
    if ret == 0 {
        pass::note(Hook::Setsockopt, fd, Pass::RealCallAnswered);
        return ret;
    }
    let errno = sys::last_errno();
    match answers_option(fd, level, errno) {
        Ok(_guard) => {
            let int_value = if !value.is_null() && len as usize >= std::mem::size_of::<c_int>() {
                // SAFETY: the app passed len readable bytes.
                unsafe { value.cast::<c_int>().read_unaligned() }
            } else {
                0
            };
            answers::remember_option(fd, level, name, int_value);
            0
        }
        Err(why) => {
            pass::note(Hook::Setsockopt, fd, why);
            sys::set_errno(errno);
            ret
        }
    }
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
    if ret == 0 {
        pass::note(Hook::Getsockopt, fd, Pass::RealCallAnswered);
        return ret;
    }
    let errno = sys::last_errno();
    let answered = if value.is_null() || len.is_null() {
        Err(Pass::NoBuffer)
    } else {
        answers_option(fd, level, errno)
    };
    match answered {
        Ok(_guard) => {
            let bytes = answers::recall_option(fd, level, name).to_ne_bytes();
            // SAFETY: the app's buffer holds *len bytes; we write at most that.
            unsafe {
                let count = (*len as usize).min(bytes.len());
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), value.cast::<u8>(), count);
                *len = count as socklen_t;
            }
            0
        }
        Err(why) => {
            pass::note(Hook::Getsockopt, fd, why);
            sys::set_errno(errno);
            ret
        }
    }
}
