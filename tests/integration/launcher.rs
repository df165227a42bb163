//! The launcher: packages installed once, started on demand by the runtime of their type,
//! relaunched when they stopped.

use std::sync::Arc;
use std::time::Duration;

use cchost::ledger::RedbStore;
use cchost::package::ChaincodePackage;
use cchost::proto::protos::ChaincodeMessage;
use cchost::proto::protos::chaincode_server;
use cchost::support::ChaincodeSupport;
use futures_util::future::BoxFuture;
use tokio_stream::wrappers::ReceiverStream;

use cchost::launcher::{Backoff, ChaincodeRuntime, LaunchError, Launcher, RunningChaincode};
use cchost::package::{PackageStore, build_ccaas_package, build_wasm_package, package_id};
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
    launcher.launch(&id).await.unwrap();
    let (_, result) = host.invoke("asset", &["asset:get", "missing"]).await;
    assert_eq!(result.unwrap().response.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_refuses_types_no_runtime_starts_and_packages_not_installed() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let launcher = wasm_launcher(&host, data.path());
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

/// A launcher with the wasm runtime over packages in `dir`.
fn wasm_launcher(host: &TestHost, dir: &std::path::Path) -> Arc<Launcher> {
    Launcher::new(
        host.support.clone(),
        PackageStore::open(dir).unwrap(),
        vec![Arc::new(WasmRuntime::new(WasmConfig::default()).unwrap())],
        Duration::from_secs(10),
    )
}

/// A `.tar.gz` of `files`.
/// Installs the asset guest as package `<name>_1.0`; its id.
fn install_guest(launcher: &Launcher, name: &str) -> cchost::ids::PackageId {
    let wasm = std::fs::read(env!("GUEST_ASSET_WASM")).unwrap();
    let package = build_wasm_package(&format!("{name}_1.0"), name, &wasm).unwrap();
    launcher.install(&package).unwrap()
}

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
    let launcher = wasm_launcher(&host, data.path());
    let id = install_guest(&launcher, "asset");
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

/// A runtime whose every start fails at once: the launcher's failure handling without a
/// real dial or container in the way (and so under a paused clock).
#[derive(Debug)]
struct FailingRuntime;

impl ChaincodeRuntime for FailingRuntime {
    fn name(&self) -> &'static str {
        "failing"
    }

    fn handles(&self, _kind: &str) -> bool {
        true
    }

    fn install(&self, _package: &ChaincodePackage) -> Result<(), LaunchError> {
        Ok(())
    }

    fn start<'a>(
        &'a self,
        package: &'a ChaincodePackage,
        _support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>> {
        Box::pin(async move {
            Err(LaunchError::Start {
                package_id: package.id().clone(),
                reason: "it cannot start".to_owned(),
            })
        })
    }
}

/// A runtime whose start never ends (a build at launch that hangs).
#[derive(Debug)]
struct HangingRuntime;

impl ChaincodeRuntime for HangingRuntime {
    fn name(&self) -> &'static str {
        "hanging"
    }

    fn handles(&self, _kind: &str) -> bool {
        true
    }

    fn install(&self, _package: &ChaincodePackage) -> Result<(), LaunchError> {
        Ok(())
    }

    fn start<'a>(
        &'a self,
        _package: &'a ChaincodePackage,
        _support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>> {
        Box::pin(std::future::pending())
    }
}

