//! Go, Node and Java chaincode in Docker containers (Fabric's dockercontroller), through
//! bollard.
//!
//! A package becomes an image as Fabric's platforms build it ([`Platform`]): the
//! platform's builder container turns `code.tar.gz` into `binpackage.tar`, added to the
//! platform's runtime image (a Node package that brings its `node_modules` skips the
//! builder and needs no network). Images and containers are named from the package id.
//! The container dials the chaincode listener with Fabric's environment (and, with TLS,
//! Fabric's five certificate files), on the host network, with hardening beyond Fabric:
//! read-only root filesystem (a tmpfs `/tmp`), every capability dropped,
//! `no-new-privileges`, memory and pids limits. Its output goes to the host's log tagged
//! with the chaincode; an exit before REGISTER is reported at once with the exit code and
//! the tail of the log. Images are never pulled: a missing one is a clear error.

use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use crate::ids::PackageId;
use crate::launcher::{ChaincodeRuntime, LaunchError, RunningChaincode};
use crate::metrics::Metrics;
use crate::package::ChaincodePackage;
use crate::support::ChaincodeSupport;

mod build;
mod container;
mod platform;
mod tls_files;

pub use container::DockerChaincode;
pub use platform::{BUILD_INPUT, BUILD_OUTPUT, BuilderStep, FABRIC_VERSION, Images, Platform};

/// The Node package type.
pub const NODE_TYPE: &str = "node";
/// The log target of image builds (`cchost devnode` shows it by default: builds take
/// seconds to minutes).
pub const BUILD_LOG: &str = "cchost::build";
/// Fabric's `chaincode.installTimeout` default: how long an image build may take.
pub const DEFAULT_INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// How containers are built and run.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The Docker socket.
    pub socket: String,
    /// Builder and runtime images by platform (Fabric's by default).
    pub images: Images,
    /// The chaincode listener as the container reaches it (host networking: loopback).
    pub peer_address: String,
    /// `CORE_PEER_LOCALMSPID`.
    pub msp_id: String,
    /// Memory limit per container, bytes.
    pub memory_bytes: i64,
    /// Process limit per container.
    pub pids_limit: i64,
    /// Let image builds reuse the engine's build cache (Fabric does); off, every build
    /// starts from the base image (`cchost bench` measures cold builds that way).
    pub build_cache: bool,
    /// Where per-launch TLS material is written (a directory only the host user can
    /// enter); each launch's files are mounted read-only at `/etc/hyperledger/fabric`.
    pub state_dir: std::path::PathBuf,
    /// How long an image build may take (Fabric's `chaincode.installTimeout`, 300 s):
    /// past it the build is stopped and the launch fails.
    pub install_timeout: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            socket: "/var/run/docker.sock".to_owned(),
            images: Images::default(),
            peer_address: "127.0.0.1:7052".to_owned(),
            msp_id: "Org1MSP".to_owned(),
            memory_bytes: 512 * 1024 * 1024,
            pids_limit: 512,
            build_cache: true,
            state_dir: std::env::temp_dir().join("cchost-docker"),
            install_timeout: DEFAULT_INSTALL_TIMEOUT,
        }
    }
}

/// Builds and runs Go, Node and Java chaincode containers.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    config: DockerConfig,
    metrics: Option<Arc<Metrics>>,
}

/// The image and container name of a package: `cchost-<label>-<first 16 of the hash>`,
/// lower-cased to Docker's alphabet.
pub fn container_name(package_id: &PackageId) -> String {
    let (label, hash) = package_id
        .as_str()
        .split_once(':')
        .unwrap_or((package_id.as_str(), ""));
    let clean: String = label
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("cchost-{clean}-{}", hash.get(..16).unwrap_or(hash))
}

impl DockerRuntime {
    /// A runtime talking to the daemon at `config.socket`; `metrics` records image
    /// builds.
    pub fn connect(config: DockerConfig, metrics: Option<Arc<Metrics>>) -> Result<Self, String> {
        let docker = Docker::connect_with_socket(&config.socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| format!("cannot reach the Docker daemon at {}: {e}", config.socket))?;
        Ok(Self {
            docker,
            config,
            metrics,
        })
    }

    /// Whether the daemon answers.
    pub async fn ping(&self) -> Result<(), String> {
        self.docker.ping().await.map(drop).map_err(|e| {
            format!(
                "the Docker daemon at {} does not answer: {e}",
                self.config.socket
            )
        })
    }

