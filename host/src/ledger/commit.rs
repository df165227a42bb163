//! Committing blocks: one channel's ledger, its block store and its state, kept equal.
//!
//! [`ChannelLedger::commit`] validates a block ([`validation`](super::validation)),
//! writes the verdicts into TRANSACTIONS_FILTER and the chained COMMIT_HASH, appends the
//! block durably to the block store, then applies the valid writes to state, history and
//! the applied-block height in one state-database transaction, and only then tells
//! subscribers: a transaction is acknowledged once state holds it.
//!
//! Opening recovers, in Fabric's order (block store first, then the databases): the block
//! store cuts a torn or corrupt tail and re-indexes ([`Recovery`]); if state is one block
//! ahead (its last block was cut from the files), the block is put back from the copy
//! state keeps; blocks state has not applied are applied again, trusting their stored
//! verdicts (as Fabric's `recoverDBs` does). State is then a replay of the blocks.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use cchost_proto::common::{ChannelHeader, Envelope, Payload};
use cchost_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ProposalResponsePayload, Transaction, TxValidationCode,
};
use cchost_proto::rwset::TxReadWriteSet;
use prost::Message;
use tokio::sync::{broadcast, oneshot};

use super::blockfile::{self, COMMIT_HASH, StoredBlock, TRANSACTIONS_FILTER};
use super::blocks::{self, ChannelGenesis};
use super::blockstore::{
    self, BlockStore, BlockStoreConfig, BlockStoreError, Recovery, TxLocation,
};
use super::validation::{self, ChaincodeDefinition, ChannelConfig};
use super::{CommitTx, Height, LedgerError, StateStore};
use crate::lifecycle;

/// Why a block could not be committed or the ledger opened. The ledger is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The block store failed or refused the block.
    #[error(transparent)]
    BlockStore(#[from] BlockStoreError),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] LedgerError),
    /// The genesis block does not configure a channel.
    #[error(transparent)]
    Config(#[from] blocks::ConfigError),
    /// State and block store cannot be reconciled (Fabric's text).
    #[error(
        "the state database [height={state}] is ahead of the block store [height={blocks}]: the block store lost blocks that state applied"
    )]
    StateAhead {
        /// Blocks state applied.
        state: u64,
        /// Blocks in the store.
        blocks: u64,
    },
    /// The ledger has no genesis block.
    #[error("the ledger of channel {0} has no genesis block")]
    NoGenesis(String),
}

/// A transaction's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxStatus {
    /// Its validation code.
    pub code: TxValidationCode,
    /// The block holding it.
    pub block: u64,
}

impl TxStatus {
    fn of(location: TxLocation) -> Self {
        Self {
            code: TxValidationCode::try_from(i32::from(location.code))
                .unwrap_or(TxValidationCode::InvalidOtherReason),
            block: location.block,
        }
    }
}

/// A committed block, as subscribers see it.
#[derive(Debug, Clone)]
pub struct CommittedBlock {
    /// The block with its verdicts and commit hash.
    pub block: StoredBlock,
    /// Each transaction's id.
    pub txids: Vec<String>,
    /// Each transaction's code.
    pub codes: Vec<TxValidationCode>,
    /// Chaincode definitions the block's valid transactions committed (`_lifecycle`
    /// writes), as state now holds them (`None`: no longer defined).
    pub definitions: Vec<(String, Option<lifecycle::Definition>)>,
}

/// Called with each committed block before its waiters and subscribers hear of it.
pub type CommitHook = Box<dyn Fn(&CommittedBlock) + Send + Sync>;

/// What opening a ledger found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// What the block store repaired.
    pub block_store: Recovery,
    /// The block put back from state's copy, if the store had lost it.
    pub restored_block: Option<u64>,
    /// Blocks applied to state again.
    pub replayed: u64,
}

struct Inner {
    store: BlockStore,
    /// The last block's COMMIT_HASH, if it has one.
    commit_hash: Option<Vec<u8>>,
    /// Blocks fully committed (block file, state, waiters told): readers see these. A
    /// block being committed is in the block store a moment before it counts here.
    published: u64,
}

/// One channel's ledger: blocks, state and commit notifications.
pub struct ChannelLedger {
    channel: String,
    state: Arc<dyn StateStore>,
    inner: Mutex<Inner>,
    /// Held through a whole commit: one block at a time. Readers wait on `inner` only
    /// while a block is appended to its file, not while it is validated or its state
    /// written.
    committing: Mutex<()>,
    config: RwLock<ChannelConfig>,
    genesis: ChannelGenesis,
    blocks: broadcast::Sender<Arc<CommittedBlock>>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<TxStatus>>>>,
    hooks: RwLock<Vec<CommitHook>>,
}

