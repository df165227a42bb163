//! `cchost devnode`: the node in Fabric's dev mode, driven from standard input.
//!
//! It is `cchost node` ([`RunningNode`]) with `--peer-chaincodedev`: chaincode you start
//! yourself dials the chaincode listener and registers with the package id given as
//! `--chaincode NAME=PACKAGE_ID`; packages given as `--package NAME=FILE` are installed
//! and launched by the node. Each is defined through `_lifecycle` at start (approved and
//! committed, as `cchost chaincode deploy` does). Invocations are read from standard
//! input, one JSON array per line: `["asset", "asset:put", "k1", "v1"]` (chaincode name,
//! then the arguments); each goes through the endorser, and when the chaincode's status
//! is below 400 through ordering and commit, as a client's transaction does. Each answer
//! is one JSON object on standard output: txid, status, message, payload, event, and the
//! block it committed in. The ledger lives in `--data-dir` (a temporary directory when
//! none is given).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cchost::client::{Client, DefinitionSpec};
use cchost::ids::PackageId;
use cchost::node::{NodeConfig, RunningNode, StartOptions};
use cchost::operations::LogSpec;
use cchost::proposal::ProposalBuilder;
use cchost::runtime::docker::DockerConfig;
use cchost::runtime::external::ExternalBuilder;
use cchost_proto::protos::{ChaincodeAction, ChaincodeEvent, ProposalResponsePayload};
use prost::Message as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What `cchost devnode` runs with.
#[derive(Debug, Clone)]
pub(crate) struct DevnodeConfig {
    /// Where chaincode dials in.
    pub(crate) listen: SocketAddr,
    /// The channel invocations run on.
    pub(crate) channel: String,
    /// Chaincode names and the package ids their processes register with.
    pub(crate) chaincodes: Vec<(String, PackageId)>,
    /// Chaincode names and package files the node installs and launches itself.
    pub(crate) packages: Vec<(String, PathBuf)>,
    /// The node's data directory (a temporary one when `None`).
    pub(crate) data_dir: Option<PathBuf>,
    /// How long an invocation waits for its chaincode to register.
    pub(crate) startup_timeout: Duration,
    /// The execute timeout.
    pub(crate) execute_timeout: Duration,
    /// Where to serve the operations endpoints, if anywhere.
    pub(crate) operations_listen: Option<SocketAddr>,
    /// The live log filter `/logspec` reads and changes.
    pub(crate) logspec: Arc<LogSpec>,
    /// Mutual TLS on the chaincode listener.
    pub(crate) tls: bool,
    /// The Docker runtime's engine and images (its peer address is the listener's).
    pub(crate) docker: DockerConfig,
    /// External builders, tried in order before the built-in runtimes (Fabric's
    /// `chaincode.externalBuilders`).
    pub(crate) external_builders: Vec<ExternalBuilder>,
}

/// How long definitions and invocations wait for their commit.
const WAIT: Duration = Duration::from_secs(60);

