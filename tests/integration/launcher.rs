//! The launcher: packages installed once, started on demand by the runtime of their type,
//! relaunched when they stopped.

use std::sync::Arc;
use std::time::Duration;

use cchost::launcher::{Backoff, ChaincodeRuntime, LaunchError, Launcher};
use cchost::package::{PackageStore, build_ccaas_package, build_wasm_package};
use cchost::runtime::external::CcaasRuntime;
use cchost::runtime::wasm::{WasmConfig, WasmRuntime};
use cchost::support::SupportConfig;

use crate::host::TestHost;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_installs_starts_on_demand_and_relaunches_a_wasm_package() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let runtime = WasmRuntime::new(WasmConfig {
        cache_dir: Some(data.path().join("wasm-cache")),
        ..WasmConfig::default()
    })
    .unwrap();
    let runtimes: Vec<Arc<dyn ChaincodeRuntime>> = vec![Arc::new(runtime)];
    let launcher = Launcher::new(
        host.support.clone(),
        PackageStore::open(data.path().join("chaincodes")).unwrap(),
        runtimes,
        Duration::from_secs(10),
    );
    let wasm = std::fs::read(env!("GUEST_ASSET_WASM")).unwrap();
    let package = build_wasm_package("asset_1.0", "asset", &wasm).unwrap();
    let id = launcher.install(&package).unwrap();
    assert_eq!(launcher.install(&package).unwrap(), id, "installing twice");
    assert_eq!(launcher.installed().unwrap(), vec![id.clone()]);
    host.support.define("asset", id.clone());

    assert!(
        !host.support.is_ready(&id),
        "nothing runs before the first launch"
    );
    launcher.launch(&id).await.unwrap();
    assert!(host.support.is_ready(&id));
    launcher.launch(&id).await.unwrap();
    let (_, result) = host.invoke("asset", &["asset:put", "k", "v"]).await;
    assert_eq!(result.unwrap().response.payload, b"ok");

    // Stopped, it deregisters; the next launch starts it again.
    launcher.stop(&id).await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while host.support.is_ready(&id) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    launcher.launch(&id).await.unwrap();
    let (_, result) = host.invoke("asset", &["asset:get", "missing"]).await;
    assert_eq!(result.unwrap().response.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_refuses_types_no_runtime_starts_and_packages_not_installed() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let runtimes: Vec<Arc<dyn ChaincodeRuntime>> =
        vec![Arc::new(WasmRuntime::new(WasmConfig::default()).unwrap())];
    let launcher = Launcher::new(
        host.support.clone(),
        PackageStore::open(data.path()).unwrap(),
        runtimes,
        Duration::from_secs(10),
    );
    // A Go package, and only the wasm runtime configured.
    let golang = golang_package();
    let error = launcher.install(&golang).unwrap_err();
    assert!(matches!(error, LaunchError::UnknownType(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "no runtime starts chaincode of type \"golang\""
    );
    let missing = cchost::ids::PackageId::new("missing_1.0:00");
    assert_eq!(
        launcher.launch(&missing).await.unwrap_err().to_string(),
        "package missing_1.0:00 is not installed"
    );
}

/// A `.tar.gz` of `files`.
fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gzip);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, *bytes).unwrap();
    }
    let mut gzip = tar.into_inner().unwrap();
    gzip.flush().unwrap();
    gzip.finish().unwrap()
}

