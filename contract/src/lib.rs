//! The agentfs contract: what the shim, the router and the launcher agree on.
//!
//! Everything that crosses a process boundary is defined here, once:
//!
//! - [`env`]: the `AGENTFS_*` environment variables the launcher sets and the shim reads.
//! - [`layout`]: the home and run directories, and the ownership checks on them.
//! - [`naming`]: DNS-label names, socket file names and the `sun_path` limit.
//! - [`sidecar`]: the JSON file beside each socket that says whose socket it is.
//! - [`liveness`]: the lock that tells a live socket from a stale one.
//!
//! It is synchronous and has no async runtime: the shim links it into every
//! process it is loaded into.

pub mod env;
pub mod layout;
pub mod liveness;
pub mod naming;
pub mod sidecar;
