//! Leaf certificates: one per name, signed by the CA, short-lived.
//!
//! A wildcard covers one label only (`*.shop.localhost` does not cover
//! `3000.blue.shop.localhost`), so every name a client asks for (its TLS
//! SNI) gets a certificate of its own, minted when first asked for. Names
//! outside `localhost` get none.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::ca::{random_serial, Ca, CaError};

/// How long a leaf is valid. Short, so nothing depends on one for long;
/// see [`RENEW_BEFORE`].
pub const LEAF_VALIDITY: Duration = Duration::days(7);

/// A cached leaf is replaced when it has less than this left: a running
/// router renews its certificates without a restart.
pub const RENEW_BEFORE: Duration = Duration::days(2);

/// How far back a leaf's validity starts, for clocks a little behind.
const BACKDATE: Duration = Duration::hours(1);

/// The longest DNS name (RFC 1035), without a trailing dot.
const MAX_NAME: usize = 253;

/// What a leaf is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A `localhost` name a client sent as SNI.
    Name(String),
    /// A client that sent no name (it connected to 127.0.0.1 or ::1 by
    /// address): `localhost` and the loopback addresses.
    Loopback,
}

impl Subject {
    /// The subject for an SNI name, if it is a `localhost` name.
    pub fn for_sni(name: &str) -> Option<Subject> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        is_local_name(&name).then_some(Subject::Name(name))
    }
}

/// Whether `name` is `localhost` or a name under it, made of valid DNS
/// labels: the only names the router serves and the CA may certify.
pub fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    if name.len() > MAX_NAME {
        return false;
    }
    let mut labels = name.rsplit('.');
    if !labels
        .next()
        .is_some_and(|tld| tld.eq_ignore_ascii_case("localhost"))
    {
        return false;
    }
    labels.all(is_label)
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A minted leaf: the chain to present and when it stops being valid.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The leaf, then the CA (clients that trust the CA need only the leaf,
    /// but one that shows the chain shows where it ends).
    pub chain: Vec<CertificateDer<'static>>,
    pub not_after: OffsetDateTime,
}

/// Signs a leaf for `subject` with the CA, for the public key of `key`.
pub fn mint(
    ca: &Ca,
    subject: &Subject,
    key: &KeyPair,
    now: OffsetDateTime,
) -> Result<Leaf, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let sans = match subject {
        Subject::Name(name) => {
            params
                .distinguished_name
                .push(DnType::CommonName, name.as_str());
            vec![SanType::DnsName(name.as_str().try_into()?)]
        }
        Subject::Loopback => {
            params
                .distinguished_name
                .push(DnType::CommonName, "localhost");
            vec![
                SanType::DnsName("localhost".try_into()?),
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ]
        }
    };
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    // Random, never derived from the key: every leaf shares the router's one
    // key, and NSS refuses two certificates with one issuer and serial.
    params.serial_number = Some(random_serial());
    let cert = params.signed_by(key, ca.issuer())?;
    Ok(Leaf {
        chain: vec![cert.der().clone(), ca.cert_der().clone()],
        not_after: params.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_localhost_names_are_local() {
        for name in [
            "localhost",
            "web.localhost",
            "Blue.Shop.LOCALHOST",
            "3000.blue.shop.localhost",
            "web.localhost.",
            "agentfs.localhost",
        ] {
            assert!(is_local_name(name), "{name}");
        }
        for name in [
            "example.com",
            "localhost.example.com",
            "evil-localhost",
            "web.localhostx",
            "",
            ".localhost",
            "a..localhost",
            "-a.localhost",
            "a b.localhost",
            "*.shop.localhost",
            "127.0.0.1",
        ] {
            assert!(!is_local_name(name), "{name}");
        }
        let long = format!("{}.localhost", vec!["a".repeat(63); 4].join("."));
        assert!(!is_local_name(&long));
    }

    #[test]
    fn sni_names_are_lower_cased_without_a_trailing_dot() {
        assert_eq!(
            Subject::for_sni("Web.Localhost."),
            Some(Subject::Name("web.localhost".into()))
        );
        assert_eq!(Subject::for_sni("example.com"), None);
    }

    #[test]
    fn serials_differ() {
        assert_ne!(random_serial(), random_serial());
    }
}
