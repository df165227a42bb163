//! Wasm chaincode in a process of its own, for a peer on the other end of a gRPC stream:
//! through the external builder `cchost builder install` writes (`bin/run` execs
//! `cchost chaincode run`, which dials the peer with mutual TLS) and as
//! chaincode-as-a-service (`cchost chaincode serve`, dialed by the ccaas runtime). The
//! peer is cchost's own handler and launcher, which run the builder with Fabric's
//! semantics. (These tests live with the binary because they need
//! `CARGO_BIN_EXE_cchost`.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cchost::ids::PackageId;
use cchost::launcher::{ChaincodeRuntime, Launcher};
use cchost::ledger::{CommitTx, Height, RedbStore, StateStore};
use cchost::package::build_wasm_package;
use cchost::proposal::{BuiltProposal, DevIdentity, ProposalBuilder};
use cchost::proto::protos::chaincode_message::Type;
use cchost::proto::protos::chaincode_support_server::{
    ChaincodeSupport as Register, ChaincodeSupportServer,
};
use cchost::proto::protos::{
    ChaincodeAdditionalParams, ChaincodeId, ChaincodeInput, ChaincodeMessage, GetState, Response,
};
use cchost::runtime::ccaas::CcaasRuntime;
use cchost::runtime::external::{ExternalBuilder, ExternalConfig, ExternalRuntime};
use cchost::runtime::wasm::{WasmConfig, WasmRuntime};
use cchost::support::{ChaincodeSupport, ExecuteError, ExecuteResult, SupportConfig};
use cchost::tls::ChaincodeCa;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Status, Streaming};

const CHANNEL: &str = "mychannel";
const WAIT: Duration = Duration::from_secs(60);

/// The cchost binary, printing errors without a backtrace whatever the test's
/// environment asks for.
fn cchost() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cchost"));
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("CCHOST_LOG");
    command
}

