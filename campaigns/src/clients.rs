//! Campaign `clients`: mutated client messages against a running node's Endorser, Gateway
//! (Evaluate, Endorse, Submit, CommitStatus) and orderer Broadcast.
//!
//! Each case builds a valid message for a small wasm chaincode (`kv`: it writes its input
//! under `k`) — a signed proposal, or a signed transaction envelope endorsed by the node —
//! then mutates it at one layer:
//!
//! - `outer`: the encoded request (bit flips, byte changes, cuts, insertions, repeated
//!   spans, appended fields), sent when it still decodes as the request type;
//! - `signed`: the signed bytes inside (`proposal_bytes`, the envelope's `payload`), the
//!   client's signature kept;
//! - `resigned`: the signed bytes mutated and signed again by the client, so the checks
//!   behind the signature are reached;
//! - `field`: one header field changed (channel, txid, type, epoch, creator, nonce,
//!   chaincode name), signed again.
//!
//! Invariants, every case: no panic; an answer within [`ANSWER`]; never a server-fault
//! status (gRPC `Internal`, `DataLoss`, or `Unknown` where Fabric does not use it for a
//! refusal); a message whose signed bytes or signature changed without a new signature
//! is never endorsed, evaluated, prepared or answered; every transaction the orderer
//! accepts reaches a block; and none is committed VALID if its signature no longer
//! covers it or its txid, nonce, creator or channel changed (a client may sign changed
//! content again: Fabric commits that when the endorsements still hold).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use cchost::node::RunningNode;
use cchost::proposal::DevIdentity;
use cchost_proto::common::{ChannelHeader, Envelope, Header, Payload, SignatureHeader};
use cchost_proto::gateway::gateway_client::GatewayClient;
use cchost_proto::gateway::{
    CommitStatusRequest, EndorseRequest, EvaluateRequest, SignedCommitStatusRequest, SubmitRequest,
};
use cchost_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use cchost_proto::protos::endorser_client::EndorserClient;
use cchost_proto::protos::{ChaincodeHeaderExtension, ChaincodeId, Proposal, SignedProposal};
use prost::Message as _;
use rand::rngs::ChaCha20Rng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};

use crate::kvnode::KvNode;
use crate::modules::class;
use crate::{Budget, Report, choose, take_panics, watch_panics};

/// How long any call may take before the case is a finding.
pub const ANSWER: Duration = Duration::from_secs(10);
/// How long a submitted transaction is waited for.
const COMMIT_WAIT: Duration = Duration::from_secs(3);

/// Where a mutation is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Outer,
    Signed,
    Resigned,
    Field,
}

impl Layer {
    fn name(self) -> &'static str {
        match self {
            Self::Outer => "outer",
            Self::Signed => "signed",
            Self::Resigned => "resigned",
            Self::Field => "field",
        }
    }

    /// Whether a mutation at this layer keeps the client's signature (re-signs).
    fn resigns(self) -> bool {
        matches!(self, Self::Resigned | Self::Field)
    }
}

/// 1–4 raw byte mutations of `bytes`.
fn mutate(rng: &mut ChaCha20Rng, bytes: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..=4u32) {
        let len = bytes.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        };
        match rng.random_range(0..7u32) {
            0 if len > 0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.random_range(0..8u32);
                }
            }
            1 if len > 0 => {
                if let Some(b) = bytes.get_mut(at) {
                    *b = rng.random();
                }
            }
            2 => bytes.truncate(at),
            3 => {
                let mut extra = vec![0u8; rng.random_range(1..16)];
                rng.fill_bytes(&mut extra);
                bytes.splice(at..at, extra);
            }
            4 if len > 0 => {
                let end = rng.random_range(at..=len);
                bytes.drain(at..end);
            }
            5 if len > 0 => {
                let end = rng.random_range(at..=len.min(at + 64));
                let span = bytes.get(at..end).map(<[u8]>::to_vec).unwrap_or_default();
                bytes.splice(at..at, span);
            }
            _ => {
                // An appended field: a random tag, wire type 2, a short value.
                let tag: u8 = rng.random_range(1..16u8) << 3 | 2;
                let mut value = vec![0u8; rng.random_range(0..8)];
                rng.fill_bytes(&mut value);
                bytes.push(tag);
                bytes.push(value.len() as u8);
                bytes.extend(value);
            }
        }
    }
}

