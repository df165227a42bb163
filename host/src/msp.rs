//! Membership: who may sign for an organisation, as a Fabric MSP decides it.
//!
//! An [`Msp`] holds an organisation's MSP id and root CA certificates. It turns a
//! serialized identity (`msp.SerializedIdentity`: MSP id and PEM certificate) into an
//! [`Identity`] when the certificate was issued by one of its roots with ECDSA-SHA256, and
//! an [`Identity`] verifies signatures as Fabric's BCCSP does (ECDSA P-256 over SHA-256,
//! DER, low S only). Roles follow Fabric's NodeOUs: the certificate's OU `client`, `peer`,
//! `admin` or `orderer`. [`DevCa`] is an organisation's CA for development nodes and tests:
//! it issues identities of each role.
//!
//! Not supported yet, and refused rather than ignored: intermediate CAs (a certificate
//! must be issued by a root directly) and keys other than P-256. Not checked: validity
//! periods and revocation lists (every peer must reach the same verdict for a block, and
//! a clock does not give one; Fabric checks expiry at validation time).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use cchost_proto::common::{MspPrincipal, MspRole, msp_principal, msp_role};
use cchost_proto::msp::SerializedIdentity;
use der::Encode;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::proposal::DevIdentity;

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_WITH_SHA256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// organizationalUnitName (2.5.4.11).
const OU: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.11");

/// Why an identity or a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MspError {
    /// The bytes are not a `SerializedIdentity` with a PEM certificate.
    #[error("could not deserialize identity: {0}")]
    Malformed(String),
    /// No MSP of the channel has this id.
    #[error("MSP {0} is unknown")]
    UnknownMsp(String),
    /// The certificate was not issued by a root of the MSP.
    #[error("the supplied identity is not valid: {0}")]
    Invalid(String),
    /// The signature does not verify (Fabric's words for a high S included).
    #[error("{0}")]
    BadSignature(String),
    /// The CA could not issue a certificate.
    #[error("cannot issue identity: {0}")]
    Issue(String),
}

/// A role a certificate holds through its OU (Fabric's NodeOUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// OU `client`.
    Client,
    /// OU `peer`.
    Peer,
    /// OU `admin`.
    Admin,
    /// OU `orderer`.
    Orderer,
}

impl Role {
    /// The OU value naming the role.
    pub const fn ou(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Peer => "peer",
            Self::Admin => "admin",
            Self::Orderer => "orderer",
        }
    }
}

/// A deserialized, validated identity of one MSP.
#[derive(Debug, Clone)]
pub struct Identity {
    msp_id: String,
    /// SHA-256 of the certificate: Fabric's identifier within the MSP.
    cert_hash: [u8; 32],
    /// The public key, an uncompressed SEC1 P-256 point.
    key: Vec<u8>,
    roles: Vec<Role>,
}

/// Whether `signature` (DER) is `key`'s (an uncompressed SEC1 P-256 point) ECDSA-SHA256
/// signature over `message`. ring's P-256 is several times faster than the pure-Rust
/// p256 crate's (60 against 290 µs per verification on this kind of machine), and a
/// committing peer verifies two or more signatures per transaction.
fn verify_p256(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(message, signature)
        .is_ok()
}

impl Identity {
    /// Its MSP id.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// (MSP id, certificate hash): two identities with the same are the same signer.
    pub fn id(&self) -> (&str, [u8; 32]) {
        (&self.msp_id, self.cert_hash)
    }

