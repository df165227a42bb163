//! Hostile wasm guests (loops, memory and tables, stack, compile bombs, interface, every
//! trap, floats, WASI, host-API abuse, malformed binaries, pooling): one `.wat` per item
//! under `tests/hostile/`
//! (its first lines say what it does and what must happen), plus generated compile bombs
//! and malformed binaries too big or too broken to keep as text.
//!
//! Every test proves three things: the exact error (class and text, with no host-specific
//! detail), that it is the same on every run, and that the host then serves a benign
//! transaction. Runtime failures run three times on a pool of two instances, so a leaked
//! instance slot would hang the third run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cchost::package::{ChaincodePackage, build_wasm_package};
use cchost::proto::protos::chaincode_message::Type;
use cchost::runtime::wasm::{HOST_CALL_FUEL, WasmChaincode, WasmConfig, WasmError, WasmRuntime};
use cchost::support::{ExecuteError, ExecuteResult, SupportConfig};

use crate::host::TestHost;

const FUEL: u64 = 20_000_000;
const MAX_MEMORY: usize = 16 * 1024 * 1024;

/// Compiled artifacts shared by every test of this binary: the asset guest compiles once.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-wasm-cache")
}

fn config() -> WasmConfig {
    WasmConfig {
        fuel_per_tx: FUEL,
        max_memory: MAX_MEMORY,
        max_concurrent: 2,
        max_instances: 2,
        cache_dir: Some(cache_dir()),
        ..WasmConfig::default()
    }
}

fn hostile(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hostile")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn package(label: &str, wasm: &[u8]) -> ChaincodePackage {
    ChaincodePackage::parse(&build_wasm_package(label, "guest", wasm).unwrap()).unwrap()
}

/// A host with the asset guest (built by rustc) and room for one hostile chaincode.
struct Bench {
    host: TestHost,
    runtime: WasmRuntime,
    running: Vec<WasmChaincode>,
}

impl Bench {
    async fn new(config: WasmConfig) -> Self {
        let mut bench = Self {
            host: TestHost::start(SupportConfig::default()).await,
            runtime: WasmRuntime::new(config).unwrap(),
            running: Vec::new(),
        };
        let asset = std::fs::read(env!("GUEST_ASSET_WASM")).unwrap();
        bench.launch("asset", &package("asset", &asset)).await;
        bench
    }

    async fn launch(&mut self, name: &str, package: &ChaincodePackage) {
        let module = self.runtime.install(package).unwrap();
        self.host.support.define(name, package.id().clone());
        self.host.support.expect_registration(package.id());
        self.running.push(
            self.runtime
                .start(&self.host.support, package.id(), &module),
        );
        assert!(
            self.host
                .support
                .wait_ready(package.id(), Duration::from_secs(10))
                .await
        );
    }

    /// Installs and starts a hostile guest as chaincode `hostile`.
    async fn launch_hostile(&mut self, wasm: &[u8]) {
        self.launch("hostile", &package("hostile", wasm)).await;
    }

    async fn invoke(&self, chaincode: &str) -> Result<ExecuteResult, ExecuteError> {
        self.host.invoke(chaincode, &["go"]).await.1
    }

    /// A put read back by a get on the asset guest.
    async fn assert_benign(&self) {
        let (proposal, result) = self.host.invoke("asset", &["asset:put", "k", "v"]).await;
        let result = result.unwrap();
        assert_eq!(result.response.status, 200, "{:?}", result.response);
        self.host.commit(&result, &proposal);
        let (_, result) = self.host.invoke("asset", &["asset:get", "k"]).await;
        assert_eq!(result.unwrap().response.payload, b"v");
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for chaincode in &self.running {
            chaincode.stop();
        }
    }
}

/// `name` installs, and each of three runs fails with exactly `expected`; then a benign
/// transaction succeeds.
async fn fails_with(name: &str, expected: &str) {
    fails_with_config(name, config(), expected).await;
}

async fn fails_with_config(name: &str, config: WasmConfig, expected: &str) -> Bench {
    let mut bench = Bench::new(config).await;
    bench.launch_hostile(&hostile(name)).await;
    for _ in 0..3 {
        match bench.invoke("hostile").await {
            Err(ExecuteError::ChaincodeFailed(text)) => assert_eq!(text, expected, "{name}"),
            other => panic!("{name}: expected the chaincode to fail, got {other:?}"),
        }
    }
    bench.assert_benign().await;
    bench
}

/// `name` runs three times and answers status 200 with exactly `payload`.
async fn answers(name: &str, payload: &[u8]) {
    let mut bench = Bench::new(config()).await;
    bench.launch_hostile(&hostile(name)).await;
    for _ in 0..3 {
        let result = bench.invoke("hostile").await.unwrap();
        assert_eq!(result.response.status, 200, "{name}: {:?}", result.response);
        assert_eq!(result.response.payload, payload, "{name}");
    }
    bench.assert_benign().await;
}

