//! Linux: a program that inherits a converted listener gets the shim too.
//!
//! Launchers that hand a server its listening socket may give it a clean
//! environment: `systemd-socket-activate` passes only `PATH`, `HOME`,
//! `TERM` and its `LISTEN_*` variables. The server would then run without
//! the shim, so its `getsockname` would say the socket is a Unix one and
//! nobody would take its lock again ([`crate::inherit`]). So when this
//! process executes a program with an environment that lacks agentfs's
//! variables while it holds a converted socket the program will inherit (a
//! descriptor in the run directory without close-on-exec), the program's
//! environment gets them back: the ones this process started with
//! (`AGENTFS_*` and the preload variable), each only where it is missing.
//! Any other environment is passed on as it is: `env -u LD_PRELOAD` on a
//! command that inherits no listener still runs it without the shim.
//!
//! This runs in `execve`, possibly in a child between fork and exec, so it
//! allocates nothing: the lines were made at start, the descriptor scan
//! reads `/proc/self/fd` into a stack buffer, and the new environment is an
//! array of pointers on the stack for up to [`STACK_ENTRIES`] entries.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::sync::OnceLock;

use libc::c_char;

use agentfs_contract::env;

use crate::config::{self, Config};
use crate::{guard, sys};

/// Entries (pointers) the stack copy of an environment holds; a larger
/// environment is passed on unchanged.
const STACK_ENTRIES: usize = 512;

/// The variables put back, as `NAME=value` lines this process started with.
static LINES: OnceLock<Vec<CString>> = OnceLock::new();

/// Records the lines to put back. Called from the constructor.
pub fn init() {
    let names = env::INSTANCE_VARS
        .iter()
        .chain([&env::HOME, &env::ROUTER_PORT, &env::PRELOAD]);
    let lines = names
        .filter_map(|name| {
            let value = std::env::var_os(name)?;
            let mut line = name.as_bytes().to_vec();
            line.push(b'=');
            line.extend_from_slice(value.as_encoded_bytes());
            CString::new(line).ok()
        })
        .collect();
    let _ = LINES.set(lines);
}

/// Calls `exec` with the environment the new program should get: `envp`,
/// or a copy with agentfs's variables put back (see the module doc).
///
/// # Safety
/// `envp` must be NULL or a NULL-terminated array of NUL-terminated strings
/// that stays valid during the call.
pub unsafe fn with_env<R>(
    envp: *const *const c_char,
    exec: impl FnOnce(*const *const c_char) -> R,
) -> R {
    let Some(_guard) = guard::enter() else {
        return exec(envp);
    };
    let (Some(config), Some(lines)) = (config::active(), LINES.get()) else {
        return exec(envp);
    };
    // SAFETY: forwarded from the caller.
    if envp.is_null() || unsafe { has(envp, env::APP.as_bytes()) } || !hands_over(config) {
        return exec(envp);
    }
    let mut copy = [std::ptr::null::<c_char>(); STACK_ENTRIES];
    let mut n = 0;
    // SAFETY: envp is a valid NULL-terminated array (checked non-NULL).
    while n < STACK_ENTRIES - 1 && !unsafe { *envp.add(n) }.is_null() {
        // SAFETY: as above.
        copy[n] = unsafe { *envp.add(n) };
        n += 1;
    }
    // SAFETY: as above.
    if !unsafe { *envp.add(n) }.is_null() {
        return exec(envp);
    }
    for line in lines {
        let name = line
            .to_bytes()
            .split(|&b| b == b'=')
            .next()
            .unwrap_or_default();
        // SAFETY: copy[..n] is the caller's entries, NULL-terminated at n.
        if n < STACK_ENTRIES - 1 && !unsafe { has(copy.as_ptr(), name) } {
            copy[n] = line.as_ptr();
            n += 1;
        }
    }
    config::log(format_args!(
        "a program inherits a converted listener with a cleared environment: agentfs's variables put back"
    ));
    exec(copy.as_ptr())
}

/// Whether `envp` sets `name`.
///
/// # Safety
/// `envp` must be a NULL-terminated array of NUL-terminated strings.
unsafe fn has(envp: *const *const c_char, name: &[u8]) -> bool {
    let mut entry = envp;
    loop {
        // SAFETY: entry stays within the NULL-terminated array.
        let line = unsafe { *entry };
        if line.is_null() {
            return false;
        }
        // SAFETY: each entry is a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(line) }.to_bytes();
        if bytes
            .strip_prefix(name)
            .is_some_and(|rest| rest.first() == Some(&b'='))
        {
            return true;
        }
        // SAFETY: the current entry was not the terminator.
        entry = unsafe { entry.add(1) };
    }
}

/// Whether this process holds a converted socket that a program it
/// executes would inherit.
fn hands_over(config: &Config) -> bool {
    let mut found = false;
    sys::for_each_open_fd(|fd| {
        found = found || is_inheritable_listener(config, fd);
    });
    found
}

fn is_inheritable_listener(config: &Config, fd: RawFd) -> bool {
    let inheritable = sys::fd_flags(fd).is_ok_and(|flags| flags & libc::FD_CLOEXEC == 0);
    inheritable
        && !sys::has_peer(fd)
        && sys::with_unix_socket_path(fd, |path| config.owns_path(path)).unwrap_or(false)
}
