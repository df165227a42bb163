//! The operations endpoints over real HTTP, and Fabric's chaincode metrics moving for wasm
//! chaincode and for the real Node shim (as a service) alike.

use std::sync::Arc;
use std::time::Duration;

use cchost::launcher::Launcher;
use cchost::ledger::StateStore;
use cchost::operations::{LogSpec, Operations, StateDbCheck};
use cchost::package::{
    ChaincodePackage, PackageStore, build_ccaas_package, build_wasm_package, package_id,
};
use cchost::runtime::ccaas::CcaasRuntime;
use cchost::runtime::wasm::{WasmConfig, WasmRuntime};
use cchost::support::SupportConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ccaas::{ServerMode, connection};
use crate::host::TestHost;
use crate::host::service_port;

/// One HTTP/1.1 request; the status code and the body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_for_wasm_and_node_chaincode_and_the_endpoints_answer_like_fabric() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig {
        execute_timeout: Duration::from_secs(1),
        ..SupportConfig::default()
    })
    .await;
    let store: Arc<dyn StateStore> = host.store.clone();
    let filters = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&filters);
    let router = cchost::operations::router(Operations {
        metrics: Arc::clone(host.support.metrics()),
        checks: vec![Arc::new(StateDbCheck(store))],
        logspec: Arc::new(LogSpec::new("warn", move |spec: &str| {
            if spec.contains('!') {
                return Err(format!("invalid log spec {spec:?}"));
            }
            seen.lock().unwrap().push(spec.to_owned());
            Ok(())
        })),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    // One wasm chaincode and one Node chaincode as a service, through one launcher.
    let wasm = build_wasm_package(
        "asset_wasm",
        "asset",
        &std::fs::read(env!("GUEST_ASSET_WASM")).unwrap(),
    )
    .unwrap();
    let wasm_id = package_id("asset_wasm", &wasm);
    let port = service_port();
    let ccaas = build_ccaas_package("asset_node", &connection(port)).unwrap();
    let node_id = package_id("asset_node", &ccaas);
    let _server = ServerMode::start(port, node_id.as_str(), &dir.path().join("node.log"));
    let launcher = Launcher::new(
        host.support.clone(),
        PackageStore::open(dir.path().join("chaincodes")).unwrap(),
        vec![
            Arc::new(WasmRuntime::new(WasmConfig::default()).unwrap()),
            Arc::new(CcaasRuntime),
        ],
        Duration::from_secs(30),
    );
    for (name, package, id) in [("wasm", &wasm, &wasm_id), ("node", &ccaas, &node_id)] {
        assert_eq!(&launcher.install(package).unwrap(), id);
        assert!(ChaincodePackage::parse(package).is_ok());
        host.support.define(name, id.clone());
        launcher.launch(id).await.unwrap();
        for key in ["k1", "k2"] {
            let (proposal, result) = host.invoke(name, &["asset:put", key, "v"]).await;
            host.commit(&result.unwrap(), &proposal);
        }
        let (_, result) = host.invoke(name, &["asset:get", "k1"]).await;
        assert_eq!(result.unwrap().response.payload, b"v");
    }
    // The Node chaincode sleeps past the 1 s execute timeout.
    let (proposal, result) = host.invoke("node", &["asset:sleep", "1500"]).await;
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "failed to execute transaction {}: error sending: timeout expired while executing transaction",
            proposal.txid
        )
    );

    let (status, text) = http(ops, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    for (id, runtime) in [(&wasm_id, "wasm"), (&node_id, "ccaas")] {
        let cc = format!(r#"chaincode="{id}""#);
        assert_eq!(
            metric(
                &text,
                &format!(
                    r#"chaincode_launch_duration_count{{{cc},success="true",runtime="{runtime}"}}"#
                )
            ),
            1.0
        );
        assert_eq!(
            metric(
                &text,
                &format!(
                    r#"chaincode_shim_requests_received_total{{type="PUT_STATE",channel="mychannel",{cc},runtime="{runtime}"}}"#
                )
            ),
            2.0
        );
        assert_eq!(
            metric(
                &text,
                &format!(
                    r#"chaincode_shim_requests_completed_total{{type="GET_STATE",channel="mychannel",{cc},success="true",runtime="{runtime}"}}"#
                )
            ),
            1.0
        );
    }
    assert_eq!(
        metric(
            &text,
            &format!(
                r#"chaincode_execute_timeouts_total{{chaincode="{node_id}",runtime="ccaas"}}"#
            )
        ),
        1.0
    );

    let (status, body) = http(ops, "GET", "/healthz", "").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "OK");
    assert!(health["time"].as_str().unwrap().ends_with('Z'));

    assert_eq!(
        http(ops, "GET", "/logspec", "").await,
        (200, r#"{"spec":"warn"}"#.to_owned())
    );
    assert_eq!(
        http(ops, "PUT", "/logspec", r#"{"spec":"cchost=debug,info"}"#)
            .await
            .0,
        204
    );
    assert_eq!(
        http(ops, "GET", "/logspec", "").await.1,
        r#"{"spec":"cchost=debug,info"}"#
    );
    assert_eq!(*filters.lock().unwrap(), ["cchost=debug,info"]);
    assert_eq!(
        http(ops, "PUT", "/logspec", r#"{"spec":"bad!"}"#).await,
        (400, r#"{"error":"invalid log spec \"bad!\""}"#.to_owned())
    );
    assert_eq!(
        http(ops, "POST", "/logspec", "").await,
        (
            400,
            r#"{"error":"invalid request method: POST"}"#.to_owned()
        )
    );
    let (status, body) = http(ops, "GET", "/version", "").await;
    assert_eq!(status, 200);
    let version: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["Version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_503_with_the_failed_check() {
    struct Down;
    impl cchost::operations::HealthCheck for Down {
        fn component(&self) -> &str {
            "docker"
        }
        fn check(&self) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
            Box::pin(async { Err("cannot reach /var/run/docker.sock".to_owned()) })
        }
    }
    let router = cchost::operations::router(Operations {
        metrics: Arc::new(cchost::metrics::Metrics::new()),
        checks: vec![Arc::new(Down)],
        logspec: Arc::new(LogSpec::new("warn", |_: &str| Ok(()))),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (status, body) = http(ops, "GET", "/healthz", "").await;
    assert_eq!(status, 503);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "Service Unavailable");
    assert_eq!(
        health["failed_checks"],
        serde_json::json!([{"component": "docker", "reason": "cannot reach /var/run/docker.sock"}])
    );
}
