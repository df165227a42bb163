//! `_lifecycle`: chaincode definitions as Fabric 2.x keeps them, for one organisation.
//!
//! A committed definition lives in the channel's world state, namespace `_lifecycle`,
//! exactly where Fabric's `Serializer` puts it: `namespaces/metadata/<name>` holds a
//! `StateMetadata{datatype "ChaincodeDefinition", fields [Sequence, EndorsementInfo,
//! ValidationInfo, Collections]}` and `namespaces/fields/<name>/<Field>` a `StateData`.
//! Every transaction of a defined chaincode reads `namespaces/fields/<name>/Sequence`
//! (the endorser records it), so committing a new definition invalidates transactions
//! endorsed under the old one by MVCC.
//!
//! Functions are called as Fabric's peer CLI calls them: a proposal to chaincode
//! `_lifecycle` with arguments `[FunctionName, encoded <Function>Args]`, answered with
//! an encoded `<Function>Result`.
//!
//! One deviation, because private data is not supported: Fabric keeps an organisation's
//! approval in its implicit private collection; cchost writes it in public state, key
//! `cchost/approvals/<MSPID>/<name>#<sequence>` (an encoded
//! `ApproveChaincodeDefinitionForMyOrgArgs`), through a transaction as Fabric does.

use std::collections::BTreeMap;

use cchost_proto::common::ApplicationPolicy;
use cchost_proto::lifecycle::{
    ApproveChaincodeDefinitionForMyOrgArgs, ChaincodeEndorsementInfo, ChaincodeSource,
    ChaincodeValidationInfo, CheckCommitReadinessResult, CommitChaincodeDefinitionArgs,
    QueryApprovedChaincodeDefinitionArgs, QueryApprovedChaincodeDefinitionResult,
    QueryChaincodeDefinitionArgs, QueryChaincodeDefinitionResult, QueryChaincodeDefinitionsResult,
    StateData, StateMetadata, chaincode_source, query_chaincode_definitions_result, state_data,
};
use prost::Message;

use crate::ledger::policy;
use crate::ledger::validation::ChaincodeDefinition;
use crate::ledger::{LedgerError, ReadLimit, StateSnapshot, TxSimulator};

/// The namespace (and system chaincode name).
pub const NAMESPACE: &str = "_lifecycle";
/// The version system chaincode actions carry.
pub const SYSCC_VERSION: &str = "syscc";
/// The datatype of a stored definition.
const DEFINITION_TYPE: &str = "ChaincodeDefinition";
/// A definition's fields, in Fabric's struct order.
const FIELDS: [&str; 4] = [
    "Sequence",
    "EndorsementInfo",
    "ValidationInfo",
    "Collections",
];
/// cchost's field: a wasm chaincode's limits, stored only when set.
const WASM_FIELD: &str = "CchostWasmLimits";

/// Fabric's chaincode name rule.
fn valid_name(name: &str) -> bool {
    // ^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$
    !name.is_empty()
        && name
            .split(['-', '_'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Fabric's version rule: `^[A-Za-z0-9_.+-]+$`.
fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b))
}

/// The key of a definition's metadata.
pub fn metadata_key(name: &str) -> String {
    format!("namespaces/metadata/{name}")
}

/// The key of a definition's field.
pub fn field_key(name: &str, field: &str) -> String {
    format!("namespaces/fields/{name}/{field}")
}

/// The key every transaction of chaincode `name` reads.
pub fn sequence_key(name: &str) -> String {
    field_key(name, "Sequence")
}

/// The key of an organisation's approval.
fn approval_key(msp_id: &str, name: &str, sequence: i64) -> String {
    format!("cchost/approvals/{msp_id}/{name}#{sequence}")
}

/// A chaincode definition (Fabric's `ChaincodeDefinition` flattened).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Definition {
    /// Its sequence: 1 for the first definition, +1 for each later one.
    pub sequence: i64,
    /// The version (free text).
    pub version: String,
    /// Whether an init transaction must run first.
    pub init_required: bool,
    /// `escc` unless set.
    pub endorsement_plugin: String,
    /// `vscc` unless set.
    pub validation_plugin: String,
    /// An encoded `ApplicationPolicy` (the endorsement policy).
    pub validation_parameter: Vec<u8>,
    /// An encoded `CollectionConfigPackage` (empty: none).
    pub collections: Vec<u8>,
    /// cchost's: fuel per transaction of a wasm chaincode (0: the runtime's).
    pub wasm_fuel: u64,
    /// cchost's: memory per instance of a wasm chaincode, bytes (0: the runtime's).
    pub wasm_memory: u64,
}

