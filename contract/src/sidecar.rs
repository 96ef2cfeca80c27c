//! The sidecar: a JSON file beside each socket saying whose socket it is.
//!
//! Written atomically (temporary dotfile, then rename) when the socket is
//! bound, with `listening: false`, and again with `listening: true` by the
//! first process that listens on it, which need not be the one that bound it
//! (servers hand bound sockets to workers they spawn): so what the app asked
//! for travels with the socket. Readers route only sidecars that say
//! `listening`. The rename is also the discovery signal: every file watcher
//! backend reports it, while macOS FSEvents reports nothing when a socket
//! file is created.
//!
//! Readers treat the run directory as hostile: [`read_checked`] refuses
//! symlinks, oversized or foreign files, unknown versions, and sockets that
//! are not sockets in the run directory.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::layout::current_uid;

/// The schema version this code writes and reads.
pub const VERSION: u32 = 1;

/// Sidecars larger than this are refused unread.
pub const MAX_BYTES: u64 = 64 * 1024;

/// The longest `not_routed` kept (in bytes); a longer one is cut.
pub const MAX_NOT_ROUTED: usize = 200;

/// The fields every sidecar carries, by their JSON names (as README
/// documents them); a bridge's or a manual route's sidecar adds `target`,
/// and one that is not routed may say why in `not_routed`.
pub const FIELDS: [&str; 14] = [
    "version",
    "kind",
    "app",
    "instance",
    "pid",
    "socket",
    "address",
    "port",
    "primary",
    "listening",
    "hostname",
    "argv",
    "cwd",
    "started_at",
];

/// Who made the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The shim converted the app's own TCP listener.
    Shim,
    /// `agentfs bridge` forwards the socket to the app's TCP port.
    Bridge,
    /// `agentfs route` named a socket nobody in agentfs made.
    Manual,
    /// wrap's forwarder in a private network namespace: the socket leads to
    /// a TCP port the app listens on inside that namespace (Linux).
    Netns,
}

/// Sidecar schema, version 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    pub version: u32,
    pub kind: Kind,
    pub app: String,
    pub instance: String,
    /// The process that made the socket (for a bridge, the bridge itself).
    pub pid: u32,
    /// Absolute path of the socket.
    pub socket: PathBuf,
    /// The address the app asked to listen on, e.g. `0.0.0.0` or `::1`.
    pub address: String,
    /// The port the app asked for (a fake one when it asked for 0).
    pub port: u16,
    /// Whether this is the instance's first listener, `{app}_{instance}.sock`.
    pub primary: bool,
    /// Whether the socket listens yet: `false` from bind until the first
    /// `listen` in any process. Absent (an older writer, which wrote
    /// sidecars only once the socket listened) means `true`.
    #[serde(default = "listening_by_default")]
    pub listening: bool,
    /// `{instance}.{app}.localhost`
    pub hostname: String,
    pub argv: Vec<String>,
    pub cwd: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// For a bridge: the TCP address it forwards to; for a namespace's
    /// forwarder, the address it reaches inside the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why this entry is not routed, in a short sentence (such as a bridged
    /// app's port that another process shares): an entry that says so is
    /// never routed, and the router's 404 for its name shows it. Read as
    /// one line of at most [`MAX_NOT_ROUTED`] bytes; an empty one counts as
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_routed: Option<String>,
}

fn listening_by_default() -> bool {
    true
}

/// Why a sidecar was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("is a symlink")]
    Symlink,
    #[error("is not a regular file")]
    NotAFile,
    #[error("is {0} bytes, over the {MAX_BYTES}-byte limit")]
    TooLarge(u64),
    #[error("belongs to uid {0}, not to us")]
    ForeignOwner(u32),
    #[error("is not valid JSON for a sidecar: {0}")]
    Unparseable(String),
    #[error("has unknown version {0}")]
    UnknownVersion(serde_json::Value),
    #[error("names socket {0}, which is outside the run directory")]
    SocketOutsideRunDir(PathBuf),
    #[error("names {0}, which is not a socket")]
    NotASocket(PathBuf),
    #[error("names socket {0}, which belongs to another user")]
    ForeignSocket(PathBuf),
    #[error("names socket {0}, which is not the socket beside it")]
    NotItsOwnSocket(PathBuf),
    #[error("has a lock file that belongs to uid {0}, not to us")]
    ForeignLock(u32),
    #[error("names the router's own control socket {0}")]
    RouterSocket(PathBuf),
    #[error("has an app or instance that is not a DNS label")]
    BadName,
    #[error("could not be read: {0}")]
    Io(#[from] io::Error),
}

