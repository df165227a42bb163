//! Making blocks as Fabric's orderer makes them, and a channel's genesis block.
//!
//! [`make_block`] puts envelopes in block `number` after `previous_hash`: data hash over
//! the envelopes, the five metadata slots, SIGNATURES signed by the ordering identity
//! over `value ‖ signature_header ‖ header bytes` (`orderer/common/multichannel/
//! blockwriter.go`). [`genesis_block`] makes block 0 of a channel from a [`GenesisConfig`]:
//! one unsigned CONFIG envelope holding the configuration tree `configtxgen` writes
//! (`/Channel`, `/Channel/Application` with each organisation's MSP and policies,
//! `/Channel/Orderer` with the batch settings). [`read_genesis`] reads back what the
//! ledger and the orderer need from such a block, Fabric's or ours.

use std::collections::BTreeMap;
use std::time::Duration;

use cchost_proto::common::{
    BlockDataHashingStructure, Capabilities, Capability, ChannelHeader, Config, ConfigEnvelope,
    ConfigGroup, ConfigPolicy, ConfigValue, Envelope, HashingAlgorithm, Header, HeaderType,
    ImplicitMetaPolicy, LastConfig, Metadata, MetadataSignature, OrdererBlockMetadata, Payload,
    Policy, SignatureHeader, SignaturePolicyEnvelope, implicit_meta_policy,
};
use cchost_proto::msp::{
    FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig,
};
use cchost_proto::orderer::{BatchSize, BatchTimeout, ConsensusType};
use prost::Message;

use super::blockfile::{self, StoredBlock};
use super::policy::{self, ChannelPolicies};
use crate::msp::{Msp, MspError, MspManager};
use crate::proposal::{DevIdentity, compute_txid};
use cchost_proto::common::policy::PolicyType;

/// Metadata slot of the orderer's signatures.
pub const SIGNATURES: usize = 0;
/// Metadata slot of the last configuration block's number (deprecated, still written).
pub const LAST_CONFIG: usize = 1;
/// How many metadata slots a block has.
pub const METADATA_SLOTS: usize = 5;

/// Why a genesis block cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A part of the block or its configuration does not decode or is missing.
    #[error("genesis block: {0}")]
    Malformed(String),
    /// A policy does not parse.
    #[error("genesis block: {0}")]
    Policy(#[from] policy::PolicyError),
    /// An MSP's certificates do not parse.
    #[error("genesis block: {0}")]
    Msp(#[from] MspError),
}

/// Sets metadata slot `slot`, adding empty slots before it as needed.
pub(crate) fn set_slot(metadata: &mut Vec<Vec<u8>>, slot: usize, value: Vec<u8>) {
    if metadata.len() <= slot {
        metadata.resize(slot + 1, Vec::new());
    }
    if let Some(entry) = metadata.get_mut(slot) {
        *entry = value;
    }
}

/// Block `number` holding `envelopes`, after the block whose header hash is
/// `previous_hash`, signed by `signer` as the ordering service signs.
pub fn make_block(
    number: u64,
    previous_hash: &[u8],
    envelopes: Vec<Vec<u8>>,
    last_config: u64,
    signer: &DevIdentity,
) -> StoredBlock {
    let mut block = StoredBlock {
        number,
        data_hash: blockfile::data_hash(&envelopes).to_vec(),
        previous_hash: previous_hash.to_vec(),
        data: envelopes,
        metadata: vec![Vec::new(); METADATA_SLOTS],
    };
    let value = OrdererBlockMetadata {
        last_config: Some(LastConfig { index: last_config }),
        consenter_metadata: Vec::new(),
    }
    .encode_to_vec();
    let nonce: [u8; 24] = rand::random();
    let signature_header = SignatureHeader {
        creator: signer.creator(),
        nonce: nonce.to_vec(),
    }
    .encode_to_vec();
    let header = blockfile::header_bytes(number, &block.previous_hash, &block.data_hash);
    let signature = signer.sign(&[value.as_slice(), &signature_header, &header].concat());
    set_slot(
        &mut block.metadata,
        SIGNATURES,
        Metadata {
            value,
            signatures: vec![MetadataSignature {
                signature_header,
                signature,
                identifier_header: Vec::new(),
            }],
        }
        .encode_to_vec(),
    );
    set_slot(
        &mut block.metadata,
        LAST_CONFIG,
        Metadata {
            value: LastConfig { index: last_config }.encode_to_vec(),
            signatures: Vec::new(),
        }
        .encode_to_vec(),
    );
    block
}

/// One organisation of a channel.
#[derive(Debug, Clone)]
pub struct OrgConfig {
    /// Its MSP id, e.g. `Org1MSP`.
    pub msp_id: String,
    /// Its root CA certificates (PEM).
    pub root_certs: Vec<String>,
    /// Its `Endorsement` policy, e.g. `OR('Org1MSP.member')`.
    pub endorsement: String,
}

/// Fabric's orderer batch settings (`Orderer.BatchSize`, `Orderer.BatchTimeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// `MaxMessageCount`: transactions per block, at most.
    pub max_message_count: u32,
    /// `AbsoluteMaxBytes`: no transaction may be larger.
    pub absolute_max_bytes: u32,
    /// `PreferredMaxBytes`: a block is cut once its transactions reach this size.
    pub preferred_max_bytes: u32,
    /// `BatchTimeout`: how long the first transaction of a block waits for more.
    pub timeout: Duration,
}

