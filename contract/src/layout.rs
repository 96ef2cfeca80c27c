//! Where agentfs keeps its state, and the checks that keep it private.
//!
//! ```text
//! $AGENTFS_HOME/            (default ~/.agentfs)
//!   run/                    0700: {stem}.sock (0600), {stem}.json, {stem}.lock
//!   lib/                    the shim, written content-addressed on first use
//!   logs/                   0700: each instance's output, {app}_{instance}.log (0600)
//!   router.sock             the router's control socket (0600)
//!   router-clients.sock     the router's port for processes of instances (0600)
//!   ca/                     0700: the local CA, ca.pem and ca-key.pem (0600), bundle.pem
//!   router.lock, router.log
//! ```

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::env;

/// Why a directory cannot be used to hold agentfs state.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("neither AGENTFS_HOME nor HOME is set: set AGENTFS_HOME to a private directory")]
    NoHome,
    #[error("{0} is a symlink; agentfs refuses it so nobody can redirect your sockets: remove it")]
    Symlink(PathBuf),
    #[error("{0} exists but is not a directory")]
    NotADirectory(PathBuf),
    #[error(
        "{path} is owned by uid {owner}, not by you (uid {me}); agentfs refuses it: \
         point AGENTFS_HOME at a directory of your own"
    )]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "{path} is writable by group or others (mode {mode:03o}), so someone else may have \
         put files in it for agentfs to run; agentfs refuses it: remove it and let agentfs \
         create a private one, or `chmod 700 {path}` if nobody else could have written there"
    )]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error("{path} has mode {mode:o}; it must be private (0700)")]
    NotPrivate { path: PathBuf, mode: u32 },
    // The cause is part of the message and deliberately not a `source`:
    // a chain printer (anyhow's `{:#}`) would print it twice.
    #[error("could not create or inspect {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
}

/// `$AGENTFS_HOME`, else `$HOME/.agentfs`.
pub fn home_from_env() -> Result<PathBuf, LayoutError> {
    home_from(
        std::env::var_os(env::HOME).map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn home_from(agentfs_home: Option<PathBuf>, home: Option<PathBuf>) -> Result<PathBuf, LayoutError> {
    match (agentfs_home, home) {
        (Some(dir), _) if !dir.as_os_str().is_empty() => Ok(absolute(dir)),
        (_, Some(home)) if !home.as_os_str().is_empty() => Ok(absolute(home).join(".agentfs")),
        _ => Err(LayoutError::NoHome),
    }
}

fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(&path))
            .unwrap_or(path)
    }
}

/// The run directory under a home.
pub fn run_dir(home: &Path) -> PathBuf {
    home.join("run")
}

/// Where the launcher writes the shim library.
pub fn lib_dir(home: &Path) -> PathBuf {
    home.join("lib")
}

/// Where wrap keeps what each instance's app writes to stdout and stderr.
pub fn logs_dir(home: &Path) -> PathBuf {
    home.join("logs")
}

/// The router's control socket.
pub fn router_socket(home: &Path) -> PathBuf {
    home.join("router.sock")
}

/// Where the router serves processes of instances: what its TCP port
/// serves, to connections that first say which instance they belong to
/// (one line, `AGENTFS-INSTANCE <label>\n`), so `APP.localhost` from inside
/// instance X can reach X's own APP. Private (0600, in the private home):
/// only the user's own processes can claim an instance.
pub fn router_clients_socket(home: &Path) -> PathBuf {
    home.join("router-clients.sock")
}

/// Whether `path` is (the same file as) the router's control socket of
/// `home`: never a route, or the router's API would be served to anyone who
/// can reach the route's name.
pub fn is_router_socket(home: &Path, path: &Path) -> bool {
    let same = |a: &fs::Metadata, b: &fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
    match (fs::metadata(router_socket(home)), fs::metadata(path)) {
        (Ok(router), Ok(other)) => same(&router, &other),
        _ => path == router_socket(home),
    }
}

/// Where the local certificate authority lives (see the `agentfs-tls` crate).
pub fn ca_dir(home: &Path) -> PathBuf {
    home.join("ca")
}

