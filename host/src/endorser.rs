//! The endorser: `/protos.Endorser/ProcessProposal` with Fabric's checks, in Fabric's
//! order, with Fabric's texts (`core/endorser/endorser.go`, `msgvalidation.go`).
//!
//! 1. The proposal decodes (else a gRPC error).
//! 2. Its channel exists (else status 500, `channel '<ch>' not found`).
//! 3. Header type, epoch, nonce, creator, txid, bytes, signature, the creator known to
//!    the channel's MSPs and its signature valid (each `error validating proposal: ...`,
//!    a gRPC error).
//! 4. The txid is not in the ledger (`duplicate transaction found [...]`, a gRPC error).
//! 5. The creator may write to the channel (its Writers: a client or admin of a channel
//!    organisation).
//! 6. The chaincode is defined, approved by this organisation and installed (`make sure
//!    the chaincode ...`, status 500).
//! 7. The simulation (`error in simulation: ...`, status 500), which records the read of
//!    the chaincode's `_lifecycle` Sequence key first and, for a chaincode that requires
//!    initialisation, checks it.
//!
//! Then the chaincode's status decides: below 400 endorsed (the node signs
//! `payload ‖ endorser`), 400–499 the response alone, 500 and above the response and
//! payload, unendorsed.
//!
//! `_lifecycle` proposals run the [`lifecycle`] functions in process; install and the
//! installed-package queries come without a channel and are checked against the node's
//! own MSP, and need an admin of the node's organisation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cchost_proto::common::HeaderType;
use cchost_proto::protos::{ChaincodeId, ProposalResponse, Response, SignedProposal};
use prost::Message;

use crate::ledger::commit::ChannelLedger;
use crate::ledger::{LedgerError, StateStore, TxSimulator};
use crate::lifecycle::{self, LifecycleHost};
use crate::msp::{Identity, MspError, MspManager, Role};
use crate::proposal::{DevIdentity, ParsedProposal, compute_txid};
use crate::support::{ChaincodeSupport, ExecuteError};
use crate::transaction::{self, Simulation};

/// The key an init-required chaincode's initialisation writes (value: the definition's
/// version), in its own namespace: `"\0" + U+10FFFF + "initialized"`.
pub const INITIALIZED_KEY: &str = "\u{0}\u{10FFFF}initialized";

/// A proposal refused with a gRPC error (Fabric returns these as errors, which remote
/// clients see as status Unknown with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// What the endorser needs of the node.
pub struct Endorser {
    channels: BTreeMap<String, Arc<ChannelLedger>>,
    state: Arc<dyn StateStore>,
    support: ChaincodeSupport,
    signer: Arc<DevIdentity>,
    local_msp: MspManager,
    host: Arc<dyn LifecycleHost + Send + Sync>,
    dev_mode: bool,
    /// Definitions found ready to endorse (committed, approved by this org, installed),
    /// by channel and chaincode, with the ledger height they were read at: used while
    /// the height is unchanged (state changes only when a block commits).
    definitions: std::sync::Mutex<HashMap<(String, String), (u64, lifecycle::Definition)>>,
}

impl std::fmt::Debug for Endorser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endorser")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn status(status: i32, message: impl Into<String>) -> ProposalResponse {
    ProposalResponse {
        response: Some(Response {
            status,
            message: message.into(),
            payload: Vec::new(),
        }),
        ..ProposalResponse::default()
    }
}

impl Endorser {
    /// An endorser over `channels` (their ledgers share `state`), executing chaincode
    /// through `support`, signing as `signer` (a peer of the node's organisation, whose
    /// MSP is `local_msp`).
    pub fn new(
        channels: BTreeMap<String, Arc<ChannelLedger>>,
        state: Arc<dyn StateStore>,
        support: ChaincodeSupport,
        signer: Arc<DevIdentity>,
        local_msp: MspManager,
        host: Arc<dyn LifecycleHost + Send + Sync>,
    ) -> Self {
        Self {
            channels,
            state,
            support,
            signer,
            local_msp,
            host,
            dev_mode: false,
            definitions: std::sync::Mutex::default(),
        }
    }

    /// In Fabric's dev mode (`peer.chaincodedev`) chaincode is started by hand and
    /// registers with the package id its definition names, installed or not: the
    /// installed check of step 6 is skipped.
    pub fn dev_mode(mut self, on: bool) -> Self {
        self.dev_mode = on;
        self
    }

