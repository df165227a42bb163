//! The Gateway service (`/gateway.Gateway/*`) of a single-node peer, with Fabric's
//! semantics (`internal/pkg/gateway/*.go`): the node is the only endorser and the
//! built-in orderer the only orderer. Errors are gRPC statuses with Fabric's messages and
//! `gateway.ErrorDetail`s (address, MSP id, message) attached as `google.rpc.Status`
//! details, as Fabric's gateway attaches them.

use std::collections::BTreeMap;
use std::sync::Arc;

use cchost_proto::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, CommitStatusResponse,
    EndorseRequest, EndorseResponse, ErrorDetail, EvaluateRequest, EvaluateResponse,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest, SubmitResponse,
    gateway_server::Gateway,
};
use cchost_proto::orderer::seek_position;
use cchost_proto::protos::{
    ChaincodeAction, ChaincodeEvent, ProposalResponse, ProposalResponsePayload, Response,
    TxValidationCode,
};
use prost::Message;
use tokio::sync::mpsc;
use tonic::{Code, Status};

use crate::endorser::Endorser;
use crate::ledger::blockfile::{StoredBlock, TRANSACTIONS_FILTER};
use crate::ledger::commit::ChannelLedger;
use crate::orderer::Orderer;
use crate::transaction;

/// `google.rpc.Status`, the carrier of a gRPC error's details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// `Any`-wrapped details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// The `Any` type URL of a `gateway.ErrorDetail`.
pub const ERROR_DETAIL_TYPE: &str = "type.googleapis.com/gateway.ErrorDetail";

