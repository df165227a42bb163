//! Deliver: committed blocks streamed to clients, with Fabric's `SeekInfo` semantics
//! (`common/deliver/deliver.go`, `core/peer/deliverevents.go`).
//!
//! Each request on a stream is an `Envelope` whose payload is a `SeekInfo` (header type
//! DELIVER_SEEK_INFO), signed by a member of the channel: a payload that does not decode
//! → BAD_REQUEST, an unknown channel → NOT_FOUND, a creator outside the channel's MSPs or
//! a bad signature → FORBIDDEN. Start and stop: oldest (0), newest (the last block at the
//! time of the request), specified (a number) or next commit (the next block);
//! BLOCK_UNTIL_READY waits for blocks not yet committed, FAIL_IF_NOT_READY answers
//! NOT_FOUND for them. After the stop block comes status SUCCESS; a stream may carry
//! several requests, answered in turn. `Deliver` sends blocks, `DeliverFiltered` filtered
//! blocks (transaction ids, types, validation codes, chaincode events without payload).
//!
//! Commits never wait for subscribers: each subscriber reads committed blocks from the
//! block store at its own pace and is only woken by commits, so one that never reads
//! holds nothing but its own stream's buffer.

use std::collections::BTreeMap;
use std::sync::Arc;

use cchost_proto::common::{
    Block, BlockData, BlockHeader, BlockMetadata, ChannelHeader, Envelope, HeaderType, Payload,
    SignatureHeader, Status,
};
use cchost_proto::orderer::{SeekInfo, seek_info, seek_position};
use cchost_proto::protos::{
    DeliverResponse, FilteredBlock, FilteredChaincodeAction, FilteredTransaction,
    FilteredTransactionActions, TxValidationCode, deliver_response, deliver_server::Deliver,
    filtered_transaction,
};
use prost::Message;
use tokio::sync::mpsc;

use crate::ledger::blockfile::{StoredBlock, TRANSACTIONS_FILTER};
use crate::ledger::commit::ChannelLedger;

/// What a stream sends: blocks or filtered blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Whole blocks.
    Blocks,
    /// Filtered blocks.
    Filtered,
}

/// One answer of a deliver stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A block.
    Block(Block),
    /// A filtered block.
    Filtered(FilteredBlock),
    /// The end of a request.
    Status(Status),
}

/// A committed block as `common.Block`.
pub fn block_proto(block: &StoredBlock) -> Block {
    Block {
        header: Some(BlockHeader {
            number: block.number,
            previous_hash: block.previous_hash.clone(),
            data_hash: block.data_hash.clone(),
        }),
        data: Some(BlockData {
            data: block.data.clone(),
        }),
        metadata: Some(BlockMetadata {
            metadata: block.metadata.clone(),
        }),
    }
}

/// A committed block filtered as Fabric's peer filters it.
pub fn filtered_block(channel: &str, block: &StoredBlock) -> FilteredBlock {
    let filter = block
        .metadata
        .get(TRANSACTIONS_FILTER)
        .cloned()
        .unwrap_or_default();
    let filtered_transactions = block
        .data
        .iter()
        .enumerate()
        .map(|(i, envelope)| {
            let code = filter
                .get(i)
                .copied()
                .map_or(TxValidationCode::InvalidOtherReason as i32, i32::from);
            filtered_tx(envelope, code)
        })
        .collect();
    FilteredBlock {
        channel_id: channel.to_owned(),
        number: block.number,
        filtered_transactions,
    }
}

fn filtered_tx(envelope: &[u8], code: i32) -> FilteredTransaction {
    let payload = Envelope::decode(envelope)
        .ok()
        .and_then(|e| Payload::decode(e.payload.as_slice()).ok());
    let header = payload
        .as_ref()
        .and_then(|p| p.header.as_ref())
        .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
        .unwrap_or_default();
    let mut out = FilteredTransaction {
        txid: header.tx_id.clone(),
        r#type: header.r#type,
        tx_validation_code: code,
        data: None,
    };
    if header.r#type == HeaderType::EndorserTransaction as i32 {
        // Fabric's filtered action: the chaincode event without its payload.
        let chaincode_actions = crate::transaction::envelope_event(envelope)
            .filter(|event| !event.chaincode_id.is_empty())
            .map(|mut event| {
                event.payload.clear();
                FilteredChaincodeAction {
                    chaincode_event: Some(event),
                }
            })
            .into_iter()
            .collect();
        out.data = Some(filtered_transaction::Data::TransactionActions(
            FilteredTransactionActions { chaincode_actions },
        ));
    }
    out
}

