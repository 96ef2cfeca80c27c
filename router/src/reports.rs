//! What discovery writes to the log, kept bounded however the run directory
//! churns: a program that binds and closes listeners in a loop, or a file
//! rewritten with a new fault each time, must not fill the log.
//!
//! - [`Refusals`]: a refused sidecar is logged when the kind of its fault
//!   changes, at most [`LINES_PER_FILE`] times per file; the last of those
//!   lines says that the file's further faults are not logged. The count
//!   starts again once the file goes away.
//! - [`Removals`]: stale and closed entries removed are told in one line
//!   with counts and a few names, at most once per [`REMOVALS_EVERY`];
//!   what was removed meanwhile waits for the next line, which the next
//!   read of the directory writes once that time has passed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentfs_contract::rundir::{Rejection, State};

/// Lines logged about one refused sidecar file, until it goes away.
pub const LINES_PER_FILE: u32 = 3;

/// The shortest time between two lines about removed entries.
pub const REMOVALS_EVERY: Duration = Duration::from_secs(5);

/// Names a line about removed entries lists; the rest are counted.
const NAMES_PER_LINE: usize = 3;

/// Refused sidecars, by path, and what was logged about each.
#[derive(Debug, Default)]
pub struct Refusals {
    files: HashMap<PathBuf, Logged>,
}

/// What was logged about one file.
#[derive(Debug, Default)]
struct Logged {
    /// The kind of fault last logged, while the file is still refused for it.
    kind: Option<&'static str>,
    lines: u32,
}

impl Refusals {
    /// Logs `rejection`, unless the file was last logged for the same kind
    /// of fault, or has had its lines; returns whether it did.
    pub fn refused(&mut self, rejection: &Rejection) -> bool {
        let kind = rejection.reason.kind();
        let logged = self.files.entry(rejection.path.clone()).or_default();
        if logged.kind == Some(kind) || logged.lines >= LINES_PER_FILE {
            return false;
        }
        logged.kind = Some(kind);
        logged.lines += 1;
        let sidecar = rejection.path.display();
        if logged.lines < LINES_PER_FILE {
            tracing::warn!(%sidecar, "ignored: {}", rejection.reason);
        } else {
            tracing::warn!(
                %sidecar,
                "ignored: {} (further faults of this file are not logged until it is removed)",
                rejection.reason
            );
        }
        true
    }

    /// The file at `path` is accepted now: a fault it gets again is news,
    /// though its lines still count.
    pub fn accepted(&mut self, path: &Path) {
        if self.files.is_empty() {
            return;
        }
        if let Some(logged) = self.files.get_mut(path) {
            logged.kind = None;
        }
    }

    /// The file at `path` is gone: its count starts again.
    pub fn gone(&mut self, path: &Path) {
        self.files.remove(path);
    }

    /// Forgets every file not in `present` (a full read of the directory).
    pub fn keep_only(&mut self, present: &HashSet<&Path>) {
        self.files
            .retain(|path, _| present.contains(path.as_path()));
    }
}

/// Entries removed (or that could not be) since the last line about them.
#[derive(Debug, Default)]
pub struct Removals {
    stale: u64,
    closed: u64,
    /// The first few removed, by file name.
    names: Vec<String>,
    failed: u64,
    first_failure: Option<String>,
    last_line: Option<Instant>,
}

impl Removals {
    /// Notes that the entry of `socket`, in `state`, was removed.
    pub fn removed(&mut self, socket: &Path, state: State) {
        if state == State::Closed {
            self.closed += 1;
        } else {
            self.stale += 1;
        }
        if self.names.len() < NAMES_PER_LINE {
            self.names.push(file_name(socket));
        }
    }

    /// Notes that the entry of `socket` could not be removed.
    pub fn failed(&mut self, socket: &Path, err: &std::io::Error) {
        self.failed += 1;
        if self.first_failure.is_none() {
            self.first_failure = Some(format!("{}: {err}", socket.display()));
        }
    }

