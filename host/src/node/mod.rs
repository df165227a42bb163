//! `cchost node`: a single-node Fabric peer in one process.
//!
//! [`Node::start`] opens (or on first start creates) a data directory: the configuration
//! ([`config`]), the organisation's CA and identities in Fabric's folder layout
//! ([`identities`]), the channel's ledger (block files and the state database), the
//! installed chaincode packages. It then serves, on `peer.listenAddress`, the Endorser
//! ([`crate::endorser`]), Deliver ([`crate::deliver`]) and the built-in orderer's
//! Broadcast (and its Deliver); on `peer.chaincodeListenAddress` the chaincode
//! listener; the operations endpoints. Chaincode is defined through `_lifecycle`
//! ([`crate::lifecycle`]) and launched on its first invocation. [`RunningNode::stop`]
//! stops intake, lets the orderer cut and commit what it holds, stops the chaincode it
//! started and closes the ledger.
//!
//! It writes a client profile (`client.json`: address, channel, the admin's and the
//! user's MSP folders) into the data directory and, as the profile of the node this user
//! started last, into `~/.cchost/client.json`: the CLI's defaults.

pub mod config;
pub mod identities;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::deliver::DeliverService;
use crate::endorser::Endorser;
use crate::ids::PackageId;
use crate::launcher::{ChaincodeRuntime, Launcher};
use crate::ledger::blocks::{self, GenesisConfig, OrgConfig};
use crate::ledger::commit::{ChannelLedger, LedgerOptions};
use crate::ledger::{RedbStore, StateStore};
use crate::lifecycle::{self, LifecycleHost};
use crate::operations::{HealthCheck, LogSpec, Operations, StateDbCheck};
use crate::orderer::{BroadcastService, DEFAULT_QUEUE, Orderer};
use crate::package::{ChaincodePackage, PackageStore};
use crate::runtime::docker::{DockerConfig, DockerRuntime};
use crate::runtime::external::{ExternalBuilder, ExternalConfig, ExternalRuntime};
use crate::runtime::wasm::{WasmConfig, WasmRuntime};
use crate::support::{ChaincodeSupport, SupportConfig};
pub use config::NodeConfig;
use identities::Organization;

/// How long an external builder may take to build a package (Fabric's
/// `chaincode.installTimeout` default).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// What the CLI needs to reach a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProfile {
    /// The peer's address (`host:port`).
    pub address: String,
    /// The channel.
    pub channel: String,
    /// The organisation's MSP id.
    pub msp_id: String,
    /// The admin's `msp` folder (lifecycle).
    pub admin_msp: PathBuf,
    /// The user's `msp` folder (invoke, query, events).
    pub user_msp: PathBuf,
    /// The node's data directory.
    pub data_dir: PathBuf,
    /// With TLS on: the CA certificate the server certificate is checked against.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// With client authentication required: the user's TLS certificate and key.
    #[serde(default)]
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// With TLS on: the name the server certificate must carry when it is not the
    /// address's host (a Fabric peer's `peer0.org1.example.com` reached as `localhost`).
    #[serde(default)]
    pub tls_server_name: Option<String>,
}

impl ClientProfile {
    /// The profile file of a data directory.
    pub fn file(data_dir: &Path) -> PathBuf {
        data_dir.join("client.json")
    }

    /// `~/.cchost/client.json`: the node this user started last.
    pub fn last_started() -> Option<PathBuf> {
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cchost/client.json"))
    }

    /// Reads a profile file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "reading the client profile {}: start a node first (cchost node start), or \
                 name its data directory with --data-dir or CCHOST_DATA_DIR",
                path.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }
}

