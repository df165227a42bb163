//! The real Node `fabric-shim` 2.5.8 and `fabric-contract-api` (npm), unmodified, running
//! `examples/node-asset` against cchost's chaincode listener.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cchost::ids::PackageId;
use cchost::ledger::{Height, StateStore};
use cchost::proposal::compute_binding;
use cchost::proto::kvrwset::{self, KvRead, KvWrite, KvrwSet};
use cchost::proto::protos::ChaincodeEvent;
use cchost::proto::protos::chaincode_message::Type;
use cchost::proto::rwset::TxReadWriteSet;
use cchost::support::{ExecuteError, ExecuteResult, InvokeError, SupportConfig};
use prost::Message;

use crate::host::{CHANNEL, TestHost};

const ASSET_PKG: &str =
    "asset_1.0:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";
const OTHER_PKG: &str =
    "other_1.0:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/node-asset")
}

/// A Node chaincode process started like a Fabric peer starts one, killed on drop.
pub(crate) struct NodeChaincode {
    child: Child,
    log: PathBuf,
}

impl NodeChaincode {
    /// Starts the module in `module` (a directory of examples/node-asset; `.` for the
    /// example itself).
    fn start(peer: SocketAddr, package_id: &str, module: &str, logs: &Path) -> Self {
        let dir = example_dir();
        assert!(
            dir.join("node_modules/fabric-shim/cli.js").is_file(),
            "fabric-shim is not installed in {}: run scripts/test (or `npm ci --prefix examples/node-asset`)",
            dir.display()
        );
        let log = logs.join(format!("{}.log", package_id.replace(':', "_")));
        let out = File::create(&log).unwrap();
        let child = Command::new("node")
            .arg("node_modules/fabric-shim/cli.js")
            .args(["start", "--peer.address", &peer.to_string()])
            .args(["--module-path", module])
            // Ping every second (the shim's default is 110 s): the host must accept them.
            .args(["--grpc.keepalive_time_ms", "1000"])
            .args(["--grpc.http2.min_time_between_pings_ms", "1000"])
            .current_dir(&dir)
            .env("CORE_CHAINCODE_ID_NAME", package_id)
            .env("CORE_PEER_TLS_ENABLED", "false")
            .env("CORE_PEER_LOCALMSPID", "Org1MSP")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("cannot run `node`: Node.js 18 or newer is required");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeChaincode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Defines `name`, expects its registration, starts the Node process and waits for READY.
pub(crate) async fn launch(
    host: &TestHost,
    name: &str,
    package_id: &str,
    logs: &Path,
) -> NodeChaincode {
    launch_module(host, name, package_id, ".", logs).await
}

/// [`launch`] for the module in directory `module` of examples/node-asset.
pub(crate) async fn launch_module(
    host: &TestHost,
    name: &str,
    package_id: &str,
    module: &str,
    logs: &Path,
) -> NodeChaincode {
    let package_id_typed = PackageId::new(package_id);
    host.support.define(name, package_id_typed.clone());
    host.support.expect_registration(&package_id_typed);
    let chaincode = NodeChaincode::start(host.addr, package_id, module, logs);
    assert!(
        host.support
            .wait_ready(&package_id_typed, Duration::from_secs(30))
            .await,
        "{name} did not register within 30 s:\n{}",
        chaincode.log()
    );
    chaincode
}

fn kv_set(rwset: &TxReadWriteSet, namespace: &str) -> KvrwSet {
    let ns = rwset
        .ns_rwset
        .iter()
        .find(|ns| ns.namespace == namespace)
        .unwrap_or_else(|| panic!("no namespace {namespace} in {rwset:?}"));
    KvrwSet::decode(ns.rwset.as_slice()).unwrap()
}

fn namespaces(rwset: &TxReadWriteSet) -> Vec<&str> {
    rwset
        .ns_rwset
        .iter()
        .map(|ns| ns.namespace.as_str())
        .collect()
}

fn read(key: &str, height: Option<Height>) -> KvRead {
    KvRead {
        key: key.into(),
        version: height.map(|h| kvrwset::Version {
            block_num: h.block,
            tx_num: h.tx,
        }),
    }
}

fn write(key: &str, value: &str) -> KvWrite {
    KvWrite {
        key: key.into(),
        is_delete: value.is_empty(),
        value: value.as_bytes().to_vec(),
    }
}

fn ok_payload(result: &Result<ExecuteResult, ExecuteError>) -> String {
    let result = result.as_ref().unwrap();
    assert_eq!(result.response.status, 200, "{:?}", result.response);
    String::from_utf8(result.response.payload.clone()).unwrap()
}

/// The node-asset transaction sequence against chaincode
/// `asset` on a fresh `host` with query batches of 2, however the chaincode runs: as a
/// process (dev mode), in a container, or as a service. Exact payloads, events and
/// read/write sets.
pub(crate) async fn asset_sequence(host: &TestHost) {
    assert_eq!(host.support.config().query_batch_size, 2);
    // put k1..k3: 200 "ok", the Put event with the peer's chaincode_id and tx_id, one write.
    let mut heights = Vec::new();
    for (key, value) in [("k1", "v1"), ("k2", "v2"), ("k3", "v3")] {
        let (proposal, result) = host.invoke("asset", &["asset:put", key, value]).await;
        assert_eq!(ok_payload(&result), "ok");
        let result = result.unwrap();
        assert_eq!(result.txid, proposal.txid);
        assert_eq!(
            result.event,
            Some(ChaincodeEvent {
                chaincode_id: "asset".into(),
                tx_id: proposal.txid.clone(),
                event_name: "Put".into(),
                payload: format!(r#"{{"key":"{key}","value":"{value}"}}"#).into_bytes(),
            })
        );
        assert_eq!(result.rwset.data_model, 0);
        assert_eq!(namespaces(&result.rwset), ["asset"]);
        assert_eq!(
            kv_set(&result.rwset, "asset"),
            KvrwSet {
                writes: vec![write(key, value)],
                ..Default::default()
            }
        );
        heights.push(host.commit(&result, &proposal));
    }

    // get k2 reads the committed version.
    let (_, result) = host.invoke("asset", &["asset:get", "k2"]).await;
    assert_eq!(ok_payload(&result), "v2");
    assert_eq!(
        kv_set(&result.unwrap().rwset, "asset"),
        KvrwSet {
            reads: vec![read("k2", Some(heights[1]))],
            ..Default::default()
        }
    );

    // range "" "": three results over two batches of 2 (QUERY_STATE_NEXT), then CLOSE.
    let next_before = host.support.requests_received(Type::QueryStateNext);
    let close_before = host.support.requests_received(Type::QueryStateClose);
    let (_, result) = host.invoke("asset", &["asset:range", "", ""]).await;
    assert_eq!(ok_payload(&result), r#"["k1=v1","k2=v2","k3=v3"]"#);
    assert!(host.support.requests_received(Type::QueryStateNext) > next_before);
    assert!(host.support.requests_received(Type::QueryStateClose) > close_before);
    let range = kv_set(&result.unwrap().rwset, "asset");
    assert_eq!(
        range.range_queries_info,
        [kvrwset::RangeQueryInfo {
            start_key: "\u{1}".into(), // the shim's replacement for an empty start key
            end_key: String::new(),
            itr_exhausted: true,
            reads_info: Some(kvrwset::range_query_info::ReadsInfo::RawReads(
                kvrwset::QueryReads {
                    kv_reads: vec![
                        read("k1", Some(heights[0])),
                        read("k2", Some(heights[1])),
                        read("k3", Some(heights[2])),
                    ],
                }
            )),
        }]
    );
    assert!(range.reads.is_empty() && range.writes.is_empty());

    let (_, result) = host.invoke("asset", &["asset:range", "k2", "k3"]).await;
    assert_eq!(ok_payload(&result), r#"["k2=v2"]"#);

    // Pagination: one page of 2 and the bookmark of the next.
    let (_, result) = host.invoke("asset", &["asset:page", "", "", "2", ""]).await;
    assert_eq!(
        ok_payload(&result),
        r#"{"keys":["k1","k2"],"fetched":2,"bookmark":"k3"}"#
    );
    let (_, result) = host
        .invoke("asset", &["asset:page", "", "", "2", "k3"])
        .await;
    assert_eq!(
        ok_payload(&result),
        r#"{"keys":["k3"],"fetched":1,"bookmark":""}"#
    );

    // del k1, then get k1 is empty and history lists both writes, newest first.
    let (proposal, result) = host.invoke("asset", &["asset:del", "k1"]).await;
    assert_eq!(ok_payload(&result), "ok");
    let result = result.unwrap();
    assert_eq!(
        kv_set(&result.rwset, "asset"),
        KvrwSet {
            writes: vec![write("k1", "")],
            ..Default::default()
        }
    );
    host.commit(&result, &proposal);
    let (_, result) = host.invoke("asset", &["asset:get", "k1"]).await;
    assert_eq!(ok_payload(&result), "");
    let (_, result) = host.invoke("asset", &["asset:history", "k1"]).await;
    let history: serde_json::Value = serde_json::from_str(&ok_payload(&result)).unwrap();
    assert_eq!(history[0]["isDelete"], true);
    assert_eq!(history[0]["txId"], proposal.txid);
    assert_eq!(history[1]["value"], "v1");
    assert_eq!(history[1]["isDelete"], false);
    assert_eq!(history.as_array().unwrap().len(), 2);

    // whoami: ClientIdentity from the PEM creator, the proposal's timestamp and binding.
    let (proposal, result) = host.invoke("asset", &["asset:whoami"]).await;
    let who: serde_json::Value = serde_json::from_str(&ok_payload(&result)).unwrap();
    let dn = "/C=US/O=Org1/OU=client/CN=User1";
    assert_eq!(who["id"], format!("x509::{dn}::{dn}"));
    assert_eq!(who["mspid"], "Org1MSP");
    assert_eq!(who["seconds"], proposal.timestamp.seconds);
    assert_eq!(
        who["binding"],
        hex(&compute_binding(&proposal.nonce, &proposal.creator, 0))
    );
    assert_eq!(who["txid"], proposal.txid);
    assert_eq!(who["channel"], CHANNEL);

    // An unknown function: COMPLETED with status 500 and fabric-contract-api's message.
    let (_, result) = host.invoke("asset", &["asset:nosuchfn"]).await;
    let response = result.unwrap().response;
    assert_eq!(response.status, 500);
    assert_eq!(
        response.message,
        "You've asked to invoke a function that does not exist: asset:nosuchfn"
    );

    // Two overlapping transactions with different txids.
    let started = Instant::now();
    let (slow, fast) = tokio::join!(
        host.invoke("asset", &["asset:sleep", "400"]),
        host.invoke("asset", &["asset:get", "k3"])
    );
    assert_eq!(ok_payload(&slow.1), "awake");
    assert_eq!(ok_payload(&fast.1), "v3");
    assert_ne!(slow.0.txid, fast.0.txid);
    eprintln!("two overlapping transactions took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_shim_runs_state_range_history_identity_and_invoke_transactions() {
    let logs = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig {
        query_batch_size: 2,
        ..SupportConfig::default()
    })
    .await;
    let asset = launch(&host, "asset", ASSET_PKG, logs.path()).await;

    asset_sequence(&host).await;

    // Chaincode to chaincode on the same channel shares the transaction's simulator.
    let other = launch(&host, "other", OTHER_PKG, logs.path()).await;
    let (proposal, result) = host.invoke("other", &["asset:put", "o1", "x"]).await;
    let result = result.unwrap();
    let o1 = host.commit(&result, &proposal);
    let (_, result) = host
        .invoke("asset", &["asset:invoke", "other", "asset:touch", "o1"])
        .await;
    assert_eq!(
        ok_payload(&result),
        r#"{"status":200,"message":"","payload":"x"}"#
    );
    let result = result.unwrap();
    // The caller touched no state of its own: only the callee's namespace appears.
    assert_eq!(namespaces(&result.rwset), ["other"]);
    assert_eq!(
        kv_set(&result.rwset, "other"),
        KvrwSet {
            reads: vec![read("o1", Some(o1))],
            writes: vec![write("o1", "x+")],
            ..Default::default()
        }
    );

    // The shims pinged every second throughout: the streams are still up.
    assert!(
        host.support.is_ready(&PackageId::new(ASSET_PKG)),
        "{}",
        asset.log()
    );
    assert!(
        host.support.is_ready(&PackageId::new(OTHER_PKG)),
        "{}",
        other.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_timeout_and_a_killed_chaincode_are_reported_and_the_handler_deregistered() {
    let logs = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig {
        execute_timeout: Duration::from_millis(1500),
        ..SupportConfig::default()
    })
    .await;
    let mut asset = launch(&host, "asset", ASSET_PKG, logs.path()).await;

    let (proposal, result) = host.invoke("asset", &["asset:sleep", "3000"]).await;
    let err = result.unwrap_err();
    assert!(matches!(err.cause(), Some(InvokeError::Timeout)), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "failed to execute transaction {}: error sending: timeout expired while executing transaction",
            proposal.txid
        )
    );

    // The late COMPLETED is ignored; the chaincode keeps serving.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let (_, result) = host.invoke("asset", &["asset:get", "nothing"]).await;
    assert_eq!(ok_payload(&result), "");

    // Kill the process mid-transaction: the stream ends, the waiting execute fails at once,
    // and the handler is deregistered.
    let pending = tokio::spawn({
        let proposal = host.proposal("asset", &["asset:sleep", "1000"]);
        let support = host.support.clone();
        async move { support.execute(&proposal.signed_proposal).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_at = Instant::now();
    asset.child.kill().unwrap();
    let err = pending.await.unwrap().unwrap_err();
    assert!(
        matches!(err.cause(), Some(InvokeError::StreamTerminated)),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with(": error sending: chaincode stream terminated"),
        "{err}"
    );
    eprintln!("stream end noticed {:?} after kill", killed_at.elapsed());
    let deregistered = async {
        while host.support.is_ready(&PackageId::new(ASSET_PKG)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), deregistered)
        .await
        .unwrap();
    let (proposal, result) = host.invoke("asset", &["asset:get", "k"]).await;
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "failed to execute transaction {}: could not launch chaincode {ASSET_PKG}: it is \
             not running, and nothing launches it here (start it and let it register as \
             {ASSET_PKG})",
            proposal.txid
        )
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_transactions_calling_their_own_chaincode_on_another_channel_complete_with_two_request_turns()
 {
    const CALLS: usize = 8;
    let logs = tempfile::tempdir().unwrap();
    // Two requests of the stream at a time touch the ledger; eight transactions each call
    // the same chaincode on another channel, so the callee's requests and completions
    // come back on the very stream whose callers wait for them.
    let host = std::sync::Arc::new(
        TestHost::start(SupportConfig {
            max_concurrent_requests: 2,
            ..SupportConfig::default()
        })
        .await,
    );
    host.store.create_channel("otherchannel").unwrap();
    let _asset = launch(&host, "asset", ASSET_PKG, logs.path()).await;
    let proposals: Vec<_> = (0..CALLS)
        .map(|i| {
            host.proposal(
                "asset",
                &[
                    "asset:invoke",
                    "asset/otherchannel",
                    "asset:get",
                    &format!("k{i}"),
                ],
            )
        })
        .collect();
    let tasks: Vec<_> = proposals
        .into_iter()
        .map(|proposal| {
            let support = host.support.clone();
            tokio::spawn(async move { support.execute(&proposal.signed_proposal).await })
        })
        .collect();
    let all = async {
        for task in tasks {
            let result = task.await.unwrap().unwrap();
            assert_eq!(
                String::from_utf8(result.response.payload).unwrap(),
                r#"{"status":200,"message":"","payload":""}"#
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("every call completed while the stream's turns were in use");
}
