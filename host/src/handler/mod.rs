//! The peer side of Fabric's chaincode shim protocol.
//!
//! One [`Handler`] serves one chaincode stream, whatever carries it: the gRPC `Register`
//! stream of a container, a process started by hand or a chaincode server, or the
//! in-process stream of a wasm instance. It moves through typed states
//! (`Created → Established → Ready`), keeps a context per transaction keyed by channel and
//! txid, and answers the chaincode's requests through the transaction's simulator.
//!
//! Request families live in their own files: [`state`] (get/put/delete, metadata, batch),
//! [`query`] (range, history, rich queries, iterators) and [`invoke`] (chaincode to
//! chaincode).

mod context;
mod invoke;
mod query;
mod state;

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::{ChaincodeId, ChaincodeMessage};
use futures_util::{Stream, StreamExt};
use prost::Message;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::Status;
use tracing::{debug, info, warn};

use crate::ids::{PackageId, TxKey};
use crate::metrics::RequestMetrics;
use crate::support::Inner;

pub use context::TxProposal;
pub(crate) use context::{TxContext, TxParams};

/// Messages from a chaincode. A transport error ends the stream.
pub type MessageStream = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

/// Where a handler's messages to its chaincode go.
#[derive(Clone)]
pub enum MessageSink {
    /// A stream (gRPC, or an in-process channel); an `Err` ends it with that status.
    Stream(mpsc::Sender<Result<ChaincodeMessage, Status>>),
    /// Chaincode running in this process, handed each message by a call.
    Direct(Arc<dyn DirectChaincode>),
}

/// Chaincode in this process that takes the peer's messages by a call (wasm): the same
/// ChaincodeMessages a stream would carry, without a task hop for each.
pub trait DirectChaincode: Send + Sync {
    /// Takes one message from the peer; false once the chaincode is gone.
    fn deliver(&self, message: ChaincodeMessage) -> bool;

    /// An INIT or TRANSACTION as a future that runs the invocation and resolves to its
    /// COMPLETED or ERROR, for the caller to drive in its own task (no hand-off to
    /// another task and back). `None` once the chaincode is gone. The proposal comes
    /// beside the message, already decoded, rather than in its `proposal` field.
    fn invocation(
        &self,
        message: ChaincodeMessage,
        proposal: Option<Arc<TxProposal>>,
    ) -> Option<futures_util::future::BoxFuture<'static, ChaincodeMessage>>;
}

impl fmt::Debug for MessageSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Stream(_) => "MessageSink::Stream",
            Self::Direct(_) => "MessageSink::Direct",
        })
    }
}

impl MessageSink {
    /// Sends one message (or, on a stream, the status that ends it). Err once the
    /// chaincode is gone.
    pub async fn send(&self, item: Result<ChaincodeMessage, Status>) -> Result<(), ()> {
        match self {
            Self::Stream(out) => out.send(item).await.map_err(drop),
            Self::Direct(chaincode) => match item {
                Ok(message) => chaincode.deliver(message).then_some(()).ok_or(()),
                // A direct chaincode's stream ends from its own side.
                Err(_) => Ok(()),
            },
        }
    }
}

/// Where a handler is in the registration handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerState {
    /// Waiting for `REGISTER`.
    Created,
    /// `REGISTERED` sent.
    Established,
    /// `READY` sent: transactions may run.
    Ready,
}

impl fmt::Display for HandlerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Established => "established",
            Self::Ready => "ready",
        })
    }
}

/// Why a handler ended its stream.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A message type the current state does not accept (or an unknown type).
    #[error("cannot handle {message_type} message while in {state} state")]
    UnexpectedMessage {
        /// The type name, or the number of an unknown type.
        message_type: String,
        /// The state the handler was in.
        state: HandlerState,
    },
    /// The transport failed.
    #[error("chaincode stream failed: {0}")]
    Transport(String),
}

/// Why a request from the chaincode failed; its text follows Fabric's
/// `"<TYPE> failed: transaction ID: <txid>: "` in the ERROR reply.
#[derive(Debug)]
pub(crate) struct RequestError(String);

impl RequestError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<crate::ledger::LedgerError> for RequestError {
    fn from(e: crate::ledger::LedgerError) -> Self {
        Self(e.to_string())
    }
}

impl From<prost::DecodeError> for RequestError {
    fn from(e: prost::DecodeError) -> Self {
        Self(format!("unmarshal failed: {e}"))
    }
}

type RequestResult = Result<Vec<u8>, RequestError>;

/// (request type, channel) pairs whose metrics one handler keeps resolved.
const REQUEST_METRICS_CACHED: usize = 64;

