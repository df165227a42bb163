//! `ChaincodeSupport`: the registry of chaincode handlers, the gRPC `Register` service
//! chaincode dials into, and `execute`, which runs a transaction on a chaincode and returns
//! its response, event and read/write set.

mod registry;
mod server;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::{ChaincodeEvent, ChaincodeMessage, Response, SignedProposal};
use cchost_proto::rwset::TxReadWriteSet;
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::handler::{Handler, Invocation, MessageStream, TxParams, TxProposal};
use crate::ids::{PackageId, TxKey};
use crate::ledger::{LedgerError, StateStore, TxSimulator};
use crate::metrics::Metrics;
use crate::proposal::{ParsedProposal, ProposalError};

pub(crate) use registry::Registry;
pub use server::{RegisterService, incoming};

/// Fabric's default `chaincode.executetimeout`.
pub const DEFAULT_EXECUTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Fabric's hard-coded maximum number of results in one query batch.
pub const DEFAULT_QUERY_BATCH_SIZE: usize = 100;
/// Fabric's `ledger.state.totalQueryLimit` (sampleconfig).
pub const DEFAULT_TOTAL_QUERY_LIMIT: usize = 100_000;
/// Fabric's default gRPC message size limit (`peer.maxRecvMsgSize`, `maxSendMsgSize`):
/// a chaincode may legitimately write values this large.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;
/// How long a chaincode stream may stay open without registering.
pub const DEFAULT_REGISTER_TIMEOUT: Duration = Duration::from_secs(60);
/// Message type numbers counted by [`ChaincodeSupport::requests_received`] (the
/// protocol's types end at `GET_STATE_MULTIPLE` = 25).
const REQUEST_TYPES: usize = 32;
/// Messages queued to one chaincode before senders wait.
const OUTBOUND_QUEUE: usize = 64;

/// How chaincode is run and bounded. Defaults equal Fabric's where Fabric has one.
#[derive(Debug, Clone)]
pub struct SupportConfig {
    /// How long a transaction may run (`chaincode.executetimeout`, 30 s).
    pub execute_timeout: Duration,
    /// Accept chaincode the peer did not launch (`chaincode.mode: dev`).
    pub dev_mode: bool,
    /// Results per query batch (100).
    pub query_batch_size: usize,
    /// Results one query may return in total (100 000).
    pub total_query_limit: usize,
    /// Open iterators one transaction may hold (not bounded in Fabric).
    pub max_iterators_per_tx: usize,
    /// Requests of one chaincode stream that touch the ledger at once; past it, requests
    /// wait for a turn in their own tasks while the stream goes on being read (Fabric
    /// spawns a goroutine per message, unbounded). INVOKE_CHAINCODE takes no turn.
    pub max_concurrent_requests: usize,
    /// Serve GET_HISTORY_FOR_KEY (`ledger.history.enableHistoryDatabase`, true).
    pub history_enabled: bool,
    /// Send KEEPALIVE this often (`chaincode.keepalive`, off). Never for Node chaincode.
    pub keepalive: Option<Duration>,
    /// Largest gRPC message either way (100 MiB).
    pub max_message_size: usize,
    /// Mutual TLS on the chaincode listener (`peer.tls.enabled`): the CA that issues the
    /// listener's and every launched chaincode's certificate. Off by default.
    pub tls: Option<Arc<crate::tls::ChaincodeCa>>,
    /// Bytes a transaction's read/write set may reach (100 MiB, the largest message a
    /// client could be sent): past it the request that would grow it fails with a fixed
    /// error. Not in Fabric.
    pub max_rwset_bytes: usize,
    /// How long a chaincode stream may stay open without registering (60 s). Not in
    /// Fabric, where an idle connection is kept forever.
    pub register_timeout: Duration,
    /// Offered to chaincode in READY, as a Fabric 3.x peer does
    /// (`chaincode.runtimeParams`): shims may send their writes in WRITE_BATCH_STATE
    /// messages of at most `max_size_write_batch` records (true, 1000), and read keys with
    /// GET_STATE_MULTIPLE, at most `max_size_get_multiple_keys` at a time (true, 1000).
    pub use_write_batch: bool,
    /// See `use_write_batch`.
    pub max_size_write_batch: u32,
    /// See `use_write_batch`.
    pub use_get_multiple_keys: bool,
    /// See `use_write_batch`.
    pub max_size_get_multiple_keys: u32,
    /// Chaincode is defined through `_lifecycle` (the node): a callee of
    /// INVOKE_CHAINCODE has its `_lifecycle` Sequence key read into the transaction, as
    /// Fabric's `CheckInvocation` does. Off for hosts without a lifecycle.
    pub lifecycle_reads: bool,
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            execute_timeout: DEFAULT_EXECUTE_TIMEOUT,
            dev_mode: false,
            query_batch_size: DEFAULT_QUERY_BATCH_SIZE,
            total_query_limit: DEFAULT_TOTAL_QUERY_LIMIT,
            max_iterators_per_tx: 256,
            max_concurrent_requests: 64,
            history_enabled: true,
            keepalive: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            tls: None,
            max_rwset_bytes: crate::ledger::DEFAULT_MAX_RWSET_BYTES,
            register_timeout: DEFAULT_REGISTER_TIMEOUT,
            use_write_batch: true,
            max_size_write_batch: 1000,
            use_get_multiple_keys: true,
            max_size_get_multiple_keys: 1000,
            lifecycle_reads: false,
        }
    }
}

