//! Names: DNS labels for apps and instances, the socket file names built from
//! them, and the host names they make.
//!
//! A socket is `{app}_{instance}.sock` (an instance's first listener) or
//! `{app}_{instance}_{port}.sock`; its sidecar and lock share the stem. `_`
//! never occurs in a DNS label, so no two (app, instance, port) give one name.
//! When the path would not fit in `sun_path`, the stem is shortened and a hash
//! of the full stem appended, so two long names never collide and nothing is
//! cut silently. Readers must take app and instance from the sidecar, never
//! from the file name.
//!
//! Host names: `APP.localhost` (shared by the app's instances),
//! `INSTANCE.APP.localhost` (one instance) and `PORT.INSTANCE.APP.localhost`
//! (one listener); [`crate::urls`] picks them for a sidecar.

use std::path::{Path, PathBuf};

/// Longest socket path the platform's `sun_path` (and Rust's std) accepts.
pub const MAX_SOCKET_PATH: usize = if cfg!(target_os = "macos") { 103 } else { 107 };

/// Longest DNS label.
pub const MAX_LABEL: usize = 63;

/// The top-level domain every route lives under.
pub const DOMAIN: &str = "localhost";

/// Socket, sidecar and lock file extensions.
pub const SOCKET_EXT: &str = "sock";
pub const SIDECAR_EXT: &str = "json";
pub const LOCK_EXT: &str = "lock";

/// Turns any string into a DNS label: lowercase `[a-z0-9-]`, runs of other
/// characters become one `-`, no leading or trailing `-`, at most 63 bytes.
/// Returns `None` when nothing usable is left.
pub fn sanitize_label(raw: &str) -> Option<String> {
    let mut label = String::with_capacity(raw.len().min(MAX_LABEL));
    for ch in raw.chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            label.push(ch);
        } else if !label.is_empty() && !label.ends_with('-') {
            label.push('-');
        }
        if label.len() >= MAX_LABEL {
            break;
        }
    }
    let label = label.trim_end_matches('-');
    (!label.is_empty()).then(|| label.to_owned())
}

/// Whether `s` is already a label [`sanitize_label`] would leave unchanged.
pub fn is_label(s: &str) -> bool {
    sanitize_label(s).as_deref() == Some(s)
}

/// `{instance}.{app}.localhost`
pub fn instance_hostname(app: &str, instance: &str) -> String {
    format!("{instance}.{app}.{DOMAIN}")
}

/// `{app}.localhost`
pub fn app_hostname(app: &str) -> String {
    format!("{app}.{DOMAIN}")
}

/// `{port}.{instance}.{app}.localhost`
pub fn port_hostname(app: &str, instance: &str, port: u16) -> String {
    format!("{port}.{instance}.{app}.{DOMAIN}")
}

/// Separates app, instance and port in file names; never part of a label.
const STEM_SEPARATOR: char = '_';

/// The file stem of a socket: `{app}_{instance}` or `{app}_{instance}_{port}`.
pub fn socket_stem(app: &str, instance: &str, port: Option<u16>) -> String {
    let sep = STEM_SEPARATOR;
    match port {
        None => format!("{app}{sep}{instance}"),
        Some(port) => format!("{app}{sep}{instance}{sep}{port}"),
    }
}

/// The run directory is too long for any socket path to fit.
#[derive(Debug, thiserror::Error)]
#[error(
    "the run directory {run_dir} is too long for a Unix socket path ({max} bytes at most): \
     set AGENTFS_HOME to a shorter directory"
)]
pub struct PathTooLong {
    pub run_dir: PathBuf,
    pub max: usize,
}

/// Hash appended to shortened stems: 12 hex digits of FNV-1a 64.
const HASH_LEN: usize = 12;

