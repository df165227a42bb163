//! Wasm chaincode at the chaincode end of a gRPC stream to a peer somewhere else: what
//! `cchost chaincode run` (an external builder's `bin/run`, which dials the peer) and
//! `cchost chaincode serve` (chaincode-as-a-service, which the peer dials) run.
//!
//! It is the in-process shim with another line: it REGISTERs, waits for READY, and runs
//! every INIT or TRANSACTION the peer sends in a fresh instance, concurrently, under the
//! same fuel, memory, deadline and determinism rules. The guest's host calls become the
//! same ChaincodeMessages, sent on the stream; the peer's RESPONSE or ERROR is routed
//! back to the waiting invocation by channel and txid, as Fabric's shims do.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::{ChaincodeAdditionalParams, ChaincodeId, ChaincodeMessage};
use futures_util::{Stream, StreamExt};
use prost::Message;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::guest::PeerLine;
use super::pool::InstancePool;
use super::{WasmConfig, WasmModule, shim};
use crate::handler::TxProposal;
use crate::ids::PackageId;
use crate::proposal::ParsedProposal;

/// How long in-flight transactions may take to finish once the chaincode is asked to
/// stop: Fabric sends SIGTERM, then SIGKILL 5 s later, so the chaincode ends first.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(4);

/// How long a stopped session waits for the peer to close the stream (its last answers
/// delivered); within Fabric's 5 s before SIGKILL, after [`DRAIN_TIMEOUT`].
const CLOSE_WAIT: Duration = Duration::from_millis(500);

/// How long the chaincode waits for the peer to make it READY after REGISTER (Fabric's
/// default `chaincode.startuptimeout`). A peer that gave up on the launch does not stop
/// what it started; the chaincode ends by itself instead of lingering.
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// The text a request gets when the stream ends before its answer.
const CLOSED: &str = "the peer closed the chaincode stream";

type TxKey = (String, String);

/// The requests of this process's transactions waiting for the peer's answer, and the
/// stream they go out on.
pub(crate) struct RemoteLine {
    outbound: mpsc::Sender<ChaincodeMessage>,
    waiting: Mutex<HashMap<TxKey, oneshot::Sender<ChaincodeMessage>>>,
}

impl RemoteLine {
    fn waiting(&self) -> MutexGuard<'_, HashMap<TxKey, oneshot::Sender<ChaincodeMessage>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a request and waits for its answer. A transaction has one request in flight
    /// at a time (its guest waits for each answer), so channel and txid name it.
    pub(crate) async fn request(
        &self,
        message: ChaincodeMessage,
    ) -> Result<ChaincodeMessage, &'static str> {
        let key = (message.channel_id.clone(), message.txid.clone());
        let (answer, answered) = oneshot::channel();
        match self.waiting().entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => {
                return Err("a transaction sent a second request before the first was answered");
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(answer);
            }
        }
        // A request given up (its transaction timed out) leaves no waiter behind.
        struct Forget<'a>(&'a RemoteLine, TxKey);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.waiting().remove(&self.1);
            }
        }
        let _forget = Forget(self, key);
        self.outbound.send(message).await.map_err(|_| CLOSED)?;
        answered.await.map_err(|_| CLOSED)
    }

    /// Hands the peer's RESPONSE or ERROR to the request waiting for it; false when none
    /// waits.
    fn answer(&self, message: ChaincodeMessage) -> bool {
        let key = (message.channel_id.clone(), message.txid.clone());
        match self.waiting().remove(&key) {
            Some(waiter) => waiter.send(message).is_ok(),
            None => false,
        }
    }

    /// Fails every waiting request: the stream is gone.
    fn close(&self) {
        self.waiting().clear();
    }
}

/// How a session with the peer ended, when it ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Asked to stop: every transaction in flight was answered first.
    Stopped,
}

/// Why a session with the peer ended badly: the text says what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SessionError(pub String);

/// A wasm chaincode ready to serve peers over gRPC streams: the module, its limits, and
/// the package id it registers as. Cheap to clone; sessions share its bound on
/// transactions at once.
#[derive(Clone)]
pub struct RemoteChaincode {
    pub(super) module: WasmModule,
    pub(super) config: WasmConfig,
    pub(super) instances: Arc<InstancePool>,
    pub(super) package_id: PackageId,
    pub(super) slots: Arc<Semaphore>,
}

impl std::fmt::Debug for RemoteChaincode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteChaincode")
            .field("package_id", &self.package_id)
            .finish_non_exhaustive()
    }
}

/// Where a session stands with the peer (Fabric's shim states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Established,
    Ready,
}

