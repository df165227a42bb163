//! Native tests: the contract under `cargo test`, on MockStub.

use cchost_sdk::mock::MockStub;
use serde_json::Value;

use super::*;

/// The fabric-samples sequence, shared with the wasm integration test.
pub(crate) const SEQUENCE: &str = include_str!("../tests/fabric-samples-sequence.json");

#[test]
fn the_fabric_samples_sequence_answers_what_the_javascript_sample_answers() {
    let sequence: Value = serde_json::from_str(SEQUENCE).unwrap();
    let mock = MockStub::new("basic");
    let chaincode = chaincode();
    for step in sequence["steps"].as_array().unwrap() {
        let args: Vec<&str> = step["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let response = mock.invoke(&chaincode, &args);
        let status = step["status"].as_i64().unwrap();
        assert_eq!(i64::from(response.status), status, "{args:?}: {response:?}");
        if status == 200 {
            assert_eq!(
                String::from_utf8(response.payload).unwrap(),
                step["payload"].as_str().unwrap(),
                "{args:?}"
            );
        } else {
            assert_eq!(
                response.message,
                step["message"].as_str().unwrap(),
                "{args:?}"
            );
        }
    }
    for (key, value) in sequence["state"].as_object().unwrap() {
        assert_eq!(mock.state_string(key).as_deref(), value.as_str(), "{key}");
    }
}

#[test]
fn methods_can_be_called_directly_in_a_mock_transaction() {
    let mock = MockStub::new("basic");
    let contract = AssetTransfer;
    mock.transact(|ctx| contract.init_ledger(ctx)).unwrap();
    assert_eq!(mock.keys().len(), 6);
    let created = mock
        .transact(|ctx| {
            contract.create_asset(
                ctx,
                "asset9".into(),
                "teal".into(),
                "3".into(),
                "Ann".into(),
                "10".into(),
            )
        })
        .unwrap();
    assert_eq!(created.owner, "Ann");
    let owner = mock
        .transact(|ctx| contract.transfer_asset(ctx, "asset9", "Bo".into()))
        .unwrap();
    assert_eq!(owner, "Ann");
    assert_eq!(
        mock.state_string("asset9").unwrap(),
        r#"{"AppraisedValue":"10","Color":"teal","ID":"asset9","Owner":"Bo","Size":"3"}"#
    );
    // A failed transaction commits nothing.
    let e = mock
        .transact(|ctx| {
            ctx.stub.put_state("scratch", b"x")?;
            contract.read_asset(ctx, "nothing")
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "The asset nothing does not exist");
    assert_eq!(mock.state("scratch"), None);
}

#[test]
fn a_transaction_reads_committed_state_not_its_own_writes() {
    let mock = MockStub::new("basic");
    let seen = mock
        .transact(|ctx| {
            ctx.stub.put_state("k", b"v")?;
            AssetTransfer.asset_exists(ctx, "k")
        })
        .unwrap();
    assert!(!seen, "Fabric does not read a transaction's own writes");
    assert_eq!(mock.state_string("k").as_deref(), Some("v"));
}

#[test]
fn get_metadata_describes_the_contract_in_fabrics_shape() {
    let response =
        MockStub::new("basic").invoke(&chaincode(), &["org.hyperledger.fabric:GetMetadata"]);
    assert_eq!(response.status, 200, "{}", response.message);
    let metadata: Value = serde_json::from_slice(&response.payload).unwrap();
    assert_eq!(
        metadata["$schema"],
        "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json"
    );
    assert_eq!(
        metadata["info"],
        serde_json::json!({"title": "asset-transfer-basic", "version": "1.0.0"})
    );
    let contract = &metadata["contracts"]["AssetTransfer"];
    assert_eq!(
        contract["contractInstance"],
        serde_json::json!({"name": "AssetTransfer", "default": true})
    );
    let names: Vec<&str> = contract["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "InitLedger",
            "CreateAsset",
            "ReadAsset",
            "UpdateAsset",
            "DeleteAsset",
            "AssetExists",
            "TransferAsset",
            "GetAllAssets"
        ]
    );
    let create = &contract["transactions"][1];
    assert_eq!(create["tag"], serde_json::json!(["SUBMIT", "submitTx"]));
    assert_eq!(
        create["parameters"][4],
        serde_json::json!({"name": "appraisedValue", "description": "", "schema": {"type": "string"}})
    );
    assert_eq!(
        create["returns"],
        serde_json::json!({"$ref": "#/components/schemas/Asset"})
    );
    assert_eq!(
        contract["transactions"][2]["tag"],
        serde_json::json!(["EVALUATE"])
    );
    assert_eq!(
        contract["transactions"][5]["returns"],
        serde_json::json!({"type": "boolean"})
    );
    let asset = &metadata["components"]["schemas"]["Asset"];
    assert_eq!(asset["$id"], "Asset");
    assert_eq!(asset["type"], "object");
    assert_eq!(
        asset["properties"]["AppraisedValue"],
        serde_json::json!({"type": "string", "description": "Appraised value, as sent."})
    );
    assert_eq!(
        metadata["contracts"]["org.hyperledger.fabric"]["transactions"],
        serde_json::json!([{"name": "GetMetadata"}])
    );
}
