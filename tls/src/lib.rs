//! agentfs's local certificate authority, shared by the router (which
//! serves TLS with it) and the launcher (`agentfs trust`, and the bundle
//! wrapped processes trust). Synchronous: no async runtime.
//!
//! # Layout
//! - [`ca`]: the CA of one home, made on first use (ECDSA P-256, constrained
//!   to `localhost` names), its files kept private.
//! - [`leaf`]: which names get a certificate, and minting one.
//! - [`resolver`]: the router's rustls configuration: a leaf per SNI name,
//!   minted on demand, cached, renewed before it expires.
//! - [`bundle`]: the system's CA bundle plus the CA, for `SSL_CERT_FILE`
//!   and friends.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod ca;
pub mod leaf;
pub mod resolver;

pub use ca::{Ca, CaError};
pub use leaf::{is_local_name, Subject};
pub use resolver::{server_config, Leaves};
