//! The `cchost` binary itself. (These tests live with the binary because they need
//! `CARGO_BIN_EXE_cchost`; everything else is in the workspace's `tests/` binary.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn version_lists_only_the_grpc_methods_cchost_serves_and_calls() {
    let out = Command::new(env!("CARGO_BIN_EXE_cchost"))
        .arg("version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        format!(
            "cchost {}\n\
             Fabric protocol: fabric-protos v0.3 (a Fabric 3.x peer's chaincode protocol, 2.5 shims included)\n\
             gRPC methods served:\n  \
             /orderer.AtomicBroadcast/Broadcast (stream common.Envelope) -> stream orderer.BroadcastResponse\n  \
             /orderer.AtomicBroadcast/Deliver (stream common.Envelope) -> stream orderer.DeliverResponse\n  \
             /gateway.Gateway/Endorse (gateway.EndorseRequest) -> gateway.EndorseResponse\n  \
             /gateway.Gateway/Submit (gateway.SubmitRequest) -> gateway.SubmitResponse\n  \
             /gateway.Gateway/CommitStatus (gateway.SignedCommitStatusRequest) -> gateway.CommitStatusResponse\n  \
             /gateway.Gateway/Evaluate (gateway.EvaluateRequest) -> gateway.EvaluateResponse\n  \
             /gateway.Gateway/ChaincodeEvents (gateway.SignedChaincodeEventsRequest) -> stream gateway.ChaincodeEventsResponse\n  \
             /protos.ChaincodeSupport/Register (stream protos.ChaincodeMessage) -> stream protos.ChaincodeMessage\n  \
             /protos.Chaincode/Connect (stream protos.ChaincodeMessage) -> stream protos.ChaincodeMessage\n  \
             /protos.Deliver/Deliver (stream common.Envelope) -> stream protos.DeliverResponse\n  \
             /protos.Deliver/DeliverFiltered (stream common.Envelope) -> stream protos.DeliverResponse\n  \
             /protos.Endorser/ProcessProposal (protos.SignedProposal) -> protos.ProposalResponse\n\
             gRPC methods called:\n  \
             /orderer.AtomicBroadcast/Broadcast (stream common.Envelope) -> stream orderer.BroadcastResponse\n  \
             /gateway.Gateway/Endorse (gateway.EndorseRequest) -> gateway.EndorseResponse\n  \
             /gateway.Gateway/Submit (gateway.SubmitRequest) -> gateway.SubmitResponse\n  \
             /gateway.Gateway/CommitStatus (gateway.SignedCommitStatusRequest) -> gateway.CommitStatusResponse\n  \
             /gateway.Gateway/Evaluate (gateway.EvaluateRequest) -> gateway.EvaluateResponse\n  \
             /protos.ChaincodeSupport/Register (stream protos.ChaincodeMessage) -> stream protos.ChaincodeMessage\n  \
             /protos.Chaincode/Connect (stream protos.ChaincodeMessage) -> stream protos.ChaincodeMessage\n  \
             /protos.Deliver/Deliver (stream common.Envelope) -> stream protos.DeliverResponse\n  \
             /protos.Deliver/DeliverFiltered (stream common.Envelope) -> stream protos.DeliverResponse\n  \
             /protos.Endorser/ProcessProposal (protos.SignedProposal) -> protos.ProposalResponse\n\
             HTTP endpoints served:\n  \
             POST /chaincode (JSON-RPC 2.0: deploy, invoke, query; rest.address)\n  \
             GET /healthz, GET /metrics, GET|PUT /logspec, GET /version (operations.listenAddress)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn devnode_runs_invocations_from_standard_input_on_the_node_example() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/node-asset");
    assert!(
        example.join("node_modules/fabric-shim/cli.js").is_file(),
        "fabric-shim is not installed: run scripts/test (or `npm ci --prefix examples/node-asset`)"
    );
    let mut node = Killed(
        Command::new(env!("CARGO_BIN_EXE_cchost"))
            .args([
                "devnode",
                "--listen",
                "127.0.0.1:0",
                "--chaincode",
                "asset=asset_1.0:cli",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(node.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let address = line
        .split("chaincode listener on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no listen address in {line:?}"))
        .to_owned();

    let mut chaincode = Killed(
        Command::new("node")
            .args([
                "node_modules/fabric-shim/cli.js",
                "start",
                "--peer.address",
                &address,
            ])
            .current_dir(&example)
            .env("CORE_CHAINCODE_ID_NAME", "asset_1.0:cli")
            .env("CORE_PEER_TLS_ENABLED", "false")
            .env("CORE_PEER_LOCALMSPID", "Org1MSP")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let mut stdin = node.0.stdin.take().unwrap();
    writeln!(stdin, r#"["asset", "asset:put", "k1", "v1"]"#).unwrap();
    writeln!(stdin, r#"["asset", "asset:get", "k1"]"#).unwrap();
    writeln!(stdin, r#"["nosuch", "f"]"#).unwrap();
    writeln!(stdin, "not json").unwrap();
    drop(stdin);

    let answers: Vec<serde_json::Value> = BufReader::new(node.0.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!(answers[0]["status"], 200);
    assert_eq!(answers[0]["payload"], "ok");
    // Blocks 1 and 2 approve and commit the definition.
    assert_eq!(answers[0]["block"], 3);
    assert_eq!(answers[0]["event"]["name"], "Put");
    assert_eq!(answers[1]["payload"], "v1");
    assert_eq!(
        answers[2]["error"],
        "chaincode nosuch is not defined: add --chaincode nosuch=PACKAGE_ID or --package nosuch=FILE"
    );
    assert!(
        answers[3]["error"].as_str().unwrap().starts_with(
            "expected a JSON array of strings, [\"chaincode\", \"function\", \"arg\", ...]: "
        ),
        "{:?}",
        answers[3]
    );
    assert!(
        node.0.wait().unwrap().success(),
        "devnode exits 0 when standard input ends"
    );
    // Shutdown ends the chaincode's stream, and the Node shim exits 0 on its own.
    assert_eq!(chaincode.0.wait().unwrap().code(), Some(0));
}

/// The test chaincode crate, and the target directory `tests/build.rs` builds it in (so
/// packaging it here reuses that build).
fn guest_crate() -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    (root.join("tests/guests/asset"), root.join("target/guests"))
}

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cchost"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cchost {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn package_install_and_serve_a_rust_chaincode_built_for_wasm() {
    use sha2::{Digest, Sha256};

    let dir = tempfile::tempdir().unwrap();
    let (crate_dir, target_dir) = guest_crate();
    let output = dir.path().join("asset.tar.gz");
    let text = run(&[
        "package",
        crate_dir.to_str().unwrap(),
        "--label",
        "asset_1.0",
        "--output",
        output.to_str().unwrap(),
        "--target-dir",
        target_dir.to_str().unwrap(),
    ]);
    let wasm = std::fs::read(target_dir.join("wasm32-wasip1/release/guest_asset.wasm")).unwrap();
    let package = std::fs::read(&output).unwrap();
    let id = format!("asset_1.0:{}", hex::encode(Sha256::digest(&package)));
    assert_eq!(
        text,
        format!(
            "wasm: {} bytes\npackage: {}\npackage id: {id}\n",
            wasm.len(),
            output.display()
        )
    );
    // The package is Fabric's layout, holding the module unchanged.
    let parsed = cchost::package::ChaincodePackage::parse(&package).unwrap();
    assert_eq!(parsed.metadata().kind, "wasm");
    assert_eq!(parsed.metadata().path, "guest_asset.wasm");
    assert_eq!(parsed.wasm().unwrap(), wasm.as_slice());

    let data = dir.path().join("data");
    let text = run(&[
        "install",
        output.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(text.starts_with(&format!("installed: {id}\n")), "{text}");
    let hash = id.split_once(':').unwrap().1;
    assert!(
        data.join(format!("chaincodes/asset_1.0.{hash}.tar.gz"))
            .is_file()
    );
    let artifacts: Vec<_> = std::fs::read_dir(data.join("wasm-cache"))
        .unwrap()
        .flat_map(|engine| std::fs::read_dir(engine.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(artifacts, vec![format!("{hash}.cwasm")]);

    // The dev node installs the same package (already there) and launches it itself.
    let mut node = Killed(
        Command::new(env!("CARGO_BIN_EXE_cchost"))
            .args(["devnode", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .arg("--package")
            .arg(format!("asset={}", output.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = node.0.stdin.take().unwrap();
    writeln!(stdin, r#"["asset", "asset:put", "k1", "v1"]"#).unwrap();
    writeln!(stdin, r#"["asset", "asset:get", "k1"]"#).unwrap();
    writeln!(stdin, r#"["asset", "asset:get", "nothing"]"#).unwrap();
    drop(stdin);
    let answers: Vec<serde_json::Value> = BufReader::new(node.0.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["status"], 200);
    // Blocks 1 and 2 approve and commit the definition.
    assert_eq!(answers[0]["block"], 3);
    assert_eq!(answers[1]["payload"], "v1");
    assert_eq!(answers[2]["payload"], "");
    assert!(node.0.wait().unwrap().success());
}

#[test]
fn install_refuses_a_module_that_breaks_the_abi_and_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = b"\0asm\x01\0\0\0";
    let package = cchost::package::build_wasm_package("empty", "empty", wasm).unwrap();
    let file = dir.path().join("empty.tar.gz");
    std::fs::write(&file, package).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cchost"))
        .args(["install", file.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: the chaincode module is refused: it has no `cchost_abi_v1` export, so it was \
         not built with cchost-sdk: declare the chaincode with `cchost_sdk::chaincode!`\n"
    );
    assert!(
        !dir.path()
            .join("data/chaincodes")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "nothing was installed"
    );
}

#[test]
fn new_creates_a_crate_that_packages_as_is_and_runs_on_the_dev_node() {
    let dir = tempfile::tempdir().unwrap();
    let cchost = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cchost"))
            .current_dir(dir.path())
            // anyhow prints a backtrace after the message when these are set.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            // The template's dependencies are built once per machine, not per test run.
            .env(
                "CARGO_TARGET_DIR",
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/template"),
            )
            .args(args)
            .output()
            .unwrap()
    };
    let text = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let created = text(cchost(&["new", "demo"]));
    assert!(
        created.starts_with("created demo with contract Demo\n"),
        "{created}"
    );
    let again = cchost(&["new", "demo"]);
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        "Error: demo exists and is not empty"
    );

    // The crate's own native test passes as generated.
    let tested = Command::new(env!("CARGO"))
        .current_dir(dir.path().join("demo"))
        // The test command lints this workspace by compiling it with clippy-driver; the
        // generated crate is built as a user builds it.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/template"),
        )
        .args(["test", "--quiet"])
        .output()
        .unwrap();
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(
        String::from_utf8_lossy(&tested.stdout).contains("test result: ok. 1 passed"),
        "{}",
        String::from_utf8_lossy(&tested.stdout)
    );

    let packaged = text(cchost(&[
        "package",
        "demo",
        "--label",
        "demo_1",
        "--output",
        "demo.tar.gz",
    ]));
    assert!(packaged.contains("\npackage id: demo_1:"), "{packaged}");
    let package = std::fs::read(dir.path().join("demo.tar.gz")).unwrap();
    let parsed = cchost::package::ChaincodePackage::parse(&package).unwrap();
    assert_eq!(parsed.metadata().path, "demo.wasm");
    eprintln!(
        "template chaincode: {} bytes of wasm",
        parsed.wasm().unwrap().len()
    );

    let mut node = Killed(
        Command::new(env!("CARGO_BIN_EXE_cchost"))
            .args(["devnode", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--package")
            .arg(format!("demo={}", dir.path().join("demo.tar.gz").display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdin = node.0.stdin.take().unwrap();
    writeln!(stdin, r#"["demo", "Create", "r1", "hello"]"#).unwrap();
    writeln!(stdin, r#"["demo", "Demo:Read", "r1"]"#).unwrap();
    writeln!(stdin, r#"["demo", "Create", "r1", "again"]"#).unwrap();
    drop(stdin);
    let answers: Vec<serde_json::Value> = BufReader::new(node.0.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["status"], 200, "{answers:?}");
    let record: serde_json::Value =
        serde_json::from_str(answers[1]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(record["id"], "r1");
    assert_eq!(record["value"], "hello");
    assert!(
        record["owner"].as_str().unwrap().starts_with("x509::/"),
        "{record}"
    );
    assert_eq!(answers[2]["status"], 500);
    assert_eq!(answers[2]["message"], "record r1 already exists");
    assert!(node.0.wait().unwrap().success());
}

#[test]
fn devnode_serves_the_operations_endpoints_when_asked() {
    use std::io::Read;

    let mut node = Killed(
        Command::new(env!("CARGO_BIN_EXE_cchost"))
            .args([
                "devnode",
                "--listen",
                "127.0.0.1:0",
                "--operations-listen",
                "127.0.0.1:0",
            ])
            .args(["--chaincode", "asset=asset_1:dev"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Keep draining stderr: a closed pipe would fail the node's later log lines.
    let stderr = BufReader::new(node.0.stderr.take().unwrap());
    let (found, announced) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(address) =
                line.strip_prefix("cchost devnode: operations endpoints on http://")
            {
                let _ = found.send(address.to_owned());
            }
        }
    });
    let address = announced
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("devnode announces the operations address");
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let health = get("/healthz");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(health.contains(r#"{"status":"OK","time":""#), "{health}");
    let metrics = get("/metrics");
    // Before any launch only the version gauge has a sample (families without one are
    // not exposed).
    assert!(
        metrics.ends_with(&format!(
            "\r\n\r\n# HELP fabric_version The active version of cchost.\n# TYPE fabric_version gauge\nfabric_version{{version=\"{}\"}} 1\n# EOF\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );
    drop(node.0.stdin.take());
    assert!(node.0.wait().unwrap().success());
}

#[test]
fn devnode_runs_a_node_package_in_docker_over_tls_and_removes_the_container_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/node-asset");
    let output = dir.path().join("node-asset.tar.gz");
    let text = run(&[
        "package",
        example.to_str().unwrap(),
        "--lang",
        "node",
        "--label",
        "asset_cli",
        "--output",
        output.to_str().unwrap(),
    ]);
    let id = text
        .lines()
        .find_map(|line| line.strip_prefix("package id: "))
        .unwrap()
        .to_owned();
    assert!(text.starts_with("node: "), "{text}");
    let parsed =
        cchost::package::ChaincodePackage::parse(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(parsed.metadata().kind, "node");
    assert!(
        parsed
            .code_file("src/node_modules/fabric-shim/cli.js")
            .is_some()
    );

    let container = cchost::runtime::docker::container_name(&cchost::ids::PackageId::new(&id));
    // Cold: the image is built by this run (its progress goes to stderr).
    let _ = Command::new("docker")
        .args(["image", "rm", "-f", &container])
        .output();
    let mut node = Killed(
        Command::new(env!("CARGO_BIN_EXE_cchost"))
            .args(["devnode", "--listen", "127.0.0.1:0", "--tls", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--node-image", "cchost/nodeenv:local", "--package"])
            .arg(format!("asset={}", output.display()))
            .env_remove("CCHOST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = node.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    });
    let mut stdin = node.0.stdin.take().unwrap();
    writeln!(stdin, r#"["asset", "asset:put", "k1", "v1"]"#).unwrap();
    writeln!(stdin, r#"["asset", "asset:get", "k1"]"#).unwrap();
    writeln!(stdin, r#"["asset", "asset:whoami"]"#).unwrap();
    drop(stdin);
    let answers: Vec<serde_json::Value> = BufReader::new(node.0.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    assert!(node.0.wait().unwrap().success());
    let log = log.join().unwrap().join("\n");
    assert_eq!(answers.len(), 3, "{answers:?}\n{log}");
    assert_eq!(answers[0]["status"], 200, "{log}");
    assert_eq!(answers[0]["payload"], "ok");
    assert_eq!(answers[1]["payload"], "v1");
    let who: serde_json::Value =
        serde_json::from_str(answers[2]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(who["mspid"], "Org1MSP");
    // Progress of the image build is shown; the listener said it runs mutual TLS.
    assert!(log.contains("building the chaincode image"), "{log}");
    assert!(log.contains("(dev mode, mutual TLS)"), "{log}");
    // The container went with the node.
    let inspect = Command::new("docker")
        .args(["container", "inspect", &container])
        .output()
        .unwrap();
    assert!(
        !inspect.status.success(),
        "container {container} left behind"
    );
}
