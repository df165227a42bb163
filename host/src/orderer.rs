//! Built-in ordering for a single node: transactions in, blocks out.
//!
//! [`Orderer::broadcast`] accepts a signed transaction envelope for the channel (what the
//! Gateway, the CLI and `orderer.AtomicBroadcast/Broadcast` submit) into a bounded queue
//! and answers at once, as Fabric's orderer does: SUCCESS means "ordered", not
//! "committed" (wait for that with [`ChannelLedger::wait_for`]). When the queue is full
//! the answer is SERVICE_UNAVAILABLE and nothing is kept: memory stays bounded.
//!
//! [`BatchCutter::run`] cuts blocks as Fabric's `blockcutter` does, with its settings
//! ([`BatchConfig`], read from the channel's genesis block): a block is cut when it holds
//! `MaxMessageCount` transactions, when the next transaction would take it past
//! `PreferredMaxBytes` (a transaction larger than that is a block of its own), or when
//! `BatchTimeout` has passed since its first transaction. Each block is signed by the
//! node's ordering identity and committed to the ledger, one at a time, in order.

use std::sync::Arc;

use cchost_proto::common::{ChannelHeader, Envelope, HeaderType, Payload, Status};
use cchost_proto::orderer::BroadcastResponse;
use cchost_proto::orderer::atomic_broadcast_server::AtomicBroadcast;
use prost::Message;
use tokio::sync::mpsc;

use crate::ledger::blocks::{self, BatchConfig};
use crate::ledger::commit::ChannelLedger;
use crate::proposal::DevIdentity;

/// How many transactions may wait to be ordered, by default.
pub const DEFAULT_QUEUE: usize = 10_000;

/// Why a transaction was not accepted: a Fabric status and its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{info}")]
pub struct BroadcastError {
    /// The status a Broadcast client gets.
    pub status: Status,
    /// Why.
    pub info: String,
}

impl BroadcastError {
    fn new(status: Status, info: impl Into<String>) -> Self {
        Self {
            status,
            info: info.into(),
        }
    }
}

/// The submitting side of the orderer.
#[derive(Debug, Clone)]
pub struct Orderer {
    channel: String,
    batch: BatchConfig,
    queue: mpsc::Sender<Vec<u8>>,
}

/// The block-cutting side: run it once, in its own task.
pub struct BatchCutter {
    ledger: Arc<ChannelLedger>,
    signer: Arc<DevIdentity>,
    batch: BatchConfig,
    queue: mpsc::Receiver<Vec<u8>>,
}

impl std::fmt::Debug for BatchCutter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchCutter")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl Orderer {
    /// An orderer for `ledger`'s channel with its genesis block's batch settings (or
    /// `batch`, when given), signing blocks as `signer`, holding at most `queue`
    /// transactions not yet in a block.
    pub fn new(
        ledger: Arc<ChannelLedger>,
        signer: Arc<DevIdentity>,
        batch: Option<BatchConfig>,
        queue: usize,
    ) -> (Self, BatchCutter) {
        let batch = batch.unwrap_or(ledger.genesis().batch);
        let (sender, receiver) = mpsc::channel(queue.max(1));
        (
            Self {
                channel: ledger.channel().to_owned(),
                batch,
                queue: sender,
            },
            BatchCutter {
                ledger,
                signer,
                batch,
                queue: receiver,
            },
        )
    }

    /// Accepts `envelope` for ordering, or says why not (Fabric's statuses).
    pub fn broadcast(&self, envelope: &Envelope) -> Result<(), BroadcastError> {
        let bytes = envelope.encode_to_vec();
        let max = usize::try_from(self.batch.absolute_max_bytes).unwrap_or(usize::MAX);
        if bytes.len() > max {
            return Err(BroadcastError::new(
                Status::BadRequest,
                format!(
                    "message payload is {} bytes and exceeds maximum allowed {max} bytes",
                    bytes.len()
                ),
            ));
        }
        let header = Payload::decode(envelope.payload.as_slice())
            .ok()
            .and_then(|p| p.header)
            .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
            .ok_or_else(|| {
                BroadcastError::new(
                    Status::BadRequest,
                    "bad header: the envelope has no channel header",
                )
            })?;
        if header.channel_id != self.channel {
            return Err(BroadcastError::new(
                Status::NotFound,
                format!("channel {} not found", header.channel_id),
            ));
        }
        if header.r#type != HeaderType::EndorserTransaction as i32 {
            return Err(BroadcastError::new(
                Status::BadRequest,
                format!(
                    "transactions of header type {} are not supported yet: only endorser transactions are ordered",
                    header.r#type
                ),
            ));
        }
        self.queue.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => BroadcastError::new(
                Status::ServiceUnavailable,
                format!(
                    "the ordering queue is full ({} transactions wait): retry later",
                    self.queue.max_capacity()
                ),
            ),
            mpsc::error::TrySendError::Closed(_) => {
                BroadcastError::new(Status::ServiceUnavailable, "the orderer has stopped")
            }
        })
    }
}

