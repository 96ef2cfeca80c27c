//! The local certificate authority of one agentfs home: made on first use,
//! read back on every later one.
//!
//! ```text
//! $AGENTFS_HOME/ca/      0700, refused when not private
//!   ca.pem               the CA's certificate (what `agentfs trust` installs)
//!   ca-key.pem           its key, 0600, refused when group or others may read it
//!   ca.lock              held while the CA is made, so two processes make one
//! ```
//!
//! The CA is ECDSA P-256 and constrained to `localhost` names (X.509 name
//! constraints, critical): a verifier that honours them refuses whatever
//! else its key signs, so a leaked key mints nothing for other domains
//! (docs/design.md says which clients honour them).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use agentfs_contract::layout::{self, LayoutError};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, GeneralSubtree, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, NameConstraints, PublicKeyData, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

/// The CA's certificate, in the CA directory.
pub const CERT_FILE: &str = "ca.pem";
/// The CA's key, in the CA directory.
pub const KEY_FILE: &str = "ca-key.pem";
const LOCK_FILE: &str = "ca.lock";

/// How long the CA is valid. Leaves are short-lived; the CA is what a
/// person installs by hand once, so it lasts.
const CA_VALIDITY: Duration = Duration::days(3650);

/// What every CA's common name starts with; a short id of its key follows.
pub const NAME_PREFIX: &str = "agentfs local CA";

/// Why the CA cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("could not read or write {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error(
        "{path} may be read by group or others, or is not your own file (mode {mode:03o}): \
         agentfs refuses a CA key others may have seen. If nobody else could have read \
         it, `chmod 600 {path}`; otherwise run `agentfs untrust`, remove {dir} and let \
         agentfs make a new CA"
    )]
    KeyNotPrivate {
        path: PathBuf,
        dir: PathBuf,
        mode: u32,
    },
    #[error("{path} is not a certificate and key agentfs can use ({why}): remove {dir} and let agentfs make a new CA")]
    Unusable {
        path: PathBuf,
        dir: PathBuf,
        why: String,
    },
    #[error("could not make a certificate: {0}")]
    Mint(#[from] rcgen::Error),
    #[error("could not use the certificates' key: {0}")]
    Key(String),
}

/// The CA, read or made.
pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    name: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where the CA's certificate of `home` is (made or not).
pub fn cert_path(home: &Path) -> PathBuf {
    layout::ca_dir(home).join(CERT_FILE)
}

impl Ca {
    /// The CA of `home`, made now if it does not exist yet.
    pub fn open_or_create(home: &Path) -> Result<Ca, CaError> {
        let dir = layout::ca_dir(home);
        layout::ensure_private_dir(home)?;
        layout::ensure_private_dir(&dir)?;
        let _lock = lock(&dir)?;
        if let Some(ca) = Ca::read(&dir)? {
            return Ok(ca);
        }
        Ca::create(&dir)
    }

    /// The CA of `home` if it was made; `None` when it was not.
    pub fn open(home: &Path) -> Result<Option<Ca>, CaError> {
        let dir = layout::ca_dir(home);
        if !dir.exists() {
            return Ok(None);
        }
        layout::check_private_dir(&dir)?;
        Ca::read(&dir)
    }

    /// The certificate's path.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Its common name, `agentfs local CA` and a short id of its key: the
    /// name it is installed under (an NSS nickname), one per home.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the certificate, upper-case hex, as `certutil` and
    /// `openssl x509 -fingerprint -sha256` print it (without colons).
    pub fn fingerprint(&self) -> String {
        hex(ring::digest::digest(&ring::digest::SHA256, &self.cert_der).as_ref())
    }

    /// SHA-1 of the certificate, upper-case hex: how macOS's `security` names one.
    pub fn sha1(&self) -> String {
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.cert_der);
        hex(sha1.as_ref())
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    fn read(dir: &Path) -> Result<Option<Ca>, CaError> {
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        let key_pem = match read_private(&key_path, dir)? {
            Some(pem) => pem,
            None => return Ok(None),
        };
        let cert_pem = match fs::read_to_string(&cert_path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(CaError::Io {
                    path: cert_path,
                    error,
                })
            }
        };
        let unusable = |path: &Path, why: String| CaError::Unusable {
            path: path.to_owned(),
            dir: dir.to_owned(),
            why,
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| unusable(&key_path, e.to_string()))?;
        let cert_der =
            pem_body(&cert_pem).ok_or_else(|| unusable(&cert_path, "no PEM certificate".into()))?;
        if !contains(&cert_der, &key.subject_public_key_info()) {
            return Err(unusable(
                &cert_path,
                format!("it is not the certificate of {KEY_FILE}"),
            ));
        }
        let name = name_for(&key);
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| unusable(&cert_path, e.to_string()))?;
        Ok(Some(Ca {
            dir: dir.to_owned(),
            cert_pem,
            cert_der: CertificateDer::from(cert_der),
            issuer,
            name,
        }))
    }

    fn create(dir: &Path) -> Result<Ca, CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let name = name_for(&key);
        let params = ca_params(&name, OffsetDateTime::now_utc());
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        write_atomically(&dir.join(KEY_FILE), key.serialize_pem().as_bytes(), 0o600)?;
        write_atomically(&dir.join(CERT_FILE), cert_pem.as_bytes(), 0o644)?;
        Ok(Ca {
            dir: dir.to_owned(),
            cert_pem,
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            name,
        })
    }
}

