//! `cchost node`, the `peer`-shaped client commands (`cchost chaincode invoke|query|
//! package|install|queryinstalled|approveformyorg|commit|querycommitted|deploy`,
//! `cchost channel getinfo`, `cchost events`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use cchost::client::{Client, Committed, parse_ctor, parse_transient, response_text};
use cchost::node::{ClientProfile, RunningNode, StartOptions};
use cchost::proposal::ProposalBuilder;
use cchost_proto::lifecycle::{
    QueryChaincodeDefinitionArgs, QueryChaincodeDefinitionResult, QueryChaincodeDefinitionsArgs,
    QueryChaincodeDefinitionsResult, QueryInstalledChaincodesArgs, QueryInstalledChaincodesResult,
};
use cchost_proto::orderer::{SeekNewest, SeekOldest, SeekSpecified, seek_position};
use cchost_proto::protos::{TxValidationCode, deliver_response};
use clap::{Args, Subcommand};
use prost::Message as _;

use cchost::packaging;

/// Where the client finds its node.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// The node's data directory (default: the node this user started last, from
    /// ~/.cchost/client.json).
    #[arg(long, env = "CCHOST_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

impl ClientArgs {
    fn profile(&self) -> anyhow::Result<ClientProfile> {
        let path = match &self.data_dir {
            Some(dir) => ClientProfile::file(dir),
            None => ClientProfile::last_started()
                .context("HOME is not set: name the node's data directory with --data-dir")?,
        };
        ClientProfile::read(&path)
    }

    async fn connect(&self, channel: Option<&str>) -> anyhow::Result<Client> {
        let mut profile = self.profile()?;
        if let Some(channel) = channel {
            profile.channel = channel.to_owned();
        }
        Client::connect(profile).await
    }
}

/// `cchost node ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Start a single-node peer: on first start, creates the data directory with
    /// core.toml, the organisation's CA and identities (Fabric's folder layout) and the
    /// channel; serves the Endorser, Deliver and Broadcast, the chaincode listener and
    /// the operations endpoints until SIGTERM or Ctrl-C.
    Start {
        /// The data directory.
        #[arg(long, env = "CCHOST_DATA_DIR", default_value = "cchost-data")]
        data_dir: PathBuf,
        /// Fabric's dev mode: chaincode you start yourself registers with the package id
        /// its definition names (approve with --package-id NAME:VERSION; nothing to
        /// install).
        #[arg(long = "peer-chaincodedev")]
        dev_mode: bool,
        /// NAME=DIR: an external builder (Fabric's chaincode.externalBuilders), tried in
        /// order before the built-in runtimes; DIR holds bin/detect and bin/build (e.g.
        /// written by `cchost builder install DIR`).
        #[arg(long = "external-builder", value_parser = crate::parse_builder)]
        external_builders: Vec<(String, PathBuf)>,
        #[command(flatten)]
        docker: Box<crate::DockerArgs>,
    },
}

