//! Starting the app as a child of `wrap` or `bridge`, and running it to the end.
//!
//! The one way an app is started: with its instance's variables, in a
//! process group of its own unless a terminal is ours to share (then it
//! reads the keyboard and gets Ctrl-C from the terminal itself), with its
//! listeners announced as they appear, its output passed on and kept in
//! the instance's log ([`output`]), and supervised until its process tree
//! is gone ([`supervise`]). The app's first process is the [`reaper`],
//! which keeps the tree whole (daemons that leave their group included)
//! and ends it if wrap itself is killed first.
//!
//! The parts [`App`] starts side by side, each on its own:
//! - [`announce`]: one stderr line per listener as it becomes routable;
//!   [`monitor`]: one line for what keeps a listener from being routable.
//! - [`reaper`]: the process between wrap and the app (`agentfs reaper`).
//! - [`output`]: the app's stdout and stderr, passed on and kept in its log.
//! - [`supervise`]: signals passed on, the process tree waited for, the exit code.
//!
//! And for an app seen from outside:
//! - [`procnet`]: the TCP ports a process tree listens on, from `/proc`.
//! - [`process_group`]: what `agentfs stop` signals, and whether it still runs.

mod announce;
mod monitor;
mod output;
pub mod process_group;
pub mod procnet;
pub mod reaper;
mod supervise;

use std::ffi::OsStr;
use std::io::IsTerminal;

use anyhow::Result;

use crate::instance::Instance;
use announce::Announcer;
use output::{Capture, Copying};

/// A running app (or a client of an instance, which has no announcer and
/// keeps no log).
pub struct App {
    child: tokio::process::Child,
    interactive: bool,
    announcer: Option<Announcer>,
    output: Option<Copying>,
}

impl App {
    /// Starts `command` (whose program and arguments, and any variables of
    /// its own, the caller set) as `instance`. When it cannot be started,
    /// says why on stderr and returns the exit code a shell would give.
    /// `shimmed`: the app runs with the shim, so none of its processes
    /// should listen on real TCP (wrap says so when one does).
    pub fn spawn(
        instance: &Instance,
        mut command: tokio::process::Command,
        router_port: Option<u16>,
        shimmed: bool,
    ) -> Result<Result<App, i32>> {
        command.envs(instance.env_vars());
        let mut command = reaper::around(&command)?;
        let interactive = std::io::stdin().is_terminal();
        if !interactive {
            command.process_group(0);
        }
        // Watching starts before the child does, so no listener is missed.
        let mut announcer = Announcer::start(instance, router_port)?;
        let capture = Capture::attach(&mut command, &instance.home, &instance.name());
        let program = command.as_std().get_program().to_owned();
        let spawned = command.spawn();
        // Our copies of the app's ends of its output streams close here.
        drop(command);
        Ok(match spawned {
            Ok(child) => {
                if let Some(pid) = child.id() {
                    announcer.watch(pid, shimmed);
                }
                Ok(App {
                    child,
                    interactive,
                    announcer: Some(announcer),
                    output: capture.map(Capture::start),
                })
            }
            Err(err) => Err(spawn_failure(&program, &err)),
        })
    }

    /// Starts `command` as a client of an instance (its variables set by
    /// the caller): under the reaper, so its whole tree ends with it, its
    /// output left as it is, nothing announced.
    pub fn spawn_client(command: tokio::process::Command) -> Result<Result<App, i32>> {
        let mut command = reaper::around(&command)?;
        let interactive = std::io::stdin().is_terminal();
        if !interactive {
            command.process_group(0);
        }
        let program = command.as_std().get_program().to_owned();
        Ok(match command.spawn() {
            Ok(child) => Ok(App {
                child,
                interactive,
                announcer: None,
                output: None,
            }),
            Err(err) => Err(spawn_failure(&program, &err)),
        })
    }

    /// Runs `command` as `instance` to its end on a runtime of its own:
    /// started ([`App::spawn`]), waited for, and the instance's stale files
    /// removed. Returns the code to exit with.
    pub fn run(
        instance: &Instance,
        command: tokio::process::Command,
        router_port: Option<u16>,
        shimmed: bool,
    ) -> Result<i32> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let code = runtime.block_on(async {
            match App::spawn(instance, command, router_port, shimmed)? {
                Ok(app) => app.wait().await,
                Err(code) => Ok(code),
            }
        });
        instance.remove_stale_files();
        code
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the app (and, when it leads its own group, the rest of
    /// the group), forwarding signals; returns the code to exit with.
    pub async fn wait(self) -> Result<i32> {
        let code = supervise::until_exit(self.child, self.interactive, self.announcer).await;
        if let Some(output) = self.output {
            output.finish().await;
        }
        code
    }
}

/// Exit codes as shells give them: 127 not found, 126 not executable.
fn spawn_failure(program: &OsStr, error: &std::io::Error) -> i32 {
    let program = program.to_string_lossy();
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            eprintln!("agentfs: {program}: command not found");
            127
        }
        std::io::ErrorKind::PermissionDenied => {
            eprintln!("agentfs: {program}: permission denied");
            126
        }
        _ => {
            eprintln!("agentfs: could not run {program}: {error}");
            126
        }
    }
}
