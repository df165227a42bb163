//! The golden corpus, built with cchost-proto's types. `tests/node/proto-compat.js` builds
//! the same messages with Fabric's own generated JavaScript; the two are kept in step by
//! name, and every value here must equal the value there.

use std::collections::BTreeMap;
use std::fmt::Debug;

use cchost_proto::common::{self, signature_policy};
use cchost_proto::protos::{self, chaincode_message::Type};
use cchost_proto::{gateway, kvrwset, msp, orderer, queryresult, rwset};
use prost::Message;
use prost_types::Timestamp;

pub(crate) const TXID: &str = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";
const TXID2: &str = "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35";
pub(crate) const CHANNEL: &str = "mychannel";
const PKG: &str = "asset_1.0:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";
const RANGE_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const HISTORY_ID: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

type Check = Box<dyn Fn(&[u8]) -> Result<(), String>>;

/// One named message: its expected value, encoded by Rust, and a check for the bytes Node
/// encoded for the same name.
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) rust_bytes: Vec<u8>,
    check: Check,
}

impl Entry {
    /// Decodes Node's bytes, compares every field with the expected value, and re-encodes
    /// them to identical bytes.
    pub(crate) fn check_node_bytes(&self, node: &[u8]) -> Result<(), String> {
        (self.check)(node)
    }
}

#[derive(Default)]
pub(crate) struct Corpus {
    pub(crate) entries: Vec<Entry>,
}

impl Corpus {
    /// Adds a message that must decode to `expected` and re-encode byte for byte.
    fn add<M>(&mut self, name: &str, expected: M) -> M
    where
        M: Message + Default + PartialEq + Debug + Clone + 'static,
    {
        self.push(name, expected, true)
    }

    /// Adds a message compared field by field only: map entries with a default key or
    /// value, which Fabric's encoders write out and prost omits.
    fn add_values_only<M>(&mut self, name: &str, expected: M) -> M
    where
        M: Message + Default + PartialEq + Debug + Clone + 'static,
    {
        self.push(name, expected, false)
    }