impl Default for BatchConfig {
    /// Fabric's `configtx.yaml` defaults: 500 messages, 10 MB, 2 MB, 2 s.
    fn default() -> Self {
        Self {
            max_message_count: 500,
            absolute_max_bytes: 10 * 1024 * 1024,
            preferred_max_bytes: 2 * 1024 * 1024,
            timeout: Duration::from_secs(2),
        }
    }
}

/// What a channel's genesis block says.
#[derive(Debug, Clone)]
pub struct GenesisConfig {
    /// The channel.
    pub channel: String,
    /// The application organisations.
    pub orgs: Vec<OrgConfig>,
    /// The orderer's batch settings.
    pub batch: BatchConfig,
}

fn value(message: &impl Message) -> ConfigValue {
    ConfigValue {
        version: 0,
        value: message.encode_to_vec(),
        mod_policy: "Admins".into(),
    }
}

fn implicit(sub_policy: &str, rule: implicit_meta_policy::Rule) -> ConfigPolicy {
    ConfigPolicy {
        version: 0,
        policy: Some(Policy {
            r#type: PolicyType::ImplicitMeta as i32,
            value: ImplicitMetaPolicy {
                sub_policy: sub_policy.into(),
                rule: rule as i32,
            }
            .encode_to_vec(),
        }),
        mod_policy: "Admins".into(),
    }
}

fn signature(envelope: SignaturePolicyEnvelope) -> ConfigPolicy {
    ConfigPolicy {
        version: 0,
        policy: Some(Policy {
            r#type: PolicyType::Signature as i32,
            value: envelope.encode_to_vec(),
        }),
        mod_policy: "Admins".into(),
    }
}

fn capabilities(name: &str) -> ConfigValue {
    value(&Capabilities {
        capabilities: BTreeMap::from([(name.to_owned(), Capability {})]),
    })
}

fn standard_policies() -> BTreeMap<String, ConfigPolicy> {
    use implicit_meta_policy::Rule;
    BTreeMap::from([
        ("Readers".into(), implicit("Readers", Rule::Any)),
        ("Writers".into(), implicit("Writers", Rule::Any)),
        ("Admins".into(), implicit("Admins", Rule::Majority)),
    ])
}

fn org_group(org: &OrgConfig) -> Result<ConfigGroup, ConfigError> {
    let ou = |name: &str| {
        Some(FabricOuIdentifier {
            certificate: Vec::new(),
            organizational_unit_identifier: name.into(),
        })
    };
    let msp = FabricMspConfig {
        name: org.msp_id.clone(),
        root_certs: org
            .root_certs
            .iter()
            .map(|c| c.clone().into_bytes())
            .collect(),
        crypto_config: Some(FabricCryptoConfig {
            signature_hash_family: "SHA2".into(),
            identity_identifier_hash_function: "SHA256".into(),
        }),
        fabric_node_ous: Some(FabricNodeOUs {
            enable: true,
            client_ou_identifier: ou("client"),
            peer_ou_identifier: ou("peer"),
            admin_ou_identifier: ou("admin"),
            orderer_ou_identifier: ou("orderer"),
        }),
        ..Default::default()
    };
    let member = format!("OR('{}.member')", org.msp_id);
    let admin = format!("OR('{}.admin')", org.msp_id);
    Ok(ConfigGroup {
        version: 0,
        groups: BTreeMap::new(),
        values: BTreeMap::from([(
            "MSP".into(),
            value(&MspConfig {
                r#type: 0,
                config: msp.encode_to_vec(),
            }),
        )]),
        policies: BTreeMap::from([
            ("Readers".into(), signature(policy::parse(&member)?)),
            ("Writers".into(), signature(policy::parse(&member)?)),
            ("Admins".into(), signature(policy::parse(&admin)?)),
            (
                "Endorsement".into(),
                signature(policy::parse(&org.endorsement)?),
            ),
        ]),
        mod_policy: "Admins".into(),
    })
}

