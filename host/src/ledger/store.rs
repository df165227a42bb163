//! Committed state: the [`StateStore`] trait and its embedded default, [`RedbStore`].
//!
//! redb is a pure-Rust, copy-on-write B-tree store with ACID transactions: a commit is
//! durable once `commit` returns, and a crash leaves the last committed state intact. A
//! read transaction is a consistent snapshot that does not block writers, which is what a
//! transaction simulator needs.
//!
//! Layout (all keys are bytes, ordered lexicographically):
//! - `state`: `len32(channel) channel len32(namespace) namespace key` → [`StoredValue`]
//! - `history`: `len32(channel) channel len32(namespace) namespace len32(key) key block tx`
//!   (big-endian u64s) → `queryresult.KeyModification`

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use cchost_proto::kvrwset::{self, KvMetadataEntry};
use cchost_proto::queryresult::KeyModification;
use cchost_proto::rwset::TxReadWriteSet;
use prost::Message;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Height, LedgerError, ReadLimit, VersionedValue};

const STATE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("state");
const HISTORY: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("history");
const CHANNELS: TableDefinition<'_, &str, ()> = TableDefinition::new("channels");
/// channel → the number of blocks applied (big-endian u64) ‖ the last block's record.
const APPLIED: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("applied");

/// A valid transaction's writes, applied at its height.
#[derive(Debug, Clone)]
pub struct CommitTx {
    /// Block and transaction number: the version of every key it writes.
    pub height: Height,
    /// Its id, recorded in key history.
    pub tx_id: String,
    /// Its channel-header timestamp, recorded in key history.
    pub timestamp: prost_types::Timestamp,
    /// The read/write set the endorsement produced.
    pub rwset: TxReadWriteSet,
}

/// The committed state of every channel this node has a ledger for.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Creates the ledger of `channel` (empty state); nothing if it exists.
    fn create_channel(&self, channel: &str) -> Result<(), LedgerError>;

    /// Whether this node has a ledger for `channel`.
    fn has_channel(&self, channel: &str) -> Result<bool, LedgerError>;

    /// A consistent, read-only view of `channel`'s state as of now;
    /// [`LedgerError::NoLedger`] if there is no such ledger.
    fn snapshot(&self, channel: &str) -> Result<Box<dyn StateSnapshot>, LedgerError>;

    /// Applies the writes of valid transactions, in order, atomically: all or none.
    fn commit(&self, channel: &str, txs: &[CommitTx]) -> Result<(), LedgerError>;

    /// How many blocks of `channel` state holds the writes of, and the block-file record
    /// of the last one (kept so that a block store that lost its last block can get it
    /// back).
    fn applied(&self, channel: &str) -> Result<(u64, Option<Vec<u8>>), LedgerError>;

    /// Applies the valid writes of block `number` (its `record` as the block files hold
    /// it) and records that `number + 1` blocks are applied, atomically: all or none.
    fn commit_block(
        &self,
        channel: &str,
        number: u64,
        record: &[u8],
        txs: &[CommitTx],
    ) -> Result<(), LedgerError>;
}

/// A consistent view of one channel's committed state.
pub trait StateSnapshot: Send + Sync {
    /// The committed value of `key` in `namespace`, if any.
    fn get(&self, namespace: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError>;

    /// Keys in `[start, end)` in byte order, from `start` inclusive, within `limit`. An
    /// empty `end` means no upper bound.
    fn range(
        &self,
        namespace: &str,
        start: &str,
        end: &str,
        limit: ReadLimit,
    ) -> Result<Vec<(String, VersionedValue)>, LedgerError>;

    /// Modifications of `key` within `limit`, newest first, strictly older than `before`
    /// (all of them when `before` is `None`), each with the height that made it.
    fn history(
        &self,
        namespace: &str,
        key: &str,
        before: Option<Height>,
        limit: ReadLimit,
    ) -> Result<Vec<(Height, KeyModification)>, LedgerError>;
}

/// How a value is stored: the value, its version and its metadata.
#[derive(Clone, PartialEq, Message)]
struct StoredValue {
    #[prost(bytes = "vec", tag = "1")]
    value: Vec<u8>,
    #[prost(uint64, tag = "2")]
    block: u64,
    #[prost(uint64, tag = "3")]
    tx: u64,
    #[prost(message, repeated, tag = "4")]
    metadata: Vec<KvMetadataEntry>,
}

impl StoredValue {
    fn decode_from(bytes: &[u8]) -> Result<VersionedValue, LedgerError> {
        let stored = Self::decode(bytes).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        Ok(VersionedValue {
            value: stored.value,
            version: Height::new(stored.block, stored.tx),
            metadata: stored
                .metadata
                .into_iter()
                .map(|e| (e.name, e.value))
                .collect(),
        })
    }

