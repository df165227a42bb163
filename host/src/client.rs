//! A client of a cchost (or Fabric) peer, as the `peer` CLI is one: proposals to the
//! Endorser, transactions to Broadcast, blocks and commit waits from Deliver, `_lifecycle`
//! calls. The CLI's `chaincode`, `channel` and `events` commands are built on it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use cchost_proto::common::{ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader};
use cchost_proto::gateway::{
    CommitStatusRequest, EndorseRequest, EvaluateRequest, SignedCommitStatusRequest, SubmitRequest,
    gateway_client::GatewayClient,
};
use cchost_proto::lifecycle::{
    ApproveChaincodeDefinitionForMyOrgArgs, CommitChaincodeDefinitionArgs, InstallChaincodeArgs,
    InstallChaincodeResult, QueryChaincodeDefinitionArgs, QueryChaincodeDefinitionResult,
};
use cchost_proto::orderer::{
    SeekInfo, SeekNewest, SeekPosition, SeekSpecified,
    atomic_broadcast_client::AtomicBroadcastClient, seek_info, seek_position,
};
use cchost_proto::protos::{
    DeliverResponse, Proposal, ProposalResponse, TxValidationCode, deliver_client::DeliverClient,
    deliver_response, endorser_client::EndorserClient,
};
use prost::Message;

use crate::node::ClientProfile;
use crate::node::identities::load_msp;
use crate::proposal::{BuiltProposal, DevIdentity, ProposalBuilder, compute_txid};
use crate::transaction;

/// Parses the `peer` CLI's `-c` argument: `{"Args":[...]}` or `{"function":"f","Args":[...]}`
/// (keys in any case), into the invocation's arguments.
pub fn parse_ctor(ctor: &str) -> anyhow::Result<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(ctor).with_context(|| {
        format!(r#"chaincode argument error: -c must be JSON like '{{"Args":["fn","arg"]}}', got {ctor}"#)
    })?;
    let object = value
        .as_object()
        .context(r#"chaincode argument error: -c must be a JSON object like '{"Args":[...]}'"#)?;
    let mut function = None;
    let mut args = Vec::new();
    for (key, value) in object {
        match key.to_lowercase().as_str() {
            "function" => {
                function = Some(
                    value
                        .as_str()
                        .context("chaincode argument error: \"function\" must be a string")?
                        .to_owned(),
                );
            }
            "args" => {
                for arg in value
                    .as_array()
                    .context("chaincode argument error: \"Args\" must be an array of strings")?
                {
                    args.push(
                        arg.as_str()
                            .context(
                                "chaincode argument error: \"Args\" must be an array of strings",
                            )?
                            .to_owned(),
                    );
                }
            }
            other => bail!("chaincode argument error: unknown key {other:?} in -c"),
        }
    }
    if let Some(function) = function {
        args.insert(0, function);
    }
    Ok(args)
}

/// The protobuf text of a response, as Go's `prototext` prints it in the CLI's lines:
/// `status:200 message:"..." payload:"..."`, empty fields left out.
pub fn response_text(response: &cchost_proto::protos::Response) -> String {
    let mut parts = vec![format!("status:{}", response.status)];
    if !response.message.is_empty() {
        parts.push(format!("message:{}", go_quote(response.message.as_bytes())));
    }
    if !response.payload.is_empty() {
        parts.push(format!("payload:{}", go_quote(&response.payload)));
    }
    parts.join(" ")
}

fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(char::from(b)),
            other => out.push_str(&format!("\\{other:03o}")),
        }
    }
    out.push('"');
    out
}

/// A connection to a peer.
#[derive(Debug, Clone)]
pub struct Client {
    channel: tonic::transport::Channel,
    /// What it connected with.
    pub profile: ClientProfile,
}

/// A transaction submitted through the Gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// Its id.
    pub txid: String,
    /// The chaincode's response in the endorsement.
    pub result: cchost_proto::protos::Response,
    /// Its commit status, when waited for.
    pub status: Option<Committed>,
}

/// A transaction's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Its id.
    pub txid: String,
    /// Its validation code.
    pub code: TxValidationCode,
    /// Its block.
    pub block: u64,
}

impl Client {
    /// Connects to the peer of `profile`.
    pub async fn connect(profile: ClientProfile) -> anyhow::Result<Self> {
        let channel = Self::endpoint(&profile)?.connect().await.with_context(|| {
            format!(
                "cannot reach the peer at {}: is the node running (cchost node start)?",
                profile.address
            )
        })?;
        Ok(Self { channel, profile })
    }

