//! `agentfs trust`, `trust --check` and `untrust` on a real NSS database
//! (certutil from libnss3-tools) under a temporary HOME: the round trip
//! adds exactly one certificate and takes exactly that one out again,
//! leaving another certificate in the same database alone.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::TestHome;

fn has_certutil() -> bool {
    Command::new("certutil").arg("-H").output().is_ok()
}

fn trust(home: &TestHome, user_home: &Path, args: &[&str]) -> Output {
    home.agentfs(args).env("HOME", user_home).output().unwrap()
}

/// The nicknames in an NSS database.
fn nicknames(db: &Path) -> Vec<String> {
    let out = Command::new("certutil")
        .arg("-d")
        .arg(format!("sql:{}", db.display()))
        .arg("-L")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(4)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim_end()
                .rsplit_once(char::is_whitespace)
                .map_or(l, |(name, _)| name)
                .trim()
                .to_owned()
        })
        .collect()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn trust_check_untrust_round_trip_on_an_nss_database() {
    if !has_certutil() {
        eprintln!("SKIPPED: certutil (libnss3-tools) is not installed");
        return;
    }
    let home = TestHome::new();
    let user = home.dir.join("user");
    std::fs::create_dir_all(&user).unwrap();

    let before = trust(&home, &user, &["trust", "--check", "--no-system"]);
    assert_eq!(before.status.code(), Some(1), "{}", text(&before));

    let added = trust(&home, &user, &["trust", "--no-system"]);
    assert_eq!(added.status.code(), Some(0), "{}", text(&added));
    assert!(
        text(&added).contains("added to the NSS database"),
        "{}",
        text(&added)
    );
    let db = user.join(".pki/nssdb");
    let names = nicknames(&db);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("agentfs local CA "), "{names:?}");

    // Someone else's certificate in the same database stays.
    let other = home.dir.join("other.pem");
    std::fs::write(&other, agentfs_tls_free_cert()).unwrap();
    let status = Command::new("certutil")
        .arg("-d")
        .arg(format!("sql:{}", db.display()))
        .args(["-A", "-t", "C,,", "-n", "someone else", "-i"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());

    let again = trust(&home, &user, &["trust", "--no-system"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("trusted in the NSS database"),
        "{}",
        text(&again)
    );
    let checked = trust(&home, &user, &["trust", "--check", "--no-system", "--json"]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    let json: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(json["data"]["places"][0]["state"], "trusted", "{json}");

    let removed = trust(&home, &user, &["untrust", "--no-system"]);
    assert_eq!(removed.status.code(), Some(0), "{}", text(&removed));
    assert!(
        text(&removed).contains("removed from the NSS database"),
        "{}",
        text(&removed)
    );
    assert_eq!(nicknames(&db), ["someone else"]);
    let after = trust(&home, &user, &["trust", "--check", "--no-system"]);
    assert_eq!(after.status.code(), Some(1), "{}", text(&after));
}

#[test]
fn a_firefox_profile_is_trusted_too() {
    if !has_certutil() {
        eprintln!("SKIPPED: certutil (libnss3-tools) is not installed");
        return;
    }
    let home = TestHome::new();
    let user = home.dir.join("user");
    let profile = user.join(".mozilla/firefox/abcd.default-release");
    std::fs::create_dir_all(&profile).unwrap();
    let created = Command::new("certutil")
        .arg("-d")
        .arg(format!("sql:{}", profile.display()))
        .args(["-N", "--empty-password"])
        .status()
        .unwrap();
    assert!(created.success());
    let added = trust(&home, &user, &["trust", "--no-system"]);
    assert_eq!(added.status.code(), Some(0), "{}", text(&added));
    assert!(
        text(&added).contains("the Firefox profile abcd.default-release"),
        "{}",
        text(&added)
    );
    assert_eq!(nicknames(&profile).len(), 1);
}

/// A self-signed certificate no agentfs made, from openssl.
fn agentfs_tls_free_cert() -> Vec<u8> {
    let dir = tempfile_dir();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=someone else", "-days", "1", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("cert.pem")).unwrap()
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("afs-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
