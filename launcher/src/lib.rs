//! The `agentfs` command line, one module per subcommand.
//!
//! Layout:
//! - [`wrap`]: `agentfs wrap -- CMD`: run an app with the shim preloaded.
//! - [`shim_lib`]: writes the embedded shim under `$AGENTFS_HOME/lib/`.
//! - [`instance`]: choosing the app name and instance id.
//! - [`supervise`]: running the child to the end: signals, process group, exit code.
//! - [`stand_ins`]: interpreter stand-ins that restore the preload variable after SIP strips it.
//! - [`announce`]: one line per listener as its sidecar appears.
//! - [`bridge`]: `agentfs bridge`: a run-dir socket forwarding to an app's TCP port.
//! - [`ps`]: `agentfs ps`: every instance, live or stale, as a table or JSON.
//! - [`route`]: `agentfs route`: a name for a Unix socket no agentfs process made.
//! - [`router_cmd`]: `agentfs router`: run, start in the background, status, stop.
//! - [`wrap_bridge`]: wrap's fallback for programs the shim cannot enter: the app behind bridges.
//!
//! `src/main.rs` of the root package only parses arguments and calls the
//! `run()` of one of these. Whether a program can take the shim is decided
//! by the `agentfs-injectable` crate.
#![forbid(unsafe_code)]

pub mod announce;
pub mod bridge;
pub mod instance;
pub mod ps;
pub mod route;
pub mod router_cmd;
pub mod shim_lib;
pub mod stand_ins;
pub mod supervise;
pub mod wrap;
pub mod wrap_bridge;