/// `ApplicationPolicy{channel_config_policy_reference: "/Channel/Application/Endorsement"}`
/// encoded: the default endorsement policy.
pub fn default_validation_parameter() -> Vec<u8> {
    policy::default_endorsement().encode_to_vec()
}

impl Definition {
    /// Fills Fabric's defaults into empty fields.
    fn with_defaults(mut self) -> Self {
        if self.endorsement_plugin.is_empty() {
            self.endorsement_plugin = "escc".into();
        }
        if self.validation_plugin.is_empty() {
            self.validation_plugin = "vscc".into();
        }
        if self.validation_parameter.is_empty() {
            self.validation_parameter = default_validation_parameter();
        }
        self
    }

    /// What validation needs of it.
    pub fn for_validation(&self) -> Result<ChaincodeDefinition, LedgerError> {
        let endorsement = ApplicationPolicy::decode(self.validation_parameter.as_slice())
            .map_err(|e| LedgerError::Corrupt(format!("endorsement policy: {e}")))?;
        Ok(ChaincodeDefinition {
            version: self.version.clone(),
            endorsement,
        })
    }

    /// The encoded `StateData` of each field, in Fabric's order (then cchost's, if set).
    fn field_values(&self) -> Vec<(&'static str, Vec<u8>)> {
        let bytes = |b: Vec<u8>| {
            StateData {
                r#type: Some(state_data::Type::Bytes(b)),
            }
            .encode_to_vec()
        };
        [
            (
                FIELDS[0],
                StateData {
                    r#type: Some(state_data::Type::Int64(self.sequence)),
                }
                .encode_to_vec(),
            ),
            (
                FIELDS[1],
                bytes(
                    ChaincodeEndorsementInfo {
                        version: self.version.clone(),
                        init_required: self.init_required,
                        endorsement_plugin: self.endorsement_plugin.clone(),
                    }
                    .encode_to_vec(),
                ),
            ),
            (
                FIELDS[2],
                bytes(
                    ChaincodeValidationInfo {
                        validation_plugin: self.validation_plugin.clone(),
                        validation_parameter: self.validation_parameter.clone(),
                    }
                    .encode_to_vec(),
                ),
            ),
            (FIELDS[3], bytes(self.collections.clone())),
        ]
        .into_iter()
        .chain((self.wasm_fuel != 0 || self.wasm_memory != 0).then(|| {
            (
                WASM_FIELD,
                bytes(
                    cchost_proto::lifecycle::CchostWasmLimits {
                        fuel_per_tx: self.wasm_fuel,
                        max_memory: self.wasm_memory,
                    }
                    .encode_to_vec(),
                ),
            )
        }))
        .collect()
    }

    /// Which of Fabric's parameter groups differ (`EndorsementInfo`, `ValidationInfo`,
    /// `Collections`), as `checkcommitreadiness --inspect` names them.
    fn mismatches(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.version != other.version
            || self.init_required != other.init_required
            || self.endorsement_plugin != other.endorsement_plugin
        {
            out.push("EndorsementInfo".to_owned());
        }
        if self.validation_plugin != other.validation_plugin
            || self.validation_parameter != other.validation_parameter
        {
            out.push("ValidationInfo".to_owned());
        }
        if self.collections != other.collections {
            out.push("Collections".to_owned());
        }
        if (self.wasm_fuel, self.wasm_memory) != (other.wasm_fuel, other.wasm_memory) {
            out.push(WASM_FIELD.to_owned());
        }
        out
    }
}