/// The package store and chaincode runtimes of a data directory: wasm (its deadline the
/// execute timeout), external builders, Docker (Go, Node, Java; the engine is only
/// contacted when such a package is launched) and chaincode-as-a-service.
pub fn runtimes(
    data_dir: &Path,
    docker: DockerConfig,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    execute_timeout: Duration,
    external_builders: &[ExternalBuilder],
    msp_id: &str,
    package_limits: crate::runtime::wasm::PackageLimits,
) -> anyhow::Result<(PackageStore, Vec<Arc<dyn ChaincodeRuntime>>)> {
    let packages = PackageStore::open(data_dir.join("chaincodes"))?;
    let mut runtimes: Vec<Arc<dyn ChaincodeRuntime>> = Vec::new();
    if !external_builders.is_empty() {
        runtimes.push(Arc::new(ExternalRuntime::new(ExternalConfig {
            builders: external_builders.to_vec(),
            builds_dir: data_dir.join("externalbuilder/builds"),
            peer_address: docker.peer_address.clone(),
            mspid: msp_id.to_owned(),
            build_timeout: INSTALL_TIMEOUT,
        })?));
    }
    let wasm = WasmRuntime::new(WasmConfig {
        cache_dir: Some(data_dir.join("wasm-cache")),
        deadline: execute_timeout,
        package_limits,
        ..WasmConfig::default()
    })?;
    runtimes.push(Arc::new(wasm));
    runtimes.push(Arc::new(
        DockerRuntime::connect(docker, metrics).map_err(anyhow::Error::msg)?,
    ));
    runtimes.push(Arc::new(crate::runtime::ccaas::CcaasRuntime));
    Ok((packages, runtimes))
}

/// `_lifecycle`'s view of the node: its organisation and its installed packages.
struct Host {
    msp_id: String,
    launcher: Arc<Launcher>,
}

impl LifecycleHost for Host {
    fn msp_id(&self) -> &str {
        &self.msp_id
    }

    fn install(&self, package: &[u8]) -> Result<(String, String), String> {
        let parsed = ChaincodePackage::parse(package).map_err(|e| e.to_string())?;
        let id = parsed.id().clone();
        if self
            .launcher
            .installed()
            .map_err(|e| e.to_string())?
            .contains(&id)
        {
            return Err(format!(
                "chaincode already successfully installed (package ID '{id}')"
            ));
        }
        let installed = self.launcher.install(package).map_err(|e| e.to_string())?;
        Ok((installed.to_string(), parsed.metadata().label.clone()))
    }

    fn is_installed(&self, id: &str) -> bool {
        self.launcher.is_installed(&PackageId::new(id))
    }

    fn installed(&self) -> Result<Vec<(String, String)>, String> {
        Ok(self
            .launcher
            .installed()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|id| {
                let label = id
                    .as_str()
                    .rsplit_once(':')
                    .map_or_else(String::new, |(label, _)| label.to_owned());
                (id.to_string(), label)
            })
            .collect())
    }
}

/// Extra settings that come from flags rather than the configuration file.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The Docker engine and images.
    pub docker: DockerConfig,
    /// External builders, tried before the built-in runtimes.
    pub external_builders: Vec<ExternalBuilder>,
    /// The live log filter `/logspec` changes.
    pub logspec: Option<Arc<LogSpec>>,
    /// Whether to write `~/.cchost/client.json`.
    pub write_home_profile: bool,
    /// Fabric's dev mode (`peer node start --peer-chaincodedev`): chaincode started by
    /// hand registers with the package id its definition names; nothing needs to be
    /// installed for it.
    pub dev_mode: bool,
    /// The configuration to run with instead of the data directory's `core.toml`.
    pub config: Option<NodeConfig>,
    /// Mutual TLS on the chaincode listener regardless of `peer.tls.enabled` and dev
    /// mode (`Some(true)`: on; `Some(false)`: off).
    pub chaincode_tls: Option<bool>,
}

