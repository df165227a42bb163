//! GET_STATE, PUT_STATE, DEL_STATE, state metadata, private-data calls, and the Fabric 3.x
//! batch calls.

use std::collections::BTreeMap;

use cchost_abi::refusals;
use cchost_proto::protos::{
    DelState, GetState, GetStateMetadata, GetStateMultiple, GetStateMultipleResult,
    PurgePrivateState, PutState, PutStateMetadata, StateMetadata, StateMetadataResult,
    WriteBatchState, write_record,
};
use prost::Message;

use super::query::MESSAGE_ENVELOPE;
use super::{RequestError, RequestResult, TxContext};
use crate::support::SupportConfig;

/// Public state only until private data collections exist; Init may never use them.
pub(super) fn check_collection(ctx: &TxContext, collection: &str) -> Result<(), RequestError> {
    if collection.is_empty() {
        return Ok(());
    }
    if ctx.is_init {
        return Err(RequestError::new(refusals::PRIVATE_DATA_IN_INIT));
    }
    Err(RequestError::new(format!(
        "{} (collection \"{collection}\")",
        refusals::PRIVATE_DATA_UNSUPPORTED
    )))
}

pub(super) fn get_state(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = GetState::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    Ok(ctx
        .sim()
        .get_state(&ctx.namespace, &req.key)?
        .unwrap_or_default())
}

pub(super) fn put_state(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = PutState::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    ctx.sim().put_state(&ctx.namespace, &req.key, req.value)?;
    Ok(Vec::new())
}

pub(super) fn del_state(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = DelState::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    ctx.sim().del_state(&ctx.namespace, &req.key)?;
    Ok(Vec::new())
}

pub(super) fn get_state_metadata(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = GetStateMetadata::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    let metadata = ctx.sim().get_state_metadata(&ctx.namespace, &req.key)?;
    Ok(StateMetadataResult {
        entries: metadata
            .into_iter()
            .map(|(metakey, value)| StateMetadata { metakey, value })
            .collect(),
    }
    .encode_to_vec())
}

/// Like Fabric, the key's metadata becomes exactly this one entry.
pub(super) fn put_state_metadata(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = PutStateMetadata::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    let entry = req
        .metadata
        .ok_or_else(|| RequestError::new("PutStateMetadata carries no metadata"))?;
    ctx.sim().put_state_metadata(
        &ctx.namespace,
        &req.key,
        BTreeMap::from([(entry.metakey, entry.value)]),
    )?;
    Ok(Vec::new())
}

pub(super) fn get_private_data_hash(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = GetState::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    Err(RequestError::new(
        refusals::PRIVATE_DATA_HASH_WITHOUT_COLLECTION,
    ))
}

pub(super) fn purge_private_data(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = PurgePrivateState::decode(payload)?;
    purge(ctx, &req.collection)?;
    Ok(Vec::new())
}

/// Fabric's `purgePrivateData`: only for a collection, never in Init.
fn purge(ctx: &TxContext, collection: &str) -> Result<(), RequestError> {
    if collection.is_empty() {
        return Err(RequestError::new(refusals::PURGE_WITHOUT_COLLECTION));
    }
    check_collection(ctx, collection)
}

/// Fabric 3.x: several writes in one message (sent by shims READY offered it to). As in
/// Fabric's `HandleWriteBatch`, records apply in order and one that fails ends the batch:
/// the records before it stay in the transaction.
pub(super) fn write_batch_state(ctx: &TxContext, payload: &[u8]) -> RequestResult {
    let req = WriteBatchState::decode(payload)?;
    for record in req.rec {
        match write_record::Type::try_from(record.r#type) {
            Ok(write_record::Type::PutState) => {
                check_collection(ctx, &record.collection)?;
                ctx.sim()
                    .put_state(&ctx.namespace, &record.key, record.value)?;
            }
            Ok(write_record::Type::DelState) => {
                check_collection(ctx, &record.collection)?;
                ctx.sim().del_state(&ctx.namespace, &record.key)?;
            }
            Ok(write_record::Type::PurgePrivateData) => {
                purge(ctx, &record.collection)?;
            }
            Ok(write_record::Type::PutStateMetadata) => {
                check_collection(ctx, &record.collection)?;
                // A record without metadata writes an empty entry, as Fabric's does.
                let entry = record.metadata.unwrap_or_default();
                ctx.sim().put_state_metadata(
                    &ctx.namespace,
                    &record.key,
                    BTreeMap::from([(entry.metakey, entry.value)]),
                )?;
            }
            _ => return Err(RequestError::new("unknown operation type")),
        }
    }
    Ok(Vec::new())
}

/// Fabric 3.x: several reads in one message. Two bounds Fabric's peer leaves to the shim:
/// at most the `max_size_get_multiple_keys` keys READY offered (the shims send no more
/// at a time), and values that fit in one message.
pub(super) fn get_state_multiple(
    config: &SupportConfig,
    ctx: &TxContext,
    payload: &[u8],
) -> RequestResult {
    let req = GetStateMultiple::decode(payload)?;
    check_collection(ctx, &req.collection)?;
    let max_keys = config.max_size_get_multiple_keys as usize;
    if req.keys.len() > max_keys {
        return Err(RequestError::new(format!(
            "GET_STATE_MULTIPLE asks for {} keys; at most {max_keys} at a time \
             (maxSizeGetMultipleKeys)",
            req.keys.len()
        )));
    }
    let limit = config.max_message_size.saturating_sub(MESSAGE_ENVELOPE);
    let mut sim = ctx.sim();
    let (mut values, mut bytes) = (Vec::with_capacity(req.keys.len()), 0_usize);
    for key in &req.keys {
        let value = sim.get_state(&ctx.namespace, key)?.unwrap_or_default();
        // Each value costs its bytes and a few of encoding.
        bytes = bytes.saturating_add(value.len() + 8);
        if bytes > limit {
            return Err(RequestError::new(format!(
                "the values of GET_STATE_MULTIPLE exceed {limit} bytes, the maximum message \
                 size"
            )));
        }
        values.push(value);
    }
    Ok(GetStateMultipleResult { values }.encode_to_vec())
}