/// Decodes a stored field.
fn field(value: Option<&[u8]>, key: &str) -> Result<Option<state_data::Type>, LedgerError> {
    let Some(value) = value else { return Ok(None) };
    Ok(StateData::decode(value)
        .map_err(|e| LedgerError::Corrupt(format!("{key}: {e}")))?
        .r#type)
}

/// Builds a definition from its stored fields, by name.
fn assemble(mut fields: BTreeMap<String, state_data::Type>) -> Result<Definition, LedgerError> {
    let mut take = |name: &str| fields.remove(name);
    let (sequence, endorsement, validation, collections, wasm) = (
        take(FIELDS[0]),
        take(FIELDS[1]),
        take(FIELDS[2]),
        take(FIELDS[3]),
        take(WASM_FIELD),
    );
    let bytes = |t: Option<state_data::Type>| match t {
        Some(state_data::Type::Bytes(b)) => b,
        _ => Vec::new(),
    };
    let sequence = match sequence {
        Some(state_data::Type::Int64(n)) => n,
        _ => 0,
    };
    let endorsement = ChaincodeEndorsementInfo::decode(bytes(endorsement).as_slice())
        .map_err(|e| LedgerError::Corrupt(format!("EndorsementInfo: {e}")))?;
    let validation = ChaincodeValidationInfo::decode(bytes(validation).as_slice())
        .map_err(|e| LedgerError::Corrupt(format!("ValidationInfo: {e}")))?;
    let wasm = cchost_proto::lifecycle::CchostWasmLimits::decode(bytes(wasm).as_slice())
        .map_err(|e| LedgerError::Corrupt(format!("{WASM_FIELD}: {e}")))?;
    Ok(Definition {
        sequence,
        version: endorsement.version,
        init_required: endorsement.init_required,
        endorsement_plugin: endorsement.endorsement_plugin,
        validation_plugin: validation.validation_plugin,
        validation_parameter: validation.validation_parameter,
        collections: bytes(collections),
        wasm_fuel: wasm.fuel_per_tx,
        wasm_memory: wasm.max_memory,
    })
}

/// The fields a stored metadata value lists.
fn metadata_fields(value: &[u8], key: &str) -> Result<Vec<String>, LedgerError> {
    Ok(StateMetadata::decode(value)
        .map_err(|e| LedgerError::Corrupt(format!("{key}: {e}")))?
        .fields)
}

/// The committed definition of `name` in `snapshot` (no reads recorded).
pub fn committed(
    snapshot: &dyn StateSnapshot,
    name: &str,
) -> Result<Option<Definition>, LedgerError> {
    let key = metadata_key(name);
    let Some(metadata) = snapshot.get(NAMESPACE, &key)? else {
        return Ok(None);
    };
    let mut fields = BTreeMap::new();
    for name_of_field in metadata_fields(&metadata.value, &key)? {
        let key = field_key(name, &name_of_field);
        let value = snapshot.get(NAMESPACE, &key)?.map(|v| v.value);
        if let Some(value) = field(value.as_deref(), &key)? {
            fields.insert(name_of_field, value);
        }
    }
    assemble(fields).map(Some)
}

/// Every committed definition in `snapshot`, by name.
pub fn all_committed(
    snapshot: &dyn StateSnapshot,
) -> Result<BTreeMap<String, Definition>, LedgerError> {
    let prefix = "namespaces/metadata/";
    let mut out = BTreeMap::new();
    let rows = snapshot.range(
        NAMESPACE,
        prefix,
        "namespaces/metadata0",
        ReadLimit::count(usize::MAX),
    )?;
    for (key, _) in &rows {
        if let Some(name) = key.strip_prefix(prefix)
            && let Some(definition) = committed(snapshot, name)?
        {
            out.insert(name.to_owned(), definition);
        }
    }
    Ok(out)
}

/// The current sequence of `name`, read through `sim` (the read is recorded).
pub fn read_sequence(sim: &mut TxSimulator, name: &str) -> Result<i64, LedgerError> {
    let key = sequence_key(name);
    let value = sim.get_state(NAMESPACE, &key)?;
    match field(value.as_deref(), &key)? {
        Some(state_data::Type::Int64(n)) => Ok(n),
        None => Ok(0),
        Some(_) => Err(LedgerError::Corrupt(format!(
            "expected key {key} to encode a value of type Int64"
        ))),
    }
}

/// The committed definition of `name`, read through `sim` as Fabric's `Deserialize`
/// reads it (metadata, then each field).
fn read_definition(sim: &mut TxSimulator, name: &str) -> Result<Option<Definition>, LedgerError> {
    let key = metadata_key(name);
    let Some(metadata) = sim.get_state(NAMESPACE, &key)? else {
        return Ok(None);
    };
    let mut fields = BTreeMap::new();
    for name_of_field in metadata_fields(&metadata, &key)? {
        let key = field_key(name, &name_of_field);
        let value = sim.get_state(NAMESPACE, &key)?;
        if let Some(value) = field(value.as_deref(), &key)? {
            fields.insert(name_of_field, value);
        }
    }
    assemble(fields).map(Some)
}

/// Writes `definition` of `name` through `sim` as Fabric's `Serializer.Serialize` does:
/// fields whose value changed, and the metadata if its shape changed.
fn write_definition(
    sim: &mut TxSimulator,
    name: &str,
    definition: &Definition,
) -> Result<(), LedgerError> {
    let metadata_key = metadata_key(name);
    let metadata = match sim.get_state(NAMESPACE, &metadata_key)? {
        Some(bytes) => StateMetadata::decode(bytes.as_slice())
            .map_err(|e| LedgerError::Corrupt(format!("{metadata_key}: {e}")))?,
        None => StateMetadata::default(),
    };
    let mut existing = BTreeMap::new();
    for field_name in &metadata.fields {
        let key = field_key(name, field_name);
        let value = sim.get_state(NAMESPACE, &key)?.unwrap_or_default();
        existing.insert(key, value);
    }
    let values = definition.field_values();
    let all_fields: Vec<String> = values.iter().map(|(f, _)| (*f).to_owned()).collect();
    for (field_name, value) in values {
        let key = field_key(name, field_name);
        if existing.get(&key) != Some(&value) {
            sim.put_state(NAMESPACE, &key, value)?;
        }
        existing.remove(&key);
    }
    if !existing.is_empty()
        || metadata.datatype != DEFINITION_TYPE
        || metadata.fields.len() != all_fields.len()
    {
        let metadata = StateMetadata {
            datatype: DEFINITION_TYPE.to_owned(),
            fields: all_fields,
        };
        sim.put_state(NAMESPACE, &metadata_key, metadata.encode_to_vec())?;
    }
    for key in existing.keys() {
        sim.del_state(NAMESPACE, key)?;
    }
    Ok(())
}

/// What a `_lifecycle` call needs of the node.
pub trait LifecycleHost {
    /// The node's organisation.
    fn msp_id(&self) -> &str;
    /// Installs a package; its id and label.
    fn install(&self, package: &[u8]) -> Result<(String, String), String>;
    /// Installed packages: (id, label).
    fn installed(&self) -> Result<Vec<(String, String)>, String>;
    /// Whether package `id` is installed (asked at every endorsement: cheap).
    fn is_installed(&self, id: &str) -> bool;
}

/// A failed call: Fabric's status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// 404 for an undefined namespace, 500 otherwise.
    pub status: i32,
    /// The message.
    pub message: String,
}

