//! A newcomer's path, as typed: `cchost node start`, `cchost chaincode deploy
//! examples/asset-transfer -n basic`, invoke with `--waitForEvent`, query, `cchost channel
//! getinfo`, `cchost events`, SIGTERM (exit 0), a restart, and the same answers after it.
//! The node is a real process on a temporary data directory (ports chosen by the
//! system); the CLI finds it through its client profile.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A started node process, killed if the test ends early.
struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cchost(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cchost"));
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("HOME", data_dir.join("home"))
        .env("CCHOST_DATA_DIR", data_dir)
        // The example's wasm build goes where the test build put the guests (the
        // workspace's target directory is locked by the running `cargo test`).
        .env("CARGO_TARGET_DIR", root().join("target/guests"))
        .current_dir(root());
    command
}

fn start(data_dir: &Path) -> NodeProcess {
    start_with(data_dir, &[])
}

/// `cchost node start ARGS`, once it has written its client profile.
fn start_with(data_dir: &Path, args: &[&str]) -> NodeProcess {
    let _ = std::fs::remove_file(data_dir.join("client.json"));
    let log = std::fs::File::create(data_dir.join("node.log")).unwrap();
    let node = NodeProcess(
        cchost(data_dir)
            .args(["node", "start"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    for _ in 0..300 {
        if data_dir.join("client.json").exists() {
            return node;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(node);
    panic!(
        "the node did not write its client profile: {}",
        std::fs::read_to_string(data_dir.join("node.log")).unwrap()
    );
}

/// A node's data directory under `dir` whose core.toml picks free ports, switches off
/// the operations and REST endpoints, cuts blocks after 50 ms and, with `tls`, serves
/// the client services over TLS.
fn node_data(dir: &Path, tls: bool) -> PathBuf {
    let data = dir.join("node");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("core.toml"),
        format!(
            "[peer]\nlistenAddress = \"127.0.0.1:0\"\nchaincodeListenAddress = \"127.0.0.1:0\"\n\
             [peer.tls]\nenabled = {tls}\n\
             [operations]\nlistenAddress = \"\"\n[rest]\nenabled = false\n[orderer]\nBatchTimeout = \"50ms\"\n"
        ),
    )
    .unwrap();
    data
}

fn run(data_dir: &Path, args: &[&str]) -> Output {
    cchost(data_dir).args(args).output().unwrap()
}

fn ok(data_dir: &Path, args: &[&str]) -> (String, String) {
    let out = run(data_dir, args);
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "cchost {args:?}: {stderr}");
    (stdout, stderr)
}

fn stop(mut node: NodeProcess) -> std::process::ExitStatus {
    let pid = rustix::process::Pid::from_raw(i32::try_from(node.0.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    for _ in 0..600 {
        if let Some(status) = node.0.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the node did not stop within 30 s of SIGTERM");
}

const ASSET1: &str = r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5,"docType":"asset"}"#;

#[test]
fn a_newcomers_path_works_as_typed_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("core.toml"),
        "[peer]\nlistenAddress = \"127.0.0.1:0\"\nchaincodeListenAddress = \"127.0.0.1:0\"\n\
         [operations]\nlistenAddress = \"\"\n[rest]\nenabled = false\n[orderer]\nBatchTimeout = \"100ms\"\n",
    )
    .unwrap();
    let node = start(&data);
    // The user's profile points at it too.
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("home/.cchost/client.json")).unwrap())
            .unwrap();
    assert_eq!(profile["channel"], "mychannel");
    assert!(
        Path::new(profile["user_msp"].as_str().unwrap())
            .join("signcerts/User1@org1.example.com-cert.pem")
            .exists()
    );

    let (deployed, _) = ok(
        &data,
        &[
            "chaincode",
            "deploy",
            "examples/asset-transfer",
            "-n",
            "basic",
        ],
    );
    assert!(
        deployed.starts_with("deployed basic on channel mychannel: package basic_1.0:"),
        "{deployed}"
    );
    assert!(
        deployed.ends_with(", sequence 1, committed in block 2\n"),
        "{deployed}"
    );

    let (_, log) = ok(
        &data,
        &[
            "chaincode",
            "invoke",
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["InitLedger"]}"#,
            "--waitForEvent",
        ],
    );
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains(" INFO [chaincodeCmd] ClientWait -> txid ["),
        "{log}"
    );
    assert!(
        lines[0].ends_with(&format!(
            "] committed with status (VALID) at {}",
            profile["address"].as_str().unwrap()
        )),
        "{log}"
    );
    assert!(
        lines[1].ends_with("INFO [chaincodeCmd] chaincodeInvokeOrQuery -> Chaincode invoke successful. result: status:200"),
        "{log}"
    );

    let query = [
        "chaincode",
        "query",
        "-C",
        "mychannel",
        "-n",
        "basic",
        "-c",
        r#"{"Args":["ReadAsset","asset1"]}"#,
    ];
    assert_eq!(ok(&data, &query).0, format!("{ASSET1}\n"));
    let (info, _) = ok(&data, &["channel", "getinfo", "-C", "mychannel"]);
    assert!(
        info.starts_with(r#"Blockchain info: {"currentBlockHash":""#),
        "{info}"
    );
    assert!(info.contains(r#""height":4,"#), "{info}");
    let (events, _) = ok(&data, &["events", "--start", "oldest", "--stop", "3"]);
    let blocks: Vec<u64> = events
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["block"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(blocks, [0, 1, 2, 3]);
    let (committed, _) = ok(
        &data,
        &[
            "chaincode",
            "querycommitted",
            "-C",
            "mychannel",
            "-n",
            "basic",
        ],
    );
    assert_eq!(
        committed,
        "Committed chaincode definition for chaincode 'basic' on channel 'mychannel':\n\
         Version: 1.0, Sequence: 1, Endorsement Plugin: escc, Validation Plugin: vscc, Approvals: [Org1MSP: true]\n"
    );

    let package = deployed
        .split("package ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    assert_eq!(
        ok(&data, &["chaincode", "queryapproved", "-n", "basic"]).0,
        format!(
            "Approved chaincode definition for chaincode 'basic' on channel 'mychannel':\n\
             sequence: 1, version: 1.0, init-required: false, package-id: {package}, endorsement plugin: escc, validation plugin: vscc\n"
        )
    );
    assert_eq!(
        ok(
            &data,
            &[
                "chaincode",
                "checkcommitreadiness",
                "-n",
                "basic",
                "-v",
                "2.0",
                "--sequence",
                "2",
                "--inspect"
            ]
        )
        .0,
        "Chaincode definition for chaincode 'basic', version '2.0', sequence '2' on channel 'mychannel' approval status by org:\n\
         Org1MSP: false (mismatch: [EndorsementInfo, ValidationInfo, Collections])\n"
    );

    // Errors as the peer CLI prints them, exit status 1.
    let out = run(
        &data,
        &[
            "chaincode",
            "invoke",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["UpdateAsset","nope","blue","5","Tom","100"]}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "Error: endorsement failure during invoke. response: status:500 message:\"The asset nope does not exist\"\n"
    );
    let out = run(
        &data,
        &[
            "chaincode",
            "query",
            "-n",
            "nope",
            "-c",
            r#"{"Args":["x"]}"#,
        ],
    );
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "Error: endorsement failure during query. response: status:500 message:\"make sure the chaincode nope has been successfully defined on channel mychannel and try again: chaincode nope not found\"\n"
    );

    assert!(stop(node).success());
    let out = run(&data, &query);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("is the node running (cchost node start)?")
    );

    let node = start(&data);
    assert_eq!(ok(&data, &query).0, format!("{ASSET1}\n"));
    let (after, _) = ok(&data, &["channel", "getinfo"]);
    assert_eq!(after, info);
    assert!(stop(node).success());
}

#[test]
fn bench_node_reports_endorse_and_commit_runs_beside_the_ecdsa_rates() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = root().join("target/guests/wasm32-wasip1/release/asset_transfer.wasm");
    let out = dir.path().join("out");
    let (table, _) = ok(
        dir.path(),
        &[
            "bench",
            "node",
            "--transactions",
            "12",
            "--concurrency",
            "1,4",
            "--wasm",
            wasm.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(table.starts_with("ECDSA P-256, one thread: "), "{table}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("node.json")).unwrap()).unwrap();
    assert!(report["sign_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["verify_per_s"].as_f64().unwrap() > 0.0);
    let runs: Vec<(String, u64, u64)> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            assert!(run["tps"].as_f64().unwrap() > 0.0, "{run}");
            (
                run["figure"].as_str().unwrap().to_owned(),
                run["concurrency"].as_u64().unwrap(),
                run["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("endorse".to_owned(), 1, 12),
            ("endorse+commit".to_owned(), 1, 12),
            ("endorse".to_owned(), 4, 12),
            ("endorse+commit".to_owned(), 4, 12),
        ]
    );
}

#[test]
fn wasm_and_node_chaincode_deploy_and_an_upgrade_under_load_keep_state_definitions_and_blocks_across_a_restart()
 {
    let example = root().join("examples/node-asset");
    assert!(
        example.join("node_modules/fabric-shim/cli.js").is_file(),
        "fabric-shim is not installed: run scripts/test (or `npm ci --prefix examples/node-asset`)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("core.toml"),
        "[peer]\nlistenAddress = \"127.0.0.1:0\"\nchaincodeListenAddress = \"127.0.0.1:0\"\n\
         [operations]\nlistenAddress = \"\"\n[rest]\nenabled = false\n[orderer]\nBatchTimeout = \"100ms\"\n",
    )
    .unwrap();
    let node = start_with(&data, &["--node-image", "cchost/nodeenv:local"]);
    ok(
        &data,
        &[
            "chaincode",
            "deploy",
            "examples/asset-transfer",
            "-n",
            "basic",
        ],
    );
    let (deployed, _) = ok(
        &data,
        &[
            "chaincode",
            "deploy",
            "examples/node-asset",
            "-n",
            "nodeasset",
        ],
    );
    assert!(
        deployed.starts_with("deployed nodeasset on channel mychannel: package nodeasset_1.0:"),
        "{deployed}"
    );
    let invoke = |args: &str| {
        ok(
            &data,
            &[
                "chaincode",
                "invoke",
                "-n",
                "nodeasset",
                "-c",
                args,
                "--waitForEvent",
            ],
        );
    };
    invoke(r#"{"Args":["asset:put","k1","v1"]}"#);
    let query_node = [
        "chaincode",
        "query",
        "-n",
        "nodeasset",
        "-c",
        r#"{"Args":["asset:get","k1"]}"#,
    ];
    assert_eq!(ok(&data, &query_node).0, "v1\n");
    ok(
        &data,
        &[
            "chaincode",
            "invoke",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["InitLedger"]}"#,
            "--waitForEvent",
        ],
    );

    // Watch blocks while basic is upgraded under load.
    let events = cchost(&data)
        .args(["events", "--start", "newest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut events = NodeProcess(events);
    let load = {
        let data = data.clone();
        std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            for i in 0..12 {
                let owner = format!("owner{i}");
                let ctor = format!(r#"{{"Args":["TransferAsset","asset1","{owner}"]}}"#);
                let out = run(
                    &data,
                    &[
                        "chaincode",
                        "invoke",
                        "-n",
                        "basic",
                        "-c",
                        &ctor,
                        "--waitForEvent",
                    ],
                );
                outcomes.push((out.status.success(), String::from_utf8(out.stderr).unwrap()));
            }
            outcomes
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (upgraded, _) = ok(
        &data,
        &[
            "chaincode",
            "deploy",
            "examples/asset-transfer",
            "-n",
            "basic",
            "-v",
            "2.0",
        ],
    );
    assert!(
        upgraded.contains(", sequence 2, committed in block "),
        "{upgraded}"
    );
    for (success, stderr) in load.join().unwrap() {
        // A transaction endorsed under sequence 1 and ordered after sequence 2's commit
        // fails by MVCC, as on Fabric; every other one commits.
        assert!(
            success || stderr.contains("transaction invalidated with status (MVCC_READ_CONFLICT)"),
            "{stderr}"
        );
    }
    ok(
        &data,
        &[
            "chaincode",
            "invoke",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["TransferAsset","asset1","Max"]}"#,
            "--waitForEvent",
        ],
    );
    let (committed, _) = ok(&data, &["chaincode", "querycommitted", "-n", "basic"]);
    assert!(
        committed.contains("Version: 2.0, Sequence: 2,"),
        "{committed}"
    );
    let (info, _) = ok(&data, &["channel", "getinfo"]);
    let _ = events.0.kill();
    let mut seen = String::new();
    std::io::Read::read_to_string(events.0.stdout.as_mut().unwrap(), &mut seen).unwrap();
    let watched: Vec<u64> = seen
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["block"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let height: u64 =
        serde_json::from_str::<serde_json::Value>(info.trim_start_matches("Blockchain info: "))
            .unwrap()["height"]
            .as_u64()
            .unwrap();
    // Every block from the one newest at the start to the last, in order, once.
    assert_eq!(watched.last(), Some(&(height - 1)), "{seen}");
    assert!(watched.windows(2).all(|w| w[1] == w[0] + 1), "{seen}");

    assert!(stop(node).success());
    let node = start_with(&data, &["--node-image", "cchost/nodeenv:local"]);
    assert_eq!(ok(&data, &["channel", "getinfo"]).0, info);
    assert_eq!(
        ok(&data, &["chaincode", "querycommitted", "-n", "basic"]).0,
        committed
    );
    assert_eq!(ok(&data, &query_node).0, "v1\n");
    let asset1 = ok(
        &data,
        &[
            "chaincode",
            "query",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["ReadAsset","asset1"]}"#,
        ],
    )
    .0;
    assert!(asset1.contains(r#""Owner":"Max""#), "{asset1}");
    assert!(stop(node).success());
}

/// examples/node-asset as a `node` package whose `package.json` names `module` as its
/// `main` (`basic/index.js`, `events/index.js`): that module's contract is then the
/// default one, serving the sample's unprefixed function names. Written into `dir`.
fn node_sample_package(dir: &Path, module: &str, label: &str) -> PathBuf {
    let example = root().join("examples/node-asset");
    assert!(
        example.join("node_modules/fabric-shim/cli.js").is_file(),
        "fabric-shim is not installed: run scripts/test (or `npm ci --prefix examples/node-asset`)"
    );
    let files: Vec<(String, Vec<u8>)> = cchost::package::source_files(&example)
        .unwrap()
        .into_iter()
        .map(|(path, bytes)| {
            if path == "src/package.json" {
                let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                manifest["main"] = module.into();
                (path, serde_json::to_vec_pretty(&manifest).unwrap())
            } else {
                (path, bytes)
            }
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    let package = cchost::package::build_package(label, "node", "", &refs).unwrap();
    let file = dir.join(format!("{label}.tar.gz"));
    std::fs::write(&file, package).unwrap();
    file
}

/// Runs `node APP` in tests/node with `env`; its JSON lines.
fn npm_app(app: &str, env: &[(&str, &std::ffi::OsStr)]) -> Vec<serde_json::Value> {
    let dir = root().join("tests/node");
    assert!(
        dir.join("node_modules/@hyperledger/fabric-gateway")
            .is_dir(),
        "@hyperledger/fabric-gateway is not installed: run scripts/test (or `npm ci --prefix tests/node`)"
    );
    let mut command = Command::new("node");
    command.arg(app).current_dir(&dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{app}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_npm_fabric_gateway_client_runs_the_asset_transfer_basic_application_flow_over_tls_against_wasm_and_node_chaincode()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = node_data(dir.path(), true);
    let node = start_with(&data, &["--node-image", "cchost/nodeenv:local"]);
    ok(
        &data,
        &[
            "chaincode",
            "deploy",
            "examples/asset-transfer",
            "-n",
            "basic",
        ],
    );
    // fabric-samples' chaincode-javascript logic under the real fabric-shim, in Docker.
    let package = node_sample_package(dir.path(), "basic/index.js", "nodebasic_1.0");
    ok(
        &data,
        &[
            "chaincode",
            "deploy",
            package.to_str().unwrap(),
            "-n",
            "nodebasic",
        ],
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("client.json")).unwrap()).unwrap();
    let org = data.join("organizations/peerOrganizations/org1.example.com");
    let user = org.join("users/User1@org1.example.com/msp");
    let address = profile["address"].as_str().unwrap();
    let tls_ca = org.join("peers/peer0.org1.example.com/tls/ca.crt");
    let (certs, keys) = (user.join("signcerts"), user.join("keystore"));
    // The sample's settings, as environment variables.
    let settings = |chaincode: &'static str| -> Vec<(&str, &std::ffi::OsStr)> {
        vec![
            ("PEER_ENDPOINT", address.as_ref()),
            ("TLS_CERT_PATH", tls_ca.as_os_str()),
            ("PEER_HOST_ALIAS", "peer0.org1.example.com".as_ref()),
            ("CERT_DIRECTORY_PATH", certs.as_os_str()),
            ("KEY_DIRECTORY_PATH", keys.as_os_str()),
            ("MSP_ID", "Org1MSP".as_ref()),
            ("CHANNEL_NAME", "mychannel".as_ref()),
            ("CHAINCODE_NAME", chaincode.as_ref()),
        ]
    };
    for chaincode in ["basic", "nodebasic"] {
        let steps = npm_app("gateway-app.js", &settings(chaincode));
        assert_eq!(steps.len(), 6, "{chaincode}: {steps:?}");
        assert_eq!(
            steps[0],
            serde_json::json!({"step": "InitLedger", "ok": true})
        );
        assert_eq!(
            steps[1],
            serde_json::json!({"step": "GetAllAssets", "ids": ["asset1", "asset2", "asset3", "asset4", "asset5", "asset6"]})
        );
        assert_eq!(
            steps[2],
            serde_json::json!({"step": "CreateAsset", "ok": true})
        );
        assert_eq!(
            (
                &steps[3]["oldOwner"],
                &steps[3]["successful"],
                &steps[3]["code"]
            ),
            (
                &serde_json::json!("Tom"),
                &serde_json::json!(true),
                &serde_json::json!(0)
            ),
            "{chaincode}"
        );
        assert_eq!(steps[4]["asset"]["Owner"], "Saptha", "{chaincode}");
        assert_eq!(steps[4]["asset"]["AppraisedValue"], 1300, "{chaincode}");
        assert_eq!(
            steps[5],
            serde_json::json!({
                "step": "UpdateAsset",
                "error": "EndorseError",
                "code": 10,
                "message": "10 ABORTED: failed to endorse transaction, see attached details for more info",
                "details": [{
                    "address": address,
                    "mspId": "Org1MSP",
                    "message": "chaincode response 500, The asset asset70 does not exist"
                }]
            }),
            "{chaincode}"
        );
    }
    // The load script the Gateway's throughput figures come from (docs/gateway.md).
    for mode in ["evaluate", "submit"] {
        let mut env = settings("basic");
        env.extend([
            ("MODE", mode.as_ref()),
            ("CONCURRENCY", "4".as_ref()),
            ("COUNT", "20".as_ref()),
        ]);
        let report = npm_app("gateway-load.js", &env);
        assert_eq!(
            (
                &report[0]["mode"],
                &report[0]["count"],
                &report[0]["errors"]
            ),
            (
                &serde_json::json!(mode),
                &serde_json::json!(20),
                &serde_json::json!(0)
            ),
            "{report:?}"
        );
    }
    assert!(stop(node).success());
}

#[test]
fn the_npm_fabric_gateway_client_reads_chaincode_events_from_a_start_block_and_resumes_from_a_checkpoint_from_wasm_and_node_chaincode()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = node_data(dir.path(), false);
    let node = start_with(&data, &["--node-image", "cchost/nodeenv:local"]);
    // fabric-samples' asset-transfer-events chaincode, in Rust and in JavaScript.
    ok(
        &data,
        &["chaincode", "deploy", "examples/events", "-n", "events"],
    );
    let package = node_sample_package(dir.path(), "events/index.js", "nodeevents_1.0");
    ok(
        &data,
        &[
            "chaincode",
            "deploy",
            package.to_str().unwrap(),
            "-n",
            "nodeevents",
        ],
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("client.json")).unwrap()).unwrap();
    let user = data
        .join("organizations/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp");
    let (certs, keys) = (user.join("signcerts"), user.join("keystore"));
    // Blocks 1-4 define the two chaincodes: each run's CreateAsset commits in a later
    // block than the last, its TransferAsset in a later one still.
    let mut last_block = 4;
    for chaincode in ["events", "nodeevents"] {
        let steps = npm_app(
            "events-app.js",
            &[
                (
                    "PEER_ENDPOINT",
                    profile["address"].as_str().unwrap().as_ref(),
                ),
                ("CERT_DIRECTORY_PATH", certs.as_os_str()),
                ("KEY_DIRECTORY_PATH", keys.as_os_str()),
                ("MSP_ID", "Org1MSP".as_ref()),
                ("CHANNEL_NAME", "mychannel".as_ref()),
                ("CHAINCODE_NAME", chaincode.as_ref()),
            ],
        );
        assert_eq!(steps.len(), 4, "{chaincode}: {steps:?}");
        let created = &steps[0];
        let block = |step: &serde_json::Value| -> u64 {
            step["blockNumber"].as_str().unwrap().parse().unwrap()
        };
        assert!(block(created) > last_block, "{chaincode}: {steps:?}");
        assert_eq!(
            steps[2],
            serde_json::json!({
                "step": "event",
                "eventName": "CreateAsset",
                "blockNumber": created["blockNumber"],
                "transactionId": created["transactionId"],
                "payload": {"ID": "asset1", "Color": "blue", "Size": 10, "Owner": "Sally", "AppraisedValue": 200}
            }),
            "{chaincode}"
        );
        assert_eq!(steps[3]["step"], "resumed", "{chaincode}");
        assert_eq!(steps[3]["eventName"], "TransferAsset", "{chaincode}");
        assert!(block(&steps[3]) > block(created), "{chaincode}: {steps:?}");
        assert_eq!(steps[3]["payload"]["Owner"], "Mary", "{chaincode}");
        last_block = block(&steps[3]);
    }
    assert!(stop(node).success());
}

/// `cchost bench load` ARGS against the node of `data`; its stdout and load.json.
fn load(data: &Path, out: &Path, args: &[&str]) -> (Output, serde_json::Value) {
    let output = run(
        data,
        &[&["bench", "load", "--out", out.to_str().unwrap()], args].concat(),
    );
    let report = serde_json::from_slice(&std::fs::read(out.join("load.json")).unwrap()).unwrap();
    (output, report)
}

#[test]
fn bench_load_drives_a_tls_gateway_named_by_flags_and_counts_errors_by_grpc_and_validation_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = node_data(dir.path(), true);
    let node = start(&data);
    ok(
        &data,
        &[
            "chaincode",
            "deploy",
            "examples/asset-transfer",
            "-n",
            "basic",
        ],
    );
    ok(
        &data,
        &[
            "chaincode",
            "invoke",
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["InitLedger"]}"#,
            "--waitForEvent",
        ],
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("client.json")).unwrap()).unwrap();
    let org = data.join("organizations/peerOrganizations/org1.example.com");
    let user = org.join("users/User1@org1.example.com/msp");
    let first = |dir: PathBuf| {
        let file = std::fs::read_dir(dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        file.to_str().unwrap().to_owned()
    };
    let (cert, key) = (first(user.join("signcerts")), first(user.join("keystore")));
    let tls_ca = org.join("peers/peer0.org1.example.com/tls/ca.crt");
    // As against a Fabric peer: everything named by flags (no client profile).
    let fabric_style = [
        "--address",
        profile["address"].as_str().unwrap(),
        "--channelID",
        "mychannel",
        "--msp-id",
        "Org1MSP",
        "--cert",
        &cert,
        "--key",
        &key,
        "--tls-ca",
        tls_ca.to_str().unwrap(),
        "--tls-server-name",
        "peer0.org1.example.com",
    ];
    let out = dir.path().join("evaluate");
    let (output, report) = load(
        &data,
        &out,
        &[&fabric_style[..], &["--count", "200", "--concurrency", "8"]].concat(),
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("evaluate ReadAsset asset1 on basic (127.0.0.1:")
            && stdout.contains("), 8 in flight, 4 connection(s)\n200 of 200 succeeded in "),
        "{stdout}"
    );
    assert_eq!(
        (
            report["attempted"].as_u64(),
            report["succeeded"].as_u64(),
            report["latency"]["n"].as_u64(),
            report["errors"].as_object().map(|e| e.len()),
        ),
        (Some(200), Some(200), Some(200), Some(0))
    );
    let csv = std::fs::read_to_string(out.join("load.csv")).unwrap();
    assert_eq!(csv.lines().count(), 201);
    assert_eq!(
        csv.lines().next(),
        Some("index,start_us,latency_us,outcome")
    );
    assert!(csv.lines().skip(1).all(|l| l.ends_with(",ok")), "{csv}");
    assert!(
        std::fs::read_to_string(out.join("load.svg"))
            .unwrap()
            .starts_with("<svg")
    );

    // At a fixed rate the starts follow the schedule: 40 at 200/s cannot end before the
    // last is due, 195 ms in.
    let (output, report) = load(
        &data,
        &dir.path().join("rate"),
        &["--rate", "200", "--count", "40", "--concurrency", "8"],
    );
    assert!(output.status.success());
    assert_eq!(
        (report["rate"].as_f64(), report["succeeded"].as_u64()),
        (Some(200.0), Some(40))
    );
    assert!(report["elapsed_s"].as_f64().unwrap() >= 0.195, "{report}");
    // A rate so low that the second transaction would be due past any time an Instant
    // holds: the first runs, the run ends there.
    let (output, report) = load(
        &data,
        &dir.path().join("slow"),
        &["--rate", "1e-300", "--count", "5"],
    );
    assert!(output.status.success());
    assert_eq!(report["attempted"].as_u64(), Some(1));

    // Submits that all touch asset1: those endorsed on the same version conflict at
    // validation, and are counted by their validation code, not as done.
    let (output, report) = load(
        &data,
        &dir.path().join("conflicts"),
        &[
            &fabric_style[..],
            &[
                "--mode",
                "submit",
                "-c",
                r#"{"Args":["TransferAsset","asset1","{tx}"]}"#,
                "--count",
                "40",
                "--concurrency",
                "8",
            ],
        ]
        .concat(),
    );
    assert!(output.status.success());
    let succeeded = report["succeeded"].as_u64().unwrap();
    let conflicts = report["errors"]["invalid MVCC_READ_CONFLICT"]["count"]
        .as_u64()
        .unwrap_or(0);
    assert!(succeeded >= 1 && conflicts >= 1, "{report}");
    assert_eq!(
        (
            succeeded + conflicts,
            report["errors"].as_object().unwrap().len()
        ),
        (40, 1),
        "{report}"
    );

    // The client profile's defaults (the node of --data-dir, its user): each submit
    // creates its own asset, all valid and all in the state afterwards.
    let out = dir.path().join("submit");
    let (output, report) = load(
        &data,
        &out,
        &["--mode", "submit", "--count", "30", "--concurrency", "6"],
    );
    assert!(output.status.success());
    assert_eq!(
        (report["succeeded"].as_u64(), report["args"][1].as_str()),
        (Some(30), Some("{tx}"))
    );
    let (all, _) = ok(
        &data,
        &[
            "chaincode",
            "query",
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["GetAllAssets"]}"#,
        ],
    );
    let assets: Vec<serde_json::Value> = serde_json::from_str(all.trim()).unwrap();
    let created = assets
        .iter()
        .filter(|a| a["ID"].as_str().is_some_and(|id| id.starts_with("load")))
        .count();
    assert_eq!((assets.len(), created), (36, 30));

    // A chaincode error: every transaction counted under the gRPC code the Gateway
    // answered with, with its message; nothing succeeded, so the command fails.
    let (output, report) = load(
        &data,
        &dir.path().join("missing"),
        &["-c", r#"{"Args":["ReadAsset","nosuch"]}"#, "--count", "5"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "Error: no transaction succeeded\n"
    );
    assert_eq!(
        report["errors"],
        serde_json::json!({"grpc UNKNOWN": {
            "count": 5,
            "example": "evaluate call to endorser returned error: chaincode response 500, The asset nosuch does not exist"
        }})
    );
    let output = run(&data, &["bench", "load", "--address", "127.0.0.1:1"]);
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "Error: with --address, name the identity: --msp-id, --cert and --key\n"
    );
    stop(node);
}
