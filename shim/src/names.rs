//! `localhost` and `*.localhost` (RFC 6761): inside a wrapped process they
//! resolve to loopback without asking DNS, so `http://api.localhost:7380`
//! (through the router) works for every client, not only for the browsers
//! and curl that resolve such names themselves.
//!
//! The resolver hooks do not build answers: they ask libc's own resolver
//! for `localhost` instead, with the caller's service and hints, so the
//! addresses, their order and the memory (which `freeaddrinfo` frees) are
//! exactly what libc gives for `localhost`.

use std::ffi::CStr;

/// The name the resolver is asked instead.
pub const LOCALHOST: &CStr = c"localhost";

/// Whether `name` is `localhost` or a name under it: case-insensitive,
/// with one trailing dot allowed, every label before it non-empty.
pub fn is_localhost(name: &[u8]) -> bool {
    let name = name.strip_suffix(b".").unwrap_or(name);
    const SUFFIX: &[u8] = b"localhost";
    if name.len() < SUFFIX.len() || !name[name.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX)
    {
        return false;
    }
    let head = &name[..name.len() - SUFFIX.len()];
    if head.is_empty() {
        return true;
    }
    match head.strip_suffix(b".") {
        Some(labels) => !labels.is_empty() && labels.split(|&b| b == b'.').all(|l| !l.is_empty()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_and_names_under_it() {
        for name in [
            "localhost",
            "localhost.",
            "LocalHost",
            "api.localhost",
            "feat-x.web.localhost",
            "3000.feat-x.web.LOCALHOST.",
        ] {
            assert!(is_localhost(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn other_names_are_not() {
        for name in [
            "",
            ".",
            ".localhost",
            "a..localhost",
            "mylocalhost",
            "localhost.com",
            "localhost..",
            "api.localhost.example",
            "example.com",
            "127.0.0.1",
        ] {
            assert!(!is_localhost(name.as_bytes()), "{name}");
        }
    }
}
