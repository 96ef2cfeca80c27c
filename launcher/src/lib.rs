//! The `agentfs` command line, one module per subcommand.
//!
//! The subcommands (public: `src/main.rs` calls their `run()`):
//! - [`wrap`]: `agentfs wrap -- CMD`: run an app with the shim preloaded.
//! - [`bridge`]: `agentfs bridge`: a run-dir socket forwarding to an app's TCP port.
//! - [`ps`]: `agentfs ps`: every instance, live or stale, as a table or JSON.
//! - [`route`]: `agentfs route`: a name for a Unix socket no agentfs process made.
//! - [`router_cmd`]: `agentfs router`: run, start in the background, status, stop.
//! - [`stand_ins`]: interpreter stand-ins that restore the preload variable after SIP strips it.
//! - [`shim_lib`]: writes the embedded shim under `$AGENTFS_HOME/lib/`.
//! - [`unshim`]: agentfs's own processes re-execute themselves without the shim.
//! - [`watchdog`]: `agentfs watchdog`, which ends the app when its wrap was killed.
//!
//! What they share:
//! - `instance`: an instance's names, directories and environment.
//! - `child`: starting the app and running it to the end.
//! - `supervise`: signals, the process group, the exit code.
//! - `announce`: one line per listener as it becomes routable.
//! - `monitor`: one line for what keeps a listener from being routable.
//! - `wrap_bridge`: wrap's fallback for programs the shim cannot enter.
//! - `router_log`: the router's log, bounded for a background router.
//! - `worktree`: the default instance id in a git work tree.
//!
//! Whether a program can take the shim is decided by the `agentfs-injectable` crate.
#![forbid(unsafe_code)]

mod announce;
pub mod bridge;
mod child;
mod instance;
mod monitor;
pub mod ps;
pub mod route;
pub mod router_cmd;
mod router_log;
pub mod shim_lib;
pub mod stand_ins;
mod supervise;
pub mod unshim;
pub mod watchdog;
mod worktree;
pub mod wrap;
mod wrap_bridge;