/// Runs `cchost ARGS` to success; its standard output.
fn run(args: &[&str]) -> String {
    let out = cchost().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cchost {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A wasm package of a crate of this source tree, built by `cchost package` into the
/// target directory `tests/build.rs` uses (reusing its build).
fn package(crate_dir: &str, label: &str, dir: &Path) -> (PathBuf, Vec<u8>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = dir.join(format!("{label}.tar.gz"));
    run(&[
        "package",
        root.join(crate_dir).to_str().unwrap(),
        "--label",
        label,
        "--output",
        output.to_str().unwrap(),
        "--target-dir",
        root.join("target/guests").to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&output).unwrap();
    (output, bytes)
}

/// The builder, written by `cchost builder install` into `dir`.
fn wasm_builder(dir: &Path) -> ExternalBuilder {
    let text = run(&["builder", "install", dir.to_str().unwrap()]);
    let bin = dir.join("bin");
    assert_eq!(
        text,
        ["detect", "build", "release", "run"]
            .map(|p| format!("{}\n", bin.join(p).display()))
            .concat()
    );
    ExternalBuilder {
        name: "wasm".into(),
        path: dir.to_owned(),
        propagate_environment: Vec::new(),
    }
}

/// A child process killed and reaped when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A peer: the handler on a loopback listener, an in-memory ledger, a launcher.
struct Peer {
    support: ChaincodeSupport,
    store: Arc<RedbStore>,
    addr: SocketAddr,
    launcher: Option<Arc<Launcher>>,
    next_block: AtomicU64,
    _stop: oneshot::Sender<()>,
}

impl Peer {
    async fn start(tls: bool) -> Self {
        let store = Arc::new(RedbStore::in_memory().unwrap());
        store.create_channel(CHANNEL).unwrap();
        let tls = tls.then(|| Arc::new(ChaincodeCa::new(&["127.0.0.1", "localhost"]).unwrap()));
        let support = ChaincodeSupport::new(
            SupportConfig {
                tls,
                ..SupportConfig::default()
            },
            Arc::clone(&store) as Arc<dyn StateStore>,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = support.clone();
        tokio::spawn(async move {
            let _ = server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            support,
            store,
            addr,
            launcher: None,
            next_block: AtomicU64::new(1),
            _stop: stop,
        }
    }

    fn with_runtimes(mut self, runtimes: Vec<Arc<dyn ChaincodeRuntime>>, dir: &Path) -> Self {
        let packages = cchost::package::PackageStore::open(dir.join("chaincodes")).unwrap();
        self.launcher = Some(Launcher::new(
            self.support.clone(),
            packages,
            runtimes,
            WAIT,
        ));
        self
    }

    /// The external builder runtime with `builder`, dialed back at this peer's listener.
    fn external(&self, builder: ExternalBuilder, dir: &Path) -> Arc<dyn ChaincodeRuntime> {
        Arc::new(
            ExternalRuntime::new(ExternalConfig {
                builders: vec![builder],
                builds_dir: dir.join("externalbuilder/builds"),
                peer_address: self.addr.to_string(),
                mspid: "Org1MSP".into(),
                build_timeout: WAIT,
            })
            .unwrap(),
        )
    }

    fn install(&self, name: &str, package: &[u8]) -> PackageId {
        let id = self.launcher.as_ref().unwrap().install(package).unwrap();
        self.support.define(name, id.clone());
        id
    }

    async fn execute(&self, proposal: &BuiltProposal) -> Result<ExecuteResult, ExecuteError> {
        self.support.execute(&proposal.signed_proposal).await
    }

    fn commit(&self, result: &ExecuteResult, proposal: &BuiltProposal) {
        let height = Height::new(self.next_block.fetch_add(1, Ordering::SeqCst), 0);
        self.store
            .commit(
                CHANNEL,
                &[CommitTx {
                    height,
                    tx_id: result.txid.clone(),
                    timestamp: proposal.timestamp,
                    rwset: result.rwset.clone(),
                }],
            )
            .unwrap();
    }
}

/// fabric-samples' asset-transfer-basic sequence and edge cases.
fn steps() -> Vec<Vec<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/asset-transfer/tests/fabric-samples-steps.json");
    let steps: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    serde_json::from_value(steps["steps"].clone()).unwrap()
}

type Outcome = (
    Response,
    Option<cchost::proto::protos::ChaincodeEvent>,
    cchost::proto::rwset::TxReadWriteSet,
);

/// Runs the sequence on `peer`'s chaincode `basic`, committing what succeeds; the same
/// identity, nonces and timestamps every time, so every peer sees the same txids.
async fn sequence(peer: &Peer, identity: &DevIdentity) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (i, args) in steps().iter().enumerate() {
        let proposal = ProposalBuilder::new(CHANNEL, "basic")
            .args(args)
            .nonce(vec![u8::try_from(i).unwrap(); 24])
            .timestamp(prost_types::Timestamp {
                seconds: 1_700_000_000 + i64::try_from(i).unwrap(),
                nanos: 0,
            })
            .build(identity)
            .unwrap();
        let result = peer
            .execute(&proposal)
            .await
            .unwrap_or_else(|e| panic!("step {i} {args:?}: {e}"));
        if result.response.status < 400 {
            peer.commit(&result, &proposal);
        }
        outcomes.push((result.response, result.event, result.rwset));
    }
    outcomes
}

/// The sequence on the in-process wasm runtime: what the remote paths must equal.
async fn in_process(package: &[u8], identity: &DevIdentity, dir: &Path) -> Vec<Outcome> {
    let peer = Peer::start(false).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let peer = peer.with_runtimes(vec![Arc::new(runtime)], &dir.join("in-process"));
    peer.install("basic", package);
    sequence(&peer, identity).await
}

fn assert_same(remote: &[Outcome], local: &[Outcome]) {
    assert_eq!(remote.len(), local.len());
    for (i, (remote, local)) in remote.iter().zip(local).enumerate() {
        assert_eq!(remote.0, local.0, "step {i}: responses differ");
        assert_eq!(remote.1, local.1, "step {i}: events differ");
        assert_eq!(remote.2, local.2, "step {i}: read/write sets differ");
    }
    // The sequence did something: assets were created, read and refused.
    let statuses: Vec<i32> = local.iter().map(|o| o.0.status).collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&500),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_transfer_through_the_wasm_builder_over_mutual_tls_answers_byte_for_byte_as_in_process()
 {
    let dir = tempfile::tempdir().unwrap();
    let (_, package) = package("examples/asset-transfer", "basic_1.0", dir.path());
    let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
    let expected = in_process(&package, &identity, dir.path()).await;

    let peer = Peer::start(true).await;
    let external = peer.external(wasm_builder(&dir.path().join("builder")), dir.path());
    let peer = peer.with_runtimes(vec![external], dir.path());
    let id = peer.install("basic", &package);
    let outcomes = sequence(&peer, &identity).await;
    assert_same(&outcomes, &expected);

    // The build the peer keeps: the module and its precompiled artifact, and the name of
    // the builder that made it.
    let kept = dir
        .path()
        .join("externalbuilder/builds")
        .join(id.as_str().replace(':', "-"));
    assert_eq!(
        std::fs::read_to_string(kept.join("build-info.json")).unwrap(),
        r#"{"builder_name":"wasm"}"#
    );
    let module = cchost::package::ChaincodePackage::parse(&package).unwrap();
    assert_eq!(
        std::fs::read(kept.join("bld/chaincode.wasm")).unwrap(),
        module.wasm().unwrap()
    );
    assert!(kept.join("bld/chaincode.cwasm").is_file());
    peer.launcher.as_ref().unwrap().shutdown().await;
}

/// TLS material for `cchost chaincode serve` and its client: one CA, a server
/// certificate for 127.0.0.1 and a client certificate, as PEM.
struct TlsFiles {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn tls_files() -> TlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    TlsFiles {
        ca: ca_pem,
        server: leaf(vec!["127.0.0.1".to_owned()]),
        client: leaf(vec!["peer0.org1.example.com".to_owned()]),
    }
}

/// fabric-samples' sequence through `cchost chaincode serve`, dialed by the ccaas
/// runtime (with TLS and client authentication when `tls`), equals the in-process run.
async fn serve_answers_as_in_process(tls: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (wasm_package, package) = package("examples/asset-transfer", "basic_1.0", dir.path());
    let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
    let expected = in_process(&package, &identity, dir.path()).await;

    // The address is in the ccaas package, whose id the server registers as: the port
    // is chosen first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut connection = serde_json::json!({"address": address, "dial_timeout": "10s"});
    let mut serve = cchost();
    serve.args(["chaincode", "serve"]).arg(&wasm_package);
    if tls {
        let files = tls_files();
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        serve
            .arg("--tls-cert")
            .arg(write("server.pem", &files.server.0))
            .arg("--tls-key")
            .arg(write("server.key", &files.server.1))
            .arg("--client-ca")
            .arg(write("ca.pem", &files.ca));
        connection = serde_json::json!({
            "address": address,
            "dial_timeout": "10s",
            "tls_required": true,
            "client_auth_required": true,
            "root_cert": files.ca,
            "client_cert": files.client.0,
            "client_key": files.client.1,
        });
    }
    let ccaas =
        cchost::package::build_ccaas_package("basic_ccaas", connection.to_string().as_bytes())
            .unwrap();
    let ccaas_id = cchost::package::package_id("basic_ccaas", &ccaas);
    let mut server = Killed(
        serve
            .args(["--address", &address, "--package-id", ccaas_id.as_str()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let suffix = if tls { " (TLS)" } else { "" };
    assert_eq!(
        line,
        format!("serving chaincode {ccaas_id} on {address}{suffix}\n")
    );

    let peer = Peer::start(false).await;
    let peer = peer.with_runtimes(vec![Arc::new(CcaasRuntime)], dir.path());
    assert_eq!(peer.install("basic", &ccaas), ccaas_id);
    let outcomes = sequence(&peer, &identity).await;
    assert_same(&outcomes, &expected);
    peer.launcher.as_ref().unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_transfer_served_by_chaincode_serve_to_the_ccaas_runtime_answers_byte_for_byte_as_in_process()
 {
    serve_answers_as_in_process(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_transfer_served_over_mutual_tls_by_chaincode_serve_answers_byte_for_byte_as_in_process()
 {
    serve_answers_as_in_process(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_the_builder_refuses_fails_install_with_the_message_cchost_install_prints() {
    let dir = tempfile::tempdir().unwrap();
    // A module without the cchost ABI's exports.
    let refused = build_wasm_package("empty_1", "empty", b"\0asm\x01\0\0\0").unwrap();
    let file = dir.path().join("empty.tar.gz");
    std::fs::write(&file, &refused).unwrap();
    let install = cchost()
        .args(["install", file.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!install.status.success());
    let printed = String::from_utf8(install.stderr).unwrap();
    let message = printed.trim_start_matches("Error: ").trim_end();
    assert!(
        message.starts_with("the chaincode module is refused: "),
        "{printed}"
    );

    let peer = Peer::start(false).await;
    let external = peer.external(wasm_builder(&dir.path().join("builder")), dir.path());
    let peer = peer.with_runtimes(vec![external], dir.path());
    let error = peer
        .launcher
        .as_ref()
        .unwrap()
        .install(&refused)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(message),
        "{error}\ndoes not carry\n{message}"
    );
    assert!(error.contains("external builder"), "{error}");
    assert!(
        !dir.path()
            .join("externalbuilder/builds")
            .read_dir()
            .unwrap()
            .any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("empty_1")
            }),
        "a refused package leaves no build behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_a_trapping_and_a_memory_exhausting_transaction_each_fail_alone_while_the_run_process_serves()
 {
    let dir = tempfile::tempdir().unwrap();
    let (_, package) = package("tests/guests/asset", "asset_1", dir.path());
    let peer = Peer::start(false).await;
    let external = peer.external(wasm_builder(&dir.path().join("builder")), dir.path());
    let peer = Arc::new(peer.with_runtimes(vec![external], dir.path()));
    let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
    peer.install("asset", &package);
    let proposal = |args: &[&str]| {
        ProposalBuilder::new(CHANNEL, "asset")
            .args(args)
            .build(&identity)
            .unwrap()
    };
    let written = proposal(&["asset:put", "k", "v"]);
    let put = peer.execute(&written).await.unwrap();
    assert_eq!(put.response.status, 200);
    peer.commit(&put, &written);
    let launches = || {
        peer.support
            .metrics()
            .encode()
            .lines()
            .filter(|l| l.starts_with("chaincode_launch_duration_count"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    let launched = launches();

    for (args, error) in [
        (&["asset:spin"][..], "chaincode ran out of fuel"),
        (
            &["asset:trap"],
            "chaincode trapped: wasm `unreachable` instruction executed",
        ),
        (
            &["asset:hog"],
            "chaincode trapped: wasm `unreachable` instruction executed",
        ),
    ] {
        let gets = peer.support.requests_received(Type::GetState);
        let hostile = {
            let (peer, proposal) = (Arc::clone(&peer), proposal(args));
            tokio::spawn(async move { peer.execute(&proposal).await })
        };
        if args == ["asset:spin"] {
            // The spinner's one host call comes first: then it burns its fuel.
            let started = async {
                while peer.support.requests_received(Type::GetState) == gets {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::time::timeout(WAIT, started)
                .await
                .expect("the spinner made no host call");
        }
        // Meanwhile the same process answers another transaction.
        let read = peer.execute(&proposal(&["asset:get", "k"])).await.unwrap();
        assert_eq!(
            (read.response.status, read.response.payload.as_slice()),
            (200, &b"v"[..])
        );
        if args == ["asset:spin"] {
            assert!(
                !hostile.is_finished(),
                "the read was answered while the spinner ran"
            );
        }
        let failed = hostile.await.unwrap().unwrap_err().to_string();
        assert!(failed.ends_with(error), "{args:?}: {failed}");
    }
    // Still the process launched first: none of it ended the chaincode.
    let read = peer.execute(&proposal(&["asset:get", "k"])).await.unwrap();
    assert_eq!(read.response.payload, b"v");
    assert_eq!(launches(), launched);
    peer.launcher.as_ref().unwrap().shutdown().await;
}

/// A stream the chaincode opened: its first message, what it sends next, and the
/// sender of what it receives.
type Opened = (
    ChaincodeMessage,
    Streaming<ChaincodeMessage>,
    mpsc::Sender<Result<ChaincodeMessage, Status>>,
);

/// A peer the test drives by hand: each stream opened to `Register` is handed over. Like
/// a Fabric peer (grpc-go), it answers the call (sends its response headers) only once
/// it has read the chaincode's first message.
struct Scripted(mpsc::Sender<Opened>);

#[tonic::async_trait]
impl Register for Scripted {
    type RegisterStream = ReceiverStream<Result<ChaincodeMessage, Status>>;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<Self::RegisterStream>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("no first message"))?;
        let (to_chaincode, outbound) = mpsc::channel(16);
        let _ = self.0.send((first, inbound, to_chaincode)).await;
        Ok(tonic::Response::new(ReceiverStream::new(outbound)))
    }
}

/// `cchost chaincode run` of the asset guest's build against a scripted peer: the
/// process, its stderr lines, the chaincode's stream and the peer's side of it.
struct RunProcess {
    child: Killed,
    stderr: mpsc::UnboundedReceiver<String>,
    from: Streaming<ChaincodeMessage>,
    to: mpsc::Sender<Result<ChaincodeMessage, Status>>,
    _dir: tempfile::TempDir,
}

async fn run_against_scripted_peer() -> RunProcess {
    let dir = tempfile::tempdir().unwrap();
    let (_, package) = package("tests/guests/asset", "asset_1", dir.path());
    let parsed = cchost::package::ChaincodePackage::parse(&package).unwrap();
    let (source, metadata, build, run_metadata) = (
        dir.path().join("src"),
        dir.path().join("metadata"),
        dir.path().join("bld"),
        dir.path().join("run"),
    );
    for d in [&source, &metadata, &build, &run_metadata] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(source.join("guest_asset.wasm"), parsed.wasm().unwrap()).unwrap();
    std::fs::write(
        metadata.join("metadata.json"),
        serde_json::to_vec(parsed.metadata()).unwrap(),
    )
    .unwrap();
    let built = cchost()
        .args(["builder", "build"])
        .args([&source, &metadata, &build])
        .output()
        .unwrap();
    assert!(built.status.success());
    // What a peer logs: the builder's stderr (its stdout is dropped).
    let text = String::from_utf8(built.stderr).unwrap();
    assert!(
        text.starts_with("validated and precompiled guest_asset.wasm ("),
        "{text}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (streams, mut opened) = mpsc::channel(1);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ChaincodeSupportServer::new(Scripted(streams)))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    std::fs::write(
        run_metadata.join("chaincode.json"),
        serde_json::json!({
            "chaincode_id": "asset_1:scripted",
            "peer_address": addr.to_string(),
            "client_cert": "", "client_key": "", "root_cert": "",
            "mspid": "Org1MSP",
        })
        .to_string(),
    )
    .unwrap();
    let mut child = Killed(
        cchost()
            .args(["chaincode", "run"])
            .args([&build, &run_metadata])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (lines, stderr) = mpsc::unbounded_channel();
    let pipe = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    let (register, from, to) = tokio::time::timeout(WAIT, opened.recv())
        .await
        .expect("the chaincode did not send its first message")
        .unwrap();
    assert_eq!(register.r#type(), Type::Register);
    assert_eq!(
        ChaincodeId::decode(register.payload.as_slice())
            .unwrap()
            .name,
        "asset_1:scripted"
    );
    RunProcess {
        child,
        stderr,
        from,
        to,
        _dir: dir,
    }
}

async fn next(from: &mut Streaming<ChaincodeMessage>) -> ChaincodeMessage {
    tokio::time::timeout(WAIT, from.next())
        .await
        .expect("the chaincode sent nothing")
        .expect("the chaincode closed its stream")
        .unwrap()
}

fn message(ty: Type, txid: &str, payload: Vec<u8>) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: ty.into(),
        payload,
        txid: txid.to_owned(),
        channel_id: CHANNEL.to_owned(),
        ..Default::default()
    }
}

/// A TRANSACTION of the asset guest, with a signed proposal as Fabric sends it.
fn transaction(txid: &str, args: &[&str]) -> ChaincodeMessage {
    let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
    let proposal = ProposalBuilder::new(CHANNEL, "asset")
        .args(args)
        .build(&identity)
        .unwrap();
    let input = ChaincodeInput {
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        ..Default::default()
    };
    ChaincodeMessage {
        proposal: Some(proposal.signed_proposal),
        ..message(Type::Transaction, txid, input.encode_to_vec())
    }
}

/// Registers and goes READY, READY carrying Fabric 3.x's additional parameters.
async fn handshake(process: &mut RunProcess) {
    process
        .to
        .send(Ok(message(Type::Registered, "", Vec::new())))
        .await
        .unwrap();
    let params = ChaincodeAdditionalParams {
        use_write_batch: true,
        max_size_write_batch: 1000,
        use_get_multiple_keys: true,
        max_size_get_multiple_keys: 1000,
    };
    process
        .to
        .send(Ok(message(Type::Ready, "", params.encode_to_vec())))
        .await
        .unwrap();
}

fn exit_status(child: &mut Killed) -> std::process::ExitStatus {
    for _ in 0..600 {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the chaincode process did not exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_answers_keepalive_refuses_a_txid_in_progress_and_exits_with_a_clear_message_when_the_peer_leaves_mid_transaction()
 {
    let mut process = run_against_scripted_peer().await;
    handshake(&mut process).await;
    process
        .to
        .send(Ok(message(Type::Keepalive, "", Vec::new())))
        .await
        .unwrap();
    assert_eq!(next(&mut process.from).await.r#type(), Type::Keepalive);

    process
        .to
        .send(Ok(transaction("tx1", &["asset:get", "k"])))
        .await
        .unwrap();
    let request = next(&mut process.from).await;
    assert_eq!(
        (request.r#type(), request.txid.as_str()),
        (Type::GetState, "tx1")
    );
    assert_eq!(
        GetState::decode(request.payload.as_slice()).unwrap().key,
        "k"
    );
    // The same txid again while the first waits: refused, the first left alone.
    process
        .to
        .send(Ok(transaction("tx1", &["asset:get", "k"])))
        .await
        .unwrap();
    let refused = next(&mut process.from).await;
    assert_eq!(
        (
            refused.r#type(),
            refused.txid.as_str(),
            refused.payload.as_slice()
        ),
        (
            Type::Error,
            "tx1",
            &b"transaction tx1 on channel mychannel is already in progress"[..]
        )
    );
    // The first is still served: answered, it completes.
    process
        .to
        .send(Ok(message(Type::Response, "tx1", b"v1".to_vec())))
        .await
        .unwrap();
    let completed = next(&mut process.from).await;
    assert_eq!(
        (completed.r#type(), completed.txid.as_str()),
        (Type::Completed, "tx1")
    );
    assert_eq!(
        Response::decode(completed.payload.as_slice())
            .unwrap()
            .payload,
        b"v1"
    );
    process
        .to
        .send(Ok(transaction("tx2", &["asset:get", "k"])))
        .await
        .unwrap();
    let request = next(&mut process.from).await;
    assert_eq!(
        (request.r#type(), request.txid.as_str()),
        (Type::GetState, "tx2")
    );
    // The peer goes away while that transaction waits for its answer.
    drop(process.to);
    drop(process.from);
    let status = exit_status(&mut process.child);
    assert_eq!(status.code(), Some(1));
    let mut stderr = Vec::new();
    while let Ok(line) = process.stderr.try_recv() {
        stderr.push(line);
    }
    let last = stderr.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("Error: chaincode asset_1:scripted lost the peer at 127.0.0.1:"),
        "{stderr:#?}"
    );
    assert!(
        last.ends_with(": the peer closed the chaincode stream (1 transaction in flight)"),
        "{stderr:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_sigterm_run_answers_the_transaction_in_flight_refuses_new_ones_and_exits_0() {
    let mut process = run_against_scripted_peer().await;
    handshake(&mut process).await;
    process
        .to
        .send(Ok(transaction("tx1", &["asset:get", "k"])))
        .await
        .unwrap();
    let request = next(&mut process.from).await;
    assert_eq!(
        (request.r#type(), request.txid.as_str()),
        (Type::GetState, "tx1")
    );

    let pid = process.child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    loop {
        let line = tokio::time::timeout(WAIT, process.stderr.recv())
            .await
            .unwrap()
            .expect("stderr closed before the chaincode said it is stopping");
        if line.contains("stopping: answering the transactions in flight first") {
            break;
        }
    }
    process
        .to
        .send(Ok(transaction("tx2", &["asset:get", "k"])))
        .await
        .unwrap();
    let refused = next(&mut process.from).await;
    assert_eq!(
        (
            refused.r#type(),
            refused.txid.as_str(),
            refused.payload.as_slice()
        ),
        (Type::Error, "tx2", &b"the chaincode is shutting down"[..])
    );
    process
        .to
        .send(Ok(message(Type::Response, "tx1", b"v1".to_vec())))
        .await
        .unwrap();
    let completed = next(&mut process.from).await;
    assert_eq!(
        (completed.r#type(), completed.txid.as_str()),
        (Type::Completed, "tx1")
    );
    let response = Response::decode(completed.payload.as_slice()).unwrap();
    assert_eq!(
        (response.status, response.payload.as_slice()),
        (200, &b"v1"[..])
    );
    assert!(exit_status(&mut process.child).success());
}

#[test]
fn bench_measures_the_external_runtime_next_to_the_in_process_one() {
    let dir = tempfile::tempdir().unwrap();
    package("examples/asset-transfer", "basic_1.0", dir.path());
    let wasm = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/guests/wasm32-wasip1/release/asset_transfer.wasm");
    let out = dir.path().join("bench");
    let text = run(&[
        "bench",
        "--runtime",
        "wasm,external",
        "--rounds",
        "2",
        "--transactions",
        "40",
        "--concurrency",
        "1,8",
        "--gateway-duration",
        "0s",
        "--wasm",
        wasm.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.starts_with("figure                                  external          wasm\n"),
        "{text}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bench.json")).unwrap()).unwrap();
    let external = &report["runtimes"]["external"];
    assert_eq!(external["install"]["n"], 2);
    assert_eq!(external["cold_launch"]["n"], 2);
    assert_eq!(external["warm_launch"]["n"], 2);
    assert_eq!(external["first_invoke"]["n"], 4);
    let runs: Vec<(String, u64, u64)> = external["invoke"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            assert!(run["tps"].as_f64().unwrap() > 0.0, "{run}");
            (
                run["transaction"].as_str().unwrap().to_owned(),
                run["concurrency"].as_u64().unwrap(),
                run["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("transfer".to_owned(), 1, 40),
            ("transfer".to_owned(), 8, 40),
            ("read".to_owned(), 1, 40),
            ("read".to_owned(), 8, 40),
        ]
    );
    // The run process's own memory, and the artifact the builder kept.
    assert!(external["memory_bytes"].as_u64().unwrap() > 1024 * 1024);
    assert_eq!(
        external["artifact_bytes"]["wasm"].as_u64().unwrap(),
        std::fs::metadata(&wasm).unwrap().len()
    );
    assert!(
        external["artifact_bytes"]["compiled_artifact"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn the_builder_detects_wasm_only_and_releases_the_packages_couchdb_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, package) = package("tests/guests/asset", "asset_1", dir.path());
    let parsed = cchost::package::ChaincodePackage::parse(&package).unwrap();
    let builder = dir.path().join("builder");
    wasm_builder(&builder);
    let program = |name: &str| Command::new(builder.join("bin").join(name));
    let (source, metadata, build, release) = (
        dir.path().join("src"),
        dir.path().join("metadata"),
        dir.path().join("bld"),
        dir.path().join("release"),
    );
    let index = br#"{"index":{"fields":["owner"]},"ddoc":"indexOwnerDoc","name":"indexOwner","type":"json"}"#;
    for (path, bytes) in [
        ("guest_asset.wasm", parsed.wasm().unwrap()),
        (
            "META-INF/statedb/couchdb/indexes/indexOwner.json",
            &index[..],
        ),
        (
            "META-INF/statedb/couchdb/collections/private/indexes/indexOwner.json",
            &index[..],
        ),
    ] {
        let path = source.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    std::fs::create_dir_all(&metadata).unwrap();
    let detect = |kind: &str| {
        let json = format!(r#"{{"path":"guest_asset.wasm","type":"{kind}","label":"asset_1"}}"#);
        std::fs::write(metadata.join("metadata.json"), json).unwrap();
        program("detect")
            .args([&source, &metadata])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(detect("golang"), Some(1));
    assert_eq!(detect("ccaas"), Some(1));
    assert_eq!(detect("wasm"), Some(0));

    std::fs::create_dir_all(&build).unwrap();
    std::fs::create_dir_all(&release).unwrap();
    assert!(
        program("build")
            .args([&source, &metadata, &build])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        program("release")
            .args([&build, &release])
            .status()
            .unwrap()
            .success()
    );
    for released in [
        "statedb/couchdb/indexes/indexOwner.json",
        "statedb/couchdb/collections/private/indexes/indexOwner.json",
    ] {
        assert_eq!(
            std::fs::read(release.join(released)).unwrap(),
            index,
            "{released}"
        );
    }
}

#[test]
fn devnode_with_the_wasm_builder_installs_through_it_and_serves_over_mutual_tls() {
    use std::io::Write;

    let dir = tempfile::tempdir().unwrap();
    let (file, package) = package("tests/guests/asset", "asset_1", dir.path());
    let builder = dir.path().join("builder");
    wasm_builder(&builder);
    let data = dir.path().join("data");
    let mut node = Killed(
        cchost()
            .args(["devnode", "--listen", "127.0.0.1:0", "--tls", "--data-dir"])
            .arg(&data)
            .arg("--external-builder")
            .arg(format!("wasm={}", builder.display()))
            .arg("--package")
            .arg(format!("asset={}", file.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = node.0.stdin.take().unwrap();
    writeln!(stdin, r#"["asset", "asset:put", "k1", "v1"]"#).unwrap();
    writeln!(stdin, r#"["asset", "asset:get", "k1"]"#).unwrap();
    drop(stdin);
    let answers: Vec<serde_json::Value> = std::io::BufReader::new(node.0.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(
        (answers[0]["status"].as_i64(), answers[0]["block"].as_i64()),
        (Some(200), Some(3))
    );
    assert_eq!(answers[1]["payload"], "v1");
    assert!(node.0.wait().unwrap().success());
    // Built by the builder, not by the in-process runtime: its kept build, no artifact
    // in the wasm cache.
    let id = cchost::package::package_id("asset_1", &package);
    let kept = data
        .join("externalbuilder/builds")
        .join(id.as_str().replace(':', "-"));
    assert_eq!(
        std::fs::read_to_string(kept.join("build-info.json")).unwrap(),
        r#"{"builder_name":"wasm"}"#
    );
    assert!(!data.join("wasm-cache").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaincode_serve_asking_for_client_certificates_refuses_a_peer_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let (wasm_package, _) = package("tests/guests/asset", "asset_1", dir.path());
    let files = tls_files();
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    // TLS, but no client certificate: what a peer without client_auth_required sends.
    let connection = serde_json::json!({
        "address": address,
        "dial_timeout": "10s",
        "tls_required": true,
        "root_cert": files.ca,
    });
    let ccaas =
        cchost::package::build_ccaas_package("asset_ccaas", connection.to_string().as_bytes())
            .unwrap();
    let ccaas_id = cchost::package::package_id("asset_ccaas", &ccaas);
    let mut server = Killed(
        cchost()
            .args(["chaincode", "serve"])
            .arg(&wasm_package)
            .arg("--tls-cert")
            .arg(write("server.pem", &files.server.0))
            .arg("--tls-key")
            .arg(write("server.key", &files.server.1))
            .arg("--client-ca")
            .arg(write("ca.pem", &files.ca))
            .args(["--address", &address, "--package-id", ccaas_id.as_str()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.ends_with(" (TLS)\n"), "{line}");

    let peer = Peer::start(false).await;
    let peer = peer.with_runtimes(vec![Arc::new(CcaasRuntime)], dir.path());
    peer.install("asset", &ccaas);
    let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
    let proposal = ProposalBuilder::new(CHANNEL, "asset")
        .args(["asset:get", "k"])
        .build(&identity)
        .unwrap();
    let error = peer.execute(&proposal).await.unwrap_err().to_string();
    // The server ends the connection at the handshake: the call reports it.
    assert!(
        error.contains(&format!(
            "starting chaincode {ccaas_id}: Connect at {address}: "
        )),
        "{error}"
    );
    // What the connection reports next varies ("connection closed", "connection was
    // not ready"): the transport failed.
    assert!(error.contains(": transport error: "), "{error}");
    assert!(!peer.support.is_registered(&ccaas_id));
}
