//! Transaction simulation: reads from a snapshot, buffered writes, and the read/write set
//! Fabric's simulator would record for them.
//!
//! Fabric's rules, kept exactly:
//! - reads always see committed state, never the transaction's own writes;
//! - each read records the key's committed version (none if it was absent);
//! - a put with an empty value is a delete (`KVWrite.is_delete = len(value) == 0`);
//! - the last write of a key wins; reads, writes and metadata writes are sorted by key,
//!   namespaces by name;
//! - every range iterator, paginated or not, closed or not, is recorded
//!   ([`range_read`](super::range_read)), in the order the iterators were opened, and
//!   identical records (same start, end and exhaustion) are kept once per namespace;
//! - a paginated query is refused after a write, and a write after a paginated query
//!   (paginated queries are for read-only transactions), with Fabric's texts.
//!
//! One rule of cchost's own: a transaction's read/write set may not grow past
//! `max_bytes` (keys, values, versions and range records), so that no chaincode can make
//! the host hold more for it than a client could ever be sent. The check depends only on
//! what the transaction did, so it fails the same way on every peer.

use std::collections::BTreeMap;

use cchost_proto::kvrwset::{self, KvRead, KvrwSet};
use cchost_proto::queryresult::KeyModification;
use cchost_proto::rwset::{NsReadWriteSet, TxReadWriteSet, tx_read_write_set::DataModel};
use prost::Message;

use super::range_read::{READ_OVERHEAD, RangeRead};
use super::{Height, LedgerError, ReadLimit, StateSnapshot, VersionedValue};

/// The default bound on a transaction's read/write set: Fabric's largest gRPC message
/// (100 MiB), since a larger one could never reach a client.
pub const DEFAULT_MAX_RWSET_BYTES: usize = 100 * 1024 * 1024;

/// One transaction's simulation.
pub struct TxSimulator {
    snapshot: Box<dyn StateSnapshot>,
    txid: String,
    namespaces: BTreeMap<String, NsBuilder>,
    /// Every range iterator opened, in order, with its namespace.
    range_reads: Vec<(String, RangeRead)>,
    write_performed: bool,
    paginated_query_performed: bool,
    /// What the read/write set holds so far, as counted against `max_bytes`.
    bytes: usize,
    max_bytes: usize,
}

/// Identifies a range query opened with [`TxSimulator::begin_range_query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeQueryId(usize);

