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
    /// Reads not yet hashed into the tree (at most the degree).
    pending: Vec<KvRead>,
    tree: MerkleTree,
}

impl RangeRead {
    pub(crate) fn new(start_key: &str, end_key: &str) -> Self {
        Self::with_degree(start_key, end_key, MAX_DEGREE)
    }

    /// A record whose Merkle tree has degree `degree` (Fabric's is always
    /// [`MAX_DEGREE`]; its own tests use smaller ones, as ours do).
    fn with_degree(start_key: &str, end_key: &str, degree: usize) -> Self {
        Self {
            start_key: start_key.to_owned(),
            end_key: end_key.to_owned(),
            last_key: None,
            exhausted: false,
            pending: Vec::new(),
            tree: MerkleTree::new(degree),
        }
    }

    /// The bytes this record counts for when opened.
    pub(crate) fn opened_size(&self) -> usize {
        self.start_key.len() + self.end_key.len() + RANGE_OVERHEAD
    }

    /// `(added, released)` bytes of recording a read of `key`: its own size, or, when it
    /// completes a chunk, the chunk's hash for the chunk's raw reads.
    pub(crate) fn record_cost(&self, key: &str) -> (usize, usize) {
        if self.pending.len() >= self.tree.degree {
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
        if self.pending.len() > self.tree.degree {
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

/// Fabric's `merkleTree`: hashes by level; a level with more than `degree` hashes is
/// combined into one hash of the next level.
#[derive(Debug, Clone)]
struct MerkleTree {
    degree: usize,
    levels: BTreeMap<u32, Vec<Hash>>,
    max_level: u32,
}

impl MerkleTree {
    fn new(degree: usize) -> Self {
        Self {
            degree,
            levels: BTreeMap::new(),
            max_level: 1,
        }
    }

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
            if hashes.len() <= self.degree {
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
    /// is itself folded once more if it holds more than `degree` hashes.
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
        let top = if top.len() > self.degree {
            self.max_level += 1;
            vec![combined(&top)]
        } else {
            top
        };
        QueryReadsMerkleSummary {
            max_degree: u32::try_from(self.degree).unwrap_or(u32::MAX),
            max_level: self.max_level,
            max_level_hashes: top.into_iter().map(|h| h.to_vec()).collect(),
        }
    }
}

/// The tree shapes of Fabric's own `query_results_helper_test.go` (reads `key_<i>` at
/// height (1, i), small degrees): which chunks of reads are hashed, which hashes combine
/// at which level, and which are carried up unchanged.
#[cfg(test)]
mod tests {
    use super::*;

    fn summary(degree: usize, results: usize) -> kvrwset::RangeQueryInfo {
        let mut range = RangeRead::with_degree("", "", degree);
        for i in 0..results {
            range.record(&format!("key_{i}"), Height::new(1, i as u64));
        }
        range.info()
    }

    /// The hash of the chunk of reads `from..to`.
    fn chunk(from: usize, to: usize) -> Hash {
        hash_reads(
            (from..to)
                .map(|i| KvRead {
                    key: format!("key_{i}"),
                    version: Some(Height::new(1, i as u64).to_version()),
                })
                .collect(),
        )
    }

    /// Level-1 hashes of chunks of `size` reads, numbered from 1 as Fabric's test does.
    fn level1(size: usize, total: usize) -> Vec<Hash> {
        (0..total.div_ceil(size))
            .map(|c| chunk(c * size, ((c + 1) * size).min(total)))
            .collect()
    }

    fn merkle(degree: u32, level: u32, hashes: &[Hash]) -> Option<ReadsInfo> {
        Some(ReadsInfo::ReadsMerkleHashes(QueryReadsMerkleSummary {
            max_degree: degree,
            max_level: level,
            max_level_hashes: hashes.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    #[test]
    fn no_more_results_than_the_degree_are_kept_raw() {
        let info = summary(3, 3);
        let Some(ReadsInfo::RawReads(raw)) = info.reads_info else {
            panic!("{info:?}");
        };
        let keys: Vec<_> = raw.kv_reads.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["key_0", "key_1", "key_2"]);
    }

    #[test]
    fn nine_results_of_degree_3_make_one_level_of_three_chunk_hashes() {
        let l1 = level1(4, 9);
        assert_eq!(summary(3, 9).reads_info, merkle(3, 1, &l1));
    }

    #[test]
    fn twenty_five_results_of_degree_3_make_two_levels() {
        let l1 = level1(4, 25);
        let l2 = [combined(&l1[0..4]), combined(&l1[4..7])];
        assert_eq!(summary(3, 25).reads_info, merkle(3, 2, &l2));
    }

    #[test]
    fn sixty_five_results_of_degree_3_carry_the_last_chunk_hash_up_to_level_3() {
        let l1 = level1(4, 65);
        let l2: Vec<Hash> = l1[0..16].chunks(4).map(combined).collect();
        let l3 = [combined(&l2), l1[16]];
        assert_eq!(summary(3, 65).reads_info, merkle(3, 3, &l3));
    }

    #[test]
    fn a_full_top_level_is_folded_once_more_when_done() {
        let l1 = level1(3, 24);
        let l2 = [
            combined(&l1[0..3]),
            combined(&l1[3..6]),
            combined(&l1[6..8]),
        ];
        assert_eq!(summary(2, 24).reads_info, merkle(2, 3, &[combined(&l2)]));
    }

    #[test]
    fn an_empty_first_level_is_skipped_when_done() {
        let l1 = level1(3, 45);
        let l2: Vec<Hash> = l1.chunks(3).map(combined).collect();
        let l3 = [combined(&l2[0..3]), combined(&l2[3..5])];
        assert_eq!(summary(2, 45).reads_info, merkle(2, 3, &l3));
    }
}
