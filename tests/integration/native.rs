//! The native build of asset-transfer (`examples/asset-transfer/native`, the SDK's gRPC
//! shim): a chaincode process that dials the peer as Go chaincode does. Same contract
//! as the wasm module, another backend: the same proposals must give the same bytes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cchost::ids::PackageId;
use cchost::proposal::ProposalBuilder;
use cchost::proto::protos::chaincode_message::Type;
use cchost::proto::protos::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use cchost::proto::protos::{ChaincodeId, ChaincodeInput, ChaincodeMessage, GetState};
use cchost::runtime::wasm::{WasmConfig, WasmRuntime};
use cchost::support::SupportConfig;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::host::{CHANNEL, TestHost, refusing_port};

const PACKAGE: &str = "asset_1.0:5e3b8c1f0f8a6e4d2c7b9a1e3f5d7c9b1a3e5f7d9c1b3a5e7f9d1c3b5a7e9f1d";

/// The native chaincode process, killed on drop.
struct NativeChaincode(Child);

impl NativeChaincode {
    fn start(peer: &str, package_id: &str, log: &Path) -> Self {
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("NATIVE_ASSET_TRANSFER"))
            .args(["--peer.address", peer])
            .env("CORE_CHAINCODE_ID_NAME", package_id)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the native chaincode was built by tests/build.rs");
        Self(child)
    }

    /// Waits (at most 10 s) for the process to end; its exit code.
    async fn exit_code(&mut self) -> Option<i32> {
        for _ in 0..200 {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for NativeChaincode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(host: &TestHost, package_id: &PackageId, log: &Path) {
    assert!(
        host.support
            .wait_ready(package_id, Duration::from_secs(30))
            .await,
        "the chaincode did not register within 30 s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_build_gives_the_wasm_modules_responses_and_rwsets_byte_for_byte() {
    // Batches of 2: GetAllAssets pages through QUERY_STATE_NEXT on both.
    let config = SupportConfig {
        query_batch_size: 2,
        ..SupportConfig::default()
    };
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("native.log");
    let package_id = PackageId::new(PACKAGE);
    let (wasm_host, native_host) = (
        TestHost::start(config.clone()).await,
        TestHost::start(config).await,
    );

    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let module = runtime
        .compile(&std::fs::read(env!("ASSET_TRANSFER_WASM")).unwrap())
        .unwrap();
    wasm_host.support.define("asset", package_id.clone());
    wasm_host.support.expect_registration(&package_id);
    let _wasm = runtime.start(&wasm_host.support, &package_id, &module);
    wait_ready(&wasm_host, &package_id, &log).await;

    native_host.support.define("asset", package_id.clone());
    native_host.support.expect_registration(&package_id);
    let _native = NativeChaincode::start(&native_host.addr.to_string(), PACKAGE, &log);
    wait_ready(&native_host, &package_id, &log).await;

    let steps: &[&[&str]] = &[
        &["InitLedger"],
        &["CreateAsset", "asset7", "teal", "7", "Ann", "700"],
        &["ReadAsset", "asset7"],
        &["TransferAsset", "asset2", "Bob"],
        &["UpdateAsset", "asset3", "red", "9", "Cy", "90"],
        &["UpdateAsset", "asset99", "red", "9", "Cy", "90"],
        &["CreateAsset", "asset7", "teal", "7", "Ann", "700"],
        &["AssetExists", "asset4"],
        &["DeleteAsset", "asset5"],
        &["AssetExists", "asset5"],
        &["GetAllAssets"],
        &["org.hyperledger.fabric:GetMetadata"],
        &["NoSuchTransaction"],
    ];
    let next_before = native_host.support.requests_received(Type::QueryStateNext);
    let mut statuses = Vec::new();
    for (i, args) in steps.iter().enumerate() {
        // One identity and one nonce per step: the same txid on both hosts.
        let proposal = ProposalBuilder::new(CHANNEL, "asset")
            .args(*args)
            .nonce(vec![u8::try_from(i).unwrap(); 24])
            .build(&wasm_host.identity)
            .unwrap();
        let wasm = wasm_host
            .support
            .execute(&proposal.signed_proposal)
            .await
            .unwrap();
        let native = native_host
            .support
            .execute(&proposal.signed_proposal)
            .await
            .unwrap();
        assert_eq!(native.response, wasm.response, "step {i} {args:?}");
        assert_eq!(native.event, wasm.event, "step {i} {args:?}");
        assert_eq!(
            native.rwset.encode_to_vec(),
            wasm.rwset.encode_to_vec(),
            "step {i} {args:?}"
        );
        statuses.push(native.response.status);
        if native.response.status == 200 {
            wasm_host.commit(&wasm, &proposal);
            native_host.commit(&native, &proposal);
        }
    }
    assert_eq!(
        statuses,
        [
            200, 200, 200, 200, 200, 500, 500, 200, 200, 200, 200, 200, 500
        ]
    );
    assert!(native_host.support.requests_received(Type::QueryStateNext) > next_before);

    // What was committed reads back: asset2's new owner, asset5 gone, asset7 there.
    let read = |id: &str| {
        let proposal = native_host.proposal("asset", &["ReadAsset", id]);
        let support = native_host.support.clone();
        async move {
            support
                .execute(&proposal.signed_proposal)
                .await
                .unwrap()
                .response
        }
    };
    let asset2: serde_json::Value = serde_json::from_slice(&read("asset2").await.payload).unwrap();
    assert_eq!(asset2["Owner"], "Bob");
    assert_eq!(
        read("asset5").await.message,
        "The asset asset5 does not exist"
    );
    let asset7: serde_json::Value = serde_json::from_slice(&read("asset7").await.payload).unwrap();
    assert_eq!(asset7["AppraisedValue"], 700);

    // 64 transactions at once, each answered with its own asset.
    let reads: Vec<_> = (0..64)
        .map(|i| read(["asset1", "asset2", "asset7"][i % 3]))
        .collect();
    let answers = futures_util::future::join_all(reads).await;
    for (i, answer) in answers.iter().enumerate() {
        let asset: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
        assert_eq!(asset["ID"], ["asset1", "asset2", "asset7"][i % 3], "{i}");
    }
}

#[tokio::test]
async fn the_native_chaincode_exits_1_naming_a_peer_it_cannot_reach() {
    let (_socket, port) = refusing_port();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("native.log");
    let peer = format!("127.0.0.1:{port}");
    let mut chaincode = NativeChaincode::start(&peer, PACKAGE, &log);
    assert_eq!(chaincode.exit_code().await, Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with(&format!(
            "{PACKAGE}: connecting to the peer at {peer}: transport error"
        )),
        "{text}"
    );
}

/// A peer that makes the chaincode READY, sends one TRANSACTION, hands back the first
/// request it gets and ends the stream.
struct OneRequestPeer(mpsc::Sender<ChaincodeMessage>);

#[tonic::async_trait]
impl ChaincodeSupport for OneRequestPeer {
    type RegisterStream = ReceiverStream<Result<ChaincodeMessage, tonic::Status>>;

    async fn register(
        &self,
        request: tonic::Request<tonic::Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<Self::RegisterStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let (replies, stream) = mpsc::channel(8);
        let seen = self.0.clone();
        tokio::spawn(async move {
            let register = inbound.message().await.unwrap().unwrap();
            seen.send(register).await.unwrap();
            for ty in [Type::Registered, Type::Ready] {
                let message = ChaincodeMessage {
                    r#type: ty.into(),
                    ..Default::default()
                };
                replies.send(Ok(message)).await.unwrap();
            }
            let transaction = ChaincodeMessage {
                r#type: Type::Transaction.into(),
                txid: "tx1".into(),
                channel_id: CHANNEL.into(),
                payload: ChaincodeInput {
                    args: vec![b"ReadAsset".to_vec(), b"asset1".to_vec()],
                    ..Default::default()
                }
                .encode_to_vec(),
                ..Default::default()
            };
            replies.send(Ok(transaction)).await.unwrap();
            let request = inbound.message().await.unwrap().unwrap();
            seen.send(request).await.unwrap();
            // Dropping `replies` and `inbound` ends the stream.
        });
        Ok(tonic::Response::new(ReceiverStream::new(stream)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_chaincode_sends_fabrics_messages_and_exits_1_when_the_peer_ends_the_stream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (seen, mut messages) = mpsc::channel(8);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ChaincodeSupportServer::new(OneRequestPeer(seen)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("native.log");
    let mut chaincode = NativeChaincode::start(&addr.to_string(), PACKAGE, &log);

    let register = messages.recv().await.unwrap();
    assert_eq!(register.r#type(), Type::Register);
    assert_eq!(
        ChaincodeId::decode(register.payload.as_slice())
            .unwrap()
            .name,
        PACKAGE
    );
    // ReadAsset's one request: GET_STATE of the key, for the transaction's channel and txid.
    let request = messages.recv().await.unwrap();
    assert_eq!(request.r#type(), Type::GetState);
    assert_eq!(
        (request.txid.as_str(), request.channel_id.as_str()),
        ("tx1", CHANNEL)
    );
    assert_eq!(
        GetState::decode(request.payload.as_slice()).unwrap(),
        GetState {
            key: "asset1".into(),
            collection: String::new(),
        }
    );

    assert_eq!(chaincode.exit_code().await, Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text,
        format!("{PACKAGE}: the peer closed the chaincode stream\n")
    );
}
