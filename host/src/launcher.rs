//! One launcher for every kind of chaincode: it installs packages, and on demand starts
//! the one a chaincode definition names with the first runtime that accepts it, then waits
//! (up to the startup timeout) for it to register with [`ChaincodeSupport`] and go READY.
//! Wasm chaincode runs in-process ([`crate::runtime::wasm`]); Docker containers
//! ([`crate::runtime::docker`]) and chaincode-as-a-service ([`crate::runtime::ccaas`])
//! join through the same [`ChaincodeRuntime`] trait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use futures_util::future::BoxFuture;

use crate::ids::PackageId;
use crate::metrics::LaunchOutcome;
use crate::package::{ChaincodePackage, PackageError, PackageStore};
use crate::runtime::wasm::WasmError;
use crate::support::{ChaincodeSupport, LaunchOnDemand};

/// The largest package (code bytes) a launcher keeps parsed in memory; larger ones (a
/// Node package with its `node_modules`) are read again at each launch.
pub const PACKAGE_CACHE_LIMIT: usize = 4 * 1024 * 1024;

/// Fabric's `chaincode.startuptimeout` default.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(300);

/// How long [`Launcher::stop`] waits for a stopped chaincode's stream to deregister.
const DEREGISTER_WAIT: Duration = Duration::from_secs(10);

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
    /// The chaincode did not register and go READY in time. Fabric's words (its text
    /// goes on "for transaction"; a launch here may have none), and the timeout.
    #[error("timeout expired while starting chaincode {package_id} (startup timeout {timeout:?})")]
    StartupTimeout {
        /// The package started.
        package_id: PackageId,
        /// The startup timeout.
        timeout: Duration,
    },
    /// The chaincode failed to start, or crashed soon after starting, too often in a row:
    /// it is not started again until its back-off has passed.
    #[error(
        "chaincode {package_id} failed {failures} times in a row; not starting it again for {retry_in:?} (crash-loop back-off)"
    )]
    CrashLoop {
        /// The package.
        package_id: PackageId,
        /// Consecutive failures.
        failures: u32,
        /// How long until the next start is allowed.
        retry_in: Duration,
    },
    /// An external builder could not build the package (Fabric: "could not build
    /// chaincode"), or its kept build could not be restored.
    #[error("could not build chaincode {package_id}: {reason}")]
    Build {
        /// The package built.
        package_id: PackageId,
        /// What failed, with the failing program's output.
        reason: String,
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

/// Crash-loop back-off: how the launcher spaces out the starts of a chaincode that keeps
/// failing. A failure is a launch that fails (or times out), or a chaincode that ends by
/// itself less than `stable_after` after it went READY. The first failure is retried at
/// once (one crash is not a loop); from the second on, starts are refused for `initial`,
/// doubling per failure up to `max`. A chaincode that ran `stable_after` or longer starts
/// counting afresh. Fabric has no back-off; cchost adds it so a broken package cannot
/// keep a Docker engine building and starting containers for every proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the second failure in a row.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// How long a chaincode must have run for its end not to count as a failure.
    pub stable_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures.
    pub fn wait(&self, failures: u32) -> Duration {
        match failures {
            0 | 1 => Duration::ZERO,
            n => self
                .initial
                .saturating_mul(1 << (n - 2).min(20))
                .min(self.max),
        }
    }
}

/// A package's record of consecutive failures.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// A chaincode the launcher started, and when it went READY.
#[derive(Debug)]
struct Started {
    chaincode: Box<dyn RunningChaincode>,
    ready_at: Instant,
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

    /// Stops it and waits until what it used is released (e.g. its container removed).
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.stop();
        Box::pin(std::future::ready(()))
    }
}

/// What starts chaincode of some package types.
pub trait ChaincodeRuntime: Send + Sync + std::fmt::Debug {
    /// The runtime's name, the `runtime` label of its metrics (`wasm`, `ccaas`, ...).
    fn name(&self) -> &'static str;

    /// Whether this runtime starts packages of `metadata.json` type `kind`.
    fn handles(&self, kind: &str) -> bool;

    /// Whether this runtime installs and starts `package`. By default: whether it
    /// [`handles`](Self::handles) its type; a runtime that looks into the package (an
    /// external builder's `detect`) decides here. Runtimes are asked in order.
    fn accepts(&self, package: &ChaincodePackage) -> bool {
        self.handles(&package.metadata().kind)
    }

    /// Prepares an installed package (validate, compile, build an image). Idempotent.
    fn install(&self, package: &ChaincodePackage) -> Result<(), LaunchError>;

    /// Starts `package`; it must then register with `support` as `package.id()`.
    fn start<'a>(
        &'a self,
        package: &'a ChaincodePackage,
        support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>>;
}

