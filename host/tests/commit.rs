//! The commit pipeline: blocks made and committed by a channel ledger, each validation
//! code produced by a crafted transaction, recovery from damaged block files and state,
//! commit notifications. Transactions are real: proposals signed by a client of an MSP
//! whose CA is in the genesis block, simulated against the ledger's state, endorsed by a
//! peer identity, assembled and signed as Fabric's clients do.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cchost::ledger::blockfile::{self, StoredBlock};
use cchost::ledger::blocks::{self, BatchConfig, GenesisConfig, OrgConfig};
use cchost::ledger::commit::{ChannelLedger, CommittedBlock, LedgerOptions, OpenReport};
use cchost::ledger::policy;
use cchost::ledger::validation::ChaincodeDefinition;
use cchost::ledger::{ReadLimit, RedbStore, StateStore, TxSimulator};
use cchost::msp::{DevCa, Role};
use cchost::proposal::{BuiltProposal, DevIdentity, ProposalBuilder};
use cchost::transaction::{self, Simulation};
use cchost_proto::common::{ChannelHeader, Envelope, Payload};
use cchost_proto::protos::{
    ChaincodeId, Proposal, Response, Transaction, TxValidationCode as Code,
};
use cchost_proto::rwset::{NsReadWriteSet, TxReadWriteSet};
use prost::Message;
use sha2::{Digest, Sha256};

const CHANNEL: &str = "mychannel";

/// A channel of two organisations, its ledger, and identities to transact with.
struct Net {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    org1: DevCa,
    client: DevIdentity,
    peer1: DevIdentity,
    peer2: DevIdentity,
    orderer: DevIdentity,
    state: Arc<RedbStore>,
    slot: Option<Arc<ChannelLedger>>,
}

fn definition(policy: &str) -> ChaincodeDefinition {
    ChaincodeDefinition {
        version: "1.0".into(),
        endorsement: policy::signature_policy(policy::parse(policy).unwrap()),
    }
}

impl Net {
    fn new() -> Self {
        let org1 = DevCa::new("Org1MSP", "Org1").unwrap();
        let org2 = DevCa::new("Org2MSP", "Org2").unwrap();
        let genesis = blocks::genesis_block(&GenesisConfig {
            channel: CHANNEL.into(),
            orgs: [(&org1, "Org1MSP"), (&org2, "Org2MSP")]
                .iter()
                .map(|(ca, msp)| OrgConfig {
                    msp_id: (*msp).into(),
                    root_certs: vec![ca.cert_pem().to_owned()],
                    endorsement: format!("OR('{msp}.peer')"),
                })
                .collect(),
            batch: BatchConfig::default(),
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let state = Arc::new(RedbStore::open(path.join("state.redb")).unwrap());
        let (ledger, _) = open(&path, &state, Some(&genesis));
        Self {
            client: org1.issue(Role::Client, "User1").unwrap(),
            peer1: org1.issue(Role::Peer, "peer0.org1").unwrap(),
            peer2: org2.issue(Role::Peer, "peer0.org2").unwrap(),
            orderer: org1.issue(Role::Orderer, "orderer.org1").unwrap(),
            org1,
            _dir: dir,
            dir: path,
            state,
            slot: Some(Arc::new(ledger)),
        }
    }

    fn ledger(&self) -> &ChannelLedger {
        self.slot.as_deref().unwrap()
    }

    /// Closes the ledger (its files and the state database stay).
    fn close(&mut self) {
        self.slot = None;
    }

    /// Swaps the state database file for `path`'s copy, with the ledger closed.
    fn replace_state(&mut self, copy: &Path) {
        self.close();
        let state_path = self.dir.join("state.redb");
        self.state = Arc::new(RedbStore::in_memory().unwrap());
        std::fs::copy(copy, &state_path).unwrap();
        self.state = Arc::new(RedbStore::open(&state_path).unwrap());
    }

    /// Closes and reopens the ledger over the same files.
    fn reopen(&mut self) -> OpenReport {
        self.close();
        let (ledger, report) = open(&self.dir, &self.state, None);
        self.slot = Some(Arc::new(ledger));
        report
    }

    /// A proposal to `chaincode` and what simulating `body` against committed state
    /// produced for it.
    fn tx(
        &self,
        chaincode: &str,
        body: impl FnOnce(&mut TxSimulator),
    ) -> (BuiltProposal, Simulation) {
        self.tx_on(CHANNEL, chaincode, body)
    }

    fn tx_on(
        &self,
        channel: &str,
        chaincode: &str,
        body: impl FnOnce(&mut TxSimulator),
    ) -> (BuiltProposal, Simulation) {
        let proposal = ProposalBuilder::new(channel, chaincode)
            .args(["invoke"])
            .build(&self.client)
            .unwrap();
        let mut simulator =
            TxSimulator::new(self.state.snapshot(CHANNEL).unwrap(), proposal.txid.clone());
        body(&mut simulator);
        let simulation = Simulation {
            chaincode_id: ChaincodeId {
                name: chaincode.into(),
                version: "1.0".into(),
                path: String::new(),
            },
            rwset: simulator.read_write_set(),
            response: Response {
                status: 200,
                message: String::new(),
                payload: b"ok".to_vec(),
            },
            event: None,
        };
        (proposal, simulation)
    }

    /// The signed transaction envelope of a simulated proposal endorsed by `endorsers`.
    fn envelope(&self, tx: &(BuiltProposal, Simulation), endorsers: &[&DevIdentity]) -> Vec<u8> {
        let proposal = Proposal::decode(tx.0.signed_proposal.proposal_bytes.as_slice()).unwrap();
        let responses: Vec<_> = endorsers
            .iter()
            .map(|e| transaction::endorse(&proposal, &tx.1, e).unwrap())
            .collect();
        transaction::assemble(&proposal, &responses, &self.client)
            .unwrap()
            .encode_to_vec()
    }

    /// Endorsed by Org1's peer.
    fn endorsed(&self, tx: &(BuiltProposal, Simulation)) -> Vec<u8> {
        self.envelope(tx, &[&self.peer1])
    }

    fn commit(&self, envelopes: Vec<Vec<u8>>) -> Arc<CommittedBlock> {
        let block = blocks::make_block(
            self.ledger().height(),
            &self.ledger().last_hash(),
            envelopes,
            0,
            &self.orderer,
        );
        self.ledger().commit(block).unwrap()
    }

    /// Commits one transaction alone and returns its code.
    fn code_of(&self, envelope: Vec<u8>) -> Code {
        self.commit(vec![envelope]).codes[0]
    }

    fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.state
            .snapshot(CHANNEL)
            .unwrap()
            .get("asset", key)
            .unwrap()
            .map(|v| v.value)
    }
}

fn open(
    dir: &Path,
    state: &Arc<RedbStore>,
    genesis: Option<&StoredBlock>,
) -> (ChannelLedger, OpenReport) {
    let state: Arc<dyn StateStore> = state.clone();
    let (ledger, report) =
        ChannelLedger::open(dir, state, genesis, &LedgerOptions::default()).unwrap();
    ledger.define_chaincode("asset", definition("OR('Org1MSP.peer')"));
    ledger.define_chaincode("org2only", definition("OR('Org2MSP.peer')"));
    ledger.define_chaincode(
        "majority",
        ChaincodeDefinition {
            version: "1.0".into(),
            endorsement: policy::default_endorsement(),
        },
    );
    (ledger, report)
}

fn put(key: &'static str, value: &'static str) -> impl FnOnce(&mut TxSimulator) {
    move |sim| {
        sim.put_state("asset", key, value.as_bytes().to_vec())
            .unwrap()
    }
}

fn read_then_put(key: &'static str, value: &'static str) -> impl FnOnce(&mut TxSimulator) {
    move |sim| {
        sim.get_state("asset", key).unwrap();
        sim.put_state("asset", key, value.as_bytes().to_vec())
            .unwrap();
    }
}

/// Decodes an envelope's payload, lets `change` alter it, and signs it again as the
/// client.
fn altered(net: &Net, envelope: &[u8], change: impl FnOnce(&mut Payload)) -> Vec<u8> {
    let envelope = Envelope::decode(envelope).unwrap();
    let mut payload = Payload::decode(envelope.payload.as_slice()).unwrap();
    change(&mut payload);
    let payload = payload.encode_to_vec();
    Envelope {
        signature: net.client.sign(&payload),
        payload,
    }
    .encode_to_vec()
}

fn change_channel_header(payload: &mut Payload, change: impl FnOnce(&mut ChannelHeader)) {
    let header = payload.header.as_mut().unwrap();
    let mut channel_header = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
    change(&mut channel_header);
    header.channel_header = channel_header.encode_to_vec();
}

/// Every state entry of the `asset` namespace: key, value, version.
fn dump(state: &dyn StateStore) -> Vec<(String, Vec<u8>, (u64, u64))> {
    state
        .snapshot(CHANNEL)
        .unwrap()
        .range("asset", "", "", ReadLimit::count(usize::MAX))
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.value, (v.version.block, v.version.tx)))
        .collect()
}

