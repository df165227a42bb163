//! Range queries, key history, rich queries and their iterators.
//!
//! Fabric's contract with the shims, kept exactly: a batch holds at most
//! `query_batch_size` (100) results; `has_more = true` only when one more result has
//! already been read, so the next batch is never empty (the Node shim crashes on an empty
//! one); the last batch closes the iterator; a paginated query answers in one reply with
//! `QueryResponseMetadata` and its bookmark. Every range result read from the ledger,
//! paginated or not, is recorded in the transaction's `RangeQueryInfo`.
//!
//! One more bound than Fabric's: a batch (or page) must fit in one message of
//! `max_message_size` bytes. Reads stop as soon as the stored results pass it, and a
//! reply that would not fit is refused with [`LedgerError::ReadTooLarge`]; Fabric would
//! fail to send it and break the chaincode's stream.

use cchost_proto::protos::{
    GetHistoryForKey, GetQueryResult, GetStateByRange, QueryMetadata, QueryResponse,
    QueryResponseMetadata, QueryResultBytes, QueryStateClose, QueryStateNext,
};
use cchost_proto::queryresult::{KeyModification, Kv};
use prost::Message;

use super::state::check_collection;
use super::{RequestError, RequestResult, TxContext};
use crate::ledger::{Height, LedgerError, RangeQueryId, ReadLimit, VersionedValue};
use crate::support::SupportConfig;

/// An open iterator of a transaction.
#[derive(Debug)]
pub(crate) enum QueryIterator {
    Range(RangeIter),
    History(HistoryIter),
}

#[derive(Debug)]
pub(crate) struct RangeIter {
    /// Where the next ledger read starts (inclusive).
    next_from: String,
    end: String,
    record: RangeQueryId,
    /// Read from the ledger but not yet handed out: it opens the next batch.
    pending: Option<(String, VersionedValue)>,
    read: usize,
}

#[derive(Debug)]
pub(crate) struct HistoryIter {
    key: String,
    /// Modifications older than this come next.
    before: Option<Height>,
    pending: Option<(Height, KeyModification)>,
    read: usize,
}

/// The smallest key after `key` in byte order.
fn key_after(key: &str) -> String {
    let mut next = String::with_capacity(key.len() + 1);
    next.push_str(key);
    next.push('\0');
    next
}

fn new_iterator_id(ctx: &TxContext, config: &SupportConfig) -> Result<String, RequestError> {
    if ctx.open_iterators() >= config.max_iterators_per_tx {
        return Err(RequestError::new(format!(
            "too many open query iterators in this transaction (limit {}): close iterators \
             when done with them",
            config.max_iterators_per_tx
        )));
    }
    Ok(ctx.next_iterator_id())
}

/// How many results to read now: up to a full batch plus one, within the total limit.
fn reads_wanted(config: &SupportConfig, have: usize, read_so_far: usize) -> usize {
    let want = (config.query_batch_size + 1).saturating_sub(have);
    want.min(config.total_query_limit.saturating_sub(read_so_far))
}

/// Room in a message for what surrounds a reply (the ChaincodeMessage's type, txid,
/// channel id).
pub(super) const MESSAGE_ENVELOPE: usize = 4096;

/// The bound of one read: `count` entries, and no more stored bytes than a reply may hold.
fn read_limit(config: &SupportConfig, count: usize) -> ReadLimit {
    ReadLimit {
        count,
        bytes: config.max_message_size.saturating_sub(MESSAGE_ENVELOPE),
    }
}

/// `response`, encoded, if it fits in a message.
fn encode_reply(config: &SupportConfig, response: &QueryResponse) -> RequestResult {
    let limit = read_limit(config, 0).bytes;
    if response.encoded_len() > limit {
        return Err(LedgerError::ReadTooLarge { limit }.into());
    }
    Ok(response.encode_to_vec())
}

