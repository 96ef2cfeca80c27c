//! The system's store of roots on Linux, which OpenSSL, curl, Python and
//! most command-line clients read through the system's bundle. Changing it
//! needs root: as root agentfs runs the tools itself; otherwise only with
//! `--system`, through `sudo -n`, which fails instead of asking for a
//! password, and then agentfs prints the exact commands to run.
//!
//! Debian, Ubuntu (and Alpine): a `.crt` in `/usr/local/share/ca-certificates`,
//! then `update-ca-certificates`. Fedora, RHEL, Arch: an anchor in
//! `/etc/pki/ca-trust/source/anchors`, then `update-ca-trust extract`.

use std::path::{Path, PathBuf};

use agentfs_tls::{bundle, Ca};

use super::command::{run, shown, Ran, TOOL_TIMEOUT};
use super::{Op, Outcome, State};

/// How a distribution takes a root in.
#[derive(Debug, Clone)]
pub struct Store {
    /// Where the CA's file goes.
    pub dir: &'static str,
    /// The file's extension there.
    pub extension: &'static str,
    /// The command that rebuilds the bundle from that directory.
    pub refresh: &'static [&'static str],
}

const DEBIAN: Store = Store {
    dir: "/usr/local/share/ca-certificates",
    extension: "crt",
    refresh: &["update-ca-certificates"],
};

const FEDORA: Store = Store {
    dir: "/etc/pki/ca-trust/source/anchors",
    extension: "pem",
    refresh: &["update-ca-trust", "extract"],
};

/// This machine's way, by which tool it has.
pub fn store() -> Option<Store> {
    let has = |tool: &str| {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|dir| Path::new(dir).join(tool).is_file())
    };
    if has("update-ca-certificates") {
        Some(DEBIAN)
    } else if has("update-ca-trust") {
        Some(FEDORA)
    } else {
        None
    }
}

/// The file the CA is installed as: named by its short id, so two homes'
/// CAs never overwrite each other.
pub fn installed_path(store: &Store, ca: &Ca) -> PathBuf {
    let id = ca.name().rsplit(' ').next().unwrap_or("ca");
    Path::new(store.dir).join(format!("agentfs-{id}.{}", store.extension))
}

pub fn apply(op: Op, ca: &Ca) -> Outcome {
    let Some(store) = store() else {
        return Outcome::new("the system store", Path::new("/"), State::Failed).detail(
            "no update-ca-certificates or update-ca-trust here: add the CA to this \
             system's store by hand",
        );
    };
    let file = installed_path(&store, ca);
    let place = "the system store";
    let trusted = in_bundle(ca);
    match op {
        Op::Check if trusted => Outcome::new(place, &file, State::Trusted),
        Op::Check => Outcome::new(place, &file, State::Absent),
        Op::Trust if trusted && file.is_file() => Outcome::new(place, &file, State::Trusted),
        Op::Untrust if !file.exists() => Outcome::new(place, &file, State::Absent),
        Op::Trust => {
            let cert = ca.cert_path().to_string_lossy().into_owned();
            let install = [
                "install",
                "-m",
                "0644",
                cert.as_str(),
                &file.to_string_lossy(),
            ];
            as_root(place, &file, &[&install, store.refresh], State::Added)
        }
        Op::Untrust => {
            let remove = ["rm", "-f", &file.to_string_lossy()];
            as_root(place, &file, &[&remove, store.refresh], State::Removed)
        }
    }
}

/// Whether the system's bundle holds the CA.
fn in_bundle(ca: &Ca) -> bool {
    bundle::system_bundle().is_some_and(|path| bundle::holds(&path, ca))
}

/// Runs each command as root: itself when root, else through `sudo -n`.
fn as_root(place: &str, file: &Path, commands: &[&[&str]], state: State) -> Outcome {
    let root = agentfs_contract::layout::current_uid() == 0;
    let by_hand: Vec<String> = commands
        .iter()
        .map(|c| format!("sudo {}", shown(c[0], &c[1..])))
        .collect();
    let by_hand = by_hand.join(" && ");
    for command in commands {
        let ran = if root {
            run(command[0], &command[1..], TOOL_TIMEOUT)
        } else {
            let mut args = vec!["-n"];
            args.extend_from_slice(command);
            run("sudo", &args, TOOL_TIMEOUT)
        };
        let failed = Outcome::new(place, file, State::Failed).fix(by_hand.clone());
        match ran {
            Ran::Ok(_) => continue,
            Ran::Missing if !root => return failed.detail("sudo is not installed"),
            Ran::Missing => return failed.detail(format!("{} is not installed", command[0])),
            Ran::TimedOut => return failed.detail(format!("{} did not finish", command[0])),
            Ran::Failed(said) if !root && said.contains("password") => {
                return failed.detail("sudo needs a password, and agentfs never asks for one")
            }
            Ran::Failed(said) => return failed.detail(said),
        }
    }
    Outcome::new(place, file, state)
}
