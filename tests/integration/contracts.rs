//! Rust chaincode written with the contract API, built for wasm32 by rustc and run
//! through `cchost::testing::WasmHarness` (the real runtime, handler and ledger).

use cchost::testing::WasmHarness;
use serde_json::Value;

fn asset_transfer() -> Vec<u8> {
    std::fs::read(env!("ASSET_TRANSFER_WASM"))
        .expect("tests/build.rs built examples/asset-transfer")
}

/// The same file the example's native MockStub test reads.
const SEQUENCE: &str =
    include_str!("../../examples/asset-transfer/tests/fabric-samples-sequence.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_transfer_in_wasm_answers_the_fabric_samples_sequence_exactly() {
    let harness = WasmHarness::load(&asset_transfer()).await.unwrap();
    let sequence: Value = serde_json::from_str(SEQUENCE).unwrap();
    for step in sequence["steps"].as_array().unwrap() {
        let args: Vec<&str> = step["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let outcome = harness.submit(&args).await.unwrap();
        let status = step["status"].as_i64().unwrap();
        assert_eq!(
            i64::from(outcome.response.status),
            status,
            "{args:?}: {:?}",
            outcome.response
        );
        if status == 200 {
            assert_eq!(
                outcome.payload(),
                step["payload"].as_str().unwrap(),
                "{args:?}"
            );
        } else {
            assert_eq!(
                outcome.response.message,
                step["message"].as_str().unwrap(),
                "{args:?}"
            );
            assert!(!outcome.committed);
        }
    }
    for (key, value) in sequence["state"].as_object().unwrap() {
        let stored = harness
            .state(key)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap());
        assert_eq!(stored.as_deref(), value.as_str(), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_metadata_from_the_wasm_module_equals_the_native_one() {
    let harness = WasmHarness::load(&asset_transfer()).await.unwrap();
    let outcome = harness
        .evaluate(&["org.hyperledger.fabric:GetMetadata"])
        .await
        .unwrap();
    assert_eq!(outcome.response.status, 200, "{}", outcome.response.message);
    let wasm: Value = serde_json::from_slice(&outcome.response.payload).unwrap();
    assert_eq!(wasm, asset_transfer::chaincode().metadata());
    assert_eq!(
        wasm["contracts"]["AssetTransfer"]["transactions"][6]["name"],
        "TransferAsset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_example_sets_one_event_per_change_through_the_peer() {
    let wasm = std::fs::read(env!("ASSET_EVENTS_WASM")).unwrap();
    let harness = WasmHarness::load(&wasm).await.unwrap();
    let created = harness
        .submit(&["CreateAsset", "asset1", "blue", "5", "Tomoko", "300"])
        .await
        .unwrap();
    let event = created.event.unwrap();
    assert_eq!(event.event_name, "CreateAsset");
    assert_eq!(event.chaincode_id, cchost::testing::CHAINCODE);
    assert_eq!(event.tx_id.len(), 64);
    let asset = r#"{"ID":"asset1","Color":"blue","Size":5,"Owner":"Tomoko","AppraisedValue":300}"#;
    assert_eq!(String::from_utf8(event.payload).unwrap(), asset);
    assert_eq!(harness.state("asset1").unwrap().unwrap(), asset.as_bytes());

    let failed = harness
        .submit(&["TransferAsset", "nope", "Bob"])
        .await
        .unwrap();
    assert_eq!(failed.response.message, "The asset nope does not exist");
    assert!(failed.event.is_none() && !failed.committed);

    let deleted = harness.submit(&["DeleteAsset", "asset1"]).await.unwrap();
    let event = deleted.event.unwrap();
    assert_eq!(
        (event.event_name.as_str(), event.payload.as_slice()),
        ("DeleteAsset", asset.as_bytes())
    );
    assert_eq!(harness.state("asset1").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marbles_partial_key_range_paged_and_history_queries_run_against_the_real_ledger() {
    let wasm = std::fs::read(env!("MARBLES_WASM")).unwrap();
    let harness = WasmHarness::load(&wasm).await.unwrap();
    for (name, color) in [
        ("marble1", "blue"),
        ("marble2", "red"),
        ("marble3", "Blue"),
        ("marble4", "green"),
    ] {
        let outcome = harness
            .submit(&["InitMarble", name, color, "10", "tom"])
            .await
            .unwrap();
        assert_eq!(outcome.response.status, 200, "{}", outcome.response.message);
    }
    let blue = harness
        .evaluate(&["QueryMarblesByColor", "blue"])
        .await
        .unwrap();
    let names: Vec<String> = serde_json::from_str::<Vec<Value>>(&blue.payload())
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["marble1", "marble3"]);
    assert_eq!(
        harness
            .submit(&["TransferMarblesBasedOnColor", "blue", "jerry"])
            .await
            .unwrap()
            .payload(),
        "2"
    );

    let all: Vec<Value> = serde_json::from_str(
        &harness
            .evaluate(&["GetMarblesByRange", "", ""])
            .await
            .unwrap()
            .payload(),
    )
    .unwrap();
    assert_eq!(all.len(), 4, "the colour index is not in the simple range");
    let page: Value = serde_json::from_str(
        &harness
            .evaluate(&["GetMarblesByRangeWithPagination", "", "", "3", ""])
            .await
            .unwrap()
            .payload(),
    )
    .unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 3);
    assert_eq!(page["fetchedRecordsCount"], 3);
    let next = page["bookmark"].as_str().unwrap().to_owned();
    let last: Value = serde_json::from_str(
        &harness
            .evaluate(&["GetMarblesByRangeWithPagination", "", "", "3", &next])
            .await
            .unwrap()
            .payload(),
    )
    .unwrap();
    assert_eq!(last["records"][0]["name"], "marble4");
    assert_eq!(last["records"].as_array().unwrap().len(), 1);

    harness.submit(&["Delete", "marble1"]).await.unwrap();
    let history: Vec<Value> = serde_json::from_str(
        &harness
            .evaluate(&["GetHistoryForMarble", "marble1"])
            .await
            .unwrap()
            .payload(),
    )
    .unwrap();
    let owners: Vec<&Value> = history.iter().map(|h| &h["value"]["owner"]).collect();
    assert_eq!(
        owners,
        [&Value::Null, &Value::from("jerry"), &Value::from("tom")]
    );
    assert_eq!(history[0]["isDelete"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_transaction_returns_its_panic_message() {
    let harness = WasmHarness::load(&std::fs::read(env!("GUEST_ASSET_WASM")).unwrap())
        .await
        .unwrap();
    let outcome = harness.submit(&["asset:panic"]).await.unwrap();
    assert_eq!(outcome.response.status, 500);
    assert_eq!(outcome.response.message, "asset:panic was called");
    assert!(!outcome.committed);
    // The next transaction runs in a fresh instance.
    let outcome = harness.submit(&["asset:put", "k", "v"]).await.unwrap();
    assert_eq!(outcome.payload(), "ok");
}
