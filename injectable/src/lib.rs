//! Whether a program can take the agentfs shim, decided before `agentfs wrap`
//! injects it.
//!
//! Some programs ignore the preload variable or die of it: on Linux static
//! and Go binaries, setuid ones and binaries for another loader; on macOS
//! SIP-protected, restricted or hardened binaries and binaries without a
//! slice the shim has. For those, wrap falls back to a bridge. This crate
//! only reads files and gives a [`Verdict`]; the launcher acts on it.
//!
//! Layout:
//! - this file: [`check`] and [`check_binary`], the [`Verdict`], and the
//!   [`ReadAt`] byte source the readers share.
//! - [`script`]: resolving a command through `PATH` and `#!` lines to the binary that runs.
//! - [`elf`]: the Linux rules, from the ELF headers.
//! - [`macho`]: the macOS rules, on the slice of a thin or universal Mach-O
//!   that would run; `macho/read.rs` reads the slices, bounded by the file's size.
//! - [`entitlements`]: the values in a code signature's entitlements plist.
//! - `elf_tests.rs`, `macho_tests.rs`: the unit tests of the two readers;
//!   `macho_fixture.rs` builds the Mach-O files they judge, byte by byte.
//!
//! The parsers work on bytes through [`ReadAt`], so both compile and are
//! tested on every platform; only the choice of rules and the file-system
//! facts (mode bits, macOS file flags) depend on the platform. They never
//! panic: every read is bounds-checked, and a malformed file gets a verdict.
#![forbid(unsafe_code)]

pub mod elf;
pub mod entitlements;
pub mod macho;
pub mod script;

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// Whether the shim can be preloaded into a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Preload the shim. Also the answer when the program cannot be found or
    /// read: then the exec itself reports the real error.
    Injectable,
    /// Use a bridge instead; `reason` is one sentence a user understands.
    /// `strips_children`: the loader also deletes the preload variable from
    /// the program's environment (macOS: SIP, restricted or hardened), so
    /// nothing it starts can take the shim either.
    NotInjectable {
        reason: String,
        strips_children: bool,
    },
}

impl Verdict {
    pub fn is_injectable(&self) -> bool {
        matches!(self, Verdict::Injectable)
    }

    fn not(program: &Path, why: impl std::fmt::Display) -> Verdict {
        Verdict::NotInjectable {
            reason: format!("{} {why}", program.display()),
            strips_children: false,
        }
    }

    fn stripping(self) -> Verdict {
        match self {
            Verdict::NotInjectable { reason, .. } => Verdict::NotInjectable {
                reason,
                strips_children: true,
            },
            injectable => injectable,
        }
    }
}

/// The rules of the platform this binary was built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Linux,
    /// macOS, with the architectures of the shim that would be inserted.
    MacOs(macho::ShimArches),
}

impl Platform {
    /// This platform, for the shim library `shim`.
    pub fn current(shim: &[u8]) -> Platform {
        if cfg!(target_os = "macos") {
            Platform::MacOs(macho::ShimArches::of(shim))
        } else {
            Platform::Linux
        }
    }
}

/// Decides whether `program` (a path, or a name looked up in `PATH`) can take
/// the shim library `shim`, following `#!` interpreters to the binary that
/// actually runs.
pub fn check(program: &Path, shim: &[u8]) -> Verdict {
    check_in(
        program,
        std::env::var_os("PATH").as_deref(),
        Platform::current(shim),
    )
}

/// [`check`] with an explicit `PATH` and platform rules.
pub fn check_in(program: &Path, path_var: Option<&OsStr>, platform: Platform) -> Verdict {
    let resolved = match script::resolve(program, path_var) {
        Ok(resolved) => resolved,
        Err(script::Unresolved::NotFound(_)) => return Verdict::Injectable,
        Err(script::Unresolved::TooDeep(chain)) => {
            return Verdict::not(
                program,
                format!(
                    "has more than {} nested `#!` interpreters ({})",
                    script::MAX_DEPTH,
                    script::describe_chain(&chain)
                ),
            )
        }
    };
    let verdict = check_binary(&resolved.binary, platform);
    match verdict {
        Verdict::NotInjectable {
            reason,
            strips_children,
        } if resolved.chain.len() > 1 => Verdict::NotInjectable {
            reason: format!(
                "{reason} (it runs {})",
                script::describe_chain(&resolved.chain)
            ),
            strips_children,
        },
        other => other,
    }
}