/// State as a replay of the block files from genesis gives it.
fn replayed(dir: &Path) -> Vec<(String, Vec<u8>, (u64, u64))> {
    let state = RedbStore::in_memory().unwrap();
    state.create_channel(CHANNEL).unwrap();
    for block in blockfile::read_dir(dir).unwrap() {
        state
            .commit(CHANNEL, &cchost::ledger::commit::valid_writes(&block))
            .unwrap();
    }
    dump(&state)
}

#[test]
fn a_valid_transaction_is_committed_and_its_writes_read_back() {
    let net = Net::new();
    let committed = net.commit(vec![net.endorsed(&net.tx("asset", put("a", "1")))]);
    assert_eq!(committed.codes, [Code::Valid]);
    assert_eq!(committed.block.number, 1);
    assert_eq!(net.value("a").as_deref(), Some(&b"1"[..]));
    let status = net
        .ledger()
        .tx_status(&committed.txids[0])
        .unwrap()
        .unwrap();
    assert_eq!((status.code, status.block), (Code::Valid, 1));
}

#[test]
fn the_chain_verifies_and_its_header_hashes_match_an_independent_recomputation() {
    let net = Net::new();
    for i in 0..3 {
        let key: &'static str = ["a", "b", "c"][i];
        net.commit(vec![net.endorsed(&net.tx("asset", put(key, "v")))]);
    }
    let blocks = blockfile::read_dir(&net.dir).unwrap();
    assert_eq!(blocks.len(), 4);
    for pair in blocks.windows(2) {
        assert_eq!(
            pair[1].previous_hash,
            common::independent_header_hash(&pair[0])
        );
        assert_eq!(
            pair[1].data_hash,
            Sha256::digest(pair[1].data.concat()).to_vec()
        );
    }
    let checks = blockfile::verify(&blocks);
    assert!(checks.iter().all(|c| c.valid), "{checks:?}");
    // Blocks 1.. carry a commit hash (block 0, the configuration, does not).
    assert!(blockfile::stored_commit_hash(&blocks[0]).is_none());
    assert!(
        blocks[1..]
            .iter()
            .all(|b| blockfile::stored_commit_hash(b).is_some())
    );
    assert_eq!(blocks[0].metadata[2], [0]);
    assert_eq!(
        net.ledger().last_hash(),
        common::independent_header_hash(&blocks[3])
    );
}