/// One header field of an encoded `Proposal` or `Payload` (both start with a `Header`)
/// changed; `None` when the bytes do not parse that far.
fn change_field(rng: &mut ChaCha20Rng, header: &mut Header) -> Option<&'static str> {
    let mut channel = ChannelHeader::decode(header.channel_header.as_slice()).ok()?;
    let mut signature = SignatureHeader::decode(header.signature_header.as_slice()).ok()?;
    let changed = match rng.random_range(0..8u32) {
        0 => {
            channel.channel_id = choose(rng, &["", "otherchannel", "MYCHANNEL"])
                .map_or(String::new(), |c| (*c).to_owned());
            "channel id"
        }
        1 => {
            channel.tx_id = format!("{:064x}", rng.next_u64());
            "txid"
        }
        2 => {
            channel.r#type = rng.random_range(-1..10);
            "header type"
        }
        3 => {
            channel.epoch = rng.random();
            "epoch"
        }
        4 => {
            signature
                .creator
                .truncate(rng.random_range(0..=signature.creator.len()));
            "creator"
        }
        5 => {
            signature.nonce = vec![0u8; rng.random_range(0..40)];
            "nonce"
        }
        6 => {
            let mut extension =
                ChaincodeHeaderExtension::decode(channel.extension.as_slice()).ok()?;
            extension.chaincode_id = Some(ChaincodeId {
                name: choose(rng, &["", "nobody", "_lifecycle", "qscc"])
                    .map_or(String::new(), |n| (*n).to_owned()),
                ..Default::default()
            });
            channel.extension = extension.encode_to_vec();
            "chaincode name"
        }
        _ => {
            channel.timestamp = None;
            "timestamp"
        }
    };
    header.channel_header = channel.encode_to_vec();
    header.signature_header = signature.encode_to_vec();
    Some(changed)
}

/// `signed` mutated at `layer`; the layer actually applied (a `field` change falls back
/// to `resigned` when the bytes do not parse).
fn mutate_proposal(
    rng: &mut ChaCha20Rng,
    signed: &SignedProposal,
    layer: Layer,
    user: &DevIdentity,
) -> (SignedProposal, Layer) {
    let mut out = signed.clone();
    match layer {
        Layer::Outer => {
            let mut bytes = signed.encode_to_vec();
            mutate(rng, &mut bytes);
            match SignedProposal::decode(bytes.as_slice()) {
                Ok(decoded) => out = decoded,
                // Not a SignedProposal any more: mutate the signature instead.
                Err(_) => mutate(rng, &mut out.signature),
            }
        }
        Layer::Signed => mutate(rng, &mut out.proposal_bytes),
        Layer::Resigned => {
            mutate(rng, &mut out.proposal_bytes);
            out.signature = user.sign(&out.proposal_bytes);
        }
        Layer::Field => {
            let changed = Proposal::decode(signed.proposal_bytes.as_slice())
                .ok()
                .and_then(|mut proposal| {
                    let mut header = Header::decode(proposal.header.as_slice()).ok()?;
                    change_field(rng, &mut header)?;
                    proposal.header = header.encode_to_vec();
                    Some(proposal.encode_to_vec())
                });
            match changed {
                Some(bytes) => out.proposal_bytes = bytes,
                None => return mutate_proposal(rng, signed, Layer::Resigned, user),
            }
            out.signature = user.sign(&out.proposal_bytes);
        }
    }
    (out, layer)
}

