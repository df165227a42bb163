//! Figures of the wasm runtime, printed (never asserted): launch to READY from a cached
//! artifact, latency and throughput of 1 get + 1 put transactions, the cost of one
//! host call across the bridge, and asset-transfer's transactions through the contract API.
//!
//! ```sh
//! cargo bench -p cchost-tests --bench wasm          # release profile
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cchost::ids::PackageId;
use cchost::ledger::{RedbStore, StateStore};
use cchost::package::{ChaincodePackage, build_wasm_package};
use cchost::proposal::{DevIdentity, ProposalBuilder};
use cchost::runtime::wasm::{WasmConfig, WasmRuntime};
use cchost::support::{ChaincodeSupport, SupportConfig};

const CHANNEL: &str = "mychannel";
const LAUNCHES: usize = 200;
const SEQUENTIAL: usize = 2_000;
const CONCURRENT: usize = 4_000;
const IN_FLIGHT: usize = 16;
const CALLS: u32 = 1_000;

struct Bench {
    support: ChaincodeSupport,
    identity: DevIdentity,
}

impl Bench {
    async fn invoke(&self, chaincode: &str, args: &[&str]) -> Vec<u8> {
        let proposal = ProposalBuilder::new(CHANNEL, chaincode)
            .args(args)
            .build(&self.identity)
            .unwrap();
        let result = self
            .support
            .execute(&proposal.signed_proposal)
            .await
            .unwrap();
        assert_eq!(result.response.status, 200, "{:?}", result.response);
        result.response.payload
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let store: Arc<dyn StateStore> = Arc::new(RedbStore::in_memory().unwrap());
    store.create_channel(CHANNEL).unwrap();
    let bench = Arc::new(Bench {
        support: ChaincodeSupport::new(SupportConfig::default(), store).unwrap(),
        identity: DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap(),
    });
    let cache = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(env!("GUEST_ASSET_WASM")).unwrap();
    let package =
        ChaincodePackage::parse(&build_wasm_package("asset", "asset", &wasm).unwrap()).unwrap();
    let config = WasmConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..WasmConfig::default()
    };
    println!(
        "wasm runtime figures (release, {} KiB guest, {} worker threads)",
        wasm.len() / 1024,
        2
    );

    let installer = WasmRuntime::new(config.clone()).unwrap();
    let started = Instant::now();
    installer.install(&package).unwrap();
    println!(
        "install (validate + compile + write artifact): {:?}",
        started.elapsed()
    );

    // Launch to READY from the cached artifact, in a runtime that never compiled it.
    let runtime = WasmRuntime::new(config).unwrap();
    let mut launches = Vec::with_capacity(LAUNCHES);
    for i in 0..LAUNCHES {
        let id = PackageId::new(format!("launch{i}:{}", hex::encode(package.hash())));
        let started = Instant::now();
        let module = runtime.install(&package).unwrap();
        bench.support.expect_registration(&id);
        let running = runtime.start(&bench.support, &id, &module);
        assert!(bench.support.wait_ready(&id, Duration::from_secs(10)).await);
        launches.push(started.elapsed());
        running.stop();
    }
    assert_eq!(runtime.compilations(), 0, "launches came from the cache");
    println!(
        "launch to READY from the cached artifact: p50 {:?}, p90 {:?} ({LAUNCHES} launches)",
        percentile(&mut launches, 0.5),
        percentile(&mut launches, 0.9)
    );

    let id = package.id().clone();
    bench.support.define("asset", id.clone());
    bench.support.expect_registration(&id);
    let module = runtime.install(&package).unwrap();
    let _running = runtime.start(&bench.support, &id, &module);
    assert!(bench.support.wait_ready(&id, Duration::from_secs(10)).await);

    // 1 get + 1 put (asset:touch), one at a time.
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    let started = Instant::now();
    for i in 0..SEQUENTIAL {
        let key = format!("k{}", i % 100);
        let t = Instant::now();
        bench.invoke("asset", &["asset:touch", &key]).await;
        latencies.push(t.elapsed());
    }
    let rate = SEQUENTIAL as f64 / started.elapsed().as_secs_f64();
    println!(
        "1 get + 1 put, sequential: p50 {:?}, p99 {:?}, {rate:.0} tx/s",
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99)
    );

    // The same with IN_FLIGHT transactions at once.
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(CONCURRENT);
    for i in 0..CONCURRENT {
        let slot = Arc::clone(&slots).acquire_owned().await.unwrap();
        let bench = Arc::clone(&bench);
        tasks.push(tokio::spawn(async move {
            bench
                .invoke("asset", &["asset:touch", &format!("k{}", i % 100)])
                .await;
            drop(slot);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = CONCURRENT as f64 / started.elapsed().as_secs_f64();
    println!("1 get + 1 put, {IN_FLIGHT} in flight: {rate:.0} tx/s");

    // Per host call: a transaction of CALLS calls minus one of none, divided by CALLS.
    let calls = CALLS.to_string();
    let reads = median_latency(&bench, &["asset:reads", "k1", &calls]).await;
    let no_reads = median_latency(&bench, &["asset:reads", "k1", "0"]).await;
    let contexts = median_latency(&bench, &["asset:contexts", &calls]).await;
    let no_contexts = median_latency(&bench, &["asset:contexts", "0"]).await;
    println!(
        "one get_state through the bridge (guest -> host -> handler -> host -> guest): {:?}",
        reads.saturating_sub(no_reads) / CALLS
    );
    println!(
        "one host call that stays in the host function (tx_context + result_read): {:?}",
        contexts.saturating_sub(no_contexts) / CALLS
    );
    contract_api().await;
}

/// The contract API's cost: examples/asset-transfer (routing, serde arguments and
/// results, sorted-key JSON) through `WasmHarness`; a submit also commits its block.
async fn contract_api() {
    let wasm = std::fs::read(env!("ASSET_TRANSFER_WASM")).unwrap();
    let harness = cchost::testing::WasmHarness::load(&wasm).await.unwrap();
    harness.submit(&["InitLedger"]).await.unwrap();
    let mut reads = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        let outcome = harness.evaluate(&["ReadAsset", "asset3"]).await.unwrap();
        reads.push(t.elapsed());
        assert_eq!(outcome.response.status, 200);
    }
    let mut creates = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let id = format!("bench{i}");
        let t = Instant::now();
        let outcome = harness
            .submit(&["CreateAsset", &id, "blue", "5", "Ann", "300"])
            .await
            .unwrap();
        creates.push(t.elapsed());
        assert_eq!(outcome.response.status, 200, "{}", outcome.response.message);
    }
    println!(
        "asset-transfer ({} KiB wasm): ReadAsset p50 {:?}, p99 {:?}; CreateAsset (submit + commit) p50 {:?}, p99 {:?}",
        wasm.len() / 1024,
        percentile(&mut reads, 0.5),
        percentile(&mut reads, 0.99),
        percentile(&mut creates, 0.5),
        percentile(&mut creates, 0.99)
    );
}

/// The median latency of 20 runs of one transaction of the asset chaincode.
async fn median_latency(bench: &Bench, args: &[&str]) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        bench.invoke("asset", args).await;
        samples.push(t.elapsed());
    }
    percentile(&mut samples, 0.5)
}
