//! Running the wrapped command to the end: signal forwarding, waiting for its
//! process tree, and its exit code.

use anyhow::Result;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};

use crate::app::announce::Announcer;

/// How often we look whether the child's process group is empty once the
/// child itself has exited (its orphans may still be serving).
const GROUP_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Waits for `child` (and, when it leads its own process group, the rest of
/// the group), forwarding signals and announcing listeners meanwhile.
/// Returns the exit code to exit with: the child's, or 128 + its signal.
pub async fn until_exit(
    mut child: tokio::process::Child,
    interactive: bool,
    mut announcer: Option<Announcer>,
) -> Result<i32> {
    let pid = Pid::from_raw(child.id().map_or(0, |id| id as i32));
    let mut signals = Signals::new()?;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            Some(sig) = signals.next() => forward(sig, pid, interactive),
            () = announce(&mut announcer) => {}
        }
    };
    if !interactive {
        let mut poll = tokio::time::interval(GROUP_POLL);
        while killpg(pid, None).is_ok() {
            tokio::select! {
                _ = poll.tick() => {}
                Some(sig) = signals.next() => forward(sig, pid, interactive),
                () = announce(&mut announcer) => {}
            }
        }
    }
    Ok(exit_code(status))
}

/// The announcer's next step, or never when there is none (a client).
async fn announce(announcer: &mut Option<Announcer>) {
    match announcer {
        Some(announcer) => announcer.next().await,
        None => std::future::pending().await,
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Sends `sig` on to the reaper, which passes it to the app's whole tree.
/// In a terminal, the terminal already sent SIGINT and SIGQUIT to the
/// foreground group, the reaper and the app in it.
fn forward(sig: Signal, pid: Pid, interactive: bool) {
    if !interactive || !matches!(sig, Signal::SIGINT | Signal::SIGQUIT) {
        let _ = kill(pid, sig);
    }
}

/// The signals wrap passes on to the child.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    async fn next(&mut self) -> Option<Signal> {
        tokio::select! {
            Some(()) = self.interrupt.recv() => Some(Signal::SIGINT),
            Some(()) = self.terminate.recv() => Some(Signal::SIGTERM),
            Some(()) = self.hangup.recv() => Some(Signal::SIGHUP),
            Some(()) = self.quit.recv() => Some(Signal::SIGQUIT),
        }
    }
}