impl Rejected {
    /// The reason without its details (sizes, parse positions): what stays
    /// the same while a bad file keeps changing, so it is reported once.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejected::Symlink => "symlink",
            Rejected::NotAFile => "not-a-file",
            Rejected::TooLarge(_) => "too-large",
            Rejected::ForeignOwner(_) => "foreign-owner",
            Rejected::Unparseable(_) => "unparseable",
            Rejected::UnknownVersion(_) => "unknown-version",
            Rejected::SocketOutsideRunDir(_) => "socket-outside",
            Rejected::NotASocket(_) => "not-a-socket",
            Rejected::ForeignSocket(_) => "foreign-socket",
            Rejected::NotItsOwnSocket(_) => "not-its-own-socket",
            Rejected::ForeignLock(_) => "foreign-lock",
            Rejected::RouterSocket(_) => "router-socket",
            Rejected::BadName => "bad-name",
            Rejected::Io(_) => "io",
        }
    }
}

/// The current time as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Sidecar {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a sidecar always serialises")
    }

    /// Parses a sidecar, checking the version before the rest of the schema
    /// so a future version is reported as such rather than as garbage.
    pub fn parse(bytes: &[u8]) -> Result<Sidecar, Rejected> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Rejected::Unparseable(e.to_string()))?;
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            Some(v) => return Err(Rejected::UnknownVersion(v.clone())),
            None => return Err(Rejected::Unparseable("no version field".into())),
        }
        let mut sidecar: Sidecar =
            serde_json::from_value(value).map_err(|e| Rejected::Unparseable(e.to_string()))?;
        if !crate::naming::is_label(&sidecar.app) || !crate::naming::is_label(&sidecar.instance) {
            return Err(Rejected::BadName);
        }
        sidecar.not_routed = sidecar.not_routed.as_deref().and_then(one_short_line);
        Ok(sidecar)
    }

    /// Writes the sidecar to `path` atomically, mode 0600.
    pub fn write_atomic(&self, path: &Path) -> io::Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// `text` as one line (control characters become spaces) of at most
/// [`MAX_NOT_ROUTED`] bytes, cut at a character and marked `…` when it was
/// longer; `None` when nothing is left.
fn one_short_line(text: &str) -> Option<String> {
    let line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.is_empty() {
        return None;
    }
    if line.len() <= MAX_NOT_ROUTED {
        return Some(line);
    }
    let mut end = MAX_NOT_ROUTED - '…'.len_utf8();
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}…", &line[..end]))
}

/// Writes `bytes` to a temporary dotfile beside `path`, then renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{}.{}.{nanos}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a sidecar from the run directory as a hostile file, and checks the
/// socket it names with [`check_placement`] and [`check_socket`].
pub fn read_checked(path: &Path, run_dir: &Path) -> Result<Sidecar, Rejected> {
    let sidecar = read_file_checked(path)?;
    check_placement(&sidecar, path, run_dir)?;
    check_socket(&sidecar.socket)?;
    Ok(sidecar)
}

/// Whether the socket a sidecar (read from `path`) names is where it must
/// be: a shim's or a bridge's is the socket beside the sidecar itself, in
/// `run_dir`; only a [`Kind::Manual`] route (`agentfs route`) may name a
/// socket elsewhere, and then only by an absolute path without `..`.
pub fn check_placement(sidecar: &Sidecar, path: &Path, run_dir: &Path) -> Result<(), Rejected> {
    let socket = &sidecar.socket;
    let has_parent_dir = socket
        .components()
        .any(|c| c == std::path::Component::ParentDir);
    let placed = match sidecar.kind {
        Kind::Manual => socket.is_absolute(),
        Kind::Shim | Kind::Bridge | Kind::Netns => socket.parent() == Some(run_dir),
    };
    if !placed || has_parent_dir {
        return Err(Rejected::SocketOutsideRunDir(socket.clone()));
    }
    if sidecar.kind != Kind::Manual && crate::naming::sidecar_path(socket) != path {
        return Err(Rejected::NotItsOwnSocket(socket.clone()));
    }
    let home = run_dir.parent().unwrap_or(run_dir);
    if crate::layout::is_router_socket(home, socket) {
        return Err(Rejected::RouterSocket(socket.clone()));
    }
    Ok(())
}