impl BatchCutter {
    /// Cuts and commits blocks until every [`Orderer`] is dropped and the queue is
    /// drained. A block that cannot be committed (storage failure) stops the cutter with
    /// the error: the ledger is unchanged, and the transactions of that block were
    /// never acknowledged.
    ///
    /// Cutting and committing overlap, as a Fabric orderer and its peers do: the next
    /// batch fills (and its timeout runs) while a block is validated and written. One
    /// cut batch at most waits for the committer, so a slow disk holds the queue (and
    /// Broadcast answers SERVICE_UNAVAILABLE when it is full) instead of memory growing.
    pub async fn run(self) -> Result<(), crate::ledger::commit::CommitError> {
        let (batches, mut to_commit) = tokio::sync::mpsc::channel::<Vec<Vec<u8>>>(1);
        let (ledger, signer) = (Arc::clone(&self.ledger), Arc::clone(&self.signer));
        let committer = async move {
            while let Some(envelopes) = to_commit.recv().await {
                commit_batch(&ledger, &signer, envelopes).await?;
            }
            Ok::<(), crate::ledger::commit::CommitError>(())
        };
        tokio::pin!(committer);
        tokio::select! {
            // The committer stops first only when a block could not be committed.
            committed = &mut committer => committed,
            () = self.cut_batches(batches) => committer.await,
        }
    }

    /// Cuts batches off the queue into `batches` until every [`Orderer`] is dropped (the
    /// rest cut last) or the committer is gone.
    async fn cut_batches(mut self, batches: tokio::sync::mpsc::Sender<Vec<Vec<u8>>>) {
        let count = usize::try_from(self.batch.max_message_count.max(1)).unwrap_or(usize::MAX);
        let preferred = usize::try_from(self.batch.preferred_max_bytes).unwrap_or(usize::MAX);
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let next = match deadline {
                Some(at) => tokio::select! {
                    next = self.queue.recv() => Some(next),
                    () = tokio::time::sleep_until(at) => None,
                },
                None => Some(self.queue.recv().await),
            };
            match next {
                // The batch timeout passed.
                None => {
                    if !cut(&batches, &mut pending, &mut pending_bytes).await {
                        return;
                    }
                    deadline = None;
                }
                // Every sender is gone: commit what is left, and stop.
                Some(None) => {
                    cut(&batches, &mut pending, &mut pending_bytes).await;
                    return;
                }
                Some(Some(envelope)) => {
                    let size = envelope.len();
                    if size > preferred {
                        // Too big to share a block: the pending batch first, then it alone.
                        if !cut(&batches, &mut pending, &mut pending_bytes).await {
                            return;
                        }
                        pending.push(envelope);
                        if !cut(&batches, &mut pending, &mut pending_bytes).await {
                            return;
                        }
                        deadline = None;
                        continue;
                    }
                    if pending_bytes + size > preferred {
                        if !cut(&batches, &mut pending, &mut pending_bytes).await {
                            return;
                        }
                        deadline = None;
                    }
                    pending_bytes += size;
                    pending.push(envelope);
                    if pending.len() >= count {
                        if !cut(&batches, &mut pending, &mut pending_bytes).await {
                            return;
                        }
                        deadline = None;
                    } else if deadline.is_none() {
                        deadline = Some(tokio::time::Instant::now() + self.batch.timeout);
                    }
                }
            }
        }
    }
}