fn failed(function: &str, message: impl std::fmt::Display) -> CallError {
    CallError {
        status: 500,
        message: format!("failed to invoke backing implementation of '{function}': {message}"),
    }
}

/// Runs `_lifecycle` function `args[0]` with encoded arguments `args[1]` on channel
/// `channel` (empty for install and the installed-package queries) through `sim`.
/// Returns the encoded result.
pub fn invoke(
    host: &dyn LifecycleHost,
    channel: &str,
    args: &[Vec<u8>],
    sim: Option<&mut TxSimulator>,
) -> Result<Vec<u8>, CallError> {
    let Some(function) = args.first() else {
        return Err(CallError {
            status: 500,
            message: "lifecycle scc must be invoked with arguments".into(),
        });
    };
    let function = String::from_utf8_lossy(function).into_owned();
    if args.len() != 2 {
        return Err(CallError {
            status: 500,
            message: format!(
                "lifecycle scc operations require exactly two arguments but received {}",
                args.len()
            ),
        });
    }
    let input = args.get(1).map(Vec::as_slice).unwrap_or_default();
    let f = function.as_str();
    let decode_err =
        |e: prost::DecodeError| failed(f, format!("failed to decode input arg to '{f}': {e}"));
    match f {
        "InstallChaincode" => {
            let args =
                cchost_proto::lifecycle::InstallChaincodeArgs::decode(input).map_err(decode_err)?;
            let (package_id, label) = host
                .install(&args.chaincode_install_package)
                .map_err(|e| failed(f, e))?;
            Ok(
                cchost_proto::lifecycle::InstallChaincodeResult { package_id, label }
                    .encode_to_vec(),
            )
        }
        "QueryInstalledChaincodes" => {
            let installed = host.installed().map_err(|e| failed(f, e))?;
            Ok(cchost_proto::lifecycle::QueryInstalledChaincodesResult {
                installed_chaincodes: installed
                    .into_iter()
                    .map(|(package_id, label)| {
                        cchost_proto::lifecycle::query_installed_chaincodes_result::InstalledChaincode {
                            package_id,
                            label,
                            references: BTreeMap::new(),
                        }
                    })
                    .collect(),
            }
            .encode_to_vec())
        }
        _ => {
            let Some(sim) = sim else {
                return Err(failed(f, format!("function '{f}' needs a channel")));
            };
            if channel.is_empty() {
                return Err(failed(f, format!("function '{f}' needs a channel")));
            }
            channel_call(host, channel, f, input, sim)
        }
    }
}

