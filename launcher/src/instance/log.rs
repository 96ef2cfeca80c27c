//! An instance's log: what its app wrote to stdout and stderr, as wrap
//! keeps it under `$AGENTFS_HOME/logs/` (0700) in `{app}_{instance}.log`
//! (0600, the bytes as written, colours included).
//!
//! Bounded: a log that would grow past [`MAX_BYTES`] is renamed to
//! `{app}_{instance}.log.1` (replacing the one before) and started afresh,
//! so an instance never keeps more than twice that. A new wrap of the same
//! instance appends to the same log, which is how `agentfs logs -f` follows
//! an app across restarts. Logs of instances that no longer run are removed
//! once untouched for [`KEEP_FOR`]. App and instance names are DNS labels,
//! which never contain `_`, so a log's file name says whose it is.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use agentfs_contract::layout::{self, current_uid};
use agentfs_contract::naming;

use crate::instance::names::InstanceName;

/// Largest size of one log file before it is rotated: a few days of a
/// chatty dev server, and small enough to read whole.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// How long the log of an instance that no longer runs is kept.
pub const KEEP_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

const EXT: &str = "log";
const OLDER_EXT: &str = "log.1";

/// The log of `name` in `logs_dir`.
pub fn path(logs_dir: &Path, name: &InstanceName) -> PathBuf {
    logs_dir.join(format!("{}_{}.{EXT}", name.app, name.instance))
}

/// Where the log at `path` goes when it is rotated.
pub fn older(path: &Path) -> PathBuf {
    let mut older = path.as_os_str().to_owned();
    older.push(".1");
    PathBuf::from(older)
}

/// Whose log a file in the logs directory is, from its name.
fn owner_of(file_name: &str) -> Option<InstanceName> {
    let stem = file_name
        .strip_suffix(&format!(".{OLDER_EXT}"))
        .or_else(|| file_name.strip_suffix(&format!(".{EXT}")))?;
    let (app, instance) = stem.split_once('_')?;
    (naming::is_label(app) && naming::is_label(instance)).then(|| InstanceName::new(app, instance))
}

/// The instances that have a log.
pub fn logged(logs_dir: &Path) -> BTreeSet<InstanceName> {
    fs::read_dir(logs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| owner_of(e.file_name().to_str()?))
        .collect()
}

/// Removes the logs untouched for [`KEEP_FOR`], except those of `keep`.
pub fn prune(logs_dir: &Path, keep: &BTreeSet<InstanceName>, now: SystemTime) {
    for dirent in fs::read_dir(logs_dir).into_iter().flatten().flatten() {
        let Some(owner) = dirent.file_name().to_str().and_then(owner_of) else {
            continue;
        };
        let old = dirent
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| now.duration_since(modified).unwrap_or_default() > KEEP_FOR);
        if old && !keep.contains(&owner) {
            let _ = fs::remove_file(dirent.path());
        }
    }
}

/// Appends to one instance's log, rotating it when it grows too large.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    len: u64,
}

