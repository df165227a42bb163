//! Wasm chaincode in wasmtime, bridged to the same handler as every other chaincode.
//!
//! Set-up is staged like Spin's factors: [`WasmRuntime::new`] is engine-wide (engine,
//! linker with WASI and the `cchost` imports, the epoch thread); [`WasmRuntime::install`]
//! is per package (validate, compile or load the cached artifact, `InstancePre`); each
//! transaction gets a fresh store and instance with its own fuel, memory limit, deadline
//! and deterministic WASI, from a pool whose admission never deadlocks chaincode calling
//! chaincode. A guest yields its runtime worker at every epoch tick, so the execute
//! timeout bounds it and other work runs meanwhile.
//!
//! [`WasmRuntime::start`] registers the chaincode with `ChaincodeSupport`: REGISTER →
//! REGISTERED → READY as any chaincode, after which the handler hands it each INIT or
//! TRANSACTION by a call (the invocation runs in the caller's task) and each host call
//! is a `ChaincodeMessage` answered by the same handler code as a stream's.

pub mod builder;
mod cache;
mod engine;
mod guest;
mod imports;
mod pool;
mod remote;
mod shim;
mod validate;
mod wasi;

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use wasmtime::{Engine, InstancePre, Linker, Module, Store};

use crate::ids::PackageId;
use crate::launcher::{ChaincodeRuntime, LaunchError, RunningChaincode};
use crate::package::ChaincodePackage;
use crate::support::{ChaincodeSupport, DEFAULT_EXECUTE_TIMEOUT};
use cache::ArtifactCache;
use guest::GuestState;
use validate::{HostImports, Val};

pub use imports::{FUEL_PER_BYTE, HOST_CALL_FUEL};
pub use remote::{DRAIN_TIMEOUT, READY_TIMEOUT, RemoteChaincode, SessionEnd, SessionError};
pub use validate::StaticLimits;

/// Fuel and memory limits of one package, set by its chaincode definition, within the
/// runtime's own ([`WasmConfig::fuel_per_tx`], [`WasmConfig::max_memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WasmLimits {
    /// Fuel per transaction (`None`: the runtime's).
    pub fuel_per_tx: Option<u64>,
    /// Linear memory per instance, bytes (`None`: the runtime's; never above it).
    pub max_memory: Option<u64>,
}

/// Per-package limits, shared by the runtime (read at every transaction, so a change
/// holds from the next transaction on) and whoever sets them (the node, from committed
/// chaincode definitions).
#[derive(Debug, Clone, Default)]
pub struct PackageLimits(Arc<std::sync::RwLock<std::collections::HashMap<String, WasmLimits>>>);

impl PackageLimits {
    /// Sets (or with `None` clears) `package_id`'s limits.
    pub fn set(&self, package_id: &str, limits: Option<WasmLimits>) {
        let mut map = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match limits {
            Some(limits) => map.insert(package_id.to_owned(), limits),
            None => map.remove(package_id),
        };
    }

    /// The fuel per transaction and memory per instance `package_id` runs with.
    pub(crate) fn effective(&self, package_id: &str, config: &WasmConfig) -> (u64, usize) {
        let limits = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(package_id)
            .copied()
            .unwrap_or_default();
        let memory = limits.max_memory.map_or(config.max_memory, |m| {
            usize::try_from(m)
                .unwrap_or(usize::MAX)
                .min(config.max_memory)
        });
        (limits.fuel_per_tx.unwrap_or(config.fuel_per_tx), memory)
    }
}

/// Limits of wasm chaincode.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Fuel (about one unit per instruction) per transaction: the deterministic limit.
    pub fuel_per_tx: u64,
    /// Wall-clock bound per invocation (local, not deterministic): past it the guest traps
    /// with "chaincode exceeded its execution deadline". The execute timeout bounds the
    /// whole transaction as well; this bound also holds where no timeout wraps the call.
    pub deadline: Duration,
    /// Linear memory per instance, in bytes.
    pub max_memory: usize,
    /// Table elements per instance.
    pub max_table_elements: usize,
    /// Transactions of one chaincode running at once.
    pub max_concurrent: usize,
    /// Instances of all wasm chaincodes at once: the size of the pooling allocator.
    /// Transactions sent by the peer use at most three quarters of them (more wait for
    /// one); the rest is kept for chaincode called by chaincode, so that nested calls
    /// never deadlock.
    pub max_instances: u32,
    /// Limits checked before a module is compiled.
    pub static_limits: StaticLimits,
    /// Where compiled artifacts are kept, keyed by package hash and engine. `None`:
    /// compile in memory at every load.
    pub cache_dir: Option<PathBuf>,
    /// Limits of particular packages (from their chaincode definitions).
    pub package_limits: PackageLimits,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            fuel_per_tx: 2_000_000_000,
            deadline: DEFAULT_EXECUTE_TIMEOUT,
            max_memory: 128 * 1024 * 1024,
            max_table_elements: 100_000,
            max_concurrent: 16,
            max_instances: 64,
            static_limits: StaticLimits::default(),
            cache_dir: None,
            package_limits: PackageLimits::default(),
        }
    }
}

