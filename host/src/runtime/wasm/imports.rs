//! The `cchost` imports: each shim operation reads its arguments from guest memory
//! (every length bounded by a named limit, every byte paid for in fuel), sends the
//! matching `ChaincodeMessage` to the handler, and awaits its RESPONSE or ERROR.
//! Transaction semantics live only in the handler.

use cchost_abi::limits::{MAX_KEY_LEN, MAX_LOG_LEN, MAX_VALUE_LEN};
use cchost_abi::{IMPORT_MODULE, LogLevel, Status, TxField, imports};
use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::{
    ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeSpec, DelState,
    GetHistoryForKey, GetQueryResult, GetState, GetStateByRange, GetStateMetadata,
    PurgePrivateState, PutState, PutStateMetadata, QueryMetadata, QueryStateClose, QueryStateNext,
    StateMetadata,
};
use prost::Message;
use wasmtime::{Caller, Linker};

use super::guest::{
    GuestAbort, GuestState, HostFailure, abi_violation, charge, charge_bytes, read, read_str,
    write, write_paid,
};
use crate::proposal::compute_binding;

/// Fuel charged per host call (the `cchost` imports at their start, WASI calls as they
/// return), on top of the guest's own instructions: a loop of cheap host calls still runs
/// out. Wasmtime's own calls out of guest code (the epoch check, `memory.grow`) are not
/// host calls and cost nothing more: charging them made fuel depend on when the epoch
/// ticked (`scripts/campaign differential`).
pub const HOST_CALL_FUEL: u64 = 10_000;

/// Fuel charged per byte a host call moves: copied out of guest memory (keys, values,
/// event payloads, responses), produced for the guest (the input, every reply as it
/// arrives, transaction fields, random bytes): a guest cannot make the host copy or
/// compute gigabytes for the flat price of a call. One unit, about what an instruction
/// costs.
pub const FUEL_PER_BYTE: u64 = 1;

type Ret<'a> = Box<dyn Future<Output = wasmtime::Result<i64>> + Send + 'a>;

/// Hands a request for this transaction to the handler and waits for the answer: its
/// payload becomes the pending result. ERROR yields `Failed` with the text pending.
async fn request(
    caller: &mut Caller<'_, GuestState>,
    ty: Type,
    payload: Vec<u8>,
) -> wasmtime::Result<i64> {
    let call = &mut caller.data_mut().call;
    let message = ChaincodeMessage {
        r#type: ty.into(),
        payload,
        txid: call.txid.clone(),
        channel_id: call.channel.clone(),
        ..Default::default()
    };
    let line = call
        .line
        .clone()
        .ok_or_else(|| HostFailure::error("the peer closed the chaincode stream"))?;
    let reply = line.request(message).await.map_err(HostFailure::error)?;
    // The reply is paid for as it arrives, whether or not the guest reads it.
    charge_bytes(&mut *caller, reply.payload.len())?;
    let state = caller.data_mut();
    match reply.r#type() {
        Type::Response => {
            let len = reply.payload.len();
            state.pending = Some(reply.payload);
            Ok(i64::try_from(len).unwrap_or(i64::MAX))
        }
        Type::Error => {
            state.pending = Some(reply.payload);
            Ok(Status::Failed as i64)
        }
        other => Err(HostFailure::error(format!(
            "unexpected {} from the peer",
            other.as_str_name()
        ))),
    }
}

/// Makes `bytes` the pending result, paid for now.
fn set_pending(caller: &mut Caller<'_, GuestState>, bytes: Vec<u8>) -> wasmtime::Result<i64> {
    charge_bytes(&mut *caller, bytes.len())?;
    let len = bytes.len();
    caller.data_mut().pending = Some(bytes);
    Ok(i64::try_from(len).unwrap_or(i64::MAX))
}

