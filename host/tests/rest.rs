//! The JSON-RPC 2.0 endpoint (`POST /chaincode`) of a node, driven over raw HTTP/1.1 so
//! that every byte of the exchange is the test's: each error row of v0.6's table with its
//! code, HTTP status and text; notifications; deploy → invoke → query of the wasm
//! asset-transfer; oversized bodies and slow clients refused while others are answered.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cchost::node::{RunningNode, StartOptions};
use cchost::rest::{Rest, RestConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A node serving REST on a system-chosen port with a 1 s read timeout and 64 KiB bodies.
struct TestNode {
    dir: tempfile::TempDir,
    node: Option<RunningNode>,
}

impl TestNode {
    async fn start() -> Self {
        Self::start_with("").await
    }

    /// A node whose `core.toml` ends with `extra`.
    async fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(
            path.join("core.toml"),
            format!("[peer]\nlistenAddress = \"127.0.0.1:0\"\nchaincodeListenAddress = \"127.0.0.1:0\"\n\
             [operations]\nlistenAddress = \"\"\n\
             [rest]\naddress = \"127.0.0.1:0\"\nreadTimeout = \"1s\"\nmaxBodyBytes = 65536\n\
             [orderer]\nBatchTimeout = \"20ms\"\n{extra}"),
        )
        .unwrap();
        let node = RunningNode::start(&path, StartOptions::default())
            .await
            .unwrap();
        Self {
            dir,
            node: Some(node),
        }
    }

    fn node(&self) -> &RunningNode {
        self.node.as_ref().unwrap()
    }

    fn rest(&self) -> SocketAddr {
        self.node().rest_address.unwrap()
    }

    /// A package file of the wasm asset-transfer.
    fn package_file(&self) -> PathBuf {
        let wasm = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/guests/wasm32-wasip1/release/asset_transfer.wasm"),
        )
        .unwrap();
        let package =
            cchost::package::build_wasm_package("basic_1.0", "asset_transfer.wasm", &wasm).unwrap();
        let file = self.dir.path().join("basic.tar.gz");
        std::fs::write(&file, package).unwrap();
        file
    }

    /// Another endpoint on the same node, configured by `change`.
    async fn endpoint(&self, change: impl FnOnce(&mut RestConfig)) -> SocketAddr {
        let mut config = RestConfig {
            profile: self.node().profile.clone(),
            security: false,
            dev_mode: false,
            max_body_bytes: 65536,
            read_timeout: Duration::from_secs(1),
            commit_timeout: Duration::from_secs(30),
        };
        change(&mut config);
        let read_timeout = config.read_timeout;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = cchost::rest::router(Rest::new(config).unwrap());
        tokio::spawn(cchost::rest::serve(
            listener,
            router,
            read_timeout,
            std::future::pending(),
        ));
        address
    }
}

/// An HTTP/1.1 answer: status and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends `raw` bytes and reads the answer until the server closes.
async fn exchange(address: SocketAddr, raw: &[u8]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(raw).await.unwrap();
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut tokio::net::TcpStream) -> Answer {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        body: body.to_owned(),
    }
}

fn request(path: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

async fn post(address: SocketAddr, body: &str) -> Answer {
    exchange(address, &request("/chaincode", body.as_bytes())).await
}

async fn call(address: SocketAddr, method: &str, params: Value) -> Answer {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 7});
    post(address, &body.to_string()).await
}

/// Asserts an error answer: HTTP status, code, standard message, data and id.
#[track_caller]
fn assert_error(answer: &Answer, http: u16, code: i64, message: &str, data: &str, id: Value) {
    assert_eq!(answer.status, http, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({
            "jsonrpc": "2.0",
            "error": {"code": code, "message": message, "data": data},
            "id": id,
        })
    );
}

#[track_caller]
fn assert_ok(answer: &Answer, message: &str) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({"jsonrpc": "2.0", "result": {"status": "OK", "message": message}, "id": 7})
    );
}

