//! The chaincode side of an in-process stream: what fabric-shim does for Node chaincode,
//! done by the host for wasm chaincode. It registers with the handler, then runs each
//! INIT/TRANSACTION it is handed in a fresh instance; the guest's host calls reach the
//! handler by direct calls ([`Handler::request`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::{ChaincodeId, ChaincodeMessage, Response};
use futures_util::future::BoxFuture;
use prost::Message;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{debug, warn};
use wasmtime::{CallHook, Store, StoreLimitsBuilder, UpdateDeadline};

use super::guest::{GuestAbort, GuestState, HostFailure, PeerLine, TxCall, abi_violation, charge};
use super::imports::HOST_CALL_FUEL;
use super::pool::InstancePool;
use super::{WasmConfig, WasmModule};
use crate::handler::{DirectChaincode, Handler, Invocation, TxProposal};
use crate::ids::PackageId;
use crate::support::ChaincodeSupport;

/// The chaincode side of a wasm chaincode's connection: each INIT or TRANSACTION becomes
/// a future, driven by the task that executes the transaction, running a fresh instance.
struct WasmPeer {
    module: WasmModule,
    config: WasmConfig,
    chaincode: Arc<str>,
    /// The chaincode's own bound on transactions in progress (calls from other chaincode
    /// are part of a transaction admitted already and skip it).
    slots: Arc<Semaphore>,
    /// The engine's pooled instances.
    instances: Arc<InstancePool>,
    handler: OnceLock<Weak<Handler>>,
}

impl DirectChaincode for WasmPeer {
    fn deliver(&self, message: ChaincodeMessage) -> bool {
        match message.r#type() {
            Type::Registered | Type::Ready | Type::Keepalive => true,
            other => {
                warn!(chaincode = %self.chaincode, message = other.as_str_name(), "unexpected message from the peer");
                true
            }
        }
    }

    fn invocation(&self, invocation: Invocation) -> Option<BoxFuture<'static, ChaincodeMessage>> {
        let handler = self.handler.get().and_then(Weak::upgrade)?;
        let (module, config, slots, instances, chaincode) = (
            self.module.clone(),
            self.config.clone(),
            Arc::clone(&self.slots),
            Arc::clone(&self.instances),
            Arc::clone(&self.chaincode),
        );
        Some(Box::pin(async move {
            let Invocation {
                message,
                proposal,
                nested,
            } = invocation;
            let failed = |text: String| ChaincodeMessage {
                r#type: Type::Error.into(),
                payload: text.into_bytes(),
                txid: message.txid.clone(),
                channel_id: message.channel_id.clone(),
                ..Default::default()
            };
            // The invocations of one transaction (it and the chaincode it calls) share its
            // proposal: its address names their chain in the pool.
            static UNIQUE: AtomicUsize = AtomicUsize::new(1);
            let chain = proposal.as_ref().map_or_else(
                || UNIQUE.fetch_add(1, Ordering::Relaxed).wrapping_neg(),
                |p| Arc::as_ptr(p).addr(),
            );
            // A transaction from the peer takes one of the chaincode's slots, then one of
            // the engine's pooled instances; a call from another chaincode only needs the
            // instance (see `pool` for why this never deadlocks).
            let (_slot, _instance) = if nested {
                match instances.acquire_nested(chain).await {
                    Ok(instance) => (None, instance),
                    Err(exhausted) => return failed(exhausted.to_string()),
                }
            } else {
                let (Ok(slot), Some(instance)) =
                    (slots.acquire_owned().await, instances.acquire(chain).await)
                else {
                    return failed("the wasm runtime is shutting down".to_owned());
                };
                (Some(slot), instance)
            };
            let line = PeerLine::Direct(handler);
            invoke(&module, &config, &chaincode, message, proposal, line).await
        }))
    }
}

