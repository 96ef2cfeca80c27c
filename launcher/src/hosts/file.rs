//! Writing a hosts file: the new text in a temporary file beside it, with
//! the old file's mode and owner, renamed over it, so a reader sees the
//! old file or the new one and never half of one. A file that cannot be
//! replaced by rename (a bind mount, as containers' `/etc/hosts` is) is
//! rewritten in place.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// How the file was written.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Replaced,
    /// Rewritten in place: rename over it was refused (a mount point).
    InPlace,
}

/// Writes `text` to `path` atomically, keeping its mode and owner.
pub fn write(path: &Path, text: &str) -> io::Result<Written> {
    let meta = fs::metadata(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.agentfs-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            if file.metadata()?.uid() != meta.uid() || file.metadata()?.gid() != meta.gid() {
                std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
            }
            file.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    match written {
        Ok(()) => Ok(Written::Replaced),
        Err(err) => {
            let _ = fs::remove_file(&tmp);
            // EBUSY: the file is a mount point. EACCES/EPERM on the
            // directory while the file itself is writable: the same.
            let busy = err.raw_os_error() == Some(libc_ebusy());
            if busy || (err.kind() == io::ErrorKind::PermissionDenied && writable(path)) {
                fs::write(path, text)?;
                return Ok(Written::InPlace);
            }
            Err(err)
        }
    }
}

fn writable(path: &Path) -> bool {
    fs::OpenOptions::new().append(true).open(path).is_ok()
}

/// EBUSY, without a libc dependency here.
fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_is_kept_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        fs::write(&path, "old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(write(&path, "new\n").unwrap(), Written::Replaced);
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
