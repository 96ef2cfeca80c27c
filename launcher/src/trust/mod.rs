//! Putting the local CA where this user's clients look for roots, taking it
//! out again, and telling whether it is there: `agentfs trust`, `untrust`,
//! `trust --check` and doctor's line.
//!
//! Each place is handled by its own module and answers with an [`Outcome`]:
//! - `nss`: NSS databases, which Chromium, Chrome and Firefox read on Linux
//!   (`~/.pki/nssdb`, each Firefox profile), through `certutil`.
//! - `system`: the system's store (`/usr/local/share/ca-certificates` and
//!   `update-ca-certificates`, or the distribution's equivalent), only as
//!   root or with `--system`, through `sudo -n`: never a prompt.
//! - `keychain`: macOS's login keychain, through `security`.
//! - `command`: running those tools with no input and a time limit.
//!
//! The CA is recognised by its name (one per home) and its fingerprint, so
//! `untrust` removes exactly what `trust` added and nothing of anyone else's.

mod command;
mod keychain;
mod nss;
mod system;

use std::path::{Path, PathBuf};

use serde::Serialize;

use agentfs_tls::Ca;

/// What to do at each place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Trust,
    Untrust,
    Check,
}

/// Where the CA was, or was put, at one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// `trust` put it there.
    Added,
    /// It was there already (`trust`), or is there (`--check`).
    Trusted,
    /// `untrust` took it out.
    Removed,
    /// It is not there (`--check`, `untrust`).
    Absent,
    /// The place could not be changed or read: see `detail` and `fix`.
    Failed,
}

/// One place, what was found or done there, and how to fix a failure.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// What the place is, as a person would name it.
    pub place: String,
    pub path: PathBuf,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The exact command a person would run instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Outcome {
    fn new(place: impl Into<String>, path: &Path, state: State) -> Outcome {
        Outcome {
            place: place.into(),
            path: path.to_owned(),
            state,
            detail: None,
            fix: None,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Outcome {
        self.detail = Some(detail.into());
        self
    }

    fn fix(mut self, fix: impl Into<String>) -> Outcome {
        self.fix = Some(fix.into());
        self
    }

    /// Whether this place ended as the operation wanted it.
    pub fn done(&self, op: Op) -> bool {
        match op {
            Op::Trust | Op::Check => matches!(self.state, State::Added | State::Trusted),
            Op::Untrust => matches!(self.state, State::Removed | State::Absent),
        }
    }
}

/// Which places to look at.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The user's home directory (where NSS databases and keychains are).
    pub user_home: PathBuf,
    /// Whether the system store is included.
    pub system: bool,
}

impl Scope {
    /// The places of this platform: `system` is `--system`, or running as
    /// root, unless `--no-system`.
    pub fn new(user_home: PathBuf, system_flag: bool, no_system: bool) -> Scope {
        let root = agentfs_contract::layout::current_uid() == 0;
        Scope {
            user_home,
            system: !no_system && (system_flag || root),
        }
    }
}

/// Does `op` at every place of `scope`, in order.
pub fn apply(op: Op, ca: &Ca, scope: &Scope) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    if cfg!(target_os = "macos") {
        outcomes.push(keychain::apply(op, ca, &scope.user_home));
    }
    outcomes.extend(nss::apply(op, ca, &scope.user_home));
    if scope.system && !cfg!(target_os = "macos") {
        outcomes.push(system::apply(op, ca));
    }
    outcomes
}

/// A one-line account of an outcome, for people.
pub fn line(outcome: &Outcome) -> String {
    let what = match outcome.state {
        State::Added => "added to",
        State::Trusted => "trusted in",
        State::Removed => "removed from",
        State::Absent => "not in",
        State::Failed => "could not change or read",
    };
    let mut line = format!("{what} {} ({})", outcome.place, outcome.path.display());
    if let Some(detail) = &outcome.detail {
        line += &format!(": {detail}");
    }
    if let Some(fix) = &outcome.fix {
        line += &format!("\n    fix: {fix}");
    }
    line
}