    /// Whether the certificate holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Verifies an ECDSA-SHA256 DER signature over `message`, refusing a high S as Fabric
    /// does.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), MspError> {
        let parsed = Signature::from_der(signature)
            .map_err(|e| MspError::BadSignature(format!("failed unmashalling signature [{e}]")))?;
        if parsed.normalize_s() != parsed {
            return Err(MspError::BadSignature(
                "Invalid S. Must be smaller than half the order".to_owned(),
            ));
        }
        if verify_p256(&self.key, message, signature) {
            Ok(())
        } else {
            Err(MspError::BadSignature(
                "The signature is invalid".to_owned(),
            ))
        }
    }

    /// Whether this identity satisfies `principal` (Fabric's `SatisfiesPrincipal` for
    /// ROLE principals; other classifications are not supported and never satisfied).
    pub fn satisfies(&self, principal: &MspPrincipal) -> bool {
        if principal.principal_classification != msp_principal::Classification::Role as i32 {
            return false;
        }
        let Ok(role) = MspRole::decode(principal.principal.as_slice()) else {
            return false;
        };
        if role.msp_identifier != self.msp_id {
            return false;
        }
        match msp_role::MspRoleType::try_from(role.role) {
            Ok(msp_role::MspRoleType::Member) => true,
            Ok(msp_role::MspRoleType::Admin) => self.has_role(Role::Admin),
            Ok(msp_role::MspRoleType::Client) => self.has_role(Role::Client),
            Ok(msp_role::MspRoleType::Peer) => self.has_role(Role::Peer),
            Ok(msp_role::MspRoleType::Orderer) => self.has_role(Role::Orderer),
            Err(_) => false,
        }
    }
}

/// One organisation's MSP: its id and root CA certificates.
#[derive(Debug, Clone)]
pub struct Msp {
    id: String,
    roots: Vec<Root>,
}

#[derive(Debug, Clone)]
struct Root {
    subject: Vec<u8>,
    /// Uncompressed SEC1 P-256 point.
    key: Vec<u8>,
}

fn parse_pem(pem: &[u8]) -> Result<x509_cert::Certificate, String> {
    use der::DecodePem;
    x509_cert::Certificate::from_pem(pem).map_err(|e| format!("bad certificate: {e}"))
}

/// The certificate's P-256 public key as an uncompressed SEC1 point.
fn public_key(cert: &x509_cert::Certificate) -> Result<Vec<u8>, String> {
    let info = cert.tbs_certificate().subject_public_key_info();
    let spki = info.to_der().map_err(|e| e.to_string())?;
    let key = VerifyingKey::from_public_key_der(&spki)
        .map_err(|e| format!("not a P-256 public key (only P-256 is supported): {e}"))?;
    Ok(key.to_sec1_point(false).as_bytes().to_vec())
}

impl Msp {
    /// The MSP `id` trusting the PEM root certificates `roots`.
    pub fn new(id: impl Into<String>, roots: &[&str]) -> Result<Self, MspError> {
        let roots_parsed = roots
            .iter()
            .map(|pem| {
                let cert = parse_pem(pem.as_bytes()).map_err(MspError::Malformed)?;
                Ok(Root {
                    subject: cert
                        .tbs_certificate()
                        .subject()
                        .to_der()
                        .map_err(|e| MspError::Malformed(e.to_string()))?,
                    key: public_key(&cert).map_err(MspError::Malformed)?,
                })
            })
            .collect::<Result<_, MspError>>()?;
        Ok(Self {
            id: id.into(),
            roots: roots_parsed,
        })
    }