#[test]
fn blocks_carry_the_orderers_signature_over_metadata_value_signature_header_and_header() {
    use cchost_proto::common::{Metadata, SignatureHeader};
    let net = Net::new();
    let committed = net.commit(vec![net.endorsed(&net.tx("asset", put("a", "1")))]);
    let block = &committed.block;
    let metadata = Metadata::decode(block.metadata[0].as_slice()).unwrap();
    let signature = &metadata.signatures[0];
    let header = SignatureHeader::decode(signature.signature_header.as_slice()).unwrap();
    assert_eq!(header.creator, net.orderer.creator());
    let signed = [
        metadata.value.as_slice(),
        &signature.signature_header,
        &blockfile::header_bytes(block.number, &block.previous_hash, &block.data_hash),
    ]
    .concat();
    let msps = cchost::msp::MspManager::new([net.org1.msp().unwrap()]);
    let orderer = msps.deserialize(&net.orderer.creator()).unwrap();
    orderer.verify(&signed, &signature.signature).unwrap();
    assert!(
        orderer
            .verify(b"something else", &signature.signature)
            .is_err()
    );
}

#[test]
fn the_genesis_block_reads_back_as_the_channels_configuration() {
    let net = Net::new();
    let genesis = net.ledger().genesis();
    assert_eq!(genesis.channel, CHANNEL);
    assert_eq!(
        genesis
            .msps
            .msps()
            .map(|m| m.id().to_owned())
            .collect::<Vec<_>>(),
        ["Org1MSP", "Org2MSP"]
    );
    assert_eq!(genesis.batch, BatchConfig::default());
    assert_eq!(
        genesis.policies.org_endorsement["Org1MSP"],
        policy::parse("OR('Org1MSP.peer')").unwrap()
    );
}

#[test]
fn two_conflicting_transactions_in_one_block_first_valid_second_mvcc_read_conflict() {
    let net = Net::new();
    net.commit(vec![net.endorsed(&net.tx("asset", put("a", "0")))]);
    let first = net.endorsed(&net.tx("asset", read_then_put("a", "1")));
    let second = net.endorsed(&net.tx("asset", read_then_put("a", "2")));
    let committed = net.commit(vec![first, second]);
    assert_eq!(committed.codes, [Code::Valid, Code::MvccReadConflict]);
    assert_eq!(net.value("a").as_deref(), Some(&b"1"[..]));
}

#[test]
fn a_read_of_a_key_committed_since_is_an_mvcc_read_conflict() {
    let net = Net::new();
    net.commit(vec![net.endorsed(&net.tx("asset", put("a", "0")))]);
    let stale = net.endorsed(&net.tx("asset", read_then_put("a", "stale")));
    net.commit(vec![net.endorsed(&net.tx("asset", put("a", "1")))]);
    assert_eq!(net.code_of(stale), Code::MvccReadConflict);
    assert_eq!(net.value("a").as_deref(), Some(&b"1"[..]));
}

#[test]
fn a_read_of_an_absent_key_created_since_is_an_mvcc_read_conflict() {
    let net = Net::new();
    let reads_absent = net.endorsed(&net.tx("asset", read_then_put("new", "mine")));
    net.commit(vec![net.endorsed(&net.tx("asset", put("new", "theirs")))]);
    assert_eq!(net.code_of(reads_absent), Code::MvccReadConflict);
    assert_eq!(net.value("new").as_deref(), Some(&b"theirs"[..]));
}

/// Counts keys in `[start, end)` with a range query, then writes the count.
fn count_range(sim: &mut TxSimulator, start: &str, end: &str) {
    let id = sim.begin_range_query("asset", start, end).unwrap();
    let results = sim
        .range("asset", start, end, ReadLimit::count(1000))
        .unwrap();
    for (key, value) in &results {
        sim.record_range_read(id, key, value.version).unwrap();
    }
    sim.set_range_exhausted(id);
    sim.put_state("asset", "summary", results.len().to_string().into_bytes())
        .unwrap();
}

fn range_then_put(sim: &mut TxSimulator) {
    count_range(sim, "k1", "k9");
}

#[test]
fn a_range_query_followed_by_an_insert_into_its_range_is_a_phantom_read_conflict() {
    let net = Net::new();
    net.commit(vec![net.endorsed(&net.tx("asset", put("k2", "x")))]);
    let ranged = net.endorsed(&net.tx("asset", range_then_put));
    net.commit(vec![net.endorsed(&net.tx("asset", put("k5", "inserted")))]);
    assert_eq!(net.code_of(ranged), Code::PhantomReadConflict);
    assert_eq!(net.value("summary"), None);
}

#[test]
fn an_insert_into_a_range_by_an_earlier_transaction_of_the_block_is_a_phantom_read_conflict() {
    let net = Net::new();
    let ranged = net.endorsed(&net.tx("asset", range_then_put));
    let insert = net.endorsed(&net.tx("asset", put("k3", "inserted")));
    let committed = net.commit(vec![insert, ranged]);
    assert_eq!(committed.codes, [Code::Valid, Code::PhantomReadConflict]);
}

#[test]
fn a_range_query_whose_range_is_unchanged_stays_valid() {
    let net = Net::new();
    net.commit(vec![net.endorsed(&net.tx("asset", put("k2", "x")))]);
    let ranged = net.endorsed(&net.tx("asset", range_then_put));
    net.commit(vec![net.endorsed(&net.tx("asset", put("z", "outside")))]);
    assert_eq!(net.code_of(ranged), Code::Valid);
}

#[test]
fn a_range_query_over_more_than_fifty_results_is_checked_by_its_merkle_summary() {
    let net = Net::new();
    let many: Vec<Vec<u8>> = (0..120)
        .map(|i| {
            net.endorsed(&net.tx("asset", move |sim| {
                sim.put_state("asset", &format!("k{i:03}"), b"v".to_vec())
                    .unwrap();
            }))
        })
        .collect();
    assert!(net.commit(many).codes.iter().all(|c| *c == Code::Valid));
    let count_all = |sim: &mut TxSimulator| count_range(sim, "k000", "k999");
    let unchanged = net.endorsed(&net.tx("asset", count_all));
    let phantom = net.endorsed(&net.tx("asset", count_all));
    assert_eq!(net.code_of(unchanged), Code::Valid);
    net.commit(vec![net.endorsed(&net.tx("asset", |sim| {
        sim.del_state("asset", "k050").unwrap();
    }))]);
    assert_eq!(net.code_of(phantom), Code::PhantomReadConflict);
    assert_eq!(net.value("summary").as_deref(), Some(&b"120"[..]));
}

