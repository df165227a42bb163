//! The engine-wide stage: one wasmtime `Engine` for every wasm chaincode, configured for
//! deterministic, bounded execution, and the epoch ticker that makes guests yield and
//! bounds them in wall-clock time.

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::WasmConfig;

/// How often the epoch advances: how long a guest runs before it yields its runtime worker,
/// and the granularity of the wall-clock deadline.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Set to `1` to have the engine write a perf map of compiled guest code.
pub(crate) const PERFMAP_ENV: &str = "CCHOST_WASM_PERFMAP";

/// Largest wasm stack, in bytes: deep recursion traps with `StackOverflow`.
const MAX_WASM_STACK: usize = 512 * 1024;

/// Linear memory kept mapped and reset in place between instances of a pool slot (with
/// `pagemap_scan` only the pages a guest dirtied are reset): cheaper than `madvise` for
/// chaincode that touches little memory per transaction.
const KEEP_RESIDENT: usize = 1024 * 1024;

pub(crate) fn engine(limits: &WasmConfig) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    // A fresh instance per transaction from a pool of pre-reserved slots: instantiation
    // is a few microseconds. Every count and size is set: the defaults reserve 1000
    // slots of 4 GiB.
    let instances = limits.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(instances)
        .total_memories(instances)
        .total_tables(instances)
        .total_stacks(instances)
        .total_component_instances(0)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(limits.max_memory)
        .table_elements(limits.max_table_elements)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Deterministic limits: fuel counts instructions, so every peer runs out at the same
    // point. The epoch deadline is only a local backstop tied to the execute timeout.
    config.consume_fuel(true);
    config.epoch_interruption(true);
    // Every NaN a guest can observe is the canonical one.
    config.cranelift_nan_canonicalization(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    // Trap texts without host-specific backtraces.
    config.wasm_backtrace_max_frames(None);
    // What stable rustc emits for wasm32-wasip1 (bulk memory, multi-value, mutable
    // globals, non-trapping float-to-int, reference types, sign extension) stays on;
    // everything non-deterministic or not needed is off. Threads, GC, function references
    // and exceptions are not even compiled in (see the workspace's wasmtime features).
    config.wasm_memory64(false);
    config.wasm_multi_memory(false);
    config.wasm_relaxed_simd(false);
    config.wasm_gc(false);
    config.wasm_component_model(false);
    // A profiling aid: `CCHOST_WASM_PERFMAP=1` writes /tmp/perf-<pid>.map, so `perf`
    // names the guest's compiled functions.
    if std::env::var_os(PERFMAP_ENV).is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config)
}

/// Advances the epoch every [`EPOCH_TICK`] until the engine's last user is gone, from a
/// thread of its own: guests busy on every runtime worker cannot stop the clock that
/// makes them yield.
pub(crate) fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("cchost-wasm-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
    Ok(())
}
