//! Block validation: one `TxValidationCode` per transaction, decided as Fabric's
//! committer decides it (`core/committer/txvalidator/v20`, `core/common/validation`,
//! `core/handlers/validation/builtin/v20`, `kvledger/txmgmt/validation`).
//!
//! For each transaction, in this order (the first failure gives the code):
//! 1. the envelope, payload and common header decode and are well formed (type, epoch 0,
//!    nonce, creator), the creator is an identity of the channel's MSPs and signed the
//!    payload, the txid is `hex(sha256(nonce ‖ creator))`, the transaction has one action
//!    whose proposal hash matches;
//! 2. the channel is this ledger's; the txid is not in the ledger already;
//! 3. the chaincode action: header extension, response payload, read/write set, the
//!    chaincode name and version, the event's chaincode, no namespace twice; then every
//!    namespace the transaction writes (and the invoked one) must be a defined chaincode
//!    whose endorsement policy the endorsements satisfy, key by key where a key carries
//!    a `VALIDATION_PARAMETER` (key-level endorsement);
//! 4. a txid equal to an earlier valid transaction's in the same block is a duplicate;
//! 5. MVCC, on the transactions still valid, in block order: every key read must still
//!    have the version it was read at (absent keys absent), and not have been written by
//!    an earlier valid transaction of the block; every range query, re-run over committed
//!    state and the block's earlier writes, must return the same keys and versions (raw
//!    reads) or the same Merkle summary.
//!
//! The verdicts are a pure function of the block, the committed state and the channel
//! configuration: every peer reaches the same.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use cchost_proto::common::{
    ApplicationPolicy, ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader,
    SignaturePolicyEnvelope,
};
use cchost_proto::kvrwset::{self, KvrwSet};
use cchost_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEvent, ChaincodeHeaderExtension,
    MetaDataKeys, ProposalResponsePayload, Transaction, TxValidationCode,
};
use cchost_proto::rwset::TxReadWriteSet;
use prost::Message;
use sha2::{Digest, Sha256};

use super::blockfile::StoredBlock;
use super::policy::ChannelPolicies;
use super::range_read::RangeRead;
use super::{CommitTx, Height, LedgerError, ReadLimit, StateSnapshot};
use crate::msp::{Identity, MspManager};
use crate::proposal::compute_txid;

/// The name of the state metadata entry holding a key's endorsement policy.
fn validation_parameter_key() -> &'static str {
    MetaDataKeys::ValidationParameter.as_str_name()
}

/// A chaincode as the channel defines it: what validation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaincodeDefinition {
    /// Its version (the action's chaincode id carries it).
    pub version: String,
    /// Its endorsement policy.
    pub endorsement: ApplicationPolicy,
}

/// What validation needs of the channel configuration.
#[derive(Debug, Clone, Default)]
pub struct ChannelConfig {
    /// The channel's name.
    pub channel: String,
    /// The organisations' MSPs.
    pub msps: MspManager,
    /// The organisations' endorsement policies.
    pub policies: ChannelPolicies,
    /// The defined chaincodes, by name (namespace).
    pub chaincodes: BTreeMap<String, ChaincodeDefinition>,
    /// Check creator and endorser signatures (on unless a benchmark measures their cost;
    /// off, identities are still decoded and validated, and policies still evaluated).
    pub skip_signatures: bool,
}

/// A block's verdicts and the writes they let through.
#[derive(Debug, Clone, Default)]
pub struct BlockVerdict {
    /// One code per transaction.
    pub codes: Vec<TxValidationCode>,
    /// Why each invalid transaction is invalid (empty for valid ones).
    pub reasons: Vec<String>,
    /// Each transaction's id (empty where it could not be read).
    pub txids: Vec<String>,
    /// The writes of the valid transactions, in order.
    pub commits: Vec<CommitTx>,
}

impl BlockVerdict {
    /// The TRANSACTIONS_FILTER bytes: one code per transaction.
    pub fn filter(&self) -> Vec<u8> {
        self.codes
            .iter()
            .map(|c| u8::try_from(*c as i32).unwrap_or(u8::MAX))
            .collect()
    }
}