    /// Answers `signed` as Fabric's `ProcessProposal` does.
    pub async fn process_proposal(
        &self,
        signed: &SignedProposal,
    ) -> Result<ProposalResponse, Refused> {
        // 1. Unpack.
        let parsed = ParsedProposal::parse(signed).map_err(|e| Refused(e.to_string()))?;
        let channel = parsed.channel_header.channel_id.clone();
        // 2. The channel.
        let ledger = if channel.is_empty() {
            None
        } else {
            match self.channels.get(&channel) {
                Some(ledger) => Some(ledger),
                None => return Ok(status(500, format!("channel '{channel}' not found"))),
            }
        };
        // 3. Validate.
        let creator = self
            .validate(signed, &parsed, ledger.map(|l| l.as_ref()))
            .map_err(|e| Refused(format!("error validating proposal: {e}")))?;
        let txid = parsed.channel_header.tx_id.clone();
        let chaincode = parsed.chaincode_name.clone();
        let Some(ledger) = ledger else {
            // Channel-less: only `_lifecycle`'s install and installed-package queries.
            return Ok(self.channelless(&parsed, &creator));
        };
        // 4. Duplicate txid.
        if ledger
            .tx_status(&txid)
            .map_err(|e| Refused(e.to_string()))?
            .is_some()
        {
            return Err(Refused(format!(
                "duplicate transaction found [{txid}]. Creator [{}]",
                hex::encode(&parsed.signature_header.creator)
            )));
        }
        // 5. Writers.
        if !(creator.has_role(Role::Client) || creator.has_role(Role::Admin)) {
            return Err(Refused(format!(
                "Failed evaluating policy on signed data during check policy on channel \
                 [{channel}] with policy [/Channel/Application/Writers]: [implicit policy \
                 evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 \
                 of the 'Writers' sub-policies to be satisfied]"
            )));
        }
        if chaincode == lifecycle::NAMESPACE {
            return Ok(self.lifecycle_on_channel(&parsed, &creator, &channel));
        }
        // 6. The chaincode's definition.
        let definition = match self.endorsement_info(ledger, &chaincode) {
            Ok(definition) => definition,
            Err(cause) => {
                return Ok(status(
                    500,
                    format!(
                        "make sure the chaincode {chaincode} has been successfully defined on \
                         channel {channel} and try again: {cause}"
                    ),
                ));
            }
        };
        // 7. Simulate.
        let is_init = parsed.input.is_init;
        let result = self
            .support
            .execute_prepared(signed, |sim| {
                let sequence =
                    lifecycle::read_sequence(sim, &chaincode).map_err(ExecuteError::Ledger)?;
                if sequence != definition.sequence {
                    return Err(ExecuteError::InvalidInvocation {
                        txid: txid.clone(),
                        reason: format!(
                            "chaincode cache at sequence {} but current sequence is {sequence}, \
                             chaincode definition for '{chaincode}' changed during invoke",
                            definition.sequence
                        ),
                    });
                }
                check_invocation(sim, &chaincode, &definition, is_init, &txid)
            })
            .await;
        let result = match result {
            Ok(result) => result,
            Err(e) => return Ok(status(500, format!("error in simulation: {e}"))),
        };
        let simulation = Simulation {
            chaincode_id: ChaincodeId {
                name: chaincode,
                version: definition.version.clone(),
                path: String::new(),
            },
            rwset: result.rwset,
            response: result.response,
            event: result.event,
        };
        self.respond(&parsed, &simulation)
    }

