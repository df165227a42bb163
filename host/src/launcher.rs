//! One launcher for every kind of chaincode: it installs packages, and on demand starts
//! the one a chaincode definition names with the runtime that handles its type, then waits
//! (up to the startup timeout) for it to register with [`ChaincodeSupport`] and go READY.
//! Wasm chaincode runs in-process ([`crate::runtime::wasm`]); the Docker runtime joins
//! through the same [`ChaincodeRuntime`] trait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::ids::PackageId;
use crate::metrics::LaunchOutcome;
use crate::package::{ChaincodePackage, PackageError, PackageStore};
use crate::runtime::wasm::{WasmChaincode, WasmError, WasmRuntime};
use crate::support::ChaincodeSupport;

/// Fabric's `chaincode.startuptimeout` default.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a package could not be installed or started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The package file or store.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// No runtime starts packages of this type.
    #[error("no runtime starts chaincode of type {0:?}")]
    UnknownType(String),
    /// The wasm runtime refused or failed the package.
    #[error(transparent)]
    Wasm(#[from] WasmError),
    /// The chaincode did not register and go READY in time (Fabric's text, and the
    /// timeout).
    #[error("timeout expired while starting chaincode {package_id} (startup timeout {timeout:?})")]
    StartupTimeout {
        /// The package started.
        package_id: PackageId,
        /// The startup timeout.
        timeout: Duration,
    },
    /// The runtime could not start the chaincode.
    #[error("starting chaincode {package_id}: {reason}")]
    Start {
        /// The package started.
        package_id: PackageId,
        /// What failed.
        reason: String,
    },
}

/// [`RunningChaincode::exited`] for a runtime whose watcher task sets `ended` to the
/// reason when the chaincode ends by itself. A sender dropped without a reason means the
/// chaincode was stopped, not ended: that never resolves.
pub fn wait_exited(
    ended: &tokio::sync::watch::Receiver<Option<String>>,
) -> BoxFuture<'static, String> {
    let mut ended = ended.clone();
    Box::pin(async move {
        let reason = match ended.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    })
}

/// A started chaincode, as its runtime tracks it.
pub trait RunningChaincode: Send + Sync + std::fmt::Debug {
    /// Stops it: its stream ends and it deregisters.
    fn stop(&self);

    /// Resolves when the chaincode ended by itself (its process exited, its stream
    /// closed), with what is known about why. The launcher reports an exit before
    /// REGISTER at once instead of waiting out the startup timeout. Runtimes that cannot
    /// tell never resolve it.
    fn exited(&self) -> BoxFuture<'_, String> {
        Box::pin(std::future::pending())
    }
}

/// What starts chaincode of some package types.
pub trait ChaincodeRuntime: Send + Sync + std::fmt::Debug {
    /// The runtime's name, the `runtime` label of its metrics (`wasm`, `ccaas`, ...).
    fn name(&self) -> &'static str;

    /// Whether this runtime starts packages of `metadata.json` type `kind`.
    fn handles(&self, kind: &str) -> bool;

    /// Prepares an installed package (validate, compile, build an image). Idempotent.
    fn install(&self, package: &ChaincodePackage) -> Result<(), LaunchError>;

    /// Starts `package`; it must then register with `support` as `package.id()`.
    fn start<'a>(
        &'a self,
        package: &'a ChaincodePackage,
        support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>>;
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
            let module = self.load(package)?;
            let running: Box<dyn RunningChaincode> =
                Box::new(WasmRuntime::start(self, support, package.id(), &module));
            Ok(running)
        })
    }
}

