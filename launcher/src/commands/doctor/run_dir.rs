//! Doctor's checks of `$AGENTFS_HOME` and its run directory: owner, mode,
//! not a symlink (the rules of `contract::layout`), and what the run
//! directory holds: stale and closed entries (which `agentfs ps --prune`
//! removes) and files the contract's reader refuses.

use std::fs;
use std::io;
use std::path::Path;

use serde_json::json;

use agentfs_contract::layout::{self, LayoutError};
use agentfs_contract::liveness::{self, LockState};
use agentfs_contract::naming;
use agentfs_contract::rundir::{self, State};

use super::report::Check;

/// The checks, and whether the run directory can be used (or made).
pub fn checks(home: &Path) -> (Vec<Check>, bool) {
    let run_dir = layout::run_dir(home);
    let mut checks = vec![private_dir("home", "AGENTFS_HOME", home)];
    checks.push(private_dir("run-dir", "run directory", &run_dir));
    let usable = checks
        .iter()
        .all(|c| c.status != super::report::Status::Fail);
    if usable && run_dir.exists() {
        checks.extend(entries(&run_dir));
    }
    (checks, usable)
}

/// `dir` is ours, private, and not a symlink; or does not exist yet.
fn private_dir(id: &str, label: &str, dir: &Path) -> Check {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Check::ok(
                id,
                format!(
                    "{label} {} does not exist yet (wrap makes it, private)",
                    dir.display()
                ),
            );
        }
        _ => {}
    }
    match layout::check_private_dir(dir) {
        Ok(()) => Check::ok(
            id,
            format!("{label} {} is yours and private (0700)", dir.display()),
        ),
        Err(err) => Check::fail(id, format!("{label}: {err}"), fix(&err)),
    }
}

/// The exact fix for a directory agentfs refuses.
fn fix(err: &LayoutError) -> String {
    match err {
        LayoutError::ForeignOwner { path, .. } => format!(
            "sudo chown -R {}:{} {}   (or set AGENTFS_HOME to a directory of your own)",
            layout::current_uid(),
            nix::unistd::getegid(),
            quoted(path)
        ),
        LayoutError::NotPrivate { path, .. } => format!(
            "chmod 700 {}   (wrap does this itself when it starts; the router refuses the directory until then)",
            quoted(path)
        ),
        LayoutError::WritableByOthers { path, .. } => format!(
            "mv {0} {0}.old   (others could write there: look inside before you reuse it; \
             agentfs makes a fresh private one)",
            quoted(path)
        ),
        LayoutError::Symlink(path) => format!(
            "rm {}   (agentfs then makes a private directory there; or set AGENTFS_HOME to the real directory)",
            quoted(path)
        ),
        LayoutError::NotADirectory(path) => {
            format!("mv {0} {0}.old   (agentfs needs a directory there)", quoted(path))
        }
        LayoutError::NoHome => "export AGENTFS_HOME=\"$HOME/.agentfs\"".into(),
        LayoutError::Io { path, .. } => format!("ls -ld {}   (and make it readable)", quoted(path)),
    }
}

/// `path` for a shell command line.
pub fn quoted(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// What the run directory holds: stale or closed entries, refused files.
fn entries(run_dir: &Path) -> Vec<Check> {
    let scan = match rundir::scan(run_dir) {
        Ok(scan) => scan,
        Err(err) => return vec![Check::fail("run-dir.entries", err.to_string(), fix(&err))],
    };
    let count = |state| scan.entries.iter().filter(|e| e.state == state).count();
    let (live, stale, closed) = (
        count(State::Live),
        count(State::Stale),
        count(State::Closed),
    );
    let left_over = scan
        .orphans
        .iter()
        .filter(|socket| {
            matches!(
                liveness::lock_state(&naming::lock_path(socket)),
                LockState::Free | LockState::Missing
            )
        })
        .count();
    let details = json!({
        "live": live, "stale": stale, "closed": closed, "orphans": left_over,
        "refused": scan.rejected.len(),
    });
    let mut checks = vec![if stale + closed + left_over == 0 {
        Check::ok(
            "run-dir.entries",
            format!("run directory: {live} live entr(ies), nothing stale"),
        )
    } else {
        Check::warn(
            "run-dir.entries",
            format!(
                "run directory: {stale} stale and {closed} closed entr(ies), {left_over} \
                 socket(s) without a sidecar whose owner is gone"
            ),
            "agentfs ps --prune",
        )
    }
    .with_details(details)];
    if !scan.rejected.is_empty() {
        let files: Vec<String> = scan
            .rejected
            .iter()
            .map(|r| format!("{}: {}", r.path.display(), r.reason))
            .collect();
        let paths: Vec<String> = scan.rejected.iter().map(|r| quoted(&r.path)).collect();
        checks.push(Check::warn(
            "run-dir.refused",
            format!(
                "run directory: {} file(s) refused and never routed ({})",
                files.len(),
                files.join("; ")
            ),
            format!("rm {}", paths.join(" ")),
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn fixes_are_commands() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run dir");
        fs::create_dir(&run).unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
        let check = private_dir("run-dir", "run directory", &run);
        assert_eq!(check.status, super::super::report::Status::Fail);
        let fix = check.fix.unwrap();
        assert!(
            fix.starts_with(&format!("chmod 700 '{}'", run.display())),
            "{fix}"
        );
        assert_eq!(quoted(Path::new("/a/b.c")), "/a/b.c");
        assert_eq!(quoted(Path::new("/it's")), r"'/it'\''s'");
    }

    #[test]
    fn a_missing_run_dir_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        let (checks, usable) = checks(&tmp.path().join("new"));
        assert!(usable);
        assert_eq!(checks.len(), 2);
        assert!(checks[1].message.contains("does not exist yet"));
    }
}