fn support() -> ChaincodeSupport {
    let store = Arc::new(RedbStore::in_memory().unwrap());
    ChaincodeSupport::new(SupportConfig::default(), store).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_chaincode_that_keeps_failing_is_backed_off_then_retried() {
    let data = tempfile::tempdir().unwrap();
    let backoff = Backoff {
        initial: Duration::from_millis(300),
        max: Duration::from_millis(500),
        stable_after: Duration::from_secs(60),
    };
    let support = support();
    let launcher = Launcher::with_backoff(
        support.clone(),
        PackageStore::open(data.path()).unwrap(),
        vec![Arc::new(FailingRuntime)],
        Duration::from_secs(10),
        backoff,
    );
    let package = build_ccaas_package("broken", &crate::ccaas::connection(1)).unwrap();
    let id = launcher.install(&package).unwrap();
    let launch = || async { launcher.launch(&id).await.unwrap_err().to_string() };
    let failed = format!("starting chaincode {id}: it cannot start");
    let backed_off = |failures, wait| {
        format!(
            "chaincode {id} failed {failures} times in a row; not starting it again for \
             {wait} (crash-loop back-off)"
        )
    };
    // One failure is retried at once; after the second, starts wait 300 ms.
    assert_eq!(launch().await, failed);
    assert_eq!(launch().await, failed);
    assert_eq!(launch().await, backed_off(2, "300ms"));
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(launch().await, backed_off(2, "200ms"));
    // After the wait, a real start again (failure 3), then 500 ms (doubled, capped).
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(launch().await, failed);
    assert_eq!(launch().await, backed_off(3, "500ms"));
    // Refused starts are not launches: three attempts, three failures recorded.
    assert!(support.metrics().encode().contains(&format!(
        "chaincode_launch_failures_total{{chaincode=\"{id}\",runtime=\"failing\"}} 3\n"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_launch_withdraws_its_expected_registration() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let (_refusing, port) = crate::host::refusing_port();
    let package = build_ccaas_package("gone_ccaas", &crate::ccaas::connection(port)).unwrap();
    let id = package_id("gone_ccaas", &package);
    let launcher =
        crate::ccaas::ccaas_launcher(&host, data.path(), &package, Duration::from_secs(10));
    let error = launcher.launch(&id).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "starting chaincode {id}: dialing 127.0.0.1:{port}: "
        )),
        "{error}"
    );
    // Outside dev mode nothing may now register under its id.
    assert!(!host.support.awaiting_registration(&id));
}

/// A chaincode-as-a-service endpoint that accepts the peer's stream and never registers;
/// it reports when the peer closes its side.
#[derive(Clone)]
struct SilentService {
    closed: Arc<tokio::sync::Notify>,
}

#[tonic::async_trait]
impl chaincode_server::Chaincode for SilentService {
    type ConnectStream = ReceiverStream<Result<ChaincodeMessage, tonic::Status>>;

    async fn connect(
        &self,
        request: tonic::Request<tonic::Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<Self::ConnectStream>, tonic::Status> {
        let (out, stream) = tokio::sync::mpsc::channel(1);
        let mut inbound = request.into_inner();
        let closed = Arc::clone(&self.closed);
        tokio::spawn(async move {
            while let Ok(Some(_)) = inbound.message().await {}
            closed.notify_one();
            drop(out);
        });
        Ok(tonic::Response::new(ReceiverStream::new(stream)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_launch_stops_what_it_started_and_withdraws_its_expected_registration() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let service = SilentService {
        closed: Arc::new(tokio::sync::Notify::new()),
    };
    let closed = Arc::clone(&service.closed);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(chaincode_server::ChaincodeServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let package = build_ccaas_package("silent_ccaas", &crate::ccaas::connection(port)).unwrap();
    let id = package_id("silent_ccaas", &package);
    let launcher =
        crate::ccaas::ccaas_launcher(&host, data.path(), &package, Duration::from_secs(60));
    // The launch waits for a REGISTER that never comes; its caller gives up.
    let mut launch = Box::pin(launcher.launch(&id));
    let wait_started = async {
        while !host.support.awaiting_registration(&id) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        result = &mut launch => panic!("the launch ended: {result:?}"),
        () = wait_started => {}
    }
    let connected = tokio::time::timeout(Duration::from_millis(300), &mut launch).await;
    assert!(connected.is_err(), "still waiting for READY");
    drop(launch);
    assert!(!host.support.awaiting_registration(&id));
    tokio::time::timeout(Duration::from_secs(10), closed.notified())
        .await
        .expect("the dropped launch closed its stream to the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_returns_once_the_chaincode_is_gone_and_a_launch_right_after_starts_it_afresh() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let launcher = wasm_launcher(&host, data.path());
    let id = install_guest(&launcher, "asset");
    host.support.define("asset", id.clone());
    for _ in 0..3 {
        launcher.launch(&id).await.unwrap();
        let (_, result) = host.invoke("asset", &["asset:get", "k"]).await;
        assert_eq!(result.unwrap().response.status, 200);
        launcher.stop(&id).await;
        assert!(
            !host.support.is_registered(&id),
            "stop returned before it was gone"
        );
    }
    let launches = host.support.metrics().encode();
    assert!(
        launches.contains(&format!(
            "chaincode_launch_duration_count{{chaincode=\"{id}\",success=\"true\",runtime=\"wasm\"}} 3\n"
        )),
        "{launches}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_invoked_while_not_running_is_launched_on_demand_also_by_another_chaincode() {
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let launcher = wasm_launcher(&host, data.path());
    for name in ["asset", "other"] {
        host.support.define(name, install_guest(&launcher, name));
    }
    // Neither runs: the client's call starts `asset`, whose call starts `other`.
    let (_, result) = host
        .invoke("asset", &["asset:invoke", "other", "asset:get", "k"])
        .await;
    let response = result.unwrap().response;
    assert_eq!(
        String::from_utf8(response.payload).unwrap(),
        r#"{"status":200,"message":"","payload":""}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_on_demand_goes_on_when_the_transaction_that_started_it_is_dropped() {
    use crate::ccaas::{RegistersOnly, listen, serve};
    let host = TestHost::start(SupportConfig::default()).await;
    let data = tempfile::tempdir().unwrap();
    let (listener, port) = listen();
    let package = build_ccaas_package("slow_ccaas", &crate::ccaas::connection(port)).unwrap();
    let id = package_id("slow_ccaas", &package);
    // Held for the test: the host launches on demand through it.
    let _launcher =
        crate::ccaas::ccaas_launcher(&host, data.path(), &package, Duration::from_secs(60));
    host.support.define("slow", id.clone());
    let _server = serve(
        listener,
        RegistersOnly {
            package_id: id.to_string(),
            delay: Duration::from_millis(500),
        },
    );
    // The transaction launches `slow`, which registers only after 500 ms; the client
    // gives up first.
    let proposal = host.proposal("slow", &["f"]);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        host.support.execute(&proposal.signed_proposal),
    )
    .await;
    assert!(gave_up.is_err(), "the transaction was still waiting");
    assert!(
        host.support.wait_ready(&id, Duration::from_secs(10)).await,
        "the launch finished without its caller"
    );
    // The launch records its duration right after READY, in its own task: wait for it.
    let recorded = format!(
        "chaincode_launch_duration_count{{chaincode=\"{id}\",success=\"true\",runtime=\"ccaas\"}} 1\n"
    );
    let mut launches = host.support.metrics().encode();
    for _ in 0..200 {
        if launches.contains(&recorded) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        launches = host.support.metrics().encode();
    }
    assert!(launches.contains(&recorded), "{launches}");
}

#[tokio::test(start_paused = true)]
async fn the_startup_timeout_also_bounds_a_start_that_never_ends() {
    let data = tempfile::tempdir().unwrap();
    let support = support();
    let launcher = Launcher::new(
        support.clone(),
        PackageStore::open(data.path()).unwrap(),
        vec![Arc::new(HangingRuntime)],
        Duration::from_secs(5),
    );
    let package = build_ccaas_package("hangs", &crate::ccaas::connection(1)).unwrap();
    let id = launcher.install(&package).unwrap();
    let started = tokio::time::Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(60), launcher.launch(&id))
        .await
        .expect("the launch outlived its startup timeout")
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!("timeout expired while starting chaincode {id} (startup timeout 5s)")
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert!(!support.awaiting_registration(&id));
    assert!(support.metrics().encode().contains(&format!(
        "chaincode_launch_timeouts_total{{chaincode=\"{id}\",runtime=\"hanging\"}} 1\n"
    )));
}