/// One `add_to_linker` for the whole `cchost` capability.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    let m = IMPORT_MODULE;

    linker.func_wrap(
        m,
        imports::INPUT_READ,
        |mut caller: Caller<'_, GuestState>, p: u32, l: u32| -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let input = std::mem::take(&mut caller.data_mut().input);
            write(&mut caller, p, l, &input)?;
            caller.data_mut().input = input;
            Ok(Status::Ok as i32)
        },
    )?;
    linker.func_wrap(
        m,
        imports::RESULT_READ,
        |mut caller: Caller<'_, GuestState>, p: u32, l: u32| -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let pending = caller
                .data_mut()
                .pending
                .take()
                .ok_or_else(|| abi_violation("result_read without a pending result"))?;
            write_paid(&mut caller, p, l, &pending)?;
            Ok(Status::Ok as i32)
        },
    )?;
    linker.func_wrap(
        m,
        imports::RESULT_LEN,
        |mut caller: Caller<'_, GuestState>| -> wasmtime::Result<i64> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            Ok(caller
                .data()
                .pending
                .as_ref()
                .map_or(Status::NotFound as i64, |p| {
                    i64::try_from(p.len()).unwrap_or(i64::MAX)
                }))
        },
    )?;
    linker.func_wrap(
        m,
        imports::SET_RESPONSE,
        |mut caller: Caller<'_, GuestState>, p: u32, l: u32| -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let response = read(&mut caller, p, l, MAX_VALUE_LEN)?;
            caller.data_mut().response = Some(response);
            Ok(Status::Ok as i32)
        },
    )?;
    linker.func_wrap(
        m,
        imports::SET_EVENT,
        |mut caller: Caller<'_, GuestState>,
         np: u32,
         nl: u32,
         pp: u32,
         pl: u32|
         -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let event_name = read_str(&mut caller, np, nl, MAX_KEY_LEN)?;
            let payload = read(&mut caller, pp, pl, MAX_VALUE_LEN)?;
            caller.data_mut().event = Some(ChaincodeEvent {
                event_name,
                payload,
                ..Default::default()
            });
            Ok(Status::Ok as i32)
        },
    )?;
    linker.func_wrap(
        m,
        imports::TX_CONTEXT,
        |mut caller: Caller<'_, GuestState>, field: u32| -> wasmtime::Result<i64> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let call = &caller.data().call;
            let bytes = match TxField::from_raw(field) {
                Some(TxField::TxId) => call.txid.clone().into_bytes(),
                Some(TxField::ChannelId) => call.channel.clone().into_bytes(),
                Some(TxField::SignedProposal) if let Some(proposal) = &call.proposal => {
                    proposal.signed.encode_to_vec()
                }
                Some(TxField::Binding) if let Some(proposal) = &call.proposal => {
                    let parsed = &proposal.parsed;
                    compute_binding(
                        &parsed.signature_header.nonce,
                        &parsed.signature_header.creator,
                        parsed.channel_header.epoch,
                    )
                }
                Some(_) => return Ok(Status::NotFound as i64),
                None => {
                    return Err(abi_violation(&format!(
                        "unknown transaction context field {field}"
                    )));
                }
            };
            set_pending(&mut caller, bytes)
        },
    )?;
    linker.func_wrap(
        m,
        imports::LOG,
        |mut caller: Caller<'_, GuestState>, level: u32, p: u32, l: u32| -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let line = read(&mut caller, p, l.min(MAX_LOG_LEN), MAX_LOG_LEN)?;
            let line = String::from_utf8_lossy(&line);
            let call = &caller.data().call;
            let (chaincode, txid) = (call.chaincode.as_str(), call.txid.as_str());
            match level {
                l if l == LogLevel::Error as u32 => tracing::error!(chaincode, txid, "{line}"),
                l if l == LogLevel::Warn as u32 => tracing::warn!(chaincode, txid, "{line}"),
                l if l == LogLevel::Info as u32 => tracing::info!(chaincode, txid, "{line}"),
                _ => tracing::debug!(chaincode, txid, "{line}"),
            }
            Ok(())
        },
    )?;

    linker.func_wrap(
        m,
        imports::ABORT,
        |mut caller: Caller<'_, GuestState>, p: u32, l: u32| -> wasmtime::Result<()> {
            // A panic message longer than a log line is cut, never refused: the abort
            // must end the invocation with the guest's own words.
            charge(&mut caller, HOST_CALL_FUEL)?;
            let message = read(&mut caller, p, l.min(MAX_LOG_LEN), MAX_LOG_LEN)?;
            Err(wasmtime::Error::new(GuestAbort(
                String::from_utf8_lossy(&message).into_owned(),
            )))
        },
    )?;

    linker.func_wrap_async(
        m,
        imports::GET_STATE,
        |mut caller: Caller<'_, GuestState>, (cp, cl, kp, kl): (u32, u32, u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let key = read_str(&mut caller, kp, kl, MAX_KEY_LEN)?;
                request(
                    &mut caller,
                    Type::GetState,
                    GetState { key, collection }.encode_to_vec(),
                )
                .await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::PUT_STATE,
        |mut caller: Caller<'_, GuestState>,
         (cp, cl, kp, kl, vp, vl): (u32, u32, u32, u32, u32, u32)|
         -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let key = read_str(&mut caller, kp, kl, MAX_KEY_LEN)?;
                let value = read(&mut caller, vp, vl, MAX_VALUE_LEN)?;
                let payload = PutState {
                    key,
                    value,
                    collection,
                }
                .encode_to_vec();
                request(&mut caller, Type::PutState, payload).await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::DEL_STATE,
        |mut caller: Caller<'_, GuestState>, (cp, cl, kp, kl): (u32, u32, u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let key = read_str(&mut caller, kp, kl, MAX_KEY_LEN)?;
                request(
                    &mut caller,
                    Type::DelState,
                    DelState { key, collection }.encode_to_vec(),
                )
                .await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::GET_STATE_METADATA,
        |mut caller: Caller<'_, GuestState>, (cp, cl, kp, kl): (u32, u32, u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let key = read_str(&mut caller, kp, kl, MAX_KEY_LEN)?;
                let payload = GetStateMetadata { key, collection }.encode_to_vec();
                request(&mut caller, Type::GetStateMetadata, payload).await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::PUT_STATE_METADATA,
        |mut caller: Caller<'_, GuestState>,
         (cp, cl, kp, kl, mp, ml, vp, vl): (u32, u32, u32, u32, u32, u32, u32, u32)|
         -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let key = read_str(&mut caller, kp, kl, MAX_KEY_LEN)?;
                let metakey = read_str(&mut caller, mp, ml, MAX_KEY_LEN)?;
                let value = read(&mut caller, vp, vl, MAX_VALUE_LEN)?;
                let payload = PutStateMetadata {
                    key,
                    collection,
                    metadata: Some(StateMetadata { metakey, value }),
                }
                .encode_to_vec();
                request(&mut caller, Type::PutStateMetadata, payload).await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::GET_PRIVATE_DATA_HASH,
        |mut caller: Caller<'_, GuestState>, (cp, cl, kp, kl): (u32, u32, u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let key = read_str(&mut caller, kp, kl, MAX_KEY_LEN)?;
                request(
                    &mut caller,
                    Type::GetPrivateDataHash,
                    GetState { key, collection }.encode_to_vec(),
                )
                .await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::PURGE_PRIVATE_DATA,
        |mut caller: Caller<'_, GuestState>, (cp, cl, kp, kl): (u32, u32, u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let key = read_str(&mut caller, kp, kl, MAX_KEY_LEN)?;
                let payload = PurgePrivateState { key, collection }.encode_to_vec();
                request(&mut caller, Type::PurgePrivateData, payload).await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::GET_STATE_BY_RANGE,
        |mut caller: Caller<'_, GuestState>,
         (cp, cl, sp, sl, ep, el, page_size, bp, bl): (
            u32,
            u32,
            u32,
            u32,
            u32,
            u32,
            i32,
            u32,
            u32,
        )|
         -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let start_key = read_str(&mut caller, sp, sl, MAX_KEY_LEN)?;
                let end_key = read_str(&mut caller, ep, el, MAX_KEY_LEN)?;
                let bookmark = read_str(&mut caller, bp, bl, MAX_KEY_LEN)?;
                let metadata = query_metadata(page_size, bookmark);
                let payload = GetStateByRange {
                    start_key,
                    end_key,
                    collection,
                    metadata,
                }
                .encode_to_vec();
                request(&mut caller, Type::GetStateByRange, payload).await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::QUERY_STATE_NEXT,
        |mut caller: Caller<'_, GuestState>, (p, l): (u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let id = read_str(&mut caller, p, l, MAX_KEY_LEN)?;
                request(
                    &mut caller,
                    Type::QueryStateNext,
                    QueryStateNext { id }.encode_to_vec(),
                )
                .await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::QUERY_STATE_CLOSE,
        |mut caller: Caller<'_, GuestState>, (p, l): (u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let id = read_str(&mut caller, p, l, MAX_KEY_LEN)?;
                request(
                    &mut caller,
                    Type::QueryStateClose,
                    QueryStateClose { id }.encode_to_vec(),
                )
                .await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::GET_HISTORY_FOR_KEY,
        |mut caller: Caller<'_, GuestState>, (p, l): (u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let key = read_str(&mut caller, p, l, MAX_KEY_LEN)?;
                request(
                    &mut caller,
                    Type::GetHistoryForKey,
                    GetHistoryForKey { key }.encode_to_vec(),
                )
                .await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::GET_QUERY_RESULT,
        |mut caller: Caller<'_, GuestState>,
         (cp, cl, qp, ql, page_size, bp, bl): (u32, u32, u32, u32, i32, u32, u32)|
         -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let collection = read_str(&mut caller, cp, cl, MAX_KEY_LEN)?;
                let query = read_str(&mut caller, qp, ql, MAX_VALUE_LEN)?;
                let bookmark = read_str(&mut caller, bp, bl, MAX_KEY_LEN)?;
                let metadata = query_metadata(page_size, bookmark);
                let payload = GetQueryResult {
                    query,
                    collection,
                    metadata,
                }
                .encode_to_vec();
                request(&mut caller, Type::GetQueryResult, payload).await
            })
        },
    )?;
    linker.func_wrap_async(
        m,
        imports::INVOKE_CHAINCODE,
        |mut caller: Caller<'_, GuestState>, (tp, tl, ip, il): (u32, u32, u32, u32)| -> Ret<'_> {
            Box::new(async move {
                charge(&mut caller, HOST_CALL_FUEL)?;
                let target = read_str(&mut caller, tp, tl, MAX_KEY_LEN)?;
                let input = read(&mut caller, ip, il, MAX_VALUE_LEN)?;
                let input = ChaincodeInput::decode(input.as_slice()).map_err(|_| {
                    abi_violation("invoke_chaincode input is not an encoded ChaincodeInput")
                })?;
                let spec = ChaincodeSpec {
                    chaincode_id: Some(ChaincodeId {
                        name: target,
                        ..Default::default()
                    }),
                    input: Some(input),
                    ..Default::default()
                };
                request(&mut caller, Type::InvokeChaincode, spec.encode_to_vec()).await
            })
        },
    )?;
    Ok(())
}

/// Encoded `QueryMetadata` when the query is paginated, else nothing.
fn query_metadata(page_size: i32, bookmark: String) -> Vec<u8> {
    if page_size == 0 && bookmark.is_empty() {
        return Vec::new();
    }
    QueryMetadata {
        page_size,
        bookmark,
    }
    .encode_to_vec()
}