/// Applies one platform's rules to a binary (no `#!` or `PATH` handling).
pub fn check_binary(binary: &Path, platform: Platform) -> Verdict {
    let Ok(file) = File::open(binary) else {
        return Verdict::Injectable;
    };
    let Ok(meta) = file.metadata() else {
        return Verdict::Injectable;
    };
    let source = FileSource {
        file,
        len: meta.len(),
    };
    let mode = meta.mode();
    match platform {
        Platform::Linux => {
            if let Some(why) = elf::verdict(&source, elf::Machine::host()) {
                return Verdict::not(binary, why);
            }
        }
        Platform::MacOs(shim) => {
            let real = binary.canonicalize().unwrap_or_else(|_| binary.to_owned());
            if let Some(why) = macho::path_rule(&real, file_flags(&meta)) {
                return Verdict::not(binary, why).stripping();
            }
            if let Some(why) = macho::verdict(&source, macho::Arch::host(), shim) {
                let verdict = Verdict::not(binary, why);
                return match macho::prunes_environment(&source, macho::Arch::host()) {
                    true => verdict.stripping(),
                    false => verdict,
                };
            }
        }
    }
    match setid_rule(mode) {
        Some(why) => Verdict::not(binary, why),
        None => Verdict::Injectable,
    }
}

/// setuid and setgid programs run in the loader's secure mode, which ignores
/// the preload variable on both platforms.
pub fn setid_rule(mode: u32) -> Option<&'static str> {
    if mode & 0o4000 != 0 {
        Some("is setuid: the loader ignores the preload variable for it")
    } else if mode & 0o2000 != 0 {
        Some("is setgid: the loader ignores the preload variable for it")
    } else {
        None
    }
}

#[cfg(target_os = "macos")]
fn file_flags(meta: &std::fs::Metadata) -> u32 {
    std::os::macos::fs::MetadataExt::st_flags(meta)
}

#[cfg(not(target_os = "macos"))]
fn file_flags(_meta: &std::fs::Metadata) -> u32 {
    0
}

/// Random access to a binary's bytes: a file on disk (only the headers and
/// the code signature are read, not a 100 MB runtime) or a slice in tests.
pub trait ReadAt {
    /// Total length in bytes.
    fn size(&self) -> u64;
    /// Exactly `len` bytes at `offset`, or `None` if that runs past the end.
    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        self.get(start..end).map(<[u8]>::to_vec)
    }
}

/// A file read on demand.
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> std::io::Result<FileSource> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        if offset.checked_add(len as u64)? > self.len {
            return None;
        }
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }
}

/// Fixed-width integer reads from a byte slice, `None` when out of bounds.
pub(crate) mod bytes {
    /// The `N` bytes at `at`: the one place bounds are checked.
    fn array_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
        b.get(at..at.checked_add(N)?)?.try_into().ok()
    }

    pub fn u16_at(b: &[u8], at: usize, le: bool) -> Option<u16> {
        let raw = array_at(b, at)?;
        Some(if le {
            u16::from_le_bytes(raw)
        } else {
            u16::from_be_bytes(raw)
        })
    }

    pub fn u32_at(b: &[u8], at: usize, le: bool) -> Option<u32> {
        let raw = array_at(b, at)?;
        Some(if le {
            u32::from_le_bytes(raw)
        } else {
            u32::from_be_bytes(raw)
        })
    }

    pub fn u64_at(b: &[u8], at: usize, le: bool) -> Option<u64> {
        let raw = array_at(b, at)?;
        Some(if le {
            u64::from_le_bytes(raw)
        } else {
            u64::from_be_bytes(raw)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_are_bounds_checked() {
        let data: &[u8] = &[1, 2, 3];
        assert_eq!(data.read_at(1, 2), Some(vec![2, 3]));
        assert_eq!(data.read_at(2, 2), None);
        assert_eq!(data.read_at(u64::MAX, 1), None);
        assert_eq!(bytes::u32_at(data, usize::MAX - 1, true), None);
    }

    #[test]
    fn setid_bits_are_refused() {
        assert!(setid_rule(0o104755).is_some());
        assert!(setid_rule(0o102755).is_some());
        assert!(setid_rule(0o100755).is_none());
    }
}
