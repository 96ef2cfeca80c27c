//! A stack: the services of one work tree run as one unit per instance,
//! from a stack file, with no containers.
//!
//! The stack file (`agentfs.toml`, else a `Procfile`) is found from the
//! current directory ([`file`], [`procfile`]); each service ([`spec`]) is an
//! app of the stack's instance ([`target`]), started in `after` order
//! ([`order`]). A small supervisor process ([`supervisor`]) runs them: each
//! run is `agentfs wrap --name SERVICE --instance ID -- sh -c RUN`, so the
//! shim, the bridge fallback, logs, the router and process-tree cleanup are
//! wrap's, in one place.
//!
//! The supervisor of instance ID keeps its files in
//! `$AGENTFS_HOME/stacks/ID/` (0700; [`state`]): a lock held while it runs
//! (so a stack is up exactly while the lock is held), `state.json` (0600,
//! written atomically on every change, read by `wait`, `ps` and `mcp`
//! without asking), its control socket `control.sock` (0600; [`control`]:
//! `start`, `restart`, `down`, and `log_mark`: where a service's log stood
//! at a time, for `logs --since`), its own log, and which setups have run.
//! Commands talk to it through [`client`], show it through [`report`], and
//! show several services' output as one stream through [`follow`]. [`mcp`]
//! is the MCP server over stdio that drives the same commands.
//!
//! Exit codes of `up`, `wait`, `down` and `restart` ([`client::exit`]):
//! 0 done, 1 a service failed (or the stack is not up, or the command
//! failed), 2 the timeout passed first.

pub mod client;
pub mod control;
pub mod file;
pub mod follow;
pub mod mcp;
pub mod order;
pub mod procfile;
pub mod report;
pub mod spec;
pub mod state;
pub mod supervisor;
pub mod target;
