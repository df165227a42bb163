//! Building and reading Fabric proposals.
//!
//! [`DevIdentity`] is a self-signed P-256 X.509 identity of the kind an MSP issues, for
//! tests, the CLI and dev nodes. [`ProposalBuilder`] makes the `SignedProposal` a Fabric
//! client sends: channel header type `ENDORSER_TRANSACTION`, epoch 0, a timestamp,
//! `txid = hex(sha256(nonce ‖ creator))`, the creator as an encoded `SerializedIdentity`
//! with the PEM certificate, signed with ECDSA (low-S, DER) over the proposal bytes.
//! [`ParsedProposal`] decodes one back into its layers.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use cchost_proto::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use cchost_proto::msp::SerializedIdentity;
use cchost_proto::protos::{
    ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec,
    ChaincodeProposalPayload, ChaincodeSpec, Proposal, SignedProposal, chaincode_spec,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::EncodePrivateKey;
use prost::Message;
use sha2::{Digest, Sha256};

/// Why an identity could not be made or a proposal not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    /// Key or certificate generation failed.
    #[error("cannot create identity: {0}")]
    Identity(String),
    /// A layer of the proposal does not decode or is missing.
    #[error("malformed proposal: {0}")]
    Malformed(String),
    /// The proposal decodes but does not name what to invoke (Fabric's texts).
    #[error("{0}")]
    Incomplete(&'static str),
}

/// A signing identity: MSP id, PEM certificate and P-256 private key.
pub struct DevIdentity {
    msp_id: String,
    cert_pem: String,
    key: SigningKey,
    /// The same key in ring, which signs about 4× faster than the RustCrypto `p256`
    /// crate (its S is then made low with `p256`): None when ring refuses the key's
    /// PKCS#8 form.
    signer: Option<ring::signature::EcdsaKeyPair>,
}

impl std::fmt::Debug for DevIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdentity")
            .field("msp_id", &self.msp_id)
            .finish_non_exhaustive()
    }
}

impl DevIdentity {
    /// A fresh key and a self-signed certificate with subject
    /// `C=US, O=<org>, OU=client, CN=<common_name>`, e.g. `("Org1MSP", "Org1", "User1")`.
    pub fn generate(msp_id: &str, org: &str, common_name: &str) -> Result<Self, ProposalError> {
        let fail = |e: &dyn std::fmt::Display| ProposalError::Identity(e.to_string());
        let key = SigningKey::try_generate().map_err(|e| fail(&e))?;
        let pkcs8 = key.to_pkcs8_der().map_err(|e| fail(&e))?;
        let key_pair = rcgen::KeyPair::try_from(pkcs8.as_bytes()).map_err(|e| fail(&e))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| fail(&e))?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, org);
        dn.push(rcgen::DnType::OrganizationalUnitName, "client");
        dn.push(rcgen::DnType::CommonName, common_name);
        params.distinguished_name = dn;
        let cert = params.self_signed(&key_pair).map_err(|e| fail(&e))?;
        Ok(Self::with_key(msp_id, cert.pem(), key))
    }

    /// A fresh key and a certificate issued by `issuer` with subject
    /// `C=US, O=<org>, OU=<ou>, CN=<common_name>` (see [`crate::msp::DevCa`]).
    pub(crate) fn issued(
        msp_id: &str,
        org: &str,
        ou: &str,
        common_name: &str,
        issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
    ) -> Result<Self, ProposalError> {
        let fail = |e: &dyn std::fmt::Display| ProposalError::Identity(e.to_string());
        let key = SigningKey::try_generate().map_err(|e| fail(&e))?;
        let pkcs8 = key.to_pkcs8_der().map_err(|e| fail(&e))?;
        let key_pair = rcgen::KeyPair::try_from(pkcs8.as_bytes()).map_err(|e| fail(&e))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| fail(&e))?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, org);
        dn.push(rcgen::DnType::OrganizationalUnitName, ou);
        dn.push(rcgen::DnType::CommonName, common_name);
        params.distinguished_name = dn;
        let cert = params.signed_by(&key_pair, issuer).map_err(|e| fail(&e))?;
        Ok(Self::with_key(msp_id, cert.pem(), key))
    }

    /// An identity from its PEM certificate and PEM (PKCS#8) P-256 private key, as
    /// [`Self::key_pem`] writes it.
    pub fn from_pem(msp_id: &str, cert_pem: &str, key_pem: &str) -> Result<Self, ProposalError> {
        use p256::pkcs8::DecodePrivateKey;
        let key = SigningKey::from_pkcs8_pem(key_pem)
            .map_err(|e| ProposalError::Identity(format!("private key: {e}")))?;
        Ok(Self::with_key(msp_id, cert_pem.to_owned(), key))
    }

    fn with_key(msp_id: &str, cert_pem: String, key: SigningKey) -> Self {
        let signer = key.to_pkcs8_der().ok().and_then(|pkcs8| {
            ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_bytes(),
                &ring::rand::SystemRandom::new(),
            )
            .ok()
        });
        Self {
            msp_id: msp_id.to_owned(),
            cert_pem,
            key,
            signer,
        }
    }

    /// The private key, PEM (PKCS#8): to keep the identity across restarts.
    pub fn key_pem(&self) -> Result<String, ProposalError> {
        self.key
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| ProposalError::Identity(format!("private key: {e}")))
    }

    /// The MSP id.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The PEM certificate.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The encoded `msp.SerializedIdentity`: a proposal's `creator`.
    pub fn creator(&self) -> Vec<u8> {
        SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: self.cert_pem.clone().into_bytes(),
        }
        .encode_to_vec()
    }

    /// An ECDSA-SHA256 signature over `message`, DER-encoded with a low S as Fabric's MSP
    /// requires.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let fast = self.signer.as_ref().and_then(|signer| {
            let fixed = signer
                .sign(&ring::rand::SystemRandom::new(), message)
                .ok()?;
            Signature::from_slice(fixed.as_ref()).ok()
        });
        let signature = fast.unwrap_or_else(|| self.key.sign(message));
        signature.normalize_s().to_der().as_bytes().to_vec()
    }
}