    /// Removes the package's image, if any (the next launch builds it again).
    pub async fn remove_image(&self, package_id: &PackageId) {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        let _ = self
            .docker
            .remove_image(&container_name(package_id), Some(options), None)
            .await;
    }

    /// Kills the package's container (SIGKILL), as a crash would.
    pub async fn kill_container(&self, package_id: &PackageId) -> Result<(), String> {
        self.docker
            .kill_container(&container_name(package_id), None)
            .await
            .map_err(|e| e.to_string())
    }

    /// The memory the package's running container uses, bytes: its cgroup usage minus
    /// the inactive file cache, as `docker stats` shows it.
    pub async fn memory_usage(&self, package_id: &PackageId) -> Result<u64, String> {
        let options = bollard::query_parameters::StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let stats = self
            .docker
            .stats(&container_name(package_id), Some(options))
            .next()
            .await
            .ok_or_else(|| "no statistics for the container".to_owned())?
            .map_err(|e| e.to_string())?;
        let memory = stats
            .memory_stats
            .ok_or_else(|| "the engine reports no memory statistics".to_owned())?;
        let usage = memory.usage.unwrap_or(0);
        let inactive = memory.stats.as_ref().and_then(|s| {
            s.get("total_inactive_file")
                .or_else(|| s.get("inactive_file"))
                .copied()
        });
        Ok(usage.saturating_sub(inactive.unwrap_or(0)))
    }

    /// The host process id of the main process of the package's running container.
    pub async fn container_pid(&self, package_id: &PackageId) -> Result<u32, String> {
        let container = self
            .docker
            .inspect_container(&container_name(package_id), None)
            .await
            .map_err(|e| e.to_string())?;
        container
            .state
            .and_then(|s| s.pid)
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0)
            .ok_or_else(|| "the container is not running".to_owned())
    }

    /// The size of the package's image, bytes.
    pub async fn image_size(&self, package_id: &PackageId) -> Result<u64, String> {
        let image = self
            .docker
            .inspect_image(&container_name(package_id))
            .await
            .map_err(|e| e.to_string())?;
        Ok(image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    /// Whether the package's container exists.
    pub async fn container_exists(&self, package_id: &PackageId) -> bool {
        self.docker
            .inspect_container(&container_name(package_id), None)
            .await
            .is_ok()
    }
}

/// Removes a container when dropped, unless [`defused`](Self::defuse): a launch or build
/// given up on while it waits for the engine (a timeout, a dropped caller) leaves no
/// container behind. The removal runs on the runtime the guard was made on.
pub(super) struct RemoveOnDrop {
    runtime: Option<DockerRuntime>,
    name: String,
    handle: tokio::runtime::Handle,
}

impl RemoveOnDrop {
    pub(super) fn new(runtime: &DockerRuntime, name: &str) -> Self {
        Self {
            runtime: Some(runtime.clone()),
            name: name.to_owned(),
            handle: tokio::runtime::Handle::current(),
        }
    }

    /// The container stays: something else owns it now.
    pub(super) fn defuse(mut self) {
        self.runtime = None;
    }

    /// Removes the container now, and waits until it is gone.
    pub(super) async fn remove(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.remove_named(&self.name).await;
        }
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            let name = std::mem::take(&mut self.name);
            drop(
                self.handle
                    .spawn(async move { runtime.remove_named(&name).await }),
            );
        }
    }
}

/// The platform of a package this runtime starts.
fn platform_of(package: &ChaincodePackage) -> Result<Platform, String> {
    let kind = &package.metadata().kind;
    let platform =
        Platform::of(kind).ok_or_else(|| format!("no Docker platform builds type {kind:?}"))?;
    platform.validate(package)?;
    Ok(platform)
}

impl ChaincodeRuntime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn handles(&self, kind: &str) -> bool {
        Platform::of(kind).is_some()
    }

    fn install(&self, package: &ChaincodePackage) -> Result<(), LaunchError> {
        // The image is built at the first launch (an async daemon call); here the
        // package is only checked.
        platform_of(package)
            .map(drop)
            .map_err(|reason| LaunchError::Start {
                package_id: package.id().clone(),
                reason,
            })
    }

    fn start<'a>(
        &'a self,
        package: &'a ChaincodePackage,
        support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>> {
        Box::pin(async move {
            let running: Box<dyn RunningChaincode> =
                Box::new(self.run_container(package, support).await?);
            Ok(running)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_package_id_in_dockers_alphabet() {
        assert_eq!(
            container_name(&PackageId::new("Asset_Node+1:0123456789abcdef0123")),
            "cchost-asset_node-1-0123456789abcdef"
        );
    }
}