fn check_name_and_version(f: &str, name: &str, version: &str) -> Result<(), CallError> {
    if ["cscc", "escc", "lscc", "qscc", "vscc", NAMESPACE].contains(&name) {
        return Err(failed(
            f,
            format!("chaincode name '{name}' is the name of a system chaincode"),
        ));
    }
    if !valid_name(name) {
        return Err(failed(
            f,
            format!(
                "invalid chaincode name '{name}'. Names can only consist of alphanumerics, '_', and '-' and can only begin with alphanumerics"
            ),
        ));
    }
    if !valid_version(version) {
        return Err(failed(
            f,
            format!(
                "invalid chaincode version '{version}'. Versions can only consist of alphanumerics, '_', '-', '+', and '.'"
            ),
        ));
    }
    Ok(())
}

fn channel_call(
    host: &dyn LifecycleHost,
    channel: &str,
    f: &str,
    input: &[u8],
    sim: &mut TxSimulator,
) -> Result<Vec<u8>, CallError> {
    let decode_err =
        |e: prost::DecodeError| failed(f, format!("failed to decode input arg to '{f}': {e}"));
    let ledger = |e: LedgerError| failed(f, e);
    match f {
        "ApproveChaincodeDefinitionForMyOrg" => {
            let args = ApproveChaincodeDefinitionForMyOrgArgs::decode(input).map_err(decode_err)?;
            check_name_and_version(f, &args.name, &args.version)?;
            let current = read_sequence(sim, &args.name).map_err(ledger)?;
            let requested = args.sequence;
            if current == requested && requested == 0 {
                return Err(failed(
                    f,
                    "requested sequence is 0, but first definable sequence number is 1",
                ));
            }
            if requested < current {
                return Err(failed(
                    f,
                    format!(
                        "currently defined sequence {current} is larger than requested sequence {requested}"
                    ),
                ));
            }
            if requested > current + 1 {
                return Err(failed(
                    f,
                    format!(
                        "requested sequence {requested} is larger than the next available sequence number {}",
                        current + 1
                    ),
                ));
            }
            let definition = definition_of(&args).with_defaults();
            let key = approval_key(host.msp_id(), &args.name, requested);
            let stored = ApproveChaincodeDefinitionForMyOrgArgs {
                endorsement_plugin: definition.endorsement_plugin.clone(),
                validation_plugin: definition.validation_plugin.clone(),
                validation_parameter: definition.validation_parameter.clone(),
                ..args.clone()
            }
            .encode_to_vec();
            if requested == current {
                let defined = read_definition(sim, &args.name)
                    .map_err(ledger)?
                    .ok_or_else(|| {
                        failed(f, format!("missing metadata for currently committed sequence number ({current})"))
                    })?;
                if !defined.mismatches(&definition).is_empty() {
                    return Err(failed(
                        f,
                        format!(
                            "attempted to redefine the current committed sequence ({current}) for namespace {} with different parameters",
                            args.name
                        ),
                    ));
                }
            }
            if sim.get_state(NAMESPACE, &key).map_err(ledger)?.as_deref() == Some(stored.as_slice())
            {
                return Err(failed(
                    f,
                    if requested == current {
                        format!(
                            "attempted to redefine the current committed sequence ({current}) for namespace {}",
                            args.name
                        )
                    } else {
                        format!(
                            "attempted to redefine uncommitted sequence ({requested}) for namespace {} with unchanged content",
                            args.name
                        )
                    },
                ));
            }
            sim.put_state(NAMESPACE, &key, stored).map_err(ledger)?;
            Ok(Vec::new())
        }
        "CheckCommitReadiness" | "CommitChaincodeDefinition" => {
            let args = CommitChaincodeDefinitionArgs::decode(input).map_err(decode_err)?;
            check_name_and_version(f, &args.name, &args.version)?;
            let current = read_sequence(sim, &args.name).map_err(ledger)?;
            if args.sequence != current + 1 {
                return Err(failed(
                    f,
                    format!(
                        "requested sequence is {}, but new definition must be sequence {}",
                        args.sequence,
                        current + 1
                    ),
                ));
            }
            let definition = Definition {
                sequence: args.sequence,
                version: args.version.clone(),
                init_required: args.init_required,
                endorsement_plugin: args.endorsement_plugin.clone(),
                validation_plugin: args.validation_plugin.clone(),
                validation_parameter: args.validation_parameter.clone(),
                collections: args.collections.clone(),
                wasm_fuel: args.cchost_wasm_fuel,
                wasm_memory: args.cchost_wasm_memory,
            }
            .with_defaults();
            let mismatches =
                approval_mismatches(host, sim, &args.name, &definition).map_err(ledger)?;
            let approved = mismatches.is_empty();
            let msp = host.msp_id().to_owned();
            if f == "CheckCommitReadiness" {
                return Ok(CheckCommitReadinessResult {
                    approvals: BTreeMap::from([(msp.clone(), approved)]),
                    mismatches: if approved {
                        BTreeMap::new()
                    } else {
                        BTreeMap::from([(
                            msp,
                            cchost_proto::lifecycle::check_commit_readiness_result::Mismatches {
                                items: mismatches,
                            },
                        )])
                    },
                }
                .encode_to_vec());
            }
            if !approved {
                return Err(failed(
                    f,
                    format!("chaincode definition not agreed to by this org ({msp})"),
                ));
            }
            write_definition(sim, &args.name, &definition).map_err(ledger)?;
            Ok(Vec::new())
        }
        "QueryChaincodeDefinition" => {
            let args = QueryChaincodeDefinitionArgs::decode(input).map_err(decode_err)?;
            let Some(definition) = read_definition(sim, &args.name).map_err(ledger)? else {
                return Err(CallError {
                    status: 404,
                    message: format!("namespace {} is not defined", args.name),
                });
            };
            let approved = approval_mismatches(host, sim, &args.name, &definition)
                .map_err(ledger)?
                .is_empty();
            Ok(QueryChaincodeDefinitionResult {
                sequence: definition.sequence,
                version: definition.version,
                endorsement_plugin: definition.endorsement_plugin,
                validation_plugin: definition.validation_plugin,
                validation_parameter: definition.validation_parameter,
                collections: definition.collections,
                init_required: definition.init_required,
                approvals: BTreeMap::from([(host.msp_id().to_owned(), approved)]),
                cchost_wasm_fuel: definition.wasm_fuel,
                cchost_wasm_memory: definition.wasm_memory,
            }
            .encode_to_vec())
        }
        "QueryChaincodeDefinitions" => {
            let snapshot_names = defined_names(sim).map_err(ledger)?;
            let mut definitions = Vec::new();
            for name in snapshot_names {
                if let Some(d) = read_definition(sim, &name).map_err(ledger)? {
                    definitions.push(query_chaincode_definitions_result::ChaincodeDefinition {
                        name,
                        sequence: d.sequence,
                        version: d.version,
                        endorsement_plugin: d.endorsement_plugin,
                        validation_plugin: d.validation_plugin,
                        validation_parameter: d.validation_parameter,
                        collections: d.collections,
                        init_required: d.init_required,
                        cchost_wasm_fuel: d.wasm_fuel,
                        cchost_wasm_memory: d.wasm_memory,
                    });
                }
            }
            Ok(QueryChaincodeDefinitionsResult {
                chaincode_definitions: definitions,
            }
            .encode_to_vec())
        }
        "QueryApprovedChaincodeDefinition" => {
            let args = QueryApprovedChaincodeDefinitionArgs::decode(input).map_err(decode_err)?;
            let sequence = if args.sequence == 0 {
                read_sequence(sim, &args.name).map_err(ledger)? + 1
            } else {
                args.sequence
            };
            let mut approval = approval(host, sim, &args.name, sequence).map_err(ledger)?;
            if approval.is_none() && args.sequence == 0 {
                approval = approval_at(host, sim, &args.name, sequence - 1).map_err(ledger)?;
            }
            let Some(a) = approval else {
                return Err(CallError {
                    status: 404,
                    message: format!(
                        "failed to invoke backing implementation of '{f}': could not fetch approved chaincode definition (name: '{}', sequence: '{sequence}') on channel '{channel}'",
                        args.name
                    ),
                });
            };
            Ok(QueryApprovedChaincodeDefinitionResult {
                sequence: a.sequence,
                version: a.version,
                endorsement_plugin: a.endorsement_plugin,
                validation_plugin: a.validation_plugin,
                validation_parameter: a.validation_parameter,
                collections: a.collections,
                init_required: a.init_required,
                source: a.source,
                cchost_wasm_fuel: a.cchost_wasm_fuel,
                cchost_wasm_memory: a.cchost_wasm_memory,
            }
            .encode_to_vec())
        }
        other => Err(CallError {
            status: 500,
            message: format!("unknown function '{other}' of chaincode '{NAMESPACE}'"),
        }),
    }
}

