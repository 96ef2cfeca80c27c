//! The connect entry point: a loopback TCP connect to a port a listener of
//! the instance serves is wired to its socket ([`crate::connect`]); any
//! other connect reaches the real function untouched. The checks that need
//! no system call (the address family, loopback) come first, so outbound
//! and Unix connects cost only a read of the address.

use libc::{c_int, sockaddr, socklen_t};

use super::{enter, returned};
use crate::pass::{Hook, Outcome, Pass};
use crate::{connect as wire, sockaddr as addr};

pub type ConnectFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;

/// connect: loopback TCP connects to the instance's ports reach its sockets.
///
/// # Safety
/// The arguments are the app's, as it passed them to connect.
pub unsafe fn connect(
    fd: c_int,
    address: *const sockaddr,
    len: socklen_t,
    real: ConnectFn,
) -> c_int {
    // SAFETY: the app passed len readable bytes at address.
    let outcome = match unsafe { addr::read_inet(address, len) } {
        None => Outcome::Pass(Pass::NotInet),
        Some(dest) if !wire::is_local(dest.ip()) => Outcome::Pass(Pass::NotLoopback),
        Some(dest) => match enter() {
            Err(why) => Outcome::Pass(why),
            Ok((_guard, config)) => wire::connect(config, fd, dest),
        },
    };
    // SAFETY: the app's own arguments, unchanged.
    returned(Hook::Connect, fd, outcome, || unsafe {
        real(fd, address, len)
    })
}
