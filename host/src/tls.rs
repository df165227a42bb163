//! Mutual TLS on the chaincode listener (Fabric's `peer.tls.enabled` for chaincode).
//!
//! Like Fabric's `accesscontrol` package, cchost keeps an ephemeral chaincode CA in memory.
//! It issues the listener's server certificate and, at every launch, a client certificate
//! for that chaincode. The SHA-256 of each client certificate is bound to the package id it
//! was issued for. The first message on a TLS stream must be a REGISTER for exactly that
//! package id, otherwise the stream is refused. A chaincode cannot register as another one,
//! even with a certificate from the same CA. Certificates are P-256. A binding lives as long
//! as the [`ClientCredentials`] it came with, which is as long as the launch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::{ChaincodeId, ChaincodeMessage};
use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

use crate::ids::PackageId;

/// Why the chaincode CA could not issue a certificate.
#[derive(Debug, thiserror::Error)]
#[error("chaincode TLS: {0}")]
pub struct TlsError(String);

impl From<rcgen::Error> for TlsError {
    fn from(e: rcgen::Error) -> Self {
        Self(e.to_string())
    }
}

type Bindings = Arc<Mutex<HashMap<[u8; 32], PackageId>>>;

fn lock(bindings: &Bindings) -> MutexGuard<'_, HashMap<[u8; 32], PackageId>> {
    bindings.lock().unwrap_or_else(|e| e.into_inner())
}

/// The chaincode CA: issues the listener's certificate and the chaincode client
/// certificates, and checks who registers with which.
pub struct ChaincodeCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    bindings: Bindings,
}

impl std::fmt::Debug for ChaincodeCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeCa")
            .field("bound", &lock(&self.bindings).len())
            .finish_non_exhaustive()
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "cchost");
    dn.push(DnType::CommonName, common_name);
    dn
}

impl ChaincodeCa {
    /// A new CA, and a server certificate for the listener valid for `hosts` (names or IP
    /// addresses the chaincode dials, e.g. `127.0.0.1` and `localhost`).
    pub fn new(hosts: &[&str]) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name("cchost chaincode CA");
        // It signs the listener's and the chaincode's certificates, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert_pem = params.self_signed(&key)?.pem();
        let issuer = Issuer::new(params, key);

        let server_key = KeyPair::generate()?;
        let mut server =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())?;
        server.distinguished_name = name("cchost chaincode listener");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert_pem = server.signed_by(&server_key, &issuer)?.pem();
        Ok(Self {
            issuer,
            cert_pem,
            server_cert_pem,
            server_key_pem: server_key.serialize_pem(),
            bindings: Arc::default(),
        })
    }

    /// The CA certificate (PEM): chaincode trusts the listener through it
    /// (`CORE_PEER_TLS_ROOTCERT_FILE`).
    pub fn ca_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The tonic server configuration of the chaincode listener: its certificate, and
    /// client certificates required, issued by this CA.
    pub fn server_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(
                &self.server_cert_pem,
                &self.server_key_pem,
            ))
            .client_ca_root(tonic::transport::Certificate::from_pem(&self.cert_pem))
            .client_auth_optional(false)
    }

    /// Issues a client certificate for one launch of `package_id` and binds it to that id
    /// until the credentials are dropped.
    pub fn issue(&self, package_id: &PackageId) -> Result<ClientCredentials, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(package_id.as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        let hash: [u8; 32] = Sha256::digest(cert.der()).into();
        lock(&self.bindings).insert(hash, package_id.clone());
        Ok(ClientCredentials {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            root_pem: self.cert_pem.clone(),
            hash,
            bindings: Arc::clone(&self.bindings),
        })
    }

    /// Fabric's check of the first message on a TLS chaincode stream: a REGISTER whose
    /// name is the package id the client certificate (`peer_cert`, DER) was issued for.
    pub fn authenticate(
        &self,
        message: &ChaincodeMessage,
        peer_cert: Option<&[u8]>,
    ) -> Result<(), String> {
        if message.r#type != Type::Register as i32 {
            return Err("First message needs to be a register".to_owned());
        }
        let name = ChaincodeId::decode(message.payload.as_slice())
            .map_err(|e| format!("failed unmarshalling the REGISTER payload: {e}"))?
            .name;
        let Some(cert) = peer_cert else {
            return Err(format!(
                "TLS is active but chaincode {name} didn't send certificate"
            ));
        };
        let hash: [u8; 32] = Sha256::digest(cert).into();
        match lock(&self.bindings).get(&hash) {
            None => Err(format!(
                "Chaincode {name} with given certificate hash {} not found in registry",
                hex::encode(hash)
            )),
            Some(bound) if bound.as_str() != name => Err(format!(
                "Chaincode {name} with given certificate hash {} belongs to a different chaincode",
                hex::encode(hash)
            )),
            Some(_) => Ok(()),
        }
    }
}

/// A chaincode's TLS material for one launch; the certificate's binding to the package id
/// ends when this is dropped.
pub struct ClientCredentials {
    /// The client certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The CA certificate the listener's certificate chains to (PEM).
    pub root_pem: String,
    hash: [u8; 32],
    bindings: Bindings,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("hash", &hex::encode(self.hash))
            .finish_non_exhaustive()
    }
}

impl Drop for ClientCredentials {
    fn drop(&mut self) {
        lock(&self.bindings).remove(&self.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(name: &str) -> ChaincodeMessage {
        ChaincodeMessage {
            r#type: Type::Register as i32,
            payload: ChaincodeId {
                name: name.to_owned(),
                ..Default::default()
            }
            .encode_to_vec(),
            ..Default::default()
        }
    }

    fn der(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap()
    }

    #[test]
    fn a_certificate_registers_only_the_package_it_was_issued_for() {
        let ca = ChaincodeCa::new(&["127.0.0.1"]).unwrap();
        let (a, b) = (PackageId::new("a:01"), PackageId::new("b:02"));
        let cred_a = ca.issue(&a).unwrap();
        let cert_a = der(&cred_a.cert_pem);
        let hash = hex::encode(Sha256::digest(&cert_a));

        assert_eq!(ca.authenticate(&register("a:01"), Some(&cert_a)), Ok(()));
        assert_eq!(
            ca.authenticate(&register("b:02"), Some(&cert_a)),
            Err(format!(
                "Chaincode b:02 with given certificate hash {hash} belongs to a different chaincode"
            ))
        );
        assert_eq!(
            ca.authenticate(&register("a:01"), None),
            Err("TLS is active but chaincode a:01 didn't send certificate".to_owned())
        );
        let keepalive = ChaincodeMessage {
            r#type: Type::Keepalive as i32,
            ..Default::default()
        };
        assert_eq!(
            ca.authenticate(&keepalive, Some(&cert_a)),
            Err("First message needs to be a register".to_owned())
        );

        let cred_b = ca.issue(&b).unwrap();
        assert_eq!(
            ca.authenticate(&register("b:02"), Some(&der(&cred_b.cert_pem))),
            Ok(())
        );

        drop(cred_a);
        assert_eq!(
            ca.authenticate(&register("a:01"), Some(&cert_a)),
            Err(format!(
                "Chaincode a:01 with given certificate hash {hash} not found in registry"
            ))
        );
        assert_eq!(cred_b.root_pem, ca.ca_pem());
    }
}