/// A configuration value that would make the host hang or fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl SupportConfig {
    /// Refuses values that would hang or break the host: zero durations, limits and
    /// concurrency bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            (
                "execute_timeout (chaincode.executetimeout)",
                !self.execute_timeout.is_zero(),
            ),
            ("register_timeout", !self.register_timeout.is_zero()),
            (
                "keepalive (chaincode.keepalive; leave it unset to turn it off)",
                self.keepalive.is_none_or(|period| !period.is_zero()),
            ),
            ("query_batch_size", self.query_batch_size > 0),
            (
                "total_query_limit (ledger.state.totalQueryLimit)",
                self.total_query_limit > 0,
            ),
            ("max_iterators_per_tx", self.max_iterators_per_tx > 0),
            ("max_concurrent_requests", self.max_concurrent_requests > 0),
            ("max_message_size", self.max_message_size > 0),
            ("max_rwset_bytes", self.max_rwset_bytes > 0),
        ];
        match positive.iter().find(|(_, ok)| !ok) {
            Some((name, _)) => Err(ConfigError(format!("{name} must be greater than zero"))),
            None => Ok(()),
        }
    }
}

/// Why a transaction did not produce a chaincode response. The texts are Fabric's
/// peer's (`chaincode_support.go`).
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The proposal's channel has no ledger on this node.
    #[error("channel '{0}' not found")]
    ChannelNotFound(String),
    /// The chaincode could not be invoked, started or reached.
    #[error("failed to execute transaction {txid}: {cause}")]
    Failed {
        /// The transaction.
        txid: String,
        /// What failed.
        cause: InvokeError,
    },
    /// The chaincode answered ERROR.
    #[error("transaction returned with failure: {0}")]
    ChaincodeFailed(String),
    /// The invocation is not allowed as asked (Fabric's `CheckInvocation`: init when
    /// not required, not init when required).
    #[error("failed to execute transaction {txid}: invalid invocation: {reason}")]
    InvalidInvocation {
        /// The transaction.
        txid: String,
        /// Why.
        reason: String,
    },
    /// The chaincode's COMPLETED does not hold a Response.
    #[error("failed to unmarshal response for transaction {txid}: {reason}")]
    BadResponse {
        /// The transaction.
        txid: String,
        /// The decode error.
        reason: String,
    },
    /// The proposal does not decode or lacks a part.
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl ExecuteError {
    /// What failed when the chaincode could not be invoked, started or reached.
    pub fn cause(&self) -> Option<&InvokeError> {
        match self {
            Self::Failed { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

/// Why invoking a chaincode failed, as Fabric's `ChaincodeSupport.Invoke` words it: the
/// cause of [`ExecuteError::Failed`], and what a chaincode calling another sees after
/// `execute failed: `.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No chaincode of that name is defined on the channel.
    #[error(
        "invalid invocation: [channel {channel}] failed to get chaincode container info for {name}: chaincode {name} not found"
    )]
    NotDefined {
        /// The channel.
        channel: String,
        /// The chaincode name.
        name: String,
    },
    /// The chaincode is defined, not running, and could not be started.
    #[error("could not launch chaincode {package_id}: {reason}")]
    Launch {
        /// Its package id.
        package_id: PackageId,
        /// Why.
        reason: String,
    },
    /// The same transaction is already running on this chaincode.
    #[error("error sending: txid: {0} exists")]
    DuplicateTransaction(TxKey),
    /// The chaincode did not answer within the execute timeout.
    #[error("error sending: timeout expired while executing transaction")]
    Timeout,
    /// The chaincode's stream ended before it answered.
    #[error("error sending: chaincode stream terminated")]
    StreamTerminated,
}

/// What a chaincode returned for a transaction.
#[derive(Debug, Clone)]
pub struct ExecuteResult {
    /// The transaction id (from the proposal).
    pub txid: String,
    /// Status, message and payload. Status 400 and above is a chaincode error.
    pub response: Response,
    /// The event the chaincode set, with `chaincode_id` and `tx_id` filled in by the peer.
    pub event: Option<ChaincodeEvent>,
    /// The reads and writes of the transaction (and of chaincode it invoked on the same
    /// channel).
    pub rwset: TxReadWriteSet,
}

pub(crate) struct Inner {
    pub(crate) config: SupportConfig,
    pub(crate) ledger: Arc<dyn StateStore>,
    pub(crate) registry: Registry,
    definitions: RwLock<HashMap<String, PackageId>>,
    /// Requests received, by message type number.
    requests_received: [AtomicU64; REQUEST_TYPES],
    /// Fabric's chaincode metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Set once at shutdown: every handler ends its stream.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
    /// Starts chaincode that is defined but not running.
    launcher: RwLock<Option<Weak<dyn LaunchOnDemand>>>,
    /// Transaction contexts and query iterators alive in this support's handlers.
    pub(crate) live: Arc<crate::handler::LiveCounts>,
}

impl Inner {
    /// Counts a request from a chaincode by message type.
    pub(crate) fn count_request(&self, ty: Type) {
        if let Some(count) = usize::try_from(i32::from(ty))
            .ok()
            .and_then(|i| self.requests_received.get(i))
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The READY handler serving chaincode `name` on `channel`, started first (by the
    /// launcher, when there is one) if it is not running.
    pub(crate) async fn handler_for(
        &self,
        channel: &str,
        name: &str,
    ) -> Result<Arc<Handler>, InvokeError> {
        let package_id = self
            .definitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| InvokeError::NotDefined {
                channel: channel.to_owned(),
                name: name.to_owned(),
            })?;
        if let Some(handler) = self.registry.get(&package_id) {
            return Ok(handler);
        }
        let launcher = self
            .launcher
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        let Some(launcher) = launcher else {
            return Err(InvokeError::Launch {
                reason: format!(
                    "it is not running, and nothing launches it here (start it and let it \
                     register as {package_id})"
                ),
                package_id,
            });
        };
        // The launch runs in a task of its own: a transaction given up on (its client
        // gone, its timeout passed) must not stop a launch other callers may be waiting
        // for, nor leave the chaincode half started.
        let launch = tokio::spawn({
            let package_id = package_id.clone();
            async move {
                launcher
                    .launch(&package_id)
                    .await
                    .map_err(|e| e.to_string())
            }
        });
        let launched = launch
            .await
            .unwrap_or_else(|e| Err(format!("the launch task failed: {e}")));
        launched.map_err(|reason| InvokeError::Launch {
            package_id: package_id.clone(),
            reason,
        })?;
        self.registry
            .get(&package_id)
            .ok_or_else(|| InvokeError::Launch {
                reason: "it was launched but is no longer registered".to_owned(),
                package_id,
            })
    }
}

/// What starts chaincode on demand: the [`Launcher`](crate::launcher::Launcher), as
/// [`ChaincodeSupport`] sees it.
pub trait LaunchOnDemand: Send + Sync {
    /// Makes sure `package_id` runs and is READY.
    fn launch<'a>(
        &'a self,
        package_id: &'a PackageId,
    ) -> futures_util::future::BoxFuture<'a, Result<(), crate::launcher::LaunchError>>;
}

/// Removes a transaction's context however `execute_on` ends (also when cancelled).
struct ContextGuard<'a> {
    handler: &'a Handler,
    key: TxKey,
}

