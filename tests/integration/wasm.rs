//! Wasm chaincode built by rustc (`tests/guests/asset`, built by `tests/build.rs`) in the
//! wasmtime runtime, served by the same handler as Node chaincode.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cchost::ids::PackageId;
use cchost::ledger::StateStore;
use cchost::proposal::{BuiltProposal, ProposalBuilder, compute_binding};
use cchost::proto::protos::chaincode_message::Type;
use cchost::runtime::wasm::{HOST_CALL_FUEL, WasmChaincode, WasmConfig, WasmModule, WasmRuntime};
use cchost::support::{ExecuteError, ExecuteResult, SupportConfig};

use crate::host::{CHANNEL, TestHost};
use crate::node_shim::launch as launch_node;

const ASSET_PKG: &str =
    "asset_1.0:0b1d0b5a3f5e1c9e6f2b8d3a7c4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f";
const OTHER_PKG: &str =
    "other_1.0:1c2e1c6b4f6f2daf7f3c9e4b8d5f6071829304b5c6d7e8f9012a3b4c5d6e7f80";
const THIRD_PKG: &str =
    "third_1.0:2d3f2d7c5a7a3eba8a4d0a5c9e6a7182930415c6d7e8f9012a3b4c5d6e7f8091";

fn guest() -> Vec<u8> {
    std::fs::read(env!("GUEST_ASSET_WASM"))
        .expect("the wasm test chaincode was built by tests/build.rs")
}

async fn launch_wasm(
    host: &TestHost,
    runtime: &WasmRuntime,
    name: &str,
    package_id: &str,
) -> WasmChaincode {
    launch_module(host, runtime, name, package_id, &guest())
        .await
        .1
}

/// Compiles `wasm`, defines it as chaincode `name` (package `package_id`) and starts it.
async fn launch_module(
    host: &TestHost,
    runtime: &WasmRuntime,
    name: &str,
    package_id: &str,
    wasm: &[u8],
) -> (WasmModule, WasmChaincode) {
    let module = runtime.compile(wasm).unwrap();
    let package_id = PackageId::new(package_id);
    host.support.define(name, package_id.clone());
    host.support.expect_registration(&package_id);
    let chaincode = runtime.start(&host.support, &package_id, &module);
    assert!(
        host.support
            .wait_ready(&package_id, Duration::from_secs(10))
            .await
    );
    (module, chaincode)
}

async fn execute(host: &TestHost, proposal: &BuiltProposal) -> Result<ExecuteResult, ExecuteError> {
    host.support.execute(&proposal.signed_proposal).await
}