fn ok_message(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let value = answer.json();
    assert_eq!(value["result"]["status"], "OK", "{}", answer.body);
    value["result"]["message"].as_str().unwrap().to_owned()
}

fn basic(args: &[&str]) -> Value {
    json!({"type": 1, "chaincodeID": {"name": "basic"}, "ctorMsg": {"args": args}})
}

/// Deploys the wasm asset-transfer as `basic`, running InitLedger as its init.
async fn deploy_basic(node: &TestNode) {
    let answer = call(
        node.rest(),
        "deploy",
        json!({
            "type": "WASM",
            "chaincodeID": {"name": "basic", "path": node.package_file()},
            "ctorMsg": {"function": "InitLedger", "args": []},
        }),
    )
    .await;
    assert_ok(&answer, "basic");
}

const ASSET1: &str = r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5,"docType":"asset"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_then_invoke_then_query_the_wasm_asset_transfer_read_back_through_rest() {
    let node = TestNode::start().await;
    deploy_basic(&node).await;
    let rest = node.rest();
    // InitLedger ran as the init transaction.
    assert_ok(
        &call(rest, "query", basic(&["ReadAsset", "asset1"])).await,
        ASSET1,
    );
    // Invoke answered once ordered: the transaction id.
    let txid = ok_message(&call(rest, "invoke", basic(&["TransferAsset", "asset1", "Ann"])).await);
    assert_eq!(txid.len(), 64, "{txid}");
    let status = node.node().ledger.wait_for(&txid).unwrap().await.unwrap();
    assert_eq!(status.code, cchost_proto::protos::TxValidationCode::Valid);
    // With ?wait=commit: answered after the commit, so the next query sees it.
    let answer = exchange(
        rest,
        &request(
            "/chaincode?wait=commit",
            json!({"jsonrpc": "2.0", "method": "invoke", "id": 7,
                   "params": basic(&["TransferAsset", "asset1", "Bob"])})
            .to_string()
            .as_bytes(),
        ),
    )
    .await;
    let txid2 = ok_message(&answer);
    assert!(node.node().ledger.tx_status(&txid2).unwrap().is_some());
    assert_ok(
        &call(rest, "query", basic(&["ReadAsset", "asset1"])).await,
        &ASSET1.replace("Tomoko", "Bob"),
    );
    // v0.6's ctorMsg shape: the function apart from its arguments.
    assert_ok(
        &call(
            rest,
            "query",
            json!({"chaincodeID": {"name": "basic"},
                   "ctorMsg": {"function": "AssetExists", "args": ["asset6"]}}),
        )
        .await,
        "true",
    );
    // A second deploy is the next sequence, and runs its constructor again.
    deploy_basic(&node).await;
    assert_ok(
        &call(rest, "query", basic(&["ReadAsset", "asset1"])).await,
        ASSET1,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_row_is_answered_with_its_code_http_status_and_text() {
    let node = TestNode::start().await;
    deploy_basic(&node).await;
    let rest = node.rest();
    let id = json!(7);
    let null = Value::Null;

    // A chunked body whose chunk size is not hexadecimal cannot be read.
    let answer = exchange(
        rest,
        b"POST /chaincode HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
          Connection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    .await;
    assert_error(
        &answer,
        500,
        -32603,
        "Internal error",
        "Internal JSON-RPC error when reading request body.",
        null.clone(),
    );
    assert_error(
        &post(rest, "").await,
        400,
        -32600,
        "Invalid Request",
        "Client must supply a payload for chaincode requests.",
        null.clone(),
    );
    assert_error(
        &post(rest, "{\"jsonrpc\": ").await,
        400,
        -32700,
        "Parse error",
        "Error unmarshalling chaincode request payload: EOF while parsing a value at line 1 column 12",
        null.clone(),
    );
    assert_error(
        &post(
            rest,
            r#"{"jsonrpc": "2.0", "method": "query", "params": "x", "id": 7}"#,
        )
        .await,
        400,
        -32700,
        "Parse error",
        "Error unmarshalling chaincode request payload: invalid type: string \"x\", expected struct ChaincodeSpec",
        null.clone(),
    );
    assert_error(
        &post(rest, r#"{"method": "query", "id": 7}"#).await,
        400,
        -32600,
        "Invalid Request",
        "Missing JSON RPC 2.0 version string.",
        id.clone(),
    );
    assert_error(
        &post(rest, r#"{"jsonrpc": "1.0", "method": "query", "id": "a"}"#).await,
        400,
        -32600,
        "Invalid Request",
        "Invalid JSON RPC 2.0 version string. Must be 2.0.",
        json!("a"),
    );
    assert_error(
        &post(rest, r#"{"jsonrpc": "2.0", "id": 7}"#).await,
        400,
        -32600,
        "Invalid Request",
        "Missing JSON RPC 2.0 method string.",
        id.clone(),
    );
    assert_error(
        &post(rest, r#"{"jsonrpc": "2.0", "method": "upgrade", "id": 7}"#).await,
        404,
        -32601,
        "Method not found",
        "Requested method does not exist.",
        id.clone(),
    );
    assert_error(
        &post(rest, r#"{"jsonrpc": "2.0", "method": "deploy", "id": 7}"#).await,
        400,
        -32602,
        "Invalid params",
        "Client must supply ChaincodeSpec for chaincode deploy request.",
        id.clone(),
    );
    let params = |text: &str| (200, -32602, "Invalid params", text.to_owned());
    for (method, spec, (http, code, message, data)) in [
        (
            "deploy",
            json!({"ctorMsg": {"args": ["InitLedger"]}}),
            params("Payload must contain a ChaincodeID."),
        ),
        (
            "deploy",
            json!({"chaincodeID": {"name": "basic"}, "ctorMsg": {"args": ["InitLedger"]}}),
            params("Chaincode path may not be blank."),
        ),
        (
            "invoke",
            json!({"chaincodeID": {"path": "x"}, "ctorMsg": {"args": ["InitLedger"]}}),
            params("Chaincode name may not be blank."),
        ),
        (
            "deploy",
            json!({"chaincodeID": {"name": "basic", "path": "/x"}}),
            params("Payload must contain a CtorMsg with a Chaincode function name."),
        ),
        (
            "query",
            json!({"chaincodeID": {"name": "basic"}, "ctorMsg": {"args": []}}),
            params("Payload must contain a CtorMsg with a Chaincode function name."),
        ),
        (
            "query",
            json!({"chaincodeID": {"name": "basic"}, "ctorMsg": {"args": ["GetAllAssets"]},
                   "secureContext": "jim"}),
            (
                200,
                -32000,
                "Registration missing",
                "User not logged in. Use the '/registrar' endpoint to obtain a security token."
                    .to_owned(),
            ),
        ),
        (
            "query",
            json!({"chaincodeID": {"name": "basic"}, "ctorMsg": {"args": ["GetAllAssets"]},
                   "secureContext": "../../peers/peer0.org1.example.com"}),
            (
                200,
                -32000,
                "Registration missing",
                "User not logged in. Use the '/registrar' endpoint to obtain a security token."
                    .to_owned(),
            ),
        ),
        (
            "deploy",
            json!({"chaincodeID": {"name": "other", "path": "/nonexistent/cc.tar.gz"},
                   "ctorMsg": {"args": ["InitLedger"]}}),
            (
                200,
                -32001,
                "Deployment failure",
                "Error when deploying chaincode: the path /nonexistent/cc.tar.gz cannot be read: \
                 No such file or directory (os error 2)"
                    .to_owned(),
            ),
        ),
        (
            "invoke",
            basic(&["UpdateAsset", "asset99", "red", "1", "Zoe", "1"]),
            (
                200,
                -32002,
                "Invocation failure",
                "Error when invoking chaincode: chaincode response 500, The asset asset99 does not exist".to_owned(),
            ),
        ),
        (
            "query",
            basic(&["ReadAsset", "asset99"]),
            (
                200,
                -32003,
                "Query failure",
                "Error when querying chaincode: chaincode response 500, The asset asset99 does not exist".to_owned(),
            ),
        ),
        (
            "query",
            json!({"chaincodeID": {"name": "nosuch"}, "ctorMsg": {"args": ["f"]}}),
            (
                200,
                -32003,
                "Query failure",
                "Error when querying chaincode: make sure the chaincode nosuch has been \
                 successfully defined on channel mychannel and try again: chaincode nosuch not found"
                    .to_owned(),
            ),
        ),
    ] {
        let answer = call(rest, method, spec.clone()).await;
        assert_error(&answer, http, code, message, &data, id.clone());
    }
    // A named identity the node has: the admin.
    assert_eq!(
        ok_message(
            &call(
                rest,
                "query",
                json!({"chaincodeID": {"name": "basic"}, "ctorMsg": {"args": ["AssetExists", "asset1"]},
                       "secureContext": "Admin"}),
            )
            .await
        ),
        "true"
    );

    // With security on, every request names its identity.
    let secure = node.endpoint(|c| c.security = true).await;
    assert_error(
        &call(secure, "query", basic(&["ReadAsset", "asset1"])).await,
        200,
        -32602,
        "Invalid params",
        "Must supply username for chaincode when security is enabled.",
        id.clone(),
    );
    let mut named = basic(&["ReadAsset", "asset1"]);
    named["secureContext"] = json!("User1");
    assert_ok(&call(secure, "query", named).await, ASSET1);

    // In dev mode a deploy names its chaincode; the path is not needed.
    let dev = node.endpoint(|c| c.dev_mode = true).await;
    assert_error(
        &call(
            dev,
            "deploy",
            json!({"chaincodeID": {"path": "/x"}, "ctorMsg": {"args": ["Init"]}}),
        )
        .await,
        200,
        -32602,
        "Invalid params",
        "Chaincode name may not be blank in development mode.",
        id.clone(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_processed_and_answered_with_no_body_even_when_it_fails() {
    let node = TestNode::start().await;
    deploy_basic(&node).await;
    let rest = node.rest();
    let before = node.node().ledger.height();
    let answer = exchange(
        rest,
        &request(
            "/chaincode?wait=commit",
            json!({"jsonrpc": "2.0", "method": "invoke",
                   "params": basic(&["CreateAsset", "asset9", "red", "3", "Nia", "40"])})
            .to_string()
            .as_bytes(),
        ),
    )
    .await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    assert_eq!(node.node().ledger.height(), before + 1);
    assert_ok(
        &call(rest, "query", basic(&["ReadAsset", "asset9"])).await,
        r#"{"AppraisedValue":40,"Color":"red","ID":"asset9","Owner":"Nia","Size":3}"#,
    );
    // Failing notifications: no body either, the HTTP status as for a request.
    let answer = post(rest, r#"{"jsonrpc": "2.0", "method": "upgrade"}"#).await;
    assert_eq!((answer.status, answer.body.as_str()), (404, ""));
    let answer = post(
        rest,
        &json!({"jsonrpc": "2.0", "method": "query", "params": basic(&["ReadAsset", "asset99"])})
            .to_string(),
    )
    .await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    // An id of null is a request, not a notification.
    let answer = post(
        rest,
        r#"{"jsonrpc": "2.0", "method": "upgrade", "id": null}"#,
    )
    .await;
    assert_error(
        &answer,
        404,
        -32601,
        "Method not found",
        "Requested method does not exist.",
        Value::Null,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_slow_clients_are_refused_while_other_requests_are_answered() {
    let node = TestNode::start().await;
    deploy_basic(&node).await;
    // Slow clients get 3 s here: ample for the requests answered meanwhile.
    let rest = node
        .endpoint(|c| c.read_timeout = Duration::from_secs(3))
        .await;
    let query = json!({"jsonrpc": "2.0", "method": "query", "id": 7,
                       "params": basic(&["ReadAsset", "asset1"])})
    .to_string();

    // Declared too large: refused before reading.
    let big = vec![b' '; 65537];
    assert_error(
        &exchange(rest, &request("/chaincode", &big)).await,
        413,
        -32603,
        "Internal error",
        "Internal JSON-RPC error when reading request body. The body exceeds 65536 bytes \
         (rest.maxBodyBytes).",
        Value::Null,
    );
    // Chunked, growing past the limit.
    let mut raw = b"POST /chaincode HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
                    Connection: close\r\n\r\n"
        .to_vec();
    for _ in 0..20 {
        raw.extend_from_slice(format!("{:x}\r\n", 4096).as_bytes());
        raw.extend_from_slice(&[b' '; 4096]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let answer = exchange(rest, &raw).await;
    assert_eq!(answer.status, 413, "{}", answer.body);

    // A client that sends its headers and then half its body, and stops.
    let mut slow_body = tokio::net::TcpStream::connect(rest).await.unwrap();
    let request_bytes = request("/chaincode", query.as_bytes());
    let half = request_bytes.len() - query.len() / 2;
    slow_body.write_all(&request_bytes[..half]).await.unwrap();
    // A client that sends half its headers, and stops.
    let mut slow_headers = tokio::net::TcpStream::connect(rest).await.unwrap();
    slow_headers
        .write_all(b"POST /chaincode HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    // Meanwhile other clients are answered, and the slow ones are still waiting.
    for _ in 0..5 {
        assert_ok(&post(rest, &query).await, ASSET1);
    }
    let mut byte = [0u8; 1];
    for slow in [&mut slow_body, &mut slow_headers] {
        assert!(
            tokio::time::timeout(Duration::from_millis(10), slow.peek(&mut byte))
                .await
                .is_err(),
            "a slow client was answered before its timeout"
        );
    }
    let answer = read_answer(&mut slow_body).await;
    assert_error(
        &answer,
        408,
        -32603,
        "Internal error",
        "Internal JSON-RPC error when reading request body. The body did not arrive within 3s \
         (rest.readTimeout).",
        Value::Null,
    );
    // The slow header sender is disconnected without an answer.
    let mut rest_of = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        slow_headers.read_to_end(&mut rest_of),
    )
    .await
    .expect("disconnected within the read timeout");
    assert_eq!((read.unwrap(), rest_of.as_slice()), (0, &b""[..]));
    // And the endpoint still serves.
    assert_ok(&post(rest, &query).await, ASSET1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_node_stops_the_endpoint() {
    let mut node = TestNode::start().await;
    let rest = node.rest();
    node.node.take().unwrap().stop().await.unwrap();
    assert!(tokio::net::TcpStream::connect(rest).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mutual_tls_on_the_peer_the_endpoint_reaches_it_over_tls() {
    let node =
        TestNode::start_with("[peer.tls]\nenabled = true\nclientAuthRequired = true\n").await;
    assert!(node.node().profile.tls_client.is_some());
    deploy_basic(&node).await;
    let rest = node.rest();
    let txid = ok_message(
        &exchange(
            rest,
            &request(
                "/chaincode?wait=commit",
                json!({"jsonrpc": "2.0", "method": "invoke", "id": 7,
                       "params": basic(&["TransferAsset", "asset1", "Bob"])})
                .to_string()
                .as_bytes(),
            ),
        )
        .await,
    );
    assert!(node.node().ledger.tx_status(&txid).unwrap().is_some());
    assert_ok(
        &call(rest, "query", basic(&["ReadAsset", "asset1"])).await,
        &ASSET1.replace("Tomoko", "Bob"),
    );
}
