//! A second Unix user for tests about what other users can do: made with
//! `useradd` (which needs root) and removed with `userdel` when dropped.

use std::process::{Command, Output};

use super::wait_for;

/// A user made for one test, with no home directory and no login shell.
pub struct OtherUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl OtherUser {
    /// A fresh user, or why none can be made here (not root, no `useradd`).
    pub fn create() -> Result<OtherUser, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("making a second user needs root".into());
        }
        let name = format!("afs-t{}-{}", std::process::id(), unique());
        let args = [
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            &name,
        ];
        let output = retry_while_locked("useradd", &args)?;
        if !output.status.success() {
            return Err(format!(
                "useradd failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        // Built before the ids are read, so a failure below still removes it.
        let mut user = OtherUser {
            name,
            uid: 0,
            gid: 0,
        };
        user.uid = id(&user.name, "-u")?;
        user.gid = id(&user.name, "-g")?;
        Ok(user)
    }

    /// A fresh user, or `None` after printing why the calling test is skipped.
    pub fn create_or_skip(test: &str) -> Option<OtherUser> {
        match Self::create() {
            Ok(user) => Some(user),
            Err(why) => {
                eprintln!("SKIPPED: {test}: cannot make a second Unix user: {why}");
                None
            }
        }
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = retry_while_locked("userdel", &[&self.name]);
    }
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `program args`, again while it fails because another process holds
/// the lock on the user database (tests elsewhere may add users too).
fn retry_while_locked(program: &str, args: &[&str]) -> Result<Output, String> {
    let mut spawn_error = None;
    let output =
        wait_for(
            &format!("{program} to get the user database lock"),
            || match Command::new(program).args(args).output() {
                Err(e) => {
                    spawn_error = Some(format!("could not run {program}: {e}"));
                    Some(None)
                }
                Ok(out) if String::from_utf8_lossy(&out.stderr).contains("lock") => None,
                Ok(out) => Some(Some(out)),
            },
        );
    output.ok_or_else(|| spawn_error.unwrap_or_default())
}

fn id(name: &str, flag: &str) -> Result<u32, String> {
    let out = Command::new("id")
        .args([flag, name])
        .output()
        .map_err(|e| format!("could not run id: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("id {flag} {name} printed no number"))
}