/// A node that is serving.
pub struct RunningNode {
    /// The peer services' address.
    pub address: SocketAddr,
    /// The chaincode listener's address.
    pub chaincode_address: SocketAddr,
    /// The operations endpoints' address, if served.
    pub operations_address: Option<SocketAddr>,
    /// The JSON-RPC endpoint's address, if served.
    pub rest_address: Option<SocketAddr>,
    /// The channel's ledger.
    pub ledger: Arc<ChannelLedger>,
    /// The client profile.
    pub profile: ClientProfile,
    stop_peer: Option<tokio::sync::oneshot::Sender<()>>,
    stop_chaincode: Option<tokio::sync::oneshot::Sender<()>>,
    peer: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    chaincode: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    cutter: tokio::task::JoinHandle<Result<(), crate::ledger::commit::CommitError>>,
    operations: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    rest: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    launcher: Arc<Launcher>,
    support: ChaincodeSupport,
    deliver: DeliverService,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Points `support` at the package this organisation approved for each definition, with
/// the definition's wasm limits.
fn define_all(
    support: &ChaincodeSupport,
    limits: &crate::runtime::wasm::PackageLimits,
    state: &dyn StateStore,
    channel: &str,
    msp_id: &str,
    names: Option<Vec<String>>,
) -> Result<(), crate::ledger::LedgerError> {
    let snapshot = state.snapshot(channel)?;
    let definitions = match names {
        Some(names) => {
            let mut out = BTreeMap::new();
            for name in names {
                if let Some(d) = lifecycle::committed(snapshot.as_ref(), &name)? {
                    out.insert(name, d);
                }
            }
            out
        }
        None => lifecycle::all_committed(snapshot.as_ref())?,
    };
    for (name, definition) in definitions {
        if let Some(package) =
            lifecycle::approved_package(snapshot.as_ref(), msp_id, &name, definition.sequence)?
        {
            let wasm = crate::runtime::wasm::WasmLimits {
                fuel_per_tx: (definition.wasm_fuel != 0).then_some(definition.wasm_fuel),
                max_memory: (definition.wasm_memory != 0).then_some(definition.wasm_memory),
            };
            // The limits first: the definition's transactions run under them from the
            // first one on.
            limits.set(&package, (wasm != Default::default()).then_some(wasm));
            support.define(name, PackageId::new(package));
        }
    }
    Ok(())
}

async fn bind(address: SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await.with_context(|| {
        format!("{what} cannot listen on {address}: is another node running? Set another address in core.toml or the environment")
    })
}

impl RunningNode {
    /// Starts the node of `data_dir`.
    pub async fn start(data_dir: &Path, options: StartOptions) -> anyhow::Result<Self> {
        let config = match &options.config {
            Some(config) => config.clone(),
            None => NodeConfig::load(data_dir)?,
        };
        std::fs::create_dir_all(data_dir)?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        let org = Organization::open_or_create(&data_dir, &config.msp_id)?;
        org.ensure_tls(&config.tls.hostnames)?;
        let peer_identity = Arc::new(org.peer()?);
        let orderer_identity = Arc::new(org.orderer()?);

        // The ledger.
        let ledgers = data_dir.join("ledgersData");
        std::fs::create_dir_all(&ledgers)?;
        let state = Arc::new(RedbStore::open(ledgers.join("state.redb"))?);
        let chain_dir = ledgers.join("chains").join(&config.channel);
        let genesis = if chain_dir.join("blockfile_000000").exists() {
            None
        } else {
            Some(blocks::genesis_block(&GenesisConfig {
                channel: config.channel.clone(),
                orgs: vec![OrgConfig {
                    msp_id: config.msp_id.clone(),
                    root_certs: vec![org.ca.cert_pem().to_owned()],
                    endorsement: format!("OR('{}.peer')", config.msp_id),
                }],
                batch: config.batch,
            })?)
        };
        let shared: Arc<dyn StateStore> = state.clone();
        let (ledger, report) = ChannelLedger::open(
            &chain_dir,
            Arc::clone(&shared),
            genesis.as_ref(),
            &LedgerOptions::default(),
        )?;
        // A new ledger applies its genesis block: nothing was repaired then.
        let fresh = genesis.is_some() && report.replayed <= 1;
        if report != Default::default() && !fresh {
            tracing::warn!(?report, "the ledger was repaired on open");
        }
        let ledger = Arc::new(ledger);
        let batch = ledger.genesis().batch;

        // Chaincode: support, runtimes, launcher.
        let chaincode_listener = bind(config.chaincode_listen, "the chaincode listener").await?;
        let chaincode_address = chaincode_listener.local_addr()?;
        // As Fabric: with `peer.tls.enabled` the chaincode listener runs mutual TLS too,
        // each launched chaincode getting a client certificate bound to its package id.
        // Not in dev mode, where chaincode is started by hand without certificates.
        let chaincode_tls = if options
            .chaincode_tls
            .unwrap_or(config.tls.enabled && !options.dev_mode)
        {
            let host = if chaincode_address.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                chaincode_address.ip().to_string()
            };
            Some(Arc::new(crate::tls::ChaincodeCa::new(&[
                host.as_str(),
                "localhost",
            ])?))
        } else {
            None
        };
        let support = ChaincodeSupport::new(
            SupportConfig {
                execute_timeout: config.execute_timeout,
                tls: chaincode_tls,
                dev_mode: options.dev_mode,
                lifecycle_reads: true,
                ..SupportConfig::default()
            },
            Arc::clone(&shared),
        )?;
        let package_limits = crate::runtime::wasm::PackageLimits::default();
        let (packages, runtimes) = runtimes(
            &data_dir,
            DockerConfig {
                peer_address: chaincode_address.to_string(),
                ..options.docker.clone()
            },
            Some(Arc::clone(support.metrics())),
            config.execute_timeout,
            &options.external_builders,
            &config.msp_id,
            package_limits.clone(),
        )?;
        let launcher = Launcher::new(support.clone(), packages, runtimes, config.startup_timeout);
        define_all(
            &support,
            &package_limits,
            state.as_ref(),
            &config.channel,
            &config.msp_id,
            None,
        )?;
        {
            let support = support.clone();
            let state = Arc::clone(&shared);
            let channel = config.channel.clone();
            let msp_id = config.msp_id.clone();
            let package_limits = package_limits.clone();
            ledger.on_commit(Box::new(move |block| {
                if block.definitions.is_empty() {
                    return;
                }
                let names = block.definitions.iter().map(|(n, _)| n.clone()).collect();
                if let Err(e) = define_all(
                    &support,
                    &package_limits,
                    state.as_ref(),
                    &channel,
                    &msp_id,
                    Some(names),
                ) {
                    tracing::error!(error = %e, "reading committed chaincode definitions");
                }
            }));
        }