impl RemoteChaincode {
    /// The package id this chaincode registers as.
    pub fn package_id(&self) -> &PackageId {
        &self.package_id
    }

    /// Serves one stream: `inbound` is what the peer sends, `outbound` what goes back.
    /// Sends REGISTER, then serves until the stream ends (an error: the transactions in
    /// flight are lost, the peer relaunches the chaincode) or `stop` completes (new
    /// transactions are refused, those in flight are answered within [`DRAIN_TIMEOUT`]).
    pub async fn serve<S, E>(
        &self,
        mut inbound: S,
        outbound: mpsc::Sender<ChaincodeMessage>,
        stop: impl Future<Output = ()>,
    ) -> Result<SessionEnd, SessionError>
    where
        S: Stream<Item = Result<ChaincodeMessage, E>> + Unpin,
        E: std::fmt::Display,
    {
        let line = Arc::new(RemoteLine {
            outbound: outbound.clone(),
            waiting: Mutex::default(),
        });
        let result = self.session(&mut inbound, &outbound, &line, stop).await;
        line.close();
        if result.is_ok() {
            // Every transaction answered: end the stream from this side, and wait (a
            // little) for the peer to end its own, which it does once it has read
            // everything sent before the end. A process that exits right away may take
            // its last answers with it.
            drop(line);
            drop(outbound);
            let closed = async { while inbound.next().await.is_some() {} };
            let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
        }
        result
    }

