//! `cchost devnode`: a development peer in Fabric's dev mode.
//!
//! It serves `/protos.ChaincodeSupport/Register` and accepts any chaincode that dials in
//! (start it yourself, e.g. `fabric-chaincode-node start --peer.address ...`), keeps state
//! in an embedded redb ledger, and runs invocations read from standard input, one JSON
//! array per line: `["asset", "asset:put", "k1", "v1"]` (chaincode name, then the
//! arguments). Each answer is one JSON object on standard output. A transaction with
//! status below 400 is committed at once as the only transaction of the next block, so
//! later invocations see its writes. There is no endorsement policy, ordering or block
//! store yet: those come with the peer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cchost_proto::protos::ChaincodeEvent;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use anyhow::Context;
use cchost::ids::PackageId;
use cchost::launcher::Launcher;
use cchost::ledger::{CommitTx, Height, RedbStore, StateStore};
use cchost::operations::{DockerCheck, HealthCheck, LogSpec, Operations, StateDbCheck};
use cchost::proposal::{DevIdentity, ProposalBuilder};
use cchost::runtime::docker::{DockerConfig, DockerRuntime, Platform};
use cchost::runtime::external::ExternalBuilder;
use cchost::support::{ChaincodeSupport, SupportConfig};
use cchost::tls::ChaincodeCa;

/// The MSP of the dev node and of its client.
const MSP_ID: &str = "Org1MSP";

/// What `cchost devnode` runs with.
#[derive(Debug, Clone)]
pub(crate) struct DevnodeConfig {
    /// Where chaincode dials in.
    pub(crate) listen: SocketAddr,
    /// The state database file; in memory when `None`.
    pub(crate) state: Option<PathBuf>,
    /// The channel invocations run on.
    pub(crate) channel: String,
    /// Chaincode names and the package ids their processes register with.
    pub(crate) chaincodes: Vec<(String, PackageId)>,
    /// Chaincode names and package files the node installs and launches itself.
    pub(crate) packages: Vec<(String, PathBuf)>,
    /// Where installed packages and compiled artifacts are kept.
    pub(crate) data_dir: PathBuf,
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

/// Runs the dev node until standard input ends.
pub(crate) async fn run(config: DevnodeConfig) -> anyhow::Result<()> {
    let store: Arc<dyn StateStore> = match &config.state {
        Some(path) => Arc::new(RedbStore::open(path)?),
        None => Arc::new(RedbStore::in_memory()?),
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    // Containers (host network) and local processes reach the listener on loopback when
    // it listens on every interface.
    let peer_address = if address.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], address.port()))
    } else {
        address
    };
    let tls = if config.tls {
        let host = peer_address.ip().to_string();
        Some(Arc::new(ChaincodeCa::new(&[host.as_str(), "localhost"])?))
    } else {
        None
    };
    store.create_channel(&config.channel)?;
    let support = ChaincodeSupport::new(
        SupportConfig {
            dev_mode: true,
            execute_timeout: config.execute_timeout,
            tls,
            ..SupportConfig::default()
        },
        Arc::clone(&store),
    )?;
    for (name, package_id) in &config.chaincodes {
        support.define(name.clone(), package_id.clone());
    }
    // The data directory is only opened when the node installs packages itself.
    let launcher = if config.packages.is_empty() {
        None
    } else {
        let (packages, runtimes) = cchost::node::runtimes(
            &config.data_dir,
            DockerConfig {
                peer_address: peer_address.to_string(),
                ..config.docker.clone()
            },
            Some(Arc::clone(support.metrics())),
            config.execute_timeout,
            &config.external_builders,
            MSP_ID,
        )?;
        Some(Launcher::new(
            support.clone(),
            packages,
            runtimes,
            config.startup_timeout,
        ))
    };
    let mut launched = Vec::new();
    let mut uses_docker = false;
    for (name, file) in &config.packages {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        uses_docker |= cchost::package::ChaincodePackage::parse(&bytes)
            .is_ok_and(|p| Platform::of(&p.metadata().kind).is_some());
        if let Some(launcher) = &launcher {
            let package_id = launcher.install(&bytes)?;
            support.define(name.clone(), package_id.clone());
            launched.push((name.clone(), package_id));
        }
    }
    let operations = match config.operations_listen {
        Some(addr) => {
            let mut checks: Vec<Arc<dyn HealthCheck>> =
                vec![Arc::new(StateDbCheck(Arc::clone(&store)))];
            if uses_docker {
                checks.push(Arc::new(DockerCheck(
                    DockerRuntime::connect(config.docker.clone(), None)
                        .map_err(anyhow::Error::msg)?,
                )));
            }
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let address = listener.local_addr()?;
            let router = cchost::operations::router(Operations {
                metrics: Arc::clone(support.metrics()),
                checks,
                logspec: Arc::clone(&config.logspec),
            });
            eprintln!("cchost devnode: operations endpoints on http://{address}");
            Some(tokio::spawn(
                async move { axum::serve(listener, router).await },
            ))
        }
        None => None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let support = support.clone();
        tokio::spawn(async move {
            support
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    eprintln!(
        "cchost devnode: chaincode listener on {address} (dev mode{}), channel {}",
        if config.tls { ", mutual TLS" } else { "" },
        config.channel
    );
    for (name, package_id) in &launched {
        eprintln!("  {name}: package {package_id}, installed; launched on first use");
    }
    for (name, package_id) in &config.chaincodes {
        eprintln!(
            "  {name}: start it with CORE_CHAINCODE_ID_NAME={package_id} --peer.address {address}"
        );
    }

    let identity = DevIdentity::generate(MSP_ID, "Org1", "User1")?;
    let mut block = 1;
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
        let node = Node {
            support: &support,
            launched: &launched,
            config: &config,
            identity: &identity,
            store: &*store,
        };
        let answer = match node.invoke(&line, block).await {
            Ok((answer, committed)) => {
                if committed {
                    block += 1;
                }
                answer
            }
            Err(e) => json!({ "error": e.to_string() }),
        };
        println!("{answer}");
    }
    // Stop what was launched (containers removed) before the listener goes.
    if let Some(launcher) = &launcher {
        launcher.shutdown().await;
    }
    let _ = stop.send(());
    server.await??;
    if let Some(operations) = operations {
        operations.abort();
    }
    Ok(())
}

/// What an invocation needs.
struct Node<'a> {
    support: &'a ChaincodeSupport,
    launched: &'a [(String, PackageId)],
    config: &'a DevnodeConfig,
    identity: &'a DevIdentity,
    store: &'a dyn StateStore,
}