    /// Its MSP id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Validates a PEM certificate of this MSP: issued by one of its roots (or one of the
    /// roots itself), signed with ECDSA-SHA256.
    fn validate(&self, pem: &[u8]) -> Result<Identity, MspError> {
        let cert = parse_pem(pem).map_err(MspError::Malformed)?;
        let tbs = cert.tbs_certificate();
        let issuer = tbs
            .issuer()
            .to_der()
            .map_err(|e| MspError::Malformed(e.to_string()))?;
        if cert.signature_algorithm().oid != ECDSA_WITH_SHA256 {
            return Err(MspError::Invalid(format!(
                "certificate signature algorithm {} is not supported (ecdsa-with-SHA256 is)",
                cert.signature_algorithm().oid
            )));
        }
        let tbs_der = tbs
            .to_der()
            .map_err(|e| MspError::Malformed(e.to_string()))?;
        let signature = cert.signature().raw_bytes();
        Signature::from_der(signature)
            .map_err(|e| MspError::Invalid(format!("certificate signature: {e}")))?;
        let issued = self
            .roots
            .iter()
            .filter(|root| root.subject == issuer)
            .any(|root| verify_p256(&root.key, &tbs_der, signature));
        if !issued {
            return Err(MspError::Invalid(format!(
                "could not obtain certification chain: the certificate is not issued by a root CA of MSP {}",
                self.id
            )));
        }
        let mut roles = Vec::new();
        for attribute in tbs.subject().iter() {
            if attribute.oid != OU {
                continue;
            }
            let value = attribute
                .value
                .decode_as::<der::asn1::Utf8StringRef<'_>>()
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    attribute
                        .value
                        .decode_as::<der::asn1::PrintableStringRef<'_>>()
                        .map(|s| s.as_str().to_owned())
                })
                .unwrap_or_default();
            for role in [Role::Client, Role::Peer, Role::Admin, Role::Orderer] {
                if value.eq_ignore_ascii_case(role.ou()) {
                    roles.push(role);
                }
            }
        }
        let cert_der = cert
            .to_der()
            .map_err(|e| MspError::Malformed(e.to_string()))?;
        Ok(Identity {
            msp_id: self.id.clone(),
            cert_hash: Sha256::digest(&cert_der).into(),
            key: public_key(&cert).map_err(MspError::Invalid)?,
            roles,
        })
    }
}

/// Validated identities a manager keeps (Fabric's MSP caches deserialized identities
/// too): a transaction's creator and endorsers are mostly the same few certificates, and
/// validating one costs a signature verification.
const IDENTITY_CACHE: usize = 256;

/// The MSPs of a channel, by id: deserializes any member's identity.
#[derive(Debug, Clone, Default)]
pub struct MspManager {
    msps: BTreeMap<String, Msp>,
    /// Serialized identity → the identity it validated as (successes only). Emptied
    /// when full.
    cache: Arc<Mutex<HashMap<Vec<u8>, Identity>>>,
}

impl MspManager {
    /// The channel's MSPs.
    pub fn new(msps: impl IntoIterator<Item = Msp>) -> Self {
        Self {
            msps: msps.into_iter().map(|m| (m.id.clone(), m)).collect(),
            cache: Arc::default(),
        }
    }

    /// The MSPs, by id.
    pub fn msps(&self) -> impl Iterator<Item = &Msp> {
        self.msps.values()
    }

