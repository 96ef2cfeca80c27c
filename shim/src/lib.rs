//! The agentfs shim: preloaded into an unmodified app, it turns the app's TCP
//! listening sockets into per-instance Unix domain sockets in the run directory,
//! with a sidecar JSON beside each (see the `agentfs-contract` crate); wires
//! the app's connects to its instance's ports to those sockets; and resolves
//! `*.localhost` to loopback.
//!
//! Layout:
//! - [`config`]: reads the `AGENTFS_*` settings once, in the constructor; no settings, no conversion.
//! - [`guard`]: the per-thread reentrancy guard every hook takes first.
//! - [`pass`]: what a hook did with a call, and the reason for every pass-through.
//! - [`sockaddr`]: socket addresses across the FFI boundary.
//! - [`sys`]: the few syscalls the logic needs, as small safe functions.
//! - [`spin`]: the fork-safe lock around the per-process tables.
//! - [`registry`]: what this process converted and wired.
//! - [`convert`]: bind: making the Unix socket.
//! - [`announce`]: its sidecar, written at bind and marked listening by the
//!   first listen in any process; read back by processes that did not bind it.
//! - [`answers`]: keeping the illusion: getsockname, getpeername, accept, socket options.
//! - [`scope`]: the listeners of this process's instance, by port.
//! - [`connect`]: connect: wiring a client to its instance's listener.
//! - [`names`]: `localhost` and `*.localhost` resolve to loopback.
//! - [`release`]: giving back a closed listener's lock, reserved port and files.
//! - [`inherit`]: taking over listeners inherited across `exec`.
//! - `handover` (Linux): a program executed with a cleared environment that
//!   inherits a converted listener gets agentfs's variables back.
//! - [`cleanup`]: removing our files at exit and on SIGTERM/SIGINT.
//! - [`hooks`]: the exported symbols, one thin wrapper each, per platform.
//!
//! The rule throughout: when in doubt, pass the call through unchanged. A
//! hook may run before the constructor, from any thread, in a forked child or
//! inside our own code; each of those paths ends in the real function, with
//! a [`pass::Pass`] reason that `AGENTFS_LOG` prints.
//!
//! The facts about loaders, kernels and real servers this design rests on
//! are written down in `docs/design.md` at the repository root.

mod announce;
mod answers;
mod cleanup;
mod config;
mod connect;
mod convert;
#[cfg(target_os = "linux")]
mod epoll;
mod guard;
#[cfg(target_os = "linux")]
mod handover;
mod hooks;
mod inherit;
mod names;
mod pass;
mod registry;
mod release;
mod scope;
mod sockaddr;
mod spin;
mod sys;

#[ctor::ctor]
fn init() {
    config::init();
    #[cfg(target_os = "linux")]
    handover::init();
    inherit::adopt();
    registry::install_fork_handlers();
    scope::install_fork_handlers();
}

#[ctor::dtor]
fn fini() {
    cleanup::at_exit();
}