/// `hex(sha256(nonce ‖ creator))`: the transaction id Fabric requires.
pub fn compute_txid(nonce: &[u8], creator: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(nonce);
    hash.update(creator);
    hex::encode(hash.finalize())
}

/// `sha256(nonce ‖ creator ‖ LE64(epoch))`: the binding chaincode sees in `GetBinding`.
pub fn compute_binding(nonce: &[u8], creator: &[u8], epoch: u64) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(nonce);
    hash.update(creator);
    hash.update(epoch.to_le_bytes());
    hash.finalize().to_vec()
}

/// A signed proposal and the values that went into it.
#[derive(Debug, Clone)]
pub struct BuiltProposal {
    /// What the client sends.
    pub signed_proposal: SignedProposal,
    /// The transaction id.
    pub txid: String,
    /// The nonce.
    pub nonce: Vec<u8>,
    /// The encoded creator identity.
    pub creator: Vec<u8>,
    /// The channel-header timestamp.
    pub timestamp: prost_types::Timestamp,
    /// The invocation input.
    pub input: ChaincodeInput,
}

/// Builds a chaincode invocation proposal.
#[derive(Debug, Clone)]
pub struct ProposalBuilder {
    channel: String,
    chaincode: String,
    args: Vec<Vec<u8>>,
    transient: BTreeMap<String, Vec<u8>>,
    is_init: bool,
    nonce: Option<Vec<u8>>,
    timestamp: Option<prost_types::Timestamp>,
}