impl Drop for ContextGuard<'_> {
    fn drop(&mut self) {
        self.handler.remove_context(&self.key);
    }
}

/// Sends INIT or TRANSACTION to `handler` and waits for its COMPLETED or ERROR, at most
/// the execute timeout. The chaincode is not told about a timeout; its later requests for
/// the transaction get "no ledger context".
pub(crate) async fn execute_on(
    support: &Inner,
    handler: &Handler,
    params: TxParams,
) -> Result<ChaincodeMessage, InvokeError> {
    let (_ctx, done) = handler
        .create_context(&params)
        .ok_or_else(|| InvokeError::DuplicateTransaction(params.key.clone()))?;
    let _guard = ContextGuard {
        handler,
        key: params.key.clone(),
    };
    let message = ChaincodeMessage {
        r#type: if params.is_init {
            Type::Init
        } else {
            Type::Transaction
        }
        .into(),
        payload: params.input.encode_to_vec(),
        txid: params.key.txid.clone(),
        channel_id: params.key.channel.clone(),
        ..Default::default()
    };
    let invocation = Invocation {
        message,
        proposal: params.proposal,
        nested: params.nested,
    };
    // The execute timeout bounds the whole execution: chaincode in this process runs the
    // invocation right here, in the caller's task, with the proposal as decoded (a guest
    // yields at every epoch tick, so the timeout can fire); a stream carries it as signed,
    // and the timeout covers sending it too (a chaincode that stops reading cannot hold
    // `execute` past it).
    let run = async {
        match handler.direct_invocation(invocation) {
            Ok(None) => Err(InvokeError::StreamTerminated),
            Ok(Some(running)) => Ok(running.await),
            Err(Invocation {
                mut message,
                proposal,
                ..
            }) => {
                message.proposal = proposal.map(|p| p.signed.clone());
                if !handler.send(message).await {
                    return Err(InvokeError::StreamTerminated);
                }
                done.await.map_err(|_| InvokeError::StreamTerminated)
            }
        }
    };
    match tokio::time::timeout(support.config.execute_timeout, run).await {
        Ok(result) => result,
        Err(_) => {
            if let Some(package_id) = handler.package_id() {
                support.metrics.execute_timeout(package_id);
            }
            Err(InvokeError::Timeout)
        }
    }
}