fn kv_result(namespace: &str, key: String, value: Vec<u8>) -> QueryResultBytes {
    QueryResultBytes {
        result_bytes: Kv {
            namespace: namespace.to_owned(),
            key,
            value,
        }
        .encode_to_vec(),
    }
}

pub(super) fn get_state_by_range(
    config: &SupportConfig,
    ctx: &TxContext,
    payload: &[u8],
) -> RequestResult {
    let req = GetStateByRange::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    if let Some(metadata) = pagination(&req.metadata)? {
        return paginated_range(config, ctx, &req, &metadata);
    }
    let id = new_iterator_id(ctx, config)?;
    let record = ctx
        .sim()
        .begin_range_query(&ctx.namespace, &req.start_key, &req.end_key)?;
    let mut iter = RangeIter {
        next_from: req.start_key,
        end: req.end_key,
        record,
        pending: None,
        read: 0,
    };
    let response = next_range_batch(config, ctx, &id, &mut iter)?;
    let reply = encode_reply(config, &response)?;
    if response.has_more {
        ctx.keep_iterator(id, QueryIterator::Range(iter));
    }
    Ok(reply)
}

fn next_range_batch(
    config: &SupportConfig,
    ctx: &TxContext,
    id: &str,
    iter: &mut RangeIter,
) -> Result<QueryResponse, RequestError> {
    let first = iter.pending.take();
    let wanted = reads_wanted(config, usize::from(first.is_some()), iter.read);
    let fetched = {
        let mut sim = ctx.sim();
        let fetched = if wanted > 0 {
            let limit = read_limit(config, wanted);
            sim.range(&ctx.namespace, &iter.next_from, &iter.end, limit)?
        } else {
            Vec::new()
        };
        for (key, value) in &fetched {
            sim.record_range_read(iter.record, key, value.version)?;
        }
        if fetched.len() < wanted {
            sim.set_range_exhausted(iter.record);
        }
        fetched
    };
    iter.read += fetched.len();
    if let Some((last, _)) = fetched.last() {
        iter.next_from = key_after(last);
    }
    Ok(cut_batch(
        config,
        id,
        &mut iter.pending,
        first,
        fetched,
        |(key, value)| kv_result(&ctx.namespace, key, value.value),
    ))
}

/// Fabric's batch rule, for every kind of iterator: the pending result (already read)
/// first, then what was just read; past a full batch the extra result becomes pending
/// and `has_more` is set, so the next batch is never empty.
fn cut_batch<T>(
    config: &SupportConfig,
    id: &str,
    pending: &mut Option<T>,
    first: Option<T>,
    fetched: Vec<T>,
    to_result: impl Fn(T) -> QueryResultBytes,
) -> QueryResponse {
    let mut batch: Vec<T> = first.into_iter().chain(fetched).collect();
    let has_more = batch.len() > config.query_batch_size;
    if has_more {
        *pending = batch.pop();
    }
    QueryResponse {
        results: batch.into_iter().map(to_result).collect(),
        has_more,
        id: id.to_owned(),
        metadata: Vec::new(),
    }
}

/// The query's `QueryMetadata` when it asks for a page: Fabric's
/// `isMetadataSetForPagination` (a page size or a bookmark set).
fn pagination(metadata: &[u8]) -> Result<Option<QueryMetadata>, RequestError> {
    if metadata.is_empty() {
        return Ok(None);
    }
    let metadata = QueryMetadata::decode(metadata)?;
    Ok((metadata.page_size != 0 || !metadata.bookmark.is_empty()).then_some(metadata))
}

