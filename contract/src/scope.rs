//! An instance's listeners by port, cached for the shim's `connect` hook.
//!
//! A connect to `localhost:P` from inside instance I asks which listeners
//! instance I has on port P, of any app. Reading the run directory for each
//! connect would cost a directory read and a parse per sidecar; instead the
//! answer is kept with the directory's stamp (inode, size, modification and
//! change times), and a connect checks only the stamp, one `stat`, before
//! looking up in memory without allocating. Every change of entries (a
//! sidecar renamed into place, a file removed) changes the directory's
//! times. A stamp younger than [`RACY`] is not trusted, because a second
//! change within the same clock tick would leave it as it was: until the
//! directory has been quiet that long, each lookup reads it again.
//!
//! Only sidecars that say `listening` are kept, and owners are not judged:
//! the connect that follows is the liveness check (a socket whose owner is
//! gone refuses it, and the shim then lets the kernel try TCP).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::rundir::{FileId, Reader};
use crate::sidecar::Sidecar;

/// How long a directory must have been unchanged before its stamp is trusted.
/// Far above any file system's timestamp granularity (a kernel tick on
/// Linux), far below the time between two instances starting.
pub const RACY: Duration = Duration::from_millis(100);

/// The cached listeners of a run directory.
#[derive(Debug)]
pub struct ScopeCache {
    reader: Reader,
    /// The directory's identity the listeners were read under, when it
    /// could be trusted.
    stamp: Option<FileId>,
    /// Listening sidecars, sorted by instance, port, then app.
    listeners: Vec<Arc<Sidecar>>,
}

/// The directory's identity now.
fn stamp(dir: &std::path::Path) -> Option<FileId> {
    std::fs::symlink_metadata(dir)
        .ok()
        .map(|meta| FileId::of(&meta))
}

/// Whether the directory last changed at least [`RACY`] ago.
fn settled(stamp: &FileId) -> bool {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|now| now.checked_sub(stamp.changed()))
        .is_some_and(|age| age >= RACY)
}

impl ScopeCache {
    pub fn new(run_dir: PathBuf) -> ScopeCache {
        ScopeCache {
            reader: Reader::new(run_dir),
            stamp: None,
            listeners: Vec::new(),
        }
    }

    /// The listening sidecars instance `instance` has on `port`, of any app.
    pub fn listeners(&mut self, instance: &str, port: u16) -> &[Arc<Sidecar>] {
        self.refresh();
        let start = self
            .listeners
            .partition_point(|c| (c.instance.as_str(), c.port) < (instance, port));
        let end = self
            .listeners
            .partition_point(|c| (c.instance.as_str(), c.port) <= (instance, port));
        &self.listeners[start..end]
    }

    /// Reads the directory again unless its trusted stamp is unchanged.
    fn refresh(&mut self) {
        let stamp = stamp(self.reader.dir());
        if stamp.is_some() && stamp == self.stamp {
            return;
        }
        self.listeners = match self.reader.sidecars() {
            Ok(found) => found
                .sidecars
                .into_iter()
                .filter_map(|(_, outcome)| outcome.ok())
                .filter(|car| car.listening)
                .collect(),
            Err(_) => Vec::new(),
        };
        self.listeners
            .sort_by(|a, b| (&a.instance, a.port, &a.app).cmp(&(&b.instance, b.port, &b.app)));
        self.stamp = stamp.filter(settled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::tests::sample;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &std::path::Path, app: &str, instance: &str, port: u16, listening: bool) {
        let socket = crate::naming::socket_path(dir, app, instance, Some(port)).unwrap();
        let mut car = sample(socket.clone());
        (car.app, car.instance, car.port, car.listening) =
            (app.into(), instance.into(), port, listening);
        car.write_atomic(&crate::naming::sidecar_path(&socket))
            .unwrap();
    }

    #[test]
    fn finds_an_instances_listeners_by_port_across_apps_and_sees_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        write(&dir, "web", "x", 3000, true);
        write(&dir, "api", "x", 8080, true);
        write(&dir, "api", "y", 8080, true);
        write(&dir, "db", "x", 5432, false);
        let mut cache = ScopeCache::new(dir.clone());
        let apps = |cache: &mut ScopeCache, i: &str, p: u16| -> Vec<String> {
            cache
                .listeners(i, p)
                .iter()
                .map(|c| c.app.clone())
                .collect()
        };
        assert_eq!(apps(&mut cache, "x", 8080), ["api"]);
        assert_eq!(apps(&mut cache, "x", 3000), ["web"]);
        assert!(apps(&mut cache, "x", 5432).is_empty(), "not listening yet");
        assert!(apps(&mut cache, "z", 8080).is_empty());
        // A change right after a lookup is seen by the next one, however
        // soon: the stamp of a directory that just changed is not trusted.
        write(&dir, "web2", "x", 8080, true);
        assert_eq!(apps(&mut cache, "x", 8080), ["api", "web2"]);
        std::fs::remove_file(dir.join("api_x_8080.json")).unwrap();
        assert_eq!(apps(&mut cache, "x", 8080), ["web2"]);
    }

    #[test]
    fn a_directory_that_is_not_private_has_no_listeners() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        write(&dir, "web", "x", 3000, true);
        assert!(ScopeCache::new(dir).listeners("x", 3000).is_empty());
    }
}