fn mutate_envelope(
    rng: &mut ChaCha20Rng,
    envelope: &Envelope,
    layer: Layer,
    user: &DevIdentity,
) -> (Envelope, Layer, Option<&'static str>) {
    let mut out = envelope.clone();
    let mut field = None;
    match layer {
        Layer::Outer => {
            let mut bytes = envelope.encode_to_vec();
            mutate(rng, &mut bytes);
            match Envelope::decode(bytes.as_slice()) {
                Ok(decoded) => out = decoded,
                Err(_) => mutate(rng, &mut out.signature),
            }
        }
        Layer::Signed => mutate(rng, &mut out.payload),
        Layer::Resigned => {
            mutate(rng, &mut out.payload);
            out.signature = user.sign(&out.payload);
        }
        Layer::Field => {
            let changed =
                Payload::decode(envelope.payload.as_slice())
                    .ok()
                    .and_then(|mut payload| {
                        let header = payload.header.as_mut()?;
                        field = Some(change_field(rng, header)?);
                        Some(payload.encode_to_vec())
                    });
            match changed {
                Some(bytes) => out.payload = bytes,
                None => return mutate_envelope(rng, envelope, Layer::Resigned, user),
            }
            out.signature = user.sign(&out.payload);
        }
    }
    (out, layer, field)
}

/// The txid an envelope's payload names, if it parses that far.
fn envelope_txid(envelope: &Envelope) -> Option<String> {
    let payload = Payload::decode(envelope.payload.as_slice()).ok()?;
    let header = ChannelHeader::decode(payload.header?.channel_header.as_slice()).ok()?;
    Some(header.tx_id)
}