/// The socket path for a stem, shortened with a hash when it would not fit.
pub fn socket_path(
    run_dir: &Path,
    app: &str,
    instance: &str,
    port: Option<u16>,
) -> Result<PathBuf, PathTooLong> {
    let stem = socket_stem(app, instance, port);
    let dir_len = run_dir.as_os_str().len() + 1;
    let suffix_len = 1 + SOCKET_EXT.len();
    if dir_len + stem.len() + suffix_len <= MAX_SOCKET_PATH {
        return Ok(run_dir.join(format!("{stem}.{SOCKET_EXT}")));
    }
    let hash = format!("{:016x}", fnv1a64(stem.as_bytes()));
    let hash = &hash[..HASH_LEN];
    // Keep as much of the readable stem as fits, then `-{hash}`.
    let room = MAX_SOCKET_PATH
        .checked_sub(dir_len + suffix_len + 1 + HASH_LEN)
        .ok_or_else(|| PathTooLong {
            run_dir: run_dir.to_owned(),
            max: MAX_SOCKET_PATH,
        })?;
    let prefix = stem[..room.min(stem.len())].trim_end_matches(['-', STEM_SEPARATOR]);
    let short = if prefix.is_empty() {
        hash.to_owned()
    } else {
        format!("{prefix}-{hash}")
    };
    Ok(run_dir.join(format!("{short}.{SOCKET_EXT}")))
}

/// The sidecar beside a socket: same stem, `.json`.
pub fn sidecar_path(socket: &Path) -> PathBuf {
    socket.with_extension(SIDECAR_EXT)
}

/// The lock beside a socket: same stem, `.lock`.
pub fn lock_path(socket: &Path) -> PathBuf {
    socket.with_extension(LOCK_EXT)
}

/// FNV-1a, 64 bit: stable across platforms and versions, which a std hasher is not.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sanitised() {
        assert_eq!(sanitize_label("My App").as_deref(), Some("my-app"));
        assert_eq!(
            sanitize_label("@scope/pkg_name").as_deref(),
            Some("scope-pkg-name")
        );
        assert_eq!(sanitize_label("--a..b--").as_deref(), Some("a-b"));
        assert_eq!(sanitize_label("Ünïcode").as_deref(), Some("n-code"));
        assert_eq!(sanitize_label("!!!"), None);
        assert_eq!(sanitize_label(&"x".repeat(100)).unwrap().len(), MAX_LABEL);
        assert!(is_label("web-1"));
        assert!(!is_label("Web"));
    }

    #[test]
    fn short_paths_keep_the_plain_stem() {
        let dir = Path::new("/home/u/.agentfs/run");
        assert_eq!(
            socket_path(dir, "web", "a1", None).unwrap(),
            dir.join("web_a1.sock")
        );
        assert_eq!(
            socket_path(dir, "web", "a1", Some(5173)).unwrap(),
            dir.join("web_a1_5173.sock")
        );
        assert_eq!(
            sidecar_path(&dir.join("web_a1.sock")),
            dir.join("web_a1.json")
        );
        assert_eq!(lock_path(&dir.join("web_a1.sock")), dir.join("web_a1.lock"));
    }

    #[test]
    fn no_two_listeners_share_a_file_name() {
        // Instance `a-3000`'s first listener and instance `a`'s port 3000.
        let dir = Path::new("/r");
        assert_ne!(
            socket_path(dir, "web", "a-3000", None).unwrap(),
            socket_path(dir, "web", "a", Some(3000)).unwrap()
        );
        assert_ne!(
            socket_path(dir, "web-a", "b", None).unwrap(),
            socket_path(dir, "web", "a-b", None).unwrap()
        );
    }

    #[test]
    fn long_paths_are_hashed_to_fit_and_stay_distinct() {
        let dir = PathBuf::from(format!("/home/{}/.agentfs/run", "u".repeat(40)));
        let app = "a-very-long-application-name-from-package-json";
        let one = socket_path(&dir, app, "instance-one", None).unwrap();
        let two = socket_path(&dir, app, "instance-two", None).unwrap();
        for path in [&one, &two] {
            assert!(path.as_os_str().len() <= MAX_SOCKET_PATH, "{path:?}");
            assert_eq!(path.parent().unwrap(), dir);
            assert!(path.to_str().unwrap().ends_with(".sock"));
        }
        assert_ne!(one, two);
        assert!(one
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("a-very-long"));
    }

    #[test]
    fn hopeless_run_dir_is_an_actionable_error() {
        let dir = PathBuf::from(format!("/{}", "d".repeat(120)));
        let err = socket_path(&dir, "web", "a1", None).unwrap_err();
        assert!(err.to_string().contains("AGENTFS_HOME"));
    }

    #[test]
    fn hostnames() {
        assert_eq!(instance_hostname("web", "a1"), "a1.web.localhost");
        assert_eq!(app_hostname("web"), "web.localhost");
        assert_eq!(port_hostname("web", "a1", 5173), "5173.a1.web.localhost");
    }
}
