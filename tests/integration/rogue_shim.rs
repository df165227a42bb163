//! A rogue shim: a Rust gRPC client on the real `Register` service that breaks Fabric's
//! shim protocol on purpose (handshake, protocol and volume attacks). Every test
//! ends by proving the host still serves a well-behaved chaincode.

use std::time::Duration;

use cchost::ids::PackageId;
use cchost::proto::kvrwset::{KvMetadataEntry, KvMetadataWrite, KvrwSet, RangeQueryInfo};
use cchost::proto::protos::chaincode_message::Type;
use cchost::proto::protos::chaincode_support_client::ChaincodeSupportClient;
use cchost::proto::protos::{
    ChaincodeAdditionalParams, ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeSpec,
    GetState, GetStateByRange, GetStateMetadata, PutState, PutStateMetadata, QueryResponse,
    QueryStateClose, QueryStateNext, Response, StateMetadata, StateMetadataResult,
};
use cchost::support::{ExecuteError, ExecuteResult, SupportConfig};
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::host::{CHANNEL, TestHost};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// What the host did next on a stream.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a short-lived test value
enum Next {
    Message(ChaincodeMessage),
    Ended,
    Failed(Status),
    Silent,
}

struct Shim {
    tx: mpsc::Sender<ChaincodeMessage>,
    rx: Streaming<ChaincodeMessage>,
}

