//! The router's log: stderr in a terminal, or for a background router a file
//! that never grows past [`MAX_LOG`]: when a line would take it over, the
//! file is renamed to `router.log.1` (replacing the one before) and a new
//! one begun. So at most twice that is kept, however long the router runs
//! and whatever floods it.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

/// Largest size of one log file.
pub(crate) const MAX_LOG: u64 = 10 * 1024 * 1024;

/// Opens `path` to append to, private to the user.
pub(crate) fn open_append(path: &Path) -> Result<File> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("could not open {}", path.display()))
}

/// Starts the router's logging: to `file` when given, else to stderr.
/// `RUST_LOG` filters it (default `info`).
pub(crate) fn init(file: Option<&Path>) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match file {
        Some(path) => {
            let log = Bounded::open(path.to_owned(), MAX_LOG)?;
            builder
                .with_ansi(false)
                .with_writer(move || log.clone())
                .try_init()
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init(),
    };
    Ok(())
}

/// A log file that starts afresh, keeping one older file, at its limit.
#[derive(Clone, Debug)]
pub(crate) struct Bounded {
    inner: Arc<Mutex<Current>>,
}

#[derive(Debug)]
struct Current {
    path: PathBuf,
    file: File,
    written: u64,
    limit: u64,
}

impl Bounded {
    pub(crate) fn open(path: PathBuf, limit: u64) -> Result<Bounded> {
        let file = open_append(&path)?;
        let written = file.metadata().map_or(0, |m| m.len());
        Ok(Bounded {
            inner: Arc::new(Mutex::new(Current {
                path,
                file,
                written,
                limit,
            })),
        })
    }
}

impl Current {
    /// Moves the full file aside and begins a new one.
    fn rotate(&mut self) -> io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        fs::rename(&self.path, &old)?;
        self.file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut current = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if current.written > 0 && current.written + buf.len() as u64 > current.limit {
            current.rotate()?;
        }
        // tracing hands over one whole line per call: never split it.
        current.file.write_all(buf)?;
        current.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .file
            .flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_keeps_at_most_two_files_under_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("router.log");
        let mut log = Bounded::open(path.clone(), 1000).unwrap();
        // One write per line, as tracing's formatter hands them over.
        for n in 0..10_000 {
            let line = format!("line {n:05} of a flood of warnings\n");
            log.write_all(line.as_bytes()).unwrap();
        }
        let size = |p: &Path| fs::metadata(p).unwrap().len();
        let old = tmp.path().join("router.log.1");
        assert!(size(&path) <= 1000 && size(&old) <= 1000);
        let last = fs::read_to_string(&path).unwrap();
        assert!(
            last.ends_with("line 09999 of a flood of warnings\n"),
            "{last}"
        );
        assert!(last.starts_with("line "), "whole lines only: {last}");
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 2);
    }
}