#[test]
fn an_empty_envelope_is_nil_envelope() {
    let net = Net::new();
    assert_eq!(net.code_of(Vec::new()), Code::NilEnvelope);
}

#[test]
fn bytes_that_are_not_an_envelope_are_invalid_other_reason() {
    let net = Net::new();
    assert_eq!(net.code_of(vec![0xff; 9]), Code::InvalidOtherReason);
}

#[test]
fn a_payload_that_does_not_decode_is_bad_payload() {
    let net = Net::new();
    let envelope = Envelope {
        payload: vec![0xff; 7],
        signature: net.client.sign(&[0xff; 7]),
    };
    assert_eq!(net.code_of(envelope.encode_to_vec()), Code::BadPayload);
}

#[test]
fn a_non_zero_epoch_is_bad_common_header() {
    let net = Net::new();
    let good = net.endorsed(&net.tx("asset", put("a", "1")));
    let bad = altered(&net, &good, |p| change_channel_header(p, |h| h.epoch = 1));
    assert_eq!(net.code_of(bad), Code::BadCommonHeader);
}

#[test]
fn an_envelope_signed_by_another_key_is_bad_creator_signature() {
    let net = Net::new();
    let good = net.endorsed(&net.tx("asset", put("a", "1")));
    let mut envelope = Envelope::decode(good.as_slice()).unwrap();
    envelope.signature = net.peer1.sign(&envelope.payload);
    assert_eq!(
        net.code_of(envelope.encode_to_vec()),
        Code::BadCreatorSignature
    );
    assert_eq!(net.value("a"), None);
}

#[test]
fn a_creator_from_a_ca_outside_the_channel_is_bad_creator_signature() {
    let net = Net::new();
    let stranger_ca = DevCa::new("Org1MSP", "Org1").unwrap();
    let stranger = stranger_ca.issue(Role::Client, "mallory").unwrap();
    let (proposal, simulation) = net.tx("asset", put("a", "1"));
    let proposal = Proposal::decode(proposal.signed_proposal.proposal_bytes.as_slice()).unwrap();
    let response = transaction::endorse(&proposal, &simulation, &net.peer1).unwrap();
    let envelope = transaction::assemble(&proposal, &[response], &stranger).unwrap();
    // Signed by the stranger, but the creator in the header is the client: the stranger
    // cannot pass as the client.
    assert_eq!(
        net.code_of(envelope.encode_to_vec()),
        Code::BadCreatorSignature
    );
}

#[test]
fn a_txid_not_computed_from_nonce_and_creator_is_bad_proposal_txid() {
    let net = Net::new();
    let good = net.endorsed(&net.tx("asset", put("a", "1")));
    let bad = altered(&net, &good, |p| {
        change_channel_header(p, |h| h.tx_id = "0".repeat(64))
    });
    assert_eq!(net.code_of(bad), Code::BadProposalTxid);
}

#[test]
fn a_transaction_with_two_actions_is_invalid_endorser_transaction() {
    let net = Net::new();
    let good = net.endorsed(&net.tx("asset", put("a", "1")));
    let bad = altered(&net, &good, |p| {
        let mut tx = Transaction::decode(p.data.as_slice()).unwrap();
        tx.actions.push(tx.actions[0].clone());
        p.data = tx.encode_to_vec();
    });
    assert_eq!(net.code_of(bad), Code::InvalidEndorserTransaction);
}

#[test]
fn a_transaction_of_another_channel_is_target_chain_not_found() {
    let net = Net::new();
    let other = net.endorsed(&net.tx_on("otherchannel", "asset", put("a", "1")));
    assert_eq!(net.code_of(other), Code::TargetChainNotFound);
}

#[test]
fn a_txid_already_in_the_ledger_or_earlier_in_the_block_is_duplicate_txid() {
    let net = Net::new();
    let envelope = net.endorsed(&net.tx("asset", put("a", "1")));
    let committed = net.commit(vec![envelope.clone(), envelope.clone()]);
    assert_eq!(committed.codes, [Code::Valid, Code::DuplicateTxid]);
    assert_eq!(net.code_of(envelope), Code::DuplicateTxid);
    // The index answers for the first, valid one.
    let status = net
        .ledger()
        .tx_status(&committed.txids[0])
        .unwrap()
        .unwrap();
    assert_eq!((status.code, status.block), (Code::Valid, 1));
}

#[test]
fn an_endorsement_by_an_org_the_policy_does_not_name_is_endorsement_policy_failure() {
    let net = Net::new();
    let tx = net.tx("asset", put("a", "1"));
    assert_eq!(
        net.code_of(net.envelope(&tx, &[&net.peer2])),
        Code::EndorsementPolicyFailure
    );
    assert_eq!(net.value("a"), None);
}

#[test]
fn an_endorsement_whose_signature_does_not_verify_is_endorsement_policy_failure() {
    let net = Net::new();
    let (proposal, simulation) = net.tx("asset", put("a", "1"));
    let proposal = Proposal::decode(proposal.signed_proposal.proposal_bytes.as_slice()).unwrap();
    let mut response = transaction::endorse(&proposal, &simulation, &net.peer1).unwrap();
    response.endorsement.as_mut().unwrap().signature = net.peer1.sign(b"something else");
    let envelope = transaction::assemble(&proposal, &[response], &net.client).unwrap();
    assert_eq!(
        net.code_of(envelope.encode_to_vec()),
        Code::EndorsementPolicyFailure
    );
}