        // Ordering.
        let (orderer, cutter) = Orderer::new(
            Arc::clone(&ledger),
            orderer_identity,
            Some(batch),
            DEFAULT_QUEUE,
        );
        let cutter = tokio::spawn(cutter.run());

        // Client services.
        let channels = BTreeMap::from([(config.channel.clone(), Arc::clone(&ledger))]);
        let local_msp = ledger.genesis().msps.clone();
        let endorser = Endorser::new(
            channels.clone(),
            Arc::clone(&shared),
            support.clone(),
            peer_identity,
            local_msp,
            Arc::new(Host {
                msp_id: config.msp_id.clone(),
                launcher: Arc::clone(&launcher),
            }),
        )
        .dev_mode(options.dev_mode);
        let gateway_channels = channels.clone();
        let endorser = Arc::new(endorser);
        let deliver = DeliverService::new(channels);
        let deliver_handle = deliver.clone();
        let peer_listener = bind(config.listen, "the peer").await?;
        let address = peer_listener.local_addr()?;
        let (stop_peer, peer_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut server = tonic::transport::Server::builder();
        let (tls_ca, tls_client) = if config.tls.enabled {
            let tls = org.peer_tls();
            let file = |configured: &str, default: PathBuf| {
                if configured.is_empty() {
                    default
                } else {
                    PathBuf::from(configured)
                }
            };
            let cert = file(&config.tls.cert_file, tls.join("server.crt"));
            let key = file(&config.tls.key_file, tls.join("server.key"));
            let root = file(&config.tls.rootcert_file, tls.join("ca.crt"));
            let read = |path: &Path| {
                std::fs::read(path)
                    .with_context(|| format!("reading {} (peer.tls.*)", path.display()))
            };
            let mut tls_config = tonic::transport::ServerTlsConfig::new().identity(
                tonic::transport::Identity::from_pem(read(&cert)?, read(&key)?),
            );
            let mut client = None;
            if config.tls.client_auth_required {
                tls_config = tls_config
                    .client_ca_root(tonic::transport::Certificate::from_pem(read(&root)?))
                    .client_auth_optional(false);
                let user_tls = org.user_msp().with_file_name("tls");
                client = Some((user_tls.join("client.crt"), user_tls.join("client.key")));
            }
            server = server
                .tls_config(tls_config)
                .context("the TLS configuration (peer.tls.*)")?;
            (Some(root), client)
        } else {
            (None, None)
        };
        let peer = tokio::spawn(
            server
                .add_service(
                    cchost_proto::protos::endorser_server::EndorserServer::new(EndorserService(
                        Arc::clone(&endorser),
                    ))
                    .max_decoding_message_size(config.max_recv_msg_size)
                    .max_encoding_message_size(config.max_send_msg_size),
                )
                .add_optional_service(config.gateway.map(|options| {
                    cchost_proto::gateway::gateway_server::GatewayServer::new(
                        crate::gateway::GatewayService::new(
                            Arc::clone(&endorser),
                            orderer.clone(),
                            gateway_channels,
                            address.to_string(),
                            config.msp_id.clone(),
                        )
                        .options(options),
                    )
                    .max_decoding_message_size(config.max_recv_msg_size)
                    .max_encoding_message_size(config.max_send_msg_size)
                }))
                .add_service(
                    cchost_proto::protos::deliver_server::DeliverServer::new(deliver.clone())
                        .max_decoding_message_size(config.max_recv_msg_size)
                        .max_encoding_message_size(config.max_send_msg_size),
                )
                .add_service(
                    cchost_proto::orderer::atomic_broadcast_server::AtomicBroadcastServer::new(
                        BroadcastService::with_deliver(orderer, deliver),
                    )
                    .max_decoding_message_size(config.max_recv_msg_size)
                    .max_encoding_message_size(config.max_send_msg_size),
                )
                .serve_with_incoming_shutdown(crate::support::incoming(peer_listener), async {
                    let _ = peer_stopped.await;
                }),
        );
        let (stop_chaincode, chaincode_stopped) = tokio::sync::oneshot::channel::<()>();
        let chaincode = {
            let support = support.clone();
            tokio::spawn(async move {
                support
                    .serve(chaincode_listener, async {
                        let _ = chaincode_stopped.await;
                    })
                    .await
            })
        };
        let (operations, operations_address) = match config.operations_listen {
            Some(addr) => {
                let listener = bind(addr, "the operations endpoints").await?;
                let address = listener.local_addr()?;
                let checks: Vec<Arc<dyn HealthCheck>> =
                    vec![Arc::new(StateDbCheck(Arc::clone(&shared)))];
                let router = crate::operations::router(Operations {
                    metrics: Arc::clone(support.metrics()),
                    checks,
                    logspec: options.logspec.clone().unwrap_or_else(|| {
                        Arc::new(LogSpec::new("info", |_| {
                            Err("this node's log filter cannot be changed".to_owned())
                        }))
                    }),
                });
                (
                    Some(tokio::spawn(
                        async move { axum::serve(listener, router).await },
                    )),
                    Some(address),
                )
            }
            None => (None, None),
        };

        let profile = ClientProfile {
            address: address.to_string(),
            channel: config.channel.clone(),
            msp_id: config.msp_id.clone(),
            admin_msp: org.admin_msp(),
            user_msp: org.user_msp(),
            data_dir: data_dir.clone(),
            tls_ca,
            tls_client,
            tls_server_name: None,
        };
        let (rest, rest_address) = match &config.rest {
            Some(settings) => {
                let listener = bind(settings.address, "the REST endpoint").await?;
                let address = listener.local_addr()?;
                let router =
                    crate::rest::router(crate::rest::Rest::new(crate::rest::RestConfig {
                        profile: profile.clone(),
                        security: settings.security,
                        dev_mode: options.dev_mode,
                        max_body_bytes: settings.max_body_bytes as usize,
                        read_timeout: settings.read_timeout,
                        commit_timeout: settings.commit_timeout,
                    })?);
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(crate::rest::serve(
                    listener,
                    router,
                    settings.read_timeout,
                    async {
                        let _ = stopped.await;
                    },
                ));
                (Some((stop, task)), Some(address))
            }
            None => (None, None),
        };
        let json = serde_json::to_vec_pretty(&profile)?;
        std::fs::write(ClientProfile::file(&data_dir), &json)?;
        if options.write_home_profile
            && let Some(home) = ClientProfile::last_started()
        {
            if let Some(parent) = home.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&home, &json).with_context(|| format!("writing {}", home.display()))?;
        }
        Ok(Self {
            address,
            chaincode_address,
            operations_address,
            rest_address,
            ledger,
            profile,
            stop_peer: Some(stop_peer),
            stop_chaincode: Some(stop_chaincode),
            peer,
            chaincode,
            cutter,
            operations,
            rest,
            launcher,
            support,
            deliver: deliver_handle,
        })
    }