/// Block 0 of a channel configured by `config`, as `configtxgen` writes it.
pub fn genesis_block(config: &GenesisConfig) -> Result<StoredBlock, ConfigError> {
    use implicit_meta_policy::Rule;
    let mut application_policies = standard_policies();
    application_policies.insert(
        "Endorsement".into(),
        implicit("Endorsement", Rule::Majority),
    );
    application_policies.insert(
        "LifecycleEndorsement".into(),
        implicit("Endorsement", Rule::Majority),
    );
    let orgs = config
        .orgs
        .iter()
        .map(|org| {
            Ok((
                org.msp_id.trim_end_matches("MSP").to_owned(),
                org_group(org)?,
            ))
        })
        .collect::<Result<BTreeMap<_, _>, ConfigError>>()?;
    let application = ConfigGroup {
        version: 0,
        groups: orgs.clone(),
        values: BTreeMap::from([("Capabilities".into(), capabilities("V2_5"))]),
        policies: application_policies,
        mod_policy: "Admins".into(),
    };
    let batch = config.batch;
    let mut orderer_policies = standard_policies();
    orderer_policies.insert("BlockValidation".into(), implicit("Writers", Rule::Any));
    let orderer = ConfigGroup {
        version: 0,
        groups: orgs,
        values: BTreeMap::from([
            (
                "ConsensusType".into(),
                value(&ConsensusType {
                    r#type: "solo".into(),
                    metadata: Vec::new(),
                    state: 0,
                }),
            ),
            (
                "BatchSize".into(),
                value(&BatchSize {
                    max_message_count: batch.max_message_count,
                    absolute_max_bytes: batch.absolute_max_bytes,
                    preferred_max_bytes: batch.preferred_max_bytes,
                }),
            ),
            (
                "BatchTimeout".into(),
                value(&BatchTimeout {
                    timeout: format!("{}ms", batch.timeout.as_millis()),
                }),
            ),
            ("Capabilities".into(), capabilities("V2_0")),
        ]),
        policies: orderer_policies,
        mod_policy: "Admins".into(),
    };
    let channel_group = ConfigGroup {
        version: 0,
        groups: BTreeMap::from([
            ("Application".into(), application),
            ("Orderer".into(), orderer),
        ]),
        values: BTreeMap::from([
            (
                "HashingAlgorithm".into(),
                value(&HashingAlgorithm {
                    name: "SHA256".into(),
                }),
            ),
            (
                "BlockDataHashingStructure".into(),
                value(&BlockDataHashingStructure { width: u32::MAX }),
            ),
            ("Capabilities".into(), capabilities("V2_0")),
        ]),
        policies: standard_policies(),
        mod_policy: "Admins".into(),
    };
    let nonce: [u8; 24] = rand::random();
    let channel_header = ChannelHeader {
        r#type: HeaderType::Config as i32,
        version: 1,
        // configtxgen's genesis timestamps have no nanoseconds.
        timestamp: Some(prost_types::Timestamp {
            nanos: 0,
            ..crate::proposal::now()
        }),
        channel_id: config.channel.clone(),
        tx_id: compute_txid(&nonce, &[]),
        epoch: 0,
        extension: Vec::new(),
        tls_cert_hash: Vec::new(),
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec(),
            signature_header: SignatureHeader {
                creator: Vec::new(),
                nonce: nonce.to_vec(),
            }
            .encode_to_vec(),
        }),
        data: ConfigEnvelope {
            config: Some(Config {
                sequence: 0,
                channel_group: Some(channel_group),
            }),
            last_update: None,
        }
        .encode_to_vec(),
    };
    let envelope = Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    }
    .encode_to_vec();
    let data = vec![envelope];
    let mut metadata = vec![Vec::new(); METADATA_SLOTS];
    set_slot(
        &mut metadata,
        SIGNATURES,
        Metadata {
            value: OrdererBlockMetadata {
                last_config: Some(LastConfig { index: 0 }),
                consenter_metadata: Vec::new(),
            }
            .encode_to_vec(),
            signatures: Vec::new(),
        }
        .encode_to_vec(),
    );
    set_slot(
        &mut metadata,
        LAST_CONFIG,
        Metadata {
            value: LastConfig { index: 0 }.encode_to_vec(),
            signatures: Vec::new(),
        }
        .encode_to_vec(),
    );
    // A peer joining the channel marks the configuration transaction valid.
    set_slot(&mut metadata, blockfile::TRANSACTIONS_FILTER, vec![0]);
    Ok(StoredBlock {
        number: 0,
        data_hash: blockfile::data_hash(&data).to_vec(),
        previous_hash: Vec::new(),
        data,
        metadata,
    })
}

