//! Transaction simulation: reads from a snapshot, buffered writes, and the read/write set
//! Fabric's simulator would record for them.
//!
//! Fabric's rules, kept exactly:
//! - reads always see committed state, never the transaction's own writes;
//! - each read records the key's committed version (none if it was absent);
//! - a put with an empty value is a delete (`KVWrite.is_delete = len(value) == 0`);
//! - the last write of a key wins; reads, writes and metadata writes are sorted by key,
//!   namespaces by name; a namespace's range-query infos keep the order their iterators
//!   were opened in, and every non-paginated iterator is recorded, closed or not;
//! - after a paginated query, writes fail (paginated queries are for read-only
//!   transactions).

use std::collections::BTreeMap;

use cchost_proto::kvrwset::{self, KvRead, KvrwSet};
use cchost_proto::queryresult::KeyModification;
use cchost_proto::rwset::{NsReadWriteSet, TxReadWriteSet, tx_read_write_set::DataModel};
use prost::Message;

use super::{Height, LedgerError, StateSnapshot, VersionedValue};

/// One transaction's simulation.
pub struct TxSimulator {
    snapshot: Box<dyn StateSnapshot>,
    namespaces: BTreeMap<String, NsBuilder>,
    /// Every range iterator opened, in order, with its namespace.
    range_reads: Vec<(String, RangeRead)>,
    paginated_query_done: bool,
}

/// Identifies a range query opened with [`TxSimulator::begin_range_query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeQueryId(usize);

impl std::fmt::Debug for TxSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSimulator")
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

impl TxSimulator {
    /// Simulates against `snapshot`.
    pub fn new(snapshot: Box<dyn StateSnapshot>) -> Self {
        Self {
            snapshot,
            namespaces: BTreeMap::new(),
            range_reads: Vec::new(),
            paginated_query_done: false,
        }
    }

    fn ns(&mut self, namespace: &str) -> &mut NsBuilder {
        self.namespaces.entry(namespace.to_owned()).or_default()
    }

