//! Process trees, read from the operating system: which processes descend
//! from a given one, and (macOS) the TCP ports they listen on.
//!
//! Linux reads `/proc/*/stat` (each process's parent); macOS asks the
//! kernel with `proc_listchildpids`, which needs the FFI this crate keeps
//! apart from the launcher (which forbids `unsafe`). Both answer with a
//! snapshot: a process may start or end while it is taken.
//!
//! Layout:
//! - [`tree`]: a process and its descendants.
//! - [`sockets`]: the TCP sockets processes listen on, from macOS's kernel.

pub mod sockets;
pub mod tree;

pub use tree::{descendants, descendants_in};