/// One page from the bookmark (or the start key), answered in one reply; the bookmark
/// of the next page is the key after it, or empty at the end. Like any range it is
/// recorded: a full page ends at its last key, a short one read to the end of the range.
/// Refused after a write; afterwards the transaction is read-only.
fn paginated_range(
    config: &SupportConfig,
    ctx: &TxContext,
    req: &GetStateByRange,
    metadata: &QueryMetadata,
) -> RequestResult {
    let start = if metadata.bookmark.is_empty() {
        &req.start_key
    } else {
        &metadata.bookmark
    };
    // Fabric's `calculateTotalReturnLimit`.
    let limit = usize::try_from(metadata.page_size)
        .ok()
        .filter(|&p| p > 0)
        .map_or(config.total_query_limit, |p| {
            p.min(config.total_query_limit)
        });
    let mut sim = ctx.sim();
    let record = sim.begin_paginated_range_query(&ctx.namespace, start, &req.end_key)?;
    let read = read_limit(config, limit.saturating_add(1));
    let mut fetched = sim.range(&ctx.namespace, start, &req.end_key, read)?;
    let next = (fetched.len() > limit).then(|| fetched.pop()).flatten();
    for (key, value) in &fetched {
        sim.record_range_read(record, key, value.version)?;
    }
    if fetched.len() < limit {
        sim.set_range_exhausted(record);
    }
    drop(sim);
    let bookmark = next.map(|(key, _)| key).unwrap_or_default();
    let count = i32::try_from(fetched.len()).unwrap_or(i32::MAX);
    let response = QueryResponse {
        results: fetched
            .into_iter()
            .map(|(key, value)| kv_result(&ctx.namespace, key, value.value))
            .collect(),
        has_more: false,
        id: ctx.next_iterator_id(),
        metadata: QueryResponseMetadata {
            fetched_records_count: count,
            bookmark,
        }
        .encode_to_vec(),
    };
    encode_reply(config, &response)
}

pub(super) fn get_query_result(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = GetQueryResult::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    // As in Fabric, asking for a page makes the transaction read-only even though the
    // state database then refuses the query.
    if pagination(&req.metadata)?.is_some() {
        ctx.sim().check_paginated_query()?;
    }
    Err(RequestError::new(
        cchost_abi::refusals::RICH_QUERIES_UNSUPPORTED,
    ))
}

pub(super) fn get_history_for_key(
    config: &SupportConfig,
    ctx: &TxContext,
    payload: &[u8],
) -> RequestResult {
    let req = GetHistoryForKey::decode(payload)?;
    if !config.history_enabled {
        return Err(RequestError::new("history database is not enabled"));
    }
    let id = new_iterator_id(ctx, config)?;
    let mut iter = HistoryIter {
        key: req.key,
        before: None,
        pending: None,
        read: 0,
    };
    let response = next_history_batch(config, ctx, &id, &mut iter)?;
    let reply = encode_reply(config, &response)?;
    if response.has_more {
        ctx.keep_iterator(id, QueryIterator::History(iter));
    }
    Ok(reply)
}

fn next_history_batch(
    config: &SupportConfig,
    ctx: &TxContext,
    id: &str,
    iter: &mut HistoryIter,
) -> Result<QueryResponse, RequestError> {
    let first = iter.pending.take();
    let wanted = reads_wanted(config, usize::from(first.is_some()), iter.read);
    let fetched = if wanted > 0 {
        ctx.sim().history(
            &ctx.namespace,
            &iter.key,
            iter.before,
            read_limit(config, wanted),
        )?
    } else {
        Vec::new()
    };
    iter.read += fetched.len();
    if let Some((height, _)) = fetched.last() {
        iter.before = Some(*height);
    }
    Ok(cut_batch(
        config,
        id,
        &mut iter.pending,
        first,
        fetched,
        |(_, modification)| QueryResultBytes {
            result_bytes: modification.encode_to_vec(),
        },
    ))
}

pub(super) fn query_state_next(
    config: &SupportConfig,
    ctx: &TxContext,
    payload: &[u8],
) -> RequestResult {
    let req = QueryStateNext::decode(payload)?;
    let iter = ctx.take_iterator(&req.id);
    let (response, iter) = match iter {
        None => return Err(RequestError::new("query iterator not found")),
        Some(QueryIterator::Range(mut it)) => {
            let response = next_range_batch(config, ctx, &req.id, &mut it)?;
            (response, QueryIterator::Range(it))
        }
        Some(QueryIterator::History(mut it)) => {
            let response = next_history_batch(config, ctx, &req.id, &mut it)?;
            (response, QueryIterator::History(it))
        }
    };
    let reply = encode_reply(config, &response)?;
    if response.has_more {
        ctx.keep_iterator(req.id, iter);
    }
    Ok(reply)
}