    fn push<M>(&mut self, name: &str, expected: M, same_bytes: bool) -> M
    where
        M: Message + Default + PartialEq + Debug + Clone + 'static,
    {
        let value = expected.clone();
        let check: Check = Box::new(move |node: &[u8]| {
            let decoded = M::decode(node).map_err(|e| format!("does not decode: {e}"))?;
            if decoded != expected {
                return Err(format!(
                    "fields differ\n  decoded:  {decoded:?}\n  expected: {expected:?}"
                ));
            }
            let reencoded = decoded.encode_to_vec();
            if same_bytes && reencoded != node {
                return Err(format!(
                    "re-encodes to other bytes\n  node: {}\n  rust: {}",
                    hex(node),
                    hex(&reencoded)
                ));
            }
            Ok(())
        });
        self.entries.push(Entry {
            name: name.to_owned(),
            rust_bytes: value.encode_to_vec(),
            check,
        });
        value
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn seq(n: usize, from: usize) -> Vec<u8> {
    (0..n).map(|i| ((from + i) & 0xff) as u8).collect()
}

fn enc<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn ts() -> Timestamp {
    Timestamp {
        seconds: 1_700_000_000,
        nanos: 123_456_789,
    }
}

/// The shim messages a peer and a chaincode exchange, shared with other tests.
pub(crate) fn creator() -> msp::SerializedIdentity {
    msp::SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: b(
            "-----BEGIN CERTIFICATE-----\nMIIBkTCCATegAwIBAgIUTest\n-----END CERTIFICATE-----\n",
        ),
    }
}

pub(crate) fn corpus() -> Corpus {
    let mut c = Corpus::default();

    // Identity and the SignedProposal -> Proposal -> Header chain.
    let creator = c.add("msp.SerializedIdentity", creator());
    let nonce = seq(24, 1);
    let ccid = c.add(
        "protos.ChaincodeID",
        protos::ChaincodeId {
            path: "github.com/example/asset".into(),
            name: "asset".into(),
            version: "1.0".into(),
        },
    );
    let input = c.add(
        "protos.ChaincodeInput",
        protos::ChaincodeInput {
            args: vec![b("asset:put"), b("k1"), b("v1")],
            decorations: BTreeMap::from([("alpha".into(), b("a")), ("beta".into(), b("b"))]),
            is_init: true,
        },
    );
    let spec = c.add(
        "protos.ChaincodeSpec",
        protos::ChaincodeSpec {
            r#type: protos::chaincode_spec::Type::Node.into(),
            chaincode_id: Some(ccid),
            input: Some(input.clone()),
            timeout: 30,
        },
    );
    let cis = c.add(
        "protos.ChaincodeInvocationSpec",
        protos::ChaincodeInvocationSpec {
            chaincode_spec: Some(spec.clone()),
        },
    );
    let ccpp = c.add(
        "protos.ChaincodeProposalPayload",
        protos::ChaincodeProposalPayload {
            input: enc(&cis),
            transient_map: BTreeMap::from([("price".into(), b("42")), ("secret".into(), b("shh"))]),
        },
    );
    let ccpp_no_transient = protos::ChaincodeProposalPayload {
        input: enc(&cis),
        transient_map: BTreeMap::new(),
    };
    let hdr_ext = c.add(
        "protos.ChaincodeHeaderExtension",
        protos::ChaincodeHeaderExtension {
            chaincode_id: Some(protos::ChaincodeId {
                name: "asset".into(),
                ..Default::default()
            }),
        },
    );
    let channel_header = |tx_id: &str| common::ChannelHeader {
        r#type: common::HeaderType::EndorserTransaction as i32,
        version: 1,
        timestamp: Some(ts()),
        channel_id: CHANNEL.into(),
        tx_id: tx_id.into(),
        epoch: 7,
        extension: enc(&hdr_ext),
        tls_cert_hash: seq(32, 100),
    };
    c.add("common.ChannelHeader", channel_header(TXID));
    let sig_hdr = c.add(
        "common.SignatureHeader",
        common::SignatureHeader {
            creator: enc(&creator),
            nonce,
        },
    );
    let header = |tx_id: &str| common::Header {
        channel_header: enc(&channel_header(tx_id)),
        signature_header: enc(&sig_hdr),
    };
    c.add("common.Header", header(TXID));
    let proposal = c.add(
        "protos.Proposal",
        protos::Proposal {
            header: enc(&header(TXID)),
            payload: enc(&ccpp),
            extension: b("proposal-extension"),
        },
    );
    let signed_proposal = c.add(
        "protos.SignedProposal",
        protos::SignedProposal {
            proposal_bytes: enc(&proposal),
            signature: seq(70, 200),
        },
    );

    // Chaincode results.
    let response = c.add(
        "protos.Response",
        protos::Response {
            status: 200,
            message: "OK".into(),
            payload: b("ok"),
        },
    );
    let event = |tx_id: &str, name: &str| protos::ChaincodeEvent {
        chaincode_id: "asset".into(),
        tx_id: tx_id.into(),
        event_name: name.into(),
        payload: b(r#"{"key":"k1"}"#),
    };
    c.add("protos.ChaincodeEvent", event(TXID, "Put"));

    // Policies and principals.
    let role = c.add(
        "common.MSPRole",
        common::MspRole {
            msp_identifier: "Org1MSP".into(),
            role: common::msp_role::MspRoleType::Peer.into(),
        },
    );
    let ou = c.add(
        "common.OrganizationUnit",
        common::OrganizationUnit {
            msp_identifier: "Org1MSP".into(),
            organizational_unit_identifier: "client".into(),
            certifiers_identifier: seq(4, 9),
        },
    );
    let signed_by = |n| common::SignaturePolicy {
        r#type: Some(signature_policy::Type::SignedBy(n)),
    };
    let policy = c.add(
        "common.SignaturePolicyEnvelope",
        common::SignaturePolicyEnvelope {
            version: 0,
            rule: Some(common::SignaturePolicy {
                r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                    n: 1,
                    rules: vec![signed_by(0), signed_by(1)],
                })),
            }),
            identities: vec![
                common::MspPrincipal {
                    principal_classification: common::msp_principal::Classification::Role.into(),
                    principal: enc(&role),
                },
                common::MspPrincipal {
                    principal_classification:
                        common::msp_principal::Classification::OrganizationUnit.into(),
                    principal: enc(&ou),
                },
            ],
        },
    );
    let implicit = c.add(
        "common.ImplicitMetaPolicy",
        common::ImplicitMetaPolicy {
            sub_policy: "Endorsement".into(),
            rule: common::implicit_meta_policy::Rule::Majority.into(),
        },
    );
    c.add(
        "common.Policy",
        common::Policy {
            r#type: common::policy::PolicyType::ImplicitMeta as i32,
            value: enc(&implicit),
        },
    );
    c.add(
        "common.ApplicationPolicy/signature_policy",
        common::ApplicationPolicy {
            r#type: Some(common::application_policy::Type::SignaturePolicy(
                policy.clone(),
            )),
        },
    );
    c.add(
        "common.ApplicationPolicy/reference",
        common::ApplicationPolicy {
            r#type: Some(
                common::application_policy::Type::ChannelConfigPolicyReference(
                    "/Channel/Application/Endorsement".into(),
                ),
            ),
        },
    );

    shim_messages(
        &mut c,
        &input,
        &signed_proposal,
        &response,
        &event(TXID, "Put"),
    );

    // Read/write sets.
    let version = |block_num, tx_num| Some(kvrwset::Version { block_num, tx_num });
    let read = |key: &str, version| kvrwset::KvRead {
        key: key.into(),
        version,
    };
    let kv_rwset = c.add(
        "kvrwset.KVRWSet",
        kvrwset::KvrwSet {
            reads: vec![read("k1", version(3, 1)), read("missing", None)],
            range_queries_info: vec![
                kvrwset::RangeQueryInfo {
                    start_key: "\u{1}".into(),
                    end_key: String::new(),
                    itr_exhausted: true,
                    reads_info: Some(kvrwset::range_query_info::ReadsInfo::RawReads(
                        kvrwset::QueryReads {
                            kv_reads: vec![read("k1", version(3, 1)), read("k2", version(4, 0))],
                        },
                    )),
                },
                kvrwset::RangeQueryInfo {
                    start_key: "a".into(),
                    end_key: "z".into(),
                    itr_exhausted: false,
                    reads_info: Some(kvrwset::range_query_info::ReadsInfo::ReadsMerkleHashes(
                        kvrwset::QueryReadsMerkleSummary {
                            max_degree: 50,
                            max_level: 2,
                            max_level_hashes: vec![seq(32, 1), seq(32, 2)],
                        },
                    )),
                },
            ],
            writes: vec![
                kvrwset::KvWrite {
                    key: "k1".into(),
                    is_delete: false,
                    value: b("v1"),
                },
                kvrwset::KvWrite {
                    key: "k2".into(),
                    is_delete: true,
                    value: vec![],
                },
            ],
            metadata_writes: vec![kvrwset::KvMetadataWrite {
                key: "k1".into(),
                entries: vec![kvrwset::KvMetadataEntry {
                    name: "VALIDATION_PARAMETER".into(),
                    value: seq(3, 7),
                }],
            }],
        },
    );
    let hashed = c.add(
        "kvrwset.HashedRWSet",
        kvrwset::HashedRwSet {
            hashed_reads: vec![kvrwset::KvReadHash {
                key_hash: seq(32, 3),
                version: version(2, 5),
            }],
            hashed_writes: vec![kvrwset::KvWriteHash {
                key_hash: seq(32, 4),
                is_delete: true,
                value_hash: seq(32, 5),
                is_purge: true,
            }],
            metadata_writes: vec![kvrwset::KvMetadataWriteHash {
                key_hash: seq(32, 6),
                entries: vec![kvrwset::KvMetadataEntry {
                    name: "m".into(),
                    value: b("v"),
                }],
            }],
        },
    );
    let tx_rwset = c.add(
        "rwset.TxReadWriteSet",
        rwset::TxReadWriteSet {
            data_model: rwset::tx_read_write_set::DataModel::Kv.into(),
            ns_rwset: vec![rwset::NsReadWriteSet {
                namespace: "asset".into(),
                rwset: enc(&kv_rwset),
                collection_hashed_rwset: vec![rwset::CollectionHashedReadWriteSet {
                    collection_name: "secrets".into(),
                    hashed_rwset: enc(&hashed),
                    pvt_rwset_hash: seq(32, 8),
                }],
            }],
        },
    );
    let pvt = c.add(
        "rwset.TxPvtReadWriteSet",
        rwset::TxPvtReadWriteSet {
            data_model: 0,
            ns_pvt_rwset: vec![rwset::NsPvtReadWriteSet {
                namespace: "asset".into(),
                collection_pvt_rwset: vec![rwset::CollectionPvtReadWriteSet {
                    collection_name: "secrets".into(),
                    rwset: enc(&kv_rwset),
                }],
            }],
        },
    );

    // Endorsement: ChaincodeAction -> ProposalResponsePayload -> ProposalResponse.
    let endorsement = c.add(
        "protos.Endorsement",
        protos::Endorsement {
            endorser: enc(&creator),
            signature: seq(71, 9),
        },
    );
    let action = |tx_id: &str, name: &str| protos::ChaincodeAction {
        results: enc(&tx_rwset),
        events: enc(&event(tx_id, name)),
        response: Some(response.clone()),
        chaincode_id: Some(protos::ChaincodeId {
            name: "asset".into(),
            version: "1.0".into(),
            ..Default::default()
        }),
    };
    c.add("protos.ChaincodeAction", action(TXID, "Put"));
    let prp = |tx_id: &str, name: &str| protos::ProposalResponsePayload {
        proposal_hash: seq(32, 11),
        extension: enc(&action(tx_id, name)),
    };
    c.add("protos.ProposalResponsePayload", prp(TXID, "Put"));
    c.add(
        "protos.ProposalResponse",
        protos::ProposalResponse {
            version: 1,
            timestamp: Some(ts()),
            response: Some(response.clone()),
            payload: enc(&prp(TXID, "Put")),
            endorsement: Some(endorsement.clone()),
            interest: Some(protos::ChaincodeInterest {
                chaincodes: vec![protos::ChaincodeCall {
                    name: "asset".into(),
                    collection_names: strings(&["secrets", "more"]),
                    no_private_reads: true,
                    no_public_writes: false,
                    key_policies: vec![policy],
                    disregard_namespace_policy: true,
                }],
            }),
        },
    );

    // A block with two endorser transactions.
    let transaction = |tx_id: &str, name: &str| {
        let cap = protos::ChaincodeActionPayload {
            chaincode_proposal_payload: enc(&ccpp_no_transient),
            action: Some(protos::ChaincodeEndorsedAction {
                proposal_response_payload: enc(&prp(tx_id, name)),
                endorsements: vec![endorsement.clone()],
            }),
        };
        let tx = protos::Transaction {
            actions: vec![protos::TransactionAction {
                header: enc(&sig_hdr),
                payload: enc(&cap),
            }],
        };
        let payload = common::Payload {
            header: Some(header(tx_id)),
            data: enc(&tx),
        };
        let envelope = common::Envelope {
            payload: enc(&payload),
            signature: seq(72, 13),
        };
        (cap, tx, payload, envelope)
    };
    let (cap1, tx1, payload1, env1) = transaction(TXID, "Put");
    let (_, _, _, env2) = transaction(TXID2, "Transfer");
    c.add("protos.ChaincodeActionPayload", cap1);
    c.add("protos.Transaction", tx1);
    c.add("common.Payload", payload1);
    c.add("common.Envelope", env1.clone());
    let metadata_sigs = c.add(
        "common.Metadata",
        common::Metadata {
            value: b("orderer"),
            signatures: vec![common::MetadataSignature {
                signature_header: enc(&sig_hdr),
                signature: seq(8, 1),
                identifier_header: enc(&common::IdentifierHeader {
                    identifier: 1,
                    nonce: seq(4, 2),
                }),
            }],
        },
    );
    let last_config = common::Metadata {
        value: enc(&common::LastConfig { index: 2 }),
        signatures: vec![],
    };
    let block = c.add(
        "common.Block",
        common::Block {
            header: Some(common::BlockHeader {
                number: 5,
                previous_hash: seq(32, 20),
                data_hash: seq(32, 21),
            }),
            data: Some(common::BlockData {
                data: vec![enc(&env1), enc(&env2)],
            }),
            metadata: Some(common::BlockMetadata {
                metadata: vec![
                    enc(&metadata_sigs),
                    enc(&last_config),
                    vec![0, 11],
                    enc(&common::OrdererBlockMetadata {
                        last_config: Some(common::LastConfig { index: 2 }),
                        consenter_metadata: b("raft"),
                    }),
                    seq(32, 22),
                ],
            }),
        },
    );
    c.add(
        "protos.ProcessedTransaction",
        protos::ProcessedTransaction {
            transaction_envelope: Some(env2),
            validation_code: protos::TxValidationCode::MvccReadConflict as i32,
        },
    );
    c.add(
        "common.BlockchainInfo",
        common::BlockchainInfo {
            height: 6,
            current_block_hash: seq(32, 30),
            previous_block_hash: seq(32, 31),
            bootstrapping_snapshot_info: Some(common::BootstrappingSnapshotInfo {
                last_block_in_snapshot: 3,
            }),
        },
    );
    c.add(
        "protos.ChaincodeDeploymentSpec",
        protos::ChaincodeDeploymentSpec {
            chaincode_spec: Some(spec),
            code_package: seq(16, 40),
        },
    );

    deliver_messages(&mut c, &sig_hdr, &block, &pvt);
    gateway_messages(&mut c, &creator, &signed_proposal, &env1, &response, event);
    c
}

