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
use std::time::{Duration, Instant};

use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::{ChaincodeAdditionalParams, ChaincodeId, ChaincodeMessage};
use futures_util::{Stream, StreamExt};
use prost::Message;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::Status;
use tracing::{debug, info, warn};

use crate::ids::{PackageId, TxKey};
use crate::metrics::RequestMetrics;
use crate::support::Inner;

pub use context::TxProposal;
pub(crate) use context::{LiveCounts, RequestGuard, TxContext, TxParams};

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
    /// another task and back). `None` once the chaincode is gone.
    fn invocation(
        &self,
        invocation: Invocation,
    ) -> Option<futures_util::future::BoxFuture<'static, ChaincodeMessage>>;
}

/// An INIT or TRANSACTION for chaincode in this process. The proposal comes beside the
/// message, already decoded, rather than in its `proposal` field.
#[derive(Debug)]
pub struct Invocation {
    /// The INIT or TRANSACTION message.
    pub message: ChaincodeMessage,
    /// The client's proposal.
    pub proposal: Option<Arc<TxProposal>>,
    /// Called by another chaincode (INVOKE_CHAINCODE), within its transaction.
    pub nested: bool,
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
    /// Sends `message` once there is room for it, calling `before` just before it goes
    /// (after the wait). Err once the chaincode is gone.
    async fn send_when_room(
        &self,
        message: ChaincodeMessage,
        before: impl FnOnce(),
    ) -> Result<(), ()> {
        match self {
            Self::Stream(out) => {
                let permit = out.reserve().await.map_err(drop)?;
                before();
                permit.send(Ok(message));
                Ok(())
            }
            Self::Direct(chaincode) => {
                before();
                chaincode.deliver(message).then_some(()).ok_or(())
            }
        }
    }

