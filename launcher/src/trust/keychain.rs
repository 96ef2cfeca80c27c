//! macOS's login keychain, which Safari, Chrome and most macOS clients
//! read. `security add-trusted-cert -r trustRoot -k login.keychain-db`
//! trusts the CA for this user without sudo, but macOS asks the person at
//! the screen to confirm: with nobody there it would wait, so it runs under
//! a time limit and, past it, agentfs prints the command to run by hand.
//! Not yet run on a Mac (see docs/macos.md).
#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use std::path::{Path, PathBuf};

use agentfs_tls::Ca;

use super::command::{run, shown, Ran, TOOL_TIMEOUT};
use super::{Op, Outcome, State};

const SECURITY: &str = "/usr/bin/security";
const PLACE: &str = "the login keychain";

/// The user's login keychain.
pub fn login_keychain(home: &Path) -> PathBuf {
    home.join("Library/Keychains/login.keychain-db")
}

/// The commands, as arguments to `security`.
pub fn add_args<'a>(keychain: &'a str, cert: &'a str) -> [&'a str; 6] {
    ["add-trusted-cert", "-r", "trustRoot", "-k", keychain, cert]
}

pub fn apply(op: Op, ca: &Ca, home: &Path) -> Outcome {
    let keychain = login_keychain(home);
    let keychain_arg = keychain.to_string_lossy().into_owned();
    let cert = ca.cert_path().to_string_lossy().into_owned();
    let trusted = run(
        SECURITY,
        &["verify-cert", "-L", "-p", "ssl", "-c", &cert],
        TOOL_TIMEOUT,
    )
    .ok();
    match op {
        Op::Check | Op::Trust if trusted => Outcome::new(PLACE, &keychain, State::Trusted),
        Op::Check => Outcome::new(PLACE, &keychain, State::Absent),
        Op::Trust => {
            eprintln!("agentfs: macOS asks you to confirm adding the CA to your login keychain");
            security(&add_args(&keychain_arg, &cert), &keychain, State::Added)
        }
        Op::Untrust => {
            let sha1 = ca.sha1();
            let untrusted = security(&["remove-trusted-cert", &cert], &keychain, State::Removed);
            if untrusted.state == State::Failed && trusted {
                return untrusted;
            }
            let deleted = security(
                &["delete-certificate", "-Z", &sha1, &keychain_arg],
                &keychain,
                State::Removed,
            );
            match (trusted, deleted.state) {
                (false, State::Failed) => Outcome::new(PLACE, &keychain, State::Absent),
                _ => deleted,
            }
        }
    }
}

fn security(args: &[&str], keychain: &Path, state: State) -> Outcome {
    let by_hand = shown("security", args);
    let failed = Outcome::new(PLACE, keychain, State::Failed).fix(by_hand);
    match run(SECURITY, args, TOOL_TIMEOUT) {
        Ran::Ok(_) => Outcome::new(PLACE, keychain, state),
        Ran::TimedOut => failed.detail(format!(
            "nobody confirmed macOS's dialog within {TOOL_TIMEOUT:?}"
        )),
        Ran::Missing => failed.detail("security is not installed"),
        Ran::Failed(said) => failed.detail(said),
    }
}
