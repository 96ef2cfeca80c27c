//! The CA is constrained to `localhost` names: a leaf it signs for any other
//! name is refused by verifiers that honour X.509 name constraints (rustls'
//! webpki in process, OpenSSL's `openssl verify`), while `localhost` names
//! and the loopback addresses verify.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;

use agentfs_tls::leaf::{self, Subject};
use agentfs_tls::Ca;
use rcgen::KeyPair;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;

fn ca() -> (tempfile::TempDir, Ca) {
    let home = tempfile::tempdir().unwrap();
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let ca = Ca::open_or_create(home.path()).unwrap();
    (home, ca)
}

fn leaf_for(ca: &Ca, name: &str) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let subject = Subject::Name(name.into());
    let leaf = leaf::mint(ca, &subject, &key, time::OffsetDateTime::now_utc()).unwrap();
    leaf.chain[0].clone()
}

fn verify(ca: &Ca, leaf: &CertificateDer<'_>, name: &str) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    verifier
        .verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn webpki_accepts_localhost_names_and_refuses_others() {
    let (_home, ca) = ca();
    for name in ["web.localhost", "3000.blue.shop.localhost", "localhost"] {
        verify(&ca, &leaf_for(&ca, name), name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let err = verify(&ca, &leaf_for(&ca, "example.com"), "example.com").unwrap_err();
    assert!(format!("{err:?}").contains("NameConstraint"), "{err:?}");
}

#[test]
fn the_loopback_leaf_verifies_for_addresses() {
    let (_home, ca) = ca();
    let key = KeyPair::generate().unwrap();
    let leaf = leaf::mint(
        &ca,
        &Subject::Loopback,
        &key,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    for name in ["127.0.0.1", "::1", "localhost"] {
        verify(&ca, &leaf.chain[0], name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn openssl_refuses_a_leaf_outside_localhost() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: no openssl");
        return;
    }
    let (home, ca) = ca();
    let pem = |der: &CertificateDer<'_>| {
        let mut out = Command::new("openssl")
            .args(["x509", "-inform", "DER", "-outform", "PEM"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        out.stdin.take().unwrap().write_all(der).unwrap();
        String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
    };
    let check = |name: &str| {
        let file = home.path().join(format!("{name}.pem"));
        fs::write(&file, pem(&leaf_for(&ca, name))).unwrap();
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(ca.cert_path())
            .arg(&file)
            .output()
            .unwrap()
    };
    let good = check("web.localhost");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let bad = check("example.com");
    let said =
        String::from_utf8_lossy(&bad.stdout).to_string() + &String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{said}");
    assert!(said.contains("subtree"), "{said}");
}