/// The `peer chaincode` / `peer lifecycle chaincode` commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ChaincodeClientCommand {
    /// Endorse and submit a transaction (`peer chaincode invoke`).
    Invoke {
        #[command(flatten)]
        call: Call,
        /// Run as the chaincode's init transaction.
        #[arg(short = 'I', long = "isInit")]
        is_init: bool,
        /// Wait until the transaction is committed.
        #[arg(long = "waitForEvent")]
        wait_for_event: bool,
        /// How long to wait, e.g. 30s.
        #[arg(long = "waitForEventTimeout", default_value = "30s", value_parser = parse_duration)]
        wait_for_event_timeout: Duration,
    },
    /// Endorse a proposal and print its payload (`peer chaincode query`).
    Query {
        #[command(flatten)]
        call: Call,
    },
    /// Package a chaincode directory (a Rust crate for wasm, or a Node chaincode).
    Package {
        /// The package file to write.
        output: PathBuf,
        /// The chaincode directory.
        #[arg(long)]
        path: PathBuf,
        /// `wasm` (a Rust crate) or `node`.
        #[arg(long, default_value = "wasm", value_parser = ["wasm", "node"])]
        lang: String,
        /// The package label.
        #[arg(long)]
        label: String,
    },
    /// Install a package on the node (as its admin).
    Install {
        /// The package file.
        package: PathBuf,
    },
    /// List the packages installed on the node.
    Queryinstalled {
        /// `json` for JSON output.
        #[arg(short = 'O', long = "output")]
        output: Option<String>,
    },
    /// Approve a chaincode definition for the node's organisation.
    Approveformyorg {
        #[command(flatten)]
        definition: DefinitionArgs,
        /// The installed package the definition runs.
        #[arg(long = "package-id")]
        package_id: String,
    },
    /// Commit an approved chaincode definition to the channel.
    Commit {
        #[command(flatten)]
        definition: DefinitionArgs,
    },
    /// Show which organisations approved a definition (`peer lifecycle chaincode
    /// checkcommitreadiness`).
    Checkcommitreadiness {
        #[command(flatten)]
        definition: DefinitionArgs,
        /// Name the parameters that differ from this org's approval.
        #[arg(long)]
        inspect: bool,
    },
    /// Show this organisation's approved definition of a chaincode.
    Queryapproved {
        /// The channel.
        #[arg(short = 'C', long = "channelID")]
        channel: Option<String>,
        /// The chaincode.
        #[arg(short = 'n', long = "name")]
        name: String,
        /// The sequence (default: the next one if approved, else the current one).
        #[arg(long, default_value_t = 0)]
        sequence: i64,
    },
    /// Show committed chaincode definitions.
    Querycommitted {
        /// The channel.
        #[arg(short = 'C', long = "channelID")]
        channel: Option<String>,
        /// One chaincode (default: all).
        #[arg(short = 'n', long = "name")]
        name: Option<String>,
        /// `json` for JSON output.
        #[arg(short = 'O', long = "output")]
        output: Option<String>,
    },
    /// Package (if PATH is a directory), install, approve and commit in one step: the
    /// next sequence of NAME's definition, running this package.
    Deploy {
        /// A chaincode directory (Rust crate: wasm; package.json: node) or a package file.
        path: PathBuf,
        /// The chaincode name.
        #[arg(short = 'n', long = "name")]
        name: String,
        /// The definition's version.
        #[arg(short = 'v', long = "version", default_value = "1.0")]
        version: String,
        /// The channel.
        #[arg(short = 'C', long = "channelID")]
        channel: Option<String>,
        /// The endorsement policy, e.g. "OR('Org1MSP.peer')" (default: the channel's
        /// MAJORITY Endorsement).
        #[arg(long = "signature-policy")]
        signature_policy: Option<String>,
        /// Whether an init transaction must run first.
        #[arg(long = "init-required")]
        init_required: bool,
        #[command(flatten)]
        wasm: WasmLimitArgs,
    },
}

/// `-C -n -c --transient`.
#[derive(Debug, Clone, Args)]
pub(crate) struct Call {
    /// The channel.
    #[arg(short = 'C', long = "channelID")]
    channel: Option<String>,
    /// The chaincode.
    #[arg(short = 'n', long = "name")]
    name: String,
    /// The arguments: '{"Args":["fn","arg"]}' or '{"function":"fn","Args":["arg"]}'.
    #[arg(short = 'c', long = "ctor")]
    ctor: String,
    /// Transient data: a JSON object of base64 values.
    #[arg(long)]
    transient: Option<String>,
}

/// A definition's flags.
#[derive(Debug, Clone, Args)]
pub(crate) struct DefinitionArgs {
    /// The channel.
    #[arg(short = 'C', long = "channelID")]
    channel: Option<String>,
    /// The chaincode name.
    #[arg(short = 'n', long = "name")]
    name: String,
    /// The version.
    #[arg(short = 'v', long = "version")]
    version: String,
    /// The sequence: 1 for the first definition, +1 for each later one.
    #[arg(long)]
    sequence: i64,
    /// Whether an init transaction must run first.
    #[arg(long = "init-required")]
    init_required: bool,
    /// The endorsement policy, e.g. "OR('Org1MSP.peer')".
    #[arg(long = "signature-policy")]
    signature_policy: Option<String>,
    /// How long to wait for the commit, e.g. 30s.
    #[arg(long = "waitForEventTimeout", default_value = "30s", value_parser = parse_duration)]
    wait_for_event_timeout: Duration,
    #[command(flatten)]
    wasm: WasmLimitArgs,
}

/// cchost's definition parameters for wasm chaincode.
#[derive(Debug, Clone, Args)]
pub(crate) struct WasmLimitArgs {
    /// Fuel per transaction of wasm chaincode (about one unit per instruction; default:
    /// the node's, 2,000,000,000).
    #[arg(long = "wasm-fuel", default_value_t = 0)]
    wasm_fuel: u64,
    /// Linear memory per instance of wasm chaincode, bytes (default and upper bound: the
    /// node's, 128 MiB).
    #[arg(long = "wasm-memory", default_value_t = 0)]
    wasm_memory: u64,
}

