//! The router's TLS configuration: a certificate for whichever `localhost`
//! name the client asks for, minted on first use and kept in memory.
//!
//! Every leaf is signed for one key made when the router starts (signing a
//! leaf costs far less than making a key), with a random serial. The cache
//! is bounded ([`MAX_LEAVES`]): names are chosen by clients.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use rcgen::KeyPair;
use rustls::crypto::ring as provider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::ServerConfig;
use time::OffsetDateTime;

use crate::ca::{Ca, CaError};
use crate::leaf::{self, Subject, RENEW_BEFORE};

/// The most leaves kept; past it the oldest half is dropped (and minted
/// again if asked for).
pub const MAX_LEAVES: usize = 4096;

/// ALPN protocols the router offers, preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Leaves by subject, minted on demand.
pub struct Leaves {
    ca: Ca,
    key: KeyPair,
    signing: Arc<dyn SigningKey>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    by_subject: HashMap<Subject, Cached>,
    minted: u64,
}

struct Cached {
    certified: Arc<CertifiedKey>,
    not_after: OffsetDateTime,
    minted: u64,
}

impl fmt::Debug for Leaves {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaves")
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

impl Leaves {
    /// Leaves signed by `ca`, for a key made now.
    pub fn new(ca: Ca) -> Result<Leaves, CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing =
            provider::sign::any_ecdsa_type(&der).map_err(|e| CaError::Key(e.to_string()))?;
        Ok(Leaves {
            ca,
            key,
            signing,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The certificate for `subject`: cached while it has more than
    /// [`RENEW_BEFORE`] left, else minted now.
    pub fn get(&self, subject: &Subject) -> Result<Arc<CertifiedKey>, CaError> {
        self.get_at(subject, OffsetDateTime::now_utc())
    }

    /// [`Leaves::get`] as of `now`.
    fn get_at(&self, subject: &Subject, now: OffsetDateTime) -> Result<Arc<CertifiedKey>, CaError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cached) = cache.by_subject.get(subject) {
            if cached.not_after - now > RENEW_BEFORE {
                return Ok(Arc::clone(&cached.certified));
            }
        }
        let leaf = leaf::mint(&self.ca, subject, &self.key, now)?;
        let certified = Arc::new(CertifiedKey::new(leaf.chain, Arc::clone(&self.signing)));
        cache.minted += 1;
        let minted = cache.minted;
        if cache.by_subject.len() >= MAX_LEAVES {
            cache.drop_oldest_half();
        }
        cache.by_subject.insert(
            subject.clone(),
            Cached {
                certified: Arc::clone(&certified),
                not_after: leaf.not_after,
                minted,
            },
        );
        Ok(certified)
    }

    /// How many leaves are cached.
    pub fn cached(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_subject
            .len()
    }
}

impl Cache {
    fn drop_oldest_half(&mut self) {
        let mut ages: Vec<u64> = self.by_subject.values().map(|c| c.minted).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        self.by_subject.retain(|_, c| c.minted >= cut);
    }
}

impl ResolvesServerCert for Leaves {
    /// A `localhost` name gets its leaf; no name (a client that connected
    /// by address) gets the loopback leaf; any other name gets nothing, and
    /// the handshake fails.
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let subject = match hello.server_name() {
            Some(name) => Subject::for_sni(name)?,
            None => Subject::Loopback,
        };
        self.get(&subject).ok()
    }
}

/// The server configuration of the router's TLS side: certificates from
/// `leaves`, ALPN `h2` then `http/1.1`, TLS 1.2 and 1.3 with ring's
/// defaults, session resumption by tickets.
pub fn server_config(leaves: Arc<Leaves>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(leaves);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.ticketer = provider::Ticketer::new()?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use time::Duration;

    fn leaves() -> (tempfile::TempDir, Leaves) {
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let ca = Ca::open_or_create(home.path()).unwrap();
        (home, Leaves::new(ca).unwrap())
    }

    #[test]
    fn a_leaf_is_kept_then_renewed_before_it_expires() {
        let (_home, leaves) = leaves();
        let web = Subject::for_sni("web.localhost").unwrap();
        let t0 = OffsetDateTime::now_utc();
        let first = leaves.get_at(&web, t0).unwrap();
        let later = leaves.get_at(&web, t0 + Duration::days(4)).unwrap();
        assert!(
            Arc::ptr_eq(&first, &later),
            "cached while more than 2 days are left"
        );
        let renewed = leaves
            .get_at(&web, t0 + Duration::hours(5 * 24 + 12))
            .unwrap();
        assert!(
            !Arc::ptr_eq(&first, &renewed),
            "renewed with less than 2 days left"
        );
        assert_ne!(first.cert[0], renewed.cert[0]);
        assert_eq!(leaves.cached(), 1);
    }

    #[test]
    fn each_name_gets_its_own_leaf() {
        let (_home, leaves) = leaves();
        let a = leaves
            .get(&Subject::for_sni("blue.shop.localhost").unwrap())
            .unwrap();
        let b = leaves
            .get(&Subject::for_sni("3000.blue.shop.localhost").unwrap())
            .unwrap();
        assert_ne!(a.cert[0], b.cert[0]);
        assert_eq!(leaves.cached(), 2);
    }
}
