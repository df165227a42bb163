//! What one range query read, recorded as Fabric records it in a `RangeQueryInfo`
//! (`rwsetutil.RangeQueryResultsHelper` and `txmgr.resultsItr`): the results as raw
//! `KVRead`s while there are at most [`MAX_DEGREE`] of them, beyond that a Merkle
//! summary of SHA-256 hashes over chunks of `MAX_DEGREE + 1` reads, so a record never
//! holds more than a few chunks, however many results the query returns.

use std::collections::BTreeMap;

use cchost_proto::kvrwset::{
    self, KvRead, QueryReads, QueryReadsMerkleSummary, range_query_info::ReadsInfo,
};
use prost::Message;
use sha2::{Digest, Sha256};

use super::Height;

/// Fabric's `maxDegreeQueryReadsHashing`: raw reads up to this many results, a Merkle
/// tree of this degree beyond.
pub(crate) const MAX_DEGREE: usize = 50;

/// Bytes a recorded read counts for besides its key: about what a `KVRead` takes in
/// memory on a 64-bit host. A fixed figure, not `size_of` (which differs by platform):
/// the read/write-set bound must fall at the same read on every peer.
pub(crate) const READ_OVERHEAD: usize = 48;
/// Bytes a range record counts for besides its keys and reads: about what the record,
/// its namespace entry and its Merkle tree take in memory (fixed, as above).
const RANGE_OVERHEAD: usize = 256;
/// Bytes a hash of the summary counts for.
const HASH_BYTES: usize = 32;

type Hash = [u8; 32];

fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

fn combined(hashes: &[Hash]) -> Hash {
    sha256(&hashes.concat())
}

/// One range iterator's record.
#[derive(Debug, Clone)]
pub(crate) struct RangeRead {
    start_key: String,
    end_key: String,
    /// The last key read, until the iterator is exhausted.
    last_key: Option<String>,
    exhausted: bool,
    /// Reads not yet hashed into the tree (at most `MAX_DEGREE`).
    pending: Vec<KvRead>,
    tree: MerkleTree,
}

impl RangeRead {
    pub(crate) fn new(start_key: &str, end_key: &str) -> Self {
        Self {
            start_key: start_key.to_owned(),
            end_key: end_key.to_owned(),
            last_key: None,
            exhausted: false,
            pending: Vec::new(),
            tree: MerkleTree::default(),
        }
    }

    /// The bytes this record counts for when opened.
    pub(crate) fn opened_size(&self) -> usize {
        self.start_key.len() + self.end_key.len() + RANGE_OVERHEAD
    }

    /// `(added, released)` bytes of recording a read of `key`: its own size, or, when it
    /// completes a chunk, the chunk's hash for the chunk's raw reads.
    pub(crate) fn record_cost(&self, key: &str) -> (usize, usize) {
        if self.pending.len() >= MAX_DEGREE {
            let raw = self.pending.iter().map(|r| size_of_read(&r.key)).sum();
            (HASH_BYTES, raw)
        } else {
            (size_of_read(key), 0)
        }
    }

    /// Records a result handed to the chaincode.
    pub(crate) fn record(&mut self, key: &str, version: Height) {
        self.last_key = Some(key.to_owned());
        self.pending.push(KvRead {
            key: key.to_owned(),
            version: Some(version.to_version()),
        });
        if self.pending.len() > MAX_DEGREE {
            let chunk = std::mem::take(&mut self.pending);
            self.tree.update(hash_reads(chunk));
        }
    }

    /// The iterator read past its last result.
    pub(crate) fn set_exhausted(&mut self) {
        self.exhausted = true;
    }

    /// `(start, end, exhausted)` of the record, Fabric's key for keeping identical
    /// records once.
    pub(crate) fn identity(&self) -> (&str, &str, bool) {
        (&self.start_key, self.end_key(), self.exhausted)
    }

    /// An exhausted iterator ends at the query's end key; one that stopped early at the
    /// last key it read (nothing after it was seen), or `""` if it read nothing.
    fn end_key(&self) -> &str {
        if self.exhausted {
            &self.end_key
        } else {
            self.last_key.as_deref().unwrap_or("")
        }
    }

    /// The `RangeQueryInfo` Fabric's simulator would record.
    pub(crate) fn info(&self) -> kvrwset::RangeQueryInfo {
        let reads_info = if self.tree.is_empty() {
            // No results: the field is left unset, as Fabric leaves it.
            (!self.pending.is_empty()).then(|| {
                ReadsInfo::RawReads(QueryReads {
                    kv_reads: self.pending.clone(),
                })
            })
        } else {
            let mut tree = self.tree.clone();
            if !self.pending.is_empty() {
                tree.update(hash_reads(self.pending.clone()));
            }
            Some(ReadsInfo::ReadsMerkleHashes(tree.summary()))
        };
        kvrwset::RangeQueryInfo {
            start_key: self.start_key.clone(),
            end_key: self.end_key().to_owned(),
            itr_exhausted: self.exhausted,
            reads_info,
        }
    }
}

fn size_of_read(key: &str) -> usize {
    key.len() + READ_OVERHEAD
}

/// SHA-256 of the encoded `QueryReads` of a chunk of reads.
fn hash_reads(kv_reads: Vec<KvRead>) -> Hash {
    sha256(&QueryReads { kv_reads }.encode_to_vec())
}

/// Fabric's `merkleTree`: hashes by level; a level with more than `MAX_DEGREE` hashes is
/// combined into one hash of the next level.
#[derive(Debug, Clone)]
struct MerkleTree {
    levels: BTreeMap<u32, Vec<Hash>>,
    max_level: u32,
}

impl Default for MerkleTree {
    fn default() -> Self {
        Self {
            levels: BTreeMap::new(),
            max_level: 1,
        }
    }
}

impl MerkleTree {
    fn is_empty(&self) -> bool {
        self.max_level == 1 && self.levels.get(&1).is_none_or(Vec::is_empty)
    }

    fn update(&mut self, leaf: Hash) {
        self.levels.entry(1).or_default().push(leaf);
        let mut level = 1;
        loop {
            let Some(hashes) = self.levels.get(&level) else {
                return;
            };
            if hashes.len() <= MAX_DEGREE {
                return;
            }
            let next = combined(hashes);
            self.levels.remove(&level);
            level += 1;
            self.levels.entry(level).or_default().push(next);
            self.max_level = self.max_level.max(level);
        }
    }

    /// Fabric's `done` then `getSummery`: lower levels folded up to the highest, which
    /// is itself folded once more if it holds more than `MAX_DEGREE` hashes.
    fn summary(mut self) -> QueryReadsMerkleSummary {
        let mut level = 1;
        while level < self.max_level {
            let hashes = self.levels.remove(&level).unwrap_or_default();
            let folded = match hashes.as_slice() {
                [] => {
                    level += 1;
                    continue;
                }
                [one] => *one,
                many => combined(many),
            };
            level += 1;
            self.levels.entry(level).or_default().push(folded);
        }
        let top = self.levels.remove(&self.max_level).unwrap_or_default();
        let top = if top.len() > MAX_DEGREE {
            self.max_level += 1;
            vec![combined(&top)]
        } else {
            top
        };
        QueryReadsMerkleSummary {
            max_degree: MAX_DEGREE as u32,
            max_level: self.max_level,
            max_level_hashes: top.into_iter().map(|h| h.to_vec()).collect(),
        }
    }
}
