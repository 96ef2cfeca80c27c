//! Directories and files opened by descriptor and checked to be ours and
//! closed to other users, so that what the loader later finds by path is what
//! was checked: nobody else can rename, replace or write into any of them.
//!
//! Each step opens one name relative to a directory already checked
//! (`openat` with `O_NOFOLLOW`) and checks the descriptor it got (`fstat`);
//! no path is looked up twice, so nothing can be swapped between check and
//! use. A directory below the home that fails the check is moved aside and
//! made afresh; the home itself is refused, since only a person can tell who
//! had access to it.

use std::fs::{File, Metadata, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use agentfs_contract::layout::{self, LayoutError};

/// How a directory is opened: never through a symlink, never a file.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
/// How a file is opened for reading; `NONBLOCK` so a FIFO cannot hang us.
const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);
/// Tries at replacing one directory: a second is only needed when another
/// agentfs replaces the same directory at the same moment.
const ATTEMPTS: usize = 3;

/// A directory open by descriptor, ours and not writable by group or others.
#[derive(Debug)]
pub struct TrustedDir {
    dir: File,
    pub path: PathBuf,
}

/// Why an entry cannot be trusted.
#[derive(Debug, PartialEq, Eq)]
enum Distrust {
    WrongKind,
    Foreign { owner: u32 },
    Writable { mode: u32 },
}

impl Distrust {
    /// The entry's problem, if any: the kind asked for, ours, not writable
    /// by group or others.
    fn of(meta: &Metadata, want_dir: bool) -> Option<Distrust> {
        let mode = meta.mode() & 0o777;
        if meta.is_dir() != want_dir || !(meta.is_dir() || meta.is_file()) {
            Some(Distrust::WrongKind)
        } else if meta.uid() != layout::current_uid() {
            Some(Distrust::Foreign { owner: meta.uid() })
        } else if mode & 0o022 != 0 {
            Some(Distrust::Writable { mode })
        } else {
            None
        }
    }

    /// The end of a sentence naming the entry.
    fn describe(&self) -> String {
        match self {
            Distrust::WrongKind => "is not what agentfs made there".into(),
            Distrust::Foreign { owner } => format!(
                "is owned by uid {owner}, not by you (uid {})",
                layout::current_uid()
            ),
            Distrust::Writable { mode } => {
                format!("is writable by group or others (mode {mode:03o})")
            }
        }
    }

    /// The refusal of a home, with the way to fix it.
    fn refusal(self, path: PathBuf) -> LayoutError {
        match self {
            Distrust::WrongKind => LayoutError::NotADirectory(path),
            Distrust::Foreign { owner } => LayoutError::ForeignOwner {
                path,
                owner,
                me: layout::current_uid(),
            },
            Distrust::Writable { mode } => LayoutError::WritableByOthers { path, mode },
        }
    }
}