/// A transaction that passed the checks before MVCC.
struct Checked {
    timestamp: prost_types::Timestamp,
    rwset: TxReadWriteSet,
    /// Decoded per namespace, in the order of the read/write set.
    namespaces: Vec<(String, KvrwSet)>,
}

type Verdict = Result<Checked, (TxValidationCode, String)>;

fn fail<T>(
    code: TxValidationCode,
    reason: impl Into<String>,
) -> Result<T, (TxValidationCode, String)> {
    Err((code, reason.into()))
}

/// Validates `block` against committed state (`snapshot`) and the ledger's transaction
/// ids (`txid_exists`). Errors are of the ledger itself (the block cannot be validated
/// now), never of a transaction.
///
/// The transactions are checked in parallel (their signatures dominate the cost), then
/// taken in order: a transaction after one that changed key metadata is checked again
/// against those changes, so the verdicts are those of checking one after the other.
pub fn validate_block(
    block: &StoredBlock,
    config: &ChannelConfig,
    snapshot: &dyn StateSnapshot,
    txid_exists: &TxidExists<'_>,
) -> Result<BlockVerdict, LedgerError> {
    let none_changed = BTreeMap::new();
    let check = |index: usize, envelope: &[u8], changed: &BTreeMap<(String, String), usize>| {
        check_tx(
            block.number,
            index,
            envelope,
            config,
            snapshot,
            txid_exists,
            changed,
        )
    };
    let mut speculative = in_parallel(&block.data, |index, envelope| {
        check(index, envelope, &none_changed)
    })
    .into_iter();
    let mut verdict = BlockVerdict::default();
    let mut checked: Vec<Option<Checked>> = Vec::with_capacity(block.data.len());
    // Keys whose metadata a transaction valid so far changed: later transactions writing
    // them fail key-level endorsement (`validation parameters ... have been changed`).
    let mut metadata_changed: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut valid_txids: HashSet<String> = HashSet::new();
    for (index, envelope) in block.data.iter().enumerate() {
        let first = speculative
            .next()
            .ok_or_else(|| LedgerError::Storage("a transaction was not checked".into()))?;
        let (txid, result) = if metadata_changed.is_empty() {
            first?
        } else {
            check(index, envelope, &metadata_changed)?
        };
        let result = match result {
            Ok(_) if valid_txids.contains(&txid) => Err((
                TxValidationCode::DuplicateTxid,
                format!("duplicate txid {txid} in block {}", block.number),
            )),
            other => other,
        };
        match result {
            Ok(tx) => {
                valid_txids.insert(txid.clone());
                for (namespace, kv) in &tx.namespaces {
                    for write in &kv.metadata_writes {
                        metadata_changed
                            .entry((namespace.clone(), write.key.clone()))
                            .or_insert(index);
                    }
                }
                verdict.codes.push(TxValidationCode::Valid);
                verdict.reasons.push(String::new());
                checked.push(Some(tx));
            }
            Err((code, reason)) => {
                verdict.codes.push(code);
                verdict.reasons.push(reason);
                checked.push(None);
            }
        }
        verdict.txids.push(txid);
    }
    mvcc(block.number, snapshot, &mut verdict, checked)?;
    Ok(verdict)
}

/// Whether a transaction id is in the ledger already.
pub type TxidExists<'a> = dyn Fn(&str) -> Result<bool, LedgerError> + Sync + 'a;

