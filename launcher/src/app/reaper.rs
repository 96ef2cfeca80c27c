//! The reaper: the app's first process, between wrap and the app, so that
//! everything wrap started ends with it, whatever session or process group
//! it moved to.
//!
//! wrap runs `agentfs reaper [--preload VALUE] -- CMD…` instead of `CMD`
//! (see [`around`]); the reaper starts `CMD` and lives until nothing it
//! started lives:
//! - On Linux it is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process
//!   that leaves its group or session and is orphaned (`setsid`, the double
//!   fork of a daemon such as `pg_ctl start`'s postgres) becomes its child
//!   instead of init's, so its tree stays whole and it waits for all of it.
//!   Elsewhere (macOS) the tree is walked by parent links, which an orphan
//!   leaves: such a daemon outlives the reaper there.
//! - Signals: what wrap forwards to it (SIGINT, SIGTERM, SIGHUP, SIGQUIT)
//!   goes to every process of the tree. A signal from anyone else (the
//!   terminal's Ctrl-C, `agentfs stop`'s signal to the app's group) may
//!   already have reached the reaper's group, so it goes only to the
//!   processes outside that group, which nothing else would tell.
//! - When wrap dies, even by SIGKILL (the parent-death signal on Linux, a
//!   kqueue on the parent elsewhere), the reaper ends the whole tree:
//!   SIGTERM, SIGKILL after [`GRACE`] for what is left.
//! - It exits with the app's status (its exit code, or 128 + the signal
//!   that killed it) once the last process of the tree is gone, so wrap
//!   lives as long as anything it started.
//!
//! The reaper is agentfs itself and never runs under the shim: wrap moves
//! the app's preload variable into `--preload`, and the reaper puts it back
//! for the app alone.

use std::ffi::OsString;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, getpid, getppid, Pid};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;

use agentfs_contract::env;

/// How long the tree has to end on SIGTERM, when wrap died, before SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);
/// Gap between two looks at the tree while it ends.
const POLL: Duration = Duration::from_millis(20);
/// The hidden subcommand.
pub const SUBCOMMAND: &str = "reaper";

/// The command that runs `app` under the reaper: the same variables,
/// directory and arguments, the preload variable moved to `--preload`.
pub fn around(app: &tokio::process::Command) -> std::io::Result<tokio::process::Command> {
    let app = app.as_std();
    let mut reaper = tokio::process::Command::new(std::env::current_exe()?);
    reaper.arg(SUBCOMMAND);
    for (name, value) in app.get_envs() {
        match value {
            Some(value) if name == env::PRELOAD => {
                reaper.arg("--preload").arg(value);
            }
            Some(value) => {
                reaper.env(name, value);
            }
            None => {
                reaper.env_remove(name);
            }
        }
    }
    reaper.env_remove(env::PRELOAD);
    if let Some(dir) = app.get_current_dir() {
        reaper.current_dir(dir);
    }
    reaper.arg("--").arg(app.get_program()).args(app.get_args());
    Ok(reaper)
}

/// `agentfs reaper`: starts `command` and returns the code to exit with.
pub fn run(preload: Option<OsString>, command: &[OsString]) -> i32 {
    let wrap = getppid();
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut signals = match SignalsInfo::<WithOrigin>::new([
        SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
    ]) {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("agentfs: the reaper could not take signals ({err})");
            return 1;
        }
    };
    // Registered first: the parent-death signal must never find the default action.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGUSR1);
    #[cfg(target_os = "macos")]
    watch_parent(wrap);
    if getppid() != wrap {
        return 1;
    }
    let Some((program, args)) = command.split_first() else {
        return 2;
    };
    let mut app = Command::new(program);
    app.args(args);
    if let Some(preload) = preload {
        app.env(env::PRELOAD, preload);
    }
    let child = match app.spawn() {
        Ok(child) => Pid::from_raw(child.id() as i32),
        Err(err) => return super::spawn_failure(program, &err),
    };
    let mut tree = Tree {
        app: child,
        status: None,
    };
    for origin in signals.forever() {
        match origin.signal {
            SIGCHLD => {
                if let Some(code) = tree.reap() {
                    return code;
                }
            }
            SIGUSR1 if getppid() != wrap => return tree.end(&mut signals),
            SIGUSR1 => {}
            signal => {
                let from_wrap = origin.process.is_some_and(|p| p.pid == wrap.as_raw());
                tree.forward(signal, from_wrap);
            }
        }
    }
    1
}

/// The reaper's children, and the app's status once it ended.
struct Tree {
    app: Pid,
    status: Option<ExitStatus>,
}

impl Tree {
    /// Collects every child that ended; the code to exit with once none is left.
    fn reap(&mut self) -> Option<i32> {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return None,
                Ok(status) => {
                    if status.pid() == Some(self.app) {
                        self.status = Some(exit_status(status));
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => return Some(self.code()),
            }
        }
    }

    fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status.map_or(1, |status| {
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
        })
    }

    /// Passes `signal` on: to the whole tree when wrap sent it, else to the
    /// processes outside the reaper's group (the group may have had it).
    fn forward(&self, signal: i32, from_wrap: bool) {
        let Ok(signal) = Signal::try_from(signal) else {
            return;
        };
        let group = getpgrp();
        for pid in descendants() {
            if from_wrap || nix::unistd::getpgid(Some(pid)).is_ok_and(|g| g != group) {
                let _ = kill(pid, signal);
            }
        }
    }

    /// wrap died: ends the whole tree, SIGKILL after [`GRACE`].
    fn end(&mut self, signals: &mut SignalsInfo<WithOrigin>) -> i32 {
        for pid in descendants() {
            let _ = kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + GRACE;
        loop {
            let _ = signals.pending().count();
            if let Some(code) = self.reap() {
                return code;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        for pid in descendants() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        loop {
            match waitpid(Pid::from_raw(-1), None) {
                Err(Errno::EINTR) | Ok(_) => {}
                Err(_) => return self.code(),
            }
        }
    }
}

/// Every process below the reaper.
fn descendants() -> Vec<Pid> {
    let me = getpid().as_raw() as u32;
    agentfs_procs::descendants(me)
        .into_iter()
        .filter(|&pid| pid != me)
        .map(|pid| Pid::from_raw(pid as i32))
        .collect()
}

fn exit_status(status: WaitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match status {
        WaitStatus::Exited(_, code) => ExitStatus::from_raw((code & 0xff) << 8),
        WaitStatus::Signaled(_, signal, _) => ExitStatus::from_raw(signal as i32),
        _ => ExitStatus::from_raw(0),
    }
}

/// macOS has no parent-death signal: a kqueue waits for wrap to exit and
/// then sends the reaper the signal Linux would.
#[cfg(target_os = "macos")]
fn watch_parent(wrap: Pid) {
    use nix::sys::event::{EventFilter, EventFlag, FilterFlag, KEvent, Kqueue};
    std::thread::spawn(move || {
        let Ok(queue) = Kqueue::new() else { return };
        let watch = KEvent::new(
            wrap.as_raw() as usize,
            EventFilter::EVFILT_PROC,
            EventFlag::EV_ADD | EventFlag::EV_ONESHOT,
            FilterFlag::NOTE_EXIT,
            0,
            0,
        );
        let mut fired = [watch];
        if queue.kevent(&[watch], &mut fired, None).is_ok() {
            let _ = kill(getpid(), Signal::SIGUSR1);
        }
    });
}