fn payload(result: &Result<ExecuteResult, ExecuteError>) -> String {
    let result = result.as_ref().unwrap();
    assert_eq!(result.response.status, 200, "{:?}", result.response);
    String::from_utf8(result.response.payload.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_chaincode_produces_the_node_chaincodes_responses_events_and_rwsets() {
    let config = SupportConfig {
        query_batch_size: 2,
        ..SupportConfig::default()
    };
    let logs = tempfile::tempdir().unwrap();
    let node_host = TestHost::start(config.clone()).await;
    let wasm_host = TestHost::start(config).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let _node = launch_node(&node_host, "asset", ASSET_PKG, logs.path()).await;
    let _node_other = launch_node(&node_host, "other", OTHER_PKG, logs.path()).await;
    let _wasm = launch_wasm(&wasm_host, &runtime, "asset", ASSET_PKG).await;
    let _wasm_other = launch_wasm(&wasm_host, &runtime, "other", OTHER_PKG).await;

    let steps: &[(&str, &[&str])] = &[
        ("asset", &["asset:put", "k1", "v1"]),
        ("asset", &["asset:put", "k2", "v2"]),
        ("asset", &["asset:put", "k3", "v3"]),
        ("asset", &["asset:get", "k2"]),
        ("asset", &["asset:range", "", ""]),
        ("asset", &["asset:range", "k2", "k3"]),
        ("asset", &["asset:del", "k1"]),
        ("asset", &["asset:get", "k1"]),
        ("asset", &["asset:history", "k1"]),
        ("other", &["asset:put", "o1", "x"]),
        ("asset", &["asset:invoke", "other", "asset:touch", "o1"]),
        ("asset", &["asset:touch", "k2"]),
    ];
    let wasm_next_before = wasm_host.support.requests_received(Type::QueryStateNext);
    for (i, (chaincode, args)) in steps.iter().enumerate() {
        // One identity and one nonce per step: the same txid on both hosts.
        let proposal = ProposalBuilder::new(CHANNEL, *chaincode)
            .args(*args)
            .nonce(vec![u8::try_from(i).unwrap(); 24])
            .build(&node_host.identity)
            .unwrap();
        let node = execute(&node_host, &proposal).await.unwrap();
        let wasm = execute(&wasm_host, &proposal).await.unwrap();
        assert_eq!(
            wasm.response, node.response,
            "step {i} {args:?}: responses differ"
        );
        assert_eq!(wasm.event, node.event, "step {i} {args:?}: events differ");
        assert_eq!(
            wasm.rwset, node.rwset,
            "step {i} {args:?}: read/write sets differ"
        );
        node_host.commit(&node, &proposal);
        wasm_host.commit(&wasm, &proposal);
        if args[0] == "asset:range" && args[1].is_empty() {
            assert_eq!(payload(&Ok(wasm)), r#"["k1=v1","k2=v2","k3=v3"]"#);
        }
    }
    assert!(
        wasm_host.support.requests_received(Type::QueryStateNext) > wasm_next_before,
        "the range ran over several batches"
    );
    assert!(wasm_host.support.requests_received(Type::QueryStateClose) > 0);

    // The transaction context: txid, channel and Fabric's binding.
    let proposal = wasm_host.proposal("asset", &["asset:whoami"]);
    let result = execute(&wasm_host, &proposal).await;
    let binding: String = compute_binding(&proposal.nonce, &proposal.creator, 0)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        payload(&result),
        format!(
            r#"{{"txid":"{}","channel":"{CHANNEL}","binding":"{binding}"}}"#,
            proposal.txid
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_proposals_on_two_hosts_in_one_process_give_byte_identical_results() {
    let mut results = Vec::new();
    let identity = cchost::proposal::DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
    let timestamp = prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 42,
    };
    for _ in 0..2 {
        let host = TestHost::start(SupportConfig::default()).await;
        let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
        let _chaincode = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;
        let mut outputs = Vec::new();
        for (i, args) in [
            ["asset:entropy", ""],
            ["asset:put", "k"],
            ["asset:entropy", ""],
        ]
        .iter()
        .enumerate()
        {
            let proposal = ProposalBuilder::new(CHANNEL, "asset")
                .args(args.iter().copied().filter(|a| !a.is_empty()))
                .nonce(vec![9 + u8::try_from(i).unwrap(); 24])
                .timestamp(timestamp)
                .build(&identity)
                .unwrap();
            let result = execute(&host, &proposal).await.unwrap();
            host.commit(&result, &proposal);
            outputs.push((
                result.response.clone(),
                result.event.clone(),
                result.rwset.clone(),
            ));
        }
        results.push(outputs);
    }
    assert_eq!(results[0], results[1], "two hosts disagree");
    let first = String::from_utf8(results[0][0].0.payload.clone()).unwrap();
    let third = String::from_utf8(results[0][2].0.payload.clone()).unwrap();
    // The clock reads the proposal's timestamp; random numbers follow the txid.
    assert!(first.starts_with("1700000000000000042:"), "{first}");
    assert!(third.starts_with("1700000000000000042:"), "{third}");
    assert_ne!(first, third, "another txid seeds other random numbers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_answers_its_message_a_cpu_loop_fails_and_the_chaincode_keeps_serving() {
    let host = TestHost::start(SupportConfig::default()).await;
    let runtime = WasmRuntime::new(WasmConfig {
        fuel_per_tx: 50_000_000,
        ..WasmConfig::default()
    })
    .unwrap();
    let _chaincode = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;

    // The SDK's panic hook hands the message to the host (the `abort` import): the
    // client reads it as it would an error the chaincode returned.
    let (_, result) = host.invoke("asset", &["asset:panic"]).await;
    let response = result.unwrap().response;
    assert_eq!(
        (response.status, response.message.as_str()),
        (500, "asset:panic was called")
    );
    let started = Instant::now();
    let (_, result) = host.invoke("asset", &["asset:spin"]).await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "transaction returned with failure: chaincode ran out of fuel"
    );
    eprintln!("50M fuel of a spinning guest took {:?}", started.elapsed());
    let (_, result) = host.invoke("asset", &["asset:get", "k"]).await;
    assert_eq!(payload(&result), "");
}

/// Twelve transactions of `asset` started at once (their proposals signed beforehand),
/// each calling `target`, which reads a key 300 times (so that every transaction is in
/// flight before the first ends): all must answer 200 with the callee's answer.
async fn twelve_nested_calls(host: &Arc<TestHost>, target: &str) {
    let proposals: Vec<_> = (0..12)
        .map(|_| {
            host.proposal(
                "asset",
                &["asset:invoke", target, "asset:reads", "k", "300"],
            )
        })
        .collect();
    let tasks: Vec<_> = proposals
        .into_iter()
        .map(|proposal| {
            let host = Arc::clone(host);
            tokio::spawn(async move {
                let result = execute(&host, &proposal).await.unwrap();
                let payload = String::from_utf8(result.response.payload).unwrap();
                (result.response.status, payload)
            })
        })
        .collect();
    let all = async {
        for task in tasks {
            assert_eq!(
                task.await.unwrap(),
                (
                    200,
                    r#"{"status":200,"message":"","payload":"300"}"#.to_owned()
                )
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .unwrap_or_else(|_| panic!("12 calls to {target} did not all complete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_holding_every_slot_can_still_call_the_chaincode_on_another_channel() {
    let host = Arc::new(TestHost::start(SupportConfig::default()).await);
    host.store.create_channel("otherchannel").unwrap();
    // Two slots for `asset`, both held by transactions calling `asset` itself on another
    // channel: the calls must not wait for those slots.
    let runtime = WasmRuntime::new(WasmConfig {
        max_concurrent: 2,
        ..WasmConfig::default()
    })
    .unwrap();
    let _asset = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;
    twelve_nested_calls(&host, "asset/otherchannel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_nested_calls_in_flight_than_pooled_instances_all_complete() {
    let host = Arc::new(TestHost::start(SupportConfig::default()).await);
    // Four instances and twelve transactions that each hold one while calling `other`:
    // transactions from the peer never take the last one, so calls always find one.
    let runtime = WasmRuntime::new(WasmConfig {
        max_instances: 4,
        ..WasmConfig::default()
    })
    .unwrap();
    let _asset = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;
    let _other = launch_wasm(&host, &runtime, "other", OTHER_PKG).await;
    twelve_nested_calls(&host, "other").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_call_no_instance_can_be_freed_for_fails_at_once_with_a_clear_error() {
    let host = TestHost::start(SupportConfig::default()).await;
    // Two instances: asset → other → third needs three at once.
    let runtime = WasmRuntime::new(WasmConfig {
        max_instances: 2,
        ..WasmConfig::default()
    })
    .unwrap();
    let _asset = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;
    let _other = launch_wasm(&host, &runtime, "other", OTHER_PKG).await;
    let _third = launch_wasm(&host, &runtime, "third", THIRD_PKG).await;
    let (_, result) = host
        .invoke(
            "asset",
            &[
                "asset:invoke",
                "other",
                "asset:invoke",
                "third",
                "asset:get",
                "k",
            ],
        )
        .await;
    // The innermost call fails; `other` answers its error as status 500, which `asset`
    // reports.
    assert_eq!(
        payload(&result),
        r#"{"status":500,"message":"no wasm instance is free for a nested chaincode call: all 2 are held by transactions waiting on chaincode calls (raise max_instances, or retry)","payload":""}"#
    );
    // One level less fits, and the pool is whole again.
    let (_, result) = host
        .invoke("asset", &["asset:invoke", "other", "asset:get", "k"])
        .await;
    assert_eq!(
        payload(&result),
        r#"{"status":200,"message":"","payload":""}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_wasm_chaincode_leaves_no_task_behind_even_with_keepalive_configured() {
    let host = TestHost::start(SupportConfig {
        keepalive: Some(Duration::from_millis(10)),
        ..SupportConfig::default()
    })
    .await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let tasks = tokio::runtime::Handle::current().metrics();
    let before = tasks.num_alive_tasks();
    let chaincode = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;
    let (_, result) = host.invoke("asset", &["asset:get", "k"]).await;
    assert_eq!(payload(&result), "");
    chaincode.stop();
    assert!(
        host.support
            .wait_deregistered(&PackageId::new(ASSET_PKG), Duration::from_secs(10))
            .await
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.num_alive_tasks() > before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} tasks still alive, {before} before the launch",
            tasks.num_alive_tasks()
        )
    });
}

#[tokio::test]
async fn configurations_that_would_hang_or_fail_are_refused_with_what_to_change() {
    let store: Arc<dyn cchost::ledger::StateStore> =
        Arc::new(cchost::ledger::RedbStore::in_memory().unwrap());
    let support = |config| {
        cchost::support::ChaincodeSupport::new(config, Arc::clone(&store))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        support(SupportConfig {
            max_concurrent_requests: 0,
            ..SupportConfig::default()
        }),
        "invalid configuration: max_concurrent_requests must be greater than zero"
    );
    assert_eq!(
        support(SupportConfig {
            keepalive: Some(Duration::ZERO),
            ..SupportConfig::default()
        }),
        "invalid configuration: keepalive (chaincode.keepalive; leave it unset to turn it off) \
         must be greater than zero"
    );
    assert_eq!(
        support(SupportConfig {
            execute_timeout: Duration::ZERO,
            ..SupportConfig::default()
        }),
        "invalid configuration: execute_timeout (chaincode.executetimeout) must be greater than \
         zero"
    );
    let wasm = |config| WasmRuntime::new(config).unwrap_err().to_string();
    assert_eq!(
        wasm(WasmConfig {
            max_concurrent: 0,
            ..WasmConfig::default()
        }),
        "invalid wasm configuration: max_concurrent must be at least 1"
    );
    assert_eq!(
        wasm(WasmConfig {
            max_instances: 0,
            ..WasmConfig::default()
        }),
        "invalid wasm configuration: max_instances must be at least 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mockstub_refuses_private_data_with_the_hosts_own_words() {
    let host = TestHost::start(SupportConfig::default()).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let _asset = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;
    let (proposal, result) = host
        .invoke("asset", &["asset:private", "secrets", "k", "v"])
        .await;
    let on_host = result.unwrap().response.message;
    let mock = cchost_sdk::mock::MockStub::new("asset");
    let in_mock = mock
        .transact(|ctx| ctx.stub.put_private_data("secrets", "k", b"v"))
        .unwrap_err()
        .to_string();
    let generic = |text: &str, txid: &str| text.replace(txid, "<txid>");
    assert_eq!(
        generic(&on_host, &proposal.txid),
        "PUT_STATE failed: transaction ID: <txid>: private data collections are not \
         supported by cchost yet (collection \"secrets\")"
    );
    assert_eq!(
        generic(&in_mock, "mocktx1"),
        generic(&on_host, &proposal.txid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_key_is_refused_for_writes_only_in_the_stub_and_in_mockstub_alike() {
    let host = TestHost::start(SupportConfig::default()).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let _asset = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;
    let mock = cchost_sdk::mock::MockStub::new("asset");
    // As Fabric's Go shim: PutState("") is refused before it reaches the peer.
    let (_, result) = host.invoke("asset", &["asset:put", "", "v"]).await;
    let response = result.unwrap().response;
    let in_mock = mock
        .transact(|ctx| ctx.stub.put_state("", b"v"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        (response.status, response.message.as_str()),
        (500, "key must not be an empty string")
    );
    assert_eq!(in_mock, "key must not be an empty string");
    // Reads and deletes go on: nothing is stored under "".
    let (_, result) = host.invoke("asset", &["asset:get", ""]).await;
    assert_eq!(payload(&result), "");
    let (_, result) = host.invoke("asset", &["asset:del", ""]).await;
    assert_eq!(payload(&result), "ok");
    let in_mock = mock
        .transact(|ctx| {
            ctx.stub.del_state("")?;
            ctx.stub.get_state("")
        })
        .unwrap();
    assert_eq!(in_mock, b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_runs_where_comes_from_the_signed_proposal_with_fabrics_texts_when_it_cannot() {
    use cchost::proto::protos::{ChaincodeInvocationSpec, ChaincodeProposalPayload, Proposal};
    use prost::Message;
    let host = TestHost::start(SupportConfig::default()).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let _asset = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;

    // The chaincode runs the proposal's arguments on the proposal's channel.
    let proposal = host.proposal("asset", &["asset:whoami"]);
    let result = execute(&host, &proposal).await.unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&result.response.payload).unwrap();
    assert_eq!(answer["channel"], CHANNEL);
    assert_eq!(answer["txid"], proposal.txid.as_str());

    // A channel this node has no ledger for.
    let elsewhere = ProposalBuilder::new("nochannel", "asset")
        .args(["asset:get", "k"])
        .build(&host.identity)
        .unwrap();
    assert_eq!(
        execute(&host, &elsewhere).await.unwrap_err().to_string(),
        "channel 'nochannel' not found"
    );

    // A proposal whose payload names no chaincode spec.
    let mut broken = Proposal::decode(proposal.signed_proposal.proposal_bytes.as_slice()).unwrap();
    let mut payload = ChaincodeProposalPayload::decode(broken.payload.as_slice()).unwrap();
    payload.input = ChaincodeInvocationSpec::default().encode_to_vec();
    broken.payload = payload.encode_to_vec();
    let mut signed = proposal.signed_proposal.clone();
    signed.proposal_bytes = broken.encode_to_vec();
    assert_eq!(
        host.support.execute(&signed).await.unwrap_err().to_string(),
        "chaincode invocation spec did not contain chaincode spec"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_calling_into_a_channel_with_no_ledger_gets_fabrics_error() {
    let host = TestHost::start(SupportConfig::default()).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let _asset = launch_wasm(&host, &runtime, "asset", ASSET_PKG).await;
    let _other = launch_wasm(&host, &runtime, "other", OTHER_PKG).await;
    let (proposal, result) = host
        .invoke(
            "asset",
            &["asset:invoke", "other/nosuchchannel", "asset:get", "k"],
        )
        .await;
    let response = result.unwrap().response;
    assert_eq!(
        (response.status, response.message),
        (
            500,
            format!(
                "INVOKE_CHAINCODE failed: transaction ID: {}: failed to find ledger for \
                 channel: nosuchchannel",
                proposal.txid
            )
        )
    );
}

/// `cchost_invoke` loops once per byte of its input: 8 metered instructions an iteration.
const LOOP_PER_INPUT_BYTE: &str = r#"(module
  (import "cchost" "set_response" (func $respond (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\08\c8\01")
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param $len i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $len))))
    (drop (call $respond (i32.const 0) (i32.const 3)))
    (i32.const 0)))"#;

/// The fuel `module` used for `proposal`, which must answer 200.
async fn fuel_of(host: &TestHost, module: &WasmModule, proposal: BuiltProposal) -> u64 {
    let before = module.fuel_consumed();
    let result = execute(host, &proposal).await.unwrap();
    assert_eq!(result.response.status, 200);
    module.fuel_consumed() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modules_fuel_consumed_grows_by_exactly_the_instructions_its_invocations_ran() {
    let host = TestHost::start(SupportConfig::default()).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let wasm = wat::parse_str(LOOP_PER_INPUT_BYTE).unwrap();
    let (module, _chaincode) = launch_module(&host, &runtime, "fuel", "fuel_1.0:test", &wasm).await;
    assert_eq!(module.fuel_consumed(), 0);
    // Inputs 100 bytes apart (both arguments' lengths fit one varint byte).
    let short = fuel_of(
        &host,
        &module,
        host.proposal("fuel", &["x".repeat(10).as_str()]),
    )
    .await;
    let long = fuel_of(
        &host,
        &module,
        host.proposal("fuel", &["x".repeat(110).as_str()]),
    )
    .await;
    assert_eq!(long - short, 100 * 8);
    // The same proposal twice: the same fuel.
    let proposal = host.proposal("fuel", &["x".repeat(50).as_str()]);
    let first = fuel_of(&host, &module, proposal.clone()).await;
    assert_eq!(fuel_of(&host, &module, proposal).await, first);
    assert_eq!(first - short, 40 * 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_menu_names_every_cchost_import_and_links_as_it_stands() {
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let menu = runtime.imports_wat();
    for name in cchost_abi::imports::ALL {
        assert!(
            menu.contains(&format!("(import \"cchost\" \"{name}\" (func")),
            "{name} missing from\n{menu}"
        );
    }
    for name in [
        "fd_write",
        "clock_time_get",
        "random_get",
        "proc_exit",
        "poll_oneoff",
    ] {
        assert!(
            menu.contains(&format!("(import \"wasi_snapshot_preview1\" \"{name}\"")),
            "{name} missing from\n{menu}"
        );
    }
    assert!(
        menu.contains(
            "(import \"cchost\" \"get_state\" (func (param i32 i32 i32 i32) (result i64)))"
        )
    );
    // A chaincode importing all of it, with the ABI's exports, installs.
    let module = menu.trim_end().strip_suffix(')').unwrap().to_owned()
        + r#"  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0)))"#;
    runtime.compile(&wat::parse_str(&module).unwrap()).unwrap();
}

/// `cchost_invoke` loops 100,000 times per byte of its input (8 metered instructions an
/// iteration), long enough to see several epoch ticks; with `copy`, each iteration also
/// runs a one-byte `memory.copy` (a wasmtime libcall, 4 metered instructions).
fn long_loop(copy: bool) -> Vec<u8> {
    looping(
        1_000_000,
        if copy {
            "(memory.copy (i32.const 64) (i32.const 0) (i32.const 1))"
        } else {
            ""
        },
    )
}

/// `cchost_invoke` runs `body` `per_byte` times per byte of its input.
fn looping(per_byte: u32, body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (import "cchost" "set_response" (func $respond (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\08\c8\01")
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param $len i32) (result i32)
    (local $i i32) (local $n i32)
    (local.set $n (i32.mul (local.get $len) (i32.const {per_byte})))
    (loop $l
      {body}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (drop (call $respond (i32.const 0) (i32.const 3)))
    (i32.const 0)))"#
    ))
    .unwrap()
}

/// Found by `scripts/campaign differential` (fuel 0 on one host, 10,000 on another for the
/// same trapping module): the call hook charged HOST_CALL_FUEL for every wasmtime libcall,
/// the epoch check's among them, so fuel depended on when the clock ticked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_is_the_same_however_many_epoch_ticks_a_transaction_sees_and_libcalls_cost_instructions_only()
 {
    let host = TestHost::start(SupportConfig::default()).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let mut fuel = Vec::new();
    for (name, copy) in [("spin", false), ("copy", true)] {
        let package_id = format!("{name}_1.0:test");
        let (module, chaincode) =
            launch_module(&host, &runtime, name, &package_id, &long_loop(copy)).await;
        let short = host.proposal(name, &["x".repeat(10).as_str()]);
        let long = host.proposal(name, &["x".repeat(110).as_str()]);
        let short_fuel = fuel_of(&host, &module, short.clone()).await;
        let long_fuel = fuel_of(&host, &module, long.clone()).await;
        // The same proposals again, with other ticks: the same fuel.
        assert_eq!(fuel_of(&host, &module, short).await, short_fuel);
        assert_eq!(fuel_of(&host, &module, long).await, long_fuel);
        fuel.push(long_fuel - short_fuel);
        drop(chaincode);
    }
    // 100 more input bytes: 100,000,000 more iterations of 8 metered instructions, and
    // for the copy 5 more (its 4 instructions and 1 per byte copied): nothing for the
    // libcall, nothing for the epoch checks.
    assert_eq!(fuel, [800_000_000, 1_300_000_000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wasi_call_costs_host_call_fuel_once() {
    let host = TestHost::start(SupportConfig::default()).await;
    let runtime = WasmRuntime::new(WasmConfig::default()).unwrap();
    let wasm = looping(
        1,
        "(drop (call $clock (i32.const 0) (i64.const 1) (i32.const 16)))",
    );
    let (module, _chaincode) =
        launch_module(&host, &runtime, "clock", "clock_1.0:test", &wasm).await;
    let short = fuel_of(
        &host,
        &module,
        host.proposal("clock", &["x".repeat(10).as_str()]),
    )
    .await;
    let long = fuel_of(
        &host,
        &module,
        host.proposal("clock", &["x".repeat(110).as_str()]),
    )
    .await;
    // 100 more calls: each HOST_CALL_FUEL and 12 instructions (3 arguments, the call,
    // the loop's 8; `drop` is free).
    assert_eq!(long - short, 100 * (HOST_CALL_FUEL + 12));
}