fn definition_of(args: &ApproveChaincodeDefinitionForMyOrgArgs) -> Definition {
    Definition {
        sequence: args.sequence,
        version: args.version.clone(),
        init_required: args.init_required,
        endorsement_plugin: args.endorsement_plugin.clone(),
        validation_plugin: args.validation_plugin.clone(),
        validation_parameter: args.validation_parameter.clone(),
        collections: args.collections.clone(),
        wasm_fuel: args.cchost_wasm_fuel,
        wasm_memory: args.cchost_wasm_memory,
    }
}

fn approval_at(
    host: &dyn LifecycleHost,
    sim: &mut TxSimulator,
    name: &str,
    sequence: i64,
) -> Result<Option<ApproveChaincodeDefinitionForMyOrgArgs>, LedgerError> {
    if sequence < 1 {
        return Ok(None);
    }
    approval(host, sim, name, sequence)
}

fn approval(
    host: &dyn LifecycleHost,
    sim: &mut TxSimulator,
    name: &str,
    sequence: i64,
) -> Result<Option<ApproveChaincodeDefinitionForMyOrgArgs>, LedgerError> {
    let key = approval_key(host.msp_id(), name, sequence);
    sim.get_state(NAMESPACE, &key)?
        .map(|bytes| {
            ApproveChaincodeDefinitionForMyOrgArgs::decode(bytes.as_slice())
                .map_err(|e| LedgerError::Corrupt(format!("{key}: {e}")))
        })
        .transpose()
}