impl std::fmt::Debug for ChannelLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelLedger")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a ledger is opened.
#[derive(Debug, Clone, Default)]
pub struct LedgerOptions {
    /// Block files.
    pub block_store: BlockStoreConfig,
    /// Skip creator and endorser signature checks (benchmarks of their cost only).
    pub skip_signatures: bool,
}

impl ChannelLedger {
    /// Opens the ledger in `dir` (block files and index) over `state`, recovering as the
    /// module says. A new ledger starts from `genesis`, which must then be given; an
    /// existing one reads its configuration from its own block 0.
    pub fn open(
        dir: &Path,
        state: Arc<dyn StateStore>,
        genesis: Option<&StoredBlock>,
        options: &LedgerOptions,
    ) -> Result<(Self, OpenReport), CommitError> {
        let (mut store, block_store) = BlockStore::open(dir, options.block_store)?;
        let mut report = OpenReport {
            block_store,
            ..OpenReport::default()
        };
        let first = match store.block(0)? {
            Some(block) => block,
            None => {
                let genesis =
                    genesis.ok_or_else(|| CommitError::NoGenesis(dir.display().to_string()))?;
                genesis.clone()
            }
        };
        let config = blocks::read_genesis(&first)?;
        let channel = config.channel.clone();
        if !state.has_channel(&channel)? {
            state.create_channel(&channel)?;
        }
        let (applied, last_record) = state.applied(&channel)?;
        if applied > store.height() {
            let restorable = last_record
                .as_deref()
                .and_then(|record| blockfile::read_blocks(record).ok())
                .and_then(|mut blocks| (blocks.len() == 1).then(|| blocks.remove(0)))
                .filter(|block| block.number == store.height() && applied == store.height() + 1);
            match restorable {
                Some(block) => {
                    store.append(&block, &blockstore::tx_ids(&block))?;
                    report.restored_block = Some(block.number);
                }
                None => {
                    return Err(CommitError::StateAhead {
                        state: applied,
                        blocks: store.height(),
                    });
                }
            }
        }
        if store.height() == 0 {
            store.append(&first, &blockstore::tx_ids(&first))?;
        }
        for number in applied..store.height() {
            let block = store
                .block(number)?
                .ok_or_else(|| BlockStoreError::Corrupt {
                    number,
                    reason: "missing from the index".into(),
                })?;
            let txs = valid_writes(&block);
            state.commit_block(&channel, number, &blockfile::record(&block), &txs)?;
            report.replayed += 1;
        }
        let commit_hash = match store.height() {
            0 => None,
            height => store
                .block(height - 1)?
                .and_then(|block| blockfile::stored_commit_hash(&block)),
        };
        // Chaincode definitions committed through `_lifecycle`, and `_lifecycle` itself
        // (its writes need the channel's MAJORITY Endorsement, Fabric's default
        // LifecycleEndorsement).
        let mut chaincodes = BTreeMap::from([(
            lifecycle::NAMESPACE.to_owned(),
            ChaincodeDefinition {
                version: lifecycle::SYSCC_VERSION.to_owned(),
                endorsement: super::policy::default_endorsement(),
            },
        )]);
        let snapshot = state.snapshot(&channel)?;
        for (name, definition) in lifecycle::all_committed(snapshot.as_ref())? {
            chaincodes.insert(name, definition.for_validation()?);
        }
        drop(snapshot);
        let ledger = Self {
            channel: channel.clone(),
            state,
            inner: Mutex::new(Inner {
                published: store.height(),
                store,
                commit_hash,
            }),
            committing: Mutex::new(()),
            config: RwLock::new(ChannelConfig {
                channel,
                msps: config.msps.clone(),
                policies: config.policies.clone(),
                chaincodes,
                skip_signatures: options.skip_signatures,
            }),
            genesis: config,
            blocks: broadcast::channel(256).0,
            waiters: Mutex::default(),
            hooks: RwLock::default(),
        };
        Ok((ledger, report))
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// What the genesis block configures.
    pub fn genesis(&self) -> &ChannelGenesis {
        &self.genesis
    }

    /// Defines (or redefines) chaincode `name` for validation.
    pub fn define_chaincode(&self, name: &str, definition: ChaincodeDefinition) {
        self.config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .chaincodes
            .insert(name.to_owned(), definition);
    }

    /// The number of blocks: the next block's number.
    pub fn height(&self) -> u64 {
        lock(&self.inner).published
    }

    /// The header hash of the last block.
    pub fn last_hash(&self) -> Vec<u8> {
        lock(&self.inner).store.last_hash().to_vec()
    }

    /// Block `number`, if committed.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>, CommitError> {
        let inner = lock(&self.inner);
        if number >= inner.published {
            return Ok(None);
        }
        Ok(inner.store.block(number)?)
    }