/// A status with `details` attached as Fabric's gateway attaches them.
fn with_details(code: Code, message: impl Into<String>, details: &[ErrorDetail]) -> Status {
    let message = message.into();
    let status = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: details
            .iter()
            .map(|d| prost_types::Any {
                type_url: ERROR_DETAIL_TYPE.to_owned(),
                value: d.encode_to_vec(),
            })
            .collect(),
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

/// The `gateway.ErrorDetail`s of a status (empty when it has none).
pub fn error_details(status: &Status) -> Vec<ErrorDetail> {
    RpcStatus::decode(status.details())
        .map(|s| {
            s.details
                .iter()
                .filter(|a| a.type_url == ERROR_DETAIL_TYPE)
                .filter_map(|a| ErrorDetail::decode(a.value.as_slice()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `peer.gateway.*` (Fabric's `internal/pkg/gateway/config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayOptions {
    /// `peer.gateway.endorsementTimeout`: how long Evaluate and Endorse wait for the
    /// endorser.
    pub endorsement_timeout: std::time::Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            endorsement_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// The Gateway of one node.
#[derive(Clone)]
pub struct GatewayService {
    options: GatewayOptions,
    endorser: Arc<Endorser>,
    orderer: Orderer,
    channels: Arc<BTreeMap<String, Arc<ChannelLedger>>>,
    address: String,
    msp_id: String,
}

impl std::fmt::Debug for GatewayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayService")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// How an endorser's answer classifies (Fabric's `responseStatus`).
enum Outcome {
    Endorsed(ProposalResponse),
    /// Code, message for the detail, retryable.
    Failed(Code, String),
}

fn classify(result: Result<ProposalResponse, crate::endorser::Refused>) -> Outcome {
    match result {
        Err(refused) => Outcome::Failed(Code::FailedPrecondition, refused.0),
        Ok(response) => {
            let r = response.response.clone().unwrap_or_default();
            if (200..400).contains(&r.status) {
                Outcome::Endorsed(response)
            } else if r.status == 500 && response.payload.is_empty() {
                Outcome::Failed(Code::Aborted, r.message)
            } else {
                Outcome::Failed(
                    Code::Unknown,
                    format!("chaincode response {}, {}", r.status, r.message),
                )
            }
        }
    }
}

impl GatewayService {
    /// The Gateway of the node at `address` (for error details) of organisation `msp_id`.
    pub fn new(
        endorser: Arc<Endorser>,
        orderer: Orderer,
        channels: BTreeMap<String, Arc<ChannelLedger>>,
        address: impl Into<String>,
        msp_id: impl Into<String>,
    ) -> Self {
        Self {
            options: GatewayOptions::default(),
            endorser,
            orderer,
            channels: Arc::new(channels),
            address: address.into(),
            msp_id: msp_id.into(),
        }
    }

    /// With `options` instead of Fabric's defaults.
    #[must_use]
    pub fn options(mut self, options: GatewayOptions) -> Self {
        self.options = options;
        self
    }

    /// Fabric's answer for a channel the node does not have (its discovery has no
    /// configuration for it).
    fn channel(&self, channel: &str) -> Result<(), Status> {
        if self.channels.contains_key(channel) {
            Ok(())
        } else {
            Err(Status::unavailable(format!(
                "failed to get config for channel [{channel}]: could not get last config for channel {channel}"
            )))
        }
    }

    fn detail(&self, message: impl Into<String>) -> ErrorDetail {
        ErrorDetail {
            address: self.address.clone(),
            msp_id: self.msp_id.clone(),
            message: message.into(),
        }
    }

    /// Checks a signed request's identity and signature against the channel's MSPs.
    fn check_signed(
        &self,
        channel: &str,
        identity: &[u8],
        request: &[u8],
        signature: &[u8],
    ) -> Result<&Arc<ChannelLedger>, Status> {
        let denied = |why: String| Status::permission_denied(why);
        let ledger = self
            .channels
            .get(channel)
            .ok_or_else(|| denied(format!("channel '{channel}' not found")))?;
        let signer = ledger
            .genesis()
            .msps
            .deserialize(identity)
            .map_err(|e| denied(format!("failed deserializing signer identity: {e}")))?;
        signer
            .verify(request, signature)
            .map_err(|e| denied(format!("signature set did not satisfy policy: {e}")))?;
        Ok(ledger)
    }
}

/// A signed proposal decoded, with the channel and chaincode it names checked (Fabric's
/// `getChannelAndChaincodeFromSignedProposal`, its texts).
fn unpack(
    signed: &cchost_proto::protos::SignedProposal,
) -> Result<crate::proposal::ParsedProposal, String> {
    if signed.proposal_bytes.is_empty() {
        return Err("a signed proposal is required".to_owned());
    }
    let parsed = crate::proposal::ParsedProposal::parse(signed).map_err(|e| e.to_string())?;
    let channel = &parsed.channel_header.channel_id;
    if channel.is_empty() {
        return Err("no channel id provided".to_owned());
    }
    if parsed.chaincode_name.is_empty() {
        return Err(format!(
            "no chaincode name is provided, channel id [{channel}]"
        ));
    }
    Ok(parsed)
}

/// The payload a successful endorsement's chaincode action returned.
fn action_payload(response: &ProposalResponse) -> Vec<u8> {
    ProposalResponsePayload::decode(response.payload.as_slice())
        .ok()
        .and_then(|prp| ChaincodeAction::decode(prp.extension.as_slice()).ok())
        .and_then(|action| action.response)
        .map(|r| r.payload)
        .unwrap_or_default()
}

type EventStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<ChaincodeEventsResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn evaluate(
        &self,
        request: tonic::Request<EvaluateRequest>,
    ) -> Result<tonic::Response<EvaluateResponse>, Status> {
        let request = request.into_inner();
        let signed = request.proposed_transaction.unwrap_or_default();
        let parsed = unpack(&signed).map_err(|e| {
            Status::invalid_argument(format!("failed to unpack transaction proposal: {e}"))
        })?;
        let (channel, chaincode) = (&parsed.channel_header.channel_id, &parsed.chaincode_name);
        self.channel(channel)?;
        if !request.target_organizations.is_empty()
            && !request.target_organizations.contains(&self.msp_id)
        {
            return Err(Status::failed_precondition(format!(
                "no peers available to evaluate chaincode {chaincode} in channel {channel}"
            )));
        }
        let endorsed = tokio::time::timeout(
            self.options.endorsement_timeout,
            self.endorser.process_proposal(&signed),
        )
        .await
        .map_err(|_| Status::deadline_exceeded("evaluate timeout expired"))?;
        match classify(endorsed) {
            Outcome::Endorsed(response) => {
                let r = response.response.clone().unwrap_or_default();
                Ok(tonic::Response::new(EvaluateResponse {
                    result: Some(Response {
                        status: r.status,
                        message: r.message,
                        payload: action_payload(&response),
                    }),
                }))
            }
            Outcome::Failed(code @ (Code::Aborted | Code::Unavailable), message) => {
                Err(with_details(
                    code,
                    "failed to evaluate transaction, see attached details for more info",
                    &[self.detail(message)],
                ))
            }
            Outcome::Failed(code, message) => Err(with_details(
                code,
                format!("evaluate call to endorser returned error: {message}"),
                &[self.detail(message)],
            )),
        }
    }

    async fn endorse(
        &self,
        request: tonic::Request<EndorseRequest>,
    ) -> Result<tonic::Response<EndorseResponse>, Status> {
        let request = request.into_inner();
        let signed = request.proposed_transaction.unwrap_or_default();
        if signed.proposal_bytes.is_empty() {
            return Err(Status::invalid_argument(
                "the proposed transaction must contain a signed proposal",
            ));
        }
        let parsed = unpack(&signed).map_err(Status::invalid_argument)?;
        self.channel(&parsed.channel_header.channel_id)?;
        let missing: Vec<&str> = request
            .endorsing_organizations
            .iter()
            .filter(|org| **org != self.msp_id)
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Status::unavailable(format!(
                "failed to find any endorsing peers for org(s): {}",
                missing.join(", ")
            )));
        }
        let endorsed = tokio::time::timeout(
            self.options.endorsement_timeout,
            self.endorser.process_proposal(&signed),
        )
        .await
        .map_err(|_| {
            Status::deadline_exceeded(
                "endorsement timeout expired while collecting first endorsement",
            )
        })?;
        match classify(endorsed) {
            Outcome::Endorsed(response) => {
                let envelope = transaction::prepare(&parsed.proposal, &[response])
                    .map_err(|e| Status::aborted(format!("failed to assemble transaction: {e}")))?;
                Ok(tonic::Response::new(EndorseResponse {
                    prepared_transaction: Some(envelope),
                }))
            }
            Outcome::Failed(_, message)
                if message.starts_with("make sure the chaincode ")
                    && message.contains(" not found") =>
            {
                // Discovery knows no such chaincode: Fabric's gateway says so before it
                // asks an endorser.
                Err(Status::failed_precondition(format!(
                    "no combination of peers can be derived which satisfy the endorsement \
                     policy: No metadata was found for chaincode {} in channel {}",
                    parsed.chaincode_name, parsed.channel_header.channel_id
                )))
            }
            Outcome::Failed(_, message) => Err(with_details(
                Code::Aborted,
                "failed to endorse transaction, see attached details for more info",
                &[self.detail(message)],
            )),
        }
    }

    async fn submit(
        &self,
        request: tonic::Request<SubmitRequest>,
    ) -> Result<tonic::Response<SubmitResponse>, Status> {
        let request = request.into_inner();
        let Some(envelope) = request.prepared_transaction else {
            return Err(Status::invalid_argument(
                "a prepared transaction is required",
            ));
        };
        if envelope.signature.is_empty() {
            return Err(Status::invalid_argument(
                "prepared transaction must be signed",
            ));
        }
        match self.orderer.broadcast(&envelope) {
            Ok(()) => Ok(tonic::Response::new(SubmitResponse {})),
            Err(e) if (400..500).contains(&(e.status as i32)) => Err(Status::aborted(format!(
                "received unsuccessful response from orderer: status={}, info={}",
                e.status.as_str_name(),
                e.info
            ))),
            Err(e) => Err(with_details(
                Code::Unavailable,
                "no orderers could successfully process transaction",
                &[self.detail(format!(
                    "received unsuccessful response from orderer: status={}, info={}",
                    e.status.as_str_name(),
                    e.info
                ))],
            )),
        }
    }

    async fn commit_status(
        &self,
        request: tonic::Request<SignedCommitStatusRequest>,
    ) -> Result<tonic::Response<CommitStatusResponse>, Status> {
        let signed = request.into_inner();
        let request = CommitStatusRequest::decode(signed.request.as_slice())
            .map_err(|e| Status::invalid_argument(format!("invalid status request: {e}")))?;
        if request.identity.is_empty() {
            return Err(Status::invalid_argument("no identity provided"));
        }
        if request.channel_id.is_empty() {
            return Err(Status::invalid_argument("no channel ID provided"));
        }
        if request.transaction_id.is_empty() {
            return Err(Status::invalid_argument(
                "transaction ID should not be empty",
            ));
        }
        let ledger = self.check_signed(
            &request.channel_id,
            &request.identity,
            &signed.request,
            &signed.signature,
        )?;
        let wait = ledger
            .wait_for(&request.transaction_id)
            .map_err(|e| Status::aborted(e.to_string()))?;
        let status = wait
            .await
            .ok_or_else(|| Status::aborted("the node is stopping"))?;
        Ok(tonic::Response::new(CommitStatusResponse {
            result: status.code as i32,
            block_number: status.block,
        }))
    }

    type ChaincodeEventsStream = EventStream;

    async fn chaincode_events(
        &self,
        request: tonic::Request<SignedChaincodeEventsRequest>,
    ) -> Result<tonic::Response<Self::ChaincodeEventsStream>, Status> {
        use tokio_stream::StreamExt as _;
        let signed = request.into_inner();
        let request = ChaincodeEventsRequest::decode(signed.request.as_slice()).map_err(|e| {
            Status::invalid_argument(format!("invalid chaincode events request: {e}"))
        })?;
        let ledger = Arc::clone(self.check_signed(
            &request.channel_id,
            &request.identity,
            &signed.request,
            &signed.signature,
        )?);
        let mut start = match request.start_position.and_then(|p| p.r#type) {
            None | Some(seek_position::Type::NextCommit(_)) => ledger.height(),
            Some(seek_position::Type::Specified(s)) => s.number,
            Some(other) => {
                return Err(Status::invalid_argument(format!(
                    "invalid start position type: {}",
                    match other {
                        seek_position::Type::Oldest(_) => "*orderer.SeekPosition_Oldest",
                        _ => "*orderer.SeekPosition_Newest",
                    }
                )));
            }
        };
        let after = request.after_transaction_id.clone();
        if !after.is_empty()
            && let Ok(Some(found)) = ledger.tx_status(&after)
        {
            start = found.block;
        }
        let chaincode = request.chaincode_id.clone();
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut commits = ledger.subscribe();
            let mut next = start;
            let mut seen_after = after.is_empty();
            loop {
                if next < ledger.height() {
                    let Ok(Some(block)) = ledger.block(next) else {
                        let _ = sender
                            .send(Err(Status::aborted("reading a block failed")))
                            .await;
                        return;
                    };
                    let events = block_events(&block, &chaincode, &after, &mut seen_after);
                    if !events.is_empty()
                        && sender
                            .send(Ok(ChaincodeEventsResponse {
                                events,
                                block_number: next,
                            }))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    next += 1;
                    continue;
                }
                tokio::select! {
                    received = commits.recv() => {
                        if let Err(tokio::sync::broadcast::error::RecvError::Closed) = received {
                            return;
                        }
                    }
                    () = sender.closed() => return,
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver).map(|item| item),
        )))
    }
}

/// The events of `chaincode` in `block`'s valid endorser transactions, in block order,
/// suppressed until the event of transaction `after` has been seen (Fabric's rule).
fn block_events(
    block: &StoredBlock,
    chaincode: &str,
    after: &str,
    seen_after: &mut bool,
) -> Vec<ChaincodeEvent> {
    let filter = block
        .metadata
        .get(TRANSACTIONS_FILTER)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, envelope) in block.data.iter().enumerate() {
        if filter.get(i).copied() != Some(TxValidationCode::Valid as u8) {
            continue;
        }
        let Some(event) = transaction::envelope_event(envelope) else {
            continue;
        };
        if event.chaincode_id != chaincode || event.event_name.is_empty() || event.tx_id.is_empty()
        {
            continue;
        }
        if !*seen_after {
            if event.tx_id == after {
                *seen_after = true;
            }
            continue;
        }
        out.push(event);
    }
    out
}
