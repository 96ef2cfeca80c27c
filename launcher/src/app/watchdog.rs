//! When wrap dies, its app goes too.
//!
//! wrap can be killed in ways it cannot react to (SIGKILL, the OOM killer, a
//! crash). Its app would then run on as an orphan, still routable, its
//! files locked. So before it starts the app, wrap starts `agentfs watchdog`
//! (a hidden subcommand) in a process group of its own, with a pipe as its
//! stdin whose other end only wrap holds. Once the app runs, wrap writes
//! which process (or process group) to watch; when wrap is done with the
//! app it writes `done`. If the pipe closes without `done`, wrap died: the
//! watchdog ([`crate::commands::watchdog`]) sends SIGTERM to the app's
//! group, and SIGKILL after a grace period if anything of it is left. This
//! works the same on Linux and macOS (where there is no parent-death
//! signal).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result};

use agentfs_contract::env;

/// wrap's end of the watchdog.
pub(crate) struct Watchdog {
    child: Child,
    pipe: ChildStdin,
}

impl Watchdog {
    /// Starts the watchdog process (before the app, so the app is never
    /// unwatched while wrap lives).
    pub(crate) fn start() -> Result<Watchdog> {
        let exe = std::env::current_exe().context("could not find the agentfs executable")?;
        let mut command = Command::new(exe);
        for var in env::INSTANCE_VARS.iter().chain([&env::PRELOAD]) {
            command.env_remove(var);
        }
        let mut child = command
            .arg("watchdog")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .context("could not start the watchdog")?;
        let pipe = child.stdin.take().context("the watchdog has no stdin")?;
        Ok(Watchdog { child, pipe })
    }

    /// Names the app to end if wrap dies: its whole group when it leads one.
    pub(crate) fn watch(&mut self, pid: u32, own_group: bool) {
        let what = if own_group { "group" } else { "pid" };
        let _ = writeln!(self.pipe, "{what} {pid}");
    }

    /// wrap is done with the app: the watchdog leaves it alone and exits.
    pub(crate) fn release(mut self) {
        let _ = writeln!(self.pipe, "done");
        drop(self.pipe);
        let _ = self.child.wait();
    }
}
