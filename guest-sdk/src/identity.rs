//! The submitting client's identity, parsed from the proposal's creator the way
//! fabric-shim's `ClientIdentity` does.

use std::collections::BTreeMap;

use der::asn1::ObjectIdentifier;
use der::{DecodePem, Tag, Tagged};
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::{Error, Stub};

/// The X.509 extension where Fabric CA puts attributes, as `{"attrs":{"name":"value"}}`.
pub const ATTRIBUTES_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.3.4.5.6.7.8.1");

/// Who submitted the transaction: MSP id, a unique id, Fabric CA attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    msp_id: String,
    id: String,
    id_bytes: Vec<u8>,
    attributes: BTreeMap<String, String>,
}

impl ClientIdentity {
    /// The identity of the transaction's creator.
    pub fn from_stub(stub: &Stub) -> Result<Self, Error> {
        let creator = stub.creator()?;
        Self::parse(&creator.mspid, &creator.id_bytes)
    }

    /// Parses an MSP id and a PEM certificate.
    pub fn parse(msp_id: &str, id_bytes: &[u8]) -> Result<Self, Error> {
        let pem = std::str::from_utf8(id_bytes)
            .map_err(|_| Error::new("the creator's certificate is not PEM text"))?;
        let certificate = Certificate::from_pem(pem.trim())
            .map_err(|e| Error::new(format!("the creator's certificate does not parse: {e}")))?;
        let tbs = certificate.tbs_certificate();
        let id = format!(
            "x509::{}::{}",
            format_dn(tbs.subject()),
            format_dn(tbs.issuer())
        );
        let mut attributes = BTreeMap::new();
        if let Some(extension) = tbs
            .extensions()
            .into_iter()
            .flatten()
            .find(|e| e.extn_id == ATTRIBUTES_OID)
        {
            let value: serde_json::Value = serde_json::from_slice(extension.extn_value.as_bytes())
                .map_err(|e| {
                    Error::new(format!("the certificate's attributes are not JSON: {e}"))
                })?;
            if let Some(attrs) = value.get("attrs").and_then(|a| a.as_object()) {
                for (name, value) in attrs {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    attributes.insert(name.clone(), text);
                }
            }
        }
        Ok(Self {
            msp_id: msp_id.to_owned(),
            id,
            id_bytes: id_bytes.to_vec(),
            attributes,
        })
    }

    /// `x509::/C=US/.../CN=user1::/C=US/.../CN=ca.org1.example.com`, like `GetID()`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The MSP id, like `GetMSPID()`.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The PEM certificate, like `getIDBytes()`.
    pub fn id_bytes(&self) -> &[u8] {
        &self.id_bytes
    }

    /// A Fabric CA attribute, like `GetAttributeValue`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    /// Whether attribute `name` equals `value`, like `AssertAttributeValue`.
    pub fn assert_attribute_value(&self, name: &str, value: &str) -> bool {
        self.attribute(name) == Some(value)
    }

    /// Every Fabric CA attribute.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }
}

/// fabric-shim's `formatDN`: `/SHORT=value` for each attribute in certificate order, the
/// first `/` of a value escaped as `\/`.
fn format_dn(name: &Name) -> String {
    let mut out = String::new();
    {
        for attribute in name.iter() {
            let short = match attribute.oid.to_string().as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "1.2.840.113549.1.9.1" => "E",
                _ => "",
            };
            let value = match attribute.value.tag() {
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
                    String::from_utf8_lossy(attribute.value.value()).into_owned()
                }
                _ => hex_string(attribute.value.value()),
            };
            out.push('/');
            out.push_str(short);
            out.push('=');
            out.push_str(&value.replacen('/', "\\/", 1));
        }
    }
    out
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A certificate for tests: `CN=User1@org1.example.com, OU=client, O=Hyperledger,
/// ST=North Carolina, C=US`, issued by `CN=ca.org1.example.com` with the Fabric CA
/// attributes `hf.EnrollmentID=user1`, `hf.Type=client`, `role=auditor`. It is what
/// [`MockStub`](crate::mock::MockStub) presents as the creator unless told otherwise.
pub const TEST_CERTIFICATE: &str = include_str!("test-user1.pem");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_certificate_reads_like_fabric_shims_client_identity() {
        let identity = ClientIdentity::parse("Org1MSP", TEST_CERTIFICATE.as_bytes()).unwrap();
        assert_eq!(identity.msp_id(), "Org1MSP");
        assert_eq!(
            identity.id(),
            "x509::/C=US/ST=North Carolina/O=Hyperledger/OU=client/CN=User1@org1.example.com::/C=US/ST=North Carolina/L=Durham/O=org1.example.com/CN=ca.org1.example.com"
        );
        assert_eq!(identity.attribute("role"), Some("auditor"));
        assert_eq!(identity.attribute("hf.EnrollmentID"), Some("user1"));
        assert_eq!(identity.attribute("missing"), None);
        assert!(identity.assert_attribute_value("hf.Type", "client"));
        assert!(!identity.assert_attribute_value("role", "admin"));
    }

    #[test]
    fn a_creator_that_is_not_a_certificate_is_a_clear_error() {
        let e = ClientIdentity::parse("Org1MSP", b"not a certificate").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the creator's certificate does not parse: "),
            "{e}"
        );
    }
}