/// Requests a chaincode may send while ready; each runs in its own task.
fn is_request(ty: Type) -> bool {
    matches!(
        ty,
        Type::GetState
            | Type::PutState
            | Type::DelState
            | Type::InvokeChaincode
            | Type::GetStateByRange
            | Type::GetQueryResult
            | Type::QueryStateNext
            | Type::QueryStateClose
            | Type::GetHistoryForKey
            | Type::GetStateMetadata
            | Type::PutStateMetadata
            | Type::GetPrivateDataHash
            | Type::PurgePrivateData
            | Type::WriteBatchState
            | Type::GetStateMultiple
    )
}

/// The peer side of one chaincode stream.
pub(crate) struct Handler {
    support: Arc<Inner>,
    out: MessageSink,
    package_id: OnceLock<PackageId>,
    contexts: Mutex<HashMap<TxKey, Arc<TxContext>>>,
    requests: Arc<Semaphore>,
    /// The request metrics of this chaincode, by request type and channel.
    request_metrics: Mutex<Vec<(Type, String, Arc<RequestMetrics>)>>,
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("package_id", &self.package_id.get())
            .finish_non_exhaustive()
    }
}

impl Handler {
    pub(crate) fn new(support: Arc<Inner>, out: MessageSink) -> Arc<Self> {
        let requests = Arc::new(Semaphore::new(support.config.max_concurrent_requests));
        Arc::new(Self {
            support,
            out,
            package_id: OnceLock::new(),
            contexts: Mutex::new(HashMap::new()),
            requests,
            request_metrics: Mutex::new(Vec::new()),
        })
    }

    fn contexts(&self) -> MutexGuard<'_, HashMap<TxKey, Arc<TxContext>>> {
        self.contexts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn context(&self, key: &TxKey) -> Option<Arc<TxContext>> {
        self.contexts().get(key).cloned()
    }

    /// For chaincode in this process: INIT or TRANSACTION `message` as a future that runs
    /// it (see [`DirectChaincode::invocation`]). `Err` gives the message back when the
    /// chaincode is behind a stream.
    #[allow(clippy::result_large_err)] // the message is handed back, not an error
    pub(crate) fn direct_invocation(
        &self,
        message: ChaincodeMessage,
        proposal: Option<&Arc<TxProposal>>,
    ) -> Result<Option<futures_util::future::BoxFuture<'static, ChaincodeMessage>>, ChaincodeMessage>
    {
        match &self.out {
            MessageSink::Direct(chaincode) => Ok(chaincode.invocation(message, proposal.cloned())),
            MessageSink::Stream(_) => Err(message),
        }
    }

    /// Sends a message to the chaincode; false once the stream is gone.
    pub(crate) async fn send(&self, message: ChaincodeMessage) -> bool {
        self.out.send(Ok(message)).await.is_ok()
    }

    /// The package id this stream registered as, once it has.
    pub(crate) fn package_id(&self) -> Option<&PackageId> {
        self.package_id.get()
    }

    /// Serves the stream until it ends or breaks the protocol, then deregisters and fails
    /// the transactions still waiting.
    pub(crate) async fn serve(self: Arc<Self>, mut inbound: MessageStream) {
        let result = Arc::clone(&self).run(&mut inbound).await;
        let who = self
            .package_id
            .get()
            .map_or_else(|| "unregistered chaincode".to_owned(), ToString::to_string);
        match result {
            Ok(()) => info!(chaincode = %who, "chaincode stream ended"),
            Err(e) => {
                warn!(chaincode = %who, error = %e, "ending chaincode stream");
                let _ = self.out.send(Err(Status::unknown(e.to_string()))).await;
            }
        }
        if let Some(package_id) = self.package_id.get() {
            self.support.registry.deregister(package_id, &self);
        }
        let contexts: Vec<_> = self.contexts().drain().map(|(_, ctx)| ctx).collect();
        for ctx in contexts {
            ctx.abandon();
        }
    }