/// Answered for any id, open, finished or unknown, as Fabric does.
pub(super) fn query_state_close(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = QueryStateClose::decode(payload)?;
    ctx.take_iterator(&req.id);
    Ok(QueryResponse {
        results: Vec::new(),
        has_more: false,
        id: req.id,
        metadata: Vec::new(),
    }
    .encode_to_vec())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use cchost_proto::protos::ChaincodeInput;

    use super::*;
    use crate::handler::TxParams;
    use crate::ids::TxKey;
    use crate::ledger::{CommitTx, Height, RedbStore, StateStore, TxSimulator};

    /// A transaction context over state with `k1`..`k5`, written at (1, 0)..(1, 4) (and
    /// the store, which must outlive it).
    fn context() -> (RedbStore, Arc<TxContext>) {
        let store = RedbStore::in_memory().unwrap();
        store.create_channel("ch").unwrap();
        let mut txs = Vec::new();
        for i in 0..5u64 {
            let mut tx = TxSimulator::new(store.snapshot("ch").unwrap(), "setup");
            tx.put_state("cc", &format!("k{}", i + 1), b"v".to_vec())
                .unwrap();
            txs.push(CommitTx {
                height: Height::new(1, i),
                tx_id: format!("setup{i}"),
                timestamp: prost_types::Timestamp::default(),
                rwset: tx.read_write_set(),
            });
        }
        store.commit("ch", &txs).unwrap();
        let params = TxParams {
            key: TxKey::new("ch", "tx"),
            namespace: "cc".to_owned(),
            simulator: Arc::new(Mutex::new(TxSimulator::new(
                store.snapshot("ch").unwrap(),
                "tx",
            ))),
            proposal: None,
            is_init: false,
            nested: false,
            input: ChaincodeInput::default(),
        };
        let ctx = TxContext::new(&params, &Arc::default()).0;
        (store, ctx)
    }

    /// One page of `[start, end)`; its keys and bookmark.
    fn page(
        ctx: &TxContext,
        start: &str,
        end: &str,
        size: i32,
        bookmark: &str,
    ) -> (Vec<String>, String) {
        let request = GetStateByRange {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            collection: String::new(),
            metadata: QueryMetadata {
                page_size: size,
                bookmark: bookmark.to_owned(),
            }
            .encode_to_vec(),
        };
        let reply =
            get_state_by_range(&SupportConfig::default(), ctx, &request.encode_to_vec()).unwrap();
        let response = QueryResponse::decode(reply.as_slice()).unwrap();
        let keys = response
            .results
            .iter()
            .map(|r| Kv::decode(r.result_bytes.as_slice()).unwrap().key)
            .collect();
        let metadata = QueryResponseMetadata::decode(response.metadata.as_slice()).unwrap();
        (keys, metadata.bookmark)
    }

    fn kv_bytes(ctx: &TxContext) -> Vec<u8> {
        ctx.sim().read_write_set().ns_rwset[0].rwset.clone()
    }

    #[test]
    fn a_full_page_is_recorded_from_its_start_to_its_last_key_not_exhausted() {
        let (_store, ctx) = context();
        assert_eq!(
            page(&ctx, "k1", "k9", 2, ""),
            (vec!["k1".to_owned(), "k2".to_owned()], "k3".to_owned())
        );
        // KVRWSet{range_queries_info: [{start "k1", end "k2", raw [k1@(1,0), k2@(1,1)]}]},
        // as Fabric's simulator encodes it.
        assert_eq!(
            kv_bytes(&ctx),
            [
                0x12, 0x20, // range_queries_info, 32 bytes
                0x0a, 0x02, b'k', b'1', // start_key
                0x12, 0x02, b'k', b'2', // end_key: the page's last key
                0x22, 0x16, // raw_reads, 22 bytes
                0x0a, 0x08, 0x0a, 0x02, b'k', b'1', 0x12, 0x02, 0x08, 0x01, // k1 (1,0)
                0x0a, 0x0a, 0x0a, 0x02, b'k', b'2', 0x12, 0x04, 0x08, 0x01, 0x10,
                0x01, // k2 (1,1)
            ]
        );
    }

    #[test]
    fn a_page_from_a_bookmark_starts_there_and_a_short_page_is_exhausted_at_the_end_key() {
        let (_store, ctx) = context();
        assert_eq!(
            page(&ctx, "k1", "k9", 2, "k5"),
            (vec!["k5".to_owned()], String::new())
        );
        assert_eq!(
            kv_bytes(&ctx),
            [
                0x12, 0x18, // range_queries_info, 24 bytes
                0x0a, 0x02, b'k', b'5', // start_key: the bookmark
                0x12, 0x02, b'k', b'9', // end_key: the query's
                0x18, 0x01, // itr_exhausted
                0x22, 0x0c, // raw_reads, 12 bytes
                0x0a, 0x0a, 0x0a, 0x02, b'k', b'5', 0x12, 0x04, 0x08, 0x01, 0x10,
                0x04, // k5 (1,4)
            ]
        );
    }

    #[test]
    fn a_page_that_takes_the_last_keys_exactly_is_full_not_exhausted() {
        let (_store, ctx) = context();
        assert_eq!(
            page(&ctx, "k1", "k9", 2, "k4"),
            (vec!["k4".to_owned(), "k5".to_owned()], String::new())
        );
        let info = cchost_proto::kvrwset::KvrwSet::decode(kv_bytes(&ctx).as_slice())
            .unwrap()
            .range_queries_info;
        assert_eq!(
            (
                info[0].start_key.as_str(),
                info[0].end_key.as_str(),
                info[0].itr_exhausted
            ),
            ("k4", "k5", false)
        );
    }

    #[test]
    fn a_paginated_query_after_a_write_is_refused_and_a_write_after_one_too() {
        let (_store, ctx) = context();
        ctx.sim().put_state("cc", "a", b"1".to_vec()).unwrap();
        let request = GetStateByRange {
            metadata: QueryMetadata {
                page_size: 2,
                bookmark: String::new(),
            }
            .encode_to_vec(),
            ..GetStateByRange::default()
        };
        let error = get_state_by_range(&SupportConfig::default(), &ctx, &request.encode_to_vec())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "txid [tx]: unsuppored transaction. Paginated queries are supported only in a \
             read-only transaction"
        );
        let (_store, ctx) = context();
        page(&ctx, "", "", 1, "");
        assert_eq!(
            crate::handler::state::put_state(
                &ctx,
                &cchost_proto::protos::PutState {
                    key: "a".into(),
                    value: b"1".to_vec(),
                    collection: String::new(),
                }
                .encode_to_vec()
            )
            .unwrap_err()
            .to_string(),
            "txid [tx]: unsuppored transaction. Transaction has already performed a paginated \
             query. Writes are not allowed"
        );
    }

    #[test]
    fn metadata_without_a_page_size_or_bookmark_is_an_ordinary_range() {
        let (_store, ctx) = context();
        let request = GetStateByRange {
            start_key: "k1".into(),
            end_key: "k3".into(),
            metadata: QueryMetadata::default().encode_to_vec(),
            ..GetStateByRange::default()
        };
        let reply =
            get_state_by_range(&SupportConfig::default(), &ctx, &request.encode_to_vec()).unwrap();
        let response = QueryResponse::decode(reply.as_slice()).unwrap();
        assert!(response.metadata.is_empty(), "no page metadata");
        assert_eq!(response.results.len(), 2);
        // Not read-only: a write still works.
        ctx.sim().put_state("cc", "a", b"1".to_vec()).unwrap();
    }
}