    /// The fate of transaction `txid`, if a committed block holds it.
    pub fn tx_status(&self, txid: &str) -> Result<Option<TxStatus>, CommitError> {
        let inner = lock(&self.inner);
        Ok(inner
            .store
            .tx(txid)?
            .filter(|location| location.block < inner.published)
            .map(TxStatus::of))
    }

    /// Committed blocks from now on. A subscriber that falls more than 256 blocks behind
    /// gets `Lagged` and reads the missed blocks with [`Self::block`].
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.blocks.subscribe()
    }

    /// Waiters registered and not yet told (for tests of their bound).
    pub fn pending_waiters(&self) -> usize {
        lock(&self.waiters).len()
    }

    /// Resolves when transaction `txid` is committed (at once if it is already).
    pub fn wait_for(
        &self,
        txid: &str,
    ) -> Result<impl Future<Output = Option<TxStatus>> + use<>, CommitError> {
        let inner = lock(&self.inner);
        let (sender, receiver) = oneshot::channel();
        match inner.store.tx(txid)? {
            Some(location) if location.block < inner.published => {
                let _ = sender.send(TxStatus::of(location));
            }
            _ => {
                let mut waiters = lock(&self.waiters);
                // A waiter for a transaction that never commits (a client asked for a txid
                // nobody submitted, then gave up) would stay forever: now and then, when
                // the map reaches 1,024, the ones nobody listens to any more are dropped.
                if waiters.len() >= 1024 && waiters.len().is_power_of_two() {
                    waiters.retain(|_, senders| {
                        senders.retain(|s| !s.is_closed());
                        !senders.is_empty()
                    });
                }
                waiters.entry(txid.to_owned()).or_default().push(sender);
            }
        }
        drop(inner);
        Ok(async move { receiver.await.ok() })
    }

    /// Validates and commits `block` (numbered [`Self::height`], chained to
    /// [`Self::last_hash`]). Blocking: it writes and syncs files.
    pub fn commit(&self, mut block: StoredBlock) -> Result<Arc<CommittedBlock>, CommitError> {
        let _committing = lock(&self.committing);
        let snapshot = self.state.snapshot(&self.channel)?;
        let verdict = {
            let config = self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            validation::validate_block(&block, &config, snapshot.as_ref(), &|txid| {
                lock(&self.inner)
                    .store
                    .tx(txid)
                    .map(|found| found.is_some())
                    .map_err(|e| LedgerError::Storage(e.to_string()))
            })?
        };
        drop(snapshot);
        if block.metadata.len() < blocks::METADATA_SLOTS {
            block.metadata.resize(blocks::METADATA_SLOTS, Vec::new());
        }
        blocks::set_slot(&mut block.metadata, TRANSACTIONS_FILTER, verdict.filter());
        let previous_commit_hash = lock(&self.inner).commit_hash.clone();
        if block.number == 1 || previous_commit_hash.is_some() {
            let hash = blockfile::commit_hash(&block, previous_commit_hash.as_deref())
                .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
            blocks::set_slot(
                &mut block.metadata,
                COMMIT_HASH,
                cchost_proto::common::Metadata {
                    value: hash.to_vec(),
                    signatures: Vec::new(),
                }
                .encode_to_vec(),
            );
        }
        let record = lock(&self.inner).store.append(&block, &verdict.txids)?;
        self.state
            .commit_block(&self.channel, block.number, &record, &verdict.commits)?;
        let definitions = self.redefine(&verdict.commits)?;
        let committed = Arc::new(CommittedBlock {
            block,
            txids: verdict.txids,
            codes: verdict.codes,
            definitions,
        });
        for hook in self
            .hooks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            hook(&committed);
        }
        let mut inner = lock(&self.inner);
        inner.commit_hash = blockfile::stored_commit_hash(&committed.block);
        inner.published = committed.block.number + 1;
        {
            let mut waiters = lock(&self.waiters);
            // A txid's first transaction in the block is the one the index answers for;
            // its waiters are gone once it is served.
            for (txid, code) in committed.txids.iter().zip(&committed.codes) {
                let Some(senders) = waiters.remove(txid) else {
                    continue;
                };
                let status = TxStatus {
                    code: *code,
                    block: committed.block.number,
                };
                for sender in senders {
                    let _ = sender.send(status);
                }
            }
        }
        drop(inner);
        let _ = self.blocks.send(Arc::clone(&committed));
        Ok(committed)
    }
}

