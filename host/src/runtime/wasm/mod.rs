//! Wasm chaincode in wasmtime, bridged to the same handler as every other chaincode.
//!
//! Set-up is staged like Spin's factors: [`WasmRuntime::new`] is engine-wide (engine,
//! linker with WASI and the `cchost` imports, epoch ticker); [`WasmRuntime::compile`] is
//! per package (compile, check exports, `InstancePre`); each transaction gets a fresh
//! store and instance with its own fuel, memory limit, deadline and deterministic WASI.
//! [`WasmRuntime::start`] registers the chaincode with `ChaincodeSupport` over an
//! in-process stream: it goes REGISTER → READY and is executed exactly like external
//! chaincode, and each host call is a `ChaincodeMessage` to the handler.

mod engine;
mod guest;
mod imports;
mod shim;
mod wasi;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use wasmtime::{Engine, InstancePre, Linker, Module};

use crate::ids::PackageId;
use crate::support::{ChaincodeSupport, DEFAULT_EXECUTE_TIMEOUT};
use guest::GuestState;

pub use imports::HOST_CALL_FUEL;

/// Limits of wasm chaincode.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Fuel (about one unit per instruction) per transaction: the deterministic limit.
    pub fuel_per_tx: u64,
    /// Wall-clock backstop per transaction (local, not deterministic): tie it to the
    /// execute timeout.
    pub deadline: Duration,
    /// Linear memory per instance, in bytes.
    pub max_memory: usize,
    /// Table elements per instance.
    pub max_table_elements: usize,
    /// Transactions of one chaincode running at once.
    pub max_concurrent: usize,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            fuel_per_tx: 2_000_000_000,
            deadline: DEFAULT_EXECUTE_TIMEOUT,
            max_memory: 128 * 1024 * 1024,
            max_table_elements: 100_000,
            max_concurrent: 16,
        }
    }
}

/// Why wasm chaincode cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The engine could not be configured.
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// The module is not valid wasm, or uses a feature cchost does not allow.
    #[error("the chaincode module does not compile: {0}")]
    Compile(String),
    /// The module does not fit the cchost ABI (exports, imports).
    #[error("the chaincode module does not fit the cchost ABI: {0}")]
    Abi(String),
}

/// A compiled chaincode, ready to instantiate.
#[derive(Clone)]
pub struct WasmModule {
    pre: Arc<InstancePre<GuestState>>,
}

impl std::fmt::Debug for WasmModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmModule").finish_non_exhaustive()
    }
}

/// A running wasm chaincode; dropping it does not stop it, [`WasmChaincode::stop`] does.
#[derive(Debug)]
pub struct WasmChaincode {
    task: JoinHandle<()>,
}

impl WasmChaincode {
    /// Ends the chaincode's stream: it deregisters.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// The wasm runtime: one engine and linker for every wasm chaincode.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<GuestState>,
    config: WasmConfig,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WasmRuntime {
    /// The engine, the linker (WASI p1 + `cchost`), and the epoch ticker. Call inside a
    /// tokio runtime.
    pub fn new(config: WasmConfig) -> Result<Self, WasmError> {
        let engine = engine::engine().map_err(|e| WasmError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(|e| WasmError::Engine(e.to_string()))?;
        imports::add_to_linker(&mut linker).map_err(|e| WasmError::Engine(e.to_string()))?;
        engine::start_epoch_ticker(&engine);
        Ok(Self {
            engine,
            linker,
            config,
        })
    }

    /// Compiles `wasm` and links it: checks the ABI marker, entry points and memory, and
    /// that every import is one the host provides.
    pub fn compile(&self, wasm: &[u8]) -> Result<WasmModule, WasmError> {
        let module =
            Module::new(&self.engine, wasm).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        for (name, what) in [
            (
                cchost_abi::ABI_MARKER,
                "the ABI marker (use cchost_sdk::chaincode!)",
            ),
            (cchost_abi::ENTRY_INIT, "the init entry point"),
            (cchost_abi::ENTRY_INVOKE, "the invoke entry point"),
            (cchost_abi::MEMORY_EXPORT, "its memory"),
        ] {
            if module.get_export(name).is_none() {
                return Err(WasmError::Abi(format!(
                    "it does not export `{name}`, {what}"
                )));
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| WasmError::Abi(format!("{e:#}")))?;
        Ok(WasmModule { pre: Arc::new(pre) })
    }

    /// Starts `module` as chaincode `package_id`: it registers with `support` and serves
    /// transactions until stopped.
    pub fn start(
        &self,
        support: &ChaincodeSupport,
        package_id: &PackageId,
        module: &WasmModule,
    ) -> WasmChaincode {
        let task = tokio::spawn(shim::run(
            support.clone(),
            package_id.clone(),
            module.clone(),
            self.config.clone(),
        ));
        WasmChaincode { task }
    }
}