/// What differs between this org's approval of `definition`'s sequence and it (all
/// three groups when there is no approval).
fn approval_mismatches(
    host: &dyn LifecycleHost,
    sim: &mut TxSimulator,
    name: &str,
    definition: &Definition,
) -> Result<Vec<String>, LedgerError> {
    Ok(match approval(host, sim, name, definition.sequence)? {
        Some(approved) => definition_of(&approved).mismatches(definition),
        None => vec![
            "EndorsementInfo".to_owned(),
            "ValidationInfo".to_owned(),
            "Collections".to_owned(),
        ],
    })
}

/// The package this org approved for `name` at `sequence` (empty when none).
pub fn approved_package(
    snapshot: &dyn StateSnapshot,
    msp_id: &str,
    name: &str,
    sequence: i64,
) -> Result<Option<String>, LedgerError> {
    let key = approval_key(msp_id, name, sequence);
    let Some(value) = snapshot.get(NAMESPACE, &key)? else {
        return Ok(None);
    };
    let approval = ApproveChaincodeDefinitionForMyOrgArgs::decode(value.value.as_slice())
        .map_err(|e| LedgerError::Corrupt(format!("{key}: {e}")))?;
    Ok(match approval.source.and_then(|s| s.r#type) {
        Some(chaincode_source::Type::LocalPackage(local)) if !local.package_id.is_empty() => {
            Some(local.package_id)
        }
        _ => None,
    })
}

/// Names with a committed definition, by a range read of the metadata keys (recorded).
fn defined_names(sim: &mut TxSimulator) -> Result<Vec<String>, LedgerError> {
    let prefix = "namespaces/metadata/";
    let rows = sim.range(
        NAMESPACE,
        prefix,
        "namespaces/metadata0",
        ReadLimit::count(usize::MAX),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, _)| key.strip_prefix(prefix).map(str::to_owned))
        .collect())
}