impl TrustedDir {
    /// Opens `home`, which must be ours and closed to others: a home that is
    /// not is refused with the way to fix it, never replaced or tightened.
    pub fn home(home: &Path) -> Result<TrustedDir> {
        let path = home.to_owned();
        let dir = match rustix::fs::open(home, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::LOOP) => return Err(LayoutError::Symlink(path).into()),
            Err(Errno::NOTDIR) => return Err(LayoutError::NotADirectory(path).into()),
            Err(e) => {
                return Err(LayoutError::Io {
                    path,
                    error: e.into(),
                }
                .into())
            }
        };
        let meta = dir
            .metadata()
            .with_context(|| format!("could not inspect {}", home.display()))?;
        if let Some(why) = Distrust::of(&meta, true) {
            return Err(why.refusal(path).into());
        }
        Ok(TrustedDir { dir, path })
    }

    /// The directory `name` in this one. When it is missing, it is made
    /// (0700); when it is not ours, is open to others or is not a directory,
    /// it is moved aside first.
    pub fn subdir(&self, name: &str) -> Result<TrustedDir> {
        let path = self.path.join(name);
        for _ in 0..ATTEMPTS {
            match rustix::fs::openat(&self.dir, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => {
                    let dir = File::from(fd);
                    let meta = dir
                        .metadata()
                        .with_context(|| format!("could not inspect {}", path.display()))?;
                    match Distrust::of(&meta, true) {
                        None => return Ok(TrustedDir { dir, path }),
                        Some(why) => self.set_aside(name, &why.describe())?,
                    }
                }
                Err(Errno::NOENT) => match rustix::fs::mkdirat(&self.dir, name, Mode::RWXU) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(std::io::Error::from(e))
                            .with_context(|| format!("could not create {}", path.display()))
                    }
                },
                // A symlink (`O_NOFOLLOW`) or a file (`O_DIRECTORY`).
                Err(Errno::LOOP | Errno::NOTDIR) => self.set_aside(name, "is not a directory")?,
                Err(e) => {
                    return Err(std::io::Error::from(e))
                        .with_context(|| format!("could not open {}", path.display()))
                }
            }
        }
        bail!(
            "could not replace {}: it kept changing while agentfs replaced it",
            path.display()
        )
    }

    /// Whether the file `name` here is ours, closed to others, and holds
    /// exactly `bytes` (read through the descriptor that was checked).
    pub fn holds(&self, name: &str, bytes: &[u8]) -> bool {
        let Ok(fd) = rustix::fs::openat(&self.dir, name, READ_FLAGS, Mode::empty()) else {
            return false;
        };
        let mut file = File::from(fd);
        let Ok(meta) = file.metadata() else {
            return false;
        };
        if Distrust::of(&meta, false).is_some() || meta.len() != bytes.len() as u64 {
            return false;
        }
        let mut content = Vec::with_capacity(bytes.len());
        file.read_to_end(&mut content).is_ok() && content == bytes
    }

    /// Writes `bytes` to `name` as a fresh file of ours (0700), through a
    /// temporary file renamed over it, so that a running app never maps a
    /// half-written library and whatever was there before is not reused.
    pub fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = format!(".{name}.{}.tmp", std::process::id());
        let _ = rustix::fs::unlinkat(&self.dir, &tmp, AtFlags::empty());
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat(&self.dir, &tmp, flags | OFlags::CLOEXEC, Mode::RWXU)?;
        let mut file = File::from(fd);
        file.write_all(bytes)?;
        // The umask may have taken bits from the mode asked for at creation.
        file.set_permissions(Permissions::from_mode(0o700))?;
        rustix::fs::renameat(&self.dir, &tmp, &self.dir, name)?;
        Ok(())
    }

    /// Renames the entry `name` out of the way, within this directory (which
    /// only we can write to), then removes it if we can, saying so on stderr.
    fn set_aside(&self, name: &str, why: &str) -> Result<()> {
        static SET_ASIDE: AtomicU32 = AtomicU32::new(0);
        let path = self.path.join(name);
        let n = SET_ASIDE.fetch_add(1, Ordering::Relaxed);
        let aside = format!(".untrusted-{name}-{}-{n}", std::process::id());
        match rustix::fs::renameat(&self.dir, name, &self.dir, &aside) {
            Ok(()) => {}
            // Another agentfs moved it first.
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => bail!(
                "{} {why}, and agentfs could not move it aside ({}): remove it",
                path.display(),
                std::io::Error::from(e)
            ),
        }
        let aside_path = self.path.join(&aside);
        let removed = rustix::fs::unlinkat(&self.dir, &aside, AtFlags::empty()).is_ok()
            || std::fs::remove_dir_all(&aside_path).is_ok();
        if removed {
            eprintln!("agentfs: {} {why}: removed it", path.display());
        } else {
            eprintln!(
                "agentfs: {} {why}: moved it to {}, which you may remove",
                path.display(),
                aside_path.display()
            );
        }
        Ok(())
    }
}