impl ChannelLedger {
    /// Calls `hook` with every block committed from now on, synchronously, before the
    /// block's waiters and subscribers hear of it (the next block is not validated
    /// before it returns).
    pub fn on_commit(&self, hook: CommitHook) {
        self.hooks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(hook);
    }

    /// The chaincode definition of `name` that validation uses, if any.
    pub fn chaincode(&self, name: &str) -> Option<ChaincodeDefinition> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .chaincodes
            .get(name)
            .cloned()
    }

    /// Re-reads the definitions `commits` wrote through `_lifecycle` into validation's
    /// configuration; returns them.
    fn redefine(
        &self,
        commits: &[CommitTx],
    ) -> Result<Vec<(String, Option<lifecycle::Definition>)>, CommitError> {
        let mut names = std::collections::BTreeSet::new();
        for tx in commits {
            for ns in &tx.rwset.ns_rwset {
                if ns.namespace != lifecycle::NAMESPACE {
                    continue;
                }
                let Ok(kv) = cchost_proto::kvrwset::KvrwSet::decode(ns.rwset.as_slice()) else {
                    continue;
                };
                for write in &kv.writes {
                    let key = write.key.as_str();
                    let name = key
                        .strip_prefix("namespaces/metadata/")
                        .or_else(|| {
                            key.strip_prefix("namespaces/fields/")
                                .and_then(|rest| rest.split('/').next())
                        })
                        .or_else(|| {
                            // An approval, `cchost/approvals/<MSPID>/<name>#<sequence>`:
                            // it can change the package a definition runs.
                            key.strip_prefix("cchost/approvals/")
                                .and_then(|rest| rest.split('/').nth(1))
                                .and_then(|rest| rest.rsplit_once('#'))
                                .map(|(name, _)| name)
                        });
                    if let Some(name) = name {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let snapshot = self.state.snapshot(&self.channel)?;
        let mut out = Vec::new();
        let mut config = self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for name in names {
            let definition = lifecycle::committed(snapshot.as_ref(), &name)?;
            match &definition {
                Some(d) => {
                    config.chaincodes.insert(name.clone(), d.for_validation()?);
                }
                None => {
                    config.chaincodes.remove(&name);
                }
            }
            out.push((name, definition));
        }
        Ok(out)
    }
}

/// The writes of a stored block's valid transactions (by its TRANSACTIONS_FILTER), as
/// replay applies them.
pub fn valid_writes(block: &StoredBlock) -> Vec<CommitTx> {
    let filter = block
        .metadata
        .get(TRANSACTIONS_FILTER)
        .cloned()
        .unwrap_or_default();
    let mut txs = Vec::new();
    for (index, envelope) in block.data.iter().enumerate() {
        if filter.get(index) != Some(&(TxValidationCode::Valid as u8)) {
            continue;
        }
        let Some((tx_id, timestamp, rwset)) = endorser_rwset(envelope) else {
            continue;
        };
        txs.push(CommitTx {
            height: Height::new(block.number, u64::try_from(index).unwrap_or(u64::MAX)),
            tx_id,
            timestamp,
            rwset,
        });
    }
    txs
}

/// (txid, timestamp, read/write set) of an endorser transaction envelope.
fn endorser_rwset(envelope: &[u8]) -> Option<(String, prost_types::Timestamp, TxReadWriteSet)> {
    let envelope = Envelope::decode(envelope).ok()?;
    let payload = Payload::decode(envelope.payload.as_slice()).ok()?;
    let header = ChannelHeader::decode(payload.header?.channel_header.as_slice()).ok()?;
    if header.r#type != cchost_proto::common::HeaderType::EndorserTransaction as i32 {
        return None;
    }
    let transaction = Transaction::decode(payload.data.as_slice()).ok()?;
    let action = transaction.actions.first()?;
    let action_payload = ChaincodeActionPayload::decode(action.payload.as_slice()).ok()?;
    let response = ProposalResponsePayload::decode(
        action_payload.action?.proposal_response_payload.as_slice(),
    )
    .ok()?;
    let chaincode_action = ChaincodeAction::decode(response.extension.as_slice()).ok()?;
    let rwset = TxReadWriteSet::decode(chaincode_action.results.as_slice()).ok()?;
    Some((header.tx_id, header.timestamp.unwrap_or_default(), rwset))
}
