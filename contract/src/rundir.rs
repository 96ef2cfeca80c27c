//! The run directory, read: the one reader the router, the launcher and the
//! shim share.
//!
//! A scan lists every sidecar, reads each as hostile input, checks the socket
//! it names, and says what its owner is doing ([`State`]). Nothing is decided
//! from file names: app, instance and port come from sidecars. Lookups by
//! app, by instance and by instance and port are methods of the [`Scan`].
//! The directory itself is checked on every scan (ours, private, not a
//! symlink): one that was loosened or swapped after start is refused, not read.
//!
//! A [`Reader`] keeps the sidecars it parsed by file identity, so scanning an
//! unchanged directory costs a `stat` per file and a lock probe per entry,
//! not a parse: work grows with what changed.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::accepting::Accepting;
use crate::layout::{self, LayoutError};
use crate::liveness::{self, LockState};
use crate::naming;
use crate::sidecar::{self, Kind, Rejected, Sidecar};

/// What an entry's owner is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Its owner lives (its lock is held, or its socket accepts whatever
    /// its lock says) and its sidecar says it listens: routable.
    Live,
    /// Bound, and not listening yet.
    Bound,
    /// Its owner lives, but its socket no longer accepts connections (the
    /// owner closed that listener): not routable, and removed.
    Closed,
    /// Its owner is gone: its lock is free and its socket refuses
    /// connections. Its files may be removed.
    Stale,
}

impl State {
    /// The word `agentfs ps` and the API show.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Bound => "bound",
            State::Closed => "closed",
            State::Stale => "stale",
        }
    }
}

/// One sidecar and what it says.
#[derive(Clone, Debug)]
pub struct Entry {
    pub sidecar_path: PathBuf,
    pub sidecar: Arc<Sidecar>,
    pub state: State,
}

impl Entry {
    pub fn is_live(&self) -> bool {
        self.state == State::Live
    }
}

/// A file that looks like a sidecar but was not accepted, and why.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub path: PathBuf,
    pub reason: Arc<Rejected>,
}

/// The run directory at one moment.
#[derive(Debug, Default)]
pub struct Scan {
    /// By app, instance, primary first, then port.
    pub entries: Vec<Entry>,
    pub rejected: Vec<Rejection>,
    /// Sockets (by path) that have a socket or lock file but no sidecar.
    pub orphans: Vec<PathBuf>,
}

impl Scan {
    /// The routable entries.
    pub fn live(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.is_live())
    }

    /// Every entry of `app`, in any state.
    pub fn of_app<'a>(&'a self, app: &'a str) -> impl Iterator<Item = &'a Entry> {
        self.entries.iter().filter(move |e| e.sidecar.app == app)
    }

    /// Every entry of one instance of `app`, in any state.
    pub fn of_instance<'a>(
        &'a self,
        app: &'a str,
        instance: &'a str,
    ) -> impl Iterator<Item = &'a Entry> {
        self.of_app(app)
            .filter(move |e| e.sidecar.instance == instance)
    }

    /// Every entry, of any app, that instance id `instance` has on `port`:
    /// what a connect to `localhost:port` from inside that instance may mean.
    pub fn in_scope<'a>(&'a self, instance: &'a str, port: u16) -> impl Iterator<Item = &'a Entry> {
        self.entries
            .iter()
            .filter(move |e| e.sidecar.instance == instance && e.sidecar.port == port)
    }
}

/// Identity of a file's (or directory's) current content: a rename, a
/// write, or an entry added to or removed from a directory changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    nlink: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    pub(crate) fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            nlink: meta.nlink(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// When it last changed (the later of its modification and change times),
    /// since the epoch.
    pub(crate) fn changed(&self) -> std::time::Duration {
        let at = |(secs, nanos): (i64, i64)| {
            let nanos = u32::try_from(nanos.clamp(0, 999_999_999)).unwrap_or(0);
            std::time::Duration::new(u64::try_from(secs).unwrap_or(0), nanos)
        };
        at(self.mtime).max(at(self.ctime))
    }
}