/// Installs packages and starts them on demand.
#[derive(Debug)]
pub struct Launcher {
    support: ChaincodeSupport,
    packages: PackageStore,
    runtimes: Vec<Arc<dyn ChaincodeRuntime>>,
    startup_timeout: Duration,
    running: Mutex<HashMap<PackageId, Box<dyn RunningChaincode>>>,
    /// One launch at a time per package.
    launching: Mutex<HashMap<PackageId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Launcher {
    /// A launcher over `packages` that starts chaincode with the first of `runtimes` that
    /// handles its type.
    pub fn new(
        support: ChaincodeSupport,
        packages: PackageStore,
        runtimes: Vec<Arc<dyn ChaincodeRuntime>>,
        startup_timeout: Duration,
    ) -> Self {
        Self {
            support,
            packages,
            runtimes,
            startup_timeout,
            running: Mutex::default(),
            launching: Mutex::default(),
        }
    }

    /// Installs a package file: saves it and lets its runtime prepare it (for wasm:
    /// validate and precompile). Returns its id.
    pub fn install(&self, package: &[u8]) -> Result<PackageId, LaunchError> {
        install(&self.packages, &self.runtimes, package)
    }

    /// The installed packages.
    pub fn installed(&self) -> Result<Vec<PackageId>, LaunchError> {
        Ok(self.packages.list()?)
    }

    /// Makes sure `package_id` runs and is READY: starts it when it is not, and waits for
    /// its registration up to the startup timeout.
    pub async fn launch(&self, package_id: &PackageId) -> Result<(), LaunchError> {
        if self.support.is_ready(package_id) {
            return Ok(());
        }
        let lock = Arc::clone(
            self.launching
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(package_id.clone())
                .or_default(),
        );
        let _launching = lock.lock().await;
        if self.support.is_ready(package_id) {
            return Ok(());
        }
        self.stop(package_id);
        let package = self.packages.load(package_id)?;
        let runtime = self.runtime_for(&package)?;
        let metrics = self.support.metrics();
        metrics.set_runtime(package_id, runtime.name());
        let started = std::time::Instant::now();
        self.support.expect_registration(package_id);
        let running = match runtime.start(&package, &self.support).await {
            Ok(running) => running,
            Err(e) => {
                metrics.launch(package_id, started.elapsed(), LaunchOutcome::Failed);
                return Err(e);
            }
        };
        let ready = tokio::select! {
            ready = self.support.wait_ready(package_id, self.startup_timeout) => Ok(ready),
            reason = running.exited() => Err(reason),
        };
        match ready {
            Ok(true) => {}
            Ok(false) => {
                running.stop();
                metrics.launch(package_id, started.elapsed(), LaunchOutcome::TimedOut);
                return Err(LaunchError::StartupTimeout {
                    package_id: package_id.clone(),
                    timeout: self.startup_timeout,
                });
            }
            Err(reason) => {
                running.stop();
                metrics.launch(package_id, started.elapsed(), LaunchOutcome::Failed);
                return Err(LaunchError::Start {
                    package_id: package_id.clone(),
                    reason: format!("it ended before registering: {reason}"),
                });
            }
        }
        metrics.launch(package_id, started.elapsed(), LaunchOutcome::Ready);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(package_id.clone(), running);
        Ok(())
    }

    /// Stops `package_id` if this launcher started it.
    pub fn stop(&self, package_id: &PackageId) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(package_id);
        if let Some(running) = running {
            running.stop();
        }
    }

    fn runtime_for(
        &self,
        package: &ChaincodePackage,
    ) -> Result<&Arc<dyn ChaincodeRuntime>, LaunchError> {
        runtime_for(&self.runtimes, package)
    }
}

/// Installs a package file into `packages`, prepared by the runtime of its type (for wasm:
/// validated and precompiled). Returns its id.
pub fn install(
    packages: &PackageStore,
    runtimes: &[Arc<dyn ChaincodeRuntime>],
    package: &[u8],
) -> Result<PackageId, LaunchError> {
    let parsed = ChaincodePackage::parse(package)?;
    runtime_for(runtimes, &parsed)?.install(&parsed)?;
    packages.save(&parsed, package)?;
    Ok(parsed.id().clone())
}

fn runtime_for<'a>(
    runtimes: &'a [Arc<dyn ChaincodeRuntime>],
    package: &ChaincodePackage,
) -> Result<&'a Arc<dyn ChaincodeRuntime>, LaunchError> {
    let kind = &package.metadata().kind;
    runtimes
        .iter()
        .find(|r| r.handles(kind))
        .ok_or_else(|| LaunchError::UnknownType(kind.clone()))
}

impl Drop for Launcher {
    fn drop(&mut self) {
        for (_, running) in self
            .running
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            running.stop();
        }
    }
}