/// Whether `socket` is a socket (not a symlink) that belongs to us.
pub fn check_socket(socket: &Path) -> Result<(), Rejected> {
    let meta = fs::symlink_metadata(socket).map_err(|_| Rejected::NotASocket(socket.to_owned()))?;
    if !meta.file_type().is_socket() {
        return Err(Rejected::NotASocket(socket.to_owned()));
    }
    if meta.uid() != current_uid() {
        return Err(Rejected::ForeignSocket(socket.to_owned()));
    }
    Ok(())
}

/// Reads and parses a sidecar file without trusting it: no symlinks, no
/// foreign owner, at most [`MAX_BYTES`] read even if it grows meanwhile.
pub fn read_file_checked(path: &Path) -> Result<Sidecar, Rejected> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Err(Rejected::Symlink);
    }
    if !meta.is_file() {
        return Err(Rejected::NotAFile);
    }
    if meta.uid() != current_uid() {
        return Err(Rejected::ForeignOwner(meta.uid()));
    }
    if meta.len() > MAX_BYTES {
        return Err(Rejected::TooLarge(meta.len()));
    }
    // O_NOFOLLOW closes the gap between the check above and the open;
    // O_NONBLOCK keeps a FIFO swapped in meanwhile from blocking us.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(Rejected::NotAFile);
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(Rejected::TooLarge(bytes.len() as u64));
    }
    Sidecar::parse(&bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(socket: PathBuf) -> Sidecar {
        Sidecar {
            version: VERSION,
            kind: Kind::Shim,
            app: "web".into(),
            instance: "a1".into(),
            pid: 42,
            socket,
            address: "0.0.0.0".into(),
            port: 3000,
            primary: true,
            listening: true,
            hostname: "a1.web.localhost".into(),
            argv: vec!["node".into(), "server.js".into()],
            cwd: "/src/web".into(),
            started_at: now_rfc3339(),
            target: None,
            not_routed: None,
        }
    }

    #[test]
    fn round_trips_and_names_fields_as_documented() {
        let car = sample("/r/web_a1.sock".into());
        let json = car.to_json();
        for field in FIELDS {
            assert!(
                json.contains(&format!("\"{field}\"")),
                "{field} missing from {json}"
            );
        }
        assert!(json.contains("\"shim\""));
        assert!(!json.contains("target"));
        assert_eq!(Sidecar::parse(json.as_bytes()).unwrap(), car);
    }

    #[test]
    fn not_routed_is_optional_and_read_as_one_short_line() {
        let mut car = sample("/r/web_a1.sock".into());
        assert!(!car.to_json().contains("not_routed"));
        car.not_routed = Some("port 20090 is shared with another process".into());
        let json = car.to_json();
        assert!(json.contains("\"not_routed\""), "{json}");
        assert_eq!(Sidecar::parse(json.as_bytes()).unwrap(), car);

        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["not_routed"] = format!("a\nb\u{1b}[31m{}", "é".repeat(300)).into();
        let read = Sidecar::parse(value.to_string().as_bytes()).unwrap();
        let why = read.not_routed.unwrap();
        assert!(why.len() <= MAX_NOT_ROUTED, "{}", why.len());
        assert!(why.starts_with("a b [31mé") && why.ends_with('…'), "{why}");
        value["not_routed"] = " \n ".into();
        let read = Sidecar::parse(value.to_string().as_bytes()).unwrap();
        assert_eq!(read.not_routed, None);
    }

    #[test]
    fn a_namespace_lane_sidecar_says_netns_and_lives_beside_its_socket() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path();
        let sock_path = dir.join("web_a1.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        let mut car = sample(sock_path.clone());
        car.kind = Kind::Netns;
        assert!(car.to_json().contains("\"kind\": \"netns\""));
        car.write_atomic(&dir.join("web_a1.json")).unwrap();
        assert_eq!(read_checked(&dir.join("web_a1.json"), dir).unwrap(), car);
        car.socket = "/elsewhere/web_a1.sock".into();
        car.write_atomic(&dir.join("web_a1.json")).unwrap();
        assert!(matches!(
            read_checked(&dir.join("web_a1.json"), dir),
            Err(Rejected::SocketOutsideRunDir(_))
        ));
    }

    #[test]
    fn a_sidecar_without_the_listening_field_counts_as_listening() {
        let mut value: serde_json::Value =
            serde_json::from_str(&sample("/r/web_a1.sock".into()).to_json()).unwrap();
        value.as_object_mut().unwrap().remove("listening");
        assert!(
            Sidecar::parse(value.to_string().as_bytes())
                .unwrap()
                .listening
        );
        value["listening"] = false.into();
        assert!(
            !Sidecar::parse(value.to_string().as_bytes())
                .unwrap()
                .listening
        );
    }

    #[test]
    fn unknown_version_and_garbage_are_rejected() {
        let mut value: serde_json::Value =
            serde_json::from_str(&sample("/r/x.sock".into()).to_json()).unwrap();
        value["version"] = 2.into();
        assert!(matches!(
            Sidecar::parse(value.to_string().as_bytes()),
            Err(Rejected::UnknownVersion(_))
        ));
        assert!(matches!(
            Sidecar::parse(b"{nope"),
            Err(Rejected::Unparseable(_))
        ));
        assert!(matches!(
            Sidecar::parse(b"{\"version\":1}"),
            Err(Rejected::Unparseable(_))
        ));
        value["version"] = 1.into();
        value["app"] = "../etc".into();
        assert!(matches!(
            Sidecar::parse(value.to_string().as_bytes()),
            Err(Rejected::BadName)
        ));
    }

    #[test]
    fn read_checked_wants_a_real_socket_in_the_run_dir() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path();
        let sock_path = dir.join("web_a1.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        let car_path = dir.join("web_a1.json");
        sample(sock_path.clone()).write_atomic(&car_path).unwrap();
        assert_eq!(read_checked(&car_path, dir).unwrap().socket, sock_path);

        sample("/etc/passwd".into())
            .write_atomic(&car_path)
            .unwrap();
        assert!(matches!(
            read_checked(&car_path, dir),
            Err(Rejected::SocketOutsideRunDir(_))
        ));

        fs::write(dir.join("plain.sock"), b"").unwrap();
        sample(dir.join("plain.sock"))
            .write_atomic(&dir.join("plain.json"))
            .unwrap();
        assert!(matches!(
            read_checked(&dir.join("plain.json"), dir),
            Err(Rejected::NotASocket(_))
        ));
        // A sidecar naming another entry's socket.
        sample(dir.join("plain.sock"))
            .write_atomic(&car_path)
            .unwrap();
        assert!(matches!(
            read_checked(&car_path, dir),
            Err(Rejected::NotItsOwnSocket(_))
        ));

        let link = dir.join("link.json");
        std::os::unix::fs::symlink(&car_path, &link).unwrap();
        assert!(matches!(read_checked(&link, dir), Err(Rejected::Symlink)));

        let big = dir.join("big.json");
        fs::write(&big, vec![b' '; MAX_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            read_checked(&big, dir),
            Err(Rejected::TooLarge(_))
        ));
    }

    #[test]
    fn only_manual_routes_may_name_an_outside_socket() {
        let run_tmp = tempfile::tempdir().unwrap();
        let run = run_tmp.path();
        let outside_tmp = tempfile::tempdir().unwrap();
        let outside = outside_tmp.path();
        let sock_path = outside.join("app.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        let car_path = run.join("web-a1.json");
        let mut car = sample(sock_path.clone());
        car.kind = Kind::Manual;
        car.write_atomic(&car_path).unwrap();
        assert_eq!(read_checked(&car_path, run).unwrap().socket, sock_path);

        car.kind = Kind::Bridge;
        car.write_atomic(&car_path).unwrap();
        assert!(matches!(
            read_checked(&car_path, run),
            Err(Rejected::SocketOutsideRunDir(_))
        ));

        car.kind = Kind::Manual;
        for bad in ["relative.sock", "/tmp/../etc/x.sock"] {
            car.socket = bad.into();
            car.write_atomic(&car_path).unwrap();
            assert!(matches!(
                read_checked(&car_path, run),
                Err(Rejected::SocketOutsideRunDir(_))
            ));
        }
        let link = outside.join("link.sock");
        std::os::unix::fs::symlink(&sock_path, &link).unwrap();
        car.socket = link;
        car.write_atomic(&car_path).unwrap();
        assert!(matches!(
            read_checked(&car_path, run),
            Err(Rejected::NotASocket(_))
        ));
    }

    #[test]
    fn atomic_write_leaves_no_temporary_files() {
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir = dir_tmp.path();
        write_atomic(&dir.join("a.json"), b"{}").unwrap();
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
        assert_eq!(
            fs::metadata(dir.join("a.json")).unwrap().mode() & 0o777,
            0o600
        );
    }
}