    async fn run(self: Arc<Self>, inbound: &mut MessageStream) -> Result<(), HandlerError> {
        let mut state = HandlerState::Created;
        let mut closing = self.support.closing.subscribe();
        loop {
            let item = tokio::select! {
                item = inbound.next() => item,
                _ = closing.wait_for(|closing| *closing) => return Ok(()),
            };
            let Some(item) = item else {
                return Ok(());
            };
            let message = item.map_err(|s| HandlerError::Transport(s.message().to_owned()))?;
            let unexpected = |state| HandlerError::UnexpectedMessage {
                message_type: Type::try_from(message.r#type).map_or_else(
                    |_| message.r#type.to_string(),
                    |t| t.as_str_name().to_owned(),
                ),
                state,
            };
            let Ok(ty) = Type::try_from(message.r#type) else {
                return Err(unexpected(state));
            };
            if ty == Type::Keepalive {
                continue;
            }
            match state {
                HandlerState::Created if ty == Type::Register => {
                    if Arc::clone(&self).register(&message, &mut state).await {
                        self.start_keepalive();
                    }
                }
                HandlerState::Ready if matches!(ty, Type::Completed | Type::Error) => {
                    self.notify(message);
                }
                HandlerState::Ready if is_request(ty) => {
                    let metrics = self.received(ty, &message.channel_id);
                    // Bounded: past the limit, reading the stream waits (back-pressure).
                    let Ok(permit) = Arc::clone(&self.requests).acquire_owned().await else {
                        return Ok(());
                    };
                    let handler = Arc::clone(&self);
                    tokio::spawn(async move {
                        if let Some(reply) = handler.answer(message, ty, metrics).await {
                            handler.send(reply).await;
                        }
                        drop(permit);
                    });
                }
                _ => return Err(unexpected(state)),
            }
        }
    }

    /// REGISTER: on success sends REGISTERED then READY. A bad or refused registration is
    /// logged and answered with nothing, as Fabric does; the stream stays in `Created`.
    async fn register(
        self: Arc<Self>,
        message: &ChaincodeMessage,
        state: &mut HandlerState,
    ) -> bool {
        let name = match ChaincodeId::decode(message.payload.as_slice()) {
            Ok(id) if !id.name.is_empty() => id.name,
            Ok(_) => {
                warn!("REGISTER without a chaincode name ignored");
                return false;
            }
            Err(e) => {
                warn!(error = %e, "undecodable REGISTER payload ignored");
                return false;
            }
        };
        let package_id = PackageId::new(name);
        if let Err(e) =
            self.support
                .registry
                .register(&package_id, &self, self.support.config.dev_mode)
        {
            warn!(chaincode = %package_id, error = %e, "registration refused");
            return false;
        }
        let _ = self.package_id.set(package_id.clone());
        let reply = |ty: Type| ChaincodeMessage {
            r#type: ty.into(),
            ..Default::default()
        };
        if !self.send(reply(Type::Registered)).await {
            return false;
        }
        *state = HandlerState::Established;
        if !self.send(reply(Type::Ready)).await {
            return false;
        }
        *state = HandlerState::Ready;
        self.support.registry.mark_ready(&package_id);
        info!(chaincode = %package_id, "chaincode registered");
        true
    }