    async fn session<S, E>(
        &self,
        inbound: &mut S,
        outbound: &mpsc::Sender<ChaincodeMessage>,
        line: &Arc<RemoteLine>,
        stop: impl Future<Output = ()>,
    ) -> Result<SessionEnd, SessionError>
    where
        S: Stream<Item = Result<ChaincodeMessage, E>> + Unpin,
        E: std::fmt::Display,
    {
        let fail = |text: String| Err(SessionError(text));
        let register = ChaincodeMessage {
            r#type: Type::Register.into(),
            payload: ChaincodeId {
                name: self.package_id.to_string(),
                ..Default::default()
            }
            .encode_to_vec(),
            ..Default::default()
        };
        if outbound.send(register).await.is_err() {
            return fail("the stream to the peer closed before REGISTER was sent".into());
        }
        let mut state = State::Created;
        let mut running = JoinSet::new();
        // The transactions in flight, by channel and txid: their requests' answers are
        // routed by these, so one may not run twice at once.
        let mut in_progress = std::collections::HashSet::new();
        let stop = std::pin::pin!(stop);
        let mut stop = futures_util::FutureExt::fuse(stop);
        let drained = tokio::time::sleep(Duration::MAX);
        tokio::pin!(drained);
        let unready = tokio::time::sleep(READY_TIMEOUT);
        tokio::pin!(unready);
        let mut stopping = false;
        loop {
            tokio::select! {
                () = &mut stop, if !stopping => {
                    stopping = true;
                    if running.is_empty() {
                        return Ok(SessionEnd::Stopped);
                    }
                    info!(transactions = running.len(), "stopping: answering the transactions in flight first");
                    drained.as_mut().reset(tokio::time::Instant::now() + DRAIN_TIMEOUT);
                }
                Some(done) = running.join_next() => {
                    if let Ok(key) = done {
                        in_progress.remove(&key);
                    }
                    if stopping && running.is_empty() {
                        return Ok(SessionEnd::Stopped);
                    }
                }
                () = &mut unready, if state != State::Ready => {
                    return fail(format!(
                        "the peer did not make the chaincode READY within {READY_TIMEOUT:?} of REGISTER"
                    ));
                }
                () = &mut drained => {
                    return fail(format!(
                        "still {} {DRAIN_TIMEOUT:?} after the chaincode was asked to stop",
                        in_flight(running.len())
                    ));
                }
                message = inbound.next() => {
                    let message = match message {
                        None => return fail(format!("{CLOSED} ({})", in_flight(running.len()))),
                        Some(Err(e)) => return fail(format!("the chaincode stream failed: {e}")),
                        Some(Ok(message)) => message,
                    };
                    match (message.r#type(), state) {
                        (Type::Registered, State::Created) => state = State::Established,
                        (Type::Ready, State::Established) => {
                            // Fabric 3.x offers its batch requests in READY's payload; a
                            // wasm guest makes one request at a time and uses none.
                            if let Ok(params) = ChaincodeAdditionalParams::decode(message.payload.as_slice()) {
                                debug!(?params, "ready");
                            }
                            info!(chaincode = %self.package_id, "registered with the peer and ready");
                            state = State::Ready;
                        }
                        (Type::Error, State::Created | State::Established) => {
                            return fail(format!(
                                "the peer refused the registration of {}: {}",
                                self.package_id,
                                String::from_utf8_lossy(&message.payload)
                            ));
                        }
                        (Type::Keepalive, _) => {
                            // Answered when there is room; a full stream is alive anyway.
                            let _ = outbound.try_send(message);
                        }
                        (Type::Response | Type::Error, State::Ready) => {
                            if !line.answer(message) {
                                debug!("an answer for a request no longer waiting");
                            }
                        }
                        (Type::Init | Type::Transaction, State::Ready) => {
                            let reply = outbound.clone();
                            if stopping {
                                // Never awaited here: a peer that stops reading must not
                                // hold the loop (and with it the stop and the drain).
                                let _ = reply.try_send(error(&message, "the chaincode is shutting down".into()));
                                continue;
                            }
                            let key = (message.channel_id.clone(), message.txid.clone());
                            if !in_progress.insert(key.clone()) {
                                let text = format!(
                                    "transaction {} on channel {} is already in progress",
                                    message.txid, message.channel_id
                                );
                                let _ = reply.try_send(error(&message, text));
                                continue;
                            }
                            let (chaincode, line) = (self.clone(), Arc::clone(line));
                            running.spawn(async move {
                                // Whatever happens, the peer gets an answer and the txid
                                // is freed (the task hands its key back).
                                let run = std::panic::AssertUnwindSafe(chaincode.execute(message, line));
                                let answer = futures_util::FutureExt::catch_unwind(run)
                                    .await
                                    .unwrap_or_else(|_| ChaincodeMessage {
                                        r#type: Type::Error.into(),
                                        payload: b"the chaincode host failed while running the transaction".to_vec(),
                                        channel_id: key.0.clone(),
                                        txid: key.1.clone(),
                                        ..Default::default()
                                    });
                                let _ = reply.send(answer).await;
                                key
                            });
                        }
                        (other, state) => {
                            warn!(message = other.as_str_name(), ?state, "unexpected message from the peer");
                            if matches!(other, Type::Init | Type::Transaction) {
                                let text = format!(
                                    "cannot handle {} while in state {state:?}",
                                    other.as_str_name()
                                );
                                let _ = outbound.try_send(error(&message, text));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs one INIT or TRANSACTION in a fresh instance, bounded by the deadline also
    /// while it waits for the peer.
    async fn execute(&self, message: ChaincodeMessage, line: Arc<RemoteLine>) -> ChaincodeMessage {
        let (txid, channel) = (message.txid.clone(), message.channel_id.clone());
        // From its arrival: waiting for a slot and an instance counts too, so that no
        // transaction runs after the peer has given up on it.
        tokio::time::timeout(self.config.deadline, self.run(message, line))
            .await
            .unwrap_or_else(|_| ChaincodeMessage {
                r#type: Type::Error.into(),
                payload: b"chaincode exceeded its execution deadline".to_vec(),
                txid,
                channel_id: channel,
                ..Default::default()
            })
    }

    async fn run(&self, message: ChaincodeMessage, line: Arc<RemoteLine>) -> ChaincodeMessage {
        let proposal = match &message.proposal {
            None => None,
            Some(signed) => match ParsedProposal::parse(signed) {
                Ok(parsed) => Some(Arc::new(TxProposal {
                    signed: signed.clone(),
                    parsed,
                })),
                Err(e) => return error(&message, format!("the transaction's proposal: {e}")),
            },
        };
        let Ok(_slot) = self.slots.acquire().await else {
            return error(&message, "the wasm runtime is shutting down".into());
        };
        // Calls from chaincode come from the peer as transactions of their own: every
        // invocation here is top-level, in a chain of its own.
        static CHAIN: AtomicUsize = AtomicUsize::new(1);
        let chain = CHAIN.fetch_add(1, Ordering::Relaxed);
        let Some(_instance) = self.instances.acquire(chain).await else {
            return error(&message, "the wasm runtime is shutting down".into());
        };
        shim::invoke(
            &self.module,
            &self.config,
            self.package_id.as_str(),
            message,
            proposal,
            PeerLine::Remote(line),
        )
        .await
    }
}

/// "1 transaction in flight", "2 transactions in flight".
fn in_flight(n: usize) -> String {
    format!("{n} transaction{} in flight", if n == 1 { "" } else { "s" })
}

/// An ERROR answering `message`.
fn error(message: &ChaincodeMessage, text: String) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: Type::Error.into(),
        payload: text.into_bytes(),
        txid: message.txid.clone(),
        channel_id: message.channel_id.clone(),
        ..Default::default()
    }
}
