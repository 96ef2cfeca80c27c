//! The agentfs contract: what the shim, the router and the launcher agree on.
//!
//! Everything that crosses a process boundary is defined here, once:
//!
//! - [`env`]: the `AGENTFS_*` environment variables the launcher sets and the shim reads.
//! - [`git`]: what the git work tree an instance was started in has checked out.
//! - [`layout`]: the home and run directories, and the ownership checks on them.
//! - [`naming`]: DNS-label names, socket file names and the `sun_path` limit.
//! - [`urls`]: the host names and URLs a sidecar is reached at.
//! - [`sidecar`]: the JSON file beside each socket that says whose socket it is.
//! - [`liveness`]: the lock that tells a live socket from a stale one.
//! - [`accepting`]: whether a socket still accepts connections.
//! - [`rundir`]: the one reader of the run directory: entries, their state, lookups.
//! - [`scope`]: the cached lookup of an instance's listeners by port, for the shim's connect.
//!
//! It is synchronous and has no async runtime: the shim links it into every
//! process it is loaded into.

pub mod accepting;
pub mod env;
pub mod git;
pub mod layout;
pub mod liveness;
pub mod naming;
pub mod rundir;
pub mod scope;
pub mod sidecar;
pub mod urls;