/// Runs the dev node until standard input ends.
pub(crate) async fn run(config: DevnodeConfig) -> anyhow::Result<()> {
    // A temporary directory when none is given, removed at the end.
    let temporary = match &config.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let data_dir = config
        .data_dir
        .clone()
        .or_else(|| temporary.as_ref().map(|t| t.path().to_owned()))
        .context("no data directory")?;
    let mut node_config = NodeConfig::parse("", &|_| None)?;
    node_config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    node_config.chaincode_listen = config.listen;
    node_config.operations_listen = config.operations_listen;
    node_config.rest = None;
    node_config.channel = config.channel.clone();
    node_config.execute_timeout = config.execute_timeout;
    node_config.startup_timeout = config.startup_timeout;
    // A block as soon as an invocation is ordered.
    node_config.batch.timeout = Duration::from_millis(10);
    let node = RunningNode::start(
        &data_dir,
        StartOptions {
            docker: config.docker.clone(),
            external_builders: config.external_builders.clone(),
            logspec: Some(Arc::clone(&config.logspec)),
            write_home_profile: false,
            dev_mode: true,
            config: Some(node_config),
            chaincode_tls: Some(config.tls),
        },
    )
    .await?;
    let client = Client::connect(node.profile.clone()).await?;
    let mut launched = Vec::new();
    for (name, file) in &config.packages {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let (_, package_id, _) = client
            .deploy(bytes, name, "1.0", false, Vec::new(), WAIT)
            .await
            .with_context(|| format!("deploying {name} from {}", file.display()))?;
        launched.push((name.clone(), package_id));
    }
    for (name, package_id) in &config.chaincodes {
        let definition = DefinitionSpec {
            name: name.clone(),
            version: "1.0".into(),
            sequence: client.current_sequence(name).await? + 1,
            init_required: false,
            validation_parameter: Vec::new(),
            wasm_fuel: 0,
            wasm_memory: 0,
        };
        client
            .approve(&definition, package_id.as_str(), WAIT)
            .await
            .with_context(|| format!("approving {name}"))?;
        client
            .commit(&definition, WAIT)
            .await
            .with_context(|| format!("committing {name}"))?;
    }
    eprintln!(
        "cchost devnode: chaincode listener on {} (dev mode{}), channel {}",
        node.chaincode_address,
        if node.chaincode_tls() {
            ", mutual TLS"
        } else {
            ""
        },
        config.channel
    );
    if let Some(address) = node.operations_address {
        eprintln!("cchost devnode: operations endpoints on http://{address}");
    }
    for (name, package_id) in &launched {
        eprintln!("  {name}: package {package_id}, installed; launched on first use");
    }
    for (name, package_id) in &config.chaincodes {
        eprintln!(
            "  {name}: start it with CORE_CHAINCODE_ID_NAME={package_id} --peer.address {}",
            node.chaincode_address
        );
    }

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = &mut interrupted => {
                eprintln!("cchost devnode: interrupted, stopping");
                None
            }
        };
        let Some(line) = line else {
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match invoke(&node, &client, &config, &launched, &line).await {
            Ok(answer) => answer,
            Err(e) => json!({ "error": format!("{e:#}") }),
        };
        println!("{answer}");
    }
    // Stop what was launched (containers removed) before the listener goes.
    node.stop().await?;
    drop(temporary);
    Ok(())
}

/// One invocation line: endorse, and below status 400 order and commit.
async fn invoke(
    node: &RunningNode,
    client: &Client,
    config: &DevnodeConfig,
    launched: &[(String, String)],
    line: &str,
) -> anyhow::Result<Value> {
    let words: Vec<String> = serde_json::from_str(line).map_err(|e| {
        anyhow::anyhow!(
            "expected a JSON array of strings, [\"chaincode\", \"function\", \"arg\", ...]: {e}"
        )
    })?;
    let Some((chaincode, args)) = words.split_first() else {
        anyhow::bail!("the array is empty: name the chaincode first");
    };
    // Packages the node installed are launched on demand; chaincode started by hand is
    // waited for.
    if !launched.iter().any(|(name, _)| name == chaincode) {
        let package_id = config
            .chaincodes
            .iter()
            .find(|(name, _)| name == chaincode)
            .map(|(_, id)| id.clone())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "chaincode {chaincode} is not defined: add --chaincode \
                     {chaincode}=PACKAGE_ID or --package {chaincode}=FILE"
                )
            })?;
        if !node
            .wait_registered(&package_id, config.startup_timeout)
            .await
        {
            anyhow::bail!(
                "timeout expired while starting chaincode {package_id}: it has not registered"
            );
        }
    }
    let user = client.user()?;
    let proposal = ProposalBuilder::new(&config.channel, chaincode)
        .args(args)
        .build(&user)?;
    let response = client
        .endorse(&proposal)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let result = response.response.clone().unwrap_or_default();
    let event = ProposalResponsePayload::decode(response.payload.as_slice())
        .ok()
        .and_then(|prp| ChaincodeAction::decode(prp.extension.as_slice()).ok())
        .and_then(|action| ChaincodeEvent::decode(action.events.as_slice()).ok())
        .filter(|event| !event.event_name.is_empty())
        .map(|e| json!({ "name": e.event_name, "payload": String::from_utf8_lossy(&e.payload) }));
    let mut block = None;
    let mut code = None;
    if result.status < 400 && response.endorsement.is_some() {
        let committed = client
            .submit(&proposal, &[response], &user, Some(WAIT))
            .await?
            .context("the commit was not waited for")?;
        block = Some(committed.block);
        code = Some(committed.code.as_str_name());
    }
    Ok(json!({
        "txid": proposal.txid,
        "status": result.status,
        "message": result.message,
        "payload": String::from_utf8_lossy(&result.payload),
        "event": event,
        "block": block,
        "validation_code": code,
    }))
}