#[test]
fn a_client_identity_cannot_satisfy_a_peer_policy() {
    let net = Net::new();
    let tx = net.tx("asset", put("a", "1"));
    assert_eq!(
        net.code_of(net.envelope(&tx, &[&net.client])),
        Code::EndorsementPolicyFailure
    );
}

#[test]
fn the_default_policy_needs_a_majority_of_the_channels_orgs() {
    let net = Net::new();
    let put_majority =
        |sim: &mut TxSimulator| sim.put_state("majority", "a", b"1".to_vec()).unwrap();
    let one = net.tx("majority", put_majority);
    assert_eq!(
        net.code_of(net.envelope(&one, &[&net.peer1])),
        Code::EndorsementPolicyFailure
    );
    let both = net.tx("majority", put_majority);
    assert_eq!(
        net.code_of(net.envelope(&both, &[&net.peer1, &net.peer2])),
        Code::Valid
    );
}

#[test]
fn a_write_into_a_namespace_whose_policy_the_endorsers_do_not_satisfy_is_endorsement_policy_failure()
 {
    let net = Net::new();
    let tx = net.tx("asset", |sim| {
        sim.put_state("asset", "a", b"1".to_vec()).unwrap();
        sim.put_state("org2only", "b", b"2".to_vec()).unwrap();
    });
    assert_eq!(
        net.code_of(net.endorsed(&tx)),
        Code::EndorsementPolicyFailure
    );
    assert_eq!(net.value("a"), None);
}

#[test]
fn a_write_into_an_undefined_namespace_is_invalid_chaincode() {
    let net = Net::new();
    let tx = net.tx("asset", |sim| {
        sim.put_state("asset", "a", b"1".to_vec()).unwrap();
        sim.put_state("nosuchcc", "b", b"2".to_vec()).unwrap();
    });
    assert_eq!(net.code_of(net.endorsed(&tx)), Code::InvalidChaincode);
}

#[test]
fn an_action_without_a_chaincode_version_is_invalid_chaincode_and_another_version_is_not_checked() {
    let net = Net::new();
    let mut tx = net.tx("asset", put("a", "1"));
    tx.1.chaincode_id.version = String::new();
    assert_eq!(net.code_of(net.endorsed(&tx)), Code::InvalidChaincode);
    // Fabric 2.x does not compare the version with the definition's.
    let mut tx = net.tx("asset", put("b", "1"));
    tx.1.chaincode_id.version = "2.0".into();
    assert_eq!(net.code_of(net.endorsed(&tx)), Code::Valid);
}

#[test]
fn a_namespace_twice_in_the_read_write_set_is_illegal_writeset() {
    let net = Net::new();
    let mut tx = net.tx("asset", put("a", "1"));
    let ns = tx.1.rwset.ns_rwset[0].clone();
    tx.1.rwset.ns_rwset.push(ns);
    assert_eq!(net.code_of(net.endorsed(&tx)), Code::IllegalWriteset);
}

#[test]
fn a_read_write_set_that_does_not_decode_is_bad_rwset() {
    let net = Net::new();
    let mut tx = net.tx("asset", put("a", "1"));
    tx.1.rwset = TxReadWriteSet {
        data_model: 0,
        ns_rwset: vec![NsReadWriteSet {
            namespace: "asset".into(),
            rwset: vec![0xff; 5],
            collection_hashed_rwset: vec![],
        }],
    };
    assert_eq!(net.code_of(net.endorsed(&tx)), Code::BadRwset);
}

fn org2_validation_parameter() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([(
        "VALIDATION_PARAMETER".to_owned(),
        policy::parse("OR('Org2MSP.peer')").unwrap().encode_to_vec(),
    )])
}

#[test]
fn a_key_with_its_own_endorsement_policy_needs_that_policy_not_the_chaincodes() {
    let net = Net::new();
    net.commit(vec![net.endorsed(&net.tx("asset", put("guarded", "0")))]);
    let set_policy = net.tx("asset", |sim| {
        sim.put_state_metadata("asset", "guarded", org2_validation_parameter())
            .unwrap();
    });
    assert_eq!(net.code_of(net.endorsed(&set_policy)), Code::Valid);
    let by_org1 = net.tx("asset", put("guarded", "org1"));
    assert_eq!(
        net.code_of(net.endorsed(&by_org1)),
        Code::EndorsementPolicyFailure
    );
    let by_org2 = net.tx("asset", put("guarded", "org2"));
    assert_eq!(
        net.code_of(net.envelope(&by_org2, &[&net.peer2])),
        Code::Valid
    );
    assert_eq!(net.value("guarded").as_deref(), Some(&b"org2"[..]));
}

#[test]
fn a_key_whose_policy_an_earlier_transaction_of_the_block_changed_is_endorsement_policy_failure() {
    let net = Net::new();
    net.commit(vec![net.endorsed(&net.tx("asset", put("guarded", "0")))]);
    let set_policy = net.endorsed(&net.tx("asset", |sim| {
        sim.put_state_metadata("asset", "guarded", org2_validation_parameter())
            .unwrap();
    }));
    let write = net.endorsed(&net.tx("asset", put("guarded", "1")));
    let committed = net.commit(vec![set_policy, write]);
    assert_eq!(
        committed.codes,
        [Code::Valid, Code::EndorsementPolicyFailure]
    );
}

