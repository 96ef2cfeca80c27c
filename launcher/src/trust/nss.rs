//! NSS databases: where Chromium, Chrome and Firefox on Linux (and Firefox
//! on macOS) look for roots, not the system's bundle. `~/.pki/nssdb` is
//! Chromium's and Chrome's (created when missing, with no password, as
//! Chromium itself would); each Firefox profile has its own.
//!
//! `certutil -d sql:DIR -A -t C,, -n NAME -i ca.pem` adds the CA as trusted
//! for TLS servers; `-D -n NAME` removes it; `-L -n NAME -a` reads it back,
//! which tells ours (same certificate) from anything else by that name.

use std::path::{Path, PathBuf};

use agentfs_tls::Ca;

use super::command::{run, shown, Ran, TOOL_TIMEOUT};
use super::{Op, Outcome, State};

const CERTUTIL: &str = "certutil";

/// What to run when certutil is missing.
pub const INSTALL_CERTUTIL: &str = if cfg!(target_os = "macos") {
    "brew install nss"
} else {
    "sudo apt-get install libnss3-tools (Debian, Ubuntu); sudo dnf install nss-tools (Fedora); \
     sudo pacman -S nss (Arch)"
};

/// One NSS database.
#[derive(Clone, Debug)]
pub struct Database {
    pub dir: PathBuf,
    /// Who reads it, as a person would say.
    pub label: String,
    /// Whether `trust` creates it when it does not exist.
    pub create: bool,
}

/// The databases of `home`: Chromium's `~/.pki/nssdb` (Linux), then every
/// Firefox profile that has a `cert9.db`.
pub fn databases(home: &Path) -> Vec<Database> {
    let mut found = Vec::new();
    if !cfg!(target_os = "macos") {
        found.push(Database {
            dir: home.join(".pki/nssdb"),
            label: "the NSS database of Chromium and Chrome".into(),
            create: true,
        });
        let snap = home.join("snap/chromium/current/.pki/nssdb");
        if snap.join("cert9.db").is_file() {
            found.push(Database {
                dir: snap,
                label: "the NSS database of Chromium (snap)".into(),
                create: false,
            });
        }
    }
    for profiles in [
        ".mozilla/firefox",
        "snap/firefox/common/.mozilla/firefox",
        ".var/app/org.mozilla.firefox/.mozilla/firefox",
        "Library/Application Support/Firefox/Profiles",
    ] {
        let Ok(entries) = std::fs::read_dir(home.join(profiles)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|dir| dir.join("cert9.db").is_file())
            .collect();
        dirs.sort();
        found.extend(dirs.into_iter().map(|dir| Database {
            label: format!(
                "the Firefox profile {}",
                dir.file_name().unwrap_or_default().to_string_lossy()
            ),
            dir,
            create: false,
        }));
    }
    found
}

/// Does `op` in every database of `home`.
pub fn apply(op: Op, ca: &Ca, home: &Path) -> Vec<Outcome> {
    databases(home)
        .iter()
        .map(|db| apply_one(op, ca, db))
        .collect()
}

fn apply_one(op: Op, ca: &Ca, db: &Database) -> Outcome {
    let outcome = |state| Outcome::new(db.label.clone(), &db.dir, state);
    let exists = db.dir.join("cert9.db").is_file();
    if !exists {
        return match op {
            Op::Trust if db.create => create_then_add(ca, db),
            _ => outcome(State::Absent).detail("the database does not exist"),
        };
    }
    let held = match holds(ca, db) {
        Ok(held) => held,
        Err(failed) => return failed,
    };
    match (op, held) {
        (Op::Check, Some(true)) | (Op::Trust, Some(true)) => outcome(State::Trusted),
        (Op::Check, _) | (Op::Untrust, None) => outcome(State::Absent),
        (Op::Untrust, Some(false)) => outcome(State::Absent).detail(format!(
            "a different certificate is named {:?} there: left alone",
            ca.name()
        )),
        (Op::Untrust, Some(true)) => certutil(db, &["-D", "-n", ca.name()], State::Removed),
        (Op::Trust, Some(false)) => {
            // The same name with another certificate: a CA this home made
            // before with the same key id, replaced.
            let removed = certutil(db, &["-D", "-n", ca.name()], State::Removed);
            if removed.state == State::Failed {
                return removed;
            }
            add(ca, db)
        }
        (Op::Trust, None) => add(ca, db),
    }
}

/// Whether the database has a certificate by the CA's name: `Some(true)`
/// when it is this CA, `Some(false)` when it is another.
fn holds(ca: &Ca, db: &Database) -> Result<Option<bool>, Outcome> {
    let args = ["-L", "-n", ca.name(), "-a"];
    match certutil_run(db, &args) {
        (Ran::Ok(pem), _) => Ok(Some(
            agentfs_tls::ca::pem_body(&pem).as_deref() == Some(&ca.cert_der()[..]),
        )),
        (Ran::Failed(_), _) => Ok(None),
        (ran, shown) => Err(failure(db, ran, &shown)),
    }
}

fn create_then_add(ca: &Ca, db: &Database) -> Outcome {
    if let Err(err) = std::fs::create_dir_all(&db.dir) {
        return Outcome::new(db.label.clone(), &db.dir, State::Failed)
            .detail(format!("could not create it: {err}"));
    }
    let created = certutil(db, &["-N", "--empty-password"], State::Added);
    if created.state == State::Failed {
        return created;
    }
    let added = add(ca, db);
    match added.state {
        State::Added => added.detail("created the database, with no password"),
        _ => added,
    }
}

fn add(ca: &Ca, db: &Database) -> Outcome {
    let path = ca.cert_path();
    let path = path.to_string_lossy();
    certutil(
        db,
        &["-A", "-t", "C,,", "-n", ca.name(), "-i", &path],
        State::Added,
    )
}

/// Runs certutil on the database; `state` when it succeeds.
fn certutil(db: &Database, args: &[&str], state: State) -> Outcome {
    match certutil_run(db, args) {
        (Ran::Ok(_), _) => Outcome::new(db.label.clone(), &db.dir, state),
        (ran, shown) => failure(db, ran, &shown),
    }
}

fn certutil_run(db: &Database, args: &[&str]) -> (Ran, String) {
    let target = format!("sql:{}", db.dir.display());
    let mut all = vec!["-d", target.as_str()];
    all.extend_from_slice(args);
    (run(CERTUTIL, &all, TOOL_TIMEOUT), shown(CERTUTIL, &all))
}

fn failure(db: &Database, ran: Ran, shown: &str) -> Outcome {
    let outcome = Outcome::new(db.label.clone(), &db.dir, State::Failed);
    match ran {
        Ran::Missing => outcome
            .detail("certutil is not installed")
            .fix(INSTALL_CERTUTIL),
        Ran::TimedOut => outcome
            .detail(format!("certutil did not finish within {TOOL_TIMEOUT:?}"))
            .fix(shown.to_owned()),
        Ran::Failed(said) => outcome
            .detail(format!("certutil: {said}"))
            .fix(shown.to_owned()),
        Ran::Ok(_) => outcome,
    }
}
