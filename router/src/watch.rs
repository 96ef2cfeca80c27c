//! Watching the run directory: file events as hints of what to read again.
//!
//! Sidecars are the signal, not sockets: macOS FSEvents reports nothing when a
//! Unix socket is created, while a sidecar renamed into place is seen by every
//! backend. An event names files; [`Changes`] collects the sidecars they
//! concern (a socket's or lock's event concerns its sidecar too), each once,
//! and wakes whoever waits. A storm of events costs one entry per file and
//! one wakeup, and none is lost: a watcher error, an overflow, or more files
//! than [`MAX_PENDING`] ask for a full scan instead.
//!
//! Events name files as the watcher backend spells them: macOS FSEvents
//! reports canonical paths (`/private/tmp/…` for `/tmp/…`, `/private/var/…`
//! for `$TMPDIR`), while readers compare a sidecar's path with the socket it
//! names, built from the run directory as it was given. So each event's path
//! is spelled again as a file of the run directory as given ([`Spelling`],
//! which canonicalises the directory once, when the watch starts), and the
//! comparison is like with like.
//!
//! Used by the router's discovery and by `agentfs wrap`'s announcer.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agentfs_contract::naming;
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Changed files remembered one by one before a full scan is cheaper.
pub const MAX_PENDING: usize = 1024;

/// What changed in the run directory since it was last looked at.
#[derive(Debug, Default)]
pub struct Changes {
    pending: Mutex<HashSet<PathBuf>>,
    full: AtomicBool,
    wake: Notify,
}

/// What to read again.
#[derive(Debug, PartialEq, Eq)]
pub enum Todo {
    /// Nothing (what changed was taken already).
    Nothing,
    /// These sidecars (which may be gone or new).
    Sidecars(Vec<PathBuf>),
    /// Everything.
    All,
}

impl Changes {
    pub fn new() -> Arc<Changes> {
        Arc::default()
    }

