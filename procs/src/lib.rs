//! Process trees, read from the operating system: which processes descend
//! from a given one.
//!
//! Linux reads `/proc/*/stat` (each process's parent); macOS asks the
//! kernel with `proc_listchildpids`, which needs the FFI this crate keeps
//! apart from the launcher (which forbids `unsafe`). Both answer with a
//! snapshot: a process may start or end while it is taken.
//!
//! Layout:
//! - [`tree`]: a process and its descendants.

pub mod tree;

pub use tree::{descendants, descendants_in};