impl LogWriter {
    /// Opens (or starts) the log of `name`, making `logs_dir` if needed.
    pub fn open(logs_dir: &Path, name: &InstanceName) -> io::Result<LogWriter> {
        layout::ensure_private_dir(logs_dir).map_err(io::Error::other)?;
        let path = path(logs_dir, name);
        let file = open_append(&path)?;
        let len = file.metadata()?.len();
        Ok(LogWriter { path, file, len })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `bytes`, rotating first if they would take the log past
    /// [`MAX_BYTES`] (a single write is never split between two files).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.len > 0 && self.len + bytes.len() as u64 > MAX_BYTES {
            fs::rename(&self.path, older(&self.path))?;
            self.file = open_append(&self.path)?;
            self.len = self.file.metadata()?.len();
        }
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

/// Opens a log for appending: created 0600, never through a symlink, and
/// only if it is a regular file of ours.
fn open_append(path: &Path) -> io::Result<File> {
    let file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != current_uid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a file of ours", path.display()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// What `agentfs logs` prints of a log, and where to follow it from.
#[derive(Debug)]
pub struct Tail {
    /// What is kept (the rotated part first), or its last lines when asked.
    pub bytes: Vec<u8>,
    /// The current file, open and read to its end; `None` if there is none yet.
    pub current: Option<File>,
}

/// The log at `path`, or its last `lines` lines. Missing files read as empty.
pub fn read_tail(path: &Path, lines: Option<usize>) -> io::Result<Tail> {
    let mut bytes = read_if_there(&older(path))?;
    let current = match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)?;
            Some(file)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(n) = lines {
        let from = bytes.len() - last_lines(&bytes, n).len();
        bytes.drain(..from);
    }
    Ok(Tail { bytes, current })
}

/// What the log at `path` gained since it stood at `offset` in the file
/// with inode `ino` (what [`read_tail`] keeps, when that file is gone or
/// `since` is `None`).
pub fn read_since(path: &Path, since: Option<(u64, u64)>) -> io::Result<Vec<u8>> {
    let older_path = older(path);
    let ino_of = |p: &Path| fs::metadata(p).map(|m| m.ino()).ok();
    let from = |p: &Path, offset: u64| -> io::Result<Vec<u8>> {
        let mut file = File::open(p)?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    match since {
        Some((ino, offset)) if ino_of(path) == Some(ino) => from(path, offset),
        Some((ino, offset)) if ino_of(&older_path) == Some(ino) => {
            let mut bytes = from(&older_path, offset)?;
            bytes.extend(read_if_there(path)?);
            Ok(bytes)
        }
        _ => read_tail(path, None).map(|tail| tail.bytes),
    }
}

/// The log at `path` (or its last `lines` lines) as text lines; none when
/// it cannot be read.
pub fn tail_lines(path: &Path, lines: Option<usize>) -> Vec<String> {
    read_tail(path, lines)
        .map(|tail| {
            String::from_utf8_lossy(&tail.bytes)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn read_if_there(path: &Path) -> io::Result<Vec<u8>> {
    match fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

/// The last `n` lines of `bytes` (a last line without its newline counts).
pub fn last_lines(bytes: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(0, |(at, _)| at + 1);
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;

    #[test]
    fn last_lines_counts_from_the_end() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
        assert_eq!(last_lines(b"\n\n", 1), b"\n");
    }

    #[test]
    fn file_names_say_whose_log_it_is() {
        let dir = Path::new("/l");
        let name = InstanceName::new("shop", "blue");
        assert_eq!(path(dir, &name), Path::new("/l/shop_blue.log"));
        assert_eq!(owner_of("shop_blue.log"), Some(name.clone()));
        assert_eq!(owner_of("shop_blue.log.1"), Some(name));
        assert_eq!(owner_of("shop.log"), None);
        assert_eq!(owner_of("a_b_c.log"), None);
        assert_eq!(owner_of(".shop_blue.log.tmp"), None);
    }

    #[test]
    fn rotates_at_the_bound_and_reads_both_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let name = InstanceName::new("web", "a");
        let mut log = LogWriter::open(&logs, &name).unwrap();
        let line = vec![b'x'; 1023];
        let mut written = 0u64;
        while written < 2 * MAX_BYTES + 10 * 1024 {
            log.write(&line).unwrap();
            log.write(b"\n").unwrap();
            written += 1024;
        }
        let current = fs::metadata(log.path()).unwrap();
        let rotated = fs::metadata(older(log.path())).unwrap();
        assert!(current.len() <= MAX_BYTES && rotated.len() <= MAX_BYTES);
        assert_eq!(current.mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&logs).unwrap().mode() & 0o777, 0o700);
        let whole = read_tail(log.path(), None).unwrap();
        assert_eq!(whole.bytes.len() as u64, current.len() + rotated.len());
        let mut open = whole.current.unwrap();
        assert_eq!(open.stream_position().unwrap(), current.len());
        let tail = read_tail(log.path(), Some(3)).unwrap();
        assert_eq!(tail.bytes.len(), 3 * 1024);
        assert_eq!(logged(&logs), BTreeSet::from([name]));
    }

    #[test]
    fn a_new_writer_appends_and_old_logs_are_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        let (a, b) = (InstanceName::new("web", "a"), InstanceName::new("web", "b"));
        LogWriter::open(&logs, &a).unwrap().write(b"one\n").unwrap();
        LogWriter::open(&logs, &a).unwrap().write(b"two\n").unwrap();
        LogWriter::open(&logs, &b).unwrap().write(b"x\n").unwrap();
        assert_eq!(fs::read(path(&logs, &a)).unwrap(), b"one\ntwo\n");
        let later = SystemTime::now() + KEEP_FOR + Duration::from_secs(60);
        prune(&logs, &BTreeSet::from([b.clone()]), later);
        assert_eq!(logged(&logs), BTreeSet::from([b]));
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = tmp.path().join("logs");
        layout::ensure_private_dir(&logs).unwrap();
        let name = InstanceName::new("web", "a");
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), path(&logs, &name)).unwrap();
        assert!(LogWriter::open(&logs, &name).is_err());
        assert!(!tmp.path().join("elsewhere").exists());
    }
}
