//! Endorsements and transactions, built as Fabric builds them.
//!
//! [`endorse`] makes the `ProposalResponse` an endorser returns: a
//! `ProposalResponsePayload` holding the proposal hash and the `ChaincodeAction` (read/write
//! set, event, response, chaincode id), signed by the endorser over `payload ‖ endorser`
//! (`protoutil.CreateProposalResponse`). [`assemble`] makes the signed transaction
//! envelope a client submits from a proposal and its endorsements
//! (`protoutil.CreateSignedTx`).

use cchost_proto::common::{Envelope, Header, Payload};
use cchost_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeEvent, ChaincodeId,
    ChaincodeProposalPayload, Endorsement, Proposal, ProposalResponse, ProposalResponsePayload,
    Response, Transaction, TransactionAction,
};
use cchost_proto::rwset::TxReadWriteSet;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::proposal::DevIdentity;

/// Why a transaction cannot be assembled (Fabric's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// A layer of the proposal does not decode.
    #[error("malformed proposal: {0}")]
    Malformed(String),
    /// No endorsements were given.
    #[error("at least one proposal response is required")]
    NoResponses,
    /// An endorser answered with an error status.
    #[error("proposal response was not successful, error code {status}, msg {message}")]
    NotSuccessful {
        /// The status.
        status: i32,
        /// The message.
        message: String,
    },
    /// Endorsers returned different results.
    #[error("ProposalResponsePayloads do not match")]
    Mismatch,
}

/// The proposal's payload without its transient map: what a transaction carries and the
/// proposal hash covers.
fn payload_for_tx(proposal: &Proposal) -> Result<Vec<u8>, TransactionError> {
    let mut payload = ChaincodeProposalPayload::decode(proposal.payload.as_slice())
        .map_err(|e| TransactionError::Malformed(format!("chaincode proposal payload: {e}")))?;
    payload.transient_map.clear();
    Ok(payload.encode_to_vec())
}

/// `SHA-256(channel header ‖ signature header ‖ payload without transient data)`.
pub fn proposal_hash(proposal: &Proposal) -> Result<Vec<u8>, TransactionError> {
    let header = Header::decode(proposal.header.as_slice())
        .map_err(|e| TransactionError::Malformed(format!("header: {e}")))?;
    let mut hash = Sha256::new();
    hash.update(&header.channel_header);
    hash.update(&header.signature_header);
    hash.update(payload_for_tx(proposal)?);
    Ok(hash.finalize().to_vec())
}

/// What a chaincode's simulation produced, to be endorsed.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    /// The chaincode invoked, with its version.
    pub chaincode_id: ChaincodeId,
    /// The read/write set.
    pub rwset: TxReadWriteSet,
    /// The chaincode's response.
    pub response: Response,
    /// The event it set, if any.
    pub event: Option<ChaincodeEvent>,
}

/// The encoded `ProposalResponsePayload` of `simulation`: the proposal hash and the
/// `ChaincodeAction`.
pub fn response_payload(
    proposal: &Proposal,
    simulation: &Simulation,
) -> Result<Vec<u8>, TransactionError> {
    let action = ChaincodeAction {
        results: simulation.rwset.encode_to_vec(),
        events: simulation
            .event
            .as_ref()
            .map(Message::encode_to_vec)
            .unwrap_or_default(),
        response: Some(simulation.response.clone()),
        chaincode_id: Some(simulation.chaincode_id.clone()),
    };
    Ok(ProposalResponsePayload {
        proposal_hash: proposal_hash(proposal)?,
        extension: action.encode_to_vec(),
    }
    .encode_to_vec())
}

/// The endorser's signed answer to `proposal`.
pub fn endorse(
    proposal: &Proposal,
    simulation: &Simulation,
    endorser: &DevIdentity,
) -> Result<ProposalResponse, TransactionError> {
    let payload = response_payload(proposal, simulation)?;
    let identity = endorser.creator();
    let signature = endorser.sign(&[payload.as_slice(), identity.as_slice()].concat());
    Ok(ProposalResponse {
        version: 1,
        timestamp: None,
        response: Some(simulation.response.clone()),
        payload,
        endorsement: Some(Endorsement {
            endorser: identity,
            signature,
        }),
        interest: None,
    })
}