/// `cchost channel ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ChannelCommand {
    /// Print the channel's height and hashes (`peer channel getinfo`).
    Getinfo {
        /// The channel.
        #[arg(short = 'C', short_alias = 'c', long = "channelID")]
        channel: Option<String>,
    },
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    cchost::node::config::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 30s, 500ms)"))
}

/// `2026-11-24 18:30:00.123 UTC`: the `peer` CLI's log timestamp.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

fn log(logger: &str, function: &str, message: &str) {
    eprintln!(
        "{} 0001 INFO [{logger}] {function} -> {message}",
        timestamp()
    );
}

/// Runs `cchost node start` until SIGTERM or Ctrl-C.
pub(crate) async fn node(command: NodeCommand) -> anyhow::Result<()> {
    let NodeCommand::Start {
        data_dir,
        dev_mode,
        external_builders,
        docker,
    } = command;
    let node = RunningNode::start(
        &data_dir,
        StartOptions {
            docker: docker.config(),
            external_builders: external_builders
                .into_iter()
                .map(|(name, path)| cchost::runtime::external::ExternalBuilder {
                    name,
                    path,
                    propagate_environment: Vec::new(),
                })
                .collect(),
            write_home_profile: true,
            dev_mode,
            ..StartOptions::default()
        },
    )
    .await?;
    eprintln!(
        "cchost node: peer on {} (Endorser, Deliver, Broadcast), chaincode listener on {}{}",
        node.address,
        node.chaincode_address,
        node.operations_address
            .map(|a| format!(", operations on http://{a}"))
            .unwrap_or_default()
    );
    if dev_mode {
        eprintln!(
            "cchost node: dev mode: start chaincode with CORE_CHAINCODE_ID_NAME=<package id> \
             --peer.address {}",
            node.chaincode_address
        );
    }
    eprintln!(
        "cchost node: channel {} at height {}; data in {}; client profile {}",
        node.profile.channel,
        node.ledger.height(),
        node.profile.data_dir.display(),
        ClientProfile::file(&node.profile.data_dir).display()
    );
    eprintln!(
        "cchost node: next, deploy a chaincode: cchost chaincode deploy examples/asset-transfer -n basic"
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("cchost node: stopping");
    node.stop().await?;
    eprintln!("cchost node: stopped");
    Ok(())
}

fn wait_log(committed: &Committed, address: &str) {
    log(
        "chaincodeCmd",
        "ClientWait",
        &format!(
            "txid [{}] committed with status ({}) at {address}",
            committed.txid,
            committed.code.as_str_name()
        ),
    );
}

fn check_committed(committed: Option<Committed>, address: &str) -> anyhow::Result<()> {
    let committed = committed.context("the transaction was not waited for")?;
    if committed.code != TxValidationCode::Valid {
        bail!(
            "transaction invalidated with status ({})",
            committed.code.as_str_name()
        );
    }
    wait_log(&committed, address);
    Ok(())
}

impl DefinitionArgs {
    fn spec(&self) -> anyhow::Result<cchost::client::DefinitionSpec> {
        Ok(cchost::client::DefinitionSpec {
            name: self.name.clone(),
            version: self.version.clone(),
            sequence: self.sequence,
            init_required: self.init_required,
            validation_parameter: validation_parameter(self.signature_policy.as_deref())?,
            wasm_fuel: self.wasm.wasm_fuel,
            wasm_memory: self.wasm.wasm_memory,
        })
    }
}

fn validation_parameter(policy: Option<&str>) -> anyhow::Result<Vec<u8>> {
    Ok(match policy {
        Some(text) => cchost::ledger::policy::signature_policy(
            cchost::ledger::policy::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?,
        )
        .encode_to_vec(),
        None => Vec::new(),
    })
}

/// Runs a client `chaincode` command.
pub(crate) async fn chaincode(
    command: ChaincodeClientCommand,
    client: &ClientArgs,
) -> anyhow::Result<()> {
    match command {
        ChaincodeClientCommand::Invoke {
            call,
            is_init,
            wait_for_event,
            wait_for_event_timeout,
        } => {
            let client = client.connect(call.channel.as_deref()).await?;
            let user = client.user()?;
            let built = build(&client, &call, is_init, &user)?;
            let response = client
                .endorse(&built)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "error endorsing invoke: rpc error: code = {:?} desc = {} - proposal response: <nil>",
                        e.code(),
                        e.message()
                    )
                })?;
            let result = response.response.clone().unwrap_or_default();
            if result.status >= 400 || response.endorsement.is_none() {
                bail!(
                    "endorsement failure during invoke. response: {}",
                    response_text(&result)
                );
            }
            let committed = client
                .submit(
                    &built,
                    &[response],
                    &user,
                    wait_for_event.then_some(wait_for_event_timeout),
                )
                .await?;
            if wait_for_event {
                check_committed(committed, &client.profile.address)?;
            }
            log(
                "chaincodeCmd",
                "chaincodeInvokeOrQuery",
                &format!(
                    "Chaincode invoke successful. result: {}",
                    response_text(&result)
                ),
            );
        }
        ChaincodeClientCommand::Query { call } => {
            let client = client.connect(call.channel.as_deref()).await?;
            let user = client.user()?;
            let built = build(&client, &call, false, &user)?;
            let response = client.endorse(&built).await.map_err(|e| {
                anyhow::anyhow!(
                    "error endorsing query: rpc error: code = {:?} desc = {} - proposal response: <nil>",
                    e.code(),
                    e.message()
                )
            })?;
            let result = response.response.unwrap_or_default();
            if result.status >= 400 {
                bail!(
                    "endorsement failure during query. response: {}",
                    response_text(&result)
                );
            }
            println!("{}", String::from_utf8_lossy(&result.payload));
        }
        ChaincodeClientCommand::Package {
            output,
            path,
            lang,
            label,
        } => {
            package(&path, &lang, &label, &output)?;
        }
        ChaincodeClientCommand::Install { package } => {
            let client = client.connect(None).await?;
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let (id, label) = client.install(bytes).await?;
            log(
                "cli.lifecycle.chaincode",
                "submitInstallProposal",
                &format!(
                    "Installed remotely: response:<status:200 payload:\"\\n{id}\\022{label}\" >"
                ),
            );
            log(
                "cli.lifecycle.chaincode",
                "submitInstallProposal",
                &format!("Chaincode code package identifier: {id}"),
            );
        }
        ChaincodeClientCommand::Queryinstalled { output } => {
            let client = client.connect(None).await?;
            let (_, response) = client
                .lifecycle(
                    "QueryInstalledChaincodes",
                    &QueryInstalledChaincodesArgs {},
                    false,
                )
                .await?;
            let result = QueryInstalledChaincodesResult::decode(
                response.response.unwrap_or_default().payload.as_slice(),
            )?;
            if output.as_deref() == Some("json") {
                let list: Vec<serde_json::Value> = result
                    .installed_chaincodes
                    .iter()
                    .map(|c| serde_json::json!({"package_id": c.package_id, "label": c.label}))
                    .collect();
                if list.is_empty() {
                    println!("{{}}");
                } else {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({"installed_chaincodes": list})
                        )?
                    );
                }
            } else {
                println!("Installed chaincodes on peer:");
                for c in &result.installed_chaincodes {
                    println!("Package ID: {}, Label: {}", c.package_id, c.label);
                }
            }
        }
        ChaincodeClientCommand::Approveformyorg {
            definition,
            package_id,
        } => {
            let client = client.connect(definition.channel.as_deref()).await?;
            let committed = client
                .approve(
                    &definition.spec()?,
                    &package_id,
                    definition.wait_for_event_timeout,
                )
                .await?;
            wait_log(&committed, &client.profile.address);
        }
        ChaincodeClientCommand::Commit { definition } => {
            let client = client.connect(definition.channel.as_deref()).await?;
            let committed = client
                .commit(&definition.spec()?, definition.wait_for_event_timeout)
                .await?;
            wait_log(&committed, &client.profile.address);
        }
        ChaincodeClientCommand::Checkcommitreadiness {
            definition,
            inspect,
        } => {
            let client = client.connect(definition.channel.as_deref()).await?;
            let spec = definition.spec()?;
            let (_, response) = client
                .lifecycle(
                    "CheckCommitReadiness",
                    &cchost_proto::lifecycle::CommitChaincodeDefinitionArgs {
                        sequence: spec.sequence,
                        name: spec.name.clone(),
                        version: spec.version.clone(),
                        validation_parameter: spec.validation_parameter.clone(),
                        init_required: spec.init_required,
                        cchost_wasm_fuel: spec.wasm_fuel,
                        cchost_wasm_memory: spec.wasm_memory,
                        ..Default::default()
                    },
                    true,
                )
                .await?;
            let result = cchost_proto::lifecycle::CheckCommitReadinessResult::decode(
                response.response.unwrap_or_default().payload.as_slice(),
            )?;
            println!(
                "Chaincode definition for chaincode '{}', version '{}', sequence '{}' on channel '{}' approval status by org:",
                spec.name, spec.version, spec.sequence, client.profile.channel
            );
            for (org, approved) in &result.approvals {
                let mismatch = result
                    .mismatches
                    .get(org)
                    .filter(|m| inspect && !m.items.is_empty())
                    .map(|m| format!(" (mismatch: [{}])", m.items.join(", ")))
                    .unwrap_or_default();
                println!("{org}: {approved}{mismatch}");
            }
        }
        ChaincodeClientCommand::Queryapproved {
            channel,
            name,
            sequence,
        } => {
            let client = client.connect(channel.as_deref()).await?;
            let (_, response) = client
                .lifecycle(
                    "QueryApprovedChaincodeDefinition",
                    &cchost_proto::lifecycle::QueryApprovedChaincodeDefinitionArgs {
                        name: name.clone(),
                        sequence,
                    },
                    true,
                )
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "query failed with {}",
                        e.to_string().trim_start_matches("proposal failed with ")
                    )
                })?;
            let a = cchost_proto::lifecycle::QueryApprovedChaincodeDefinitionResult::decode(
                response.response.unwrap_or_default().payload.as_slice(),
            )?;
            let package = match a.source.and_then(|s| s.r#type) {
                Some(cchost_proto::lifecycle::chaincode_source::Type::LocalPackage(l)) => {
                    l.package_id
                }
                _ => String::new(),
            };
            println!(
                "Approved chaincode definition for chaincode '{name}' on channel '{}':",
                client.profile.channel
            );
            println!(
                "sequence: {}, version: {}, init-required: {}, package-id: {package}, endorsement plugin: {}, validation plugin: {}",
                a.sequence, a.version, a.init_required, a.endorsement_plugin, a.validation_plugin
            );
        }
        ChaincodeClientCommand::Querycommitted {
            channel,
            name,
            output,
        } => {
            let client = client.connect(channel.as_deref()).await?;
            query_committed(&client, name.as_deref(), output.as_deref() == Some("json")).await?;
        }
        ChaincodeClientCommand::Deploy {
            path,
            name,
            version,
            channel,
            signature_policy,
            init_required,
            wasm,
        } => {
            let client = client.connect(channel.as_deref()).await?;
            let bytes = if path.is_dir() {
                let out = tempfile::tempdir()?;
                let file = out.path().join("package.tar.gz");
                let lang = if path.join("Cargo.toml").exists() {
                    "wasm"
                } else if path.join("package.json").exists() {
                    "node"
                } else {
                    bail!(
                        "{} holds neither a Cargo.toml (a Rust chaincode for wasm) nor a package.json (a Node chaincode)",
                        path.display()
                    );
                };
                package(&path, lang, &format!("{name}_{version}"), &file)?;
                std::fs::read(&file)?
            } else {
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
            };
            let (definition, package_id, committed) = client
                .deploy_definition(
                    bytes,
                    cchost::client::DefinitionSpec {
                        name: name.clone(),
                        version,
                        sequence: 0,
                        init_required,
                        validation_parameter: validation_parameter(signature_policy.as_deref())?,
                        wasm_fuel: wasm.wasm_fuel,
                        wasm_memory: wasm.wasm_memory,
                    },
                    Duration::from_secs(60),
                )
                .await?;
            println!(
                "deployed {name} on channel {}: package {package_id}, sequence {}, committed in block {}",
                client.profile.channel, definition.sequence, committed.block
            );
        }
    }
    Ok(())
}