/// Installs packages and starts them on demand.
#[derive(Debug)]
pub struct Launcher {
    support: ChaincodeSupport,
    packages: PackageStore,
    runtimes: Vec<Arc<dyn ChaincodeRuntime>>,
    startup_timeout: Duration,
    backoff: Backoff,
    running: Mutex<HashMap<PackageId, Started>>,
    failures: Mutex<HashMap<PackageId, Failures>>,
    /// Parsed packages (up to [`PACKAGE_CACHE_LIMIT`] of code each): a relaunch reads
    /// and unpacks nothing.
    parsed: Mutex<HashMap<PackageId, Arc<ChaincodePackage>>>,
    /// One launch at a time per package.
    launching: Mutex<HashMap<PackageId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Launcher {
    /// A launcher over `packages` that starts chaincode with the first of `runtimes` that
    /// accepts it ([`ChaincodeRuntime::accepts`]), with the default crash-loop back-off. `support` launches through
    /// it the chaincode a client or another chaincode invokes while it is not running.
    pub fn new(
        support: ChaincodeSupport,
        packages: PackageStore,
        runtimes: Vec<Arc<dyn ChaincodeRuntime>>,
        startup_timeout: Duration,
    ) -> Arc<Self> {
        Self::with_backoff(
            support,
            packages,
            runtimes,
            startup_timeout,
            Backoff::default(),
        )
    }

    /// [`Launcher::new`] with another crash-loop back-off.
    pub fn with_backoff(
        support: ChaincodeSupport,
        packages: PackageStore,
        runtimes: Vec<Arc<dyn ChaincodeRuntime>>,
        startup_timeout: Duration,
        backoff: Backoff,
    ) -> Arc<Self> {
        let launcher = Arc::new(Self {
            support,
            packages,
            runtimes,
            startup_timeout,
            backoff,
            running: Mutex::default(),
            failures: Mutex::default(),
            parsed: Mutex::default(),
            launching: Mutex::default(),
        });
        let weak = Arc::downgrade(&launcher);
        launcher.support.set_launcher(weak);
        launcher
    }

    fn record_failure(&self, package_id: &PackageId) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = failures.entry(package_id.clone()).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        entry.count += 1;
        entry.last = Instant::now();
    }

    /// Refuses a start while `package_id`'s back-off runs.
    fn check_backoff(&self, package_id: &PackageId) -> Result<(), LaunchError> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(record) = failures.get(package_id) else {
            return Ok(());
        };
        let wait = self.backoff.wait(record.count);
        let elapsed = record.last.elapsed();
        if elapsed < wait {
            return Err(LaunchError::CrashLoop {
                package_id: package_id.clone(),
                failures: record.count,
                // Whole milliseconds, rounded up: waiting this long is always enough.
                retry_in: Duration::from_millis(
                    u64::try_from((wait - elapsed).as_micros().div_ceil(1000)).unwrap_or(u64::MAX),
                ),
            });
        }
        Ok(())
    }

    /// Installs a package file: saves it and lets its runtime prepare it (for wasm:
    /// validate and precompile). Returns its id.
    pub fn install(&self, package: &[u8]) -> Result<PackageId, LaunchError> {
        install(&self.packages, &self.runtimes, package)
    }

    /// Whether `package_id` is installed.
    pub fn is_installed(&self, package_id: &PackageId) -> bool {
        self.packages.contains(package_id)
    }

    /// The installed packages.
    pub fn installed(&self) -> Result<Vec<PackageId>, LaunchError> {
        Ok(self.packages.list()?)
    }

    /// Makes sure `package_id` runs and is READY: starts it when it is not, and waits for
    /// its registration up to the startup timeout. Cancel-safe: when the returned future
    /// is dropped, or the launch fails or times out, what was started is stopped and the
    /// package id may no longer register.
    pub async fn launch(&self, package_id: &PackageId) -> Result<(), LaunchError> {
        if self.support.is_ready(package_id) {
            return Ok(());
        }
        let lock = self.lock(package_id);
        let _launching = lock.lock().await;
        if self.support.is_ready(package_id) {
            return Ok(());
        }
        // Started but no longer registered: it ended by itself.
        let ended = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(package_id);
        if let Some(ended) = ended {
            ended.chaincode.shutdown().await;
            if ended.ready_at.elapsed() < self.backoff.stable_after {
                self.record_failure(package_id);
            } else {
                self.failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(package_id);
            }
        }
        self.check_backoff(package_id)?;
        let package = self.package(package_id)?;
        let runtime = self.runtime_for(&package)?;
        let metrics = self.support.metrics();
        metrics.set_runtime(package_id, runtime.name());
        let started = Instant::now();
        // As Fabric's launcher: the startup timeout runs from before the start (a build
        // the runtime makes at launch included) to READY.
        let deadline = started + self.startup_timeout;
        let mut attempt = Attempt::new(&self.support, package_id);
        let timed_out = || LaunchError::StartupTimeout {
            package_id: package_id.clone(),
            timeout: self.startup_timeout,
        };
        let running =
            match tokio::time::timeout_at(deadline, runtime.start(&package, &self.support)).await {
                Ok(Ok(running)) => attempt.started(running),
                Ok(Err(e)) => {
                    metrics.launch(package_id, started.elapsed(), LaunchOutcome::Failed);
                    self.record_failure(package_id);
                    return Err(e);
                }
                Err(_) => {
                    metrics.launch(package_id, started.elapsed(), LaunchOutcome::TimedOut);
                    self.record_failure(package_id);
                    return Err(timed_out());
                }
            };
        let left = deadline.saturating_duration_since(Instant::now());
        let ready = tokio::select! {
            ready = self.support.wait_ready(package_id, left) => Ok(ready),
            reason = running.exited() => Err(reason),
        };
        let failure = match ready {
            Ok(true) => None,
            Ok(false) => Some((LaunchOutcome::TimedOut, timed_out())),
            Err(reason) => Some((
                LaunchOutcome::Failed,
                LaunchError::Start {
                    package_id: package_id.clone(),
                    reason: format!("it ended before registering: {reason}"),
                },
            )),
        };
        if let Some((outcome, error)) = failure {
            attempt.abandon().await;
            metrics.launch(package_id, started.elapsed(), outcome);
            self.record_failure(package_id);
            return Err(error);
        }
        metrics.launch(package_id, started.elapsed(), LaunchOutcome::Ready);
        if let Some(running) = attempt.ready() {
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    package_id.clone(),
                    Started {
                        chaincode: running,
                        ready_at: Instant::now(),
                    },
                );
        }
        Ok(())
    }

    /// The lock that makes launches and stops of one package take turns.
    fn lock(&self, package_id: &PackageId) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            self.launching
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(package_id.clone())
                .or_default(),
        )
    }

    /// The parsed package: from memory when it was loaded before and is small enough to
    /// keep.
    fn package(&self, package_id: &PackageId) -> Result<Arc<ChaincodePackage>, LaunchError> {
        let cached = self
            .parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(package_id)
            .cloned();
        if let Some(package) = cached {
            return Ok(package);
        }
        // Read and unpacked outside the lock: other packages' launches do not wait on it.
        let package = Arc::new(self.packages.load(package_id)?);
        if package.code_size() <= PACKAGE_CACHE_LIMIT {
            self.parsed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(package_id.clone(), Arc::clone(&package));
        }
        Ok(package)
    }

    /// Stops `package_id` if this launcher started it, and waits until it is gone: what
    /// it used released (a container removed) and its stream deregistered, so that a
    /// launch right after starts it afresh.
    pub async fn stop(&self, package_id: &PackageId) {
        let lock = self.lock(package_id);
        let _launching = lock.lock().await;
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(package_id);
        if let Some(running) = running {
            running.chaincode.shutdown().await;
            if !self
                .support
                .wait_deregistered(package_id, DEREGISTER_WAIT)
                .await
            {
                warn!(chaincode = %package_id, "still registered {DEREGISTER_WAIT:?} after it was stopped");
            }
        }
    }

    /// Stops everything this launcher started and waits until it is gone (containers
    /// removed). Dropping the launcher also stops everything, without waiting.
    pub async fn shutdown(&self) {
        let started: Vec<Started> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, started)| started)
            .collect();
        futures_util::future::join_all(started.iter().map(|s| s.chaincode.shutdown())).await;
    }

    fn runtime_for(
        &self,
        package: &ChaincodePackage,
    ) -> Result<&Arc<dyn ChaincodeRuntime>, LaunchError> {
        runtime_for(&self.runtimes, package)
    }
}