impl std::fmt::Debug for TxSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSimulator")
            .field("txid", &self.txid)
            .field("namespaces", &self.namespaces.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct NsBuilder {
    reads: BTreeMap<String, Option<Height>>,
    /// `None` is a delete.
    writes: BTreeMap<String, Option<Vec<u8>>>,
    metadata_writes: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

fn metadata_size(metadata: &BTreeMap<String, Vec<u8>>) -> usize {
    metadata.iter().map(|(k, v)| k.len() + v.len()).sum()
}

impl TxSimulator {
    /// Simulates transaction `txid` against `snapshot`, its read/write set bounded by
    /// [`DEFAULT_MAX_RWSET_BYTES`].
    pub fn new(snapshot: Box<dyn StateSnapshot>, txid: impl Into<String>) -> Self {
        Self {
            snapshot,
            txid: txid.into(),
            namespaces: BTreeMap::new(),
            range_reads: Vec::new(),
            write_performed: false,
            paginated_query_performed: false,
            bytes: 0,
            max_bytes: DEFAULT_MAX_RWSET_BYTES,
        }
    }

    /// The same simulator with another bound on its read/write set.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Counts `added` bytes (after `removed` are released) against the bound.
    fn grow(&mut self, added: usize, removed: usize) -> Result<(), LedgerError> {
        let bytes = self.bytes.saturating_sub(removed).saturating_add(added);
        if bytes > self.max_bytes {
            return Err(LedgerError::RwSetTooLarge {
                limit: self.max_bytes,
            });
        }
        self.bytes = bytes;
        Ok(())
    }

    fn ns(&mut self, namespace: &str) -> &mut NsBuilder {
        self.namespaces.entry(namespace.to_owned()).or_default()
    }

    fn read(&mut self, namespace: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError> {
        let value = self.snapshot.get(namespace, key)?;
        let seen = self
            .namespaces
            .get(namespace)
            .is_some_and(|ns| ns.reads.contains_key(key));
        if !seen {
            self.grow(key.len() + READ_OVERHEAD, 0)?;
        }
        self.ns(namespace)
            .reads
            .insert(key.to_owned(), value.as_ref().map(|v| v.version));
        Ok(value)
    }

    /// The committed value of `key`; records the read.
    pub fn get_state(
        &mut self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.read(namespace, key)?.map(|v| v.value))
    }

    /// The committed metadata of `key`; records the read.
    pub fn get_state_metadata(
        &mut self,
        namespace: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, LedgerError> {
        Ok(self
            .read(namespace, key)?
            .map(|v| v.metadata)
            .unwrap_or_default())
    }

    /// Fabric's `checkWritePrecondition`: no write after a paginated query.
    fn check_writable(&mut self) -> Result<(), LedgerError> {
        if self.paginated_query_performed {
            return Err(LedgerError::WriteAfterPaginatedQuery {
                txid: self.txid.clone(),
            });
        }
        self.write_performed = true;
        Ok(())
    }

    fn write(
        &mut self,
        namespace: &str,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), LedgerError> {
        self.check_writable()?;
        let old = self
            .namespaces
            .get(namespace)
            .and_then(|ns| ns.writes.get(key))
            .map(|old| key.len() + old.as_ref().map_or(0, Vec::len));
        let new = key.len() + value.as_ref().map_or(0, Vec::len);
        self.grow(new, old.unwrap_or(0))?;
        self.ns(namespace).writes.insert(key.to_owned(), value);
        Ok(())
    }

    /// Writes `value` to `key`; an empty value deletes the key, as in Fabric.
    pub fn put_state(
        &mut self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), LedgerError> {
        self.write(namespace, key, (!value.is_empty()).then_some(value))
    }

    /// Deletes `key`.
    pub fn del_state(&mut self, namespace: &str, key: &str) -> Result<(), LedgerError> {
        self.write(namespace, key, None)
    }

    /// Replaces the whole metadata of `key` with `metadata`.
    pub fn put_state_metadata(
        &mut self,
        namespace: &str,
        key: &str,
        metadata: BTreeMap<String, Vec<u8>>,
    ) -> Result<(), LedgerError> {
        self.check_writable()?;
        let old = self
            .namespaces
            .get(namespace)
            .and_then(|ns| ns.metadata_writes.get(key))
            .map(|old| key.len() + metadata_size(old));
        self.grow(key.len() + metadata_size(&metadata), old.unwrap_or(0))?;
        self.ns(namespace)
            .metadata_writes
            .insert(key.to_owned(), metadata);
        Ok(())
    }

    /// Committed keys in `[start, end)`, within `limit`; records nothing (iterators record
    /// what they hand out with [`record_range_read`](Self::record_range_read)).
    pub fn range(
        &self,
        namespace: &str,
        start: &str,
        end: &str,
        limit: ReadLimit,
    ) -> Result<Vec<(String, VersionedValue)>, LedgerError> {
        self.snapshot.range(namespace, start, end, limit)
    }

    /// Committed modifications of `key` within `limit`, newest first, older than `before`.
    pub fn history(
        &self,
        namespace: &str,
        key: &str,
        before: Option<Height>,
        limit: ReadLimit,
    ) -> Result<Vec<(Height, KeyModification)>, LedgerError> {
        self.snapshot.history(namespace, key, before, limit)
    }

    /// Opens the record of a range query over `[start, end)`.
    pub fn begin_range_query(
        &mut self,
        namespace: &str,
        start: &str,
        end: &str,
    ) -> Result<RangeQueryId, LedgerError> {
        let range = RangeRead::new(start, end);
        self.grow(range.opened_size() + namespace.len(), 0)?;
        self.ns(namespace);
        self.range_reads.push((namespace.to_owned(), range));
        Ok(RangeQueryId(self.range_reads.len() - 1))
    }

    /// Opens the record of a paginated range query (whose start is the bookmark, when
    /// there is one). Refused after a write; afterwards, writes are.
    pub fn begin_paginated_range_query(
        &mut self,
        namespace: &str,
        start: &str,
        end: &str,
    ) -> Result<RangeQueryId, LedgerError> {
        self.check_paginated_query()?;
        self.begin_range_query(namespace, start, end)
    }

    /// Fabric's `checkBeforePaginatedQueries`: a paginated query (of any kind, even one
    /// the state database then refuses) makes the transaction read-only, and is refused
    /// once it wrote.
    pub fn check_paginated_query(&mut self) -> Result<(), LedgerError> {
        if self.write_performed {
            return Err(LedgerError::PaginatedQueryAfterWrite {
                txid: self.txid.clone(),
            });
        }
        self.paginated_query_performed = true;
        Ok(())
    }

    /// Records a result the range query handed out.
    pub fn record_range_read(
        &mut self,
        id: RangeQueryId,
        key: &str,
        version: Height,
    ) -> Result<(), LedgerError> {
        let Some((added, released)) = self
            .range_reads
            .get(id.0)
            .map(|(_, range)| range.record_cost(key))
        else {
            return Ok(());
        };
        self.grow(added, released)?;
        if let Some((_, range)) = self.range_reads.get_mut(id.0) {
            range.record(key, version);
        }
        Ok(())
    }

    /// Records that the range query read past its last result.
    pub fn set_range_exhausted(&mut self, id: RangeQueryId) {
        if let Some((_, range)) = self.range_reads.get_mut(id.0) {
            range.set_exhausted();
        }
    }

    /// The transaction's read/write set, as Fabric encodes it.
    pub fn read_write_set(&self) -> TxReadWriteSet {
        let ns_rwset = self
            .namespaces
            .iter()
            .map(|(namespace, ns)| {
                let kv = KvrwSet {
                    reads: ns
                        .reads
                        .iter()
                        .map(|(key, version)| KvRead {
                            key: key.clone(),
                            version: version.map(Height::to_version),
                        })
                        .collect(),
                    range_queries_info: self.range_queries_info(namespace),
                    writes: ns
                        .writes
                        .iter()
                        .map(|(key, value)| kvrwset::KvWrite {
                            key: key.clone(),
                            is_delete: value.is_none(),
                            value: value.clone().unwrap_or_default(),
                        })
                        .collect(),
                    metadata_writes: ns
                        .metadata_writes
                        .iter()
                        .map(|(key, entries)| kvrwset::KvMetadataWrite {
                            key: key.clone(),
                            entries: entries
                                .iter()
                                .map(|(name, value)| kvrwset::KvMetadataEntry {
                                    name: name.clone(),
                                    value: value.clone(),
                                })
                                .collect(),
                        })
                        .collect(),
                };
                NsReadWriteSet {
                    namespace: namespace.clone(),
                    rwset: kv.encode_to_vec(),
                    collection_hashed_rwset: vec![],
                }
            })
            .collect();
        TxReadWriteSet {
            data_model: DataModel::Kv.into(),
            ns_rwset,
        }
    }

    /// A namespace's range records in opening order, each identical one kept once
    /// (Fabric's `AddToRangeQuerySet`).
    fn range_queries_info(&self, namespace: &str) -> Vec<kvrwset::RangeQueryInfo> {
        let mut seen = std::collections::HashSet::new();
        self.range_reads
            .iter()
            .filter(|(ns, _)| ns == namespace)
            .filter(|(_, range)| seen.insert(range.identity()))
            .map(|(_, range)| range.info())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{CommitTx, RedbStore, StateStore};

    const CH: &str = "mychannel";
    const NS: &str = "asset";

    fn ts(seconds: i64) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos: 0 }
    }

    fn commit(store: &RedbStore, height: Height, tx_id: &str, sim: &TxSimulator) {
        store
            .commit(
                CH,
                &[CommitTx {
                    height,
                    tx_id: tx_id.into(),
                    timestamp: ts(height.block as i64),
                    rwset: sim.read_write_set(),
                }],
            )
            .unwrap();
    }

    fn kv_set(rwset: &TxReadWriteSet, namespace: &str) -> KvrwSet {
        let ns = rwset
            .ns_rwset
            .iter()
            .find(|ns| ns.namespace == namespace)
            .unwrap();
        KvrwSet::decode(ns.rwset.as_slice()).unwrap()
    }

    fn simulate(store: &RedbStore) -> TxSimulator {
        TxSimulator::new(store.snapshot(CH).unwrap(), "tx")
    }

    fn store() -> RedbStore {
        let store = RedbStore::in_memory().unwrap();
        store.create_channel(CH).unwrap();
        store
    }

    #[test]
    fn reads_see_committed_state_not_own_writes_and_record_versions() {
        let store = store();
        let mut setup = simulate(&store);
        setup.put_state(NS, "k1", b"v1".to_vec()).unwrap();
        commit(&store, Height::new(1, 0), "tx1", &setup);

        let mut sim = simulate(&store);
        sim.put_state(NS, "k1", b"new".to_vec()).unwrap();
        sim.put_state(NS, "k2", b"v2".to_vec()).unwrap();
        assert_eq!(sim.get_state(NS, "k1").unwrap(), Some(b"v1".to_vec()));
        assert_eq!(sim.get_state(NS, "k2").unwrap(), None);

        let kv = kv_set(&sim.read_write_set(), NS);
        assert_eq!(
            kv.reads,
            [
                KvRead {
                    key: "k1".into(),
                    version: Some(kvrwset::Version {
                        block_num: 1,
                        tx_num: 0
                    })
                },
                KvRead {
                    key: "k2".into(),
                    version: None
                },
            ]
        );
        let writes: Vec<_> = kv
            .writes
            .iter()
            .map(|w| (w.key.as_str(), w.is_delete, w.value.as_slice()))
            .collect();
        assert_eq!(writes, [("k1", false, &b"new"[..]), ("k2", false, b"v2")]);
    }

    #[test]
    fn empty_put_is_a_delete_and_the_last_write_wins_in_key_order() {
        let store = store();
        let mut sim = simulate(&store);
        sim.put_state(NS, "b", b"1".to_vec()).unwrap();
        sim.put_state(NS, "a", b"2".to_vec()).unwrap();
        sim.put_state(NS, "b", Vec::new()).unwrap();
        sim.del_state(NS, "c").unwrap();
        sim.put_state(NS, "c", b"3".to_vec()).unwrap();
        let rwset = sim.read_write_set();
        assert_eq!(rwset.data_model, 0);
        let kv = kv_set(&rwset, NS);
        let writes: Vec<_> = kv
            .writes
            .iter()
            .map(|w| (w.key.as_str(), w.is_delete, w.value.as_slice()))
            .collect();
        assert_eq!(
            writes,
            [
                ("a", false, &b"2"[..]),
                ("b", true, b""),
                ("c", false, b"3")
            ]
        );
        assert!(kv.reads.is_empty());
    }

    #[test]
    fn namespaces_are_sorted_and_only_touched_ones_appear() {
        let store = store();
        let mut sim = simulate(&store);
        sim.put_state("zeta", "k", b"v".to_vec()).unwrap();
        sim.get_state("alpha", "k").unwrap();
        let names: Vec<_> = sim
            .read_write_set()
            .ns_rwset
            .into_iter()
            .map(|ns| ns.namespace)
            .collect();
        assert_eq!(names, ["alpha", "zeta"]);
    }

    #[test]
    fn commit_applies_versions_keeps_metadata_on_value_writes_and_deletes() {
        let store = store();
        let mut tx1 = simulate(&store);
        tx1.put_state(NS, "k1", b"v1".to_vec()).unwrap();
        tx1.put_state_metadata(
            NS,
            "k1",
            BTreeMap::from([("VALIDATION_PARAMETER".into(), b"p".to_vec())]),
        )
        .unwrap();
        tx1.put_state(NS, "k2", b"v2".to_vec()).unwrap();
        commit(&store, Height::new(1, 0), "tx1", &tx1);

        let mut tx2 = simulate(&store);
        tx2.put_state(NS, "k1", b"v1b".to_vec()).unwrap();
        tx2.del_state(NS, "k2").unwrap();
        commit(&store, Height::new(2, 3), "tx2", &tx2);

        let snap = store.snapshot(CH).unwrap();
        let k1 = snap.get(NS, "k1").unwrap().unwrap();
        assert_eq!(k1.value, b"v1b");
        assert_eq!(k1.version, Height::new(2, 3));
        assert_eq!(
            k1.metadata,
            BTreeMap::from([("VALIDATION_PARAMETER".into(), b"p".to_vec())])
        );
        assert_eq!(snap.get(NS, "k2").unwrap(), None);
        // Other channels and namespaces are separate.
        store.create_channel("other").unwrap();
        assert_eq!(
            store.snapshot("other").unwrap().get(NS, "k1").unwrap(),
            None
        );
        assert_eq!(snap.get("other", "k1").unwrap(), None);
    }

    #[test]
    fn metadata_write_on_a_missing_key_does_nothing() {
        let store = store();
        let mut tx = simulate(&store);
        tx.put_state_metadata(NS, "ghost", BTreeMap::from([("m".into(), b"x".to_vec())]))
            .unwrap();
        commit(&store, Height::new(1, 0), "tx1", &tx);
        assert_eq!(store.snapshot(CH).unwrap().get(NS, "ghost").unwrap(), None);
    }

    #[test]
    fn history_lists_every_write_newest_first_with_deletes() {
        let store = store();
        for (block, value) in [(1, "a"), (2, ""), (3, "c")] {
            let mut tx = simulate(&store);
            tx.put_state(NS, "k", value.as_bytes().to_vec()).unwrap();
            commit(&store, Height::new(block, 0), &format!("tx{block}"), &tx);
        }
        // A key whose name extends "k" must not show up in k's history.
        let mut other = simulate(&store);
        other.put_state(NS, "k\u{0}x", b"z".to_vec()).unwrap();
        commit(&store, Height::new(4, 0), "tx4", &other);

        let snap = store.snapshot(CH).unwrap();
        let history = snap.history(NS, "k", None, ReadLimit::count(10)).unwrap();
        let seen: Vec<_> = history
            .iter()
            .map(|(h, m)| {
                (
                    h.block,
                    m.tx_id.as_str(),
                    m.value.as_slice(),
                    m.is_delete,
                    m.timestamp.unwrap().seconds,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (3, "tx3", &b"c"[..], false, 3),
                (2, "tx2", b"", true, 2),
                (1, "tx1", b"a", false, 1)
            ]
        );
        let older = snap
            .history(NS, "k", Some(Height::new(3, 0)), ReadLimit::count(1))
            .unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].1.tx_id, "tx2");
    }

    #[test]
    fn range_is_half_open_in_byte_order_and_skips_composite_keys_from_0x01() {
        let store = store();
        let mut tx = simulate(&store);
        for key in ["\u{0}color\u{0}red\u{0}", "b", "a", "c", "d"] {
            tx.put_state(NS, key, b"v".to_vec()).unwrap();
        }
        tx.put_state("other", "b2", b"v".to_vec()).unwrap();
        commit(&store, Height::new(1, 0), "tx1", &tx);
        let snap = store.snapshot(CH).unwrap();
        let keys = |start, end, limit| -> Vec<String> {
            snap.range(NS, start, end, ReadLimit::count(limit))
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(keys("b", "d", 10), ["b", "c"]);
        assert_eq!(keys("\u{1}", "", 10), ["a", "b", "c", "d"]);
        assert_eq!(keys("", "", 2), ["\u{0}color\u{0}red\u{0}", "a"]);
        assert_eq!(keys("d", "b", 10), Vec::<String>::new());
    }

    #[test]
    fn range_reads_record_the_last_key_unless_exhausted() {
        let store = store();
        let mut sim = simulate(&store);
        let partial = sim.begin_range_query(NS, "a", "z").unwrap();
        let full = sim.begin_range_query(NS, "\u{1}", "").unwrap();
        sim.record_range_read(full, "b", Height::new(1, 0)).unwrap();
        sim.record_range_read(partial, "b", Height::new(1, 0))
            .unwrap();
        sim.record_range_read(partial, "c", Height::new(2, 1))
            .unwrap();
        sim.set_range_exhausted(full);

        let kv = kv_set(&sim.read_write_set(), NS);
        let infos: Vec<_> = kv
            .range_queries_info
            .iter()
            .map(|i| (i.start_key.as_str(), i.end_key.as_str(), i.itr_exhausted))
            .collect();
        assert_eq!(infos, [("a", "c", false), ("\u{1}", "", true)]);
        let Some(kvrwset::range_query_info::ReadsInfo::RawReads(raw)) =
            &kv.range_queries_info[0].reads_info
        else {
            panic!("raw reads")
        };
        assert_eq!(
            raw.kv_reads[1],
            KvRead {
                key: "c".into(),
                version: Some(kvrwset::Version {
                    block_num: 2,
                    tx_num: 1
                })
            }
        );
    }

    /// The encoded `KVRWSet` of the simulation's only namespace.
    fn kv_bytes(sim: &TxSimulator) -> Vec<u8> {
        sim.read_write_set().ns_rwset[0].rwset.clone()
    }

    #[test]
    fn an_empty_range_leaves_the_reads_unset_as_fabric_encodes_it() {
        let store = store();
        let mut sim = simulate(&store);
        let range = sim.begin_range_query(NS, "a", "b").unwrap();
        sim.set_range_exhausted(range);
        // RangeQueryInfo{start "a", end "b", exhausted}: no `reads_info` field at all.
        assert_eq!(
            kv_bytes(&sim),
            [0x12, 0x08, 0x0a, 0x01, b'a', 0x12, 0x01, b'b', 0x18, 0x01]
        );
    }

    #[test]
    fn an_iterator_that_read_nothing_and_stopped_records_an_empty_end_key() {
        let store = store();
        let mut sim = simulate(&store);
        sim.begin_range_query(NS, "a", "z").unwrap();
        assert_eq!(kv_bytes(&sim), [0x12, 0x03, 0x0a, 0x01, b'a']);
    }

    #[test]
    fn identical_range_records_are_kept_once_per_namespace_in_opening_order() {
        let store = store();
        let mut sim = simulate(&store);
        for _ in 0..2 {
            let range = sim.begin_range_query(NS, "a", "c").unwrap();
            sim.record_range_read(range, "a1", Height::new(1, 0))
                .unwrap();
            sim.set_range_exhausted(range);
        }
        for _ in 0..2 {
            let early = sim.begin_range_query(NS, "b", "z").unwrap();
            sim.record_range_read(early, "b1", Height::new(1, 1))
                .unwrap();
        }
        let other = sim.begin_range_query("other", "a", "c").unwrap();
        sim.set_range_exhausted(other);
        let rwset = sim.read_write_set();
        let infos: Vec<_> = kv_set(&rwset, NS)
            .range_queries_info
            .iter()
            .map(|i| (i.start_key.clone(), i.end_key.clone(), i.itr_exhausted))
            .collect();
        assert_eq!(
            infos,
            [
                ("a".to_owned(), "c".to_owned(), true),
                ("b".to_owned(), "b1".to_owned(), false)
            ]
        );
        assert_eq!(kv_set(&rwset, "other").range_queries_info.len(), 1);
    }

    /// `n` reads `k0000`, `k0001`, ... at version (1, i).
    fn reads(n: usize) -> Vec<KvRead> {
        (0..n)
            .map(|i| KvRead {
                key: format!("k{i:04}"),
                version: Some(kvrwset::Version {
                    block_num: 1,
                    tx_num: i as u64,
                }),
            })
            .collect()
    }

    /// SHA-256 of the encoded `QueryReads` of `reads`: a leaf of Fabric's tree.
    fn leaf(reads: &[KvRead]) -> Vec<u8> {
        use sha2::Digest;
        let encoded = kvrwset::QueryReads {
            kv_reads: reads.to_vec(),
        }
        .encode_to_vec();
        sha2::Sha256::digest(encoded).to_vec()
    }

    fn combine(hashes: &[Vec<u8>]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(hashes.concat()).to_vec()
    }

    /// The summary recorded for a range that read `n` results and was exhausted.
    fn summary_of_range(n: usize) -> Option<kvrwset::range_query_info::ReadsInfo> {
        let store = store();
        let mut sim = simulate(&store);
        let range = sim.begin_range_query(NS, "", "").unwrap();
        for read in reads(n) {
            let version = read.version.unwrap();
            sim.record_range_read(
                range,
                &read.key,
                Height::new(version.block_num, version.tx_num),
            )
            .unwrap();
        }
        sim.set_range_exhausted(range);
        kv_set(&sim.read_write_set(), NS).range_queries_info[0]
            .reads_info
            .clone()
    }

    fn merkle(
        max_level: u32,
        hashes: Vec<Vec<u8>>,
    ) -> Option<kvrwset::range_query_info::ReadsInfo> {
        Some(kvrwset::range_query_info::ReadsInfo::ReadsMerkleHashes(
            kvrwset::QueryReadsMerkleSummary {
                max_degree: 50,
                max_level,
                max_level_hashes: hashes,
            },
        ))
    }

    #[test]
    fn fifty_range_results_are_recorded_raw() {
        assert_eq!(
            summary_of_range(50),
            Some(kvrwset::range_query_info::ReadsInfo::RawReads(
                kvrwset::QueryReads {
                    kv_reads: reads(50)
                }
            ))
        );
    }

    #[test]
    fn past_fifty_results_fabrics_merkle_summary_of_degree_fifty_replaces_the_raw_reads() {
        // Fabric's RangeQueryResultsHelper: leaves hash chunks of 51 reads (the last
        // chunk holds what is left); more than 50 hashes on a level fold into one hash
        // of the next; at the end lower levels fold up to the highest.
        let all = reads(2602);
        let chunks: Vec<Vec<u8>> = all.chunks(51).map(leaf).collect();
        assert_eq!(summary_of_range(51), merkle(1, vec![chunks[0].clone()]));
        assert_eq!(
            summary_of_range(102),
            merkle(1, vec![chunks[0].clone(), chunks[1].clone()])
        );
        assert_eq!(
            summary_of_range(103),
            merkle(
                1,
                vec![chunks[0].clone(), chunks[1].clone(), leaf(&all[102..103])]
            )
        );
        let level_two = combine(&chunks[..51]);
        assert_eq!(summary_of_range(2601), merkle(2, vec![level_two.clone()]));
        assert_eq!(
            summary_of_range(2602),
            merkle(2, vec![level_two, chunks[51].clone()])
        );
    }

    #[test]
    fn writes_after_a_paginated_query_and_paginated_queries_after_writes_fail_with_fabrics_texts() {
        let store = store();
        let mut sim = simulate(&store);
        sim.begin_paginated_range_query(NS, "a", "b").unwrap();
        let err = sim.put_state(NS, "k", b"v".to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "txid [tx]: unsuppored transaction. Transaction has already performed a \
             paginated query. Writes are not allowed"
        );
        assert!(sim.del_state(NS, "k").is_err());
        assert!(sim.put_state_metadata(NS, "k", BTreeMap::new()).is_err());

        let mut sim = simulate(&store);
        sim.put_state(NS, "k", b"v".to_vec()).unwrap();
        let err = sim.begin_paginated_range_query(NS, "a", "b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "txid [tx]: unsuppored transaction. Paginated queries are supported only in a \
             read-only transaction"
        );
    }

    #[test]
    fn the_read_write_set_is_bounded_and_overwrites_count_once() {
        let store = store();
        let mut sim = simulate(&store).with_max_bytes(100);
        sim.put_state(NS, "k", vec![1; 90]).unwrap();
        // Replacing a value releases the old one.
        sim.put_state(NS, "k", vec![2; 99]).unwrap();
        let err = sim.put_state(NS, "j", vec![3; 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the transaction's read/write set exceeds its limit of 100 bytes"
        );
        sim.put_state(NS, "k", vec![4; 10]).unwrap();
        sim.get_state(NS, "read").unwrap();
        let err = sim.begin_range_query(NS, &"s".repeat(80), "").unwrap_err();
        assert!(
            matches!(err, LedgerError::RwSetTooLarge { limit: 100 }),
            "{err}"
        );
        // The failed write left nothing behind.
        let writes = kv_set(&sim.read_write_set(), NS).writes;
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].value, vec![4; 10]);
    }

    #[test]
    fn a_file_store_keeps_commits_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            store.create_channel(CH).unwrap();
            let mut tx = TxSimulator::new(store.snapshot(CH).unwrap(), "tx");
            tx.put_state(NS, "k", b"v".to_vec()).unwrap();
            commit(&store, Height::new(7, 2), "tx", &tx);
        }
        let store = RedbStore::open(&path).unwrap();
        let value = store.snapshot(CH).unwrap().get(NS, "k").unwrap().unwrap();
        assert_eq!(
            (value.value.as_slice(), value.version),
            (&b"v"[..], Height::new(7, 2))
        );
    }
}
