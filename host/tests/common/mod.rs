//! Helpers shared by integration tests.

#![allow(clippy::unwrap_used)]

use cchost::ledger::blockfile::StoredBlock;
use der::Encode;
use sha2::{Digest, Sha256};

/// Fabric's block header hash, recomputed with the `der` crate (not cchost's encoder):
/// SHA-256 of the DER SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET
/// STRING data_hash }.
pub(crate) fn independent_header_hash(block: &StoredBlock) -> Vec<u8> {
    let mut body = block.number.to_der().unwrap();
    for hash in [&block.previous_hash, &block.data_hash] {
        body.extend(
            der::asn1::OctetStringRef::new(hash)
                .unwrap()
                .to_der()
                .unwrap(),
        );
    }
    let header = der::Header::new(
        der::Tag::Sequence,
        der::Length::try_from(body.len()).unwrap(),
    )
    .to_der()
    .unwrap();
    Sha256::digest([header, body].concat()).to_vec()
}
