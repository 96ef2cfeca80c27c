//! Doctor's check of the namespace lane (Linux): whether a program the shim
//! cannot enter gets a private network namespace here, tried end to end
//! (the namespaces made, pasta started and ready, a program run in them),
//! with the reason and the fix when not (wrap then bridges such programs).

use std::path::Path;
use std::process::{Command, Stdio};

use agentfs_contract::{env, layout};

use super::report::Check;
use crate::netns::{self, probe};

const ID: &str = "netns";

pub fn check(home: &Path) -> Check {
    if !cfg!(target_os = "linux") {
        return Check::skipped(
            ID,
            "private network namespaces are Linux's: programs the shim cannot enter run behind a bridge",
        );
    }
    let pasta = match probe::available() {
        Ok(pasta) => pasta,
        Err(no) => {
            return Check::warn(
                ID,
                format!(
                    "programs the shim cannot enter get no private network namespace: {}; wrap \
                     bridges them instead",
                    no.reason
                ),
                no.fix,
            )
        }
    };
    match run_in_lane(home) {
        Ok(()) => Check::ok(
            ID,
            format!(
                "programs the shim cannot enter get a private network namespace ({})",
                pasta.display()
            ),
        ),
        Err(why) => Check::warn(
            ID,
            format!("a program could not run in a private network namespace: {why}"),
            "wrap bridges such programs instead when given --no-netns; report this with the \
             output of agentfs doctor",
        ),
    }
}

/// Runs `agentfs --version` in the lane, as wrap would run an app.
fn run_in_lane(home: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(&exe)
        .arg(netns::RUN_SUBCOMMAND)
        .args(["--owner", &std::process::id().to_string(), "--"])
        .arg(&exe)
        .arg("--version")
        .env(env::APP, "doctor")
        .env(env::INSTANCE, "netns-check")
        .env(env::RUN_DIR, layout::run_dir(home))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr
        .lines()
        .next_back()
        .unwrap_or("it failed without a message")
        .trim_start_matches("agentfs: ")
        .to_owned())
}
