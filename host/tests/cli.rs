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
fn version_lists_fabrics_grpc_methods() {
    let out = Command::new(env!("CARGO_BIN_EXE_cchost"))
        .arg("version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("cchost {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains(
        "  /protos.ChaincodeSupport/Register (stream protos.ChaincodeMessage) -> stream protos.ChaincodeMessage\n"
    ));
    assert!(text.contains(
        "  /gateway.Gateway/Evaluate (gateway.EvaluateRequest) -> gateway.EvaluateResponse\n"
    ));
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
    assert_eq!(answers[0]["block"], 1);
    assert_eq!(answers[0]["event"]["name"], "Put");
    assert_eq!(answers[1]["payload"], "v1");
    assert_eq!(
        answers[2]["error"],
        "chaincode nosuch is not defined: add --chaincode nosuch=PACKAGE_ID"
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