fn build(
    client: &Client,
    call: &Call,
    is_init: bool,
    user: &cchost::proposal::DevIdentity,
) -> anyhow::Result<cchost::proposal::BuiltProposal> {
    let args = parse_ctor(&call.ctor)?;
    let mut builder = ProposalBuilder::new(client.profile.channel.clone(), call.name.clone())
        .args(args)
        .init(is_init);
    if let Some(transient) = &call.transient {
        for (k, v) in parse_transient(transient)? {
            builder = builder.transient(k, v);
        }
    }
    Ok(builder.build(user)?)
}

fn package(path: &Path, lang: &str, label: &str, output: &Path) -> anyhow::Result<String> {
    let id = if lang == "node" {
        packaging::package_node_dir(path, label, output)?
            .1
            .to_string()
    } else {
        packaging::package_crate(path, label, output, None)?
            .package_id
            .to_string()
    };
    eprintln!("packaged {} as {id}", path.display());
    Ok(id)
}

async fn query_committed(client: &Client, name: Option<&str>, json: bool) -> anyhow::Result<()> {
    let channel = client.profile.channel.clone();
    let msp = client.profile.msp_id.clone();
    if let Some(name) = name {
        let (_, response) = client
            .lifecycle(
                "QueryChaincodeDefinition",
                &QueryChaincodeDefinitionArgs {
                    name: name.to_owned(),
                },
                true,
            )
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "query failed with {}",
                    e.to_string().trim_start_matches("proposal failed with ")
                )
            })?;
        let d = QueryChaincodeDefinitionResult::decode(
            response.response.unwrap_or_default().payload.as_slice(),
        )?;
        if json {
            use base64::Engine as _;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "sequence": d.sequence,
                    "version": d.version,
                    "endorsement_plugin": d.endorsement_plugin,
                    "validation_plugin": d.validation_plugin,
                    "validation_parameter": base64::engine::general_purpose::STANDARD.encode(&d.validation_parameter),
                    "collections": {},
                    "init_required": d.init_required,
                    "approvals": d.approvals,
                }))?
            );
        } else {
            let approvals: Vec<String> = d
                .approvals
                .iter()
                .map(|(org, ok)| format!("{org}: {ok}"))
                .collect();
            println!(
                "Committed chaincode definition for chaincode '{name}' on channel '{channel}':"
            );
            let wasm = if d.cchost_wasm_fuel != 0 || d.cchost_wasm_memory != 0 {
                format!(
                    ", Wasm Fuel: {}, Wasm Memory: {}",
                    d.cchost_wasm_fuel, d.cchost_wasm_memory
                )
            } else {
                String::new()
            };
            println!(
                "Version: {}, Sequence: {}, Endorsement Plugin: {}, Validation Plugin: {}, Approvals: [{}]{wasm}",
                d.version,
                d.sequence,
                d.endorsement_plugin,
                d.validation_plugin,
                approvals.join(", ")
            );
        }
        return Ok(());
    }
    let (_, response) = client
        .lifecycle(
            "QueryChaincodeDefinitions",
            &QueryChaincodeDefinitionsArgs {},
            true,
        )
        .await?;
    let all = QueryChaincodeDefinitionsResult::decode(
        response.response.unwrap_or_default().payload.as_slice(),
    )?;
    if json {
        let list: Vec<serde_json::Value> = all
            .chaincode_definitions
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.name, "sequence": d.sequence, "version": d.version,
                    "endorsement_plugin": d.endorsement_plugin,
                    "validation_plugin": d.validation_plugin,
                    "init_required": d.init_required,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"chaincode_definitions": list}))?
        );
    } else {
        println!("Committed chaincode definitions on channel '{channel}':");
        for d in &all.chaincode_definitions {
            println!(
                "Name: {}, Version: {}, Sequence: {}, Endorsement Plugin: {}, Validation Plugin: {}",
                d.name, d.version, d.sequence, d.endorsement_plugin, d.validation_plugin
            );
        }
    }
    let _ = msp;
    Ok(())
}

