//! `cchost bench` in its reduced mode (what CI runs): every runtime on the real parts
//! (wasm in wasmtime, the Node chaincode in a Docker container and as a process), and a
//! report with every figure present and no NaN.

use std::path::Path;
use std::time::Duration;

use cchost::bench::gateway::GatewayBenchConfig;
use cchost::bench::{BenchConfig, Runtime, run};
use cchost::runtime::docker::{DockerConfig, Images};
use serde_json::Value;

/// Every number in `value` is finite (serde_json writes NaN and infinities as null).
fn no_nulls(path: &str, value: &Value) {
    match value {
        Value::Null => panic!("{path} is null (NaN or missing)"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                no_nulls(&format!("{path}[{i}]"), item);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                no_nulls(&format!("{path}.{name}"), field);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_measures_the_wasm_native_docker_and_process_runtimes_and_reports_every_figure()
 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = BenchConfig {
        runtimes: vec![
            Runtime::Wasm,
            Runtime::Native,
            Runtime::Docker,
            Runtime::Process,
        ],
        rounds: 2,
        transactions: 40,
        concurrency: vec![1, 8, 32],
        wasm: env!("ASSET_TRANSFER_WASM").into(),
        node_dir: root.join("examples/node-asset"),
        native: env!("NATIVE_ASSET_TRANSFER").into(),
        docker: DockerConfig {
            images: Images {
                node: "cchost/nodeenv:local".to_owned(),
                ..Images::default()
            },
            ..DockerConfig::default()
        },
        startup_timeout: Duration::from_secs(60),
        // The external runtime runs the cchost binary: host/tests/remote.rs measures it.
        cchost: None,
        gateway: Some(GatewayBenchConfig {
            concurrency: 8,
            duration: Duration::from_secs(2),
            batch_timeout: Duration::from_millis(10),
        }),
    };
    let report = run(&config, &|line| eprintln!("{line}")).await.unwrap();
    let json = serde_json::to_value(&report).unwrap();
    no_nulls("report", &json);

    for name in ["wasm", "native", "docker", "process"] {
        let r = &json["runtimes"][name];
        let dev_mode = name == "process" || name == "native";
        let installs = if dev_mode { 0 } else { 2 };
        assert_eq!(
            r["install"]["samples_us"].as_array().unwrap().len(),
            installs,
            "{name}"
        );
        for figure in ["cold_launch", "cold_start", "warm_launch"] {
            let samples = r[figure]["samples_us"].as_array().unwrap();
            assert_eq!(samples.len(), 2, "{name} {figure}");
            assert!(samples.iter().all(|s| s.as_f64().unwrap() > 0.0));
            assert!(r[figure]["p50_us"].as_f64().unwrap() > 0.0);
        }
        assert_eq!(r["first_invoke"]["n"], 4, "{name}");
        let runs = r["invoke"].as_array().unwrap();
        let mut seen: Vec<(String, u64)> = runs
            .iter()
            .map(|run| {
                assert_eq!(run["n"], 40, "{name} {run}");
                assert!(run["tps"].as_f64().unwrap() > 0.0);
                assert!(
                    run["host_cpu_us_per_tx"].as_f64().unwrap() > 0.0,
                    "{name} {run}"
                );
                // The chaincode's own process, where the benchmark started it (counted
                // in 10 ms ticks: 40 transactions may take less).
                assert_eq!(
                    run["chaincode_cpu_us_per_tx"]
                        .as_f64()
                        .is_some_and(|c| c >= 0.0),
                    dev_mode,
                    "{name} {run}"
                );
                for p in ["p50_us", "p95_us", "p99_us", "max_us"] {
                    assert!(run[p].as_f64().unwrap() > 0.0, "{name} {p}");
                }
                (
                    run["transaction"].as_str().unwrap().to_owned(),
                    run["concurrency"].as_u64().unwrap(),
                )
            })
            .collect();
        seen.sort();
        // The null transaction is wasm's floor: measured for wasm only.
        let mut expected = vec![
            ("read".to_owned(), 1),
            ("read".to_owned(), 8),
            ("read".to_owned(), 32),
            ("transfer".to_owned(), 1),
            ("transfer".to_owned(), 8),
            ("transfer".to_owned(), 32),
        ];
        if name == "wasm" {
            expected.splice(0..0, [1, 8, 32].map(|c| ("null".to_owned(), c)));
        }
        assert_eq!(seen, expected, "{name}");
        // A cold start is a cold launch and the first transaction after it (wasm adds
        // making its runtime).
        let (cold_start, cold_launch) = (
            r["cold_start"]["samples_us"].as_array().unwrap(),
            r["cold_launch"]["samples_us"].as_array().unwrap(),
        );
        for (start, launch) in cold_start.iter().zip(cold_launch) {
            assert!(start.as_f64().unwrap() > launch.as_f64().unwrap(), "{name}");
        }
        // The wasm figure is the growth of this process's resident memory, which pages
        // already resident can make 0; the Node figures are a whole process's.
        let memory = r["memory_bytes"].as_u64().unwrap();
        assert!(name == "wasm" || memory > 0, "{name}");
        assert!(r["artifact_bytes"]["package"].as_u64().unwrap() > 0);
    }
    assert!(
        json["runtimes"]["wasm"]["artifact_bytes"]["compiled_artifact"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        json["runtimes"]["docker"]["artifact_bytes"]["image"]
            .as_u64()
            .unwrap()
            > 0
    );

    let summary = &json["summary"];
    for key in [
        "wasm_warm_launch_p50_us",
        "container_warm_launch_p50_us",
        "launch_ratio",
        "wasm_invoke_tps_c32",
        "node_invoke_tps_c32",
        "invoke_ratio",
        "wasm_cold_start_p50_us",
        "container_cold_start_p50_us",
        "cold_start_ratio",
        "wasm_null_tps_c32",
        "wasm_invoke_of_null",
        "gateway_evaluate_tps",
        "gateway_submit_tps",
        "native_invoke_tps_c32",
        "wasm_of_native_tps",
        "wasm_cpu_us_per_tx_c1",
        "native_cpu_us_per_tx_c1",
    ] {
        assert!(
            summary[key].as_f64().unwrap() > 0.0,
            "summary.{key}: {summary}"
        );
    }
    assert_eq!(summary["at_concurrency"], 32);

    // The Gateway runs: every transaction succeeded (submits committed VALID), beside
    // the signature-bound limits of this machine.
    let gateway = &json["gateway"];
    for mode in ["evaluate", "submit"] {
        let run = &gateway[mode];
        assert_eq!(run["mode"], mode);
        assert_eq!(run["concurrency"], 8);
        assert!(run["attempted"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(
            run["attempted"], run["succeeded"],
            "{mode}: {}",
            run["errors"]
        );
        assert_eq!(
            summary[format!("gateway_{mode}_tps")].as_f64(),
            run["tps"].as_f64()
        );
        assert!(
            gateway[format!("{mode}_signature_bound_tps")]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }

    let csv = report.csv();
    assert!(csv.starts_with("runtime,figure,transaction,concurrency,index,value_us\n"));
    // 2 installs × 2 runtimes; 2 + 2 + 2 launches and cold starts and 4 first invokes × 4;
    // wasm's 2 runtime setups; 6 × 40 invokes × 4, and wasm's 3 × 40 null transactions.
    assert_eq!(csv.lines().count(), 1 + 4 + 4 * 10 + 2 + 4 * 240 + 120);
    assert_eq!(json["runtimes"]["wasm"]["runtime_setup"]["n"], 2);
    assert_eq!(json["runtimes"]["docker"]["runtime_setup"]["n"], 0);
    let svg = report.launch_chart().unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    for label in ["wasm warm", "native cold", "docker cold", "process warm"] {
        assert!(svg.contains(label), "the chart labels {label}");
    }
    let table = report.table();
    assert!(table.starts_with("figure"), "{table}");
    assert!(
        table.contains("\nGateway (") && table.contains("\nevaluate       8"),
        "{table}"
    );
    assert!(table.contains("wasm advantage"), "{table}");
    // Host CPU per transaction is shown but given no ratio: it is all of a wasm
    // transaction's cost and only the peer's share of a Node one.
    let cpu_row = table
        .lines()
        .find(|l| l.starts_with("transfer c32 host CPU/tx (µs)"))
        .unwrap_or_else(|| panic!("no CPU row in\n{table}"));
    assert_eq!(cpu_row.split_whitespace().count(), 5 + 4, "{cpu_row}");
    assert!(!cpu_row.contains('×'), "{cpu_row}");
    // The chaincode process's CPU: n/a for wasm and docker.
    let cpu_row = table
        .lines()
        .find(|l| l.starts_with("transfer c1 chaincode CPU/tx (µs)"))
        .unwrap_or_else(|| panic!("no chaincode CPU row in\n{table}"));
    assert_eq!(cpu_row.matches("n/a").count(), 2, "{cpu_row}");
}