    /// A client of the peer of `profile` that connects at its first call (and again
    /// after the connection breaks).
    pub fn connect_lazy(profile: ClientProfile) -> anyhow::Result<Self> {
        let channel = Self::endpoint(&profile)?.connect_lazy();
        Ok(Self { channel, profile })
    }

    fn endpoint(profile: &ClientProfile) -> anyhow::Result<tonic::transport::Endpoint> {
        let scheme = if profile.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        let mut endpoint =
            tonic::transport::Endpoint::from_shared(format!("{scheme}://{}", profile.address))?
                .connect_timeout(Duration::from_secs(3))
                .tcp_nodelay(true);
        if let Some(ca) = &profile.tls_ca {
            let read = |path: &std::path::Path| {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))
            };
            let mut tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
            if let Some(name) = &profile.tls_server_name {
                tls = tls.domain_name(name.clone());
            }
            if let Some((cert, key)) = &profile.tls_client {
                tls = tls.identity(tonic::transport::Identity::from_pem(
                    read(cert)?,
                    read(key)?,
                ));
            }
            endpoint = endpoint.tls_config(tls)?;
        }
        Ok(endpoint)
    }

    /// The user identity of the profile.
    pub fn user(&self) -> anyhow::Result<DevIdentity> {
        Ok(load_msp(&self.profile.user_msp, &self.profile.msp_id)?)
    }

    /// The admin identity of the profile.
    pub fn admin(&self) -> anyhow::Result<DevIdentity> {
        Ok(load_msp(&self.profile.admin_msp, &self.profile.msp_id)?)
    }

    /// Sends a proposal to the endorser.
    pub async fn endorse(
        &self,
        proposal: &BuiltProposal,
    ) -> Result<ProposalResponse, tonic::Status> {
        EndorserClient::new(self.channel.clone())
            .process_proposal(proposal.signed_proposal.clone())
            .await
            .map(tonic::Response::into_inner)
    }

    /// Evaluates `args` on `chaincode` through the Gateway as `identity` (Fabric's
    /// `Contract.evaluateTransaction`); the chaincode's response.
    pub async fn evaluate(
        &self,
        identity: &DevIdentity,
        chaincode: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<cchost_proto::protos::Response, tonic::Status> {
        let built = ProposalBuilder::new(self.profile.channel.as_str(), chaincode)
            .args(args)
            .build(identity)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let response = GatewayClient::new(self.channel.clone())
            .evaluate(EvaluateRequest {
                transaction_id: built.txid.clone(),
                channel_id: self.profile.channel.clone(),
                proposed_transaction: Some(built.signed_proposal),
                target_organizations: Vec::new(),
            })
            .await?
            .into_inner();
        Ok(response.result.unwrap_or_default())
    }

    /// Endorses `args` on `chaincode` through the Gateway as `identity`, signs and
    /// submits the prepared transaction, and with `wait` waits for its commit status
    /// (Fabric's `Contract.submitAsync` + `getStatus`).
    pub async fn submit_transaction(
        &self,
        identity: &DevIdentity,
        chaincode: &str,
        args: Vec<Vec<u8>>,
        is_init: bool,
        wait: Option<Duration>,
    ) -> Result<Submitted, tonic::Status> {
        let built = ProposalBuilder::new(self.profile.channel.as_str(), chaincode)
            .args(args)
            .init(is_init)
            .build(identity)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let mut gateway = GatewayClient::new(self.channel.clone());
        let endorsed = gateway
            .endorse(EndorseRequest {
                transaction_id: built.txid.clone(),
                channel_id: self.profile.channel.clone(),
                proposed_transaction: Some(built.signed_proposal),
                endorsing_organizations: Vec::new(),
            })
            .await?
            .into_inner();
        let mut envelope = endorsed.prepared_transaction.ok_or_else(|| {
            tonic::Status::internal("the gateway returned no prepared transaction")
        })?;
        let result = Payload::decode(envelope.payload.as_slice())
            .ok()
            .and_then(|p| transaction::response_of(&p))
            .unwrap_or_default();
        envelope.signature = identity.sign(&envelope.payload);
        gateway
            .submit(SubmitRequest {
                transaction_id: built.txid.clone(),
                channel_id: self.profile.channel.clone(),
                prepared_transaction: Some(envelope),
            })
            .await?;
        let status = match wait {
            None => None,
            Some(wait) => {
                let request = CommitStatusRequest {
                    channel_id: self.profile.channel.clone(),
                    transaction_id: built.txid.clone(),
                    identity: identity.creator(),
                }
                .encode_to_vec();
                let signature = identity.sign(&request);
                let status = tokio::time::timeout(
                    wait,
                    gateway.commit_status(SignedCommitStatusRequest { request, signature }),
                )
                .await
                .map_err(|_| {
                    tonic::Status::deadline_exceeded(format!(
                        "timed out after {wait:?} waiting for the commit of {}",
                        built.txid
                    ))
                })??
                .into_inner();
                Some(Committed {
                    txid: built.txid.clone(),
                    code: TxValidationCode::try_from(status.result)
                        .unwrap_or(TxValidationCode::InvalidOtherReason),
                    block: status.block_number,
                })
            }
        };
        Ok(Submitted {
            txid: built.txid,
            result,
            status,
        })
    }

    /// A signed request for blocks `start`..=`stop` (None: newest) of `channel`.
    fn seek(
        identity: &DevIdentity,
        channel: &str,
        start: seek_position::Type,
        stop: seek_position::Type,
    ) -> anyhow::Result<Envelope> {
        let nonce: [u8; 24] = rand::random();
        let creator = identity.creator();
        let header = Header {
            channel_header: ChannelHeader {
                r#type: HeaderType::DeliverSeekInfo as i32,
                channel_id: channel.to_owned(),
                tx_id: compute_txid(&nonce, &creator),
                timestamp: Some(crate::proposal::now()),
                ..ChannelHeader::default()
            }
            .encode_to_vec(),
            signature_header: SignatureHeader {
                creator,
                nonce: nonce.to_vec(),
            }
            .encode_to_vec(),
        };
        let payload = Payload {
            header: Some(header),
            data: SeekInfo {
                start: Some(SeekPosition {
                    r#type: Some(start),
                }),
                stop: Some(SeekPosition { r#type: Some(stop) }),
                behavior: seek_info::SeekBehavior::BlockUntilReady as i32,
                ..SeekInfo::default()
            }
            .encode_to_vec(),
        }
        .encode_to_vec();
        let signature = identity.sign(&payload);
        Ok(Envelope { payload, signature })
    }

    /// Deliver (`filtered`: DeliverFiltered) from `start` to `stop` on the profile's
    /// channel, as `identity`.
    pub async fn deliver(
        &self,
        identity: &DevIdentity,
        start: seek_position::Type,
        stop: seek_position::Type,
        filtered: bool,
    ) -> anyhow::Result<tonic::Streaming<DeliverResponse>> {
        let envelope = Self::seek(identity, &self.profile.channel, start, stop)?;
        let mut client = DeliverClient::new(self.channel.clone());
        let request = tokio_stream::once(envelope);
        Ok(if filtered {
            client.deliver_filtered(request).await?.into_inner()
        } else {
            client.deliver(request).await?.into_inner()
        })
    }

    /// The newest block of the profile's channel.
    pub async fn newest_block(&self) -> anyhow::Result<cchost_proto::common::Block> {
        let identity = self.user()?;
        let mut stream = self
            .deliver(
                &identity,
                seek_position::Type::Newest(SeekNewest {}),
                seek_position::Type::Newest(SeekNewest {}),
                false,
            )
            .await?;
        while let Some(response) = stream.message().await? {
            match response.r#type {
                Some(deliver_response::Type::Block(block)) => return Ok(block),
                Some(deliver_response::Type::Status(status)) => {
                    bail!("deliver answered status {status}")
                }
                _ => {}
            }
        }
        bail!("deliver ended without a block")
    }

    /// Assembles `proposal` with `responses` into a transaction signed by `signer`,
    /// broadcasts it, and with `wait` waits for its commit.
    pub async fn submit(
        &self,
        proposal: &BuiltProposal,
        responses: &[ProposalResponse],
        signer: &DevIdentity,
        wait: Option<Duration>,
    ) -> anyhow::Result<Option<Committed>> {
        let decoded = Proposal::decode(proposal.signed_proposal.proposal_bytes.as_slice())?;
        let envelope = transaction::assemble(&decoded, responses, signer)?;
        // Listen before sending, from the newest block on: the commit cannot be missed.
        let mut blocks = match wait {
            Some(_) => Some(
                self.deliver(
                    signer,
                    seek_position::Type::Newest(SeekNewest {}),
                    seek_position::Type::Specified(SeekSpecified { number: u64::MAX }),
                    true,
                )
                .await?,
            ),
            None => None,
        };
        let mut broadcast = AtomicBroadcastClient::new(self.channel.clone())
            .broadcast(tokio_stream::once(envelope))
            .await?
            .into_inner();
        let answer = broadcast
            .message()
            .await?
            .context("the orderer closed the stream without an answer")?;
        if answer.status != cchost_proto::common::Status::Success as i32 {
            bail!(
                "error sending transaction for invoke: got unexpected status: {} -- {}",
                cchost_proto::common::Status::try_from(answer.status).map_or_else(
                    |_| answer.status.to_string(),
                    |s| s.as_str_name().to_owned()
                ),
                answer.info
            );
        }
        let (Some(wait), Some(blocks)) = (wait, blocks.as_mut()) else {
            return Ok(None);
        };
        let txid = proposal.txid.clone();
        let found = tokio::time::timeout(wait, async {
            while let Some(response) = blocks.message().await? {
                if let Some(deliver_response::Type::FilteredBlock(block)) = response.r#type {
                    for tx in &block.filtered_transactions {
                        if tx.txid == txid {
                            return Ok(Some(Committed {
                                txid: tx.txid.clone(),
                                code: TxValidationCode::try_from(tx.tx_validation_code)
                                    .unwrap_or(TxValidationCode::InvalidOtherReason),
                                block: block.number,
                            }));
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(None)
        })
        .await;
        match found {
            Ok(result) => result?
                .context("the deliver stream ended before the transaction committed")
                .map(Some),
            Err(_) => bail!("timed out waiting for txid on all peers"),
        }
    }

    /// Calls `_lifecycle` function `function` with `args` as the admin (channel-less when
    /// `channel` is false) and returns the endorsed response.
    pub async fn lifecycle(
        &self,
        function: &str,
        args: &impl Message,
        channel: bool,
    ) -> anyhow::Result<(BuiltProposal, ProposalResponse)> {
        let admin = self.admin()?;
        let built = ProposalBuilder::new(
            if channel {
                self.profile.channel.as_str()
            } else {
                ""
            },
            crate::lifecycle::NAMESPACE,
        )
        .args([function.as_bytes().to_vec(), args.encode_to_vec()])
        .build(&admin)?;
        let response = self.endorse(&built).await?;
        let status = response.response.as_ref().map_or(0, |r| r.status);
        if status != 200 {
            let message = response
                .response
                .as_ref()
                .map(|r| r.message.clone())
                .unwrap_or_default();
            bail!("proposal failed with status: {status} - {message}");
        }
        Ok((built, response))
    }
}

/// A chaincode definition to approve or commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionSpec {
    /// The chaincode name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its sequence.
    pub sequence: i64,
    /// Whether an init transaction must run first.
    pub init_required: bool,
    /// An encoded `ApplicationPolicy` (empty: the channel's default).
    pub validation_parameter: Vec<u8>,
    /// cchost's: a wasm chaincode's fuel per transaction (0: the node's).
    pub wasm_fuel: u64,
    /// cchost's: a wasm chaincode's memory per instance, bytes (0: the node's).
    pub wasm_memory: u64,
}

impl Client {
    /// Installs a package as the admin; its id and label.
    pub async fn install(&self, package: Vec<u8>) -> anyhow::Result<(String, String)> {
        let (_, response) = self
            .lifecycle(
                "InstallChaincode",
                &InstallChaincodeArgs {
                    chaincode_install_package: package,
                },
                false,
            )
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "chaincode install failed with status: {}",
                    e.to_string()
                        .trim_start_matches("proposal failed with status: ")
                )
            })?;
        let result = InstallChaincodeResult::decode(
            response.response.unwrap_or_default().payload.as_slice(),
        )?;
        Ok((result.package_id, result.label))
    }

    /// The committed sequence of `name` (0: not defined).
    pub async fn current_sequence(&self, name: &str) -> anyhow::Result<i64> {
        match self
            .lifecycle(
                "QueryChaincodeDefinition",
                &QueryChaincodeDefinitionArgs {
                    name: name.to_owned(),
                },
                true,
            )
            .await
        {
            Ok((_, response)) => Ok(QueryChaincodeDefinitionResult::decode(
                response.response.unwrap_or_default().payload.as_slice(),
            )?
            .sequence),
            Err(e)
                if e.to_string()
                    .starts_with("proposal failed with status: 404") =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Approves `definition` for the node's organisation, running `package_id`, and waits
    /// for the approval to commit; its block.
    pub async fn approve(
        &self,
        definition: &DefinitionSpec,
        package_id: &str,
        wait: Duration,
    ) -> anyhow::Result<Committed> {
        let args = ApproveChaincodeDefinitionForMyOrgArgs {
            sequence: definition.sequence,
            name: definition.name.clone(),
            version: definition.version.clone(),
            validation_parameter: definition.validation_parameter.clone(),
            init_required: definition.init_required,
            source: Some(crate::lifecycle::local_source(package_id)),
            cchost_wasm_fuel: definition.wasm_fuel,
            cchost_wasm_memory: definition.wasm_memory,
            ..Default::default()
        };
        self.lifecycle_transaction("ApproveChaincodeDefinitionForMyOrg", &args, wait)
            .await
    }

    /// Commits `definition` to the channel and waits for it.
    pub async fn commit(
        &self,
        definition: &DefinitionSpec,
        wait: Duration,
    ) -> anyhow::Result<Committed> {
        let args = CommitChaincodeDefinitionArgs {
            sequence: definition.sequence,
            name: definition.name.clone(),
            version: definition.version.clone(),
            validation_parameter: definition.validation_parameter.clone(),
            init_required: definition.init_required,
            cchost_wasm_fuel: definition.wasm_fuel,
            cchost_wasm_memory: definition.wasm_memory,
            ..Default::default()
        };
        self.lifecycle_transaction("CommitChaincodeDefinition", &args, wait)
            .await
    }

    async fn lifecycle_transaction(
        &self,
        function: &str,
        args: &impl Message,
        wait: Duration,
    ) -> anyhow::Result<Committed> {
        let (built, response) = self.lifecycle(function, args, true).await?;
        let admin = self.admin()?;
        let committed = self
            .submit(&built, &[response], &admin, Some(wait))
            .await?
            .context("the transaction was not waited for")?;
        if committed.code != TxValidationCode::Valid {
            bail!(
                "transaction invalidated with status ({})",
                committed.code.as_str_name()
            );
        }
        Ok(Committed {
            txid: built.txid,
            ..committed
        })
    }

    /// Installs `package` (if it is not yet), approves and commits the next definition
    /// of `name` running it; the definition committed.
    pub async fn deploy(
        &self,
        package: Vec<u8>,
        name: &str,
        version: &str,
        init_required: bool,
        validation_parameter: Vec<u8>,
        wait: Duration,
    ) -> anyhow::Result<(DefinitionSpec, String, Committed)> {
        let definition = DefinitionSpec {
            name: name.to_owned(),
            version: version.to_owned(),
            sequence: 0,
            init_required,
            validation_parameter,
            wasm_fuel: 0,
            wasm_memory: 0,
        };
        self.deploy_definition(package, definition, wait).await
    }

    /// [`Self::deploy`] of `definition` (its sequence is set to the next one).
    pub async fn deploy_definition(
        &self,
        package: Vec<u8>,
        mut definition: DefinitionSpec,
        wait: Duration,
    ) -> anyhow::Result<(DefinitionSpec, String, Committed)> {
        let parsed = crate::package::ChaincodePackage::parse(&package)?;
        let package_id = parsed.id().to_string();
        match self.install(package).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("already successfully installed") => {}
            Err(e) => return Err(e),
        }
        definition.sequence = self.current_sequence(&definition.name).await? + 1;
        self.approve(&definition, &package_id, wait).await?;
        let committed = self.commit(&definition, wait).await?;
        Ok((definition, package_id, committed))
    }
}

/// Transient data from the CLI's `--transient` JSON (string → base64).
pub fn parse_transient(text: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    use base64::Engine as _;
    let map: BTreeMap<String, String> = serde_json::from_str(text)
        .context("--transient must be a JSON object of base64 strings")?;
    map.into_iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .with_context(|| format!("--transient {k}: not base64"))?;
            Ok((k, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctor_takes_args_or_function_and_args_in_any_case() {
        assert_eq!(
            parse_ctor(r#"{"Args":["ReadAsset","asset1"]}"#).unwrap(),
            ["ReadAsset", "asset1"]
        );
        assert_eq!(
            parse_ctor(r#"{"function":"ReadAsset","args":["asset1"]}"#).unwrap(),
            ["ReadAsset", "asset1"]
        );
        assert_eq!(
            parse_ctor(r#"{"Args":[1]}"#).unwrap_err().to_string(),
            "chaincode argument error: \"Args\" must be an array of strings"
        );
    }

    #[test]
    fn responses_print_as_go_prototext() {
        let response = cchost_proto::protos::Response {
            status: 200,
            message: String::new(),
            payload: b"{\"ID\":\"a\"}\n\x01".to_vec(),
        };
        assert_eq!(
            response_text(&response),
            r#"status:200 payload:"{\"ID\":\"a\"}\n\001""#
        );
    }
}
