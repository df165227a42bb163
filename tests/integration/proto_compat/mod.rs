//! Wire compatibility with Fabric's own protocol definitions.
//!
//! `tests/node/proto-compat.js` builds a corpus of populated messages with the generated
//! JavaScript in the npm package `@hyperledger/fabric-protos` (Fabric's .proto files
//! compiled by Fabric's project); [`corpus`] builds the same messages with cchost-proto.
//! Node's bytes must decode in Rust to exactly the expected fields and re-encode to the
//! same bytes, and Rust's bytes must do the same in Node. A wrong field number, type or
//! enum value on our side breaks both directions.

mod corpus;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cchost::descriptors::{GrpcMethod, grpc_methods};
use cchost_proto::{common, kvrwset, msp, protos, rwset};
use prost::Message;
use serde::Deserialize;

use crate::node;

/// What `proto-compat.js encode` prints.
#[derive(Debug, Deserialize)]
struct NodeCorpus {
    messages: BTreeMap<String, String>,
    services: Vec<NodeMethod>,
}

#[derive(Debug, Deserialize)]
struct NodeMethod {
    path: String,
    request: String,
    response: String,
    client_streaming: bool,
    server_streaming: bool,
}

fn node_corpus() -> &'static NodeCorpus {
    static CORPUS: OnceLock<NodeCorpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let out = node::run("proto-compat.js", &["encode"], b"");
        assert!(
            out.status.success(),
            "proto-compat.js encode failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

fn node_bytes(name: &str) -> Vec<u8> {
    let encoded = node_corpus()
        .messages
        .get(name)
        .unwrap_or_else(|| panic!("the Node corpus has no {name}"));
    BASE64.decode(encoded).unwrap()
}

#[test]
fn fabric_js_encodings_decode_to_the_expected_fields_and_reencode_identically() {
    let corpus = corpus::corpus();
    let node = node_corpus();
    let mut failures = Vec::new();
    for entry in &corpus.entries {
        match node.messages.get(&entry.name) {
            None => failures.push(format!("{}: missing from the Node corpus", entry.name)),
            Some(encoded) => {
                if let Err(e) = entry.check_node_bytes(&BASE64.decode(encoded).unwrap()) {
                    failures.push(format!("{}: {e}", entry.name));
                }
            }
        }
    }
    for name in node.messages.keys() {
        if !corpus.entries.iter().any(|e| &e.name == name) {
            failures.push(format!("{name}: missing from the Rust corpus"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} messages differ:\n{}",
        failures.len(),
        corpus.entries.len(),
        failures.join("\n")
    );
    // Every ChaincodeMessage type, the proposal chain, a block, Deliver and Gateway.
    assert_eq!(corpus.entries.len(), 118);
}

#[test]
fn rust_encodings_decode_in_fabric_js_to_the_same_fields_and_bytes() {
    let corpus = corpus::corpus();
    let encoded: BTreeMap<&str, String> = corpus
        .entries
        .iter()
        .map(|e| (e.name.as_str(), BASE64.encode(&e.rust_bytes)))
        .collect();
    let out = node::run(
        "proto-compat.js",
        &["check"],
        &serde_json::to_vec(&encoded).unwrap(),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Fabric's JavaScript disagrees with cchost-proto:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report.trim(),
        format!("checked {} messages, 0 failures", corpus.entries.len())
    );
}

#[test]
fn every_chaincode_message_type_is_in_the_corpus() {
    let corpus = corpus::corpus();
    for value in 0..=25 {
        let Ok(ty) = protos::chaincode_message::Type::try_from(value) else {
            assert_eq!(
                value, 12,
                "only 12 is unused in Fabric's ChaincodeMessage.Type"
            );
            continue;
        };
        let name = format!("protos.ChaincodeMessage/{}", ty.as_str_name());
        assert!(
            corpus.entries.iter().any(|e| e.name == name),
            "{name} is missing"
        );
    }
}

#[test]
fn grpc_methods_match_fabrics_service_definitions() {
    let mut ours = grpc_methods().unwrap();
    ours.sort();
    let mut fabrics: Vec<GrpcMethod> = node_corpus()
        .services
        .iter()
        .map(|m| GrpcMethod {
            path: m.path.clone(),
            request: m.request.clone(),
            response: m.response.clone(),
            client_streaming: m.client_streaming,
            server_streaming: m.server_streaming,
        })
        .collect();
    fabrics.sort();
    assert_eq!(ours, fabrics);
    assert_eq!(ours.len(), 13);
}

#[test]
fn signed_proposal_from_fabric_js_decodes_layer_by_layer() {
    let signed = protos::SignedProposal::decode(&*node_bytes("protos.SignedProposal")).unwrap();
    assert_eq!(signed.signature.len(), 70);
    let proposal = protos::Proposal::decode(&*signed.proposal_bytes).unwrap();
    assert_eq!(proposal.extension, b"proposal-extension");

    let header = common::Header::decode(&*proposal.header).unwrap();
    let channel_header = common::ChannelHeader::decode(&*header.channel_header).unwrap();
    assert_eq!(
        channel_header.r#type,
        common::HeaderType::EndorserTransaction as i32
    );
    assert_eq!(channel_header.version, 1);
    assert_eq!(channel_header.channel_id, corpus::CHANNEL);
    assert_eq!(channel_header.tx_id, corpus::TXID);
    assert_eq!(channel_header.epoch, 7);
    let timestamp = channel_header.timestamp.unwrap();
    assert_eq!(
        (timestamp.seconds, timestamp.nanos),
        (1_700_000_000, 123_456_789)
    );
    let extension = protos::ChaincodeHeaderExtension::decode(&*channel_header.extension).unwrap();
    assert_eq!(extension.chaincode_id.unwrap().name, "asset");

    let signature_header = common::SignatureHeader::decode(&*header.signature_header).unwrap();
    assert_eq!(signature_header.nonce, (1..=24).collect::<Vec<u8>>());
    let creator = msp::SerializedIdentity::decode(&*signature_header.creator).unwrap();
    assert_eq!(creator, corpus::creator());

    let payload = protos::ChaincodeProposalPayload::decode(&*proposal.payload).unwrap();
    assert_eq!(
        payload.transient_map.keys().collect::<Vec<_>>(),
        ["price", "secret"]
    );
    assert_eq!(payload.transient_map["secret"], b"shh");
    let invocation = protos::ChaincodeInvocationSpec::decode(&*payload.input).unwrap();
    let spec = invocation.chaincode_spec.unwrap();
    assert_eq!(spec.r#type(), protos::chaincode_spec::Type::Node);
    assert_eq!(spec.chaincode_id.unwrap().name, "asset");
    let input = spec.input.unwrap();
    assert_eq!(input.args, [&b"asset:put"[..], b"k1", b"v1"]);
    assert!(input.is_init);
    assert_eq!(input.decorations["beta"], b"b");
}

#[test]
fn block_from_fabric_js_yields_both_transactions_rwsets_and_events() {
    let block = common::Block::decode(&*node_bytes("common.Block")).unwrap();
    assert_eq!(block.header.unwrap().number, 5);
    let metadata = block.metadata.unwrap().metadata;
    assert_eq!(
        metadata[common::BlockMetadataIndex::TransactionsFilter as usize],
        [0, 11]
    );

    let mut seen = Vec::new();
    for envelope_bytes in block.data.unwrap().data {
        let envelope = common::Envelope::decode(&*envelope_bytes).unwrap();
        let payload = common::Payload::decode(&*envelope.payload).unwrap();
        let channel_header =
            common::ChannelHeader::decode(&*payload.header.unwrap().channel_header).unwrap();
        let transaction = protos::Transaction::decode(&*payload.data).unwrap();
        let [action] = transaction.actions.as_slice() else {
            panic!("one action per endorser transaction")
        };
        let action_payload = protos::ChaincodeActionPayload::decode(&*action.payload).unwrap();
        let endorsed = action_payload.action.unwrap();
        assert_eq!(endorsed.endorsements.len(), 1);
        let prp =
            protos::ProposalResponsePayload::decode(&*endorsed.proposal_response_payload).unwrap();
        let cc_action = protos::ChaincodeAction::decode(&*prp.extension).unwrap();
        let event = protos::ChaincodeEvent::decode(&*cc_action.events).unwrap();
        assert_eq!(event.tx_id, channel_header.tx_id);
        assert_eq!(cc_action.response.unwrap().status, 200);

        let rwset = rwset::TxReadWriteSet::decode(&*cc_action.results).unwrap();
        let [ns] = rwset.ns_rwset.as_slice() else {
            panic!("one namespace")
        };
        assert_eq!(ns.namespace, "asset");
        let kv = kvrwset::KvrwSet::decode(&*ns.rwset).unwrap();
        let writes: Vec<(&str, bool)> = kv
            .writes
            .iter()
            .map(|w| (w.key.as_str(), w.is_delete))
            .collect();
        assert_eq!(writes, [("k1", false), ("k2", true)]);
        let range = &kv.range_queries_info[0];
        assert!(range.itr_exhausted);
        let Some(kvrwset::range_query_info::ReadsInfo::RawReads(raw)) = &range.reads_info else {
            panic!("raw reads expected")
        };
        let versions: Vec<_> = raw
            .kv_reads
            .iter()
            .map(|r| (r.key.as_str(), r.version.map(|v| (v.block_num, v.tx_num))))
            .collect();
        assert_eq!(versions, [("k1", Some((3, 1))), ("k2", Some((4, 0)))]);
        seen.push((channel_header.tx_id, event.event_name));
    }
    assert_eq!(
        seen,
        [
            (corpus::TXID.to_owned(), "Put".to_owned()),
            (
                "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35".to_owned(),
                "Transfer".to_owned()
            ),
        ]
    );
}

/// Fabric's encoders (google-protobuf here, protobuf-go in the peer) write a map entry's
/// default key or value explicitly; prost omits it. Decoding agrees, bytes do not: anything
/// hashed or signed must be taken from the bytes received, never from a re-encoding.
#[test]
fn map_entries_with_default_values_decode_alike_but_prost_omits_the_defaults() {
    let node = node_bytes("protos.ChaincodeInput/empty_decoration");
    // field 2 (decorations), entry {1: "k", 2: ""}
    assert_eq!(node, [0x12, 0x05, 0x0a, 0x01, b'k', 0x12, 0x00]);
    let decoded = protos::ChaincodeInput::decode(&*node).unwrap();
    assert_eq!(decoded.decorations["k"], b"");
    // prost leaves out the empty value.
    assert_eq!(decoded.encode_to_vec(), [0x12, 0x03, 0x0a, 0x01, b'k']);
}
