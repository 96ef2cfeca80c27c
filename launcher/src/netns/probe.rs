//! Whether the namespace lane works on this machine, and why not: pasta is
//! installed, and a user namespace with a PID namespace in it and a nested
//! one with network and mount namespaces can really be made (tried in a
//! child process, `agentfs netns-probe`, since making one changes the
//! process that makes it).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Why the lane is not available, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: String,
    pub fix: String,
}

impl Unavailable {
    fn new(reason: impl Into<String>, fix: impl Into<String>) -> Unavailable {
        Unavailable {
            reason: reason.into(),
            fix: fix.into(),
        }
    }
}

/// The lane's user-mode network tool.
pub const PASTA: &str = "pasta";

/// Whether the lane works here: `Ok` with pasta's path.
pub fn available() -> Result<PathBuf, Unavailable> {
    if !cfg!(target_os = "linux") {
        return Err(Unavailable::new(
            "network namespaces are Linux's",
            "none needed: programs the shim cannot enter run behind a bridge here",
        ));
    }
    let pasta = find_in_path(PASTA).ok_or_else(|| {
        Unavailable::new(
            "pasta, the user-mode network tool the namespace lane needs, is not installed",
            "apt-get install passt (or your system's passt package)",
        )
    })?;
    let exe = std::env::current_exe().map_err(|e| {
        Unavailable::new(
            format!("agentfs cannot find itself ({e})"),
            "reinstall agentfs",
        )
    })?;
    let output = Command::new(exe)
        .arg(super::PROBE_SUBCOMMAND)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| {
            Unavailable::new(
                format!("the namespace probe did not start ({e})"),
                "run agentfs doctor",
            )
        })?;
    if output.status.success() {
        return Ok(pasta);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let (reason, fix) = text
        .trim_end()
        .split_once('\t')
        .unwrap_or((text.trim(), "run agentfs doctor"));
    Err(Unavailable::new(reason, fix))
}

/// `agentfs netns-probe`: makes the namespaces the lane makes; exits 0, or
/// prints `REASON<TAB>FIX` and exits 1.
pub fn run_probe() -> i32 {
    #[cfg(target_os = "linux")]
    {
        use nix::sched::CloneFlags;
        let made = super::userns::enter(CloneFlags::CLONE_NEWPID).and_then(|()| {
            super::userns::enter(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
        });
        match made {
            Ok(()) => 0,
            Err(refused) => {
                println!("{}\t{}", refused.reason, refused.fix);
                1
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        println!("network namespaces are Linux's\tnone");
        1
    }
}

/// The first executable `name` in `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