#[test]
fn a_block_large_enough_to_be_checked_in_parallel_gets_each_verdict_at_its_own_index() {
    // 16 transactions: checked on several threads, then taken in order. Transaction 3
    // changes the policy of `guarded`, so 11's write of it fails as when checked one
    // after the other; 6 carries another key's signature.
    let net = Net::new();
    net.commit(vec![net.endorsed(&net.tx("asset", put("guarded", "0")))]);
    const KEYS: [&str; 16] = [
        "k0", "k1", "k2", "", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "", "k12", "k13", "k14",
        "k15",
    ];
    let envelopes: Vec<Vec<u8>> = KEYS
        .iter()
        .enumerate()
        .map(|(i, key)| match i {
            3 => net.endorsed(&net.tx("asset", |sim| {
                sim.put_state_metadata("asset", "guarded", org2_validation_parameter())
                    .unwrap();
            })),
            11 => net.endorsed(&net.tx("asset", put("guarded", "1"))),
            6 => {
                let good = net.endorsed(&net.tx("asset", put(key, "v")));
                let mut envelope = Envelope::decode(good.as_slice()).unwrap();
                envelope.signature = net.peer1.sign(&envelope.payload);
                envelope.encode_to_vec()
            }
            _ => net.endorsed(&net.tx("asset", put(key, "v"))),
        })
        .collect();
    let committed = net.commit(envelopes);
    let mut expected = vec![Code::Valid; 16];
    expected[6] = Code::BadCreatorSignature;
    expected[11] = Code::EndorsementPolicyFailure;
    assert_eq!(committed.codes, expected);
    assert_eq!(
        (
            net.value("k15").as_deref(),
            net.value("k6"),
            net.value("guarded").as_deref()
        ),
        (Some(&b"v"[..]), None, Some(&b"0"[..]))
    );
}

#[test]
fn a_configuration_transaction_after_genesis_is_unsupported_tx_payload() {
    let net = Net::new();
    let good = net.endorsed(&net.tx("asset", put("a", "1")));
    let bad = altered(&net, &good, |p| {
        change_channel_header(p, |h| {
            h.r#type = cchost_proto::common::HeaderType::Config as i32
        });
    });
    assert_eq!(net.code_of(bad), Code::UnsupportedTxPayload);
}

#[test]
fn only_valid_transactions_reach_state_and_history_and_the_filter_records_every_code() {
    let net = Net::new();
    let valid = net.endorsed(&net.tx("asset", put("a", "1")));
    let bad = net.envelope(&net.tx("asset", put("b", "1")), &[&net.peer2]);
    let committed = net.commit(vec![valid, Vec::new(), bad]);
    assert_eq!(
        committed.block.metadata[2],
        [
            Code::Valid as u8,
            Code::NilEnvelope as u8,
            Code::EndorsementPolicyFailure as u8
        ]
    );
    assert_eq!(net.value("a").as_deref(), Some(&b"1"[..]));
    assert_eq!(net.value("b"), None);
    let history = net
        .state
        .snapshot(CHANNEL)
        .unwrap()
        .history("asset", "a", None, ReadLimit::count(10))
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].1.tx_id, committed.txids[0]);
}

#[tokio::test]
async fn waiting_for_a_txid_resolves_when_its_block_commits_and_subscribers_see_the_block() {
    let net = Net::new();
    let tx = net.tx("asset", put("a", "1"));
    let txid = tx.0.txid.clone();
    let mut blocks = net.ledger().subscribe();
    let waiting = net.ledger().wait_for(&txid).unwrap();
    net.commit(vec![net.endorsed(&tx)]);
    let status = waiting.await.unwrap();
    assert_eq!((status.code, status.block), (Code::Valid, 1));
    let block = blocks.recv().await.unwrap();
    assert_eq!(block.txids, std::slice::from_ref(&txid));
    // Asked after the commit, it answers at once.
    let again = net.ledger().wait_for(&txid).unwrap().await.unwrap();
    assert_eq!(again, status);
}

/// Commits three single-transaction blocks (1..=3) writing a, b, c.
fn three_blocks(net: &Net) {
    for key in ["a", "b", "c"] {
        assert_eq!(
            net.code_of(net.endorsed(&net.tx("asset", put(key, key)))),
            Code::Valid
        );
    }
}

fn block_file(dir: &Path) -> PathBuf {
    dir.join("blockfile_000000")
}

#[test]
fn a_torn_last_block_is_cut_and_restored_from_the_copy_state_applied() {
    let mut net = Net::new();
    three_blocks(&net);
    let before = dump(net.state.as_ref());
    let len = std::fs::metadata(block_file(&net.dir)).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(block_file(&net.dir))
        .unwrap();
    file.set_len(len - 10).unwrap();
    drop(file);
    let report = net.reopen();
    assert_eq!(report.block_store.truncated.as_ref().map(|t| t.0), Some(3));
    assert_eq!(report.restored_block, Some(3));
    assert_eq!(net.ledger().height(), 4);
    assert_eq!(dump(net.state.as_ref()), before);
    assert_eq!(replayed(&net.dir), before);
    assert!(
        blockfile::verify(&blockfile::read_dir(&net.dir).unwrap())
            .iter()
            .all(|c| c.valid)
    );
}

#[test]
fn a_flipped_byte_in_the_last_block_is_found_by_its_checksum_and_the_block_restored() {
    let mut net = Net::new();
    three_blocks(&net);
    let before = dump(net.state.as_ref());
    let mut bytes = std::fs::read(block_file(&net.dir)).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x01;
    std::fs::write(block_file(&net.dir), &bytes).unwrap();
    let report = net.reopen();
    assert_eq!(
        report.block_store.truncated,
        Some((3, "its record does not match its checksum".to_owned()))
    );
    assert_eq!(report.restored_block, Some(3));
    assert_eq!(dump(net.state.as_ref()), before);
    assert!(
        blockfile::verify(&blockfile::read_dir(&net.dir).unwrap())
            .iter()
            .all(|c| c.valid)
    );
    // The chain goes on.
    assert_eq!(
        net.code_of(net.endorsed(&net.tx("asset", put("d", "d")))),
        Code::Valid
    );
}