    /// KEEPALIVE every `chaincode.keepalive` when configured (off by default: the Node
    /// shim exits on a KEEPALIVE).
    fn start_keepalive(&self) {
        let Some(period) = self.support.config.keepalive else {
            return;
        };
        let out = self.out.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let keepalive = ChaincodeMessage {
                    r#type: Type::Keepalive.into(),
                    ..Default::default()
                };
                if out.send(Ok(keepalive)).await.is_err() {
                    break;
                }
            }
        });
    }

    /// COMPLETED or ERROR: hands the message to the transaction waiting for it.
    pub(crate) fn notify(&self, message: ChaincodeMessage) {
        let key = TxKey::new(&message.channel_id, &message.txid);
        match self.context(&key) {
            Some(ctx) => {
                if !ctx.complete(message) {
                    debug!(tx = %key, "second completion ignored");
                }
            }
            None => debug!(tx = %key, "completion for an unknown transaction ignored"),
        }
    }

    /// A request from chaincode running in this process, answered by a call rather than
    /// through the stream: counted, measured and served exactly as one read from the
    /// stream. `None` when it is dropped (a second concurrent request of a transaction).
    pub(crate) async fn request(&self, message: ChaincodeMessage) -> Option<ChaincodeMessage> {
        let ty = match Type::try_from(message.r#type) {
            Ok(ty) if is_request(ty) => ty,
            _ => {
                return Some(ChaincodeMessage {
                    r#type: Type::Error.into(),
                    payload: format!("message type {} is not a request", message.r#type)
                        .into_bytes(),
                    txid: message.txid,
                    channel_id: message.channel_id,
                    ..Default::default()
                });
            }
        };
        let metrics = self.received(ty, &message.channel_id);
        self.answer(message, ty, metrics).await
    }

    /// Counts a request from the chaincode, however it arrived; the metrics its
    /// completion is recorded in (none before registration).
    fn received(&self, ty: Type, channel: &str) -> Option<Arc<RequestMetrics>> {
        self.support.count_request(ty);
        let metrics = self.request_metrics(ty, channel)?;
        metrics.received();
        Some(metrics)
    }

    /// The metrics of requests of type `ty` on `channel`, resolved at the first one.
    fn request_metrics(&self, ty: Type, channel: &str) -> Option<Arc<RequestMetrics>> {
        let package_id = self.package_id.get()?;
        let mut cache = self
            .request_metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, metrics)) = cache.iter().find(|(t, c, _)| *t == ty && c == channel) {
            return Some(Arc::clone(metrics));
        }
        let metrics = Arc::new(self.support.metrics.requests(
            package_id,
            channel,
            ty.as_str_name(),
        ));
        // The channel comes from the chaincode: a bounded cache, so that a chaincode
        // naming endless channels cannot make every request's lookup longer.
        if cache.len() < REQUEST_METRICS_CACHED {
            cache.push((ty, channel.to_owned(), Arc::clone(&metrics)));
        }
        Some(metrics)
    }

    /// Serves one request; its RESPONSE or ERROR (None: dropped without an answer).
    async fn answer(
        &self,
        message: ChaincodeMessage,
        ty: Type,
        metrics: Option<Arc<RequestMetrics>>,
    ) -> Option<ChaincodeMessage> {
        let started = std::time::Instant::now();
        let key = TxKey::new(&message.channel_id, &message.txid);
        let result = match self.context(&key) {
            None => Err(RequestError::new("no ledger context")),
            Some(ctx) => {
                // The shims send one request at a time per transaction; Fabric drops a
                // second concurrent one without an answer.
                if !ctx.try_begin() {
                    debug!(tx = %key, request = ty.as_str_name(), "concurrent request dropped");
                    return None;
                }
                let result = self.dispatch(&ctx, ty, &message.payload).await;
                ctx.end();
                result
            }
        };
        if let Some(metrics) = metrics {
            metrics.completed(result.is_ok(), started.elapsed());
        }
        let reply = match result {
            Ok(payload) => ChaincodeMessage {
                r#type: Type::Response.into(),
                payload,
                txid: message.txid,
                channel_id: message.channel_id,
                ..Default::default()
            },
            Err(e) => ChaincodeMessage {
                r#type: Type::Error.into(),
                payload: format!(
                    "{} failed: transaction ID: {}: {e}",
                    ty.as_str_name(),
                    message.txid
                )
                .into_bytes(),
                txid: message.txid,
                channel_id: message.channel_id,
                ..Default::default()
            },
        };
        Some(reply)
    }

    async fn dispatch(&self, ctx: &Arc<TxContext>, ty: Type, payload: &[u8]) -> RequestResult {
        let config = &self.support.config;
        match ty {
            Type::GetState => state::get_state(ctx, payload),
            Type::PutState => state::put_state(ctx, payload),
            Type::DelState => state::del_state(ctx, payload),
            Type::GetStateMetadata => state::get_state_metadata(ctx, payload),
            Type::PutStateMetadata => state::put_state_metadata(ctx, payload),
            Type::GetPrivateDataHash => state::get_private_data_hash(ctx, payload),
            Type::PurgePrivateData => state::purge_private_data(ctx, payload),
            Type::WriteBatchState => state::write_batch_state(ctx, payload),
            Type::GetStateMultiple => state::get_state_multiple(ctx, payload),
            Type::GetStateByRange => query::get_state_by_range(config, ctx, payload),
            Type::GetQueryResult => query::get_query_result(ctx, payload),
            Type::QueryStateNext => query::query_state_next(config, ctx, payload),
            Type::QueryStateClose => query::query_state_close(ctx, payload),
            Type::GetHistoryForKey => query::get_history_for_key(config, ctx, payload),
            Type::InvokeChaincode => invoke::invoke_chaincode(&self.support, ctx, payload).await,
            other => Err(RequestError::new(format!(
                "{} is not a request",
                other.as_str_name()
            ))),
        }
    }

    /// Creates the context of a transaction about to be sent to this chaincode.
    pub(crate) fn create_context(
        &self,
        params: &TxParams,
    ) -> Option<(Arc<TxContext>, oneshot::Receiver<ChaincodeMessage>)> {
        let mut contexts = self.contexts();
        if contexts.contains_key(&params.key) {
            return None;
        }
        let (ctx, done) = TxContext::new(params);
        contexts.insert(params.key.clone(), Arc::clone(&ctx));
        Some((ctx, done))
    }

    /// Forgets a transaction: later requests for it get "no ledger context".
    pub(crate) fn remove_context(&self, key: &TxKey) {
        self.contexts().remove(key);
    }
}