/// The transaction envelope of `proposal` with `responses`, signed by `signer` (the
/// proposal's creator): every response must be successful (status below 400) and carry
/// the same payload.
pub fn assemble(
    proposal: &Proposal,
    responses: &[ProposalResponse],
    signer: &DevIdentity,
) -> Result<Envelope, TransactionError> {
    let mut envelope = prepare(proposal, responses)?;
    envelope.signature = signer.sign(&envelope.payload);
    Ok(envelope)
}

/// [`assemble`] without the signature: the prepared transaction a Gateway returns for
/// its client to sign (`prepareTransaction`). Endorsements are kept once per endorser.
pub fn prepare(
    proposal: &Proposal,
    responses: &[ProposalResponse],
) -> Result<Envelope, TransactionError> {
    let first = responses.first().ok_or(TransactionError::NoResponses)?;
    for response in responses {
        let status = response.response.as_ref().map_or(0, |r| r.status);
        if !(200..400).contains(&status) {
            return Err(TransactionError::NotSuccessful {
                status,
                message: response
                    .response
                    .as_ref()
                    .map(|r| r.message.clone())
                    .unwrap_or_default(),
            });
        }
        if response.payload != first.payload {
            return Err(TransactionError::Mismatch);
        }
    }
    let header = Header::decode(proposal.header.as_slice())
        .map_err(|e| TransactionError::Malformed(format!("header: {e}")))?;
    let action_payload = ChaincodeActionPayload {
        chaincode_proposal_payload: payload_for_tx(proposal)?,
        action: Some(ChaincodeEndorsedAction {
            proposal_response_payload: first.payload.clone(),
            endorsements: {
                let mut seen = std::collections::BTreeSet::new();
                responses
                    .iter()
                    .filter_map(|r| r.endorsement.clone())
                    .filter(|e| seen.insert(e.endorser.clone()))
                    .collect()
            },
        }),
    };
    let transaction = Transaction {
        actions: vec![TransactionAction {
            header: header.signature_header.clone(),
            payload: action_payload.encode_to_vec(),
        }],
    };
    let payload = Payload {
        header: Some(header),
        data: transaction.encode_to_vec(),
    }
    .encode_to_vec();
    Ok(Envelope {
        payload,
        signature: Vec::new(),
    })
}

/// The chaincode action of an endorser transaction's payload (its first action).
fn payload_action(payload: &Payload) -> Option<ChaincodeAction> {
    use cchost_proto::common::{ChannelHeader, HeaderType};
    let header = ChannelHeader::decode(payload.header.as_ref()?.channel_header.as_slice()).ok()?;
    if header.r#type != HeaderType::EndorserTransaction as i32 {
        return None;
    }
    let tx = Transaction::decode(payload.data.as_slice()).ok()?;
    let action = ChaincodeActionPayload::decode(tx.actions.first()?.payload.as_slice()).ok()?;
    let prp = ProposalResponsePayload::decode(action.action?.proposal_response_payload.as_slice())
        .ok()?;
    ChaincodeAction::decode(prp.extension.as_slice()).ok()
}

/// The chaincode event of a transaction envelope (an endorser transaction's first
/// action), if it set one.
pub fn envelope_event(envelope: &[u8]) -> Option<ChaincodeEvent> {
    let envelope = Envelope::decode(envelope).ok()?;
    let payload = Payload::decode(envelope.payload.as_slice()).ok()?;
    ChaincodeEvent::decode(payload_action(&payload)?.events.as_slice()).ok()
}

/// The chaincode's response in an endorser transaction's payload (what
/// `submitTransaction` returns to a Gateway client).
pub fn response_of(payload: &Payload) -> Option<cchost_proto::protos::Response> {
    payload_action(payload)?.response
}
