//! The ledger's state: a versioned key-value store, transaction simulation that records
//! Fabric's read/write sets, and key history.
//!
//! - [`StateStore`] is the committed state of every channel, keyed by channel, namespace
//!   (chaincode name) and key, with Fabric versions (block number, transaction number).
//!   [`RedbStore`] is the embedded, crash-safe default.
//! - [`TxSimulator`] runs one transaction against a consistent snapshot and produces its
//!   `TxReadWriteSet` exactly as Fabric's simulator does.
//! - [`StateStore::commit`] applies the write sets of valid transactions at their heights;
//!   later snapshots see them, and the history index records every write.

pub mod blockfile;
pub mod blocks;
pub mod blockstore;
pub mod commit;
pub mod policy;
mod range_read;
mod simulator;
mod store;
pub mod validation;

pub use simulator::{DEFAULT_MAX_RWSET_BYTES, RangeQueryId, TxSimulator};
pub use store::{CommitTx, RedbStore, StateSnapshot, StateStore};

use std::collections::BTreeMap;

use cchost_proto::kvrwset;

/// A transaction's position in the chain: the version a committed key carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height {
    /// Block number.
    pub block: u64,
    /// Transaction number within the block.
    pub tx: u64,
}

impl Height {
    /// The height of transaction `tx` in block `block`.
    pub const fn new(block: u64, tx: u64) -> Self {
        Self { block, tx }
    }

    pub(crate) fn to_version(self) -> kvrwset::Version {
        kvrwset::Version {
            block_num: self.block,
            tx_num: self.tx,
        }
    }
}

/// How much one range or history read may return: at most `count` entries, and an error
/// ([`LedgerError::ReadTooLarge`]) once the stored entries it has read pass `bytes`, so
/// that a batch of large values is refused before it is all in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    /// Entries, at most.
    pub count: usize,
    /// Stored bytes (keys and records), at most.
    pub bytes: usize,
}

impl ReadLimit {
    /// At most `count` entries, of any size.
    pub const fn count(count: usize) -> Self {
        Self {
            count,
            bytes: usize::MAX,
        }
    }

    /// Adds one stored entry of `len` bytes to `total`; past the byte bound, the error.
    pub(crate) fn add(self, total: &mut usize, len: usize) -> Result<(), LedgerError> {
        *total = total.saturating_add(len);
        if *total > self.bytes {
            return Err(LedgerError::ReadTooLarge { limit: self.bytes });
        }
        Ok(())
    }
}

/// A committed value with its version and state metadata (e.g. `VALIDATION_PARAMETER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The height of the transaction that last wrote the key.
    pub version: Height,
    /// State metadata entries by name.
    pub metadata: BTreeMap<String, Vec<u8>>,
}

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The embedded database failed (I/O, corruption). The operation did not happen.
    #[error("state database error: {0}")]
    Storage(String),
    /// This node has no ledger for the channel (Fabric's text).
    #[error("failed to find ledger for channel: {0}")]
    NoLedger(String),
    /// A stored record does not decode: the database is corrupt.
    #[error("corrupt state database record: {0}")]
    Corrupt(String),
    /// A write set does not decode.
    #[error("invalid read/write set for namespace {namespace}: {reason}")]
    InvalidRwSet {
        /// The namespace whose `KVRWSet` is bad.
        namespace: String,
        /// The decode error.
        reason: String,
    },
    /// A write after a paginated query: Fabric allows those only in read-only transactions.
    #[error(
        "txid [{txid}]: unsuppored transaction. Transaction has already performed a paginated query. Writes are not allowed"
    )]
    WriteAfterPaginatedQuery {
        /// The transaction.
        txid: String,
    },
    /// A paginated query after a write (Fabric's text, its spelling included).
    #[error(
        "txid [{txid}]: unsuppored transaction. Paginated queries are supported only in a read-only transaction"
    )]
    PaginatedQueryAfterWrite {
        /// The transaction.
        txid: String,
    },
    /// One batch of range or history results would pass its byte bound.
    #[error("the results of one query batch exceed {limit} bytes, the maximum message size")]
    ReadTooLarge {
        /// The bound, bytes.
        limit: usize,
    },
    /// The transaction's read/write set would pass its bound.
    #[error("the transaction's read/write set exceeds its limit of {limit} bytes")]
    RwSetTooLarge {
        /// The bound, bytes.
        limit: usize,
    },
}

impl LedgerError {
    fn storage(e: impl std::fmt::Display) -> Self {
        Self::Storage(e.to_string())
    }
}
