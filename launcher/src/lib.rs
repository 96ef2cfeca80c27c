//! The `agentfs` command line, one module per subcommand.
//!
//! The subcommands (public: `src/main.rs` calls their `run()`):
//! - [`wrap`]: `agentfs wrap -- CMD`: run an app with the shim preloaded.
//! - [`bridge`]: `agentfs bridge`: a run-dir socket forwarding to an app's TCP port.
//! - [`ps`]: `agentfs ps`: every instance, live or stale, as a table or JSON.
//! - [`route`]: `agentfs route`: a name for a Unix socket no agentfs process made.
//! - [`router_cmd`]: `agentfs router`: run, start in the background, status, stop.
//! - [`logs`]: `agentfs logs [-f] [-n N] NAME`: what an instance's app wrote.
//! - [`stop`]: `agentfs stop NAME`: end an instance as Ctrl-C on its wrap would.
//! - [`url`]: `agentfs url NAME`: an instance's URL.
//! - [`doctor`]: `agentfs doctor`: whether each part works here (and its hidden probe).
//! - [`completions`]: `agentfs completions SHELL`, and the names they complete.
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
//! - `app_output`: the app's stdout and stderr, passed on and kept; `app_log`: that log.
//! - `names`: NAME as `logs`, `stop` and `url` take it.
//! - `process_group`: what `stop` signals, and whether it still runs.
//! - `wrap_bridge`: wrap's fallback for programs the shim cannot enter.
//! - `router_log`: the router's log, bounded for a background router.
//! - `worktree`: the default instance id in a git work tree.
//!
//! Whether a program can take the shim is decided by the `agentfs-injectable` crate.
#![forbid(unsafe_code)]

mod app;
pub use app::watchdog;
mod bridge;
pub mod commands;
pub mod completions;
pub mod doctor;
pub mod inject;
mod instance;
pub mod logs;
pub mod ps;
pub mod route;
pub mod router_cmd;
mod router_process;
pub mod stop;
pub mod url;
pub mod wrap;
