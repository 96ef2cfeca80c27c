//! Doctor's check of the interpreters dev servers run on, as found in
//! `PATH`: can each take the shim here? The verdict is wrap's own
//! ([`crate::injectable`]): the same rules decide whether wrap preloads the
//! shim or runs the program behind a bridge.

use std::ffi::OsStr;
use std::path::Path;

use super::report::Check;
use agentfs_injectable::{self as injectable, script, Verdict};

/// The interpreters looked for, by the names apps call them by.
pub const INTERPRETERS: [&str; 6] = ["node", "python3", "bun", "deno", "ruby", "php"];

/// One check per interpreter, for the shim library `shim`.
pub fn checks(shim: &[u8]) -> Vec<Check> {
    let path_var = std::env::var_os("PATH");
    INTERPRETERS
        .iter()
        .map(|name| check(name, path_var.as_deref(), shim))
        .collect()
}

fn check(name: &str, path_var: Option<&OsStr>, shim: &[u8]) -> Check {
    let id = &format!("interpreter.{name}");
    let Some(found) = script::lookup(OsStr::new(name), path_var) else {
        return Check::skipped(id, format!("{name}: not in PATH"));
    };
    match injectable::check(Path::new(name), shim) {
        Verdict::Injectable => {
            Check::ok(id, format!("{name}: {} can take the shim", found.display()))
        }
        Verdict::NotInjectable { reason, .. } => Check::warn(
            id,
            format!("{name}: {reason}"),
            format!(
                "wrap runs it behind a bridge by itself (its listeners still get URLs); to run it \
                 under the shim, put a dynamically linked {name} first in PATH{}",
                if cfg!(target_os = "macos") {
                    format!(" (from Homebrew, nvm or pyenv, not /usr/bin/{name})")
                } else {
                    String::new()
                }
            ),
        ),
    }
}
