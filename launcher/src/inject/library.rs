//! The shim library carried inside the `agentfs` binary, written out
//! content-addressed under `$AGENTFS_HOME/lib/` on first use.
//!
//! Content addressing means two agentfs versions never overwrite each other's
//! shim under a running app, and a reinstall needs no cleanup.
//!
//! The library is preloaded into the user's apps, so an existing copy is
//! reused only when the whole chain (home, `lib`, `lib/<hash>`, the file) is
//! ours and closed to others (`library/trusted_dir.rs`): another user who planted an
//! identical copy and kept write access could swap it for their own later.

mod trusted_dir;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use agentfs_contract::{layout, naming};

use trusted_dir::TrustedDir;

/// The shim bytes embedded by build.rs, and the file name the platform expects.
#[derive(Debug)]
pub struct EmbeddedShim {
    pub bytes: &'static [u8],
    pub file_name: &'static str,
}

impl EmbeddedShim {
    /// Writes the shim under `home` unless an identical copy of ours is
    /// there, and returns its path. A `lib` or `lib/<hash>` directory that is
    /// not ours or is open to others is replaced; a home like that is refused.
    pub(crate) fn install(&self, home: &Path) -> Result<PathBuf> {
        if self.bytes.is_empty() {
            bail!(
                "this agentfs was built without its shim (a cross build): rebuild it on the target, \
                 or with AGENTFS_SHIM_PREBUILT=path/to/{}",
                self.file_name
            );
        }
        let hash = format!("{:016x}", naming::fnv1a64(self.bytes));
        // `lib` as the layout names it: opened as one step below the home.
        let lib = layout::lib_dir(home);
        let lib_name = lib.file_name().and_then(|n| n.to_str()).unwrap_or("lib");
        let dir = TrustedDir::home(home)?.subdir(lib_name)?.subdir(&hash)?;
        let path = dir.path.join(self.file_name);
        if !dir.holds(self.file_name, self.bytes) {
            dir.write(self.file_name, self.bytes)
                .with_context(|| format!("could not write the shim to {}", path.display()))?;
        }
        Ok(path)
    }
}

/// The preload variable with the shim first and the existing entries kept.
pub(crate) fn preload_value(shim: &Path, existing: Option<OsString>) -> OsString {
    let mut value = OsString::from(shim);
    if let Some(existing) = existing.filter(|e| !e.is_empty()) {
        let separator = if cfg!(target_os = "macos") { ":" } else { " " };
        let kept: Vec<_> = existing
            .to_string_lossy()
            .split([':', ' '])
            .filter(|entry| !entry.is_empty() && Path::new(entry) != shim)
            .map(str::to_owned)
            .collect();
        if !kept.is_empty() {
            value.push(separator);
            value.push(kept.join(separator));
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const SHIM: EmbeddedShim = EmbeddedShim {
        bytes: b"\x7fELF not really a library",
        file_name: "libagentfs_shim.so",
    };

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The identity of what is at `path` now.
    fn inode(path: &Path) -> (u64, u64) {
        let meta = fs::symlink_metadata(path).unwrap();
        (meta.dev(), meta.ino())
    }

    fn assert_fresh_and_ours(shim: &Path) {
        for path in [shim, shim.parent().unwrap()] {
            let meta = fs::symlink_metadata(path).unwrap();
            assert_eq!(meta.uid(), layout::current_uid(), "{}", path.display());
            assert_eq!(meta.mode() & 0o777, 0o700, "{}", path.display());
        }
        assert_eq!(fs::read(shim).unwrap(), SHIM.bytes);
    }

    #[test]
    fn an_installed_copy_of_ours_is_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        layout::ensure_private_dir(&home).unwrap();
        let shim = SHIM.install(&home).unwrap();
        assert_fresh_and_ours(&shim);
        let first = inode(&shim);
        assert_eq!(SHIM.install(&home).unwrap(), shim);
        assert_eq!(
            inode(&shim),
            first,
            "an identical copy of ours is not rewritten"
        );
    }

    /// Leaves a file beside the shim, as a stand-in for whatever else
    /// someone with write access could have put there.
    fn plant_beside(shim: &Path) -> PathBuf {
        let marker = shim.with_file_name("planted");
        fs::write(&marker, b"").unwrap();
        marker
    }

    #[test]
    fn a_copy_in_a_directory_others_can_write_to_is_not_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        layout::ensure_private_dir(&home).unwrap();
        let shim = SHIM.install(&home).unwrap();
        let dir = shim.parent().unwrap();
        let planted = plant_beside(&shim);
        set_mode(dir, 0o777);
        assert_eq!(SHIM.install(&home).unwrap(), shim);
        assert_fresh_and_ours(&shim);
        assert!(!planted.exists(), "lib/<hash> was made afresh");
        let lib = layout::lib_dir(&home);
        assert_eq!(
            fs::read_dir(&lib).unwrap().count(),
            1,
            "the old one is removed"
        );
        // The same for `lib` itself.
        let planted = plant_beside(&shim);
        set_mode(&lib, 0o775);
        SHIM.install(&home).unwrap();
        assert_fresh_and_ours(&shim);
        assert!(!planted.exists(), "lib was made afresh");
        assert_eq!(fs::metadata(&lib).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_loose_file_and_a_symlinked_directory_are_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        layout::ensure_private_dir(&home).unwrap();
        let shim = SHIM.install(&home).unwrap();
        set_mode(&shim, 0o666);
        SHIM.install(&home).unwrap();
        assert_fresh_and_ours(&shim);
        // lib/<hash> as a symlink to a directory holding an identical copy.
        let dir = shim.parent().unwrap();
        let elsewhere = home.join("elsewhere");
        fs::rename(dir, &elsewhere).unwrap();
        let planted = plant_beside(&elsewhere.join(SHIM.file_name));
        std::os::unix::fs::symlink(&elsewhere, dir).unwrap();
        SHIM.install(&home).unwrap();
        assert!(!fs::symlink_metadata(dir).unwrap().file_type().is_symlink());
        assert_fresh_and_ours(&shim);
        assert!(planted.exists(), "the symlink's target is left alone");
    }

    #[test]
    fn a_home_others_can_write_to_is_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        layout::ensure_private_dir(&home).unwrap();
        set_mode(&home, 0o777);
        let err = SHIM.install(&home).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("writable by group or others"), "{message}");
        assert!(message.contains(&format!("chmod 700 {}", home.display())));
        assert_eq!(fs::metadata(&home).unwrap().mode() & 0o777, 0o777);
        assert!(!layout::lib_dir(&home).exists());
    }

    #[test]
    fn preload_puts_the_shim_first_and_keeps_others_once() {
        let shim = Path::new("/h/lib/x/libagentfs_shim.so");
        assert_eq!(
            preload_value(shim, None),
            OsString::from("/h/lib/x/libagentfs_shim.so")
        );
        let sep = if cfg!(target_os = "macos") { ":" } else { " " };
        let existing = OsString::from("/usr/lib/libjemalloc.so:/h/lib/x/libagentfs_shim.so");
        assert_eq!(
            preload_value(shim, Some(existing)),
            OsString::from(format!(
                "/h/lib/x/libagentfs_shim.so{sep}/usr/lib/libjemalloc.so"
            ))
        );
    }
}
