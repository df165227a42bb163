//! `cchost chaincode run` and `cchost chaincode serve`: wasm chaincode for a Fabric peer
//! in another process. `run` is what an external builder's `bin/run` execs: it dials the
//! peer named in `chaincode.json`. `serve` is chaincode-as-a-service: the peer dials it.
//! Either way the chaincode side is [`RemoteChaincode::serve`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use cchost::ids::PackageId;
use cchost::proto::protos::ChaincodeMessage;
use cchost::proto::protos::chaincode_server::{Chaincode, ChaincodeServer};
use cchost::proto::protos::chaincode_support_client::ChaincodeSupportClient;
use cchost::runtime::wasm::{DRAIN_TIMEOUT, RemoteChaincode, SessionEnd, WasmConfig, WasmRuntime};
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

/// Fabric's largest gRPC message (`peer.maxRecvMsgSize`, `maxSendMsgSize`: 100 MiB).
const MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;
/// How long dialing the peer may take (the Go shim's dial timeout).
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages queued towards the peer.
const OUTBOUND_QUEUE: usize = 64;
/// `Connect` sessions one `serve` process holds at once (each peer opens one), and
/// streams per connection: a client cannot open sessions without bound.
const MAX_SESSIONS: usize = 64;
const MAX_STREAMS_PER_CONNECTION: u32 = 4;

/// `RUN_METADATA_DIR/chaincode.json`, as a Fabric peer writes it for `bin/run`.
#[derive(Debug, Deserialize)]
struct RunConfig {
    chaincode_id: String,
    peer_address: String,
    #[serde(default)]
    client_cert: String,
    #[serde(default)]
    client_key: String,
    #[serde(default)]
    root_cert: String,
    #[serde(default)]
    mspid: String,
}

/// Resolves at SIGTERM or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

fn runtime() -> anyhow::Result<WasmRuntime> {
    Ok(WasmRuntime::new(WasmConfig::default())?)
}

/// `cchost chaincode run BUILD_OUTPUT_DIR RUN_METADATA_DIR`: serves the peer until it
/// closes the stream (an error: the peer relaunches the chaincode) or SIGTERM (the
/// transactions in flight are answered first; success).
pub(crate) async fn run(build: &Path, run_metadata: &Path) -> anyhow::Result<()> {
    let path = run_metadata.join("chaincode.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let config: RunConfig =
        serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
    let runtime = runtime()?;
    let module = runtime
        .load_build(build)
        .with_context(|| format!("loading the build in {}", build.display()))?;
    let chaincode = runtime.remote(&module, PackageId::new(config.chaincode_id.clone()));
    let channel = dial(&config)
        .await
        .with_context(|| format!("dialing the peer at {}", config.peer_address))?;
    info!(chaincode = %config.chaincode_id, peer = %config.peer_address, mspid = %config.mspid, "connected");
    let (outbound, queued) = mpsc::channel(OUTBOUND_QUEUE);
    let mut client = ChaincodeSupportClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    // A Fabric peer (grpc-go) sends its response headers with its first message, which
    // it sends only once it has read REGISTER, and tonic's call returns at the headers:
    // the call is made lazily, at the session's first read, after it queued REGISTER.
    let peer = config.peer_address.clone();
    let call = client.register(ReceiverStream::new(queued));
    let inbound = futures_util::stream::once(call)
        .map_ok(|response| {
            response
                .into_inner()
                .map_err(|status| status.message().to_owned())
        })
        .map_err(move |status| {
            format!(
                "the peer at {peer} refused the chaincode stream: {}",
                status.message()
            )
        })
        .try_flatten();
    match chaincode
        .serve(Box::pin(inbound), outbound, terminated())
        .await
    {
        Ok(SessionEnd::Stopped) => {
            info!(chaincode = %config.chaincode_id, "stopped");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "chaincode {} lost the peer at {}: {e}",
            config.chaincode_id,
            config.peer_address
        )),
    }
}