/// Runs `cchost channel ...`.
pub(crate) async fn channel(command: ChannelCommand, client: &ClientArgs) -> anyhow::Result<()> {
    let ChannelCommand::Getinfo { channel } = command;
    let client = client.connect(channel.as_deref()).await?;
    let block = client.newest_block().await?;
    let header = block.header.unwrap_or_default();
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let current = cchost::ledger::blockfile::header_hash(
        header.number,
        &header.previous_hash,
        &header.data_hash,
    );
    println!(
        "Blockchain info: {}",
        serde_json::json!({
            "height": header.number + 1,
            "currentBlockHash": b64(&current),
            "previousBlockHash": b64(&header.previous_hash),
        })
    );
    Ok(())
}

/// What `cchost events` streams.
#[derive(Debug, Clone, Args)]
pub(crate) struct EventsArgs {
    /// The channel.
    #[arg(short = 'C', long = "channelID")]
    channel: Option<String>,
    /// Where to start: oldest, newest or a block number.
    #[arg(long, default_value = "newest")]
    start: String,
    /// The last block to show (default: keep streaming).
    #[arg(long)]
    stop: Option<u64>,
    /// `block` (whole blocks: number, hashes, transactions), `filtered` (transaction
    /// ids and codes) or `chaincode` (chaincode events, payload included).
    #[arg(long, default_value = "filtered", value_parser = ["block", "filtered", "chaincode"])]
    kind: String,
}

