//! The `agentfs` command line: what a user types in `commands/`, the
//! machinery it runs one folder away.
//!
//! # Layout
//!
//! [`commands`]: one module per subcommand, its clap arguments and its
//! `run()`, which `src/main.rs` calls:
//! - `wrap`: `agentfs wrap -- CMD`: run an app with the shim preloaded (or
//!   behind a bridge when it cannot take the shim).
//! - `exec`: `agentfs exec -- CMD`: run a client of an instance (wired, never routed).
//! - `bridge`: `agentfs bridge`: a run-dir socket forwarding to an app's TCP port.
//! - `ps`: `agentfs ps`: every instance, live or stale, as a table or JSON.
//! - `route`: `agentfs route`: a name for a Unix socket no agentfs process made.
//! - `router`: `agentfs router`: run, start in the background, status, stop.
//! - `logs`: `agentfs logs [-f] [-n N] NAME`: what an instance's app wrote.
//! - `stop`: `agentfs stop NAME`: end an instance as Ctrl-C on its wrap would.
//! - `url`: `agentfs url NAME`: an instance's URL.
//! - `doctor/`: `agentfs doctor`: whether each part works here, one module
//!   per check, and its hidden probe (`agentfs doctor-probe`).
//! - `completions`: `agentfs completions SHELL`, and the hidden
//!   `complete-names` the scripts ask for NAMEs.
//! - `trust`: `agentfs trust [--check]` and `agentfs untrust`: the local CA
//!   where this user's browsers and clients look for roots.
//! - `hosts`: `agentfs hosts sync | clean | check`: the live names in a
//!   managed block of `/etc/hosts`.
//! - `reaper`: the hidden `agentfs reaper`, the app's first process, which
//!   keeps its process tree whole and ends it with wrap.
//! - `up`, `wait`, `down`, `restart`: a work tree's stack as one unit (`up`
//!   also holds the hidden `agentfs stack-supervisor`); `mcp`: the MCP
//!   server for coding agents; `agent_help`: the guide for them.
//! - `netns`: the hidden `netns-run`, `netns-init` and `netns-probe`, the
//!   namespace lane's own processes.
//!
//! The machinery, each folder using only those listed after it:
//! - `stack/`: stacks (`agentfs.toml` or a `Procfile`): the file read and
//!   checked, the supervisor that runs each service as an `agentfs wrap`
//!   (readiness, restarts, its state under `$AGENTFS_HOME/stacks/`), what
//!   commands ask it over its control socket, and the MCP server.
//! - `netns/`: wrap's lane for programs the shim cannot enter (Linux): the
//!   program in a private user + network namespace, forwarded to and from
//!   the run directory; pasta for the rest of the network; the probe that
//!   says whether the lane works here.
//! - `bridge/`: bridges, for programs the shim cannot enter. `mod.rs` is
//!   wrap's fallback (the app run behind bridges), `socket` one bridge
//!   socket and its forwarding, `discovery` the app's ports found and
//!   bridged.
//! - `app/`: running one app to the end. `mod.rs` is `App`,
//!   which starts the app and, side by side, `announce` (a line per
//!   listener; `monitor`: a line for what keeps one from being routable),
//!   `reaper` (the app's first process, between wrap and the app), `output` (the app's stdout and stderr,
//!   passed on and kept) and `supervise` (signals, the process tree, the
//!   exit code). Beside them, for an app seen from outside: `procnet` (the
//!   ports a process tree listens on, from `/proc`) and `process_group`
//!   (what `stop` signals).
//! - `hosts/`: the managed block of a hosts file: what it lists (from the
//!   run directory, or the router), and writing it in place of the old one
//!   without touching any other line.
//! - `router_process/`: the router of this `AGENTFS_HOME` as a process:
//!   found over its control socket, started in the background; `log` its
//!   log, bounded for a background router.
//! - `instance/`: one instance: `mod.rs` its names, directories and
//!   environment; `names` NAME as `logs`, `stop` and `url` take it;
//!   `worktree` the default instance id in a git work tree; `log` its log.
//! - [`inject`]: the shim into an app's processes and out of agentfs's own:
//!   `library` the embedded shim written out, `stand_ins` interpreter
//!   stand-ins, `unshim` agentfs re-executing itself without the shim.
//! - `trust/`: the CA in NSS databases (`nss`), the system store
//!   (`system`), macOS's login keychain (`keychain`); `command` runs their
//!   tools with no input and a time limit.
//! - `table`: plain-text tables for `ps` and a stack's report.
//!
//! Whether a program can take the shim is decided by the `agentfs-injectable` crate.
#![forbid(unsafe_code)]

mod app;
mod bridge;
pub mod commands;
mod hosts;
pub mod inject;
mod instance;
pub mod netns;
mod router_process;
mod stack;
mod table;
mod trust;