/// A channel to the peer: mutual TLS with chaincode.json's certificates, plaintext when
/// they are empty (a peer without TLS).
async fn dial(config: &RunConfig) -> anyhow::Result<tonic::transport::Channel> {
    let tls = !config.root_cert.is_empty();
    let scheme = if tls { "https" } else { "http" };
    let mut endpoint =
        tonic::transport::Endpoint::from_shared(format!("{scheme}://{}", config.peer_address))
            .context("peer_address must be host:port")?
            .connect_timeout(DIAL_TIMEOUT)
            .keep_alive_while_idle(true)
            .http2_keep_alive_interval(Duration::from_secs(60))
            .keep_alive_timeout(Duration::from_secs(20));
    if tls {
        let host = config
            .peer_address
            .rsplit_once(':')
            .map_or(config.peer_address.as_str(), |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&config.root_cert))
            .domain_name(host);
        if !config.client_cert.is_empty() || !config.client_key.is_empty() {
            tls = tls.identity(Identity::from_pem(&config.client_cert, &config.client_key));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    tokio::time::timeout(DIAL_TIMEOUT, endpoint.connect())
        .await
        .map_err(|_| anyhow::anyhow!("no connection within {DIAL_TIMEOUT:?}"))?
        .map_err(|e| anyhow::anyhow!("{}", cchost::runtime::error_chain(&e)))
}

/// TLS for `cchost chaincode serve`, from PEM files.
#[derive(Debug, Clone)]
pub(crate) struct ServeTls {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// Require client certificates issued by this CA (connection.json's
    /// `client_auth_required`).
    pub(crate) client_ca: Option<PathBuf>,
}

/// `/protos.Chaincode/Connect`: every stream a peer opens is a session.
struct ConnectService {
    chaincode: RemoteChaincode,
    stopping: watch::Receiver<bool>,
    /// Sessions running: the server waits for none to be left before it ends.
    sessions: std::sync::Arc<watch::Sender<usize>>,
}

type ConnectStream = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Chaincode for ConnectService {
    type ConnectStream = ConnectStream;

    async fn connect(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<ConnectStream>, Status> {
        let peer = request
            .remote_addr()
            .map_or_else(|| "a peer".to_owned(), |a| a.to_string());
        let inbound = request.into_inner();
        let (outbound, queued) = mpsc::channel(OUTBOUND_QUEUE);
        let (chaincode, mut stopping, sessions) = (
            self.chaincode.clone(),
            self.stopping.clone(),
            std::sync::Arc::clone(&self.sessions),
        );
        if *stopping.borrow() {
            return Err(Status::unavailable("the chaincode is shutting down"));
        }
        let mut admitted = false;
        sessions.send_modify(|n| {
            if *n < MAX_SESSIONS {
                *n += 1;
                admitted = true;
            }
        });
        if !admitted {
            return Err(Status::resource_exhausted(format!(
                "the chaincode holds {MAX_SESSIONS} sessions already"
            )));
        }
        tokio::spawn(async move {
            struct Ended(std::sync::Arc<watch::Sender<usize>>);
            impl Drop for Ended {
                fn drop(&mut self) {
                    self.0.send_modify(|n| *n = n.saturating_sub(1));
                }
            }
            let _ended = Ended(sessions);
            let stop = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            match chaincode.serve(inbound, outbound, stop).await {
                Ok(SessionEnd::Stopped) => info!(%peer, "session stopped"),
                Err(e) => warn!(%peer, "session ended: {e}"),
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(queued).map(Ok))))
    }
}

/// `cchost chaincode serve`: serves `/protos.Chaincode/Connect` on `address` until
/// SIGTERM, then answers the transactions in flight and exits.
pub(crate) async fn serve(
    package: &Path,
    address: SocketAddr,
    package_id: PackageId,
    tls: Option<ServeTls>,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(package).with_context(|| format!("reading {}", package.display()))?;
    let parsed = cchost::package::ChaincodePackage::parse(&bytes)?;
    let runtime = runtime()?;
    let module = runtime.install(&parsed)?;
    let chaincode = runtime.remote(&module, package_id.clone());
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let (stop, stopping) = watch::channel(false);
    let sessions = std::sync::Arc::new(watch::channel(0_usize).0);
    let mut running = sessions.subscribe();
    let service = ConnectService {
        chaincode,
        stopping,
        sessions,
    };
    let mut server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(2 * 60 * 60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION));
    if let Some(tls) = &tls {
        let read = |path: &Path| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        let mut config =
            ServerTlsConfig::new().identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
        if let Some(ca) = &tls.client_ca {
            config = config
                .client_ca_root(Certificate::from_pem(read(ca)?))
                .client_auth_optional(false);
        }
        server = server.tls_config(config)?;
    }
    println!(
        "serving chaincode {package_id} on {}{}",
        listener.local_addr()?,
        if tls.is_some() { " (TLS)" } else { "" }
    );
    let router = server.add_service(
        ChaincodeServer::new(service)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE),
    );
    router
        .serve_with_incoming_shutdown(cchost::support::incoming(listener), async move {
            terminated().await;
            info!("stopping: answering the transactions in flight first");
            let _ = stop.send(true);
            // Each session answers its transactions in flight within the drain timeout.
            let drained = running.wait_for(|n| *n == 0);
            let _ = tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(1), drained).await;
        })
        .await?;
    Ok(())
}