/// Connects `package_id` to `support` as chaincode in this process and registers it.
/// Returns the chaincode's side of its stream: dropping it ends the stream (the handler
/// deregisters; invocations in progress fail).
pub(crate) fn connect(
    support: &ChaincodeSupport,
    package_id: &PackageId,
    module: WasmModule,
    config: WasmConfig,
    instances: Arc<InstancePool>,
) -> mpsc::Sender<Result<ChaincodeMessage, Status>> {
    let (to_handler, inbound) = mpsc::channel(1);
    let peer = Arc::new(WasmPeer {
        module,
        slots: Arc::new(Semaphore::new(config.max_concurrent)),
        config,
        chaincode: Arc::from(package_id.as_str()),
        instances,
        handler: OnceLock::new(),
    });
    let handler = support.connect_in_process(
        Box::pin(ReceiverStream::new(inbound)),
        Arc::clone(&peer) as Arc<dyn DirectChaincode>,
    );
    let _ = peer.handler.set(Arc::downgrade(&handler));
    let register = ChaincodeMessage {
        r#type: Type::Register.into(),
        payload: ChaincodeId {
            name: package_id.to_string(),
            ..Default::default()
        }
        .encode_to_vec(),
        ..Default::default()
    };
    // The channel is new and holds one message: this cannot fail for lack of room.
    let _ = to_handler.try_send(Ok(register));
    to_handler
}