/// Runs `cchost events`: one JSON line per block (or chaincode event).
pub(crate) async fn events(args: EventsArgs, client: &ClientArgs) -> anyhow::Result<()> {
    let client = client.connect(args.channel.as_deref()).await?;
    let user = client.user()?;
    let start = match args.start.as_str() {
        "oldest" => seek_position::Type::Oldest(SeekOldest {}),
        "newest" => seek_position::Type::Newest(SeekNewest {}),
        n => seek_position::Type::Specified(SeekSpecified {
            number: n
                .parse()
                .with_context(|| format!("--start {n}: expected oldest, newest or a number"))?,
        }),
    };
    let stop = seek_position::Type::Specified(SeekSpecified {
        number: args.stop.unwrap_or(u64::MAX),
    });
    let filtered = args.kind == "filtered";
    let mut stream = client.deliver(&user, start, stop, filtered).await?;
    while let Some(response) = stream.message().await? {
        match response.r#type {
            Some(deliver_response::Type::FilteredBlock(block)) => {
                let txs: Vec<serde_json::Value> = block
                    .filtered_transactions
                    .iter()
                    .map(|tx| {
                        serde_json::json!({
                            "txid": tx.txid,
                            "validation_code": TxValidationCode::try_from(tx.tx_validation_code)
                                .map_or_else(|_| tx.tx_validation_code.to_string(), |c| c.as_str_name().to_owned()),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"block": block.number, "transactions": txs})
                );
            }
            Some(deliver_response::Type::Block(block)) => {
                let header = block.header.clone().unwrap_or_default();
                let data = block.data.clone().unwrap_or_default().data;
                if args.kind == "chaincode" {
                    let filter = block
                        .metadata
                        .as_ref()
                        .and_then(|m| m.metadata.get(2).cloned())
                        .unwrap_or_default();
                    for (i, envelope) in data.iter().enumerate() {
                        if filter.get(i).copied() != Some(0) {
                            continue;
                        }
                        if let Some(event) = cchost::transaction::envelope_event(envelope)
                            .filter(|e| !e.chaincode_id.is_empty())
                        {
                            println!(
                                "{}",
                                serde_json::json!({
                                    "block": header.number,
                                    "txid": event.tx_id,
                                    "chaincode": event.chaincode_id,
                                    "event": event.event_name,
                                    "payload": String::from_utf8_lossy(&event.payload),
                                })
                            );
                        }
                    }
                } else {
                    use base64::Engine as _;
                    println!(
                        "{}",
                        serde_json::json!({
                            "block": header.number,
                            "previous_hash": base64::engine::general_purpose::STANDARD.encode(&header.previous_hash),
                            "data_hash": base64::engine::general_purpose::STANDARD.encode(&header.data_hash),
                            "transactions": data.len(),
                        })
                    );
                }
            }
            Some(deliver_response::Type::Status(status)) => {
                if status != cchost_proto::common::Status::Success as i32 {
                    bail!("deliver ended with status {status}");
                }
                break;
            }
            _ => {}
        }
    }
    Ok(())
}