/// What a genesis block configures for the ledger and the orderer.
#[derive(Debug, Clone)]
pub struct ChannelGenesis {
    /// The channel.
    pub channel: String,
    /// The application organisations' MSPs.
    pub msps: MspManager,
    /// Their endorsement policies.
    pub policies: ChannelPolicies,
    /// The orderer's batch settings (Fabric's defaults where the block has none).
    pub batch: BatchConfig,
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, ConfigError> {
    M::decode(bytes).map_err(|e| ConfigError::Malformed(format!("{what}: {e}")))
}

/// Reads a genesis block's configuration.
pub fn read_genesis(block: &StoredBlock) -> Result<ChannelGenesis, ConfigError> {
    let envelope = block
        .data
        .first()
        .ok_or_else(|| ConfigError::Malformed("the block holds no transaction".into()))?;
    let envelope: Envelope = decode(envelope, "envelope")?;
    let payload: Payload = decode(&envelope.payload, "payload")?;
    let header = payload
        .header
        .ok_or_else(|| ConfigError::Malformed("no header".into()))?;
    let channel_header: ChannelHeader = decode(&header.channel_header, "channel header")?;
    if channel_header.r#type != HeaderType::Config as i32 {
        return Err(ConfigError::Malformed(format!(
            "the transaction is of type {}, not CONFIG",
            channel_header.r#type
        )));
    }
    let config: ConfigEnvelope = decode(&payload.data, "config envelope")?;
    let channel = config
        .config
        .and_then(|c| c.channel_group)
        .ok_or_else(|| ConfigError::Malformed("no channel group".into()))?;
    let application = channel
        .groups
        .get("Application")
        .ok_or_else(|| ConfigError::Malformed("no Application group".into()))?;
    let mut msps = Vec::new();
    let mut org_endorsement = BTreeMap::new();
    for (name, org) in &application.groups {
        let msp_value = org
            .values
            .get("MSP")
            .ok_or_else(|| ConfigError::Malformed(format!("organisation {name} has no MSP")))?;
        let msp_config: MspConfig = decode(&msp_value.value, "MSP")?;
        if msp_config.r#type != 0 {
            return Err(ConfigError::Malformed(format!(
                "organisation {name}: only X.509 (FABRIC) MSPs are supported"
            )));
        }
        let fabric: FabricMspConfig = decode(&msp_config.config, "FabricMSPConfig")?;
        let roots: Vec<String> = fabric
            .root_certs
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let root_refs: Vec<&str> = roots.iter().map(String::as_str).collect();
        msps.push(Msp::new(fabric.name.clone(), &root_refs)?);
        if let Some(endorsement) = org
            .policies
            .get("Endorsement")
            .and_then(|p| p.policy.as_ref())
        {
            if endorsement.r#type != PolicyType::Signature as i32 {
                return Err(ConfigError::Malformed(format!(
                    "organisation {name}: only signature Endorsement policies are supported"
                )));
            }
            org_endorsement.insert(
                fabric.name.clone(),
                decode::<SignaturePolicyEnvelope>(&endorsement.value, "Endorsement policy")?,
            );
        }
    }
    let mut batch = BatchConfig::default();
    if let Some(orderer) = channel.groups.get("Orderer") {
        if let Some(size) = orderer.values.get("BatchSize") {
            let size: BatchSize = decode(&size.value, "BatchSize")?;
            batch.max_message_count = size.max_message_count;
            batch.absolute_max_bytes = size.absolute_max_bytes;
            batch.preferred_max_bytes = size.preferred_max_bytes;
        }
        if let Some(timeout) = orderer.values.get("BatchTimeout") {
            let timeout: BatchTimeout = decode(&timeout.value, "BatchTimeout")?;
            batch.timeout =
                crate::runtime::ccaas::parse_go_duration(&timeout.timeout).ok_or_else(|| {
                    ConfigError::Malformed(format!(
                        "BatchTimeout {:?} is not a duration",
                        timeout.timeout
                    ))
                })?;
        }
    }
    Ok(ChannelGenesis {
        channel: channel_header.channel_id,
        msps: MspManager::new(msps),
        policies: ChannelPolicies { org_endorsement },
        batch,
    })
}
