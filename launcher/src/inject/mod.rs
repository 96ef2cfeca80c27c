//! Getting the shim into an app's processes, and keeping it out of agentfs's own.
//!
//! - [`library`]: the shim library carried inside the binary, written out
//!   under `$AGENTFS_HOME/lib/`, and the preload variable that names it.
//! - [`stand_ins`]: interpreter stand-ins that put the preload variable back
//!   where something (macOS SIP) strips it.
//! - [`preload`]: a command's environment set up to run with the shim.
//! - [`unshim`]: an agentfs started inside a wrapped process re-executes
//!   itself without the shim.
//!
//! Whether a program can take the shim at all is the `agentfs-injectable`
//! crate's question.

pub mod library;
pub mod preload;
pub mod stand_ins;
pub mod unshim;