/// Where a request starts and stops, or the status refusing it.
fn positions(info: &SeekInfo, height: u64) -> Result<(u64, u64), Status> {
    let newest = height.saturating_sub(1);
    let resolve = |position: Option<&cchost_proto::orderer::SeekPosition>| match position
        .and_then(|p| p.r#type.as_ref())
    {
        Some(seek_position::Type::Oldest(_)) => Some(0),
        Some(seek_position::Type::Newest(_)) => Some(newest),
        Some(seek_position::Type::Specified(s)) => Some(s.number),
        Some(seek_position::Type::NextCommit(_)) => Some(height),
        None => None,
    };
    let start = resolve(info.start.as_ref()).ok_or(Status::BadRequest)?;
    let stop = resolve(info.stop.as_ref()).ok_or(Status::BadRequest)?;
    if stop < start {
        return Err(Status::BadRequest);
    }
    let fail_if_not_ready = info.behavior == seek_info::SeekBehavior::FailIfNotReady as i32;
    if fail_if_not_ready && start > newest {
        return Err(Status::NotFound);
    }
    Ok((start, stop))
}

/// The service over the node's channels.
#[derive(Clone, Debug)]
pub struct DeliverService {
    channels: Arc<BTreeMap<String, Arc<ChannelLedger>>>,
    /// Set when the node stops: waiting streams end with SERVICE_UNAVAILABLE.
    closing: tokio::sync::watch::Sender<bool>,
}

impl DeliverService {
    /// Serves `channels`.
    pub fn new(channels: BTreeMap<String, Arc<ChannelLedger>>) -> Self {
        Self {
            channels: Arc::new(channels),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Ends every stream waiting for blocks (status SERVICE_UNAVAILABLE) and refuses new
    /// ones: the node is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Answers one request: the blocks it asks for, then its status, into `out`. Returns
    /// false when the client has gone.
    pub async fn serve_request(
        &self,
        envelope: &Envelope,
        content: Content,
        out: &mpsc::Sender<Item>,
    ) -> bool {
        let status = match self.stream_blocks(envelope, content, out).await {
            Ok(()) => Status::Success,
            Err(Some(status)) => status,
            Err(None) => return false,
        };
        out.send(Item::Status(status)).await.is_ok()
    }

    /// Streams the blocks; `Err(None)` when the client went away.
    async fn stream_blocks(
        &self,
        envelope: &Envelope,
        content: Content,
        out: &mpsc::Sender<Item>,
    ) -> Result<(), Option<Status>> {
        let payload =
            Payload::decode(envelope.payload.as_slice()).map_err(|_| Status::BadRequest)?;
        let header = payload.header.as_ref().ok_or(Status::BadRequest)?;
        let channel_header = ChannelHeader::decode(header.channel_header.as_slice())
            .map_err(|_| Status::BadRequest)?;
        let signature_header = SignatureHeader::decode(header.signature_header.as_slice())
            .map_err(|_| Status::BadRequest)?;
        let ledger = self
            .channels
            .get(&channel_header.channel_id)
            .ok_or(Status::NotFound)?;
        let creator = ledger
            .genesis()
            .msps
            .deserialize(&signature_header.creator)
            .map_err(|_| Status::Forbidden)?;
        creator
            .verify(&envelope.payload, &envelope.signature)
            .map_err(|_| Status::Forbidden)?;
        let info = SeekInfo::decode(payload.data.as_slice()).map_err(|_| Status::BadRequest)?;
        let mut commits = ledger.subscribe();
        let mut closing = self.closing.subscribe();
        if *closing.borrow_and_update() {
            return Err(Some(Status::ServiceUnavailable));
        }
        let (start, stop) = positions(&info, ledger.height())?;
        let fail_if_not_ready = info.behavior == seek_info::SeekBehavior::FailIfNotReady as i32;
        let mut next = start;
        loop {
            if next < ledger.height() {
                let block = ledger
                    .block(next)
                    .map_err(|_| Status::InternalServerError)?
                    .ok_or(Status::InternalServerError)?;
                let item = match content {
                    Content::Blocks => Item::Block(block_proto(&block)),
                    Content::Filtered => Item::Filtered(filtered_block(ledger.channel(), &block)),
                };
                if out.send(item).await.is_err() {
                    return Err(None);
                }
                if next == stop {
                    return Ok(());
                }
                next += 1;
                continue;
            }
            if fail_if_not_ready {
                return Err(Some(Status::NotFound));
            }
            // Woken by the next commit (a lag only means more blocks are there to read).
            tokio::select! {
                received = commits.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = received {
                        return Err(Some(Status::ServiceUnavailable));
                    }
                }
                () = out.closed() => return Err(None),
                _ = closing.changed() => return Err(Some(Status::ServiceUnavailable)),
            }
        }
    }

    fn spawn(
        &self,
        mut inbound: tonic::Streaming<Envelope>,
        content: Content,
    ) -> mpsc::Receiver<Item> {
        let (sender, receiver) = mpsc::channel(16);
        let service = self.clone();
        tokio::spawn(async move {
            while let Ok(Some(envelope)) = inbound.message().await {
                if !service.serve_request(&envelope, content, &sender).await {
                    break;
                }
            }
        });
        receiver
    }
}

type ResponseStream<T> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, tonic::Status>> + Send>>;

fn peer_response(item: Item) -> DeliverResponse {
    DeliverResponse {
        r#type: Some(match item {
            Item::Block(block) => deliver_response::Type::Block(block),
            Item::Filtered(block) => deliver_response::Type::FilteredBlock(block),
            Item::Status(status) => deliver_response::Type::Status(status as i32),
        }),
    }
}