/// A sidecar file read: the sidecar, or why it was refused.
pub type Outcome = Result<Arc<Sidecar>, Arc<Rejected>>;

/// A sidecar file as last parsed.
#[derive(Debug)]
struct Parsed {
    id: FileId,
    outcome: Outcome,
}

/// Reads one run directory again and again, parsing only what changed.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    parsed: HashMap<PathBuf, Parsed>,
}

impl Reader {
    pub fn new(dir: PathBuf) -> Reader {
        Reader {
            dir,
            parsed: HashMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every entry with its state, the rejected files and the orphans.
    pub fn scan(&mut self) -> Result<Scan, LayoutError> {
        let found = self.sidecars()?;
        let accepting = Accepting::snapshot();
        let mut scan = Scan {
            orphans: found.orphans,
            ..Scan::default()
        };
        for (path, outcome) in found.sidecars {
            let judged = outcome.and_then(|car| judge(&path, car, &accepting));
            match judged {
                Ok(entry) => scan.entries.push(entry),
                Err(reason) => scan.rejected.push(Rejection { path, reason }),
            }
        }
        scan.entries
            .sort_by(|a, b| order(&a.sidecar).cmp(&order(&b.sidecar)));
        Ok(scan)
    }

    /// One sidecar, judged: `Ok(None)` when it is gone. Whether its socket
    /// still accepts is not asked (a file changed: its owner is starting or
    /// ending, not closing a listener, which changes no file); a full
    /// [`Reader::scan`] asks.
    pub fn read(&mut self, path: &Path) -> Result<Option<Result<Entry, Rejection>>, LayoutError> {
        layout::check_private_dir(&self.dir)?;
        if fs::symlink_metadata(path).is_err() {
            self.parsed.remove(path);
            return Ok(None);
        }
        let judged = self
            .parse(path)
            .and_then(|car| {
                sidecar::check_placement(&car, path, &self.dir)
                    .map(|()| car)
                    .map_err(Arc::new)
            })
            .and_then(|car| judge(path, car, &Accepting::assumed()));
        Ok(Some(judged.map_err(|reason| Rejection {
            path: path.to_owned(),
            reason,
        })))
    }

    /// The sidecars whose sockets are placed right, parsed (from the cache
    /// when unchanged), without judging their owners: what the shim's
    /// lookups need, for which the connect itself is the liveness check.
    pub fn sidecars(&mut self) -> Result<Found, LayoutError> {
        layout::check_private_dir(&self.dir)?;
        let listing = fs::read_dir(&self.dir).map_err(|error| LayoutError::Io {
            path: self.dir.clone(),
            error,
        })?;
        let mut sidecars = Vec::new();
        let mut socket_stems = HashSet::new();
        let mut sidecar_stems = HashSet::new();
        for dirent in listing.flatten() {
            let name = dirent.file_name();
            let Some(name) = name.to_str().filter(|n| !n.starts_with('.')) else {
                continue;
            };
            let path = dirent.path();
            let Some((stem, ext)) = name.rsplit_once('.') else {
                continue;
            };
            if ext == naming::SIDECAR_EXT {
                sidecar_stems.insert(stem.to_owned());
                let outcome = self.parse(&path).and_then(|car| {
                    sidecar::check_placement(&car, &path, &self.dir)
                        .map(|()| car)
                        .map_err(Arc::new)
                });
                sidecars.push((path, outcome));
            } else if ext == naming::SOCKET_EXT || ext == naming::LOCK_EXT {
                socket_stems.insert(stem.to_owned());
            }
        }
        let seen: HashSet<&PathBuf> = sidecars.iter().map(|(p, _)| p).collect();
        self.parsed.retain(|path, _| seen.contains(path));
        let orphans = socket_stems
            .difference(&sidecar_stems)
            .map(|stem| self.dir.join(format!("{stem}.{}", naming::SOCKET_EXT)))
            .collect();
        Ok(Found { sidecars, orphans })
    }

    /// One sidecar file, parsed again only if it changed since last time.
    fn parse(&mut self, path: &Path) -> Outcome {
        let meta = fs::symlink_metadata(path).map_err(|e| Arc::new(Rejected::Io(e)))?;
        let id = FileId::of(&meta);
        if let Some(known) = self.parsed.get(path).filter(|p| p.id == id) {
            return known.outcome.clone();
        }
        let outcome = sidecar::read_file_checked(path)
            .map(Arc::new)
            .map_err(Arc::new);
        self.parsed.insert(
            path.to_owned(),
            Parsed {
                id,
                outcome: outcome.clone(),
            },
        );
        outcome
    }
}

/// What [`Reader::sidecars`] found: each sidecar file with its parsed and
/// placed sidecar or the reason it was refused, and the orphans.
#[derive(Debug)]
pub struct Found {
    pub sidecars: Vec<(PathBuf, Outcome)>,
    pub orphans: Vec<PathBuf>,
}

fn order(car: &Sidecar) -> (&str, &str, bool, u16) {
    (&car.app, &car.instance, !car.primary, car.port)
}

/// The state of a placed sidecar's owner, or why it is refused.
fn judge(path: &Path, car: Arc<Sidecar>, accepting: &Accepting) -> Result<Entry, Arc<Rejected>> {
    let entry = |state| {
        Ok(Entry {
            sidecar_path: path.to_owned(),
            sidecar: Arc::clone(&car),
            state,
        })
    };
    let socket = sidecar::check_socket(&car.socket);
    if car.kind == Kind::Manual {
        // Someone else's socket: live while it is one, of ours; never owned.
        return match socket {
            Ok(()) => entry(State::Live),
            Err(Rejected::ForeignSocket(_)) | Err(Rejected::NotASocket(_)) => entry(State::Stale),
            Err(other) => Err(Arc::new(other)),
        };
    }
    let lock_held = match liveness::lock_state(&naming::lock_path(&car.socket)) {
        LockState::Held => true,
        LockState::Free | LockState::Missing => false,
        LockState::Foreign(uid) => return Err(Arc::new(Rejected::ForeignLock(uid))),
    };
    match socket {
        Ok(()) => {}
        // Gone: what is left of it is stale, or closed while its owner lives.
        Err(Rejected::NotASocket(_)) if fs::symlink_metadata(&car.socket).is_err() => {
            return entry(if lock_held {
                State::Closed
            } else {
                State::Stale
            });
        }
        Err(other) => return Err(Arc::new(other)),
    }
    // A free lock with a socket that accepts: a server that took its
    // listener across exec, or a lock file removed by hand. Never stale.
    let owner_lives = lock_held || accepting.accepts_surely(&car.socket);
    let state = if !owner_lives {
        State::Stale
    } else if !car.listening {
        State::Bound
    } else if car.kind == Kind::Shim && !accepting.accepts(&car.socket) {
        State::Closed
    } else {
        State::Live
    };
    entry(state)
}

/// Removes what is left of an entry that is stale or closed, and returns
/// whether it did. A stale entry loses its files (a manual route only its
/// sidecar); a closed one its sidecar and socket (the lock is its live
/// owner's), unless its socket listens again by now. Live and bound entries,
/// and anything that is not ours, are left alone.
pub fn remove(entry: &Entry) -> io::Result<bool> {
    match entry.state {
        State::Stale => liveness::remove_stale_entry(&entry.sidecar_path, &entry.sidecar),
        State::Closed => {
            // Look again: the owner may have listened anew meanwhile.
            let socket = &entry.sidecar.socket;
            let rebuilt =
                sidecar::check_socket(socket).is_ok() && Accepting::snapshot().accepts(socket);
            if rebuilt {
                return Ok(false);
            }
            liveness::remove_own_files(&[&entry.sidecar_path, socket]);
            Ok(true)
        }
        State::Live | State::Bound => Ok(false),
    }
}

/// Reads `dir` once: a [`Reader`] without its cache, for one-off commands.
pub fn scan(dir: &Path) -> Result<Scan, LayoutError> {
    Reader::new(dir.to_owned()).scan()
}

#[cfg(test)]
#[path = "rundir_tests.rs"]
mod tests;