/// Runs chaincode transactions; cheap to clone.
#[derive(Clone)]
pub struct ChaincodeSupport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChaincodeSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeSupport")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ChaincodeSupport {
    /// Chaincode support over `ledger`; refuses a configuration that would hang or fail
    /// ([`SupportConfig::validate`]).
    pub fn new(config: SupportConfig, ledger: Arc<dyn StateStore>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                ledger,
                registry: Registry::default(),
                definitions: RwLock::new(HashMap::new()),
                requests_received: std::array::from_fn(|_| AtomicU64::new(0)),
                metrics: Arc::new(Metrics::new()),
                closing: tokio::sync::watch::Sender::new(false),
                launcher: RwLock::new(None),
                live: Arc::default(),
            }),
        })
    }

    /// Transaction contexts alive in this support's handlers, counted from creation to
    /// drop: 0 whenever no transaction runs, whatever chaincode sent. A debug counter for
    /// leak checks (`scripts/campaign shim`, tests).
    pub fn live_transaction_contexts(&self) -> usize {
        self.inner.live.contexts.load(Ordering::Relaxed)
    }

    /// Query iterators open in this support's handlers (counted like
    /// [`live_transaction_contexts`](Self::live_transaction_contexts)).
    pub fn open_query_iterators(&self) -> usize {
        self.inner.live.iterators.load(Ordering::Relaxed)
    }

    /// The configuration in force.
    pub fn config(&self) -> &SupportConfig {
        &self.inner.config
    }

    /// Fabric's chaincode metrics for everything this support serves.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Defines chaincode `name` (its namespace) as served by `package_id`. Until the
    /// lifecycle exists this is how a chaincode becomes invokable.
    pub fn define(&self, name: impl Into<String>, package_id: PackageId) {
        self.inner
            .definitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.into(), package_id);
    }

    /// Accepts one registration of `package_id` outside dev mode: the launcher calls this
    /// before it starts the chaincode.
    pub fn expect_registration(&self, package_id: &PackageId) {
        self.inner.registry.expect(package_id);
    }

    /// Withdraws [`expect_registration`](Self::expect_registration) when the launch it
    /// was for failed or was dropped.
    pub fn withdraw_registration(&self, package_id: &PackageId) {
        self.inner.registry.withdraw(package_id);
    }

    /// Whether a launch is waiting for `package_id` to register.
    pub fn awaiting_registration(&self, package_id: &PackageId) -> bool {
        self.inner.registry.is_expected(package_id)
    }

    /// Waits until no stream is registered as `package_id` (a stopped chaincode's handler
    /// has deregistered); false after `timeout`.
    pub async fn wait_deregistered(&self, package_id: &PackageId, timeout: Duration) -> bool {
        self.inner
            .registry
            .wait_deregistered(package_id, timeout)
            .await
    }

    /// Waits until `package_id` is registered and ready; false after `timeout`.
    pub async fn wait_ready(&self, package_id: &PackageId, timeout: Duration) -> bool {
        self.inner.registry.wait_ready(package_id, timeout).await
    }

    /// Whether `package_id` is registered and ready.
    pub fn is_ready(&self, package_id: &PackageId) -> bool {
        self.inner.registry.get(package_id).is_some()
    }

    /// Whether a stream is registered as `package_id`, ready or not.
    pub fn is_registered(&self, package_id: &PackageId) -> bool {
        self.inner.registry.is_registered(package_id)
    }

    /// Ends every chaincode stream (a chaincode then exits, or reconnects if it is built
    /// to). Transactions in progress fail with "chaincode stream terminated".
    pub fn close_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    /// How many requests of type `ty` chaincode has sent, over all streams (the
    /// per-chaincode counts are the `chaincode_shim_requests_*` metrics).
    pub fn requests_received(&self, ty: Type) -> u64 {
        usize::try_from(i32::from(ty))
            .ok()
            .and_then(|i| self.inner.requests_received.get(i))
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    /// Serves one chaincode stream: `inbound` is what the chaincode sends, the returned
    /// stream what the peer sends back. Used by the gRPC service and in-process runtimes.
    pub fn connect(
        &self,
        inbound: MessageStream,
    ) -> ReceiverStream<Result<ChaincodeMessage, Status>> {
        let (out, rx) = tokio::sync::mpsc::channel(OUTBOUND_QUEUE);
        let handler = Handler::new(
            Arc::clone(&self.inner),
            crate::handler::MessageSink::Stream(out),
        );
        tokio::spawn(handler.serve(inbound));
        ReceiverStream::new(rx)
    }

    /// [`ChaincodeSupport::connect`] for chaincode running in this process (wasm):
    /// REGISTER and the end of the stream come through `inbound`; the handler's messages
    /// (REGISTERED, READY, INIT, TRANSACTION) are handed to `chaincode` by a call, and the
    /// handler is returned so that requests ([`Handler::request`]) and completions
    /// ([`Handler::notify`]) reach it by a call too.
    pub(crate) fn connect_in_process(
        &self,
        inbound: MessageStream,
        chaincode: Arc<dyn crate::handler::DirectChaincode>,
    ) -> Arc<Handler> {
        let handler = Handler::new(
            Arc::clone(&self.inner),
            crate::handler::MessageSink::Direct(chaincode),
        );
        tokio::spawn(Arc::clone(&handler).serve(inbound));
        handler
    }

    /// Runs the transaction `signed_proposal` asks for: the chaincode it names (started
    /// first if it is defined but not running), on its channel, with its input (INIT when
    /// `input.is_init`), sent with the full signed proposal; waits for the chaincode with
    /// the execute timeout, and returns its response, event and read/write set. The
    /// signature and the client's rights are the endorser's to check, not this.
    pub async fn execute(
        &self,
        signed_proposal: &SignedProposal,
    ) -> Result<ExecuteResult, ExecuteError> {
        self.execute_prepared(signed_proposal, |_| Ok(())).await
    }

    /// [`Self::execute`], with `prepare` run on the transaction's simulator before the
    /// chaincode is (the endorser records its reads of the chaincode's definition there,
    /// as Fabric's does). An error from `prepare` ends the execution before it starts.
    pub async fn execute_prepared(
        &self,
        signed_proposal: &SignedProposal,
        prepare: impl FnOnce(&mut TxSimulator) -> Result<(), ExecuteError>,
    ) -> Result<ExecuteResult, ExecuteError> {
        let mut parsed = ParsedProposal::parse(signed_proposal)?;
        let channel = parsed.channel_header.channel_id.clone();
        let txid = parsed.channel_header.tx_id.clone();
        let chaincode = parsed.chaincode_name.clone();
        // The input goes to the chaincode in the TRANSACTION's payload (see `TxProposal`).
        let input = std::mem::take(&mut parsed.input);
        let snapshot = match self.inner.ledger.snapshot(&channel) {
            Ok(snapshot) => snapshot,
            Err(LedgerError::NoLedger(_)) => return Err(ExecuteError::ChannelNotFound(channel)),
            Err(e) => return Err(e.into()),
        };
        let failed = |cause| ExecuteError::Failed {
            txid: txid.clone(),
            cause,
        };
        let handler = self
            .inner
            .handler_for(&channel, &chaincode)
            .await
            .map_err(failed)?;
        let mut simulator = TxSimulator::new(snapshot, txid.clone())
            .with_max_bytes(self.inner.config.max_rwset_bytes);
        prepare(&mut simulator)?;
        let simulator = Arc::new(Mutex::new(simulator));
        let params = TxParams {
            key: TxKey::new(&channel, txid.clone()),
            namespace: chaincode.clone(),
            simulator: Arc::clone(&simulator),
            proposal: Some(Arc::new(TxProposal {
                signed: signed_proposal.clone(),
                parsed,
            })),
            is_init: input.is_init,
            nested: false,
            input,
        };
        let reply = execute_on(&self.inner, &handler, params)
            .await
            .map_err(failed)?;
        let (response, event) = completion(reply, &chaincode, &txid)?;
        let rwset = simulator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read_write_set();
        Ok(ExecuteResult {
            txid,
            response,
            event,
            rwset,
        })
    }

    /// Lets `launcher` start chaincode that is defined but not running, when a client or
    /// another chaincode invokes it. The launcher is held weakly.
    pub fn set_launcher(&self, launcher: Weak<dyn LaunchOnDemand>) {
        *self
            .inner
            .launcher
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(launcher);
    }
}

/// COMPLETED → its Response and event (with the peer's `chaincode_id` and `tx_id`);
/// ERROR → the chaincode's failure text.
fn completion(
    reply: ChaincodeMessage,
    chaincode: &str,
    txid: &str,
) -> Result<(Response, Option<ChaincodeEvent>), ExecuteError> {
    match reply.r#type() {
        Type::Completed => {
            let response = Response::decode(reply.payload.as_slice()).map_err(|e| {
                ExecuteError::BadResponse {
                    txid: txid.to_owned(),
                    reason: e.to_string(),
                }
            })?;
            let event = reply.chaincode_event.map(|event| ChaincodeEvent {
                chaincode_id: chaincode.to_owned(),
                tx_id: txid.to_owned(),
                ..event
            });
            Ok((response, event))
        }
        Type::Error => Err(ExecuteError::ChaincodeFailed(
            String::from_utf8_lossy(&reply.payload).into_owned(),
        )),
        other => Err(ExecuteError::BadResponse {
            txid: txid.to_owned(),
            reason: format!("expected COMPLETED or ERROR, got {}", other.as_str_name()),
        }),
    }
}