/// `cchost bench load`.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// What each transaction does: evaluate, or submit (and wait for its commit).
    #[arg(long, default_value = "evaluate", value_parser = cchost::bench::load::Mode::parse)]
    mode: cchost::bench::load::Mode,
    /// The chaincode.
    #[arg(short = 'n', long = "chaincode", default_value = "basic")]
    chaincode: String,
    /// The transaction, as the peer CLI's -c; `{tx}` in an argument becomes a name unique
    /// to the transaction (default: ReadAsset asset1 to evaluate, CreateAsset {tx} ... to
    /// submit, asset-transfer-basic's functions).
    #[arg(short = 'c', long = "ctor")]
    ctor: Option<String>,
    /// Transactions in flight (with --rate: at most).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// gRPC connections the transactions are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Start this many transactions per second (open loop; latency runs from when each
    /// was due) instead of as fast as they are answered.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to start transactions for, e.g. 30s.
    #[arg(long, default_value = "10s", value_parser = parse_duration, conflicts_with = "count")]
    duration: Duration,
    /// Run this many transactions instead of for --duration.
    #[arg(long)]
    count: Option<usize>,
    /// How long a submitted transaction's commit status is waited for.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    commit_timeout: Duration,
    /// The Gateway's address (host:port) of any Fabric peer; then name the channel, the
    /// identity (--msp-id, --cert, --key) and, with TLS, --tls-ca.
    #[arg(long)]
    address: Option<String>,
    /// The channel (default: the node's, or mychannel with --address).
    #[arg(short = 'C', long = "channelID")]
    channel: Option<String>,
    /// The identity's MSP id.
    #[arg(long, requires_all = ["cert", "key"])]
    msp_id: Option<String>,
    /// The identity's PEM certificate (an MSP's signcerts/ file).
    #[arg(long, requires = "msp_id")]
    cert: Option<PathBuf>,
    /// The identity's PEM PKCS#8 private key (an MSP's keystore/ file).
    #[arg(long, requires = "msp_id")]
    key: Option<PathBuf>,
    /// TLS: the CA certificate the peer's TLS certificate is checked against.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Mutual TLS: the client's TLS certificate (with --tls-key).
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// Mutual TLS: the client's TLS key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TLS: the name the peer's certificate carries, when the address's host is not it
    /// (Fabric's --ordererTLSHostnameOverride; e.g. peer0.org1.example.com).
    #[arg(long, requires = "tls_ca")]
    tls_server_name: Option<String>,
    /// Where to write load.json, load.csv and load.svg.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
}