/// Runs one INIT or TRANSACTION in a fresh instance, its requests going to the peer
/// over `line`; returns COMPLETED or ERROR.
pub(super) async fn invoke(
    module: &WasmModule,
    config: &WasmConfig,
    chaincode: &str,
    message: ChaincodeMessage,
    proposal: Option<Arc<TxProposal>>,
    line: PeerLine,
) -> ChaincodeMessage {
    let (channel, txid) = (message.channel_id.clone(), message.txid.clone());
    let reply = |ty: Type, payload: Vec<u8>, event| ChaincodeMessage {
        r#type: ty.into(),
        payload,
        txid: txid.clone(),
        channel_id: channel.clone(),
        chaincode_event: event,
        ..Default::default()
    };
    let entry = if message.r#type() == Type::Init {
        cchost_abi::ENTRY_INIT
    } else {
        cchost_abi::ENTRY_INVOKE
    };
    let timestamp = proposal.as_ref().map_or(Duration::ZERO, |proposal| {
        let ts = proposal.parsed.channel_header.timestamp.unwrap_or_default();
        Duration::new(
            u64::try_from(ts.seconds).unwrap_or(0),
            u32::try_from(ts.nanos).unwrap_or(0),
        )
    });
    let (fuel, memory) = config.package_limits.effective(chaincode, config);
    let limits = StoreLimitsBuilder::new()
        .memory_size(memory)
        .table_elements(config.max_table_elements)
        .instances(1)
        .memories(1)
        .tables(1)
        .build();
    let call = TxCall {
        chaincode: chaincode.to_owned(),
        channel: channel.clone(),
        txid: txid.clone(),
        timestamp,
        proposal,
        line: Some(line),
    };
    let state = GuestState::new(call, message.payload, limits);
    let input_len = u32::try_from(state.input.len()).unwrap_or(u32::MAX);
    let mut store = Store::new(module.pre.module().engine(), state);
    store.limiter(|s| &mut s.limits);
    // WASI calls are paid for as they return (the `cchost` imports pay as they start).
    // The hook also sees wasmtime's own calls out of guest code (the epoch check,
    // `memory.grow`): those owe nothing, and nothing may be charged there, since the
    // epoch check comes when the clock ticks.
    store.call_hook(|mut store, hook| match hook {
        CallHook::ReturningFromHost => {
            let unpaid = std::mem::take(&mut store.data_mut().wasi_calls_unpaid);
            match unpaid {
                0 => Ok(()),
                calls => charge(store, calls.saturating_mul(HOST_CALL_FUEL)),
            }
        }
        _ => Ok(()),
    });
    // At every epoch tick the guest yields its runtime worker (other transactions, gRPC and
    // the operations endpoints run meanwhile, and a timeout around this future can fire);
    // past its deadline it traps. Neither changes what a guest computes.
    let started = std::time::Instant::now();
    let deadline = config.deadline;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if started.elapsed() >= deadline {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
    let outcome = async {
        store.set_fuel(fuel)?;
        // Instantiation traps on a segment out of bounds, and fails otherwise only on
        // limits (a package's memory limit below its initial memory); no WASI call has
        // been made.
        let instance = module
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| match e.downcast_ref::<wasmtime::Trap>() {
                Some(_) => e,
                None => HostFailure::error(format!(
                    "chaincode cannot be instantiated: {}",
                    last_cause(&e)
                )),
            })?;
        // Install checked the entry's type: this holds for any installed module.
        let entry = instance
            .get_typed_func::<u32, i32>(&mut store, entry)
            .map_err(|e| abi_violation(&last_cause(&e)))?;
        entry.call_async(&mut store, input_len).await
    }
    .await;
    // What is left once the entry returned or trapped (out of fuel leaves 0).
    let left = store.get_fuel().unwrap_or(0);
    module
        .fuel_consumed
        .fetch_add(fuel.saturating_sub(left), Ordering::Relaxed);
    let state = store.into_data();
    for (stream, pipe) in state
        .output
        .iter()
        .flat_map(|(stdout, stderr)| [("stdout", stdout), ("stderr", stderr)])
    {
        let text = pipe.contents();
        if !text.is_empty() {
            debug!(
                chaincode,
                txid,
                stream,
                "{}",
                String::from_utf8_lossy(&text)
            );
        }
    }
    match outcome {
        Ok(status) if status == cchost_abi::Status::Ok as i32 => match state.response {
            Some(response) => reply(Type::Completed, response, state.event),
            None => reply(
                Type::Error,
                b"chaincode returned without setting a response".to_vec(),
                None,
            ),
        },
        Ok(status) => reply(
            Type::Error,
            format!("chaincode returned status {status}").into_bytes(),
            None,
        ),
        Err(e) => match e.downcast_ref::<GuestAbort>() {
            // A panic reads like an error the chaincode returned: status 500, its message.
            Some(GuestAbort(message)) => reply(
                Type::Completed,
                Response {
                    status: 500,
                    message: message.clone(),
                    payload: Vec::new(),
                }
                .encode_to_vec(),
                None,
            ),
            None => reply(Type::Error, describe_failure(&e).into_bytes(), None),
        },
    }
}

/// A fixed, host-independent text for a trap or an ABI violation: the same on every peer.
pub(crate) fn describe_failure(error: &wasmtime::Error) -> String {
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::OutOfFuel => "chaincode ran out of fuel".to_owned(),
            wasmtime::Trap::Interrupt => "chaincode exceeded its execution deadline".to_owned(),
            other => {
                let text = other.to_string();
                format!(
                    "chaincode trapped: {}",
                    text.trim_start_matches("wasm trap: ")
                )
            }
        };
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!("chaincode exited with code {}", exit.0);
    }
    if let Some(HostFailure(text)) = error.downcast_ref::<HostFailure>() {
        return text.clone();
    }
    // Anything else ended a WASI call: wasmtime-wasi's guest-memory and argument checks
    // ("Pointer out of bounds: ...", "Invalid flag value Rights", proc_exit's status
    // bound): deterministic texts about what the guest passed, labelled as the WASI ABI
    // the guest broke.
    format!("chaincode broke the WASI ABI: {}", last_cause(error))
}

/// The innermost cause of `error`: the text without wasmtime's context layers.
fn last_cause(error: &wasmtime::Error) -> String {
    error
        .chain()
        .last()
        .map_or_else(|| error.to_string(), ToString::to_string)
}