    /// Asks for a full scan (a watcher error, or anyone who saw something odd).
    pub fn everything(&self) {
        self.full.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Notes that the file at `path` changed.
    pub fn file(&self, path: &Path) {
        let Some(sidecar) = sidecar_of(path) else {
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() >= MAX_PENDING {
            pending.clear();
            self.full.store(true, Ordering::Release);
        } else {
            pending.insert(sidecar);
        }
        drop(pending);
        self.wake.notify_one();
    }

    /// Waits until something changed.
    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    /// Takes what changed so far.
    pub fn take(&self) -> Todo {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if self.full.swap(false, Ordering::AcqRel) {
            Todo::All
        } else if pending.is_empty() {
            Todo::Nothing
        } else {
            Todo::Sidecars(pending.into_iter().collect())
        }
    }
}

/// The sidecar a run-directory file belongs to: itself, or the one beside a
/// socket or lock. Temporary dotfiles and other files concern none.
fn sidecar_of(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    let ext = path.extension()?;
    [naming::SIDECAR_EXT, naming::SOCKET_EXT, naming::LOCK_EXT]
        .contains(&ext.to_str()?)
        .then(|| path.with_extension(naming::SIDECAR_EXT))
}

/// The two spellings of a watched directory: as it was given, and as the
/// file system resolves it (which FSEvents reports).
#[derive(Clone, Debug)]
pub struct Spelling {
    dir: PathBuf,
    /// The canonical path, when it differs from `dir`.
    canonical: Option<PathBuf>,
}

impl Spelling {
    /// Resolves `dir` once (a directory that cannot be resolved is only
    /// ever spelled as given).
    pub fn of(dir: &Path) -> Spelling {
        let canonical = dir.canonicalize().ok().filter(|c| c != dir);
        Spelling {
            dir: dir.to_owned(),
            canonical,
        }
    }

    /// `path`, when it names a file of the directory in its canonical
    /// spelling, spelled as the directory was given; otherwise as it is.
    pub fn as_given(&self, path: &Path) -> PathBuf {
        let (Some(canonical), Some(name)) = (&self.canonical, path.file_name()) else {
            return path.to_owned();
        };
        if path.parent() == Some(canonical.as_path()) {
            self.dir.join(name)
        } else {
            path.to_owned()
        }
    }
}

/// Notes one watcher event in `changes`, its paths spelled as `spelling`
/// gives the directory.
fn note(event: notify::Result<notify::Event>, spelling: &Spelling, changes: &Changes) {
    match event {
        Ok(event) if event.need_rescan() => changes.everything(),
        Ok(event) if is_hint(&event) => event
            .paths
            .iter()
            .for_each(|p| changes.file(&spelling.as_given(p))),
        Ok(_) => {}
        Err(_) => changes.everything(),
    }
}

/// Starts watching `run_dir`, noting each relevant event in `changes`. The
/// returned watcher must be kept alive for as long as events are wanted.
pub fn watch_dir(
    run_dir: &Path,
    changes: Arc<Changes>,
) -> notify::Result<notify::RecommendedWatcher> {
    let spelling = Spelling::of(run_dir);
    let mut watcher = notify::recommended_watcher(move |event| note(event, &spelling, &changes))?;
    watcher.watch(run_dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Whether an event may mean an entry changed. Opening or reading a file
/// changes nothing, and a scan itself opens the directory, every sidecar and
/// every lock: counting those (inotify reports them) would make each scan
/// trigger the next, so the router would re-scan without pause even when idle.
pub fn is_hint(event: &notify::Event) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
    use notify::Event;

    fn event(kind: EventKind, name: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from("/run").join(name))
    }

    #[test]
    fn reads_are_no_hint_but_changes_are() {
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read_done = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(!is_hint(&event(open, "web_a.json")));
        assert!(!is_hint(&event(read_done, "web_a.lock")));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(is_hint(&event(written, "web_a.json")));
        assert!(is_hint(&event(renamed, "web_a.json")));
        assert!(is_hint(&event(
            EventKind::Create(CreateKind::File),
            "web_a.sock"
        )));
    }

    #[test]
    fn changes_name_sidecars_once_and_overflow_into_a_full_scan() {
        let changes = Changes::default();
        changes.file(Path::new("/run/web_a.sock"));
        changes.file(Path::new("/run/web_a.json"));
        changes.file(Path::new("/run/web_a.lock"));
        changes.file(Path::new("/run/.web_a.json.1.tmp"));
        changes.file(Path::new("/run/notes.txt"));
        assert_eq!(
            changes.take(),
            Todo::Sidecars(vec![PathBuf::from("/run/web_a.json")])
        );
        assert_eq!(changes.take(), Todo::Nothing);
        changes.everything();
        assert_eq!(changes.take(), Todo::All);
        for n in 0..=MAX_PENDING {
            changes.file(Path::new(&format!("/run/w_{n}.json")));
        }
        assert_eq!(changes.take(), Todo::All);
    }

    #[test]
    fn events_in_either_spelling_name_sidecars_as_the_run_dir_is_given() {
        // A home reached through a symlink in a parent (as /tmp is on macOS):
        // the run directory itself is a real directory.
        let base = tempfile::tempdir().unwrap();
        let real = base.path().canonicalize().unwrap().join("real");
        std::fs::create_dir_all(real.join("run")).unwrap();
        let home = base.path().join("home");
        std::os::unix::fs::symlink(&real, &home).unwrap();
        let given = home.join("run");
        let spelling = Spelling::of(&given);
        let changes = Changes::default();
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        for dir in [&given, &real.join("run")] {
            let event = Event::new(renamed).add_path(dir.join("web_a.json"));
            note(Ok(event), &spelling, &changes);
            assert_eq!(
                changes.take(),
                Todo::Sidecars(vec![given.join("web_a.json")]),
                "{}",
                dir.display()
            );
        }
        // Another directory's file is left as it is.
        let elsewhere = real.join("web_a.json");
        assert_eq!(spelling.as_given(&elsewhere), elsewhere);
        // A directory spelled canonically already has one spelling.
        let plain = Spelling::of(&real.join("run"));
        let file = real.join("run").join("web_a.json");
        assert_eq!(plain.as_given(&file), file);
    }
}