impl ProposalBuilder {
    /// A proposal to invoke `chaincode` (its name, the namespace) on `channel`.
    pub fn new(channel: impl Into<String>, chaincode: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            chaincode: chaincode.into(),
            args: Vec::new(),
            transient: BTreeMap::new(),
            is_init: false,
            nonce: None,
            timestamp: None,
        }
    }

    /// The arguments; the first is the function name (`contract:function` for contracts).
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.args = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        self
    }

    /// Adds a transient value (private to the endorsement, never in the transaction).
    pub fn transient(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.transient.insert(key.into(), value.into());
        self
    }

    /// Marks the invocation as the chaincode's `Init`.
    pub fn init(mut self, is_init: bool) -> Self {
        self.is_init = is_init;
        self
    }

    /// Uses this nonce instead of 24 random bytes (deterministic tests).
    pub fn nonce(mut self, nonce: impl Into<Vec<u8>>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Uses this timestamp instead of now.
    pub fn timestamp(mut self, timestamp: prost_types::Timestamp) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Builds and signs the proposal as `identity`.
    pub fn build(self, identity: &DevIdentity) -> Result<BuiltProposal, ProposalError> {
        let nonce = match self.nonce {
            Some(nonce) => nonce,
            None => <[u8; 24]>::try_generate()
                .map_err(|e| ProposalError::Identity(format!("no randomness for a nonce: {e}")))?
                .to_vec(),
        };
        let timestamp = self.timestamp.unwrap_or_else(now);
        let creator = identity.creator();
        let txid = compute_txid(&nonce, &creator);
        let chaincode_id = ChaincodeId {
            name: self.chaincode.clone(),
            ..Default::default()
        };
        let channel_header = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            version: 0,
            timestamp: Some(timestamp),
            channel_id: self.channel,
            tx_id: txid.clone(),
            epoch: 0,
            extension: ChaincodeHeaderExtension {
                chaincode_id: Some(chaincode_id.clone()),
            }
            .encode_to_vec(),
            tls_cert_hash: vec![],
        };
        let input = ChaincodeInput {
            args: self.args,
            decorations: BTreeMap::new(),
            is_init: self.is_init,
        };
        let invocation = ChaincodeInvocationSpec {
            chaincode_spec: Some(ChaincodeSpec {
                r#type: chaincode_spec::Type::Undefined.into(),
                chaincode_id: Some(chaincode_id),
                input: Some(input.clone()),
                timeout: 0,
            }),
        };
        let proposal = Proposal {
            header: Header {
                channel_header: channel_header.encode_to_vec(),
                signature_header: SignatureHeader {
                    creator: creator.clone(),
                    nonce: nonce.clone(),
                }
                .encode_to_vec(),
            }
            .encode_to_vec(),
            payload: ChaincodeProposalPayload {
                input: invocation.encode_to_vec(),
                transient_map: self.transient,
            }
            .encode_to_vec(),
            extension: vec![],
        };
        let proposal_bytes = proposal.encode_to_vec();
        let signature = identity.sign(&proposal_bytes);
        Ok(BuiltProposal {
            signed_proposal: SignedProposal {
                proposal_bytes,
                signature,
            },
            txid,
            nonce,
            creator,
            timestamp,
            input,
        })
    }
}

/// Now, as a protobuf timestamp.
pub(crate) fn now() -> prost_types::Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

/// A signed proposal decoded layer by layer.
#[derive(Debug, Clone)]
pub struct ParsedProposal {
    /// The outer proposal.
    pub proposal: Proposal,
    /// Channel, txid, timestamp, type, epoch.
    pub channel_header: ChannelHeader,
    /// Creator and nonce.
    pub signature_header: SignatureHeader,
    /// The invocation payload (input and transient map).
    pub payload: ChaincodeProposalPayload,
    /// The chaincode invoked, from the channel header's extension.
    pub chaincode_name: String,
    /// The invocation input, from the payload's `ChaincodeInvocationSpec`.
    pub input: ChaincodeInput,
}