impl WasmConfig {
    /// Refuses values that would hang or break the runtime.
    pub fn validate(&self) -> Result<(), WasmError> {
        let checks = [
            (
                "fuel_per_tx must be greater than zero",
                self.fuel_per_tx > 0,
            ),
            (
                "deadline must be greater than zero",
                !self.deadline.is_zero(),
            ),
            (
                "max_memory must be at least one wasm page (65536 bytes)",
                self.max_memory >= 65_536,
            ),
            ("max_concurrent must be at least 1", self.max_concurrent > 0),
            ("max_instances must be at least 1", self.max_instances > 0),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((what, _)) => Err(WasmError::Config(format!(
                "invalid wasm configuration: {what}"
            ))),
            None => Ok(()),
        }
    }
}

/// Why wasm chaincode cannot be installed or loaded.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// A configuration value would hang or break the runtime.
    #[error("{0}")]
    Config(String),
    /// The engine could not be configured.
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// The module failed the install-time checks; the text says what to change.
    #[error("the chaincode module is refused: {0}")]
    Invalid(String),
    /// The module is not valid wasm, or uses a feature cchost does not allow.
    #[error("the chaincode module does not compile: {0}")]
    Compile(String),
    /// The module does not link against the host's imports.
    #[error("the chaincode module does not fit the cchost ABI: {0}")]
    Abi(String),
    /// The package is not a wasm package.
    #[error(transparent)]
    Package(#[from] crate::package::PackageError),
    /// Reading or writing the artifact cache failed.
    #[error("wasm artifact cache: {0}")]
    Cache(String),
}

/// A compiled chaincode, ready to instantiate.
#[derive(Clone)]
pub struct WasmModule {
    pre: Arc<InstancePre<GuestState>>,
    /// Fuel used by every invocation of this module so far.
    fuel_consumed: Arc<AtomicU64>,
}

impl WasmModule {
    /// The fuel every invocation of this module has used so far, failed ones included:
    /// the guest's instructions and what its host calls were charged. Fuel is
    /// deterministic, so the same transactions use the same fuel on every peer.
    pub fn fuel_consumed(&self) -> u64 {
        self.fuel_consumed.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for WasmModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmModule").finish_non_exhaustive()
    }
}

/// A running wasm chaincode; [`WasmChaincode::stop`] or dropping it stops it.
#[derive(Debug)]
pub struct WasmChaincode {
    task: JoinHandle<()>,
}

impl WasmChaincode {
    /// Ends the chaincode's stream: it deregisters, and no new invocation starts
    /// (invocations in progress run to their end or their deadline).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for WasmChaincode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The wasm runtime: one engine, linker and instance pool for every wasm chaincode.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<GuestState>,
    host_imports: HostImports,
    config: WasmConfig,
    cache: Option<ArtifactCache>,
    instances: Arc<pool::InstancePool>,
    compilations: AtomicU64,
    /// Modules loaded or compiled, by package hash: a relaunch starts at once.
    modules: std::sync::Mutex<std::collections::HashMap<[u8; 32], WasmModule>>,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WasmRuntime {
    /// The engine, the linker (WASI p1 + `cchost`), the artifact cache and the epoch
    /// ticker (a thread of its own, ending with the engine).
    pub fn new(config: WasmConfig) -> Result<Self, WasmError> {
        config.validate()?;
        let engine_error = |e: wasmtime::Error| WasmError::Engine(format!("{e:#}"));
        let engine = engine::engine(&config).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(engine_error)?;
        imports::add_to_linker(&mut linker).map_err(engine_error)?;
        let host_imports = list_functions(&engine, &linker);
        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| ArtifactCache::new(dir, &engine));
        engine::start_epoch_ticker(&engine)
            .map_err(|e| WasmError::Engine(format!("cannot start the epoch thread: {e}")))?;
        let instances = pool::InstancePool::new(config.max_instances as usize);
        Ok(Self {
            engine,
            linker,
            host_imports,
            config,
            cache,
            instances,
            compilations: AtomicU64::new(0),
            modules: std::sync::Mutex::default(),
        })
    }

    /// The install-time checks alone: the ABI, the imports and the static limits.
    pub fn validate(&self, wasm: &[u8]) -> Result<(), WasmError> {
        let max_pages = self.config.max_memory as u64 / 65_536;
        validate::validate(
            wasm,
            &self.host_imports,
            &self.config.static_limits,
            max_pages,
            self.config.max_table_elements as u64,
        )
    }

