//! wrap's lane for programs the shim cannot enter (Linux): the program runs
//! in a private user + network namespace, so it gets a loopback of its own,
//! and agentfs forwards between that loopback and the run directory.
//!
//! What the program gets:
//! - **in**: every TCP port it listens on in its namespace becomes one of
//!   its instance's sockets in the run directory (sidecar `kind: netns`),
//!   routed as any other listener; two copies that hard-code one port both
//!   work, each on its own loopback ([`inbound`]).
//! - **out to its instance**: every port its instance serves in its other
//!   apps is listened on at `127.0.0.1` and `::1` inside the namespace and
//!   forwarded to that listener's socket, kept current ([`outbound`]).
//! - **out to everything else**: every other port the host listens on is
//!   listened on inside too and passed through `netns-run`, which stays in
//!   the host's network namespace ([`door`]), so a database on the host is
//!   reached at `localhost` as before; `pasta` (Debian's `passt`, what
//!   rootless Podman uses) gives the namespace the host's network for the
//!   rest, so the internet works as before ([`pasta`]).
//! - `*.localhost` names of the live instances in `/etc/hosts`, for programs
//!   that read it themselves (Go's own resolver), through a private mount
//!   namespace: the host's file is never touched ([`hosts`]).
//!
//! The processes, and why each exists:
//! - wrap starts `agentfs netns-run` as the app, under its reaper
//!   ([`outer`]). It makes a user namespace (its uid and gid mapped to
//!   themselves) in which it may make a PID namespace, and starts
//!   `agentfs netns-init`, the PID namespace's init ([`init`]). It stays in
//!   the host's network namespace, so it can start pasta there once init
//!   has made the network namespace (pasta, its child, lives in the PID
//!   namespace), and keep the door to the host's loopback open.
//! - `netns-init` makes a nested user namespace with a network and a mount
//!   namespace (unprivileged: the nested user namespace gives it the
//!   capabilities the outer one lost at exec), waits for pasta ([`handshake`]),
//!   starts the program, forwards, reaps every orphan, and exits with the
//!   program's status once no process is left in the namespace.
//! - Signals: wrap's reaper sends them to every process of the tree, the
//!   program included; `netns-run` and init catch them and let them go
//!   ([`signals`]).
//!
//! Ending: when a PID namespace's init dies the kernel kills everything in
//! it, pasta included. init dies with `netns-run` (parent-death signal,
//! checked once against a race), and `netns-run` is in the tree wrap's
//! reaper ends when wrap ends, even by SIGKILL. So nothing of the lane
//! outlives a wrap, without any cleanup code of the lane having to run.
//!
//! [`probe`] says whether the lane works here, and why not (wrap then
//! bridges; doctor reports it).

#[cfg(target_os = "linux")]
mod diag;
#[cfg(target_os = "linux")]
mod door;
#[cfg(target_os = "linux")]
mod forward;
#[cfg(target_os = "linux")]
mod handshake;
#[cfg(target_os = "linux")]
mod hosts;
#[cfg(target_os = "linux")]
mod inbound;
#[cfg(target_os = "linux")]
pub mod init;
#[cfg(target_os = "linux")]
mod outbound;
#[cfg(target_os = "linux")]
pub mod outer;
#[cfg(target_os = "linux")]
mod pasta;
pub mod probe;
#[cfg(target_os = "linux")]
mod signals;
#[cfg(target_os = "linux")]
mod userns;

use std::ffi::OsString;

use anyhow::Result;

use crate::app::App;
use crate::instance::Instance;

/// The hidden subcommands of the lane's own processes.
pub const RUN_SUBCOMMAND: &str = "netns-run";
pub const INIT_SUBCOMMAND: &str = "netns-init";
pub const PROBE_SUBCOMMAND: &str = "netns-probe";

/// Runs `cmd` as `instance` in its own network namespace, after one stderr
/// line saying why (`reason`: why it cannot take the shim). Returns the
/// exit code to exit with.
pub fn run(
    instance: &Instance,
    cmd: &[OsString],
    router_port: Option<u16>,
    reason: &str,
) -> Result<i32> {
    eprintln!("agentfs: {reason}; running it in a private network namespace instead");
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command
        .arg(RUN_SUBCOMMAND)
        .arg("--owner")
        .arg(std::process::id().to_string())
        .arg("--")
        .args(cmd);
    crate::inject::preload::trust_the_ca(&mut command, &instance.home);
    App::run(instance, command, router_port, false)
}