impl ParsedProposal {
    /// Decodes every layer of `signed`; says which one is broken.
    pub fn parse(signed: &SignedProposal) -> Result<Self, ProposalError> {
        let bad =
            |what: &str, e: prost::DecodeError| ProposalError::Malformed(format!("{what}: {e}"));
        let proposal =
            Proposal::decode(signed.proposal_bytes.as_slice()).map_err(|e| bad("proposal", e))?;
        let header = Header::decode(proposal.header.as_slice()).map_err(|e| bad("header", e))?;
        let channel_header = ChannelHeader::decode(header.channel_header.as_slice())
            .map_err(|e| bad("channel header", e))?;
        let signature_header = SignatureHeader::decode(header.signature_header.as_slice())
            .map_err(|e| bad("signature header", e))?;
        let payload = ChaincodeProposalPayload::decode(proposal.payload.as_slice())
            .map_err(|e| bad("chaincode proposal payload", e))?;
        // Fabric's `UnpackProposal`: the chaincode from the header extension, the input
        // from the invocation spec.
        let extension = ChaincodeHeaderExtension::decode(channel_header.extension.as_slice())
            .map_err(|e| bad("chaincode header extension", e))?;
        let chaincode_name = extension
            .chaincode_id
            .ok_or(ProposalError::Incomplete(
                "ChaincodeHeaderExtension.ChaincodeId is nil",
            ))?
            .name;
        if chaincode_name.is_empty() {
            return Err(ProposalError::Incomplete(
                "ChaincodeHeaderExtension.ChaincodeId.Name is empty",
            ));
        }
        let spec = ChaincodeInvocationSpec::decode(payload.input.as_slice())
            .map_err(|e| bad("chaincode invocation spec", e))?
            .chaincode_spec
            .ok_or(ProposalError::Incomplete(
                "chaincode invocation spec did not contain chaincode spec",
            ))?;
        let input = spec.input.ok_or(ProposalError::Incomplete(
            "chaincode input did not contain any input",
        ))?;
        Ok(Self {
            proposal,
            channel_header,
            signature_header,
            payload,
            chaincode_name,
            input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn proposal_carries_fabrics_header_fields_and_a_txid_derived_from_nonce_and_creator() {
        let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
        let built = ProposalBuilder::new("mychannel", "asset")
            .args(["put", "k1", "v1"])
            .transient("secret", b"s".to_vec())
            .nonce(vec![7; 24])
            .timestamp(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            })
            .build(&identity)
            .unwrap();
        let parsed = ParsedProposal::parse(&built.signed_proposal).unwrap();
        let ch = &parsed.channel_header;
        assert_eq!(ch.r#type, 3);
        assert_eq!((ch.epoch, ch.version), (0, 0));
        assert_eq!(ch.channel_id, "mychannel");
        assert_eq!(
            ch.timestamp,
            Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5
            })
        );
        let ext = ChaincodeHeaderExtension::decode(ch.extension.as_slice()).unwrap();
        assert_eq!(ext.chaincode_id.unwrap().name, "asset");

        assert_eq!(ch.tx_id, compute_txid(&[7; 24], &built.creator));
        assert_eq!(ch.tx_id, built.txid);
        assert_eq!(ch.tx_id.len(), 64);

        let creator =
            SerializedIdentity::decode(parsed.signature_header.creator.as_slice()).unwrap();
        assert_eq!(creator.mspid, "Org1MSP");
        let pem = String::from_utf8(creator.id_bytes).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        assert_eq!(parsed.payload.transient_map["secret"], b"s");
        let spec = ChaincodeInvocationSpec::decode(parsed.payload.input.as_slice())
            .unwrap()
            .chaincode_spec
            .unwrap();
        assert_eq!(spec.input.unwrap().args, [&b"put"[..], b"k1", b"v1"]);
    }

    #[test]
    fn the_signature_verifies_with_the_public_key_of_the_creators_certificate_and_has_a_low_s() {
        use der::{DecodePem, Encode};
        use p256::pkcs8::DecodePublicKey;
        let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
        let built = ProposalBuilder::new("ch", "cc")
            .args(["f"])
            .build(&identity)
            .unwrap();
        // As an MSP verifies: the key comes from the certificate in the proposal's creator.
        let parsed = ParsedProposal::parse(&built.signed_proposal).unwrap();
        let creator =
            SerializedIdentity::decode(parsed.signature_header.creator.as_slice()).unwrap();
        let certificate = x509_cert::Certificate::from_pem(&creator.id_bytes).unwrap();
        let spki = certificate
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap();
        let key = VerifyingKey::from_public_key_der(&spki).unwrap();
        let signature = Signature::from_der(&built.signed_proposal.signature).unwrap();
        assert_eq!(signature.normalize_s(), signature);
        key.verify(&built.signed_proposal.proposal_bytes, &signature)
            .unwrap();
        // Another identity's certificate does not verify it.
        let other = DevIdentity::generate("Org1MSP", "Org1", "User2").unwrap();
        let other_certificate = x509_cert::Certificate::from_pem(other.cert_pem()).unwrap();
        let other_key = VerifyingKey::from_public_key_der(
            &other_certificate
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .unwrap(),
        )
        .unwrap();
        assert!(
            other_key
                .verify(&built.signed_proposal.proposal_bytes, &signature)
                .is_err()
        );
    }

    #[test]
    fn ring_signs_for_generated_and_pem_loaded_keys_and_every_signature_is_low_s_and_verifies() {
        let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
        let reloaded =
            DevIdentity::from_pem("Org1MSP", identity.cert_pem(), &identity.key_pem().unwrap())
                .unwrap();
        assert!(identity.signer.is_some() && reloaded.signer.is_some());
        let key = *identity.key.verifying_key();
        // ring's nonces are random: about half of its raw signatures have a high S, so 64
        // of them exercise the normalisation many times over.
        for i in 0..64u8 {
            let message = [i; 100];
            let signature = Signature::from_der(&reloaded.sign(&message)).unwrap();
            assert_eq!(signature.normalize_s(), signature);
            key.verify(&message, &signature).unwrap();
        }
    }

    /// A transaction of the block file Fabric's own ledger tests ship
    /// (`internal/ledgerutil/testdata/sample_prod/ledgersData/chains/chains/mychannel/
    /// blockfile_000000`, block 1): its
    /// creator, nonce and the txid Fabric's client computed.
    const FABRIC_CREATOR_PEM: &str = "-----BEGIN CERTIFICATE-----
MIICNjCCAd2gAwIBAgIRAMnf9/dmV9RvCCVw9pZQUfUwCgYIKoZIzj0EAwIwgYEx
CzAJBgNVBAYTAlVTMRMwEQYDVQQIEwpDYWxpZm9ybmlhMRYwFAYDVQQHEw1TYW4g
RnJhbmNpc2NvMRkwFwYDVQQKExBvcmcxLmV4YW1wbGUuY29tMQwwCgYDVQQLEwND
T1AxHDAaBgNVBAMTE2NhLm9yZzEuZXhhbXBsZS5jb20wHhcNMTcxMTEyMTM0MTEx
WhcNMjcxMTEwMTM0MTExWjBpMQswCQYDVQQGEwJVUzETMBEGA1UECBMKQ2FsaWZv
cm5pYTEWMBQGA1UEBxMNU2FuIEZyYW5jaXNjbzEMMAoGA1UECxMDQ09QMR8wHQYD
VQQDExZwZWVyMC5vcmcxLmV4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEZ8S4V71OBJpyMIVZdwYdFXAckItrpvSrCf0HQg40WW9XSoOOO76I+Umf
EkmTlIJXP7/AyRRSRU38oI8Ivtu4M6NNMEswDgYDVR0PAQH/BAQDAgeAMAwGA1Ud
EwEB/wQCMAAwKwYDVR0jBCQwIoAginORIhnPEFZUhXm6eWBkm7K7Zc8R4/z7LW4H
ossDlCswCgYIKoZIzj0EAwIDRwAwRAIgVikIUZzgfuFsGLQHWJUVJCU7pDaETkaz
PzFgsCiLxUACICgzJYlW7nvZxP7b6tbeu3t8mrhMXQs956mD4+BoKuNI
-----END CERTIFICATE-----
";

    #[test]
    fn the_txid_of_a_transaction_fabric_wrote_is_the_one_computed_here() {
        let creator = SerializedIdentity {
            mspid: "SampleOrg".into(),
            id_bytes: FABRIC_CREATOR_PEM.as_bytes().to_vec(),
        }
        .encode_to_vec();
        let nonce = hex::decode("01da9402fe811c068ec8a903b042fbe379450dc6d0ce7256").unwrap();
        assert_eq!(
            compute_txid(&nonce, &creator),
            "8d4dbd2d73f6d78a0716ae72baabe97521642931ae3483b2e78e477b0298a642"
        );
    }

    #[test]
    fn binding_is_sha256_of_nonce_creator_and_little_endian_epoch() {
        let binding = compute_binding(b"n", b"c", 1);
        let mut expected = Sha256::new();
        expected.update(b"nc\x01\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(binding, expected.finalize().to_vec());
    }

    #[test]
    fn a_broken_layer_is_named() {
        let signed = SignedProposal {
            proposal_bytes: vec![0x0a, 0x05, 1],
            signature: vec![],
        };
        let err = ParsedProposal::parse(&signed).unwrap_err().to_string();
        assert!(err.starts_with("malformed proposal: proposal: "), "{err}");
    }
}