    fn read(&mut self, namespace: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError> {
        let value = self.snapshot.get(namespace, key)?;
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

    fn check_writable(&self) -> Result<(), LedgerError> {
        if self.paginated_query_done {
            return Err(LedgerError::WriteAfterPaginatedQuery);
        }
        Ok(())
    }

    /// Writes `value` to `key`; an empty value deletes the key, as in Fabric.
    pub fn put_state(
        &mut self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), LedgerError> {
        self.check_writable()?;
        let value = (!value.is_empty()).then_some(value);
        self.ns(namespace).writes.insert(key.to_owned(), value);
        Ok(())
    }

    /// Deletes `key`.
    pub fn del_state(&mut self, namespace: &str, key: &str) -> Result<(), LedgerError> {
        self.check_writable()?;
        self.ns(namespace).writes.insert(key.to_owned(), None);
        Ok(())
    }

    /// Replaces the whole metadata of `key` with `metadata`.
    pub fn put_state_metadata(
        &mut self,
        namespace: &str,
        key: &str,
        metadata: BTreeMap<String, Vec<u8>>,
    ) -> Result<(), LedgerError> {
        self.check_writable()?;
        self.ns(namespace)
            .metadata_writes
            .insert(key.to_owned(), metadata);
        Ok(())
    }

    /// Up to `limit` committed keys in `[start, end)`; records nothing (iterators record
    /// what they hand out through [`RangeRead`]).
    pub fn range(
        &self,
        namespace: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, LedgerError> {
        self.snapshot.range(namespace, start, end, limit)
    }

    /// Up to `limit` committed modifications of `key`, newest first, older than `before`.
    pub fn history(
        &self,
        namespace: &str,
        key: &str,
        before: Option<Height>,
        limit: usize,
    ) -> Result<Vec<(Height, KeyModification)>, LedgerError> {
        self.snapshot.history(namespace, key, before, limit)
    }

    /// Opens the record of a (non-paginated) range query over `[start, end)`.
    pub fn begin_range_query(&mut self, namespace: &str, start: &str, end: &str) -> RangeQueryId {
        self.ns(namespace);
        self.range_reads
            .push((namespace.to_owned(), RangeRead::new(start, end)));
        RangeQueryId(self.range_reads.len() - 1)
    }

    /// Records a result the range query read from the ledger.
    pub fn record_range_read(&mut self, id: RangeQueryId, key: &str, version: Height) {
        if let Some((_, range)) = self.range_reads.get_mut(id.0) {
            range.record(key, version);
        }
    }

    /// Records that the range query read past its last result.
    pub fn set_range_exhausted(&mut self, id: RangeQueryId) {
        if let Some((_, range)) = self.range_reads.get_mut(id.0) {
            range.exhausted = true;
        }
    }

    /// Marks that a paginated query ran: later writes fail.
    pub fn mark_paginated_query(&mut self) {
        self.paginated_query_done = true;
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
                    range_queries_info: self
                        .range_reads
                        .iter()
                        .filter(|(ns, _)| ns == namespace)
                        .map(|(_, range)| range.info())
                        .collect(),
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
}

/// What one range iterator read from the ledger, recorded as Fabric's `RangeQueryInfo`.
#[derive(Debug, Clone)]
struct RangeRead {
    start_key: String,
    end_key: String,
    last_key: Option<String>,
    reads: Vec<KvRead>,
    exhausted: bool,
}

impl RangeRead {
    fn new(start_key: impl Into<String>, end_key: impl Into<String>) -> Self {
        Self {
            start_key: start_key.into(),
            end_key: end_key.into(),
            last_key: None,
            reads: Vec::new(),
            exhausted: false,
        }
    }

    fn record(&mut self, key: &str, version: Height) {
        self.last_key = Some(key.to_owned());
        self.reads.push(KvRead {
            key: key.to_owned(),
            version: Some(version.to_version()),
        });
    }

    /// Fabric's record: an exhausted iterator keeps the query's end key; one closed early
    /// ends at the last key it read, since nothing after it was seen.
    fn info(&self) -> kvrwset::RangeQueryInfo {
        let end_key = match (self.exhausted, &self.last_key) {
            (false, Some(last)) => last.clone(),
            _ => self.end_key.clone(),
        };
        kvrwset::RangeQueryInfo {
            start_key: self.start_key.clone(),
            end_key,
            itr_exhausted: self.exhausted,
            reads_info: Some(kvrwset::range_query_info::ReadsInfo::RawReads(
                kvrwset::QueryReads {
                    kv_reads: self.reads.clone(),
                },
            )),
        }
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
        TxSimulator::new(store.snapshot(CH).unwrap())
    }

    #[test]
    fn reads_see_committed_state_not_own_writes_and_record_versions() {
        let store = RedbStore::in_memory().unwrap();
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
        let store = RedbStore::in_memory().unwrap();
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
        let store = RedbStore::in_memory().unwrap();
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
        let store = RedbStore::in_memory().unwrap();
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
        assert_eq!(
            store.snapshot("other").unwrap().get(NS, "k1").unwrap(),
            None
        );
        assert_eq!(snap.get("other", "k1").unwrap(), None);
    }

    #[test]
    fn metadata_write_on_a_missing_key_does_nothing() {
        let store = RedbStore::in_memory().unwrap();
        let mut tx = simulate(&store);
        tx.put_state_metadata(NS, "ghost", BTreeMap::from([("m".into(), b"x".to_vec())]))
            .unwrap();
        commit(&store, Height::new(1, 0), "tx1", &tx);
        assert_eq!(store.snapshot(CH).unwrap().get(NS, "ghost").unwrap(), None);
    }

    #[test]
    fn history_lists_every_write_newest_first_with_deletes() {
        let store = RedbStore::in_memory().unwrap();
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
        let history = snap.history(NS, "k", None, 10).unwrap();
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
        let older = snap.history(NS, "k", Some(Height::new(3, 0)), 1).unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].1.tx_id, "tx2");
    }

    #[test]
    fn range_is_half_open_in_byte_order_and_skips_composite_keys_from_0x01() {
        let store = RedbStore::in_memory().unwrap();
        let mut tx = simulate(&store);
        for key in ["\u{0}color\u{0}red\u{0}", "b", "a", "c", "d"] {
            tx.put_state(NS, key, b"v".to_vec()).unwrap();
        }
        tx.put_state("other", "b2", b"v".to_vec()).unwrap();
        commit(&store, Height::new(1, 0), "tx1", &tx);
        let snap = store.snapshot(CH).unwrap();
        let keys = |start, end, limit| -> Vec<String> {
            snap.range(NS, start, end, limit)
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
        let store = RedbStore::in_memory().unwrap();
        let mut sim = simulate(&store);
        let partial = sim.begin_range_query(NS, "a", "z");
        let full = sim.begin_range_query(NS, "\u{1}", "");
        sim.record_range_read(full, "b", Height::new(1, 0));
        sim.record_range_read(partial, "b", Height::new(1, 0));
        sim.record_range_read(partial, "c", Height::new(2, 1));
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

    #[test]
    fn writes_after_a_paginated_query_fail_with_fabrics_text() {
        let store = RedbStore::in_memory().unwrap();
        let mut sim = simulate(&store);
        sim.mark_paginated_query();
        let err = sim.put_state(NS, "k", b"v".to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Transaction has already performed a paginated query. Writes are not allowed"
        );
        assert!(sim.del_state(NS, "k").is_err());
    }

    #[test]
    fn a_file_store_keeps_commits_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            let mut tx = TxSimulator::new(store.snapshot(CH).unwrap());
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