impl Node<'_> {
    async fn invoke(&self, line: &str, block: u64) -> anyhow::Result<(Value, bool)> {
        let Self {
            support,
            launched,
            config,
            identity,
            store,
        } = *self;
        let words: Vec<String> = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "expected a JSON array of strings, [\"chaincode\", \"function\", \"arg\", ...]: {e}"
            )
        })?;
        let Some((chaincode, args)) = words.split_first() else {
            anyhow::bail!("the array is empty: name the chaincode first");
        };
        // Packages the node installed are launched on demand by `execute`; chaincode
        // started by hand is waited for.
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
            if !support
                .wait_ready(&package_id, config.startup_timeout)
                .await
            {
                anyhow::bail!(
                    "timeout expired while starting chaincode {package_id}: it has not registered"
                );
            }
        }
        let proposal = ProposalBuilder::new(&config.channel, chaincode)
            .args(args)
            .build(identity)?;
        let result = support.execute(&proposal.signed_proposal).await?;
        let committed = result.response.status < 400;
        if committed {
            store.commit(
                &config.channel,
                &[CommitTx {
                    height: Height::new(block, 0),
                    tx_id: result.txid.clone(),
                    timestamp: proposal.timestamp,
                    rwset: result.rwset.clone(),
                }],
            )?;
        }
        let event = result.event.as_ref().map(|e: &ChaincodeEvent| {
        json!({ "name": e.event_name, "payload": String::from_utf8_lossy(&e.payload) })
    });
        Ok((
            json!({
                "txid": result.txid,
                "status": result.response.status,
                "message": result.response.message,
                "payload": String::from_utf8_lossy(&result.response.payload),
                "event": event,
                "block": committed.then_some(block),
            }),
            committed,
        ))
    }
}