/// The lock a running router holds.
pub fn router_lock(home: &Path) -> PathBuf {
    home.join("router.lock")
}

/// The log of a router started in the background.
pub fn router_log(home: &Path) -> PathBuf {
    home.join("router.log")
}

/// Creates `path` (and its parents) as private directories (0700) if missing,
/// then checks it with [`check_private_dir`]. A directory of ours that group
/// or others could only read is tightened; one they could write to is refused
/// ([`LayoutError::WritableByOthers`]), since tightening it would keep
/// whatever they put in it: the fix needs a person who knows who had access.
pub fn ensure_private_dir(path: &Path) -> Result<(), LayoutError> {
    let io_err = |source| LayoutError::Io {
        path: path.to_owned(),
        error: source,
    };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(io_err)?;
        }
        Err(e) => return Err(io_err(e)),
        Ok(meta) => {
            let ours_to_fix =
                meta.is_dir() && !meta.file_type().is_symlink() && meta.uid() == current_uid();
            let mode = meta.mode() & 0o777;
            if ours_to_fix && mode & 0o022 != 0 {
                return Err(LayoutError::WritableByOthers {
                    path: path.to_owned(),
                    mode,
                });
            }
            if ours_to_fix && mode & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_err)?;
            }
        }
    }
    check_private_dir(path)
}

/// Accepts `path` only if it is a real directory (not a symlink), owned by the
/// current user, with no group or other permissions.
pub fn check_private_dir(path: &Path) -> Result<(), LayoutError> {
    let meta = fs::symlink_metadata(path).map_err(|source| LayoutError::Io {
        path: path.to_owned(),
        error: source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(LayoutError::Symlink(path.to_owned()));
    }
    if !meta.is_dir() {
        return Err(LayoutError::NotADirectory(path.to_owned()));
    }
    let me = current_uid();
    if meta.uid() != me {
        return Err(LayoutError::ForeignOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(LayoutError::NotPrivate {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// The effective uid of this process.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_prefers_agentfs_home_then_home() {
        let explicit = home_from(Some("/x/y".into()), Some("/h".into())).unwrap();
        assert_eq!(explicit, PathBuf::from("/x/y"));
        assert_eq!(
            home_from(None, Some("/h".into())).unwrap(),
            PathBuf::from("/h/.agentfs")
        );
        assert_eq!(
            home_from(Some("".into()), Some("/h".into())).unwrap(),
            PathBuf::from("/h/.agentfs")
        );
        assert!(matches!(home_from(None, None), Err(LayoutError::NoHome)));
    }

    #[test]
    fn ensure_creates_private_and_tightens_loose_mode() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path().to_path_buf().join("run");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_dir_others_can_write_to_is_refused_not_tightened() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path().to_path_buf().join("home");
        fs::create_dir_all(&dir).unwrap();
        for mode in [0o777, 0o770, 0o702] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            let err = ensure_private_dir(&dir).unwrap_err();
            assert!(matches!(err, LayoutError::WritableByOthers { .. }), "{err}");
            let message = err.to_string();
            assert!(!message.contains('\n'), "one line: {message}");
            assert!(message.contains(&format!("chmod 700 {}", dir.display())));
            assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, mode);
        }
    }

    #[test]
    fn symlinked_run_dir_is_refused() {
        let base_tmp = tempfile::tempdir().unwrap();
        let base = base_tmp.path().to_path_buf();
        fs::create_dir_all(base.join("real")).unwrap();
        fs::set_permissions(base.join("real"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        assert!(matches!(
            ensure_private_dir(&base.join("link")),
            Err(LayoutError::Symlink(_))
        ));
    }

    #[test]
    fn a_file_is_not_a_run_dir() {
        let base_tmp = tempfile::tempdir().unwrap();
        let base = base_tmp.path().to_path_buf();
        fs::create_dir_all(&base).unwrap();
        fs::write(base.join("f"), b"x").unwrap();
        assert!(matches!(
            check_private_dir(&base.join("f")),
            Err(LayoutError::NotADirectory(_))
        ));
    }
}