/// `cchost bench load`: runs the load and writes its results.
pub(crate) async fn load(args: LoadArgs) -> anyhow::Result<()> {
    use cchost::bench::load::{LoadConfig, Mode, Until};
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let (profile, identity) = match &args.address {
        Some(address) => {
            let (Some(msp_id), Some(cert), Some(key)) = (&args.msp_id, &args.cert, &args.key)
            else {
                bail!("with --address, name the identity: --msp-id, --cert and --key");
            };
            let identity =
                cchost::proposal::DevIdentity::from_pem(msp_id, &read(cert)?, &read(key)?)?;
            let profile = ClientProfile {
                address: address.clone(),
                channel: args.channel.clone().unwrap_or_else(|| "mychannel".into()),
                msp_id: msp_id.clone(),
                admin_msp: PathBuf::new(),
                user_msp: PathBuf::new(),
                data_dir: PathBuf::new(),
                tls_ca: args.tls_ca.clone(),
                tls_client: args.tls_cert.clone().zip(args.tls_key.clone()),
                tls_server_name: args.tls_server_name.clone(),
            };
            (profile, identity)
        }
        None => {
            let mut profile = args.client.profile()?;
            if let Some(channel) = &args.channel {
                profile.channel = channel.clone();
            }
            let identity = match (&args.msp_id, &args.cert, &args.key) {
                (Some(msp_id), Some(cert), Some(key)) => {
                    cchost::proposal::DevIdentity::from_pem(msp_id, &read(cert)?, &read(key)?)?
                }
                _ => cchost::node::identities::load_msp(&profile.user_msp, &profile.msp_id)?,
            };
            (profile, identity)
        }
    };
    let transaction = match (&args.ctor, args.mode) {
        (Some(ctor), _) => parse_ctor(ctor)?,
        (None, Mode::Evaluate) => vec!["ReadAsset".into(), "asset1".into()],
        (None, Mode::Submit) => ["CreateAsset", "{tx}", "blue", "5", "Tomoko", "300"]
            .map(String::from)
            .to_vec(),
    };
    let config = LoadConfig {
        mode: args.mode,
        chaincode: args.chaincode.clone(),
        args: transaction,
        concurrency: args.concurrency,
        connections: args.connections,
        rate: args.rate,
        until: args
            .count
            .map_or(Until::Elapsed(args.duration), Until::Count),
        commit_timeout: args.commit_timeout,
    };
    let report = cchost::bench::load::run(&profile, std::sync::Arc::new(identity), &config).await?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let write = |name: &str, contents: &[u8]| {
        let path = args.out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    };
    write("load.json", &serde_json::to_vec_pretty(&report)?)?;
    write("load.csv", report.csv().as_bytes())?;
    write(
        "load.svg",
        report.chart().map_err(anyhow::Error::msg)?.as_bytes(),
    )?;
    print!("{}", report.table());
    println!("results in {}", args.out.display());
    if report.succeeded == 0 {
        bail!("no transaction succeeded");
    }
    Ok(())
}
