//! The CA bundle wrapped processes are pointed at: the system's bundle with
//! the CA appended, in the CA directory.
//!
//! `SSL_CERT_FILE` (OpenSSL, so Python's `ssl`, curl, Ruby) and
//! `REQUESTS_CA_BUNDLE` *replace* the roots a client trusts, so the bundle
//! they name must hold the system's roots too, never the CA alone. It is
//! written again whenever what it should hold differs from what it holds
//! (the system's bundle was updated, or the CA was made again).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::ca::{write_atomically, Ca, CaError};

/// The bundle's file name in the CA directory.
pub const BUNDLE_FILE: &str = "bundle.pem";

/// Where systems keep their bundle of trusted roots, in the order looked at:
/// Debian and Ubuntu (and Arch, Gentoo), Fedora and RHEL, openSUSE, Alpine
/// and macOS.
pub const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's bundle, if this machine has one where systems keep it.
pub fn system_bundle() -> Option<PathBuf> {
    SYSTEM_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// Makes sure the bundle of `ca` holds `system` (the system's bundle) and
/// then the CA, writing it only when it does not; returns its path.
pub fn ensure(ca: &Ca, system: &Path) -> Result<PathBuf, CaError> {
    let path = ca.cert_path().with_file_name(BUNDLE_FILE);
    let system_pem = fs::read(system).map_err(|error| CaError::Io {
        path: system.to_owned(),
        error,
    })?;
    let wanted = contents(&system_pem, ca);
    match fs::read(&path) {
        Ok(held) if held == wanted => return Ok(path),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(CaError::Io { path, error }),
    }
    write_atomically(&path, &wanted, 0o644)?;
    Ok(path)
}

/// Whether the bundle at `path` holds the CA's certificate.
pub fn holds(path: &Path, ca: &Ca) -> bool {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let Ok(pem) = fs::read(path) else {
        return false;
    };
    CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .any(|der| der == *ca.cert_der())
}

fn contents(system: &[u8], ca: &Ca) -> Vec<u8> {
    let mut out = Vec::with_capacity(system.len() + ca.cert_pem().len() + 64);
    out.extend_from_slice(system);
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(format!("# {}\n", ca.name()).as_bytes());
    out.extend_from_slice(ca.cert_pem().as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_bundle_is_the_system_one_then_the_ca_and_follows_changes() {
        let home = tempfile::tempdir().unwrap();
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let ca = Ca::open_or_create(home.path()).unwrap();
        let system = home.path().join("system.pem");
        fs::write(&system, "# first-system-bundle\n").unwrap();
        let path = ensure(&ca, &system).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# first-system-bundle\n"), "{text}");
        assert!(text.ends_with(ca.cert_pem()), "{text}");
        let written = fs::metadata(&path).unwrap().modified().unwrap();
        ensure(&ca, &system).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), written);
        fs::write(&system, "# second-system-bundle").unwrap();
        ensure(&ca, &system).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# second-system-bundle\n#") && !text.contains("first"),
            "{text}"
        );
    }
}