/// What the CA certificate says: a CA for `localhost` names and loopback
/// addresses only, able to sign certificates and nothing else.
fn ca_params(name: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "agentfs");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + CA_VALIDITY;
    params.serial_number = Some(random_serial());
    params.name_constraints = Some(NameConstraints {
        // A dNSName subtree `localhost` permits `localhost` and every name
        // below it (RFC 5280 §4.2.1.10). The IP subtrees keep the address
        // certificate (a client that connects to 127.0.0.1 by address) and
        // forbid every other address.
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 0], 8)),
            GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                128,
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    params
}

/// `agentfs local CA` and the first 4 bytes of its key's SHA-256: the same
/// whenever the key is read again.
fn name_for(key: &KeyPair) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.der_bytes());
    format!(
        "{NAME_PREFIX} {}",
        hex(&digest.as_ref()[..4]).to_lowercase()
    )
}

/// The key file's text, if it exists; refused unless it is this user's
/// regular file with no group or other permissions.
fn read_private(path: &Path, dir: &Path) -> Result<Option<String>, CaError> {
    let io_err = |error| CaError::Io {
        path: path.to_owned(),
        error,
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let mode = meta.mode() & 0o777;
    if !meta.file_type().is_file() || meta.uid() != layout::current_uid() || mode & 0o077 != 0 {
        return Err(CaError::KeyNotPrivate {
            path: path.to_owned(),
            dir: dir.to_owned(),
            mode,
        });
    }
    fs::read_to_string(path).map(Some).map_err(io_err)
}

/// Holds `ca.lock` in `dir` until dropped.
fn lock(dir: &Path) -> Result<fs::File, CaError> {
    let path = dir.join(LOCK_FILE);
    let io_err = |error| CaError::Io {
        path: path.clone(),
        error,
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err(e.into()))?;
    Ok(file)
}

/// Writes `bytes` to `path` through a temporary file renamed into place,
/// so a reader sees the old file or the whole new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let io_err = |error| CaError::Io {
        path: path.to_owned(),
        error,
    };
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(e)
        })
}

/// The DER of the first certificate in `pem`.
pub fn pem_body(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// 16 random bytes, positive as a DER integer.
pub(crate) fn random_serial() -> SerialNumber {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn home() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn made_once_then_read_back() {
        let home = home();
        assert!(Ca::open(home.path()).unwrap().is_none());
        let made = Ca::open_or_create(home.path()).unwrap();
        let read = Ca::open_or_create(home.path()).unwrap();
        assert_eq!(made.cert_der(), read.cert_der());
        assert_eq!(made.name(), read.name());
        assert!(made.name().starts_with(NAME_PREFIX));
        let dir = layout::ca_dir(home.path());
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(pem_body(made.cert_pem()).unwrap(), made.cert_der().to_vec());
    }

    #[test]
    fn a_key_others_may_read_is_refused() {
        let home = home();
        Ca::open_or_create(home.path()).unwrap();
        let key = layout::ca_dir(home.path()).join(KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
        let err = Ca::open_or_create(home.path()).unwrap_err();
        assert!(matches!(err, CaError::KeyNotPrivate { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_ca_dir_others_may_write_is_refused() {
        let home = home();
        let dir = layout::ca_dir(home.path());
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = Ca::open_or_create(home.path()).unwrap_err();
        assert!(
            matches!(err, CaError::Layout(LayoutError::WritableByOthers { .. })),
            "{err}"
        );
    }

    #[test]
    fn a_certificate_of_another_key_is_refused() {
        let home = home();
        Ca::open_or_create(home.path()).unwrap();
        let other = tempfile::tempdir().unwrap();
        fs::set_permissions(other.path(), fs::Permissions::from_mode(0o700)).unwrap();
        Ca::open_or_create(other.path()).unwrap();
        fs::copy(cert_path(other.path()), cert_path(home.path())).unwrap();
        let err = Ca::open_or_create(home.path()).unwrap_err();
        assert!(matches!(err, CaError::Unusable { .. }), "{err}");
    }
}