    /// Step 3: header, txid, creator and signature, against the channel's MSPs (or the
    /// node's own for a channel-less proposal).
    fn validate(
        &self,
        signed: &SignedProposal,
        parsed: &ParsedProposal,
        ledger: Option<&ChannelLedger>,
    ) -> Result<Identity, String> {
        let header = &parsed.channel_header;
        let channel = &header.channel_id;
        match HeaderType::try_from(header.r#type) {
            Ok(HeaderType::EndorserTransaction | HeaderType::Config) => {}
            Ok(other) => return Err(format!("invalid header type {}", other.as_str_name())),
            Err(_) => return Err(format!("invalid header type {}", header.r#type)),
        }
        if header.epoch != 0 {
            return Err("epoch is non-zero".into());
        }
        let signature_header = &parsed.signature_header;
        if signature_header.nonce.is_empty() {
            return Err("nonce is empty".into());
        }
        if signature_header.creator.is_empty() {
            return Err("creator is empty".into());
        }
        let expected = compute_txid(&signature_header.nonce, &signature_header.creator);
        if header.tx_id != expected {
            return Err(format!(
                "incorrectly computed txid '{}' -- expected '{expected}'",
                header.tx_id
            ));
        }
        if signed.proposal_bytes.is_empty() {
            return Err("empty proposal bytes".into());
        }
        if signed.signature.is_empty() {
            return Err("empty signature bytes".into());
        }
        let msps = match ledger {
            Some(ledger) => ledger.genesis().msps.clone(),
            None => self.local_msp.clone(),
        };
        let identity = msps
            .deserialize(&signature_header.creator)
            .map_err(|e| match e {
                MspError::Malformed(_) | MspError::UnknownMsp(_) => format!(
                    "access denied: channel [{channel}] creator org unknown, creator is malformed"
                ),
                _ => format!(
                    "access denied: channel [{channel}] creator org [{}]",
                    creator_msp(&signature_header.creator)
                ),
            })?;
        identity
            .verify(&signed.proposal_bytes, &signed.signature)
            .map_err(|_| {
                format!(
                    "access denied: channel [{channel}] creator org [{}]",
                    identity.msp_id()
                )
            })?;
        Ok(identity)
    }

    /// Step 6: the committed definition, approved by this org for an installed package.
    fn endorsement_info(
        &self,
        ledger: &ChannelLedger,
        chaincode: &str,
    ) -> Result<lifecycle::Definition, String> {
        // The height before the snapshot: what the snapshot holds is at least that new.
        let height = ledger.height();
        let key = (ledger.channel().to_owned(), chaincode.to_owned());
        let lock = || {
            self.definitions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((at, definition)) = lock().get(&key)
            && *at == height
        {
            return Ok(definition.clone());
        }
        let definition = self.read_endorsement_info(ledger.channel(), chaincode)?;
        lock().insert(key, (height, definition.clone()));
        Ok(definition)
    }

    fn read_endorsement_info(
        &self,
        channel: &str,
        chaincode: &str,
    ) -> Result<lifecycle::Definition, String> {
        let snapshot = self.state.snapshot(channel).map_err(|e| e.to_string())?;
        let definition = lifecycle::committed(snapshot.as_ref(), chaincode)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("chaincode {chaincode} not found"))?;
        let package = lifecycle::approved_package(
            snapshot.as_ref(),
            self.host.msp_id(),
            chaincode,
            definition.sequence,
        )
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "chaincode definition for '{chaincode}' at sequence {} on channel '{channel}' \
                 has not yet been approved by this org",
                definition.sequence
            )
        })?;
        if !self.dev_mode && !self.host.is_installed(&package) {
            return Err(format!(
                "chaincode definition for '{chaincode}' exists, but chaincode is not installed"
            ));
        }
        Ok(definition)
    }

    /// A successful simulation's response: endorsed below 400, as the module says above.
    fn respond(
        &self,
        parsed: &ParsedProposal,
        simulation: &Simulation,
    ) -> Result<ProposalResponse, Refused> {
        let code = simulation.response.status;
        if code >= 500 {
            let payload = transaction::response_payload(&parsed.proposal, simulation)
                .map_err(|e| Refused(e.to_string()))?;
            return Ok(ProposalResponse {
                response: Some(simulation.response.clone()),
                payload,
                ..ProposalResponse::default()
            });
        }
        if code >= 400 {
            return Ok(ProposalResponse {
                response: Some(simulation.response.clone()),
                ..ProposalResponse::default()
            });
        }
        transaction::endorse(&parsed.proposal, simulation, &self.signer)
            .map_err(|e| Refused(format!("endorsing with plugin failed: {e}")))
    }

    /// A `_lifecycle` call's response, endorsed when it succeeded.
    fn lifecycle_response(
        &self,
        parsed: &ParsedProposal,
        result: Result<Vec<u8>, lifecycle::CallError>,
        rwset: cchost_proto::rwset::TxReadWriteSet,
    ) -> ProposalResponse {
        let response = match result {
            Ok(payload) => Response {
                status: 200,
                message: String::new(),
                payload,
            },
            Err(e) => Response {
                status: e.status,
                message: e.message,
                payload: Vec::new(),
            },
        };
        let simulation = Simulation {
            chaincode_id: ChaincodeId {
                name: lifecycle::NAMESPACE.into(),
                version: lifecycle::SYSCC_VERSION.into(),
                path: String::new(),
            },
            rwset,
            response,
            event: None,
        };
        self.respond(parsed, &simulation)
            .unwrap_or_else(|e| status(500, e.0))
    }

    fn channelless(&self, parsed: &ParsedProposal, creator: &Identity) -> ProposalResponse {
        if parsed.chaincode_name != lifecycle::NAMESPACE {
            return status(
                500,
                format!(
                    "chaincode {} cannot be invoked without a channel",
                    parsed.chaincode_name
                ),
            );
        }
        if let Err(denied) = admin_only(creator, parsed) {
            return status(500, denied);
        }
        let result = lifecycle::invoke(self.host.as_ref(), "", &parsed.input.args, None);
        self.lifecycle_response(parsed, result, Default::default())
    }

    fn lifecycle_on_channel(
        &self,
        parsed: &ParsedProposal,
        creator: &Identity,
        channel: &str,
    ) -> ProposalResponse {
        let function = parsed.input.args.first().map(Vec::as_slice);
        if matches!(
            function,
            Some(b"ApproveChaincodeDefinitionForMyOrg" | b"QueryApprovedChaincodeDefinition")
        ) && let Err(denied) = admin_only(creator, parsed)
        {
            return status(500, denied);
        }
        let snapshot = match self.state.snapshot(channel) {
            Ok(snapshot) => snapshot,
            Err(e) => return status(500, format!("error in simulation: {e}")),
        };
        let mut sim = TxSimulator::new(snapshot, parsed.channel_header.tx_id.clone());
        let result = lifecycle::invoke(
            self.host.as_ref(),
            channel,
            &parsed.input.args,
            Some(&mut sim),
        );
        self.lifecycle_response(parsed, result, sim.read_write_set())
    }
}