/// A package with Fabric's layout for Go chaincode (its code is not looked at).
fn golang_package() -> Vec<u8> {
    let code = tar_gz(&[("src/main.go", b"package main")]);
    tar_gz(&[
        (
            "metadata.json",
            br#"{"path":"example.com/cc","type":"golang","label":"gocc_1.0"}"#,
        ),
        ("code.tar.gz", &code),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_package_shipping_assets_is_refused_until_assets_are_supported() {
    let wasm = std::fs::read(env!("GUEST_ASSET_WASM")).unwrap();
    let code = tar_gz(&[("asset.wasm", &wasm), ("assets/rates.json", b"{}")]);
    let package = tar_gz(&[
        (
            "metadata.json",
            br#"{"path":"asset.wasm","type":"wasm","label":"asset_1.0"}"#,
        ),
        ("code.tar.gz", &code),
    ]);
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let package = cchost::package::ChaincodePackage::parse(&package).unwrap();
    assert_eq!(
        runtime.install(&package).unwrap_err().to_string(),
        "the chaincode module is refused: the package ships \"assets/rates.json\" besides the \
         module \"asset.wasm\": read-only assets are not supported yet; embed them in the \
         module (e.g. `include_bytes!`)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_launches_of_one_package_start_it_once() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let launcher = Arc::new(Launcher::new(
        host.support.clone(),
        PackageStore::open(data.path()).unwrap(),
        vec![Arc::new(WasmRuntime::new(WasmConfig::default()).unwrap())],
        Duration::from_secs(10),
    ));
    let wasm = std::fs::read(env!("GUEST_ASSET_WASM")).unwrap();
    let id = launcher
        .install(&build_wasm_package("asset_1.0", "asset", &wasm).unwrap())
        .unwrap();
    let launches: Vec<_> = (0..8)
        .map(|_| {
            let (launcher, id) = (Arc::clone(&launcher), id.clone());
            tokio::spawn(async move { launcher.launch(&id).await })
        })
        .collect();
    for launch in launches {
        launch.await.unwrap().unwrap();
    }
    // One launch recorded: the other seven found it READY behind the package's lock.
    let metrics = host.support.metrics().encode();
    assert!(
        metrics.contains(&format!(
            "chaincode_launch_duration_count{{chaincode=\"{id}\",success=\"true\",runtime=\"wasm\"}} 1\n"
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_that_keeps_failing_is_backed_off_then_retried() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    // A service nobody runs: every start fails at once with the dial error.
    let port = crate::ccaas::free_port();
    let package = build_ccaas_package("gone_ccaas", &crate::ccaas::connection(port)).unwrap();
    let backoff = Backoff {
        initial: Duration::from_millis(300),
        max: Duration::from_millis(500),
        stable_after: Duration::from_secs(60),
    };
    let launcher = Launcher::with_backoff(
        host.support.clone(),
        PackageStore::open(data.path()).unwrap(),
        vec![Arc::new(CcaasRuntime)],
        Duration::from_secs(10),
        backoff,
    );
    let id = launcher.install(&package).unwrap();
    let attempt = || async {
        match launcher.launch(&id).await.unwrap_err() {
            LaunchError::CrashLoop {
                failures, retry_in, ..
            } => Err((failures, retry_in)),
            other => Ok(other.to_string()),
        }
    };
    let dial = format!("starting chaincode {id}: ");
    // One failure is retried at once; after the second, starts wait 300 ms.
    assert!(attempt().await.unwrap().starts_with(&dial));
    assert!(attempt().await.unwrap().starts_with(&dial));
    let (failures, retry_in) = attempt().await.unwrap_err();
    assert_eq!(failures, 2);
    assert!(retry_in <= Duration::from_millis(300), "{retry_in:?}");
    let error = launcher.launch(&id).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "chaincode {id} failed 2 times in a row; not starting it again for "
        )),
        "{error}"
    );
    assert!(error.ends_with(" (crash-loop back-off)"), "{error}");
    // After the wait, a real start again (failure 3), then 500 ms (doubled, capped).
    tokio::time::sleep(retry_in + Duration::from_millis(20)).await;
    assert!(attempt().await.unwrap().starts_with(&dial));
    let (failures, retry_in) = attempt().await.unwrap_err();
    assert_eq!(failures, 3);
    assert!(retry_in > Duration::from_millis(300) && retry_in <= Duration::from_millis(500));
    // Refused starts are not launches: three attempts, three failures recorded.
    assert!(host.support.metrics().encode().contains(&format!(
        "chaincode_launch_failures_total{{chaincode=\"{id}\",runtime=\"ccaas\"}} 3\n"
    )));
}