    /// Resolves once no one reads what this sink sends (never, for chaincode in this
    /// process, whose end is its own).
    async fn closed(&self) {
        match self {
            Self::Stream(out) => out.closed().await,
            Self::Direct(_) => std::future::pending().await,
        }
    }

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
    /// The stream did not send REGISTER in time.
    #[error("no REGISTER within {0:?} of connecting")]
    RegisterTimeout(std::time::Duration),
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

/// How long the status that ends a stream may wait for room in its queue.
const FINAL_STATUS_WAIT: Duration = Duration::from_secs(1);

/// (request type, channel) pairs whose metrics one handler keeps resolved.
const REQUEST_METRICS_CACHED: usize = 64;

/// Requests a chaincode may send while ready.
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
    /// Set when the stream has ended: tasks serving it (keepalive) end too.
    ended: tokio::sync::watch::Sender<bool>,
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
            ended: tokio::sync::watch::Sender::new(false),
        })
    }

    fn contexts(&self) -> MutexGuard<'_, HashMap<TxKey, Arc<TxContext>>> {
        self.contexts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn context(&self, key: &TxKey) -> Option<Arc<TxContext>> {
        self.contexts().get(key).cloned()
    }

    /// For chaincode in this process: the invocation as a future that runs it (see
    /// [`DirectChaincode::invocation`]). `Err` gives it back when the chaincode is behind
    /// a stream.
    #[allow(clippy::result_large_err)] // the invocation is handed back, not an error
    pub(crate) fn direct_invocation(
        &self,
        invocation: Invocation,
    ) -> Result<Option<futures_util::future::BoxFuture<'static, ChaincodeMessage>>, Invocation>
    {
        match &self.out {
            MessageSink::Direct(chaincode) => Ok(chaincode.invocation(invocation)),
            MessageSink::Stream(_) => Err(invocation),
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
                // A chaincode that stopped reading does not get the status, and does not
                // hold the deregistration up.
                let status = self.out.send(Err(Status::unknown(e.to_string())));
                let _ = tokio::time::timeout(FINAL_STATUS_WAIT, status).await;
            }
        }
        self.ended.send_replace(true);
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
        let register_timeout = self.support.config.register_timeout;
        let register_by = tokio::time::sleep(register_timeout);
        tokio::pin!(register_by);
        loop {
            let item = tokio::select! {
                item = inbound.next() => item,
                _ = closing.wait_for(|closing| *closing) => return Ok(()),
                // Whoever reads our messages is gone (a stopped chaincode-as-a-service
                // connection): nothing sent now would arrive.
                () = self.out.closed() => return Ok(()),
                () = &mut register_by, if state == HandlerState::Created => {
                    return Err(HandlerError::RegisterTimeout(register_timeout));
                }
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
                HandlerState::Ready if is_request(ty) => self.accept(message, ty).await,
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
        let registered = ChaincodeMessage {
            r#type: Type::Registered.into(),
            ..Default::default()
        };
        if !self.send(registered).await {
            return false;
        }
        *state = HandlerState::Established;
        // As a Fabric 3.x peer: READY offers the batch requests (a 2.5 shim ignores it).
        let config = &self.support.config;
        let ready = ChaincodeMessage {
            r#type: Type::Ready.into(),
            payload: ChaincodeAdditionalParams {
                use_write_batch: config.use_write_batch,
                max_size_write_batch: config.max_size_write_batch,
                use_get_multiple_keys: config.use_get_multiple_keys,
                max_size_get_multiple_keys: config.max_size_get_multiple_keys,
            }
            .encode_to_vec(),
            ..Default::default()
        };
        if !self.send(ready).await {
            return false;
        }
        *state = HandlerState::Ready;
        self.support.registry.mark_ready(&package_id);
        info!(chaincode = %package_id, "chaincode registered");
        true
    }

    /// KEEPALIVE every `chaincode.keepalive` when configured (off by default: the Node
    /// shim exits on a KEEPALIVE), on streams only (chaincode in this process cannot
    /// lose its connection), until the stream ends.
    fn start_keepalive(&self) {
        let (Some(period), MessageSink::Stream(out)) = (self.support.config.keepalive, &self.out)
        else {
            return;
        };
        let out = out.clone();
        let mut ended = self.ended.subscribe();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = ended.wait_for(|ended| *ended) => break,
                }
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

    /// A request read from the stream. The stream is never left unread because of it:
    /// COMPLETED and ERROR behind it must get through (a transaction in progress may be
    /// waiting on a chaincode this same stream serves). A request with no transaction is
    /// answered at once, a second concurrent one of a transaction is dropped (as Fabric
    /// does), and the rest are served in a task of their own: at most one per
    /// transaction in progress, so their number is bounded by what the peer sent. Of
    /// those, at most `max_concurrent_requests` touch the ledger at once; INVOKE_CHAINCODE
    /// only waits on another chaincode and takes no turn (it would hold one that its
    /// callee's requests need).
    async fn accept(self: &Arc<Self>, message: ChaincodeMessage, ty: Type) {
        let (ctx, busy, metrics) = match self.begin(&message, ty) {
            Begin::Unknown(metrics) => {
                let reply = reply(message, ty, Err(no_context(ty)), metrics, Instant::now());
                self.send(reply).await;
                return;
            }
            Begin::Busy => return,
            Begin::Started(ctx, busy, metrics) => (ctx, busy, metrics),
        };
        let handler = Arc::clone(self);
        tokio::spawn(async move {
            let started = Instant::now();
            let _turn = if ty == Type::InvokeChaincode {
                None
            } else {
                Arc::clone(&handler.requests).acquire_owned().await.ok()
            };
            let result = handler.dispatch(&ctx, ty, &message.payload).await;
            // The request counts as in progress until there is room for its reply: a
            // chaincode sending requests without reading the replies gets its duplicates
            // dropped meanwhile, rather than a queue of answered ones. It stops counting
            // just before the reply goes, so the request the chaincode sends once it has
            // the reply is never taken for a duplicate.
            let reply = reply(message, ty, result, metrics, started);
            let _ = handler.out.send_when_room(reply, || drop(busy)).await;
        });
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
        let started = Instant::now();
        match self.begin(&message, ty) {
            Begin::Unknown(metrics) => {
                Some(reply(message, ty, Err(no_context(ty)), metrics, started))
            }
            Begin::Busy => None,
            Begin::Started(ctx, busy, metrics) => {
                let result = self.dispatch(&ctx, ty, &message.payload).await;
                drop(busy);
                Some(reply(message, ty, result, metrics, started))
            }
        }
    }

    /// Counts a request and finds its transaction. The metrics carry the transaction's
    /// channel, which the peer chose; requests naming no transaction in progress are
    /// counted under [`NO_CONTEXT_CHANNEL`], so a chaincode cannot add series at will.
    fn begin(&self, message: &ChaincodeMessage, ty: Type) -> Begin {
        self.support.count_request(ty);
        let key = TxKey::new(&message.channel_id, &message.txid);
        let Some(ctx) = self.context(&key) else {
            let metrics = self.request_metrics(ty, NO_CONTEXT_CHANNEL);
            if let Some(metrics) = &metrics {
                metrics.received();
            }
            return Begin::Unknown(metrics);
        };
        // The shims send one request at a time per transaction; Fabric drops a second
        // concurrent one without an answer (and without counting it).
        let Some(busy) = ctx.begin_request() else {
            debug!(tx = %key, request = ty.as_str_name(), "concurrent request dropped");
            return Begin::Busy;
        };
        let metrics = self.request_metrics(ty, &ctx.key.channel);
        if let Some(metrics) = &metrics {
            metrics.received();
        }
        Begin::Started(ctx, busy, metrics)
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
        if cache.len() < REQUEST_METRICS_CACHED {
            cache.push((ty, channel.to_owned(), Arc::clone(&metrics)));
        }
        Some(metrics)
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
            Type::GetStateMultiple => state::get_state_multiple(config, ctx, payload),
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
        let (ctx, done) = TxContext::new(params, &self.support.live);
        contexts.insert(params.key.clone(), Arc::clone(&ctx));
        Some((ctx, done))
    }

    /// Forgets a transaction: later requests for it get "no ledger context".
    pub(crate) fn remove_context(&self, key: &TxKey) {
        self.contexts().remove(key);
    }
}

/// The channel label of requests that name no transaction in progress (not a valid
/// channel name, so never confused with one).
pub(crate) const NO_CONTEXT_CHANNEL: &str = "(none)";

/// What a request found.
enum Begin {
    /// No transaction in progress has its channel and txid.
    Unknown(Option<Arc<RequestMetrics>>),
    /// Its transaction has a request in progress already.
    Busy,
    /// Its transaction, marked busy until the guard drops.
    Started(Arc<TxContext>, RequestGuard, Option<Arc<RequestMetrics>>),
}

/// Fabric's text for a request with no transaction context.
fn no_context(ty: Type) -> RequestError {
    RequestError::new(if ty == Type::InvokeChaincode {
        "could not get valid transaction"
    } else {
        "no ledger context"
    })
}

/// The RESPONSE or ERROR to `message`, recorded in its metrics.
fn reply(
    message: ChaincodeMessage,
    ty: Type,
    result: RequestResult,
    metrics: Option<Arc<RequestMetrics>>,
    started: Instant,
) -> ChaincodeMessage {
    if let Some(metrics) = metrics {
        metrics.completed(result.is_ok(), started.elapsed());
    }
    match result {
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
    }
}