    /// Logs what was noted, unless a line was logged less than
    /// [`REMOVALS_EVERY`] before `now`.
    pub fn flush(&mut self, now: Instant) {
        let pending = self.stale + self.closed + self.failed;
        let recent = self
            .last_line
            .is_some_and(|last| now < last + REMOVALS_EVERY);
        if pending == 0 || recent {
            return;
        }
        self.last_line = Some(now);
        if self.stale + self.closed > 0 {
            let (stale, closed) = (self.stale, self.closed);
            tracing::info!(stale, closed, "removed {}", self.summary());
        }
        if let Some(first) = self.first_failure.take() {
            let failed = self.failed;
            tracing::warn!(failed, "could not remove stale files: {first}");
        }
        *self = Removals {
            last_line: self.last_line,
            ..Removals::default()
        };
    }

    /// `2 stale entries and 1 listener its owner closed: a.sock, b.sock and 1 more`
    fn summary(&self) -> String {
        let mut what = Vec::new();
        if self.stale > 0 {
            let noun = if self.stale == 1 { "entry" } else { "entries" };
            what.push(format!("{} stale {noun}", self.stale));
        }
        if self.closed > 0 {
            let noun = if self.closed == 1 {
                "listener its owner"
            } else {
                "listeners their owners"
            };
            what.push(format!("{} {noun} closed", self.closed));
        }
        let total = self.stale + self.closed;
        let more = total.saturating_sub(self.names.len() as u64);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{}: {}{tail}", what.join(" and "), self.names.join(", "))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentfs_contract::sidecar::Rejected;
    use std::sync::Arc;

    fn rejection(path: &str, reason: Rejected) -> Rejection {
        Rejection {
            path: PathBuf::from(path),
            reason: Arc::new(reason),
        }
    }

    #[test]
    fn a_file_is_logged_a_bounded_number_of_times_whatever_its_faults() {
        let mut refusals = Refusals::default();
        let garbage = || rejection("/run/a.json", Rejected::Unparseable("x".into()));
        let future = || rejection("/run/a.json", Rejected::UnknownVersion(2.into()));
        assert!(refusals.refused(&garbage()));
        assert!(!refusals.refused(&garbage()), "the same kind again");
        let logged = (0..200)
            .filter(|n| refusals.refused(&if n % 2 == 0 { future() } else { garbage() }))
            .count();
        assert_eq!(logged as u32, LINES_PER_FILE - 1);
        refusals.accepted(Path::new("/run/a.json"));
        assert!(!refusals.refused(&garbage()), "accepted between faults");
        assert!(refusals.refused(&rejection("/run/b.json", Rejected::Symlink)));
        refusals.gone(Path::new("/run/a.json"));
        assert!(refusals.refused(&garbage()), "a new file with that name");
    }

    #[test]
    fn a_removal_summary_counts_and_names_a_few() {
        let mut removals = Removals::default();
        removals.removed(Path::new("/run/web_a.sock"), State::Stale);
        assert_eq!(removals.summary(), "1 stale entry: web_a.sock");
        for n in 0..4 {
            removals.removed(Path::new(&format!("/run/web_{n}.sock")), State::Stale);
        }
        removals.removed(Path::new("/run/api_x.sock"), State::Closed);
        assert_eq!(
            removals.summary(),
            "5 stale entries and 1 listener its owner closed: \
             web_a.sock, web_0.sock, web_1.sock and 3 more"
        );
    }

    #[test]
    fn removals_are_told_at_most_once_per_period() {
        let mut removals = Removals::default();
        let start = Instant::now();
        removals.removed(Path::new("/run/a.sock"), State::Stale);
        removals.flush(start);
        assert_eq!(removals.stale, 0, "the first is told at once");
        removals.removed(Path::new("/run/b.sock"), State::Stale);
        removals.flush(start + REMOVALS_EVERY / 2);
        assert_eq!(removals.stale, 1, "kept for the next line");
        removals.flush(start + REMOVALS_EVERY);
        assert_eq!(removals.stale, 0);
        assert!(removals.names.is_empty());
    }
}