fn shim_messages(
    c: &mut Corpus,
    input: &protos::ChaincodeInput,
    signed_proposal: &protos::SignedProposal,
    response: &protos::Response,
    put_event: &protos::ChaincodeEvent,
) {
    let query_metadata = c.add(
        "protos.QueryMetadata",
        protos::QueryMetadata {
            page_size: 2,
            bookmark: "k2".into(),
        },
    );
    let kv = |key: &str, value: &str| queryresult::Kv {
        namespace: "asset".into(),
        key: key.into(),
        value: b(value),
    };
    c.add("queryresult.KV", kv("k1", "v1"));
    let key_mod = |tx_id: &str, value: &str, is_delete| queryresult::KeyModification {
        tx_id: tx_id.into(),
        value: b(value),
        timestamp: Some(ts()),
        is_delete,
    };
    c.add("queryresult.KeyModification", key_mod(TXID, "v1", true));
    let response_metadata = c.add(
        "protos.QueryResponseMetadata",
        protos::QueryResponseMetadata {
            fetched_records_count: 2,
            bookmark: "k3".into(),
        },
    );
    let result = |bytes| protos::QueryResultBytes {
        result_bytes: bytes,
    };
    let range_response = c.add(
        "protos.QueryResponse",
        protos::QueryResponse {
            results: vec![result(enc(&kv("k1", "v1"))), result(enc(&kv("k2", "v2")))],
            has_more: true,
            id: RANGE_ID.into(),
            metadata: enc(&response_metadata),
        },
    );
    let history_response = protos::QueryResponse {
        results: vec![
            result(enc(&key_mod(TXID, "v1", false))),
            result(enc(&key_mod(TXID2, "", true))),
        ],
        has_more: false,
        id: HISTORY_ID.into(),
        metadata: vec![],
    };
    let state_metadata = c.add(
        "protos.StateMetadata",
        protos::StateMetadata {
            metakey: "VALIDATION_PARAMETER".into(),
            value: seq(5, 1),
        },
    );
    let state_metadata_result = c.add(
        "protos.StateMetadataResult",
        protos::StateMetadataResult {
            entries: vec![
                state_metadata.clone(),
                protos::StateMetadata {
                    metakey: "OTHER".into(),
                    value: b("x"),
                },
            ],
        },
    );
    let multiple_result = c.add(
        "protos.GetStateMultipleResult",
        protos::GetStateMultipleResult {
            values: vec![b("v1"), vec![], b("v3")],
        },
    );

    let register = c.add(
        "protos.ChaincodeID/register",
        protos::ChaincodeId {
            name: PKG.into(),
            ..Default::default()
        },
    );
    let ready = c.add(
        "protos.ChaincodeAdditionalParams",
        protos::ChaincodeAdditionalParams {
            use_write_batch: true,
            max_size_write_batch: 1000,
            use_get_multiple_keys: true,
            max_size_get_multiple_keys: 200,
        },
    );
    let get_state = c.add(
        "protos.GetState",
        protos::GetState {
            key: "k1".into(),
            collection: "col".into(),
        },
    );
    let put_state = c.add(
        "protos.PutState",
        protos::PutState {
            key: "k1".into(),
            value: b("v1"),
            collection: "col".into(),
        },
    );
    let del_state = c.add(
        "protos.DelState",
        protos::DelState {
            key: "k1".into(),
            collection: "col".into(),
        },
    );
    let by_range = c.add(
        "protos.GetStateByRange",
        protos::GetStateByRange {
            start_key: "\u{1}".into(),
            end_key: "k9".into(),
            collection: "col".into(),
            metadata: enc(&query_metadata),
        },
    );
    let query_result = c.add(
        "protos.GetQueryResult",
        protos::GetQueryResult {
            query: r#"{"selector":{"owner":"Tom"}}"#.into(),
            collection: "col".into(),
            metadata: enc(&query_metadata),
        },
    );
    let next = c.add(
        "protos.QueryStateNext",
        protos::QueryStateNext {
            id: RANGE_ID.into(),
        },
    );
    let close = c.add(
        "protos.QueryStateClose",
        protos::QueryStateClose {
            id: HISTORY_ID.into(),
        },
    );
    let history = c.add(
        "protos.GetHistoryForKey",
        protos::GetHistoryForKey { key: "k1".into() },
    );
    let get_metadata = c.add(
        "protos.GetStateMetadata",
        protos::GetStateMetadata {
            key: "k1".into(),
            collection: "col".into(),
        },
    );
    let put_metadata = c.add(
        "protos.PutStateMetadata",
        protos::PutStateMetadata {
            key: "k1".into(),
            collection: "col".into(),
            metadata: Some(state_metadata.clone()),
        },
    );
    let purge = c.add(
        "protos.PurgePrivateState",
        protos::PurgePrivateState {
            key: "k1".into(),
            collection: "secrets".into(),
        },
    );
    let record = |key: &str, value: &str, collection: &str, metadata, ty| protos::WriteRecord {
        key: key.into(),
        value: b(value),
        collection: collection.into(),
        metadata,
        r#type: ty as i32,
    };
    use protos::write_record::Type as W;
    let write_batch = c.add(
        "protos.WriteBatchState",
        protos::WriteBatchState {
            rec: vec![
                record("k1", "v1", "col", Some(state_metadata.clone()), W::PutState),
                record("k2", "", "", None, W::DelState),
                record("k3", "", "", Some(state_metadata), W::PutStateMetadata),
                record("k4", "", "secrets", None, W::PurgePrivateData),
            ],
        },
    );
    let multiple = c.add(
        "protos.GetStateMultiple",
        protos::GetStateMultiple {
            keys: strings(&["k1", "k2", "k3"]),
            collection: "col".into(),
        },
    );

    let shim = |ty: Type, payload: Vec<u8>| protos::ChaincodeMessage {
        r#type: ty.into(),
        payload,
        txid: TXID.into(),
        channel_id: CHANNEL.into(),
        ..Default::default()
    };
    let completed = |response: &protos::Response| shim(Type::Completed, enc(response));
    let messages = [
        shim(Type::Undefined, vec![]),
        protos::ChaincodeMessage {
            txid: String::new(),
            channel_id: String::new(),
            ..shim(Type::Register, enc(&register))
        },
        shim(Type::Registered, vec![]),
        protos::ChaincodeMessage {
            proposal: Some(signed_proposal.clone()),
            ..shim(Type::Init, enc(input))
        },
        shim(Type::Ready, enc(&ready)),
        protos::ChaincodeMessage {
            proposal: Some(signed_proposal.clone()),
            timestamp: Some(ts()),
            ..shim(
                Type::Transaction,
                enc(&protos::ChaincodeInput {
                    args: vec![b("asset:get"), b("k2")],
                    ..Default::default()
                }),
            )
        },
        protos::ChaincodeMessage {
            chaincode_event: Some(put_event.clone()),
            ..completed(response)
        },
        shim(
            Type::Error,
            b(&format!("GET_STATE failed: transaction ID: {TXID}: boom")),
        ),
        shim(Type::GetState, enc(&get_state)),
        shim(Type::PutState, enc(&put_state)),
        shim(Type::DelState, enc(&del_state)),
        shim(
            Type::InvokeChaincode,
            enc(&protos::ChaincodeSpec {
                chaincode_id: Some(protos::ChaincodeId {
                    name: "other/mychannel".into(),
                    ..Default::default()
                }),
                input: Some(protos::ChaincodeInput {
                    args: vec![b("get"), b("k1")],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        ),
        shim(Type::Response, enc(&range_response)),
        shim(Type::GetStateByRange, enc(&by_range)),
        shim(Type::GetQueryResult, enc(&query_result)),
        shim(Type::QueryStateNext, enc(&next)),
        shim(Type::QueryStateClose, enc(&close)),
        shim(Type::Keepalive, vec![]),
        shim(Type::GetHistoryForKey, enc(&history)),
        shim(Type::GetStateMetadata, enc(&get_metadata)),
        shim(Type::PutStateMetadata, enc(&put_metadata)),
        shim(
            Type::GetPrivateDataHash,
            enc(&protos::GetState {
                key: "k2".into(),
                collection: "secrets".into(),
            }),
        ),
        shim(Type::PurgePrivateData, enc(&purge)),
        shim(Type::WriteBatchState, enc(&write_batch)),
        shim(Type::GetStateMultiple, enc(&multiple)),
    ];
    for message in messages {
        let name = format!("protos.ChaincodeMessage/{}", message.r#type().as_str_name());
        c.add(&name, message);
    }
    let responses = [
        ("history", enc(&history_response)),
        ("metadata", enc(&state_metadata_result)),
        ("multiple", enc(&multiple_result)),
        ("invoke", enc(&completed(response))),
    ];
    for (suffix, payload) in responses {
        c.add(
            &format!("protos.ChaincodeMessage/RESPONSE/{suffix}"),
            shim(Type::Response, payload),
        );
    }
}

fn deliver_messages(
    c: &mut Corpus,
    sig_hdr: &common::SignatureHeader,
    block: &common::Block,
    pvt: &rwset::TxPvtReadWriteSet,
) {
    use orderer::seek_position::Type as Seek;
    let seek = |t: Seek| Some(orderer::SeekPosition { r#type: Some(t) });
    let seek_info = c.add(
        "orderer.SeekInfo",
        orderer::SeekInfo {
            start: seek(Seek::Specified(orderer::SeekSpecified { number: 3 })),
            stop: seek(Seek::Specified(orderer::SeekSpecified {
                number: (1 << 53) - 1,
            })),
            behavior: orderer::seek_info::SeekBehavior::FailIfNotReady.into(),
            error_response: orderer::seek_info::SeekErrorResponse::BestEffort.into(),
            content_type: orderer::seek_info::SeekContentType::HeaderWithSig.into(),
        },
    );
    c.add(
        "orderer.SeekInfo/newest",
        orderer::SeekInfo {
            start: seek(Seek::NextCommit(orderer::SeekNextCommit {})),
            stop: seek(Seek::Newest(orderer::SeekNewest {})),
            ..Default::default()
        },
    );
    let seek_header = common::ChannelHeader {
        r#type: common::HeaderType::DeliverSeekInfo as i32,
        timestamp: Some(ts()),
        channel_id: CHANNEL.into(),
        tx_id: TXID.into(),
        ..Default::default()
    };
    c.add(
        "common.Envelope/seek",
        common::Envelope {
            payload: enc(&common::Payload {
                header: Some(common::Header {
                    channel_header: enc(&seek_header),
                    signature_header: enc(sig_hdr),
                }),
                data: enc(&seek_info),
            }),
            signature: seq(70, 3),
        },
    );
    let filtered_tx =
        |txid: &str, code: protos::TxValidationCode, actions| protos::FilteredTransaction {
            txid: txid.into(),
            r#type: common::HeaderType::EndorserTransaction.into(),
            tx_validation_code: code.into(),
            data: Some(protos::filtered_transaction::Data::TransactionActions(
                protos::FilteredTransactionActions {
                    chaincode_actions: actions,
                },
            )),
        };
    let filtered_block = c.add(
        "protos.FilteredBlock",
        protos::FilteredBlock {
            channel_id: CHANNEL.into(),
            number: 5,
            filtered_transactions: vec![
                filtered_tx(
                    TXID,
                    protos::TxValidationCode::Valid,
                    vec![protos::FilteredChaincodeAction {
                        chaincode_event: Some(protos::ChaincodeEvent {
                            chaincode_id: "asset".into(),
                            tx_id: TXID.into(),
                            event_name: "Put".into(),
                            payload: vec![],
                        }),
                    }],
                ),
                filtered_tx(TXID2, protos::TxValidationCode::MvccReadConflict, vec![]),
            ],
        },
    );
    use protos::deliver_response::Type as D;
    let deliver = |t: D| protos::DeliverResponse { r#type: Some(t) };
    c.add(
        "protos.DeliverResponse/filtered_block",
        deliver(D::FilteredBlock(filtered_block)),
    );
    c.add(
        "protos.DeliverResponse/block",
        deliver(D::Block(block.clone())),
    );
    c.add(
        "protos.DeliverResponse/status",
        deliver(D::Status(common::Status::NotFound.into())),
    );
    c.add(
        "protos.DeliverResponse/block_and_private_data",
        deliver(D::BlockAndPrivateData(protos::BlockAndPrivateData {
            block: Some(block.clone()),
            private_data_map: BTreeMap::from([(1, pvt.clone()), (2, pvt.clone())]),
        })),
    );
    c.add_values_only(
        "protos.BlockAndPrivateData/tx_index_0",
        protos::BlockAndPrivateData {
            block: None,
            private_data_map: BTreeMap::from([(
                0,
                rwset::TxPvtReadWriteSet {
                    data_model: 0,
                    ns_pvt_rwset: vec![rwset::NsPvtReadWriteSet {
                        namespace: "asset".into(),
                        collection_pvt_rwset: vec![],
                    }],
                },
            )]),
        },
    );
    c.add_values_only(
        "protos.ChaincodeInput/empty_decoration",
        protos::ChaincodeInput {
            decorations: BTreeMap::from([("k".into(), vec![])]),
            ..Default::default()
        },
    );
    use orderer::deliver_response::Type as O;
    c.add(
        "orderer.DeliverResponse/status",
        orderer::DeliverResponse {
            r#type: Some(O::Status(common::Status::Success.into())),
        },
    );
    c.add(
        "orderer.DeliverResponse/block",
        orderer::DeliverResponse {
            r#type: Some(O::Block(block.clone())),
        },
    );
    c.add(
        "orderer.BroadcastResponse",
        orderer::BroadcastResponse {
            status: common::Status::ServiceUnavailable.into(),
            info: "no leader".into(),
        },
    );
}

fn gateway_messages(
    c: &mut Corpus,
    creator: &msp::SerializedIdentity,
    signed_proposal: &protos::SignedProposal,
    envelope: &common::Envelope,
    response: &protos::Response,
    event: impl Fn(&str, &str) -> protos::ChaincodeEvent,
) {
    let orgs = strings(&["Org1MSP", "Org2MSP"]);
    c.add(
        "gateway.EndorseRequest",
        gateway::EndorseRequest {
            transaction_id: TXID.into(),
            channel_id: CHANNEL.into(),
            proposed_transaction: Some(signed_proposal.clone()),
            endorsing_organizations: orgs.clone(),
        },
    );
    c.add(
        "gateway.EndorseResponse",
        gateway::EndorseResponse {
            prepared_transaction: Some(envelope.clone()),
        },
    );
    c.add(
        "gateway.SubmitRequest",
        gateway::SubmitRequest {
            transaction_id: TXID.into(),
            channel_id: CHANNEL.into(),
            prepared_transaction: Some(envelope.clone()),
        },
    );
    c.add("gateway.SubmitResponse", gateway::SubmitResponse {});
    let status_request = c.add(
        "gateway.CommitStatusRequest",
        gateway::CommitStatusRequest {
            transaction_id: TXID.into(),
            channel_id: CHANNEL.into(),
            identity: enc(creator),
        },
    );
    c.add(
        "gateway.SignedCommitStatusRequest",
        gateway::SignedCommitStatusRequest {
            request: enc(&status_request),
            signature: seq(70, 5),
        },
    );
    c.add(
        "gateway.CommitStatusResponse",
        gateway::CommitStatusResponse {
            result: protos::TxValidationCode::MvccReadConflict.into(),
            block_number: 9,
        },
    );
    c.add(
        "gateway.EvaluateRequest",
        gateway::EvaluateRequest {
            transaction_id: TXID.into(),
            channel_id: CHANNEL.into(),
            proposed_transaction: Some(signed_proposal.clone()),
            target_organizations: strings(&["Org1MSP"]),
        },
    );
    c.add(
        "gateway.EvaluateResponse",
        gateway::EvaluateResponse {
            result: Some(response.clone()),
        },
    );
    let events_request = c.add(
        "gateway.ChaincodeEventsRequest",
        gateway::ChaincodeEventsRequest {
            channel_id: CHANNEL.into(),
            chaincode_id: "asset".into(),
            identity: enc(creator),
            start_position: Some(orderer::SeekPosition {
                r#type: Some(orderer::seek_position::Type::Oldest(orderer::SeekOldest {})),
            }),
            after_transaction_id: TXID.into(),
        },
    );
    c.add(
        "gateway.SignedChaincodeEventsRequest",
        gateway::SignedChaincodeEventsRequest {
            request: enc(&events_request),
            signature: seq(70, 6),
        },
    );
    c.add(
        "gateway.ChaincodeEventsResponse",
        gateway::ChaincodeEventsResponse {
            events: vec![event(TXID, "Put"), event(TXID2, "Transfer")],
            block_number: 5,
        },
    );
    c.add(
        "gateway.ErrorDetail",
        gateway::ErrorDetail {
            address: "peer0.org1.example.com:7051".into(),
            msp_id: "Org1MSP".into(),
            message: "chaincode response 500, boom".into(),
        },
    );
    c.add(
        "gateway.ProposedTransaction",
        gateway::ProposedTransaction {
            transaction_id: TXID.into(),
            proposal: Some(signed_proposal.clone()),
            endorsing_organizations: orgs,
        },
    );
    c.add(
        "gateway.PreparedTransaction",
        gateway::PreparedTransaction {
            transaction_id: TXID.into(),
            envelope: Some(envelope.clone()),
        },
    );
}
