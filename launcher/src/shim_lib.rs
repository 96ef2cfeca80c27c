//! The shim library carried inside the `agentfs` binary, written out
//! content-addressed under `$AGENTFS_HOME/lib/` on first use.
//!
//! Content addressing means two agentfs versions never overwrite each other's
//! shim under a running app, and a reinstall needs no cleanup.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use agentfs_contract::{layout, naming};

/// The shim bytes embedded by build.rs, and the file name the platform expects.
#[derive(Debug)]
pub struct EmbeddedShim {
    pub bytes: &'static [u8],
    pub file_name: &'static str,
}

impl EmbeddedShim {
    /// Writes the shim under `home` unless an identical copy is there, and
    /// returns its path.
    pub(crate) fn install(&self, home: &Path) -> Result<PathBuf> {
        if self.bytes.is_empty() {
            bail!(
                "this agentfs was built without its shim (a cross build): rebuild it on the target, \
                 or with AGENTFS_SHIM_PREBUILT=path/to/{}",
                self.file_name
            );
        }
        let dir = layout::lib_dir(home).join(format!("{:016x}", naming::fnv1a64(self.bytes)));
        let path = dir.join(self.file_name);
        if fs::read(&path).is_ok_and(|existing| existing == self.bytes) {
            return Ok(path);
        }
        layout::ensure_private_dir(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        let tmp = dir.join(format!(".{}.{}.tmp", self.file_name, std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o700)
                .open(&tmp)?;
            file.write_all(self.bytes)?;
            file.set_permissions(fs::Permissions::from_mode(0o700))?;
            fs::rename(&tmp, &path)
        };
        write().with_context(|| format!("could not write the shim to {}", path.display()))?;
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
