//! What a hook did with one call, and why a call it did not change was left
//! alone: every pass-through has one reason from [`Pass`], which
//! `AGENTFS_LOG` prints.
//!
//! Logging is checked first and costs one relaxed atomic load when off: no
//! formatting, no allocation. When on, bind and listen (rare, and the ones a
//! user debugs) are logged on every call; the per-connection hooks log each
//! (hook, reason) pair the first time it happens in a process, so a busy
//! server's log stays readable.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use libc::c_int;

use crate::config;

/// What a hook's logic decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The shim answered the call (converted the socket, rewrote the address…).
    Done,
    /// The call is left to the real function, or its answer as the kernel gave it.
    Pass(Pass),
    /// The call fails with this errno, as it would over TCP.
    Failed(c_int),
}

impl From<Result<(), Pass>> for Outcome {
    fn from(result: Result<(), Pass>) -> Outcome {
        match result {
            Ok(()) => Outcome::Done,
            Err(why) => Outcome::Pass(why),
        }
    }
}

/// Why a call was passed through unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// This thread is already inside the shim (our own code called a hooked
    /// function), or its thread-locals are gone (the thread is ending).
    Reentered,
    /// No usable agentfs settings: not run under agentfs, settings that are
    /// invalid, or a call made before the constructor ran.
    Inactive,
    /// bind, connect: the address is not an AF_INET or AF_INET6 one (or too short to be).
    NotInet,
    /// bind, connect: not a stream socket; UDP and raw sockets are not
    /// servers we route, nor clients we wire.
    NotStream,
    /// The real call failed; its error stands.
    RealCallFailed,
    /// The real call succeeded on its own (a socket option the kernel took).
    RealCallAnswered,
    /// The app passed no buffer for the answer (a null pointer): nothing to write.
    NoBuffer,
    /// The kernel returned no address (the peer of a stream is not bound).
    NoAddressReturned,
    /// The kernel's answer is not an AF_UNIX address: a real IP socket.
    NotUnixAnswer,
    /// The descriptor is not a Unix socket bound in our run directory.
    NotOurs,
    /// One of ours, but neither this process nor a sidecar says what address
    /// the app asked for.
    Unknown,
    /// listen: the socket's sidecar already says it listens.
    AlreadyListening,
    /// A socket option at a level other than IP, IPv6 or TCP: Unix sockets
    /// answer those themselves.
    NotIpLevel,
    /// connect: the destination is not loopback (127.0.0.0/8, ::1, their
    /// v4-mapped form) nor unspecified (0.0.0.0, ::, which Linux treats as local).
    NotLoopback,
    /// connect: no listener of the caller's instance is on that port; the
    /// kernel connects (to a server on the host, or refuses as before).
    NoListener,
    /// connect: several apps of the instance listen on that port and none is
    /// the caller's own, so which one is meant is unknown.
    SeveralApps,
    /// connect: the descriptor is not an IP socket of the address's family
    /// (a client that bound first was converted to a listener).
    NotIpSocket,
    /// connect: the socket is already bound or connected (a second connect
    /// on it); the kernel answers as TCP does.
    AlreadyConnected,
    /// connect: every socket that listens for that port refused (its owner
    /// is gone, or, on macOS, its backlog is full).
    Refused,
    /// getaddrinfo, gethostbyname: not `*.localhost` (or `localhost` itself,
    /// which the resolver answers as it is).
    NotLocalhostName,
    /// bind: this process is a client of its instance (`agentfs exec`):
    /// its listeners stay real TCP.
    Client,
}

impl Pass {
    const COUNT: usize = Pass::Client as usize + 1;

    pub fn describe(self) -> &'static str {
        match self {
            Pass::Reentered => "called from inside the shim",
            Pass::Inactive => "agentfs settings absent or invalid",
            Pass::NotInet => "not an IPv4 or IPv6 address",
            Pass::NotStream => "not a stream socket",
            Pass::RealCallFailed => "the real call failed",
            Pass::RealCallAnswered => "the real call succeeded on its own",
            Pass::NoBuffer => "no buffer for the answer",
            Pass::NoAddressReturned => "no address returned",
            Pass::NotUnixAnswer => "not a Unix socket",
            Pass::NotOurs => "not a socket in the run directory",
            Pass::Unknown => "ours, but what it asked for is unknown here",
            Pass::AlreadyListening => "its sidecar already says it listens",
            Pass::NotIpLevel => "not an IP- or TCP-level option",
            Pass::NotLoopback => "not a loopback destination",
            Pass::NoListener => "no listener of this instance on that port",
            Pass::SeveralApps => "several other apps of this instance listen on that port",
            Pass::NotIpSocket => "not an IP socket of the address's family",
            Pass::AlreadyConnected => "the socket is already bound or connected",
            Pass::Refused => "the instance's socket for that port refused",
            Pass::NotLocalhostName => "not a *.localhost name",
            Pass::Client => "a client of its instance: listeners stay real TCP",
        }
    }
}

