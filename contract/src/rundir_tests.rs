//! The reader against real files, sockets and locks in a private temp dir.

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};

use super::*;
use crate::sidecar::tests::sample;

/// A private run directory in a temp dir.
fn run_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    layout::ensure_private_dir(&dir).unwrap();
    (tmp, dir)
}

/// What keeps an entry's files alive: its lock and its socket.
struct Owner {
    _lock: Option<OwnedFd>,
    _listener: Option<UnixListener>,
    _bound: Option<UnixDatagram>,
}

#[derive(Clone, Copy)]
enum Socket {
    Listening,
    /// A socket file nobody listens on.
    Dead,
}

fn entry(dir: &Path, app: &str, instance: &str, port: u16, held: bool, socket: Socket) -> Owner {
    let path = naming::socket_path(dir, app, instance, Some(port)).unwrap();
    let mut car = sample(path.clone());
    (car.app, car.instance, car.port) = (app.into(), instance.into(), port);
    car.write_atomic(&naming::sidecar_path(&path)).unwrap();
    let (listener, bound) = match socket {
        Socket::Listening => (Some(UnixListener::bind(&path).unwrap()), None),
        Socket::Dead => (None, Some(UnixDatagram::bind(&path).unwrap())),
    };
    let lock = liveness::try_acquire(&naming::lock_path(&path)).unwrap();
    Owner {
        _lock: held.then_some(lock).flatten(),
        _listener: listener,
        _bound: bound,
    }
}

fn states(scan: &Scan) -> Vec<(String, State)> {
    scan.entries
        .iter()
        .map(|e| (format!("{}/{}", e.sidecar.app, e.sidecar.instance), e.state))
        .collect()
}

#[test]
fn every_entry_gets_its_owners_state() {
    let (_tmp, dir) = run_dir();
    let _live = entry(&dir, "web", "a", 3000, true, Socket::Listening);
    let _stale = entry(&dir, "web", "b", 3000, false, Socket::Dead);
    let _closed = entry(&dir, "web", "c", 3000, true, Socket::Dead);
    let _bound = entry(&dir, "web", "d", 3000, true, Socket::Listening);
    // Lock free, socket accepting: a server that took its listener across exec.
    let _handed_over = entry(&dir, "web", "e", 3000, false, Socket::Listening);
    let d = naming::socket_path(&dir, "web", "d", Some(3000)).unwrap();
    let mut car = sidecar::read_file_checked(&naming::sidecar_path(&d)).unwrap();
    car.listening = false;
    car.write_atomic(&naming::sidecar_path(&d)).unwrap();
    let scan = scan(&dir).unwrap();
    assert_eq!(
        states(&scan),
        [
            ("web/a".into(), State::Live),
            ("web/b".into(), State::Stale),
            ("web/c".into(), State::Closed),
            ("web/d".into(), State::Bound),
            ("web/e".into(), State::Live),
        ]
    );
    assert_eq!(scan.live().count(), 2);
}

#[test]
fn lookups_go_by_sidecar_not_file_name() {
    let (_tmp, dir) = run_dir();
    let _a = entry(&dir, "web", "x", 3000, true, Socket::Listening);
    let _b = entry(&dir, "api", "x", 8080, true, Socket::Listening);
    let _c = entry(&dir, "api", "y", 8080, true, Socket::Listening);
    let scan = scan(&dir).unwrap();
    assert_eq!(scan.of_app("api").count(), 2);
    assert_eq!(scan.of_instance("api", "y").count(), 1);
    let in_x: Vec<_> = scan.in_scope("x", 8080).map(|e| &e.sidecar.app).collect();
    assert_eq!(in_x, ["api"]);
    assert_eq!(scan.in_scope("x", 3000).count(), 1);
    assert_eq!(scan.in_scope("y", 3000).count(), 0);
}

#[test]
fn hostile_files_are_rejected_with_their_reason_and_orphans_listed() {
    let (_tmp, dir) = run_dir();
    let _good = entry(&dir, "web", "a", 3000, true, Socket::Listening);
    fs::write(dir.join("garbage.json"), b"{nope").unwrap();
    fs::write(dir.join(".web_a.json.123.tmp"), b"{nope").unwrap();
    // A sidecar that claims another entry's socket.
    let good = naming::socket_path(&dir, "web", "a", Some(3000)).unwrap();
    sample(good.clone())
        .write_atomic(&dir.join("thief.json"))
        .unwrap();
    // A socket and lock with no sidecar.
    fs::write(dir.join("lost_x.lock"), b"").unwrap();
    let scan = scan(&dir).unwrap();
    assert_eq!(scan.entries.len(), 1);
    let mut kinds: Vec<_> = scan.rejected.iter().map(|r| r.reason.kind()).collect();
    kinds.sort();
    assert_eq!(kinds, ["not-its-own-socket", "unparseable"]);
    assert_eq!(scan.orphans, [dir.join("lost_x.sock")]);
}

#[test]
fn a_run_dir_loosened_after_start_is_refused_at_the_next_scan() {
    let (_tmp, dir) = run_dir();
    let _a = entry(&dir, "web", "a", 3000, false, Socket::Listening);
    let mut reader = Reader::new(dir.clone());
    assert_eq!(reader.scan().unwrap().entries.len(), 1);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(reader.scan(), Err(LayoutError::NotPrivate { .. })));
}

#[test]
fn unchanged_sidecars_are_not_parsed_again_and_changed_ones_are() {
    let (_tmp, dir) = run_dir();
    let _a = entry(&dir, "web", "a", 3000, true, Socket::Listening);
    let mut reader = Reader::new(dir.clone());
    let first = Arc::clone(&reader.scan().unwrap().entries[0].sidecar);
    let again = Arc::clone(&reader.scan().unwrap().entries[0].sidecar);
    assert!(Arc::ptr_eq(&first, &again));
    let socket = naming::socket_path(&dir, "web", "a", Some(3000)).unwrap();
    let mut car = (*first).clone();
    car.argv = vec!["changed".into()];
    car.write_atomic(&naming::sidecar_path(&socket)).unwrap();
    assert_eq!(reader.scan().unwrap().entries[0].sidecar.argv, ["changed"]);
}

#[test]
fn removal_takes_stale_and_closed_entries_and_leaves_live_ones() {
    let (_tmp, dir) = run_dir();
    let _live = entry(&dir, "web", "a", 3000, true, Socket::Listening);
    let _stale = entry(&dir, "web", "b", 3000, false, Socket::Dead);
    let _closed = entry(&dir, "web", "c", 3000, true, Socket::Dead);
    let _unlocked = entry(&dir, "web", "d", 3000, false, Socket::Listening);
    for e in &scan(&dir).unwrap().entries {
        let removed = remove(e).unwrap();
        assert_eq!(removed, e.state != State::Live, "{:?}", e.state);
    }
    let mut left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    // The closed entry's lock stays: its owner still holds it.
    assert_eq!(
        left,
        [
            "web_a_3000.json",
            "web_a_3000.lock",
            "web_a_3000.sock",
            "web_c_3000.lock",
            "web_d_3000.json",
            "web_d_3000.lock",
            "web_d_3000.sock",
        ]
    );
}