    /// Decodes and validates a serialized identity (a creator or endorser).
    pub fn deserialize(&self, serialized: &[u8]) -> Result<Identity, MspError> {
        let lock = || {
            self.cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(identity) = lock().get(serialized) {
            return Ok(identity.clone());
        }
        let identity = self.validate(serialized)?;
        let mut cache = lock();
        if cache.len() >= IDENTITY_CACHE {
            cache.clear();
        }
        cache.insert(serialized.to_vec(), identity.clone());
        Ok(identity)
    }

    fn validate(&self, serialized: &[u8]) -> Result<Identity, MspError> {
        let identity = SerializedIdentity::decode(serialized)
            .map_err(|e| MspError::Malformed(format!("could not unmarshal identity: {e}")))?;
        let msp = self
            .msps
            .get(&identity.mspid)
            .ok_or_else(|| MspError::UnknownMsp(identity.mspid.clone()))?;
        msp.validate(&identity.id_bytes)
    }
}

/// An organisation's certificate authority for dev nodes and tests: a P-256 root that
/// issues identities carrying a NodeOU role.
pub struct DevCa {
    msp_id: String,
    org: String,
    cert_pem: String,
    key_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa")
            .field("msp_id", &self.msp_id)
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// A new root CA for MSP `msp_id` of organisation `org` (e.g. `Org1MSP`, `Org1`).
    pub fn new(msp_id: &str, org: &str) -> Result<Self, MspError> {
        let fail = |e: rcgen::Error| MspError::Issue(e.to_string());
        let key = rcgen::KeyPair::generate().map_err(fail)?;
        let params = Self::params(org)?;
        let cert_pem = params.self_signed(&key).map_err(fail)?.pem();
        Ok(Self {
            msp_id: msp_id.to_owned(),
            org: org.to_owned(),
            cert_pem,
            key_pem: key.serialize_pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA [`Self::new`] made for `msp_id` and `org`, from its certificate and key
    /// (PEM, as [`Self::cert_pem`] and [`Self::key_pem`] gave them).
    pub fn load(msp_id: &str, org: &str, cert_pem: &str, key_pem: &str) -> Result<Self, MspError> {
        let key = rcgen::KeyPair::from_pem(key_pem)
            .map_err(|e| MspError::Malformed(format!("CA key: {e}")))?;
        let params = Self::params(org)?;
        // The certificate must be this key's.
        let cert = parse_pem(cert_pem.as_bytes()).map_err(MspError::Malformed)?;
        if public_key(&cert).map_err(MspError::Malformed)? != key.public_key_raw() {
            return Err(MspError::Malformed(
                "the CA certificate is not the CA key's".into(),
            ));
        }
        Ok(Self {
            msp_id: msp_id.to_owned(),
            org: org.to_owned(),
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    fn params(org: &str) -> Result<rcgen::CertificateParams, MspError> {
        let fail = |e: rcgen::Error| MspError::Issue(e.to_string());
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, org);
        dn.push(
            rcgen::DnType::CommonName,
            format!("ca.{}", org.to_lowercase()),
        );
        params.distinguished_name = dn;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        Ok(params)
    }

    /// The CA's private key (PKCS#8 PEM).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The root certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The MSP this CA is the root of.
    pub fn msp(&self) -> Result<Msp, MspError> {
        Msp::new(self.msp_id.clone(), &[self.cert_pem.as_str()])
    }

    /// Issues an identity with `role` and common name `common_name`.
    pub fn issue(&self, role: Role, common_name: &str) -> Result<DevIdentity, MspError> {
        DevIdentity::issued(
            &self.msp_id,
            &self.org,
            role.ou(),
            common_name,
            &self.issuer,
        )
        .map_err(|e| MspError::Issue(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_verifies_its_low_s_signature_and_refuses_the_high_s_twin() {
        let ca = DevCa::new("Org1MSP", "Org1").unwrap();
        let signer = ca.issue(Role::Peer, "peer0").unwrap();
        let identity = MspManager::new([ca.msp().unwrap()])
            .deserialize(&signer.creator())
            .unwrap();
        assert!(identity.has_role(Role::Peer) && !identity.has_role(Role::Client));
        let der = signer.sign(b"message");
        identity.verify(b"message", &der).unwrap();
        let low = Signature::from_der(&der).unwrap();
        let high = Signature::from_scalars(low.r(), -*low.s()).unwrap();
        assert_eq!(
            identity
                .verify(b"message", high.to_der().as_bytes())
                .unwrap_err()
                .to_string(),
            "Invalid S. Must be smaller than half the order"
        );
    }

    #[test]
    fn a_certificate_of_another_ca_with_the_same_msp_id_is_not_valid() {
        let ours = DevCa::new("Org1MSP", "Org1").unwrap();
        let theirs = DevCa::new("Org1MSP", "Org1").unwrap();
        let stranger = theirs.issue(Role::Client, "mallory").unwrap();
        let error = MspManager::new([ours.msp().unwrap()])
            .deserialize(&stranger.creator())
            .unwrap_err();
        assert!(matches!(error, MspError::Invalid(_)), "{error}");
    }
}