/// The hooks, for log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Bind,
    Listen,
    Getsockname,
    Getpeername,
    Accept,
    Recvfrom,
    Recvmsg,
    Setsockopt,
    Getsockopt,
    Connect,
    Getaddrinfo,
    Gethostbyname,
}

impl Hook {
    const COUNT: usize = Hook::Gethostbyname as usize + 1;

    fn name(self) -> &'static str {
        match self {
            Hook::Bind => "bind",
            Hook::Listen => "listen",
            Hook::Getsockname => "getsockname",
            Hook::Getpeername => "getpeername",
            Hook::Accept => "accept",
            Hook::Recvfrom => "recvfrom",
            Hook::Recvmsg => "recvmsg",
            Hook::Setsockopt => "setsockopt",
            Hook::Getsockopt => "getsockopt",
            Hook::Connect => "connect",
            Hook::Getaddrinfo => "getaddrinfo",
            Hook::Gethostbyname => "gethostbyname",
        }
    }

    /// Called once per connection or more: logged once per reason.
    fn is_frequent(self) -> bool {
        !matches!(self, Hook::Bind | Hook::Listen)
    }
}

// Each reason must have its bit in a u32.
const _: () = assert!(Pass::COUNT <= 32);

/// Per hook, the reasons already logged.
static LOGGED: [AtomicU32; Hook::COUNT] = [const { AtomicU32::new(0) }; Hook::COUNT];

/// Logs a pass-through under `AGENTFS_LOG`; free when logging is off.
#[inline]
pub fn note(hook: Hook, fd: RawFd, why: Pass) {
    if config::logging() {
        log_pass(hook, fd, why);
    }
}

/// Logs an outcome that is not [`Outcome::Done`] under `AGENTFS_LOG`.
#[inline]
pub fn note_outcome(hook: Hook, fd: RawFd, outcome: &Outcome) {
    match *outcome {
        Outcome::Done => {}
        Outcome::Pass(why) => note(hook, fd, why),
        Outcome::Failed(errno) if config::logging() => config::log(format_args!(
            "{} failed: {}",
            Call(hook, fd),
            std::io::Error::from_raw_os_error(errno)
        )),
        Outcome::Failed(_) => {}
    }
}

/// The descriptor to log for calls that have none (the resolver's).
pub const NO_FD: RawFd = -1;

/// `hook(fd)`, or `hook` alone for a call without a descriptor.
struct Call(Hook, RawFd);

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            NO_FD => f.write_str(self.0.name()),
            fd => write!(f, "{}({fd})", self.0.name()),
        }
    }
}

#[cold]
fn log_pass(hook: Hook, fd: RawFd, why: Pass) {
    let call = Call(hook, fd);
    if !hook.is_frequent() {
        config::log(format_args!("{call} passed through: {}", why.describe()));
        return;
    }
    let bit = 1 << why as u32;
    if LOGGED[hook as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        config::log(format_args!(
            "{call} passed through: {} (further {} calls passed through for this reason are not logged)",
            why.describe(),
            hook.name()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_description() {
        let all = [
            Pass::Reentered,
            Pass::Inactive,
            Pass::NotInet,
            Pass::NotStream,
            Pass::RealCallFailed,
            Pass::RealCallAnswered,
            Pass::NoBuffer,
            Pass::NoAddressReturned,
            Pass::NotUnixAnswer,
            Pass::NotOurs,
            Pass::Unknown,
            Pass::AlreadyListening,
            Pass::NotIpLevel,
            Pass::NotLoopback,
            Pass::NoListener,
            Pass::SeveralApps,
            Pass::NotIpSocket,
            Pass::AlreadyConnected,
            Pass::Refused,
            Pass::NotLocalhostName,
            Pass::Client,
        ];
        assert_eq!(all.len(), Pass::COUNT);
        let mut texts: Vec<_> = all.iter().map(|p| p.describe()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), Pass::COUNT);
    }
}