    /// A module in the text format that imports every function this runtime's linker
    /// provides (WASI p1 and `cchost`), each with its type: the menu for tools that
    /// generate chaincode (`wasm-smith`'s available imports).
    pub fn imports_wat(&self) -> String {
        let list = |vals: &[validate::Val]| {
            vals.iter()
                .map(validate::Val::wat_name)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut wat = String::from("(module\n");
        for ((module, name), (params, results)) in &self.host_imports {
            wat.push_str(&format!(
                "  (import {module:?} {name:?} (func (param {}) (result {})))\n",
                list(params),
                list(results)
            ));
        }
        wat.push(')');
        wat
    }

    /// Validates and compiles `wasm` in memory, without the cache.
    pub fn compile(&self, wasm: &[u8]) -> Result<WasmModule, WasmError> {
        self.validate(wasm)?;
        self.compilations.fetch_add(1, Ordering::Relaxed);
        let module =
            Module::new(&self.engine, wasm).map_err(|e| WasmError::Compile(format!("{e:#}")))?;
        self.link(&module)
    }

    /// Installs or loads a wasm package: from memory when this runtime loaded it before,
    /// else from its cached artifact when there is one (no compilation), else validated,
    /// compiled and stored in the cache (when there is one). Installing an installed
    /// package changes nothing.
    pub fn install(&self, package: &ChaincodePackage) -> Result<WasmModule, WasmError> {
        if let Some(module) = self
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(package.hash())
        {
            return Ok(module.clone());
        }
        let module = self.install_uncached(package)?;
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*package.hash(), module.clone());
        Ok(module)
    }

    fn install_uncached(&self, package: &ChaincodePackage) -> Result<WasmModule, WasmError> {
        check_no_assets(package)?;
        let Some(cache) = &self.cache else {
            return self.compile(package.wasm()?);
        };
        if let Some(module) = self.load_cached(cache, package)? {
            return Ok(module);
        }
        let wasm = package.wasm()?;
        let artifact = self.precompile(wasm)?;
        cache.store(package.hash(), &artifact)?;
        self.load_cached(cache, package)?
            .ok_or_else(|| WasmError::Cache("the artifact just written is gone".into()))
    }

    /// The install-time checks, then `wasm` compiled to an artifact of this engine.
    fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>, WasmError> {
        self.validate(wasm)?;
        self.compilations.fetch_add(1, Ordering::Relaxed);
        self.engine
            .precompile_module(wasm)
            .map_err(|e| WasmError::Compile(format!("{e:#}")))
    }