/// One launch in progress: until it is [`ready`](Attempt::ready), dropping it (a failed,
/// timed-out or cancelled launch) stops what was started and withdraws the expected
/// registration, whichever runtime started it.
struct Attempt<'a> {
    support: &'a ChaincodeSupport,
    package_id: &'a PackageId,
    running: Option<Box<dyn RunningChaincode>>,
    armed: bool,
}

impl<'a> Attempt<'a> {
    fn new(support: &'a ChaincodeSupport, package_id: &'a PackageId) -> Self {
        support.expect_registration(package_id);
        Self {
            support,
            package_id,
            running: None,
            armed: true,
        }
    }

    /// The runtime started the chaincode: it is now what a failure stops.
    fn started(&mut self, running: Box<dyn RunningChaincode>) -> &dyn RunningChaincode {
        &**self.running.insert(running)
    }

    /// Stops what was started and waits until it is released.
    async fn abandon(mut self) {
        self.armed = false;
        self.support.withdraw_registration(self.package_id);
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    /// The chaincode is READY: what was started is the caller's to keep.
    fn ready(mut self) -> Option<Box<dyn RunningChaincode>> {
        self.armed = false;
        self.running.take()
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.support.withdraw_registration(self.package_id);
            if let Some(running) = self.running.take() {
                running.stop();
            }
        }
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
    runtimes
        .iter()
        .find(|r| r.accepts(package))
        .ok_or_else(|| LaunchError::UnknownType(package.metadata().kind.clone()))
}

impl LaunchOnDemand for Launcher {
    fn launch<'a>(&'a self, package_id: &'a PackageId) -> BoxFuture<'a, Result<(), LaunchError>> {
        Box::pin(Launcher::launch(self, package_id))
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        for (_, running) in self
            .running
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            running.chaincode.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_starts_at_the_second_failure_and_doubles_up_to_the_cap() {
        let backoff = Backoff::default();
        let waits: Vec<u64> = (0..10).map(|n| backoff.wait(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff.wait(u32::MAX), Duration::from_secs(60));
    }
}
