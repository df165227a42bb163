//! Chaincode-as-a-service: the real Node fabric-shim in server mode, started by hand
//! (as an operator runs it), dialed by the launcher at the address in the package's
//! `connection.json`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cchost::launcher::{ChaincodeRuntime, Launcher};
use cchost::package::{PackageStore, build_ccaas_package, package_id};
use cchost::runtime::ccaas::CcaasRuntime;
use cchost::support::SupportConfig;

use crate::host::{TestHost, refusing_port, service_port};

/// `fabric-chaincode-node server` for examples/node-asset, killed on drop.
pub(crate) struct ServerMode(Child);

impl ServerMode {
    pub(crate) fn start(port: u16, package_id: &str, log: &std::path::Path) -> Self {
        let dir =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/node-asset");
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new("node")
            .arg("node_modules/fabric-shim/cli.js")
            .arg("server")
            .current_dir(&dir)
            .env("CORE_CHAINCODE_ADDRESS", format!("127.0.0.1:{port}"))
            .env("CORE_CHAINCODE_ID", package_id)
            .env("CORE_PEER_LOCALMSPID", "Org1MSP")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("cannot run `node`: Node.js 18 or newer is required");
        // Wait until it listens.
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the Node shim did not listen on {port} within 30 s:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for ServerMode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A launcher with the chaincode-as-a-service runtime, its packages under `dir`, and
/// `package` installed.
pub(crate) fn ccaas_launcher(
    host: &TestHost,
    dir: impl Into<std::path::PathBuf>,
    package: &[u8],
    startup_timeout: Duration,
) -> Arc<Launcher> {
    let launcher = Launcher::new(
        host.support.clone(),
        PackageStore::open(dir).unwrap(),
        vec![Arc::new(CcaasRuntime)],
        startup_timeout,
    );
    launcher.install(package).unwrap();
    launcher
}

/// The launch of `id` fails within 30 s (far less than the timeouts the tests set, so
/// only `why` can end it in time); its error.
async fn launch_fails_soon(launcher: &Launcher, id: &cchost::ids::PackageId, why: &str) -> String {
    tokio::time::timeout(Duration::from_secs(30), launcher.launch(id))
        .await
        .expect(why)
        .unwrap_err()
        .to_string()
}

pub(crate) fn connection(port: u16) -> Vec<u8> {
    format!(r#"{{"address":"127.0.0.1:{port}","dial_timeout":"10s","tls_required":false}}"#)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_shim_in_server_mode_runs_transactions_through_chaincode_as_a_service() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig {
        query_batch_size: 2,
        ..SupportConfig::default()
    })
    .await;
    let port = service_port();
    let package = build_ccaas_package("asset_ccaas", &connection(port)).unwrap();
    let id = package_id("asset_ccaas", &package);
    let _server = ServerMode::start(port, id.as_str(), &dir.path().join("chaincode.log"));

    let launcher = ccaas_launcher(
        &host,
        dir.path().join("chaincodes"),
        &package,
        Duration::from_secs(30),
    );
    host.support.define("asset", id.clone());
    launcher.launch(&id).await.unwrap();
    assert!(host.support.is_ready(&id));

    // The same sequence as the process started in dev mode.
    crate::node_shim::asset_sequence(&host).await;

    // Stopping ends the stream: the handler deregisters, and the next launch dials again
    // (the server accepts a new Connect).
    launcher.stop(&id).await;
    assert!(!host.support.is_registered(&id));
    launcher.launch(&id).await.unwrap();
    let (_, result) = host.invoke("asset", &["asset:get", "k2"]).await;
    assert_eq!(result.unwrap().response.payload, b"v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_not_listening_fails_the_launch_at_once_with_the_dial_error() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig::default()).await;
    let (_refusing, port) = refusing_port();
    // Dial and startup timeouts far beyond the test's patience: only a refusal reported
    // at once ends the launch in time.
    let connection = format!(r#"{{"address":"127.0.0.1:{port}","dial_timeout":"600s"}}"#);
    let package = build_ccaas_package("nobody", connection.as_bytes()).unwrap();
    let id = package_id("nobody", &package);
    let launcher = ccaas_launcher(&host, dir.path(), &package, Duration::from_secs(600));
    let error = launch_fails_soon(&launcher, &id, "the refused dial was reported at once").await;
    assert!(
        error.starts_with(&format!(
            "starting chaincode {id}: dialing 127.0.0.1:{port}"
        )),
        "{error}"
    );
}

#[test]
fn a_package_with_tls_settings_missing_or_without_an_address_is_refused_at_install() {
    let runtime = CcaasRuntime;
    let check = |json: &str| {
        let package = build_ccaas_package("svc", json.as_bytes()).unwrap();
        let parsed = cchost::package::ChaincodePackage::parse(&package).unwrap();
        runtime
            .install(&parsed)
            .map(|()| String::new())
            .unwrap_or_else(|e| e.to_string())
    };
    let id_of =
        |json: &str| package_id("svc", &build_ccaas_package("svc", json.as_bytes()).unwrap());
    let no_root = r#"{"address":"127.0.0.1:9","tls_required":true}"#;
    assert_eq!(
        check(no_root),
        format!(
            "starting chaincode {}: connection.json: tls_required needs root_cert, the CA of the server's certificate",
            id_of(no_root)
        )
    );
    let no_key = r#"{"address":"127.0.0.1:9","tls_required":true,"root_cert":"x","client_auth_required":true,"client_cert":"y"}"#;
    assert_eq!(
        check(no_key),
        format!(
            "starting chaincode {}: connection.json: client_auth_required needs tls_required, client_cert and client_key",
            id_of(no_key)
        )
    );
    let complete = r#"{"address":"127.0.0.1:9","tls_required":true,"root_cert":"x","client_auth_required":true,"client_cert":"y","client_key":"z"}"#;
    assert_eq!(check(complete), "");
    let bare = r#"{"address":"localhost"}"#;
    assert_eq!(
        check(bare),
        format!(
            "starting chaincode {}: connection.json: address must be host:port, got \"localhost\"",
            id_of(bare)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_registering_as_another_package_times_out_with_fabrics_message() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig::default()).await;
    let port = service_port();
    let package = build_ccaas_package("asset_ccaas", &connection(port)).unwrap();
    let id = package_id("asset_ccaas", &package);
    // Fabric refuses the registration silently; the launch runs out its startup timeout.
    let _server = ServerMode::start(port, "someone_else:1234", &dir.path().join("chaincode.log"));
    let launcher = ccaas_launcher(
        &host,
        dir.path().join("chaincodes"),
        &package,
        Duration::from_secs(2),
    );
    let error = launcher.launch(&id).await.unwrap_err().to_string();
    assert_eq!(
        error,
        format!("timeout expired while starting chaincode {id} (startup timeout 2s)")
    );
    assert!(host.support.metrics().encode().contains(&format!(
        "chaincode_launch_timeouts_total{{chaincode=\"{id}\",runtime=\"ccaas\"}} 1\n"
    )));
}

/// A chaincode service that never registers: it answers every `Connect` with a stream
/// that ends at once, or never answers it at all.
enum Unregistering {
    HangsUp,
    NeverAnswers,
}

#[tonic::async_trait]
impl cchost::proto::protos::chaincode_server::Chaincode for Unregistering {
    type ConnectStream =
        tokio_stream::Empty<Result<cchost::proto::protos::ChaincodeMessage, tonic::Status>>;

    async fn connect(
        &self,
        _request: tonic::Request<tonic::Streaming<cchost::proto::protos::ChaincodeMessage>>,
    ) -> Result<tonic::Response<Self::ConnectStream>, tonic::Status> {
        match self {
            Self::HangsUp => Ok(tonic::Response::new(tokio_stream::empty())),
            Self::NeverAnswers => std::future::pending().await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_hangs_up_before_registering_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig::default()).await;
    let (listener, port) = listen();
    let _server = serve(listener, Unregistering::HangsUp);
    let package = build_ccaas_package("hangs_up", &connection(port)).unwrap();
    let id = package_id("hangs_up", &package);
    let launcher = ccaas_launcher(&host, dir.path(), &package, Duration::from_secs(600));
    // A 600 s startup timeout: only a hang-up reported at once ends the launch in time.
    let error = launch_fails_soon(&launcher, &id, "the hang-up was reported at once").await;
    assert_eq!(
        error,
        format!(
            "starting chaincode {id}: it ended before registering: 127.0.0.1:{port} closed the stream"
        )
    );
    assert!(host.support.metrics().encode().contains(&format!(
        "chaincode_launch_failures_total{{chaincode=\"{id}\",runtime=\"ccaas\"}} 1\n"
    )));
}

/// A chaincode service that registers as `package_id` once `delay` has passed, answers
/// nothing else, and keeps its side of the stream open even after the peer's side ends.
pub(crate) struct RegistersOnly {
    pub(crate) package_id: String,
    pub(crate) delay: Duration,
}

#[tonic::async_trait]
impl cchost::proto::protos::chaincode_server::Chaincode for RegistersOnly {
    type ConnectStream = tokio_stream::wrappers::ReceiverStream<
        Result<cchost::proto::protos::ChaincodeMessage, tonic::Status>,
    >;

    async fn connect(
        &self,
        request: tonic::Request<tonic::Streaming<cchost::proto::protos::ChaincodeMessage>>,
    ) -> Result<tonic::Response<Self::ConnectStream>, tonic::Status> {
        use cchost::proto::protos::chaincode_message::Type;
        use cchost::proto::protos::{ChaincodeId, ChaincodeMessage};
        use prost::Message;
        let (out, stream) = tokio::sync::mpsc::channel(4);
        let register = ChaincodeMessage {
            r#type: Type::Register.into(),
            payload: ChaincodeId {
                name: self.package_id.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
            ..Default::default()
        };
        let mut inbound = request.into_inner();
        let delay = self.delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = out.send(Ok(register)).await;
            while let Ok(Some(_)) = inbound.message().await {}
            // The peer hung up; this side stays open until the server is dropped.
            std::future::pending::<()>().await;
            drop(out);
        });
        Ok(tonic::Response::new(
            tokio_stream::wrappers::ReceiverStream::new(stream),
        ))
    }
}

/// A loopback listener for a chaincode service, and its port.
pub(crate) fn listen() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A chaincode service served in a task, stopped on drop.
pub(crate) struct Served(tokio::task::JoinHandle<Result<(), tonic::transport::Error>>);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) fn serve<S: cchost::proto::protos::chaincode_server::Chaincode>(
    listener: std::net::TcpListener,
    service: S,
) -> Served {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    Served(tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(cchost::proto::protos::chaincode_server::ChaincodeServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_answers_connect_fails_the_launch_at_its_dial_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig::default()).await;
    let (listener, port) = listen();
    let _server = serve(listener, Unregistering::NeverAnswers);
    let connection = format!(r#"{{"address":"127.0.0.1:{port}","dial_timeout":"1s"}}"#);
    let package = build_ccaas_package("silent", connection.as_bytes()).unwrap();
    let id = package_id("silent", &package);
    let launcher = ccaas_launcher(&host, dir.path(), &package, Duration::from_secs(600));
    // A 600 s startup timeout: only the dial timeout around Connect ends the launch.
    let error = launch_fails_soon(&launcher, &id, "the launch ended at the dial timeout").await;
    assert_eq!(
        error,
        format!("starting chaincode {id}: Connect at 127.0.0.1:{port} did not answer within 1s")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_service_is_deregistered_even_if_it_keeps_its_stream_open() {
    let dir = tempfile::tempdir().unwrap();
    let host = TestHost::start(SupportConfig::default()).await;
    let (listener, port) = listen();
    let package = build_ccaas_package("stubborn", &connection(port)).unwrap();
    let id = package_id("stubborn", &package);
    let _server = serve(
        listener,
        RegistersOnly {
            package_id: id.to_string(),
            delay: Duration::ZERO,
        },
    );
    let launcher = ccaas_launcher(&host, dir.path(), &package, Duration::from_secs(30));
    launcher.launch(&id).await.unwrap();
    assert!(host.support.is_ready(&id));
    launcher.stop(&id).await;
    assert!(!host.support.is_registered(&id));
}
