//! agentfs's own processes never run under the shim.
//!
//! `agentfs` started from inside a wrapped process (a shell, an npm script,
//! a coding agent's terminal) inherits the preload variable, so the shim
//! would convert its own listeners (a router would never listen on TCP, a
//! bridge's socket would be registered as the outer app) and wire its own
//! connects (a bridge's connect to its app's port would loop back into its
//! own socket). So before anything else, an agentfs that finds the shim in
//! its preload variable executes itself again without it. The instance's
//! other variables stay: a nested `wrap` defaults to the outer instance id.
//!
//! The one exception is `agentfs doctor-probe`, the server `agentfs doctor`
//! starts under the shim on purpose to test it.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::Path;

use agentfs_contract::env;

/// The subcommand that runs under the shim on purpose.
pub const PROBE_SUBCOMMAND: &str = "doctor-probe";

/// Whether a preload entry is an agentfs shim.
fn is_shim(entry: &str) -> bool {
    Path::new(entry)
        .file_name()
        .and_then(OsStr::to_str)
        .is_some_and(|name| name.starts_with("libagentfs_shim"))
}

/// The preload variable without agentfs shims: `None` when it has none (so
/// nothing needs doing), `Some(None)` when nothing else is left in it.
fn without_shims(preload: &OsStr) -> Option<Option<OsString>> {
    let value = preload.to_string_lossy();
    let entries: Vec<&str> = value.split([':', ' ']).filter(|e| !e.is_empty()).collect();
    if !entries.iter().any(|e| is_shim(e)) {
        return None;
    }
    let separator = if cfg!(target_os = "macos") { ":" } else { " " };
    let kept: Vec<&str> = entries.into_iter().filter(|e| !is_shim(e)).collect();
    Some((!kept.is_empty()).then(|| kept.join(separator).into()))
}

/// Executes this agentfs again without the shim if it was preloaded; returns
/// only when there is nothing to do or the exec failed (then agentfs runs
/// on, shim and all, after saying so).
pub fn ensure() {
    let Some(preload) = std::env::var_os(env::PRELOAD) else {
        return;
    };
    let Some(kept) = without_shims(&preload) else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "agentfs".into());
    let rest: Vec<OsString> = args.collect();
    if rest.first().is_some_and(|a| a == PROBE_SUBCOMMAND) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut command = std::process::Command::new(exe);
    command.arg0(arg0).args(rest);
    match kept {
        Some(kept) => command.env(env::PRELOAD, kept),
        None => command.env_remove(env::PRELOAD),
    };
    // On macOS the shim puts the preload variable back into the environment
    // of whatever it execs while this is set.
    command.env_remove(env::SHIM);
    let err = command.exec();
    eprintln!("agentfs: could not restart without the shim ({err}); running under it");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_agentfs_shims_are_dropped() {
        let sep = if cfg!(target_os = "macos") { ":" } else { " " };
        assert_eq!(without_shims(OsStr::new("/usr/lib/libjemalloc.so")), None);
        assert_eq!(without_shims(OsStr::new("")), None);
        assert_eq!(
            without_shims(OsStr::new("/h/lib/ab/libagentfs_shim.so")),
            Some(None)
        );
        assert_eq!(
            without_shims(OsStr::new(
                "/h/lib/ab/libagentfs_shim.dylib:/usr/lib/libjemalloc.so /x/liby.so"
            )),
            Some(Some(
                format!("/usr/lib/libjemalloc.so{sep}/x/liby.so").into()
            ))
        );
    }
}