    fn encode_from(value: &VersionedValue) -> Vec<u8> {
        Self {
            value: value.value.clone(),
            block: value.version.block,
            tx: value.version.tx,
            metadata: value
                .metadata
                .iter()
                .map(|(name, value)| KvMetadataEntry {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
        .encode_to_vec()
    }
}

fn push_len_prefixed(buf: &mut Vec<u8>, part: &[u8]) {
    // Channel names, chaincode names and keys are far below 4 GiB (gRPC messages are capped
    // well below that), so the length always fits.
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(part);
}

/// `len32(channel) channel len32(namespace) namespace`: every state key of a namespace
/// starts with it, so keys of one namespace are contiguous and in key order.
fn namespace_prefix(channel: &str, namespace: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(8 + channel.len() + namespace.len());
    push_len_prefixed(&mut buf, channel.as_bytes());
    push_len_prefixed(&mut buf, namespace.as_bytes());
    buf
}

fn state_key(channel: &str, namespace: &str, key: &str) -> Vec<u8> {
    let mut buf = namespace_prefix(channel, namespace);
    buf.extend_from_slice(key.as_bytes());
    buf
}

fn history_prefix(channel: &str, namespace: &str, key: &str) -> Vec<u8> {
    let mut buf = namespace_prefix(channel, namespace);
    push_len_prefixed(&mut buf, key.as_bytes());
    buf
}

fn history_key(prefix: &[u8], height: Height) -> Vec<u8> {
    let mut buf = Vec::with_capacity(prefix.len() + 16);
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(&height.block.to_be_bytes());
    buf.extend_from_slice(&height.tx.to_be_bytes());
    buf
}

fn height_of_history_key(prefix_len: usize, key: &[u8]) -> Result<Height, LedgerError> {
    let corrupt = || LedgerError::Corrupt("history key has no height".into());
    let suffix = key.get(prefix_len..).ok_or_else(corrupt)?;
    let (block, tx) = suffix.split_at_checked(8).ok_or_else(corrupt)?;
    let block = u64::from_be_bytes(block.try_into().map_err(|_| corrupt())?);
    let tx = u64::from_be_bytes(tx.try_into().map_err(|_| corrupt())?);
    Ok(Height::new(block, tx))
}

/// The embedded state store: one redb database file for every channel.
pub struct RedbStore {
    db: Database,
    /// Channels known to have a ledger: a channel is never removed, so once seen in the
    /// table it needs no lookup again (every transaction's snapshot asks).
    channels: std::sync::RwLock<std::collections::HashSet<String>>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

/// The state database's page cache, as Fabric's LevelDB state database keeps (8 MiB).
/// redb's default (1 GiB) let a node's resident memory grow with its ledger for as long
/// as it ran (`scripts/campaign soak`: +30 MiB from minute 1 to 5 with 32 MiB caches).
/// Pages beyond it are read again from the file (the kernel's page cache).
pub(crate) const STATE_CACHE_BYTES: usize = 8 << 20;

impl RedbStore {
    /// Opens (or creates) the state database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let db = Database::builder()
            .set_cache_size(STATE_CACHE_BYTES)
            .create(path)
            .map_err(LedgerError::storage)?;
        Self::init(db)
    }

    /// A store that lives in memory only: for tests and throw-away nodes.
    pub fn in_memory() -> Result<Self, LedgerError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(LedgerError::storage)?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<Self, LedgerError> {
        let write = db.begin_write().map_err(LedgerError::storage)?;
        write.open_table(STATE).map_err(LedgerError::storage)?;
        write.open_table(HISTORY).map_err(LedgerError::storage)?;
        write.open_table(CHANNELS).map_err(LedgerError::storage)?;
        write.open_table(APPLIED).map_err(LedgerError::storage)?;
        write.commit().map_err(LedgerError::storage)?;
        Ok(Self {
            db,
            channels: std::sync::RwLock::default(),
        })
    }

    fn known_channel(&self, channel: &str) -> bool {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(channel)
    }

    fn remember_channel(&self, channel: &str) {
        self.channels
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel.to_owned());
    }

    fn require_channel(&self, txn: &ReadTransaction, channel: &str) -> Result<(), LedgerError> {
        if self.known_channel(channel) {
            return Ok(());
        }
        let channels = txn.open_table(CHANNELS).map_err(LedgerError::storage)?;
        match channels.get(channel).map_err(LedgerError::storage)? {
            Some(_) => {
                self.remember_channel(channel);
                Ok(())
            }
            None => Err(LedgerError::NoLedger(channel.to_owned())),
        }
    }
}

impl StateStore for RedbStore {
    fn create_channel(&self, channel: &str) -> Result<(), LedgerError> {
        let write = self.db.begin_write().map_err(LedgerError::storage)?;
        write
            .open_table(CHANNELS)
            .map_err(LedgerError::storage)?
            .insert(channel, ())
            .map_err(LedgerError::storage)?;
        write.commit().map_err(LedgerError::storage)?;
        self.remember_channel(channel);
        Ok(())
    }

    fn has_channel(&self, channel: &str) -> Result<bool, LedgerError> {
        let txn = self.db.begin_read().map_err(LedgerError::storage)?;
        match self.require_channel(&txn, channel) {
            Ok(()) => Ok(true),
            Err(LedgerError::NoLedger(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn snapshot(&self, channel: &str) -> Result<Box<dyn StateSnapshot>, LedgerError> {
        let txn = self.db.begin_read().map_err(LedgerError::storage)?;
        self.require_channel(&txn, channel)?;
        Ok(Box::new(RedbSnapshot {
            channel: channel.to_owned(),
            txn,
        }))
    }

    fn commit(&self, channel: &str, txs: &[CommitTx]) -> Result<(), LedgerError> {
        let write = self.db.begin_write().map_err(LedgerError::storage)?;
        apply(&write, channel, txs)?;
        write.commit().map_err(LedgerError::storage)
    }

    fn applied(&self, channel: &str) -> Result<(u64, Option<Vec<u8>>), LedgerError> {
        let read = self.db.begin_read().map_err(LedgerError::storage)?;
        let table = read.open_table(APPLIED).map_err(LedgerError::storage)?;
        let Some(entry) = table.get(channel).map_err(LedgerError::storage)? else {
            return Ok((0, None));
        };
        let bytes = entry.value();
        let (height, record) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| LedgerError::Corrupt("applied-height record is short".into()))?;
        Ok((u64::from_be_bytes(*height), Some(record.to_vec())))
    }

    fn commit_block(
        &self,
        channel: &str,
        number: u64,
        record: &[u8],
        txs: &[CommitTx],
    ) -> Result<(), LedgerError> {
        let write = self.db.begin_write().map_err(LedgerError::storage)?;
        apply(&write, channel, txs)?;
        {
            let mut applied = write.open_table(APPLIED).map_err(LedgerError::storage)?;
            let mut value = Vec::with_capacity(8 + record.len());
            value.extend_from_slice(&(number + 1).to_be_bytes());
            value.extend_from_slice(record);
            applied
                .insert(channel, value.as_slice())
                .map_err(LedgerError::storage)?;
        }
        write.commit().map_err(LedgerError::storage)
    }
}

/// Applies the writes of valid transactions, in order, within `write`.
fn apply(
    write: &redb::WriteTransaction,
    channel: &str,
    txs: &[CommitTx],
) -> Result<(), LedgerError> {
    let channels = write.open_table(CHANNELS).map_err(LedgerError::storage)?;
    if channels
        .get(channel)
        .map_err(LedgerError::storage)?
        .is_none()
    {
        return Err(LedgerError::NoLedger(channel.to_owned()));
    }
    let mut state = write.open_table(STATE).map_err(LedgerError::storage)?;
    let mut history = write.open_table(HISTORY).map_err(LedgerError::storage)?;
    for tx in txs {
        for ns in &tx.rwset.ns_rwset {
            let kv = kvrwset::KvrwSet::decode(ns.rwset.as_slice()).map_err(|e| {
                LedgerError::InvalidRwSet {
                    namespace: ns.namespace.clone(),
                    reason: e.to_string(),
                }
            })?;
            let metadata_writes: BTreeMap<&str, &[KvMetadataEntry]> = kv
                .metadata_writes
                .iter()
                .map(|w| (w.key.as_str(), w.entries.as_slice()))
                .collect();
            let to_map = |entries: &[KvMetadataEntry]| {
                entries
                    .iter()
                    .map(|e| (e.name.clone(), e.value.clone()))
                    .collect::<BTreeMap<_, _>>()
            };
            for write in &kv.writes {
                let key = state_key(channel, &ns.namespace, &write.key);
                let deleted = write.is_delete || write.value.is_empty();
                if deleted {
                    state.remove(key.as_slice()).map_err(LedgerError::storage)?;
                } else {
                    // A value write keeps the key's metadata unless it is rewritten.
                    let metadata = match metadata_writes.get(write.key.as_str()) {
                        Some(entries) => to_map(entries),
                        None => match state.get(key.as_slice()).map_err(LedgerError::storage)? {
                            Some(old) => StoredValue::decode_from(old.value())?.metadata,
                            None => BTreeMap::new(),
                        },
                    };
                    let stored = StoredValue::encode_from(&VersionedValue {
                        value: write.value.clone(),
                        version: tx.height,
                        metadata,
                    });
                    state
                        .insert(key.as_slice(), stored.as_slice())
                        .map_err(LedgerError::storage)?;
                }
                let record = KeyModification {
                    tx_id: tx.tx_id.clone(),
                    value: if deleted { vec![] } else { write.value.clone() },
                    timestamp: Some(tx.timestamp),
                    is_delete: deleted,
                };
                let hkey = history_key(
                    &history_prefix(channel, &ns.namespace, &write.key),
                    tx.height,
                );
                history
                    .insert(hkey.as_slice(), record.encode_to_vec().as_slice())
                    .map_err(LedgerError::storage)?;
            }
            // Metadata-only writes update an existing key (and its version); on a
            // key that does not exist they do nothing.
            for write in &kv.metadata_writes {
                if kv.writes.iter().any(|w| w.key == write.key) {
                    continue;
                }
                let key = state_key(channel, &ns.namespace, &write.key);
                let existing = match state.get(key.as_slice()).map_err(LedgerError::storage)? {
                    Some(old) => Some(StoredValue::decode_from(old.value())?),
                    None => None,
                };
                if let Some(mut value) = existing {
                    value.metadata = to_map(&write.entries);
                    value.version = tx.height;
                    let stored = StoredValue::encode_from(&value);
                    state
                        .insert(key.as_slice(), stored.as_slice())
                        .map_err(LedgerError::storage)?;
                }
            }
        }
    }
    Ok(())
}

struct RedbSnapshot {
    channel: String,
    txn: ReadTransaction,
}

impl StateSnapshot for RedbSnapshot {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError> {
        let table = self.txn.open_table(STATE).map_err(LedgerError::storage)?;
        let key = state_key(&self.channel, namespace, key);
        match table.get(key.as_slice()).map_err(LedgerError::storage)? {
            Some(stored) => Ok(Some(StoredValue::decode_from(stored.value())?)),
            None => Ok(None),
        }
    }

    fn range(
        &self,
        namespace: &str,
        start: &str,
        end: &str,
        limit: ReadLimit,
    ) -> Result<Vec<(String, VersionedValue)>, LedgerError> {
        let table = self.txn.open_table(STATE).map_err(LedgerError::storage)?;
        let prefix = namespace_prefix(&self.channel, namespace);
        let lo = state_key(&self.channel, namespace, start);
        let iter = if end.is_empty() {
            table.range(lo.as_slice()..)
        } else {
            let hi = state_key(&self.channel, namespace, end);
            if hi <= lo {
                return Ok(Vec::new());
            }
            table.range(lo.as_slice()..hi.as_slice())
        }
        .map_err(LedgerError::storage)?;
        let (mut out, mut bytes) = (Vec::new(), 0);
        for entry in iter {
            if out.len() >= limit.count {
                break;
            }
            let (k, v) = entry.map_err(LedgerError::storage)?;
            let Some(key) = k.value().strip_prefix(prefix.as_slice()) else {
                break; // past the namespace
            };
            limit.add(&mut bytes, key.len() + v.value().len())?;
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| LedgerError::Corrupt("state key is not UTF-8".into()))?;
            out.push((key, StoredValue::decode_from(v.value())?));
        }
        Ok(out)
    }

    fn history(
        &self,
        namespace: &str,
        key: &str,
        before: Option<Height>,
        limit: ReadLimit,
    ) -> Result<Vec<(Height, KeyModification)>, LedgerError> {
        let table = self.txn.open_table(HISTORY).map_err(LedgerError::storage)?;
        let prefix = history_prefix(&self.channel, namespace, key);
        let lo = history_key(&prefix, Height::new(0, 0));
        let hi = match before {
            Some(height) => history_key(&prefix, height),
            None => history_key(&prefix, Height::new(u64::MAX, u64::MAX)),
        };
        let (mut out, mut bytes) = (Vec::new(), 0);
        let iter = table
            .range(lo.as_slice()..hi.as_slice())
            .map_err(LedgerError::storage)?;
        for entry in iter.rev() {
            if out.len() >= limit.count {
                break;
            }
            let (k, v) = entry.map_err(LedgerError::storage)?;
            limit.add(&mut bytes, v.value().len())?;
            let height = height_of_history_key(prefix.len(), k.value())?;
            let record = KeyModification::decode(v.value())
                .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
            out.push((height, record));
        }
        Ok(out)
    }
}