#[test]
fn a_deleted_index_is_rebuilt_from_the_block_files() {
    let mut net = Net::new();
    let envelope = net.endorsed(&net.tx("asset", put("a", "1")));
    let txid = net.commit(vec![envelope.clone()]).txids[0].clone();
    three_blocks(&net);
    // Closing syncs the index; remove it with the ledger closed.
    net.close();
    std::fs::remove_file(net.dir.join("index.redb")).unwrap();
    let report = net.reopen();
    assert_eq!(report.block_store.reindexed, 5);
    assert_eq!(report.replayed, 0);
    let status = net.ledger().tx_status(&txid).unwrap().unwrap();
    assert_eq!((status.code, status.block), (Code::Valid, 1));
    assert_eq!(net.code_of(envelope), Code::DuplicateTxid);
}

#[test]
fn a_state_database_older_than_the_block_store_is_brought_up_by_replay() {
    let mut net = Net::new();
    net.commit(vec![net.endorsed(&net.tx("asset", put("a", "1")))]);
    // A copy of state as of block 1, taken with the ledger closed.
    net.close();
    let old_copy = net.dir.join("state-old.redb");
    net.state = Arc::new(RedbStore::in_memory().unwrap());
    std::fs::copy(net.dir.join("state.redb"), &old_copy).unwrap();
    net.state = Arc::new(RedbStore::open(net.dir.join("state.redb")).unwrap());
    assert_eq!(net.reopen().replayed, 0);
    three_blocks(&net);
    let after = dump(net.state.as_ref());
    net.replace_state(&old_copy);
    let report = net.reopen();
    assert_eq!(report.replayed, 3);
    assert_eq!(dump(net.state.as_ref()), after);
    assert_eq!(replayed(&net.dir), after);
}

#[test]
fn a_block_out_of_order_is_refused_with_fabrics_text_and_nothing_changes() {
    let net = Net::new();
    let block = blocks::make_block(5, &net.ledger().last_hash(), vec![], 0, &net.orderer);
    let error = net.ledger().commit(block).unwrap_err();
    assert_eq!(
        error.to_string(),
        "block number should have been 1 but was 5"
    );
    let block = blocks::make_block(1, &[7; 32], vec![], 0, &net.orderer);
    let error = net.ledger().commit(block).unwrap_err().to_string();
    assert!(
        error.starts_with("unexpected Previous block hash. Expected PreviousHash = ["),
        "{error}"
    );
    assert_eq!(net.ledger().height(), 1);
}

mod ordering {
    use super::*;
    use cchost::orderer::{BroadcastService, Orderer};
    use cchost_proto::common::Status;
    use cchost_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
    use cchost_proto::orderer::atomic_broadcast_server::AtomicBroadcastServer;
    use std::time::Duration;

    fn orderer(
        net: &Net,
        batch: BatchConfig,
        queue: usize,
    ) -> (Orderer, cchost::orderer::BatchCutter) {
        let signer = Arc::new(net.org1.issue(Role::Orderer, "orderer0").unwrap());
        Orderer::new(
            Arc::clone(net.slot.as_ref().unwrap()),
            signer,
            Some(batch),
            queue,
        )
    }

    fn envelopes(net: &Net, n: usize) -> Vec<(String, Envelope)> {
        (0..n)
            .map(|i| {
                let tx = net.tx("asset", move |sim| {
                    sim.put_state("asset", &format!("o{i}"), b"v".to_vec())
                        .unwrap();
                });
                let txid = tx.0.txid.clone();
                (
                    txid,
                    Envelope::decode(net.endorsed(&tx).as_slice()).unwrap(),
                )
            })
            .collect()
    }