/// A `ChaincodeSource` naming a local package.
pub fn local_source(package_id: &str) -> ChaincodeSource {
    ChaincodeSource {
        r#type: Some(if package_id.is_empty() {
            chaincode_source::Type::Unavailable(chaincode_source::Unavailable {})
        } else {
            chaincode_source::Type::LocalPackage(chaincode_source::Local {
                package_id: package_id.to_owned(),
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_follow_fabrics_rules() {
        for ok in ["basic", "asset-transfer", "a_b-c1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-basic", "basic-", "a--b", "a.b", "a b"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_version("1.0+build_2-x"));
        assert!(!valid_version("1 0"));
        assert!(!valid_version(""));
    }

    /// `definition` of `name` written over `state`, committed as block `block`; the
    /// writes (key, deleted) it made.
    fn define(
        state: &crate::ledger::RedbStore,
        name: &str,
        definition: &Definition,
        block: u64,
    ) -> Vec<(String, bool)> {
        use crate::ledger::{CommitTx, Height, StateStore};
        let mut sim = TxSimulator::new(state.snapshot("ch").unwrap(), format!("tx{block}"));
        write_definition(&mut sim, name, definition).unwrap();
        let rwset = sim.read_write_set();
        let writes = rwset
            .ns_rwset
            .iter()
            .flat_map(|ns| {
                cchost_proto::kvrwset::KvrwSet::decode(ns.rwset.as_slice())
                    .unwrap()
                    .writes
                    .into_iter()
                    .map(|w| (w.key, w.is_delete))
            })
            .collect();
        state
            .commit(
                "ch",
                &[CommitTx {
                    height: Height::new(block, 0),
                    tx_id: format!("tx{block}"),
                    timestamp: prost_types::Timestamp::default(),
                    rwset,
                }],
            )
            .unwrap();
        writes
    }

    #[test]
    fn wasm_limits_are_a_fifth_field_only_while_set_and_fabrics_four_stay_as_fabric_writes_them() {
        use crate::ledger::StateStore;
        let state = crate::ledger::RedbStore::in_memory().unwrap();
        state.create_channel("ch").unwrap();
        let plain = Definition {
            sequence: 1,
            version: "1.0".into(),
            ..Definition::default()
        }
        .with_defaults();
        let key = |f: &str| (field_key("cc", f), false);
        assert_eq!(
            define(&state, "cc", &plain, 1),
            [
                key("Collections"),
                key("EndorsementInfo"),
                key("Sequence"),
                key("ValidationInfo"),
                (metadata_key("cc"), false),
            ]
        );
        let limited = Definition {
            sequence: 2,
            wasm_fuel: 1000,
            ..plain.clone()
        };
        // Only what changed: the sequence, the new field, the metadata's field list.
        assert_eq!(
            define(&state, "cc", &limited, 2),
            [
                key("CchostWasmLimits"),
                key("Sequence"),
                (metadata_key("cc"), false)
            ]
        );
        let snapshot = state.snapshot("ch").unwrap();
        assert_eq!(committed(snapshot.as_ref(), "cc").unwrap(), Some(limited));
        drop(snapshot);
        let lifted = Definition {
            sequence: 3,
            ..plain.clone()
        };
        assert_eq!(
            define(&state, "cc", &lifted, 3),
            [
                (field_key("cc", "CchostWasmLimits"), true),
                key("Sequence"),
                (metadata_key("cc"), false),
            ]
        );
        let snapshot = state.snapshot("ch").unwrap();
        let metadata = snapshot
            .get(NAMESPACE, &metadata_key("cc"))
            .unwrap()
            .unwrap();
        assert_eq!(
            StateMetadata::decode(metadata.value.as_slice()).unwrap(),
            StateMetadata {
                datatype: "ChaincodeDefinition".into(),
                fields: FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            }
        );
        assert_eq!(committed(snapshot.as_ref(), "cc").unwrap(), Some(lifted));
    }

    #[test]
    fn the_default_validation_parameter_is_fabrics_bytes() {
        use base64::Engine as _;
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(default_validation_parameter()),
            "EiAvQ2hhbm5lbC9BcHBsaWNhdGlvbi9FbmRvcnNlbWVudA=="
        );
    }
}