/// `f` over every item, on up to one thread per core (on this thread when there are
/// few); the results in the items' order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len() / 4);
    if threads <= 1 {
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| f(i, item))
            .collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .skip(1)
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, item)| f(c * chunk + i, item))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        let mut results: Vec<R> = items
            .iter()
            .take(chunk)
            .enumerate()
            .map(|(i, item)| f(i, item))
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(part) => results.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[allow(clippy::too_many_lines)]
fn check_tx(
    block: u64,
    index: usize,
    envelope: &[u8],
    config: &ChannelConfig,
    snapshot: &dyn StateSnapshot,
    txid_exists: &TxidExists<'_>,
    metadata_changed: &BTreeMap<(String, String), usize>,
) -> Result<(String, Verdict), LedgerError> {
    use TxValidationCode as Code;
    let mut txid = String::new();
    let verdict = (|| -> Result<Verdict, LedgerError> {
        if envelope.is_empty() {
            return Ok(fail(Code::NilEnvelope, "nil envelope"));
        }
        let Ok(envelope) = Envelope::decode(envelope) else {
            return Ok(fail(
                Code::InvalidOtherReason,
                "the envelope does not decode",
            ));
        };
        let Ok(payload) = Payload::decode(envelope.payload.as_slice()) else {
            return Ok(fail(Code::BadPayload, "the payload does not decode"));
        };
        let Some(header) = &payload.header else {
            return Ok(fail(Code::BadCommonHeader, "nil header"));
        };
        let (Ok(channel_header), Ok(signature_header)) = (
            ChannelHeader::decode(header.channel_header.as_slice()),
            SignatureHeader::decode(header.signature_header.as_slice()),
        ) else {
            return Ok(fail(Code::BadCommonHeader, "the header does not decode"));
        };
        txid.clone_from(&channel_header.tx_id);
        let kind = HeaderType::try_from(channel_header.r#type);
        if !matches!(
            kind,
            Ok(HeaderType::EndorserTransaction | HeaderType::ConfigUpdate | HeaderType::Config)
        ) {
            return Ok(fail(
                Code::BadCommonHeader,
                format!("invalid header type {}", channel_header.r#type),
            ));
        }
        if channel_header.epoch != 0 {
            return Ok(fail(
                Code::BadCommonHeader,
                format!(
                    "invalid Epoch in ChannelHeader. Expected 0, got [{}]",
                    channel_header.epoch
                ),
            ));
        }
        if signature_header.nonce.is_empty() {
            return Ok(fail(
                Code::BadCommonHeader,
                "invalid nonce specified in the header",
            ));
        }
        if signature_header.creator.is_empty() {
            return Ok(fail(
                Code::BadCommonHeader,
                "invalid creator specified in the header",
            ));
        }
        let creator = match config.msps.deserialize(&signature_header.creator) {
            Ok(creator) => creator,
            Err(e) => return Ok(fail(Code::BadCreatorSignature, e.to_string())),
        };
        if !config.skip_signatures
            && let Err(e) = creator.verify(&envelope.payload, &envelope.signature)
        {
            return Ok(fail(Code::BadCreatorSignature, e.to_string()));
        }
        if kind != Ok(HeaderType::EndorserTransaction) {
            return Ok(fail(
                Code::UnsupportedTxPayload,
                "configuration transactions after the genesis block are not supported yet",
            ));
        }
        let expected = compute_txid(&signature_header.nonce, &signature_header.creator);
        if channel_header.tx_id != expected {
            return Ok(fail(
                Code::BadProposalTxid,
                format!(
                    "invalid txid. got [{}], expected [{expected}]",
                    channel_header.tx_id
                ),
            ));
        }
        let Ok(transaction) = Transaction::decode(payload.data.as_slice()) else {
            return Ok(fail(
                Code::InvalidEndorserTransaction,
                "the transaction does not decode",
            ));
        };
        let [action] = transaction.actions.as_slice() else {
            return Ok(fail(
                Code::InvalidEndorserTransaction,
                format!(
                    "only one action per transaction is supported, tx contains {}",
                    transaction.actions.len()
                ),
            ));
        };
        let action_header = SignatureHeader::decode(action.header.as_slice()).unwrap_or_default();
        if action_header.nonce.is_empty() || action_header.creator.is_empty() {
            return Ok(fail(
                Code::InvalidEndorserTransaction,
                "invalid signature header in the transaction action",
            ));
        }
        let Ok(action_payload) = ChaincodeActionPayload::decode(action.payload.as_slice()) else {
            return Ok(fail(
                Code::InvalidEndorserTransaction,
                "the action payload does not decode",
            ));
        };
        let endorsed = action_payload.action.clone().unwrap_or_default();
        let Ok(response_payload) =
            ProposalResponsePayload::decode(endorsed.proposal_response_payload.as_slice())
        else {
            return Ok(fail(
                Code::InvalidEndorserTransaction,
                "the proposal response payload does not decode",
            ));
        };
        let proposal_hash = {
            let mut hash = Sha256::new();
            hash.update(&header.channel_header);
            hash.update(&action.header);
            hash.update(&action_payload.chaincode_proposal_payload);
            hash.finalize().to_vec()
        };
        if proposal_hash != response_payload.proposal_hash {
            return Ok(fail(
                Code::InvalidEndorserTransaction,
                "proposal hash does not match",
            ));
        }

        if channel_header.channel_id != config.channel {
            return Ok(fail(
                Code::TargetChainNotFound,
                format!("channel {} is not this ledger's", channel_header.channel_id),
            ));
        }
        if txid_exists(&channel_header.tx_id)? {
            return Ok(fail(
                Code::DuplicateTxid,
                format!(
                    "transaction id {} is already in the ledger",
                    channel_header.tx_id
                ),
            ));
        }

        let Ok(extension) = ChaincodeHeaderExtension::decode(channel_header.extension.as_slice())
        else {
            return Ok(fail(
                Code::BadHeaderExtension,
                "the header extension does not decode",
            ));
        };
        let Ok(chaincode_action) = ChaincodeAction::decode(response_payload.extension.as_slice())
        else {
            return Ok(fail(
                Code::BadResponsePayload,
                "GetActionFromEnvelope failed",
            ));
        };
        let Ok(rwset) = TxReadWriteSet::decode(chaincode_action.results.as_slice()) else {
            return Ok(fail(Code::BadRwset, "txRWSet.FromProtoBytes failed"));
        };
        let mut namespaces = Vec::with_capacity(rwset.ns_rwset.len());
        for ns in &rwset.ns_rwset {
            let Ok(kv) = KvrwSet::decode(ns.rwset.as_slice()) else {
                return Ok(fail(Code::BadRwset, "txRWSet.FromProtoBytes failed"));
            };
            namespaces.push((ns.namespace.clone(), kv));
        }
        let Some(header_id) = &extension.chaincode_id else {
            return Ok(fail(
                Code::InvalidOtherReason,
                "nil ChaincodeId in header extension",
            ));
        };
        let Some(action_id) = &chaincode_action.chaincode_id else {
            return Ok(fail(
                Code::InvalidOtherReason,
                "nil ChaincodeId in ChaincodeAction",
            ));
        };
        let name = header_id.name.clone();
        if name.is_empty() {
            return Ok(fail(Code::InvalidChaincode, "invalid chaincode ID"));
        }
        if name != action_id.name {
            return Ok(fail(
                Code::InvalidChaincode,
                format!("inconsistent ccid info ({name}/{})", action_id.name),
            ));
        }
        if action_id.version.is_empty() {
            return Ok(fail(Code::InvalidChaincode, "invalid chaincode version"));
        }
        if !chaincode_action.events.is_empty() {
            match ChaincodeEvent::decode(chaincode_action.events.as_slice()) {
                Ok(event) if event.chaincode_id == name => {}
                Ok(_) => {
                    return Ok(fail(
                        Code::InvalidOtherReason,
                        "chaincode event chaincode id does not match chaincode action chaincode id",
                    ));
                }
                Err(e) => {
                    return Ok(fail(
                        Code::InvalidOtherReason,
                        format!("invalid chaincode event: {e}"),
                    ));
                }
            }
        }
        let mut seen = BTreeSet::new();
        let mut written: BTreeSet<String> = BTreeSet::from([name.clone()]);
        for (ns, (namespace, kv)) in rwset.ns_rwset.iter().zip(&namespaces) {
            if !seen.insert(namespace.clone()) {
                return Ok(fail(
                    Code::IllegalWriteset,
                    format!("duplicate namespace '{namespace}' in txRWSet"),
                ));
            }
            if !kv.writes.is_empty()
                || !kv.metadata_writes.is_empty()
                || !ns.collection_hashed_rwset.is_empty()
            {
                written.insert(namespace.clone());
            }
            if !ns.collection_hashed_rwset.is_empty() {
                return Ok(fail(
                    Code::InvalidOtherReason,
                    format!(
                        "namespace {namespace}: private data collections are not supported yet"
                    ),
                ));
            }
        }

        // Endorsement policies, namespace by namespace.
        let signers = endorsers(
            &endorsed.proposal_response_payload,
            &endorsed.endorsements,
            &config.msps,
            config.skip_signatures,
        );
        for namespace in &written {
            let Some(definition) = config.chaincodes.get(namespace) else {
                return Ok(fail(
                    Code::InvalidChaincode,
                    format!(
                        "chaincode {namespace} is not defined on channel {}",
                        config.channel
                    ),
                ));
            };
            // As Fabric 2.x: the action's version is not compared with the definition's
            // (a transaction endorsed under an earlier definition fails by MVCC, on its
            // read of the chaincode's `_lifecycle` Sequence key).
            let kv = namespaces
                .iter()
                .find(|(n, _)| n == namespace)
                .map(|(_, kv)| kv);
            if let Err(reason) = endorsement(
                namespace,
                kv,
                definition,
                config,
                &signers,
                snapshot,
                metadata_changed,
                (block, index),
            )? {
                return Ok(fail(Code::EndorsementPolicyFailure, reason));
            }
        }
        Ok(Ok(Checked {
            timestamp: channel_header.timestamp.unwrap_or_default(),
            rwset,
            namespaces,
        }))
    })()?;
    Ok((txid, verdict))
}

/// The distinct endorsers whose signatures over `prp ‖ endorser` verify (Fabric drops the
/// others silently, and counts an identity once).
fn endorsers(
    prp: &[u8],
    endorsements: &[cchost_proto::protos::Endorsement],
    msps: &MspManager,
    skip_signatures: bool,
) -> Vec<Identity> {
    let mut seen = HashSet::new();
    let mut signers = Vec::new();
    for endorsement in endorsements {
        let Ok(identity) = msps.deserialize(&endorsement.endorser) else {
            continue;
        };
        let (msp, hash) = identity.id();
        if !seen.insert((msp.to_owned(), hash)) {
            continue;
        }
        if !skip_signatures {
            let signed = [prp, endorsement.endorser.as_slice()].concat();
            if identity.verify(&signed, &endorsement.signature).is_err() {
                continue;
            }
        }
        signers.push(identity);
    }
    signers
}

/// Evaluates a namespace's endorsement: per written key with a validation parameter, that
/// key's policy; the chaincode's policy once for the other keys (or when nothing is
/// written). `Ok(Err(reason))` is a policy failure.
#[allow(clippy::too_many_arguments)]
fn endorsement(
    namespace: &str,
    kv: Option<&KvrwSet>,
    definition: &ChaincodeDefinition,
    config: &ChannelConfig,
    signers: &[Identity],
    snapshot: &dyn StateSnapshot,
    metadata_changed: &BTreeMap<(String, String), usize>,
    (block, index): (u64, usize),
) -> Result<Result<(), String>, LedgerError> {
    let chaincode_failure = |e: &dyn std::fmt::Display| {
        format!(
            "validation of endorsement policy for chaincode {namespace} in tx {block}:{index} failed: {e}"
        )
    };
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    if let Some(kv) = kv {
        keys.extend(kv.writes.iter().map(|w| w.key.as_str()));
        keys.extend(kv.metadata_writes.iter().map(|w| w.key.as_str()));
    }
    let mut chaincode_policy_needed = keys.is_empty();
    for key in keys {
        if let Some(changed_in) = metadata_changed.get(&(namespace.to_owned(), key.to_owned())) {
            return Ok(Err(format!(
                "validation parameters for key [{key}] in namespace [{namespace}:] have been changed in transaction {changed_in} of block {block}"
            )));
        }
        let parameter = snapshot
            .get(namespace, key)?
            .and_then(|value| value.metadata.get(validation_parameter_key()).cloned());
        match parameter {
            Some(bytes) => {
                let satisfied = SignaturePolicyEnvelope::decode(bytes.as_slice())
                    .map(|policy| super::policy::satisfied(&policy, signers));
                if !matches!(satisfied, Ok(true)) {
                    return Ok(Err(format!(
                        "validation of key {key} (coll'':ns'{namespace}') in tx {block}:{index} failed: {}",
                        super::policy::NOT_SATISFIED
                    )));
                }
            }
            None => chaincode_policy_needed = true,
        }
    }
    if chaincode_policy_needed
        && let Err(e) = config.policies.evaluate(&definition.endorsement, signers)
    {
        return Ok(Err(chaincode_failure(&e)));
    }
    Ok(Ok(()))
}

/// The writes of the valid transactions earlier in the block, by namespace and key:
/// whether the key now exists (false: deleted) and the height that wrote it.
type BlockWrites = BTreeMap<String, BTreeMap<String, (bool, Height)>>;

fn mvcc(
    block: u64,
    snapshot: &dyn StateSnapshot,
    verdict: &mut BlockVerdict,
    checked: Vec<Option<Checked>>,
) -> Result<(), LedgerError> {
    let mut updates: BlockWrites = BTreeMap::new();
    for (index, tx) in checked.into_iter().enumerate() {
        let Some(tx) = tx else { continue };
        let height = Height::new(block, u64::try_from(index).unwrap_or(u64::MAX));
        if let Some((code, reason)) = conflict(snapshot, &updates, &tx)? {
            if let Some(slot) = verdict.codes.get_mut(index) {
                *slot = code;
            }
            if let Some(slot) = verdict.reasons.get_mut(index) {
                *slot = reason;
            }
            continue;
        }
        for (namespace, kv) in &tx.namespaces {
            let writes = updates.entry(namespace.clone()).or_default();
            for write in &kv.writes {
                let deleted = write.is_delete || write.value.is_empty();
                writes.insert(write.key.clone(), (!deleted, height));
            }
        }
        verdict.commits.push(CommitTx {
            height,
            tx_id: verdict.txids.get(index).cloned().unwrap_or_default(),
            timestamp: tx.timestamp,
            rwset: tx.rwset,
        });
    }
    Ok(())
}

fn conflict(
    snapshot: &dyn StateSnapshot,
    updates: &BlockWrites,
    tx: &Checked,
) -> Result<Option<(TxValidationCode, String)>, LedgerError> {
    for (namespace, kv) in &tx.namespaces {
        let written = updates.get(namespace);
        for read in &kv.reads {
            if written.is_some_and(|w| w.contains_key(&read.key)) {
                return Ok(Some((
                    TxValidationCode::MvccReadConflict,
                    format!(
                        "key {namespace}:{} was written by an earlier transaction of the block",
                        read.key
                    ),
                )));
            }
            let committed = snapshot.get(namespace, &read.key)?.map(|v| v.version);
            let read_at = read.version.map(|v| Height::new(v.block_num, v.tx_num));
            if committed != read_at {
                return Ok(Some((
                    TxValidationCode::MvccReadConflict,
                    format!(
                        "key {namespace}:{} was read at version {read_at:?}, committed version is {committed:?}",
                        read.key
                    ),
                )));
            }
        }
        for query in &kv.range_queries_info {
            if !range_unchanged(snapshot, namespace, written, query)? {
                return Ok(Some((
                    TxValidationCode::PhantomReadConflict,
                    format!(
                        "range query [{}, {}] in namespace {namespace} returns other results now",
                        query.start_key, query.end_key
                    ),
                )));
            }
        }
    }
    Ok(None)
}

/// Re-runs a recorded range query over committed state merged with the block's earlier
/// writes and compares what it would record.
fn range_unchanged(
    snapshot: &dyn StateSnapshot,
    namespace: &str,
    written: Option<&BTreeMap<String, (bool, Height)>>,
    query: &kvrwset::RangeQueryInfo,
) -> Result<bool, LedgerError> {
    // An iterator that stopped early ends at (and includes) its last key.
    let end = if query.itr_exhausted || query.end_key.is_empty() {
        query.end_key.clone()
    } else {
        format!("{}\u{0}", query.end_key)
    };
    let mut merged: BTreeMap<String, Height> = snapshot
        .range(
            namespace,
            &query.start_key,
            &end,
            ReadLimit::count(usize::MAX),
        )?
        .into_iter()
        .map(|(key, value)| (key, value.version))
        .collect();
    if let Some(written) = written {
        let in_range =
            |key: &str| key >= query.start_key.as_str() && (end.is_empty() || key < end.as_str());
        for (key, (value, height)) in written {
            if !in_range(key) {
                continue;
            }
            if *value {
                merged.insert(key.clone(), *height);
            } else {
                merged.remove(key);
            }
        }
    }
    let mut rerun = RangeRead::new(&query.start_key, &query.end_key);
    for (key, version) in &merged {
        rerun.record(key, *version);
    }
    if query.itr_exhausted {
        rerun.set_exhausted();
    }
    Ok(rerun.info().reads_info == query.reads_info)
}