    /// Whether the chaincode listener runs mutual TLS.
    pub fn chaincode_tls(&self) -> bool {
        self.support.config().tls.is_some()
    }

    /// Waits up to `timeout` for chaincode `package_id` to register (dev mode); whether
    /// it did.
    pub async fn wait_registered(&self, package_id: &PackageId, timeout: Duration) -> bool {
        self.support.wait_ready(package_id, timeout).await
    }

    /// Stops chaincode `package_id` the way a crash ends it: its stream closes, and the
    /// next transaction for it launches it again. Returns once its stream has
    /// deregistered.
    pub async fn stop_chaincode(&self, package_id: &PackageId) {
        self.launcher.stop(package_id).await;
    }

    /// Stops intake, commits what the orderer holds, stops the chaincode the node
    /// started, and closes the ledger.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // The REST endpoint is a client of the peer services: it stops first.
        if let Some((stop, task)) = self.rest.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        if let Some(stop) = self.stop_peer.take() {
            let _ = stop.send(());
        }
        // Deliver streams wait for blocks forever: they end now, or the graceful
        // shutdown would wait for them.
        self.deliver.close();
        // In-flight requests finish; then the services (and the orderer handles they
        // hold) are dropped, and the cutter commits what is queued and ends.
        self.peer.await??;
        match tokio::time::timeout(Duration::from_secs(30), &mut self.cutter).await {
            Ok(result) => result??,
            Err(_) => {
                self.cutter.abort();
                anyhow::bail!("the orderer did not drain within 30 s");
            }
        }
        self.launcher.shutdown().await;
        if let Some(stop) = self.stop_chaincode.take() {
            let _ = stop.send(());
        }
        self.chaincode.await??;
        if let Some(operations) = self.operations.take() {
            operations.abort();
        }
        Ok(())
    }
}

/// The gRPC face of the [`Endorser`].
#[derive(Debug, Clone)]
pub struct EndorserService(pub Arc<Endorser>);

#[tonic::async_trait]
impl cchost_proto::protos::endorser_server::Endorser for EndorserService {
    async fn process_proposal(
        &self,
        request: tonic::Request<cchost_proto::protos::SignedProposal>,
    ) -> Result<tonic::Response<cchost_proto::protos::ProposalResponse>, tonic::Status> {
        self.0
            .process_proposal(request.get_ref())
            .await
            .map(tonic::Response::new)
            .map_err(|e| tonic::Status::unknown(e.0))
    }
}