impl Shim {
    async fn connect(host: &TestHost) -> Self {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", host.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel(1024);
        let rx = ChaincodeSupportClient::new(channel)
            .max_decoding_message_size(256 * 1024 * 1024)
            .register(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Self { tx, rx }
    }

    async fn send(&self, message: ChaincodeMessage) {
        self.tx.send(message).await.unwrap();
    }

    async fn send_type(&self, ty: Type, payload: Vec<u8>, txid: &str, channel: &str) {
        self.send(ChaincodeMessage {
            r#type: ty.into(),
            payload,
            txid: txid.into(),
            channel_id: channel.into(),
            ..Default::default()
        })
        .await;
    }

    async fn next(&mut self, wait: Duration) -> Next {
        match tokio::time::timeout(wait, self.rx.message()).await {
            Err(_) => Next::Silent,
            Ok(Ok(Some(message))) => Next::Message(message),
            Ok(Ok(None)) => Next::Ended,
            Ok(Err(status)) => Next::Failed(status),
        }
    }

    async fn expect(&mut self, ty: Type) -> ChaincodeMessage {
        match self.next(WAIT).await {
            Next::Message(m) if m.r#type() == ty => m,
            other => panic!("expected {}, got {other:?}", ty.as_str_name()),
        }
    }

    async fn expect_silence(&mut self) {
        match self.next(QUIET).await {
            Next::Silent => {}
            other => panic!("expected no answer, got {other:?}"),
        }
    }

    /// The host ends the stream with an error status carrying `text`.
    async fn expect_failure(&mut self, text: &str) {
        match self.next(WAIT).await {
            Next::Failed(status) => assert_eq!(status.message(), text),
            other => panic!("expected the stream to fail with {text:?}, got {other:?}"),
        }
    }

    async fn send_register(&self, name: &str) {
        let id = ChaincodeId {
            name: name.into(),
            ..Default::default()
        };
        self.send_type(Type::Register, id.encode_to_vec(), "", "")
            .await;
    }

    async fn register(&mut self, name: &str) {
        self.send_register(name).await;
        let registered = self.expect(Type::Registered).await;
        assert!(registered.payload.is_empty());
        let ready = self.expect(Type::Ready).await;
        // As a Fabric 3.x peer with its default `chaincode.runtimeParams`.
        assert_eq!(
            ChaincodeAdditionalParams::decode(ready.payload.as_slice()).unwrap(),
            ChaincodeAdditionalParams {
                use_write_batch: true,
                max_size_write_batch: 1000,
                use_get_multiple_keys: true,
                max_size_get_multiple_keys: 1000,
            }
        );
    }

    /// Sends a request for `tx` and returns the host's answer.
    async fn request(
        &mut self,
        tx: &ChaincodeMessage,
        ty: Type,
        payload: Vec<u8>,
    ) -> ChaincodeMessage {
        self.send_type(ty, payload, &tx.txid, &tx.channel_id).await;
        match self.next(WAIT).await {
            Next::Message(m) => m,
            other => panic!("no answer to {}: {other:?}", ty.as_str_name()),
        }
    }

    async fn complete(&self, tx: &ChaincodeMessage, status: i32, payload: &[u8]) {
        let response = Response {
            status,
            message: String::new(),
            payload: payload.to_vec(),
        };
        self.send_type(
            Type::Completed,
            response.encode_to_vec(),
            &tx.txid,
            &tx.channel_id,
        )
        .await;
    }
}

fn text(message: &ChaincodeMessage) -> String {
    String::from_utf8_lossy(&message.payload).into_owned()
}

fn get_state(key: &str, collection: &str) -> Vec<u8> {
    GetState {
        key: key.into(),
        collection: collection.into(),
    }
    .encode_to_vec()
}

async fn host(config: SupportConfig) -> TestHost {
    TestHost::start(config).await
}

async fn dev_host() -> TestHost {
    host(SupportConfig {
        dev_mode: true,
        ..SupportConfig::default()
    })
    .await
}

/// Starts a transaction of chaincode `name` (served by a rogue shim) in the background.
fn start_tx(
    host: &TestHost,
    name: &str,
    args: &[&str],
) -> JoinHandle<Result<ExecuteResult, ExecuteError>> {
    let proposal = host.proposal(name, args);
    let support = host.support.clone();
    tokio::spawn(async move { support.execute(&proposal.signed_proposal).await })
}

/// Defines `name` and registers a rogue shim for it.
async fn registered(host: &TestHost, name: &str) -> Shim {
    let package_id = format!("{name}:0000");
    host.support.define(name, PackageId::new(&package_id));
    host.support
        .expect_registration(&PackageId::new(&package_id));
    let mut shim = Shim::connect(host).await;
    shim.register(&package_id).await;
    shim
}

/// The host still serves a well-behaved chaincode: register, one GET_STATE, COMPLETED.
async fn assert_healthy(host: &TestHost) {
    let name = format!("probe{}", uuid_like());
    let mut shim = registered(host, &name).await;
    let pending = start_tx(host, &name, &["probe"]);
    let tx = shim.expect(Type::Transaction).await;
    let reply = shim.request(&tx, Type::GetState, get_state("k", "")).await;
    assert_eq!(reply.r#type(), Type::Response, "{}", text(&reply));
    shim.complete(&tx, 200, b"healthy").await;
    let result = pending.await.unwrap().unwrap();
    assert_eq!(result.response.payload, b"healthy");
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

// --- Handshake -------------------------------------------------------------------------

#[tokio::test]
async fn a_first_message_other_than_register_ends_the_stream() {
    let host = dev_host().await;
    let mut shim = Shim::connect(&host).await;
    shim.send_type(Type::PutState, vec![], "tx", CHANNEL).await;
    shim.expect_failure("cannot handle PUT_STATE message while in created state")
        .await;
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_register_for_chaincode_the_peer_did_not_launch_gets_no_answer_and_the_stream_stays_usable()
 {
    let host = host(SupportConfig::default()).await;
    let mut shim = Shim::connect(&host).await;
    shim.send_register("stranger:1").await;
    shim.expect_silence().await;
    assert!(!host.support.is_ready(&PackageId::new("stranger:1")));
    // Still in the created state: a registration the peer expects goes through.
    host.support
        .expect_registration(&PackageId::new("invited:1"));
    shim.register("invited:1").await;
    assert!(host.support.is_ready(&PackageId::new("invited:1")));
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_register_with_an_empty_or_undecodable_name_is_ignored() {
    let host = dev_host().await;
    let mut shim = Shim::connect(&host).await;
    shim.send_register("").await;
    shim.expect_silence().await;
    shim.send_type(Type::Register, vec![0x0a, 0xff, 0xff], "", "")
        .await;
    shim.expect_silence().await;
    shim.register("late:1").await;
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_second_register_on_a_ready_stream_ends_it_and_deregisters() {
    let host = dev_host().await;
    let mut shim = Shim::connect(&host).await;
    shim.register("twice:1").await;
    shim.send_register("twice:1").await;
    shim.expect_failure("cannot handle REGISTER message while in ready state")
        .await;
    let gone = async {
        while host.support.is_ready(&PackageId::new("twice:1")) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WAIT, gone).await.unwrap();
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_second_stream_with_a_registered_name_is_refused_and_the_first_keeps_working() {
    let host = dev_host().await;
    let mut first = registered(&host, "dup").await;
    let mut second = Shim::connect(&host).await;
    second.send_register("dup:0000").await;
    second.expect_silence().await;

    let pending = start_tx(&host, "dup", &["f"]);
    let tx = first.expect(Type::Transaction).await;
    first.complete(&tx, 200, b"first").await;
    assert_eq!(pending.await.unwrap().unwrap().response.payload, b"first");
    second.expect_silence().await;
    assert_healthy(&host).await;
}

// --- Protocol ----------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_message_type_ends_the_stream() {
    let host = dev_host().await;
    let mut shim = registered(&host, "unknown").await;
    shim.send(ChaincodeMessage {
        r#type: 99,
        ..Default::default()
    })
    .await;
    shim.expect_failure("cannot handle 99 message while in ready state")
        .await;
    assert_healthy(&host).await;
}

#[tokio::test]
async fn peer_only_message_types_from_the_chaincode_end_the_stream() {
    let host = dev_host().await;
    for (ty, name) in [
        (Type::Transaction, "TRANSACTION"),
        (Type::Registered, "REGISTERED"),
        (Type::Response, "RESPONSE"),
    ] {
        let mut shim = registered(&host, &format!("peeronly{name}")).await;
        shim.send_type(ty, vec![], "tx", CHANNEL).await;
        shim.expect_failure(&format!(
            "cannot handle {name} message while in ready state"
        ))
        .await;
    }
    assert_healthy(&host).await;
}

#[tokio::test]
async fn keepalive_floods_are_ignored() {
    let host = dev_host().await;
    let mut shim = registered(&host, "chatty").await;
    for _ in 0..1000 {
        shim.send_type(Type::Keepalive, vec![], "", "").await;
    }
    shim.expect_silence().await;
    let pending = start_tx(&host, "chatty", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    shim.complete(&tx, 200, b"still here").await;
    assert_eq!(
        pending.await.unwrap().unwrap().response.payload,
        b"still here"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_go_out_on_a_registered_stream_and_their_task_ends_with_it() {
    let host = host(SupportConfig {
        dev_mode: true,
        keepalive: Some(Duration::from_millis(20)),
        ..SupportConfig::default()
    })
    .await;
    let tasks = tokio::runtime::Handle::current().metrics();
    let before = tasks.num_alive_tasks();
    let mut shim = registered(&host, "kept").await;
    for _ in 0..3 {
        shim.expect(Type::Keepalive).await;
    }
    // The chaincode hangs up: the stream's tasks, the keepalive's among them, end.
    drop(shim);
    assert!(
        host.support
            .wait_deregistered(&PackageId::new("kept:0000"), WAIT)
            .await
    );
    tokio::time::timeout(WAIT, async {
        while tasks.num_alive_tasks() > before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} tasks still alive, {before} before the stream",
            tasks.num_alive_tasks()
        )
    });
}

#[tokio::test]
async fn completed_for_an_unknown_transaction_is_ignored() {
    let host = dev_host().await;
    let mut shim = registered(&host, "stray").await;
    shim.send_type(
        Type::Completed,
        Response::default().encode_to_vec(),
        "no-such-tx",
        CHANNEL,
    )
    .await;
    shim.expect_silence().await;
    let pending = start_tx(&host, "stray", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    shim.complete(&tx, 200, b"ok").await;
    assert_eq!(pending.await.unwrap().unwrap().response.status, 200);
}

#[tokio::test]
async fn requests_naming_endless_channels_are_answered_and_counted_under_one_label() {
    let host = dev_host().await;
    let mut shim = registered(&host, "channels").await;
    // A chaincode names the channels of its requests; no transaction runs on any of them.
    for i in 0..100 {
        let channel = format!("nochannel{i}");
        shim.send_type(Type::GetState, get_state("k", ""), "t", &channel)
            .await;
        let reply = shim.expect(Type::Error).await;
        assert_eq!(reply.channel_id, channel);
    }
    let metrics = host.support.metrics().encode();
    for line in [
        r#"chaincode_shim_requests_received_total{type="GET_STATE",channel="(none)",chaincode="channels:0000",runtime="dev"} 100"#,
        r#"chaincode_shim_requests_completed_total{type="GET_STATE",channel="(none)",chaincode="channels:0000",success="false",runtime="dev"} 100"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(
        !metrics.contains("nochannel"),
        "a channel a chaincode chose became a label:\n{metrics}"
    );
    assert_eq!(host.support.requests_received(Type::GetState), 100);
    assert_healthy(&host).await;
}

#[tokio::test]
async fn requests_with_a_wrong_txid_or_channel_get_no_ledger_context() {
    let host = dev_host().await;
    let mut shim = registered(&host, "lost").await;
    let pending = start_tx(&host, "lost", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    for (txid, channel) in [
        ("bogus", tx.channel_id.as_str()),
        (tx.txid.as_str(), "otherchannel"),
    ] {
        shim.send_type(Type::GetState, get_state("k", ""), txid, channel)
            .await;
        let reply = shim.expect(Type::Error).await;
        assert_eq!(
            text(&reply),
            format!("GET_STATE failed: transaction ID: {txid}: no ledger context")
        );
        assert_eq!(
            (reply.txid.as_str(), reply.channel_id.as_str()),
            (txid, channel)
        );
        // A chaincode call gets Fabric's own text for the same.
        let spec = ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name: "lost".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        shim.send_type(Type::InvokeChaincode, spec.encode_to_vec(), txid, channel)
            .await;
        let reply = shim.expect(Type::Error).await;
        assert_eq!(
            text(&reply),
            format!(
                "INVOKE_CHAINCODE failed: transaction ID: {txid}: could not get valid transaction"
            )
        );
    }
    shim.complete(&tx, 200, b"").await;
    pending.await.unwrap().unwrap();
    assert_healthy(&host).await;
}

#[tokio::test]
async fn garbage_payloads_get_an_error_reply_not_a_crash() {
    let host = dev_host().await;
    let mut shim = registered(&host, "garbage").await;
    let pending = start_tx(&host, "garbage", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    let reply = shim
        .request(&tx, Type::GetState, vec![0xff, 0xff, 0xff])
        .await;
    assert_eq!(reply.r#type(), Type::Error);
    let prefix = format!(
        "GET_STATE failed: transaction ID: {}: unmarshal failed: ",
        tx.txid
    );
    assert!(text(&reply).starts_with(&prefix), "{}", text(&reply));
    // A key that is not UTF-8 (field 1 of PutState, a string).
    let reply = shim
        .request(&tx, Type::PutState, vec![0x0a, 0x02, 0xc3, 0x28])
        .await;
    assert_eq!(reply.r#type(), Type::Error);
    assert!(
        text(&reply).contains("unmarshal failed"),
        "{}",
        text(&reply)
    );
    shim.complete(&tx, 200, b"").await;
    let result = pending.await.unwrap().unwrap();
    assert!(result.rwset.ns_rwset.is_empty(), "nothing was written");
    assert_healthy(&host).await;
}

#[tokio::test]
async fn completed_twice_delivers_the_first_and_ignores_the_second() {
    let host = dev_host().await;
    let mut shim = registered(&host, "twice").await;
    let pending = start_tx(&host, "twice", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    shim.complete(&tx, 200, b"first").await;
    shim.complete(&tx, 200, b"second").await;
    assert_eq!(pending.await.unwrap().unwrap().response.payload, b"first");
    shim.expect_silence().await;
    assert_healthy(&host).await;
}

#[tokio::test]
async fn after_the_execute_timeout_requests_get_no_ledger_context_and_a_late_completed_is_ignored()
{
    let host = host(SupportConfig {
        dev_mode: true,
        execute_timeout: Duration::from_millis(300),
        ..SupportConfig::default()
    })
    .await;
    let mut shim = registered(&host, "slow").await;
    let pending = start_tx(&host, "slow", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    let err = pending.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "failed to execute transaction {}: error sending: timeout expired while executing transaction",
            tx.txid
        )
    );
    let reply = shim.request(&tx, Type::GetState, get_state("k", "")).await;
    assert_eq!(
        text(&reply),
        format!(
            "GET_STATE failed: transaction ID: {}: no ledger context",
            tx.txid
        )
    );
    shim.complete(&tx, 200, b"late").await;
    shim.expect_silence().await;
    assert_healthy(&host).await;
}

#[tokio::test]
async fn next_on_an_unknown_iterator_fails_and_close_is_answered_for_any_id() {
    let host = dev_host().await;
    let mut shim = registered(&host, "iter").await;
    let pending = start_tx(&host, "iter", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    let next = QueryStateNext { id: "nope".into() }.encode_to_vec();
    let reply = shim.request(&tx, Type::QueryStateNext, next).await;
    assert_eq!(
        text(&reply),
        format!(
            "QUERY_STATE_NEXT failed: transaction ID: {}: query iterator not found",
            tx.txid
        )
    );
    let close = QueryStateClose { id: "nope".into() }.encode_to_vec();
    let reply = shim.request(&tx, Type::QueryStateClose, close).await;
    assert_eq!(reply.r#type(), Type::Response);
    assert_eq!(
        QueryResponse::decode(reply.payload.as_slice()).unwrap(),
        QueryResponse {
            results: vec![],
            has_more: false,
            id: "nope".into(),
            metadata: vec![],
        }
    );
    shim.complete(&tx, 200, b"").await;
    pending.await.unwrap().unwrap();
    assert_healthy(&host).await;
}

#[tokio::test]
async fn open_iterators_per_transaction_are_bounded() {
    let host = host(SupportConfig {
        dev_mode: true,
        query_batch_size: 1,
        max_iterators_per_tx: 2,
        ..SupportConfig::default()
    })
    .await;
    // Two committed keys, so a range with batch size 1 stays open (has_more).
    let mut writer = registered(&host, "bounded").await;
    let proposal = host.proposal("bounded", &["w"]);
    let pending = tokio::spawn({
        let support = host.support.clone();
        let proposal = proposal.clone();
        async move { support.execute(&proposal.signed_proposal).await }
    });
    let tx = writer.expect(Type::Transaction).await;
    for key in ["a", "b"] {
        let put = PutState {
            key: key.into(),
            value: b"v".to_vec(),
            collection: String::new(),
        };
        writer
            .request(&tx, Type::PutState, put.encode_to_vec())
            .await;
    }
    writer.complete(&tx, 200, b"").await;
    let result = pending.await.unwrap().unwrap();
    host.commit(&result, &proposal);

    let pending = start_tx(&host, "bounded", &["r"]);
    let tx = writer.expect(Type::Transaction).await;
    let range = GetStateByRange {
        start_key: "a".into(),
        end_key: String::new(),
        ..Default::default()
    }
    .encode_to_vec();
    for _ in 0..2 {
        let reply = writer
            .request(&tx, Type::GetStateByRange, range.clone())
            .await;
        assert!(
            QueryResponse::decode(reply.payload.as_slice())
                .unwrap()
                .has_more
        );
    }
    let reply = writer.request(&tx, Type::GetStateByRange, range).await;
    assert_eq!(
        text(&reply),
        format!(
            "GET_STATE_BY_RANGE failed: transaction ID: {}: too many open query iterators in this \
             transaction (limit 2): close iterators when done with them",
            tx.txid
        )
    );
    writer.complete(&tx, 200, b"").await;
    pending.await.unwrap().unwrap();
    assert_healthy(&host).await;
}

/// The support's debug counters follow a transaction's context and its open iterator,
/// and fall back to zero when the shim hangs up mid-transaction.
#[tokio::test]
async fn live_context_and_iterator_counts_return_to_zero_when_a_shim_hangs_up() {
    let host = host(SupportConfig {
        dev_mode: true,
        query_batch_size: 1,
        ..SupportConfig::default()
    })
    .await;
    let counts = |host: &TestHost| {
        (
            host.support.live_transaction_contexts(),
            host.support.open_query_iterators(),
        )
    };
    let mut shim = registered(&host, "counted").await;
    let proposal = host.proposal("counted", &["w"]);
    let pending = tokio::spawn({
        let support = host.support.clone();
        let proposal = proposal.clone();
        async move { support.execute(&proposal.signed_proposal).await }
    });
    let tx = shim.expect(Type::Transaction).await;
    assert_eq!(counts(&host), (1, 0));
    for key in ["a", "b"] {
        let put = PutState {
            key: key.into(),
            value: b"v".to_vec(),
            collection: String::new(),
        };
        shim.request(&tx, Type::PutState, put.encode_to_vec()).await;
    }
    shim.complete(&tx, 200, b"").await;
    let result = pending.await.unwrap().unwrap();
    host.commit(&result, &proposal);
    assert_eq!(counts(&host), (0, 0));

    let pending = start_tx(&host, "counted", &["r"]);
    let tx = shim.expect(Type::Transaction).await;
    let range = GetStateByRange {
        start_key: "a".into(),
        end_key: String::new(),
        ..Default::default()
    };
    let reply = shim
        .request(&tx, Type::GetStateByRange, range.encode_to_vec())
        .await;
    assert!(
        QueryResponse::decode(reply.payload.as_slice())
            .unwrap()
            .has_more
    );
    assert_eq!(counts(&host), (1, 1));
    drop(shim);
    let error = pending.await.unwrap().unwrap_err();
    assert!(error.to_string().contains("stream terminated"), "{error}");
    assert_eq!(counts(&host), (0, 0));
    assert_healthy(&host).await;
}

#[tokio::test]
async fn private_data_and_rich_queries_get_clear_not_supported_errors() {
    let host = dev_host().await;
    let mut shim = registered(&host, "private").await;
    let pending = start_tx(&host, "private", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    let reply = shim
        .request(&tx, Type::GetState, get_state("k", "secrets"))
        .await;
    assert_eq!(
        text(&reply),
        format!(
            "GET_STATE failed: transaction ID: {}: private data collections are not supported by \
             cchost yet (collection \"secrets\")",
            tx.txid
        )
    );
    let query = cchost::proto::protos::GetQueryResult {
        query: "{}".into(),
        ..Default::default()
    };
    let reply = shim
        .request(&tx, Type::GetQueryResult, query.encode_to_vec())
        .await;
    assert_eq!(
        text(&reply),
        format!(
            "GET_QUERY_RESULT failed: transaction ID: {}: rich queries (GetQueryResult) are not \
             supported by this state database (redb); use key-range or partial composite-key queries",
            tx.txid
        )
    );
    shim.complete(&tx, 200, b"").await;
    pending.await.unwrap().unwrap();

    // In Init, Fabric's own rule comes first.
    let proposal = cchost::proposal::ProposalBuilder::new(CHANNEL, "private")
        .args(["init"])
        .init(true)
        .build(&host.identity)
        .unwrap();
    let pending = tokio::spawn({
        let support = host.support.clone();
        async move { support.execute(&proposal.signed_proposal).await }
    });
    let init = shim.expect(Type::Init).await;
    assert!(
        ChaincodeInput::decode(init.payload.as_slice())
            .unwrap()
            .is_init
    );
    let reply = shim
        .request(&init, Type::GetState, get_state("k", "secrets"))
        .await;
    assert_eq!(
        text(&reply),
        format!(
            "GET_STATE failed: transaction ID: {}: private data APIs are not allowed in chaincode Init()",
            init.txid
        )
    );
    shim.complete(&init, 200, b"").await;
    pending.await.unwrap().unwrap();
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_chaincode_invoking_itself_in_the_same_transaction_is_refused() {
    let host = dev_host().await;
    let mut shim = registered(&host, "selfish").await;
    let pending = start_tx(&host, "selfish", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    let spec = ChaincodeSpec {
        chaincode_id: Some(ChaincodeId {
            name: "selfish".into(),
            ..Default::default()
        }),
        input: Some(ChaincodeInput {
            args: vec![b"f".to_vec()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let reply = shim
        .request(&tx, Type::InvokeChaincode, spec.encode_to_vec())
        .await;
    assert_eq!(
        text(&reply),
        format!(
            "INVOKE_CHAINCODE failed: transaction ID: {0}: execute failed: error sending: txid: {0}({CHANNEL}) exists",
            tx.txid
        )
    );
    shim.complete(&tx, 200, b"").await;
    pending.await.unwrap().unwrap();
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_second_request_while_one_is_in_progress_for_the_same_transaction_is_dropped() {
    let host = dev_host().await;
    let mut caller = registered(&host, "caller").await;
    let mut callee = registered(&host, "callee").await;
    let pending = start_tx(&host, "caller", &["f"]);
    let tx = caller.expect(Type::Transaction).await;
    // The invoke keeps the caller's transaction busy until the callee completes.
    let spec = ChaincodeSpec {
        chaincode_id: Some(ChaincodeId {
            name: "callee".into(),
            ..Default::default()
        }),
        input: Some(ChaincodeInput {
            args: vec![b"g".to_vec()],
            ..Default::default()
        }),
        ..Default::default()
    };
    caller
        .send_type(
            Type::InvokeChaincode,
            spec.encode_to_vec(),
            &tx.txid,
            &tx.channel_id,
        )
        .await;
    let inner = callee.expect(Type::Transaction).await;
    assert_eq!(
        inner.txid, tx.txid,
        "the callee runs in the caller's transaction"
    );
    caller
        .send_type(Type::GetState, get_state("k", ""), &tx.txid, &tx.channel_id)
        .await;
    caller.expect_silence().await;
    callee.complete(&inner, 200, b"from callee").await;
    let reply = caller.expect(Type::Response).await;
    let nested = ChaincodeMessage::decode(reply.payload.as_slice()).unwrap();
    assert_eq!(nested.r#type(), Type::Completed);
    assert_eq!(
        Response::decode(nested.payload.as_slice()).unwrap().payload,
        b"from callee"
    );
    caller.expect_silence().await;
    caller.complete(&tx, 200, b"").await;
    pending.await.unwrap().unwrap();
    assert_healthy(&host).await;
}

// --- Volume -------------------------------------------------------------------------------

#[tokio::test]
async fn a_5_mib_value_is_served_and_a_message_over_the_100_mib_limit_ends_the_stream() {
    let host = dev_host().await;
    let mut shim = registered(&host, "bulky").await;
    let pending = start_tx(&host, "bulky", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    let put = PutState {
        key: "big".into(),
        value: vec![7; 5 * 1024 * 1024],
        collection: String::new(),
    };
    let reply = shim.request(&tx, Type::PutState, put.encode_to_vec()).await;
    assert_eq!(reply.r#type(), Type::Response, "{}", text(&reply));
    shim.complete(&tx, 200, b"").await;
    let result = pending.await.unwrap().unwrap();
    assert_eq!(result.rwset.ns_rwset.len(), 1);

    let pending = start_tx(&host, "bulky", &["g"]);
    let tx = shim.expect(Type::Transaction).await;
    let huge = PutState {
        key: "huge".into(),
        value: vec![7; 101 * 1024 * 1024],
        collection: String::new(),
    };
    shim.send_type(
        Type::PutState,
        huge.encode_to_vec(),
        &tx.txid,
        &tx.channel_id,
    )
    .await;
    match shim.next(WAIT).await {
        Next::Failed(status) => assert!(status.message().contains("too large"), "{status:?}"),
        other => panic!("expected the stream to fail, got {other:?}"),
    }
    let err = pending.await.unwrap().unwrap_err();
    assert!(
        err.to_string()
            .ends_with(": error sending: chaincode stream terminated"),
        "{err}"
    );
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_flood_of_requests_is_answered_in_full_within_the_concurrency_bound() {
    const REQUESTS: usize = 10_000;
    let host = host(SupportConfig {
        dev_mode: true,
        max_concurrent_requests: 8,
        ..SupportConfig::default()
    })
    .await;
    let mut shim = registered(&host, "flood").await;
    let sender = shim.tx.clone();
    tokio::spawn(async move {
        for i in 0..REQUESTS {
            let message = ChaincodeMessage {
                r#type: Type::GetState.into(),
                payload: get_state("k", ""),
                txid: format!("flood{i}"),
                channel_id: CHANNEL.into(),
                ..Default::default()
            };
            if sender.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut answered = 0;
    while answered < REQUESTS {
        let reply = shim.expect(Type::Error).await;
        assert!(text(&reply).ends_with(": no ledger context"));
        answered += 1;
    }
    assert_eq!(
        host.support.requests_received(Type::GetState),
        REQUESTS as u64
    );
    assert_healthy(&host).await;
}

// --- Behaviours without a Node-shim test ----------------------------------------------------

#[tokio::test]
async fn state_metadata_is_written_to_the_rwset_committed_and_read_back() {
    let host = dev_host().await;
    let mut shim = registered(&host, "meta").await;
    let proposal = host.proposal("meta", &["set"]);
    let pending = tokio::spawn({
        let support = host.support.clone();
        let proposal = proposal.clone();
        async move { support.execute(&proposal.signed_proposal).await }
    });
    let tx = shim.expect(Type::Transaction).await;
    let put = PutState {
        key: "k".into(),
        value: b"v".to_vec(),
        collection: String::new(),
    };
    shim.request(&tx, Type::PutState, put.encode_to_vec()).await;
    let meta = PutStateMetadata {
        key: "k".into(),
        collection: String::new(),
        metadata: Some(StateMetadata {
            metakey: "VALIDATION_PARAMETER".into(),
            value: b"policy".to_vec(),
        }),
    };
    let reply = shim
        .request(&tx, Type::PutStateMetadata, meta.encode_to_vec())
        .await;
    assert_eq!(reply.r#type(), Type::Response, "{}", text(&reply));
    shim.complete(&tx, 200, b"").await;
    let result = pending.await.unwrap().unwrap();
    let kv = KvrwSet::decode(result.rwset.ns_rwset[0].rwset.as_slice()).unwrap();
    assert_eq!(
        kv.metadata_writes,
        [KvMetadataWrite {
            key: "k".into(),
            entries: vec![KvMetadataEntry {
                name: "VALIDATION_PARAMETER".into(),
                value: b"policy".to_vec()
            }],
        }]
    );
    host.commit(&result, &proposal);

    let pending = start_tx(&host, "meta", &["get"]);
    let tx = shim.expect(Type::Transaction).await;
    let get = GetStateMetadata {
        key: "k".into(),
        collection: String::new(),
    };
    let reply = shim
        .request(&tx, Type::GetStateMetadata, get.encode_to_vec())
        .await;
    assert_eq!(
        StateMetadataResult::decode(reply.payload.as_slice()).unwrap(),
        StateMetadataResult {
            entries: vec![StateMetadata {
                metakey: "VALIDATION_PARAMETER".into(),
                value: b"policy".to_vec()
            }],
        }
    );
    shim.complete(&tx, 200, b"").await;
    pending.await.unwrap().unwrap();
}

#[tokio::test]
async fn keepalive_is_sent_only_when_configured() {
    let quiet = dev_host().await;
    let mut shim = registered(&quiet, "quiet").await;
    shim.expect_silence().await;

    let chatty = host(SupportConfig {
        dev_mode: true,
        keepalive: Some(Duration::from_millis(100)),
        ..SupportConfig::default()
    })
    .await;
    let mut shim = registered(&chatty, "kept").await;
    for _ in 0..2 {
        let keepalive = shim.expect(Type::Keepalive).await;
        assert!(keepalive.payload.is_empty() && keepalive.txid.is_empty());
    }
    assert_healthy(&chatty).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_to_a_chaincode_that_stopped_reading_end_at_the_execute_timeout() {
    let host = host(SupportConfig {
        dev_mode: true,
        execute_timeout: Duration::from_secs(1),
        ..SupportConfig::default()
    })
    .await;
    // Registered, then never read again: once HTTP/2 flow control and the outbound
    // queue are full, sending a TRANSACTION waits.
    let deaf = registered(&host, "deaf").await;
    let big = "x".repeat(256 * 1024);
    let pending: Vec<_> = (0..80)
        .map(|_| start_tx(&host, "deaf", &["f", &big]))
        .collect();
    let all = async {
        for tx in pending {
            let err = tx.await.unwrap().unwrap_err();
            assert!(
                err.to_string()
                    .ends_with(": error sending: timeout expired while executing transaction"),
                "{err}"
            );
        }
    };
    tokio::time::timeout(WAIT * 2, all)
        .await
        .expect("every transaction ended at the execute timeout, sent or not");
    drop(deaf);
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_stream_that_never_registers_is_ended_after_the_register_timeout() {
    let host = host(SupportConfig {
        register_timeout: Duration::from_millis(200),
        ..SupportConfig::default()
    })
    .await;
    let mut idle = Shim::connect(&host).await;
    match idle.next(WAIT).await {
        Next::Failed(status) => {
            assert_eq!(status.message(), "no REGISTER within 200ms of connecting")
        }
        other => panic!("expected the stream to be ended, got {other:?}"),
    }
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_write_batch_applies_in_order_and_stops_at_the_first_bad_record_keeping_those_before() {
    use cchost::proto::protos::{WriteBatchState, WriteRecord, write_record};
    let host = dev_host().await;
    let mut shim = registered(&host, "batch").await;
    let pending = start_tx(&host, "batch", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    let record = |ty: write_record::Type, key: &str, value: &[u8], collection: &str| WriteRecord {
        key: key.into(),
        value: value.to_vec(),
        collection: collection.into(),
        metadata: (ty == write_record::Type::PutStateMetadata).then(|| StateMetadata {
            metakey: "VALIDATION_PARAMETER".into(),
            value: value.to_vec(),
        }),
        r#type: ty.into(),
    };
    let batch = |rec| WriteBatchState { rec }.encode_to_vec();
    let reply = shim
        .request(
            &tx,
            Type::WriteBatchState,
            batch(vec![
                record(write_record::Type::PutState, "a", b"1", ""),
                record(write_record::Type::DelState, "b", b"", ""),
                record(write_record::Type::PutStateMetadata, "a", b"policy", ""),
                record(write_record::Type::PurgePrivateData, "p", b"", ""),
                record(write_record::Type::PutState, "c", b"3", ""),
            ]),
        )
        .await;
    assert_eq!(
        text(&reply),
        format!(
            "WRITE_BATCH_STATE failed: transaction ID: {}: only applicable for private data",
            tx.txid
        )
    );
    let reply = shim
        .request(
            &tx,
            Type::WriteBatchState,
            batch(vec![record(write_record::Type::Undefined, "d", b"4", "")]),
        )
        .await;
    assert_eq!(
        text(&reply),
        format!(
            "WRITE_BATCH_STATE failed: transaction ID: {}: unknown operation type",
            tx.txid
        )
    );
    shim.complete(&tx, 200, b"").await;
    let result = pending.await.unwrap().unwrap();
    let kv = KvrwSet::decode(result.rwset.ns_rwset[0].rwset.as_slice()).unwrap();
    let writes: Vec<_> = kv
        .writes
        .iter()
        .map(|w| (w.key.as_str(), w.is_delete, w.value.as_slice()))
        .collect();
    assert_eq!(writes, [("a", false, &b"1"[..]), ("b", true, b"")]);
    assert_eq!(
        kv.metadata_writes,
        [KvMetadataWrite {
            key: "a".into(),
            entries: vec![KvMetadataEntry {
                name: "VALIDATION_PARAMETER".into(),
                value: b"policy".to_vec()
            }],
        }]
    );
    assert_healthy(&host).await;
}

#[tokio::test]
async fn reads_past_the_key_count_or_the_message_size_are_refused_and_the_stream_lives() {
    use cchost::proto::protos::{GetHistoryForKey, GetStateMultiple, GetStateMultipleResult};
    let host = host(SupportConfig {
        dev_mode: true,
        max_message_size: 64 * 1024,
        ..SupportConfig::default()
    })
    .await;
    // Ten values of 10 KiB: half fit in one 60 KiB reply (64 KiB less 4 KiB for the
    // message around it), all ten do not.
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    for key in &keys {
        host.put("reads", key, vec![b'v'; 10 * 1024]);
    }
    // And one key written ten times, 10 KiB each time.
    for i in 0..10 {
        host.put("reads", "h", vec![b'0' + i; 10 * 1024]);
    }
    let mut shim = registered(&host, "reads").await;
    let pending = start_tx(&host, "reads", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    let multiple = |keys: &[String]| {
        GetStateMultiple {
            keys: keys.to_vec(),
            collection: String::new(),
        }
        .encode_to_vec()
    };
    let failed =
        |ty: &str, cause: &str| format!("{ty} failed: transaction ID: {}: {cause}", tx.txid);

    let too_many: Vec<String> = (0..1001).map(|i| format!("x{i}")).collect();
    let reply = shim
        .request(&tx, Type::GetStateMultiple, multiple(&too_many))
        .await;
    assert_eq!(
        text(&reply),
        failed(
            "GET_STATE_MULTIPLE",
            "GET_STATE_MULTIPLE asks for 1001 keys; at most 1000 at a time (maxSizeGetMultipleKeys)"
        )
    );
    let reply = shim
        .request(&tx, Type::GetStateMultiple, multiple(&keys[..5]))
        .await;
    assert_eq!(reply.r#type(), Type::Response, "{}", text(&reply));
    let values = GetStateMultipleResult::decode(reply.payload.as_slice())
        .unwrap()
        .values;
    assert_eq!(values, vec![vec![b'v'; 10 * 1024]; 5]);
    let reply = shim
        .request(&tx, Type::GetStateMultiple, multiple(&keys))
        .await;
    assert_eq!(
        text(&reply),
        failed(
            "GET_STATE_MULTIPLE",
            "the values of GET_STATE_MULTIPLE exceed 61440 bytes, the maximum message size"
        )
    );
    let range = GetStateByRange {
        start_key: String::new(),
        end_key: String::new(),
        collection: String::new(),
        metadata: Vec::new(),
    }
    .encode_to_vec();
    let reply = shim.request(&tx, Type::GetStateByRange, range).await;
    assert_eq!(
        text(&reply),
        failed(
            "GET_STATE_BY_RANGE",
            "the results of one query batch exceed 61440 bytes, the maximum message size"
        )
    );
    // While the refused transaction is still open, another chaincode is served.
    assert_healthy(&host).await;
    let history = GetHistoryForKey { key: "h".into() }.encode_to_vec();
    let reply = shim.request(&tx, Type::GetHistoryForKey, history).await;
    assert_eq!(
        text(&reply),
        failed(
            "GET_HISTORY_FOR_KEY",
            "the results of one query batch exceed 61440 bytes, the maximum message size"
        )
    );
    // The transaction goes on and completes. GET_STATE_MULTIPLE records its reads as it
    // goes, so the key that passed the bound is read too; the refused range is recorded
    // as Fabric records an iterator closed on an error: opened, nothing read, not
    // exhausted.
    shim.complete(&tx, 200, b"").await;
    let result = pending.await.unwrap().unwrap();
    let kv = KvrwSet::decode(result.rwset.ns_rwset[0].rwset.as_slice()).unwrap();
    let reads: Vec<_> = kv.reads.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(reads, ["k0", "k1", "k2", "k3", "k4", "k5"]);
    assert_eq!(
        kv.range_queries_info,
        [RangeQueryInfo {
            start_key: String::new(),
            end_key: String::new(),
            itr_exhausted: false,
            reads_info: None,
        }]
    );
    drop(shim);
    assert_healthy(&host).await;
}

#[tokio::test]
async fn a_chaincode_that_never_reads_its_replies_gets_no_more_answered_than_its_queue_holds() {
    const REQUESTS: u64 = 200;
    let host = dev_host().await;
    host.put("deafreader", "big", vec![b'v'; 1024 * 1024]);
    let mut shim = registered(&host, "deafreader").await;
    let pending = start_tx(&host, "deafreader", &["f"]);
    let tx = shim.expect(Type::Transaction).await;
    // 200 reads of a 1 MiB value, one every 10 ms, none of the replies read: once the
    // queue to the chaincode (64 messages) and the transport's buffers are full, the
    // request answered last waits for room, and those sent meanwhile are dropped as
    // duplicates instead of each holding another 1 MiB reply.
    for _ in 0..REQUESTS {
        shim.send_type(
            Type::GetState,
            get_state("big", ""),
            &tx.txid,
            &tx.channel_id,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(QUIET).await;
    // Fabric's metric counts the requests taken up (not the dropped duplicates).
    let metrics = host.support.metrics().encode();
    let taken = r#"chaincode_shim_requests_received_total{type="GET_STATE",channel="mychannel",chaincode="deafreader:0000",runtime="dev"} "#;
    let answered: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix(taken))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {taken} in\n{metrics}"));
    assert!(
        answered < 64 + 16,
        "{answered} of {REQUESTS} requests were answered into a queue no one reads"
    );
    eprintln!("{answered} of {REQUESTS} requests answered");
    // While it sits on its full queue, another chaincode is served.
    assert_healthy(&host).await;
    drop(shim);
    assert!(pending.await.unwrap().is_err());
}