/// Sends the pending batch (if any) to the committer; false when the committer is gone.
async fn cut(
    batches: &tokio::sync::mpsc::Sender<Vec<Vec<u8>>>,
    pending: &mut Vec<Vec<u8>>,
    pending_bytes: &mut usize,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    *pending_bytes = 0;
    batches.send(std::mem::take(pending)).await.is_ok()
}

/// Makes the next block of `envelopes` (numbered and chained after the ledger's last,
/// signed by `signer`) and commits it.
async fn commit_batch(
    ledger: &Arc<ChannelLedger>,
    signer: &Arc<DevIdentity>,
    envelopes: Vec<Vec<u8>>,
) -> Result<(), crate::ledger::commit::CommitError> {
    let (ledger, signer) = (Arc::clone(ledger), Arc::clone(signer));
    let committed = tokio::task::spawn_blocking(move || {
        let block = blocks::make_block(ledger.height(), &ledger.last_hash(), envelopes, 0, &signer);
        ledger.commit(block)
    })
    .await
    .map_err(|e| {
        crate::ledger::commit::CommitError::State(crate::ledger::LedgerError::Storage(format!(
            "the commit task failed: {e}"
        )))
    })??;
    tracing::debug!(
        block = committed.block.number,
        transactions = committed.txids.len(),
        "committed block"
    );
    Ok(())
}

/// `orderer.AtomicBroadcast` over an [`Orderer`]: Broadcast answers each envelope with
/// its status; Deliver is not served here (not supported yet).
#[derive(Debug, Clone)]
pub struct BroadcastService {
    orderer: Orderer,
    deliver: Option<crate::deliver::DeliverService>,
}

impl BroadcastService {
    /// The service of `orderer` (its Deliver answers UNIMPLEMENTED).
    pub fn new(orderer: Orderer) -> Self {
        Self {
            orderer,
            deliver: None,
        }
    }

    /// The service of `orderer`, its Deliver served by `deliver` (blocks).
    pub fn with_deliver(orderer: Orderer, deliver: crate::deliver::DeliverService) -> Self {
        Self {
            orderer,
            deliver: Some(deliver),
        }
    }
}

type ResponseStream<T> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl AtomicBroadcast for BroadcastService {
    type BroadcastStream = ResponseStream<BroadcastResponse>;
    type DeliverStream = ResponseStream<cchost_proto::orderer::DeliverResponse>;

    async fn broadcast(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::BroadcastStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let orderer = self.orderer.clone();
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok(Some(envelope)) = inbound.message().await {
                let response = match orderer.broadcast(&envelope) {
                    Ok(()) => BroadcastResponse {
                        status: Status::Success as i32,
                        info: String::new(),
                    },
                    Err(e) => BroadcastResponse {
                        status: e.status as i32,
                        info: e.info,
                    },
                };
                if sender.send(Ok(response)).await.is_err() {
                    break;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn deliver(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverStream>, tonic::Status> {
        use tokio_stream::StreamExt as _;
        let Some(deliver) = self.deliver.clone() else {
            return Err(tonic::Status::unimplemented(
                "the orderer's Deliver is not supported yet",
            ));
        };
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok(Some(envelope)) = inbound.message().await {
                if !deliver
                    .serve_request(&envelope, crate::deliver::Content::Blocks, &sender)
                    .await
                {
                    break;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver)
                .map(|item| Ok(crate::deliver::orderer_response(item))),
        )))
    }
}