    /// How many modules this runtime has compiled (loads from the cache do not count).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    fn load_cached(
        &self,
        cache: &ArtifactCache,
        package: &ChaincodePackage,
    ) -> Result<Option<WasmModule>, WasmError> {
        let path = cache.path(package.hash());
        if !path.exists() {
            return Ok(None);
        }
        // SAFETY: `deserialize_file` trusts the file to be an artifact of a compatible
        // engine. The cache directory belongs to this host; it holds only what
        // `precompile_module` of an engine with this compatibility hash wrote (the
        // directory is named after it), written atomically. Keep it unwritable by others.
        match unsafe { Module::deserialize_file(&self.engine, &path) } {
            Ok(module) => self.link(&module).map(Some),
            Err(e) => {
                // A damaged artifact is recompiled rather than trusted or kept.
                tracing::warn!(path = %path.display(), error = %e, "dropping an unusable wasm artifact");
                cache.remove(package.hash())?;
                Ok(None)
            }
        }
    }

    fn link(&self, module: &Module) -> Result<WasmModule, WasmError> {
        let pre = self
            .linker
            .instantiate_pre(module)
            .map_err(|e| WasmError::Abi(format!("{e:#}")))?;
        Ok(WasmModule {
            pre: Arc::new(pre),
            fuel_consumed: Arc::default(),
        })
    }

    /// Writes a build of a wasm package into `dir` (an external builder's
    /// `BUILD_OUTPUT_DIR`): the install-time checks first, with install's errors, then the
    /// module ([`BUILD_MODULE`]) and its precompiled artifact ([`BUILD_ARTIFACT`]).
    pub fn write_build(&self, package: &ChaincodePackage, dir: &Path) -> Result<(), WasmError> {
        check_no_assets(package)?;
        let wasm = package.wasm()?;
        let artifact = self.precompile(wasm)?;
        let write = |name: &str, bytes: &[u8]| {
            crate::package::write_atomically(&dir.join(name), bytes)
                .map_err(|e| WasmError::Cache(format!("writing {}: {e}", dir.join(name).display())))
        };
        write(BUILD_MODULE, wasm)?;
        write(BUILD_ARTIFACT, &artifact)
    }

    /// Loads a build [`write_build`](Self::write_build) wrote: its artifact when this
    /// engine can use it, else the module, checked and compiled again (a build kept by a
    /// peer whose cchost was upgraded since).
    pub fn load_build(&self, dir: &Path) -> Result<WasmModule, WasmError> {
        let artifact = dir.join(BUILD_ARTIFACT);
        // SAFETY: `deserialize_file` trusts the file to be an artifact of a compatible
        // engine. A build directory holds what `write_build` wrote there, and belongs
        // to the peer that ran the build (Fabric keeps it under its file system path);
        // wasmtime also refuses artifacts of another version or configuration.
        match unsafe { Module::deserialize_file(&self.engine, &artifact) } {
            Ok(module) => self.link(&module),
            Err(e) => {
                tracing::warn!(path = %artifact.display(), error = %e, "compiling the module again: its artifact is unusable");
                let module = dir.join(BUILD_MODULE);
                let wasm = std::fs::read(&module)
                    .map_err(|e| WasmError::Cache(format!("reading {}: {e}", module.display())))?;
                self.compile(&wasm)
            }
        }
    }

    /// `module` as chaincode that registers as `package_id` with peers at the other end
    /// of gRPC streams ([`RemoteChaincode::serve`]).
    pub fn remote(&self, module: &WasmModule, package_id: PackageId) -> RemoteChaincode {
        RemoteChaincode {
            module: module.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(self.config.max_concurrent)),
            config: self.config.clone(),
            instances: Arc::clone(&self.instances),
            package_id,
        }
    }

    /// Starts `module` as chaincode `package_id`: it registers with `support` and serves
    /// transactions until stopped.
    pub fn start(
        &self,
        support: &ChaincodeSupport,
        package_id: &PackageId,
        module: &WasmModule,
    ) -> WasmChaincode {
        let stream = shim::connect(
            support,
            package_id,
            module.clone(),
            self.config.clone(),
            Arc::clone(&self.instances),
        );
        // The task only keeps the chaincode's side of the stream open until stopped.
        let task = tokio::spawn(async move {
            let _stream = stream;
            std::future::pending::<()>().await;
        });
        WasmChaincode { task }
    }
}

/// The module in a build directory ([`WasmRuntime::write_build`]).
pub const BUILD_MODULE: &str = "chaincode.wasm";
/// The precompiled module in a build directory.
pub const BUILD_ARTIFACT: &str = "chaincode.cwasm";

/// Read-only assets next to the module are not supported yet: real files would show
/// each peer's inode numbers and timestamps through WASI, which is not deterministic.
/// `META-INF/` (CouchDB index definitions, for the peer) is no asset: the guest never
/// sees it.
fn check_no_assets(package: &ChaincodePackage) -> Result<(), WasmError> {
    let module = package.metadata().path.as_str();
    match package
        .code_paths()
        .find(|path| *path != module && !path.starts_with("META-INF/"))
    {
        Some(other) => Err(WasmError::Invalid(format!(
            "the package ships {other:?} besides the module {module:?}: read-only assets are \
             not supported yet; embed them in the module (e.g. `include_bytes!`)"
        ))),
        None => Ok(()),
    }
}

/// Every function `linker` defines, with its signature: what a module may import.
fn list_functions(engine: &Engine, linker: &Linker<GuestState>) -> HostImports {
    let mut store = Store::new(engine, GuestState::detached());
    let defined: Vec<_> = linker
        .iter(&mut store)
        .map(|(module, name, item)| (module.to_owned(), name.to_owned(), item))
        .collect();
    defined
        .into_iter()
        .filter_map(|(module, name, item)| {
            let ty = item.into_func()?.ty(&store);
            let params = ty.params().map(|v| Val::from_wasmtime(&v)).collect();
            let results = ty.results().map(|v| Val::from_wasmtime(&v)).collect();
            Some(((module, name), (params, results)))
        })
        .collect()
}

impl RunningChaincode for WasmChaincode {
    fn stop(&self) {
        WasmChaincode::stop(self);
    }
}

impl ChaincodeRuntime for WasmRuntime {
    fn name(&self) -> &'static str {
        "wasm"
    }

    fn handles(&self, kind: &str) -> bool {
        kind == crate::package::WASM_TYPE
    }

    fn install(&self, package: &ChaincodePackage) -> Result<(), LaunchError> {
        WasmRuntime::install(self, package)?;
        Ok(())
    }

    fn start<'a>(
        &'a self,
        package: &'a ChaincodePackage,
        support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>> {
        Box::pin(async move {
            let module = self.install(package)?;
            let running: Box<dyn RunningChaincode> =
                Box::new(WasmRuntime::start(self, support, package.id(), &module));
            Ok(running)
        })
    }
}