    async fn blocks_of(net: &Net, txids: &[String]) -> Vec<u64> {
        let mut out = Vec::new();
        for txid in txids {
            let status = tokio::time::timeout(
                Duration::from_secs(10),
                net.ledger().wait_for(txid).unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
            assert_eq!(status.code, Code::Valid);
            out.push(status.block);
        }
        out
    }

    #[tokio::test]
    async fn blocks_are_cut_at_max_message_count_and_the_rest_at_the_batch_timeout() {
        let net = Net::new();
        let batch = BatchConfig {
            max_message_count: 3,
            timeout: Duration::from_millis(300),
            ..BatchConfig::default()
        };
        let (orderer, cutter) = orderer(&net, batch, 100);
        let cutting = tokio::spawn(cutter.run());
        let txs = envelopes(&net, 7);
        for (_, envelope) in &txs {
            orderer.broadcast(envelope).unwrap();
        }
        let txids: Vec<String> = txs.iter().map(|(t, _)| t.clone()).collect();
        assert_eq!(blocks_of(&net, &txids).await, [1, 1, 1, 2, 2, 2, 3]);
        drop(orderer);
        cutting.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn blocks_are_cut_before_preferred_max_bytes_and_a_larger_transaction_is_a_block_alone() {
        let net = Net::new();
        let txs = envelopes(&net, 3);
        let size = u32::try_from(txs[0].1.encode_to_vec().len()).unwrap();
        let batch = BatchConfig {
            max_message_count: 100,
            preferred_max_bytes: size * 2 + size / 2,
            timeout: Duration::from_millis(200),
            ..BatchConfig::default()
        };
        let (orderer, cutter) = orderer(&net, batch, 100);
        let cutting = tokio::spawn(cutter.run());
        for (_, envelope) in &txs {
            orderer.broadcast(envelope).unwrap();
        }
        let txids: Vec<String> = txs.iter().map(|(t, _)| t.clone()).collect();
        assert_eq!(blocks_of(&net, &txids).await, [1, 1, 2]);
        // A transaction larger than the preferred size is cut alone.
        let big = net.tx("asset", |sim| {
            sim.put_state("asset", "big", vec![b'x'; 4 * 1024]).unwrap();
        });
        let small = envelopes(&net, 1).remove(0);
        orderer.broadcast(&small.1).unwrap();
        orderer
            .broadcast(&Envelope::decode(net.endorsed(&big).as_slice()).unwrap())
            .unwrap();
        assert_eq!(
            blocks_of(&net, &[small.0, big.0.txid.clone()]).await,
            [3, 4]
        );
        drop(orderer);
        cutting.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_answers_service_unavailable_and_what_it_accepted_is_committed() {
        let net = Net::new();
        let (orderer, cutter) = orderer(
            &net,
            BatchConfig {
                timeout: Duration::from_millis(50),
                ..BatchConfig::default()
            },
            2,
        );
        let txs = envelopes(&net, 3);
        orderer.broadcast(&txs[0].1).unwrap();
        orderer.broadcast(&txs[1].1).unwrap();
        let error = orderer.broadcast(&txs[2].1).unwrap_err();
        assert_eq!(error.status, Status::ServiceUnavailable);
        assert_eq!(
            error.info,
            "the ordering queue is full (2 transactions wait): retry later"
        );
        // While the queue is full, the ledger still answers.
        assert_eq!(net.ledger().height(), 1);
        assert_eq!(net.ledger().tx_status(&txs[0].0).unwrap(), None);
        let cutting = tokio::spawn(cutter.run());
        assert_eq!(
            blocks_of(&net, &[txs[0].0.clone(), txs[1].0.clone()]).await,
            [1, 1]
        );
        assert_eq!(net.ledger().tx_status(&txs[2].0).unwrap(), None);
        drop(orderer);
        cutting.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn broadcast_over_grpc_answers_each_envelope_and_its_transactions_commit() {
        let net = Net::new();
        let (orderer, cutter) = orderer(
            &net,
            BatchConfig {
                timeout: Duration::from_millis(50),
                ..BatchConfig::default()
            },
            100,
        );
        let cutting = tokio::spawn(cutter.run());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(AtomicBroadcastServer::new(BroadcastService::new(orderer)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = AtomicBroadcastClient::new(channel);
        let txs = envelopes(&net, 2);
        let other = net.endorsed(&net.tx_on("otherchannel", "asset", put("x", "1")));
        let outbound = vec![
            txs[0].1.clone(),
            Envelope::decode(other.as_slice()).unwrap(),
            txs[1].1.clone(),
        ];
        let mut responses = client
            .broadcast(tokio_stream::iter(outbound))
            .await
            .unwrap()
            .into_inner();
        let mut statuses = Vec::new();
        while let Some(response) = responses.message().await.unwrap() {
            statuses.push((response.status, response.info));
        }
        assert_eq!(
            statuses,
            [
                (Status::Success as i32, String::new()),
                (
                    Status::NotFound as i32,
                    "channel otherchannel not found".to_owned()
                ),
                (Status::Success as i32, String::new()),
            ]
        );
        assert_eq!(
            blocks_of(&net, &[txs[0].0.clone(), txs[1].0.clone()]).await,
            [1, 1]
        );
        server.abort();
        let _ = server.await;
        cutting.abort();
    }
}

#[test]
fn bench_commit_reports_each_block_size_read_and_restart_with_what_each_restart_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cchost"))
        .args([
            "bench",
            "commit",
            "--transactions",
            "20",
            "--block-sizes",
            "1,10",
        ])
        .args([
            "--keys", "200", "--blocks", "4", "--reads", "50", "--replay", "3",
        ])
        .arg("--dir")
        .arg(dir.path().join("ledgers"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(
        table.starts_with(
            "figure                                new (0 keys)  large (200 keys)   large / new\n"
        ),
        "{table}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("commit.json")).unwrap()).unwrap();
    let ledgers = report["ledgers"].as_array().unwrap();
    // Genesis, then the preload's 4 blocks on the large ledger.
    let shapes: Vec<(&str, u64, u64)> = ledgers
        .iter()
        .map(|l| {
            (
                l["ledger"].as_str().unwrap(),
                l["keys"].as_u64().unwrap(),
                l["blocks"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shapes, [("new", 0, 1), ("large", 200, 5)]);
    for ledger in ledgers {
        let runs: Vec<(bool, u64, u64, u64)> = ledger["commits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| {
                assert!(run["tps"].as_f64().unwrap() > 0.0, "{run}");
                (
                    run["signatures"].as_bool().unwrap(),
                    run["block_size"].as_u64().unwrap(),
                    run["transactions"].as_u64().unwrap(),
                    run["n"].as_u64().unwrap(),
                )
            })
            .collect();
        // n counts blocks: 20 of one transaction, 2 of ten.
        assert_eq!(
            runs,
            [
                (true, 1, 20, 20),
                (true, 10, 20, 2),
                (false, 1, 20, 20),
                (false, 10, 20, 2)
            ]
        );
        for read in ["state get", "block by number", "tx status by id"] {
            assert_eq!(ledger["reads"][read]["n"], 50, "{read}");
        }
        // The runs added 2 × (20 + 2) blocks.
        let height = ledger["blocks"].as_u64().unwrap() + 44;
        let repaired: Vec<(&str, String)> = ledger["opens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|open| {
                let repaired = open["repaired"].as_str().unwrap();
                // Cut sizes vary with the signatures' lengths: drop them.
                let repaired = match repaired.split_once(" (") {
                    Some((head, tail)) => {
                        format!("{head}{}", &tail[tail.find(')').unwrap() + 1..])
                    }
                    None => repaired.to_owned(),
                };
                (open["case"].as_str().unwrap(), repaired)
            })
            .collect();
        assert_eq!(
            repaired,
            [
                ("clean", "nothing".to_owned()),
                ("index deleted", format!("{height} blocks reindexed")),
                ("torn append", format!("block {height} cut")),
                (
                    "last block damaged",
                    format!(
                        "{} blocks reindexed, block {} cut, block {} restored from state",
                        height - 1,
                        height - 1,
                        height - 1
                    )
                ),
                ("state behind", "3 blocks replayed".to_owned()),
            ]
        );
        assert!(ledger["disk_bytes"]["state"].as_u64().unwrap() > 0);
        assert!(ledger["disk_bytes"]["blocks"].as_u64().unwrap() > 0);
    }
}
