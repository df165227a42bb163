//! Range queries, key history, rich queries and their iterators.
//!
//! Fabric's contract with the shims, kept exactly: a batch holds at most
//! `query_batch_size` (100) results; `has_more = true` only when one more result has
//! already been read, so the next batch is never empty (the Node shim crashes on an empty
//! one); the last batch closes the iterator; a paginated query answers in one reply with
//! `QueryResponseMetadata` and its bookmark. Every range result read from the ledger,
//! paginated or not, is recorded in the transaction's `RangeQueryInfo`.

use cchost_proto::protos::{
    GetHistoryForKey, GetQueryResult, GetStateByRange, QueryMetadata, QueryResponse,
    QueryResponseMetadata, QueryResultBytes, QueryStateClose, QueryStateNext,
};
use cchost_proto::queryresult::{KeyModification, Kv};
use prost::Message;

use super::state::check_collection;
use super::{RequestError, RequestResult, TxContext};
use crate::ledger::{Height, RangeQueryId, VersionedValue};
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
    if ctx.iterators().len() >= config.max_iterators_per_tx {
        return Err(RequestError::new(format!(
            "too many open query iterators in this transaction (limit {}): close iterators \
             when done with them",
            config.max_iterators_per_tx
        )));
    }
    Ok(uuid::Uuid::new_v4().to_string())
}

/// How many results to read now: up to a full batch plus one, within the total limit.
fn reads_wanted(config: &SupportConfig, have: usize, read_so_far: usize) -> usize {
    let want = (config.query_batch_size + 1).saturating_sub(have);
    want.min(config.total_query_limit.saturating_sub(read_so_far))
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
    if response.has_more {
        ctx.iterators().insert(id, QueryIterator::Range(iter));
    }
    Ok(response.encode_to_vec())
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
            sim.range(&ctx.namespace, &iter.next_from, &iter.end, wanted)?
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
    let mut fetched = sim.range(&ctx.namespace, start, &req.end_key, limit.saturating_add(1))?;
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
    Ok(QueryResponse {
        results: fetched
            .into_iter()
            .map(|(key, value)| kv_result(&ctx.namespace, key, value.value))
            .collect(),
        has_more: false,
        id: uuid::Uuid::new_v4().to_string(),
        metadata: QueryResponseMetadata {
            fetched_records_count: count,
            bookmark,
        }
        .encode_to_vec(),
    }
    .encode_to_vec())
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
    if response.has_more {
        ctx.iterators().insert(id, QueryIterator::History(iter));
    }
    Ok(response.encode_to_vec())
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
        ctx.sim()
            .history(&ctx.namespace, &iter.key, iter.before, wanted)?
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
    let iter = ctx.iterators().remove(&req.id);
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
    if response.has_more {
        ctx.iterators().insert(req.id, iter);
    }
    Ok(response.encode_to_vec())
}

/// Answered for any id, open, finished or unknown, as Fabric does.
pub(super) fn query_state_close(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = QueryStateClose::decode(payload)?;
    ctx.iterators().remove(&req.id);
    Ok(QueryResponse {
        results: Vec::new(),
        has_more: false,
        id: req.id,
        metadata: Vec::new(),
    }
    .encode_to_vec())
}