/// The validation code of the first transaction from block `from` on whose payload and
/// signature are `payload` and `signature`, once a block holds it.
async fn committed_code(
    node: &RunningNode,
    from: u64,
    payload: &[u8],
    signature: &[u8],
) -> &'static str {
    let mut next = from;
    loop {
        while next < node.ledger.height() {
            if let Ok(Some(block)) = node.ledger.block(next) {
                let filter = block
                    .metadata
                    .get(cchost::ledger::blockfile::TRANSACTIONS_FILTER)
                    .cloned()
                    .unwrap_or_default();
                for (i, data) in block.data.iter().enumerate() {
                    if let Ok(envelope) = Envelope::decode(data.as_slice())
                        && envelope.payload == payload
                        && envelope.signature == signature
                    {
                        let code = filter.get(i).copied().map_or(-1, i32::from);
                        return cchost_proto::protos::TxValidationCode::try_from(code)
                            .map_or("an unknown code", |c| c.as_str_name());
                    }
                }
            }
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How a call to `service` ended, as an outcome class; `Err` for a server-fault status.
/// Fabric's Endorser answers a proposal it cannot unpack or validate with a plain Go
/// error, which gRPC sends as `Unknown` (core/endorser/endorser.go, `ProcessProposal`):
/// there `Unknown` is the refusal, as it is in cchost.
fn status_class(service: &str, status: &tonic::Status) -> Result<String, String> {
    let text = format!("{:?}: {}", status.code(), class(status.message()));
    match status.code() {
        tonic::Code::Unknown if service == "endorser" => Ok(text),
        // Fabric's Gateway passes a chaincode's error response on as `Unknown`
        // (internal/pkg/gateway/evaluate.go).
        tonic::Code::Unknown
            if status
                .message()
                .contains("call to endorser returned error: chaincode response") =>
        {
            Ok(text)
        }
        tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss => Err(text),
        _ => Ok(text),
    }
}

/// Runs case `seed`.
async fn case(target: &KvNode, seed: u64, report: &mut Report) -> anyhow::Result<()> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let layer = *choose(
        &mut rng,
        &[Layer::Outer, Layer::Signed, Layer::Resigned, Layer::Field],
    )
    .unwrap_or(&Layer::Outer);
    let proposal = target.proposal(seed)?;
    let channel_id = target.node.profile.channel.clone();
    let mut gateway = GatewayClient::new(target.channel.clone());
    let kind = rng.random_range(0..6u32);
    let (what, answer): (&str, Result<bool, tonic::Status>) = match kind {
        0..=2 => {
            let (signed, layer) =
                mutate_proposal(&mut rng, &proposal.signed_proposal, layer, &target.user);
            let original = &proposal.signed_proposal;
            let tampered = !layer.resigns()
                && (signed.proposal_bytes != original.proposal_bytes
                    || signed.signature != original.signature);
            let call = async {
                match kind {
                    0 => EndorserClient::new(target.channel.clone())
                        .process_proposal(signed)
                        .await
                        .map(|r| {
                            let r = r.into_inner();
                            r.endorsement.is_some() || r.response.is_some_and(|r| r.status < 400)
                        }),
                    1 => gateway
                        .evaluate(EvaluateRequest {
                            transaction_id: proposal.txid.clone(),
                            channel_id: channel_id.clone(),
                            proposed_transaction: Some(signed),
                            target_organizations: Vec::new(),
                        })
                        .await
                        .map(|_| true),
                    _ => gateway
                        .endorse(EndorseRequest {
                            transaction_id: proposal.txid.clone(),
                            channel_id: channel_id.clone(),
                            proposed_transaction: Some(signed),
                            endorsing_organizations: Vec::new(),
                        })
                        .await
                        .map(|_| true),
                }
            };
            let answer = tokio::time::timeout(ANSWER, call)
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("no answer"))
                .and_then(|a| a);
            if tampered && matches!(answer, Ok(true)) {
                report.find(
                    seed,
                    "a proposal whose signed bytes changed was accepted",
                    format!("layer {}, call {kind}", layer.name()),
                );
            }
            (
                match kind {
                    0 => "endorser",
                    1 => "gateway evaluate",
                    _ => "gateway endorse",
                },
                answer,
            )
        }
        3 | 4 => {
            // A transaction endorsed by the node, signed by the client, then mutated.
            let endorsed = target
                .client
                .endorse(&proposal)
                .await
                .context("endorsing the base transaction")?;
            let decoded = Proposal::decode(proposal.signed_proposal.proposal_bytes.as_slice())?;
            let envelope = cchost::transaction::assemble(&decoded, &[endorsed], &target.user)?;
            let (mutated, layer, field) = mutate_envelope(&mut rng, &envelope, layer, &target.user);
            let changed =
                (mutated.payload != envelope.payload) || (mutated.signature != envelope.signature);
            let txid = envelope_txid(&mutated).unwrap_or_else(|| proposal.txid.clone());
            let (sent_payload, sent_signature) =
                (mutated.payload.clone(), mutated.signature.clone());
            let height = target.node.ledger.height();
            let sent = async {
                if kind == 3 {
                    gateway
                        .submit(SubmitRequest {
                            transaction_id: txid.clone(),
                            channel_id: channel_id.clone(),
                            prepared_transaction: Some(mutated),
                        })
                        .await
                        .map(|_| true)
                } else {
                    let mut answers = AtomicBroadcastClient::new(target.channel.clone())
                        .broadcast(tokio_stream::once(mutated))
                        .await?
                        .into_inner();
                    let answer = answers.message().await?;
                    Ok(answer
                        .is_some_and(|a| a.status == cchost_proto::common::Status::Success as i32))
                }
            };
            let answer = tokio::time::timeout(ANSWER, sent)
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("no answer"))
                .and_then(|a| a);
            if matches!(answer, Ok(true)) {
                // Accepted for ordering: what did validation make of it? Found by its
                // content, since its txid may be gone or another's.
                let waited = tokio::time::timeout(
                    COMMIT_WAIT,
                    committed_code(&target.node, height, &sent_payload, &sent_signature),
                )
                .await;
                let code = waited.unwrap_or("not in a block within 3 s");
                // A client may sign changed content again: Fabric commits that when the
                // endorsements still hold (a new timestamp, say), but never a transaction
                // whose signature no longer covers it, nor one whose txid, nonce, creator
                // or channel changed.
                let resigned = match (layer.resigns(), field) {
                    (false, _) => "",
                    (true, Some(field)) => field,
                    (true, None) => "raw bytes",
                };
                let outcome = match resigned {
                    "" => format!("committed as {code}"),
                    how => format!("committed as {code} (re-signed, {how} changed)"),
                };
                report.count(seed, outcome, &txid);
                if code == "not in a block within 3 s" {
                    report.find(
                        seed,
                        "an accepted transaction never reached a block",
                        format!("layer {}, txid {txid}", layer.name()),
                    );
                }
                let must_fail = !layer.resigns()
                    || matches!(field, Some("txid" | "nonce" | "creator" | "channel id"));
                if changed && must_fail && code == "VALID" {
                    report.find(
                        seed,
                        "a tampered transaction was committed VALID",
                        format!("layer {}, {resigned}, txid {txid}", layer.name()),
                    );
                }
            }
            (
                if kind == 3 {
                    "gateway submit"
                } else {
                    "broadcast"
                },
                answer,
            )
        }
        _ => {
            let request = CommitStatusRequest {
                transaction_id: proposal.txid.clone(),
                channel_id: channel_id.clone(),
                identity: target.user.creator(),
            }
            .encode_to_vec();
            let mut signed = SignedCommitStatusRequest {
                signature: target.user.sign(&request),
                request: request.clone(),
            };
            match layer {
                Layer::Outer | Layer::Signed => mutate(&mut rng, &mut signed.request),
                _ => {
                    mutate(&mut rng, &mut signed.request);
                    signed.signature = target.user.sign(&signed.request);
                }
            }
            let signed_request = signed.request.clone();
            let mut call = tonic::Request::new(signed);
            // An unknown txid is waited for: the client's deadline ends the call.
            call.set_timeout(Duration::from_millis(500));
            let answer = tokio::time::timeout(ANSWER, gateway.commit_status(call))
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("no answer"))
                .and_then(|a| a)
                .map(|_| true);
            if !layer.resigns() && signed_request != request && matches!(answer, Ok(true)) {
                report.find(
                    seed,
                    "a commit status request with a broken signature was answered",
                    "",
                );
            }
            ("gateway commit status", answer)
        }
    };
    match answer {
        Ok(accepted) => report.count(
            seed,
            format!(
                "{what}: {}",
                if accepted {
                    "accepted"
                } else {
                    "refused in the response"
                }
            ),
            layer.name(),
        ),
        Err(status) => match status_class(what, &status) {
            Ok(class) => report.count(seed, format!("{what}: {class}"), status.message()),
            Err(class) => report.find(seed, "server-fault status", format!("{what}: {class}")),
        },
    }
    for panic in take_panics() {
        report.find(seed, "panic", panic);
    }
    Ok(())
}

/// Runs the campaign.
pub async fn run(budget: Budget, progress: &(dyn Fn(&str) + Sync)) -> anyhow::Result<Report> {
    watch_panics();
    take_panics();
    progress("clients: starting a node and deploying kv");
    let target = KvNode::start().await?;
    let mut report = Report::new("clients", budget.first);
    let started = Instant::now();
    while budget.allows(report.tried, started) {
        let seed = budget.first + report.tried;
        report.tried += 1;
        if report.tried.is_multiple_of(200) {
            progress(&format!(
                "clients: {} cases, {} findings, {:.0} s",
                report.tried,
                report.findings.len(),
                started.elapsed().as_secs_f64()
            ));
        }
        case(&target, seed, &mut report).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    let KvNode { node, .. } = target;
    node.stop().await?;
    Ok(report)
}
