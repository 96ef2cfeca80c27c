//! `agentfs watchdog` (hidden, started by wrap itself): the watchdog's own
//! end. It reads which process (or process group) to watch from its stdin,
//! a pipe whose other end only wrap holds (`app::watchdog`), and
//! ends the app when the pipe closes without `done`: wrap died.

use std::io::BufRead;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How long the app has to end on SIGTERM before it gets SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// Gap between two looks at whether the app is gone.
const POLL: Duration = Duration::from_millis(50);

/// `agentfs watchdog`: reads what to watch from stdin until `done` or EOF.
pub fn run() -> i32 {
    let mut target = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.split_once(' ') {
            _ if line == "done" => return 0,
            Some(("group", pid)) => target = pid.parse().ok().map(|p| (p, true)),
            Some(("pid", pid)) => target = pid.parse().ok().map(|p| (p, false)),
            _ => {}
        }
    }
    if let Some((pid, group)) = target {
        end(Pid::from_raw(pid), group);
    }
    0
}

/// SIGTERM, then SIGKILL after [`GRACE`] if the app (or its group) is still there.
fn end(pid: Pid, group: bool) {
    // `None` sends nothing: it asks whether anything is there to signal.
    let signal = |sig: Option<Signal>| {
        if group {
            killpg(pid, sig)
        } else {
            kill(pid, sig)
        }
    };
    if signal(Some(Signal::SIGTERM)).is_err() {
        return;
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if signal(None).is_err() {
            return;
        }
        std::thread::sleep(POLL);
    }
    let _ = signal(Some(Signal::SIGKILL));
}