/// The MSP id a serialized identity claims (for error texts).
fn creator_msp(creator: &[u8]) -> String {
    cchost_proto::msp::SerializedIdentity::decode(creator)
        .map(|id| id.mspid)
        .unwrap_or_default()
}

/// `_lifecycle`'s org-local functions need an admin of the node's organisation.
fn admin_only(creator: &Identity, parsed: &ParsedProposal) -> Result<(), String> {
    if creator.has_role(Role::Admin) {
        return Ok(());
    }
    let function = parsed
        .input
        .args
        .first()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .unwrap_or_default();
    Err(format!(
        "Failed to authorize invocation due to failed ACL check: {function} needs an admin of \
         {}, the creator is not one",
        creator.msp_id()
    ))
}

/// Fabric's `CheckInvocation` for init-required chaincode, reading (and so recording) the
/// initialisation key.
fn check_invocation(
    sim: &mut TxSimulator,
    chaincode: &str,
    definition: &lifecycle::Definition,
    is_init: bool,
    txid: &str,
) -> Result<(), ExecuteError> {
    let invalid = |reason: String| ExecuteError::InvalidInvocation {
        txid: txid.to_owned(),
        reason,
    };
    if !definition.init_required {
        if is_init {
            return Err(invalid(format!(
                "chaincode '{chaincode}' does not require initialization but called as init"
            )));
        }
        return Ok(());
    }
    let initialized = sim
        .get_state(chaincode, INITIALIZED_KEY)
        .map_err(ExecuteError::Ledger)?;
    let current = initialized.as_deref() == Some(definition.version.as_bytes());
    match (is_init, current) {
        (true, true) => Err(invalid(format!(
            "chaincode '{chaincode}' is already initialized but called as init"
        ))),
        (false, false) => Err(invalid(format!(
            "chaincode '{chaincode}' has not been initialized for this version, must call as init first"
        ))),
        (true, false) => sim
            .put_state(
                chaincode,
                INITIALIZED_KEY,
                definition.version.as_bytes().to_vec(),
            )
            .map_err(|e: LedgerError| ExecuteError::Ledger(e)),
        (false, true) => Ok(()),
    }
}