#[tonic::async_trait]
impl Deliver for DeliverService {
    type DeliverStream = ResponseStream<DeliverResponse>;
    type DeliverFilteredStream = ResponseStream<DeliverResponse>;
    type DeliverWithPrivateDataStream = ResponseStream<DeliverResponse>;

    async fn deliver(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverStream>, tonic::Status> {
        let items = self.spawn(request.into_inner(), Content::Blocks);
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(items).map(|item| Ok(peer_response(item))),
        )))
    }

    async fn deliver_filtered(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverFilteredStream>, tonic::Status> {
        let items = self.spawn(request.into_inner(), Content::Filtered);
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(items).map(|item| Ok(peer_response(item))),
        )))
    }

    async fn deliver_with_private_data(
        &self,
        _request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverWithPrivateDataStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "private data is not supported yet: use Deliver",
        ))
    }
}

/// The orderer-side `AtomicBroadcast/Deliver` answer for `item` (blocks only).
pub fn orderer_response(item: Item) -> cchost_proto::orderer::DeliverResponse {
    use cchost_proto::orderer::deliver_response::Type;
    cchost_proto::orderer::DeliverResponse {
        r#type: Some(match item {
            Item::Block(block) => Type::Block(block),
            Item::Filtered(_) => Type::Status(Status::InternalServerError as i32),
            Item::Status(status) => Type::Status(status as i32),
        }),
    }
}

use tokio_stream::StreamExt as _;

#[cfg(test)]
mod tests {
    use super::*;
    use cchost_proto::orderer::{
        SeekNewest, SeekNextCommit, SeekOldest, SeekPosition, SeekSpecified,
    };

    fn at(t: seek_position::Type) -> Option<SeekPosition> {
        Some(SeekPosition { r#type: Some(t) })
    }

    fn info(start: seek_position::Type, stop: seek_position::Type, fail: bool) -> SeekInfo {
        SeekInfo {
            start: at(start),
            stop: at(stop),
            behavior: if fail {
                seek_info::SeekBehavior::FailIfNotReady as i32
            } else {
                seek_info::SeekBehavior::BlockUntilReady as i32
            },
            ..SeekInfo::default()
        }
    }

    #[test]
    fn seek_positions_resolve_as_fabrics_deliver_resolves_them() {
        use seek_position::Type::{Newest, NextCommit, Oldest, Specified};
        let n = |number| Specified(SeekSpecified { number });
        // A ledger of 5 blocks (0..=4).
        let cases = [
            (
                info(Oldest(SeekOldest {}), Newest(SeekNewest {}), false),
                Ok((0, 4)),
            ),
            (
                info(Newest(SeekNewest {}), Newest(SeekNewest {}), false),
                Ok((4, 4)),
            ),
            (info(n(2), n(3), true), Ok((2, 3))),
            (info(n(7), n(9), false), Ok((7, 9))),
            (info(n(7), n(9), true), Err(Status::NotFound)),
            (info(n(3), n(2), false), Err(Status::BadRequest)),
            (
                info(NextCommit(SeekNextCommit {}), n(u64::MAX), false),
                Ok((5, u64::MAX)),
            ),
            (
                SeekInfo {
                    start: None,
                    ..SeekInfo::default()
                },
                Err(Status::BadRequest),
            ),
        ];
        for (seek, expected) in cases {
            assert_eq!(positions(&seek, 5), expected, "{seek:?}");
        }
    }
}