/// Installing `wasm` is refused with exactly `expected`; compilation was never reached.
async fn refused_bytes(wasm: &[u8], expected: &str) {
    let bench = Bench::new(config()).await;
    let before = bench.runtime.compilations();
    let error = bench
        .runtime
        .install(&package("hostile", wasm))
        .unwrap_err();
    assert!(
        matches!(error, WasmError::Invalid(_)),
        "expected an install-time refusal, got {error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("the chaincode module is refused: {expected}")
    );
    assert_eq!(bench.runtime.compilations(), before, "nothing was compiled");
    bench.assert_benign().await;
}

async fn refused(name: &str, expected: &str) {
    refused_bytes(&hostile(name), expected).await;
}

// Loops.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_loop_runs_out_of_fuel() {
    fails_with("cpu_loop", "chaincode ran out of fuel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_loop_with_fuel_to_spare_hits_the_wall_clock_deadline() {
    let config = WasmConfig {
        fuel_per_tx: u64::MAX / 2,
        deadline: Duration::from_millis(200),
        ..config()
    };
    fails_with_config(
        "cpu_loop",
        config,
        "chaincode exceeded its execution deadline",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_function_is_refused_at_install() {
    refused(
        "start_loop",
        "it has a start function: cchost runs guest code only inside cchost_init/cchost_invoke, \
         where fuel and deadlines apply; remove the start section",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_indirect_loop_runs_out_of_fuel() {
    fails_with("call_indirect_loop", "chaincode ran out of fuel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_host_calls_pays_fuel_per_call_and_runs_out() {
    let bench = fails_with_config("host_call_loop", config(), "chaincode ran out of fuel").await;
    // Three runs; each could afford at most FUEL / HOST_CALL_FUEL calls.
    let calls = bench.host.support.requests_received(Type::GetState);
    assert!(
        calls <= 3 * FUEL / HOST_CALL_FUEL + 1,
        "{calls} GET_STATE calls"
    );
    assert!(
        calls >= 3 * (FUEL / HOST_CALL_FUEL) / 2,
        "{calls} GET_STATE calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_calls_pay_the_host_call_fuel_too() {
    fails_with("wasi_call_loop", "chaincode ran out of fuel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_are_paid_per_byte() {
    fails_with("random_get_bytes", "chaincode ran out of fuel").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_paid_per_byte_as_they_arrive_read_or_not() {
    let mut bench = Bench::new(config()).await;
    bench.host.put("hostile", "big", vec![7; 1 << 20]);
    bench.launch_hostile(&hostile("big_reply_loop")).await;
    for _ in 0..3 {
        match bench.invoke("hostile").await {
            Err(ExecuteError::ChaincodeFailed(text)) => {
                assert_eq!(text, "chaincode ran out of fuel");
            }
            other => panic!("expected the chaincode to fail, got {other:?}"),
        }
    }
    bench.assert_benign().await;
}

// Memory and tables.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4_gib_initial_memory_is_refused_at_install() {
    refused(
        "memory_initial_huge",
        "its memory starts at 65536 pages of 64 KiB; the limit is 256 pages (lower the initial \
         memory, e.g. `-C link-arg=--initial-memory`)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_grow_past_the_limit_returns_minus_one() {
    answers("memory_grow_bomb", b"grow refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_segment_outside_memory_fails_instantiation() {
    fails_with(
        "data_segment_oob",
        "chaincode trapped: out of bounds memory access",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_ten_million_elements_is_refused_at_install() {
    refused(
        "table_huge",
        "its table starts with 10000000 elements; the limit is 100000",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_grow_past_the_limit_returns_minus_one() {
    answers("table_grow_bomb", b"grow refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory64_shared_memory_and_multi_memory_are_refused_at_install() {
    refused(
        "memory64",
        "its memory is 64-bit: memory64 is not supported",
    )
    .await;
    refused(
        "shared_memory",
        "its memory is shared: threads are not supported (build without `+atomics`)",
    )
    .await;
    refused("multi_memory", "it has 2 memories; the limit is 1").await;
}

// Stack.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_exhausts_the_stack() {
    fails_with("deep_recursion", "chaincode trapped: call stack exhausted").await;
}

// Every trap.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_unreachable() {
    fails_with(
        "trap_unreachable",
        "chaincode trapped: wasm `unreachable` instruction executed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_integer_divide_by_zero() {
    fails_with(
        "trap_div_by_zero",
        "chaincode trapped: integer divide by zero",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_integer_overflow() {
    fails_with("trap_int_overflow", "chaincode trapped: integer overflow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_nan_to_integer() {
    fails_with(
        "trap_nan_to_int",
        "chaincode trapped: invalid conversion to integer",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_load_out_of_bounds() {
    fails_with(
        "trap_load_oob",
        "chaincode trapped: out of bounds memory access",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_bulk_copy_and_fill_out_of_bounds() {
    fails_with(
        "trap_bulk_copy_oob",
        "chaincode trapped: out of bounds memory access",
    )
    .await;
    fails_with(
        "trap_bulk_fill_oob",
        "chaincode trapped: out of bounds memory access",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_call_indirect_null_mistyped_and_out_of_table() {
    fails_with(
        "trap_call_indirect_null",
        "chaincode trapped: uninitialized element",
    )
    .await;
    fails_with(
        "trap_call_indirect_mistyped",
        "chaincode trapped: indirect call type mismatch",
    )
    .await;
    fails_with(
        "trap_table_oob",
        "chaincode trapped: undefined element: out of bounds table access",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_exit_ends_the_transaction_not_the_host() {
    fails_with("proc_exit", "chaincode exited with code 3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_exit_past_wasis_largest_status_is_a_broken_wasi_abi() {
    fails_with(
        "proc_exit_status_too_large",
        "chaincode broke the WASI ABI: exit with invalid exit status outside of [0..126)",
    )
    .await;
}

// Floats and WASI.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasi_result_pointer_past_memory_is_a_broken_wasi_abi() {
    fails_with(
        "wasi_pointer_past_memory",
        "chaincode broke the WASI ABI: Pointer out of bounds: Region { start: 65532, len: 8 }",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_payloads_are_canonical() {
    answers("nan_payload", &0x7fc0_0000_u32.to_le_bytes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_files_sockets_and_stdout_floods_get_errnos_not_the_host() {
    // EBADF (8) for the file (no preopened directories) and the socket; once the 64 KiB
    // stdout capture is full, fd_write fails with EIO (29).
    answers("wasi_escape", &[8, 8, 29]).await;
}

// Host-API abuse.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_past_the_end_of_memory_breaks_the_abi() {
    fails_with(
        "abi_pointer_past_memory",
        "chaincode broke the cchost ABI: a pointer and length reach past the end of memory",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_lengths_break_the_abi() {
    fails_with(
        "abi_huge_length",
        "chaincode broke the cchost ABI: a length of 4294967295 bytes exceeds the limit of 16777216",
    )
    .await;
    fails_with(
        "abi_huge_key",
        "chaincode broke the cchost ABI: a length of 10000000 bytes exceeds the limit of 65536",
    )
    .await;
}

// Interface.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_mistyped_imports_are_refused_at_install() {
    refused(
        "unknown_import",
        "it imports `env::now`, which cchost does not provide: chaincode may import the \
         `cchost` functions (through cchost-sdk) and WASI preview 1; remove the code or \
         dependency that needs `env::now`",
    )
    .await;
    refused(
        "mistyped_import",
        "it imports `cchost::get_state` as (i32) -> (i32), but cchost provides \
         (i32, i32, i32, i32) -> (i64): rebuild against a cchost-sdk of ABI v1",
    )
    .await;
    refused(
        "imported_memory",
        "it imports `env::memory`, which is not a function: chaincode defines its own memory, \
         tables and globals",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_mistyped_entry_points_and_other_abi_versions_are_refused_at_install() {
    refused(
        "missing_invoke",
        "it does not export `cchost_invoke`: declare the chaincode with `cchost_sdk::chaincode!`",
    )
    .await;
    refused(
        "mistyped_invoke",
        "its export `cchost_invoke` is not a function (i32) -> (i32)",
    )
    .await;
    refused(
        "wrong_abi_version",
        "it was built for `cchost_abi_v2`, but this host speaks `cchost_abi_v1`: rebuild it \
         against a cchost-sdk of ABI v1",
    )
    .await;
}

// Pooling.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_slot_reused_by_the_next_instance_holds_no_secret() {
    // One instance in the pool: every run reuses the slot the previous one dirtied.
    let mut bench = Bench::new(WasmConfig {
        max_instances: 1,
        max_concurrent: 1,
        ..config()
    })
    .await;
    bench.launch_hostile(&hostile("pool_secret")).await;
    for _ in 0..5 {
        let result = bench.invoke("hostile").await.unwrap();
        assert_eq!(result.response.payload, b"clean");
    }
    bench.assert_benign().await;
}

// Compile bombs and interface floods, generated.

/// A module with the ABI's exports, `extra` fields, and an invoke of `body`.
fn module(extra: &str, body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32) {body})
  {extra})"#
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_functions_of_a_thousand_parameters_are_refused_at_install() {
    let params = "(param i32) ".repeat(1000);
    let funcs: String = (0..20_000)
        .map(|_| "(func (type $wide))".to_owned())
        .collect();
    let wasm = module(
        &format!("(type $wide (func {params})) {funcs}"),
        "(i32.const 0)",
    );
    refused_bytes(
        &wasm,
        "it has 1000 parameters and results in one function type; the limit is 128",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_arm_br_table_is_refused_at_install() {
    let targets = "0 ".repeat(1_000_000);
    let wasm = module(
        "",
        &format!("(block (br_table {targets} (local.get 0))) (i32.const 0)"),
    );
    refused_bytes(
        &wasm,
        "it has 999999 targets in one br_table; the limit is 65536",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_a_hundred_thousand_blocks_deep_is_refused_at_install() {
    let body = format!(
        "{}{}(i32.const 0)",
        "(block ".repeat(100_000),
        ")".repeat(100_000)
    );
    refused_bytes(
        &module("", &body),
        "it has 10001 blocks nested in one another; the limit is 10000",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_of_a_hundred_thousand_locals_is_refused_at_install() {
    let body = format!("{}(i32.const 0)", "(local i64) ".repeat(100_000));
    refused_bytes(
        &module("", &body),
        "it has 100000 locals in one function; the limit is 50000",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_exports_or_ten_thousand_imports_are_refused_at_install() {
    let exports: String = (0..100_000)
        .map(|i| format!("(export \"e{i}\" (func 0))"))
        .collect();
    refused_bytes(
        &module(&exports, "(i32.const 0)"),
        "it has 100004 exports; the limit is 1024",
    )
    .await;
    let imports: String = (0..10_000)
        .map(|i| format!("(import \"cchost\" \"log{i}\" (func))"))
        .collect();
    refused_bytes(
        &wat::parse_str(format!("(module {imports})")).unwrap(),
        "it has 10000 imports; the limit is 512",
    )
    .await;
}

// Malformed binaries.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_corrupt_binaries_are_refused_at_install() {
    let good = hostile("cpu_loop");
    refused_bytes(
        &good[..good.len() - 3],
        "not a wasm module: unexpected end-of-file (at offset 0x6f)",
    )
    .await;
    refused_bytes(
        b"\0wasm\x01\0\0\0",
        "not a wasm module: magic header not detected: bad magic number - expected=[\n    0x0,\n    0x61,\n    0x73,\n    0x6d,\n] actual=[\n    0x0,\n    0x77,\n    0x61,\n    0x73,\n] (at offset 0x0)",
    )
    .await;
    // A type section whose count is an over-long LEB128 (six bytes).
    refused_bytes(
        b"\0asm\x01\0\0\0\x01\x06\x80\x80\x80\x80\x80\x00",
        "not a wasm module: invalid var_u32: integer representation too long (at offset 0xe)",
    )
    .await;
    // Two type sections.
    refused_bytes(
        b"\0asm\x01\0\0\0\x01\x01\x00\x01\x01\x00",
        "not a wasm module: section out of order (at offset 0xd)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_is_refused_at_install() {
    refused_bytes(
        b"\0asm\x0d\0\x01\0",
        "it is a component; cchost runs core wasm modules (build with `--target wasm32-wasip1`)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_package_loads_from_the_artifact_cache_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let asset = std::fs::read(env!("GUEST_ASSET_WASM")).unwrap();
    let package = package("asset", &asset);
    let cached = WasmConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..config()
    };
    let first = WasmRuntime::new(cached.clone()).unwrap();
    first.install(&package).unwrap();
    first.install(&package).unwrap();
    assert_eq!(first.compilations(), 1);
    // Another runtime (a restarted peer) on the same cache launches without compiling.
    let mut bench = Bench {
        host: TestHost::start(SupportConfig::default()).await,
        runtime: WasmRuntime::new(cached).unwrap(),
        running: Vec::new(),
    };
    bench.launch("asset", &package).await;
    assert_eq!(bench.runtime.compilations(), 0);
    bench.assert_benign().await;
    // A damaged artifact is dropped and recompiled, never trusted.
    let artifact = std::fs::read_dir(dir.path())
        .unwrap()
        .flat_map(|engine| std::fs::read_dir(engine.unwrap().path()).unwrap())
        .map(|file| file.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    // Replaced, not rewritten in place: a running module maps the file, and truncating
    // a mapped file under it is a SIGBUS (cchost itself only ever renames into the cache).
    drop(bench);
    drop(first);
    let damaged = artifact.with_extension("tmp");
    std::fs::write(&damaged, b"garbage").unwrap();
    std::fs::rename(&damaged, &artifact).unwrap();
    let third = WasmRuntime::new(WasmConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..config()
    })
    .unwrap();
    third.install(&package).unwrap();
    assert_eq!(third.compilations(), 1);
}
