//! The sandbox's promises checked while a hostile guest runs, not only after it: a benign
//! transaction of another chaincode and the operations endpoints are answered while
//! guests spin on every runtime worker, and a guest writing huge values in a loop is
//! stopped with a fixed error while the host's memory stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cchost::ledger::StateStore;
use cchost::operations::{LogSpec, Operations, StateDbCheck};
use cchost::package::{ChaincodePackage, build_wasm_package};
use cchost::proto::protos::chaincode_message::Type;
use cchost::runtime::wasm::{WasmChaincode, WasmConfig, WasmRuntime};
use cchost::support::SupportConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::host::TestHost;

/// How long a liveness check may take before the test calls it a stall. Far above what an
/// answer takes; it only turns a hang into a failure.
const STALL: Duration = Duration::from_secs(20);

fn guest_package(label: &str) -> ChaincodePackage {
    let wasm = std::fs::read(env!("GUEST_ASSET_WASM")).unwrap();
    ChaincodePackage::parse(&build_wasm_package(label, "guest", &wasm).unwrap()).unwrap()
}

async fn launch(host: &TestHost, runtime: &WasmRuntime, name: &str) -> WasmChaincode {
    let package = guest_package(name);
    let module = runtime.install(&package).unwrap();
    host.support.define(name, package.id().clone());
    host.support.expect_registration(package.id());
    let chaincode = runtime.start(&host.support, package.id(), &module);
    assert!(
        host.support
            .wait_ready(package.id(), Duration::from_secs(10))
            .await
    );
    chaincode
}

/// Serves the operations endpoints of `host` on a loopback port.
async fn operations(host: &TestHost) -> std::net::SocketAddr {
    let store: Arc<dyn StateStore> = host.store.clone();
    let router = cchost::operations::router(Operations {
        metrics: Arc::clone(host.support.metrics()),
        checks: vec![Arc::new(StateDbCheck(store))],
        logspec: Arc::new(LogSpec::new("warn", |_: &str| Ok(()))),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// `GET /healthz`: the status line and body.
async fn healthz(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_spinning_guests_leave_another_chaincodes_transaction_and_healthz_answered_meanwhile() {
    let host = Arc::new(
        TestHost::start(SupportConfig {
            execute_timeout: Duration::from_secs(3),
            ..SupportConfig::default()
        })
        .await,
    );
    // Fuel for tens of seconds of spinning and a wall-clock deadline past the execute
    // timeout: the execute timeout is what must end them.
    let runtime = WasmRuntime::new(WasmConfig {
        fuel_per_tx: 200_000_000_000,
        deadline: Duration::from_secs(60),
        ..WasmConfig::default()
    })
    .unwrap();
    let _spinner = launch(&host, &runtime, "spinner").await;
    let _asset = launch(&host, &runtime, "asset").await;
    let ops = operations(&host).await;

    let before = host.support.requests_received(Type::GetState);
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let host = Arc::clone(&host);
            tokio::spawn(async move { host.invoke("spinner", &["asset:spin"]).await })
        })
        .collect();
    // Each spinner makes one GET_STATE, then loops: both occupy a worker from here on.
    tokio::time::timeout(STALL, async {
        while host.support.requests_received(Type::GetState) < before + 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("both spinners started");

    // Both run as tasks on the runtime's two workers, where the guests spin (not on the
    // test's own thread): they are answered only if the guests give their workers up.
    let benign = tokio::spawn({
        let host = Arc::clone(&host);
        async move { host.invoke("asset", &["asset:get", "k"]).await }
    });
    let (_, benign) = tokio::time::timeout(STALL, benign)
        .await
        .expect("a benign transaction is answered while two guests spin")
        .unwrap();
    assert_eq!(benign.unwrap().response.status, 200);
    let health = tokio::time::timeout(STALL, tokio::spawn(healthz(ops)))
        .await
        .expect("/healthz answers while two guests spin")
        .unwrap();
    assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
    assert!(health.contains(r#""status":"OK""#), "{health}");
    assert!(
        spinners.iter().all(|spinner| !spinner.is_finished()),
        "the spinners were still running when both were answered"
    );

    // The execute timeout bounds the whole execution, not only the wait for an answer.
    for spinner in spinners {
        let (proposal, result) = spinner.await.unwrap();
        assert_eq!(
            result.unwrap_err().to_string(),
            format!(
                "failed to execute transaction {}: error sending: timeout expired while \
                 executing transaction",
                proposal.txid
            )
        );
    }
    let (_, after) = host.invoke("spinner", &["asset:get", "k"]).await;
    assert_eq!(after.unwrap().response.status, 200);
}

/// The process's resident set, bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Set in the child process the memory test runs in.
const MEMORY_CHILD: &str = "CCHOST_TEST_MEMORY_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_writing_16_mib_values_in_a_loop_fails_with_the_fixed_error_and_host_memory_stays_bounded()
 {
    // The resident set is the process's: measured in a process of its own (this test
    // binary, running only this test), so that other tests do not move it.
    if std::env::var_os(MEMORY_CHILD).is_none() {
        let name = "while_hostile::a_guest_writing_16_mib_values_in_a_loop_fails_with_the_fixed_error_and_host_memory_stays_bounded";
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(MEMORY_CHILD, "1")
            .status()
            .unwrap();
        assert!(status.success(), "the test failed in its own process");
        return;
    }
    const LIMIT: usize = 40 * 1024 * 1024;
    let host = TestHost::start(SupportConfig {
        max_rwset_bytes: LIMIT,
        ..SupportConfig::default()
    })
    .await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let _flood = launch(&host, &runtime, "flood").await;

    // Sample the resident set while the guest writes.
    let baseline = rss();
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let (proposal, result) = host.invoke("flood", &["asset:flood"]).await;
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    // Without the bound the loop would store ~120 values (1.9 GiB) before its fuel ran out.
    let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!("the host grew by {} MiB", grown / (1024 * 1024));
    assert!(
        grown < 512 * 1024 * 1024,
        "the host grew by {} MiB while the guest wrote",
        grown / (1024 * 1024)
    );

    // Two 16 MiB writes fit in 40 MiB; the third is refused, with the same text on every
    // peer.
    let response = result.unwrap().response;
    assert_eq!(
        (response.status, response.message.as_str()),
        (
            500,
            format!(
                "PUT_STATE failed: transaction ID: {}: the transaction's read/write set \
                 exceeds its limit of {LIMIT} bytes",
                proposal.txid
            )
            .as_str()
        )
    );
}
