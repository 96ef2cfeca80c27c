//! What `agentfs stop` signals: an app's process group, or one process, and
//! whether anything in it still runs.
//!
//! A zombie does not count as running: it has ended (its files, and so its
//! locks, are closed), and only waits for its parent to read its status.
//! Linux reads this from `/proc`, where a process whose main thread is a
//! zombie while its other threads still exit counts as running; elsewhere
//! any process that `kill(…, 0)` finds counts.

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgid, getpgrp, Pid};

/// Who gets the signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Every process of the group with this id.
    Group(i32),
    /// One process.
    Process(i32),
}

impl Target {
    /// The process group of `pid`, as Ctrl-C in a terminal reaches it; only
    /// `pid` itself when that group is ours (we would stop ourselves) or
    /// `group` is false. `None` when `pid` is gone.
    pub fn of(pid: u32, group: bool) -> Option<Target> {
        let pid = i32::try_from(pid).ok().filter(|p| *p > 1)?;
        let pgid = getpgid(Some(Pid::from_raw(pid))).ok()?;
        Some(if group && pgid != getpgrp() && pgid.as_raw() > 1 {
            Target::Group(pgid.as_raw())
        } else {
            Target::Process(pid)
        })
    }

    pub fn signal(self, signal: Signal) -> nix::Result<()> {
        let result = match self {
            Target::Group(pgid) => killpg(Pid::from_raw(pgid), signal),
            Target::Process(pid) => kill(Pid::from_raw(pid), signal),
        };
        match result {
            Err(Errno::ESRCH) => Ok(()),
            other => other,
        }
    }

    /// Whether a process of the target still runs.
    pub fn runs(self) -> bool {
        let exists = match self {
            Target::Group(pgid) => killpg(Pid::from_raw(pgid), None),
            Target::Process(pid) => kill(Pid::from_raw(pid), None),
        };
        // EPERM: it exists, and is not ours to signal.
        if exists == Err(Errno::ESRCH) {
            return false;
        }
        !cfg!(target_os = "linux") || self.has_live_process_in("/proc")
    }

    /// Whether `/proc` lists a process of the target that is not a zombie.
    fn has_live_process_in(self, proc_root: &str) -> bool {
        let Ok(entries) = std::fs::read_dir(proc_root) else {
            return true;
        };
        entries.flatten().any(|entry| {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                return false;
            };
            let Some((state, pgid)) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| state_and_group(&stat))
            else {
                return false;
            };
            let ours = match self {
                Target::Group(group) => pgid == group,
                Target::Process(process) => pid == process,
            };
            ours && (!matches!(state, 'Z' | 'X') || threads_left(&entry.path()))
        })
    }
}

/// The processes that have `lock` open (Linux: from `/proc/*/fd`; elsewhere
/// none are found): who holds a listener whose maker is gone, such as a
/// server that forked and let its first process exit.
pub fn lock_holders(lock: &std::path::Path) -> Vec<u32> {
    // /proc shows the path with its symlinks resolved.
    let lock = lock.canonicalize().unwrap_or_else(|_| lock.to_owned());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == lock))
                .then_some(pid)
        })
        .collect()
}

/// Whether a process whose main thread ended has other threads still exiting.
fn threads_left(process: &std::path::Path) -> bool {
    std::fs::read_dir(process.join("task")).is_ok_and(|tasks| tasks.count() > 1)
}

/// The state and process group fields of `/proc/PID/stat`, which come after
/// the command name (in parentheses, and itself free to hold `)` and spaces).
fn state_and_group(stat: &str) -> Option<(char, i32)> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgid = fields.nth(1)?.parse().ok()?;
    Some((state, pgid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_an_awkward_name() {
        assert_eq!(
            state_and_group("42 (a) b (c) S 1 4242 4242 0 -1"),
            Some(('S', 4242))
        );
        assert_eq!(state_and_group("7 (z) Z 1 9 9"), Some(('Z', 9)));
        assert_eq!(state_and_group("garbage"), None);
    }

    #[test]
    fn a_child_runs_until_it_ends_and_never_targets_our_own_group() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // Same group as ours: only the process itself may be signalled.
        let target = Target::of(child.id(), true).unwrap();
        assert_eq!(target, Target::Process(child.id() as i32));
        assert!(target.runs());
        target.signal(Signal::SIGKILL).unwrap();
        // A zombie until reaped: not running any more.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while target.runs() {
            assert!(std::time::Instant::now() < deadline, "still runs");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert_eq!(Target::of(child.id(), true), None);
    }
}
