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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tracing::{debug, info, warn};

use crate::ids::PackageId;
use crate::launcher::{ChaincodeRuntime, LaunchError, RunningChaincode};
use crate::metrics::Metrics;
use crate::package::ChaincodePackage;
use crate::support::ChaincodeSupport;
use crate::tls::{ChaincodeCa, ClientCredentials};

mod platform;
pub use platform::{BUILD_INPUT, BUILD_OUTPUT, BuilderStep, FABRIC_VERSION, Images, Platform};

/// The Node package type.
pub const NODE_TYPE: &str = "node";
/// The log target of image builds (`cchost devnode` shows it by default: builds take
/// seconds to minutes).
pub const BUILD_LOG: &str = "cchost::build";
/// Log lines kept for the report of a container that exits early.
const LOG_TAIL: usize = 20;
/// How long a removal may take before a start goes ahead anyway.
const REMOVAL_WAIT: Duration = Duration::from_secs(30);

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
        }
    }
}

/// Builds and runs Node chaincode containers.
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

    /// Builds the package's image (tagged [`container_name`]): the platform's builder
    /// if it needs one, then the runtime image with its output. Records Fabric's build
    /// duration metric.
    pub async fn build_image(&self, package: &ChaincodePackage) -> Result<(), LaunchError> {
        let id = package.id();
        let started = Instant::now();
        let result = self.build(package).await;
        if let Some(metrics) = &self.metrics {
            metrics.container_build(id, started.elapsed(), result.is_ok());
        }
        result.map_err(|reason| LaunchError::Start {
            package_id: id.clone(),
            reason,
        })
    }

    async fn build(&self, package: &ChaincodePackage) -> Result<(), String> {
        let platform = platform_of(package)?;
        let images = &self.config.images;
        let binpackage = match platform.builder(images, package) {
            Some(step) => self.run_builder(package, &step).await?,
            None => src_tar(package)?,
        };
        let runtime_image = platform.runtime_image(images);
        self.require_image(runtime_image).await?;
        let context = tar_of(&[
            ("Dockerfile", platform.dockerfile(images).as_bytes()),
            ("binpackage.tar", &binpackage),
        ])?;
        let tag = container_name(package.id());
        info!(target: BUILD_LOG, chaincode = %package.id(), image = tag, from = runtime_image, "building the chaincode image");
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(&tag)
            .rm(true)
            .forcerm(true)
            .nocache(!self.config.build_cache)
            .build();
        let mut progress =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        let mut error = None;
        while let Some(step) = progress.next().await {
            match step {
                Ok(info) => {
                    if let Some(line) = info
                        .stream
                        .as_deref()
                        .map(str::trim_end)
                        .filter(|l| !l.is_empty())
                    {
                        info!(target: BUILD_LOG, chaincode = %package.id(), "image build: {line}");
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        error = Some(detail);
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        match error {
            None => Ok(()),
            Some(e) => Err(format!("building image {tag}: {e}")),
        }
    }

    /// Fails with a clear message when `image` is not in the engine. Nothing is pulled
    /// (Fabric's `chaincode.pull: false`; and no registry may be reachable).
    async fn require_image(&self, image: &str) -> Result<(), String> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Err(format!(
                "image {image} is not in the Docker engine; cchost does not pull images: load, import or build it (or configure another image)"
            )),
            Err(e) => Err(format!("inspecting image {image}: {e}")),
        }
    }

    /// Fabric's `DockerBuild`: runs `step` in a builder container with the package's code
    /// at `/chaincode/input`, and returns `/chaincode/output/.` as a tar. The container
    /// is removed however the build ends.
    async fn run_builder(
        &self,
        package: &ChaincodePackage,
        step: &BuilderStep,
    ) -> Result<Vec<u8>, String> {
        self.require_image(&step.image).await?;
        let name = format!("{}-build", container_name(package.id()));
        info!(target: BUILD_LOG, chaincode = %package.id(), builder = step.image, "running the chaincode builder");
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self
            .docker
            .remove_container(&name, Some(remove.clone()))
            .await;
        let result = self.build_in(&name, package, step).await;
        let _ = self.docker.remove_container(&name, Some(remove)).await;
        result
    }

    async fn build_in(
        &self,
        name: &str,
        package: &ChaincodePackage,
        step: &BuilderStep,
    ) -> Result<Vec<u8>, String> {
        let body = ContainerCreateBody {
            image: Some(step.image.clone()),
            cmd: Some(vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                step.script.clone(),
            ]),
            env: Some(step.env.clone()),
            host_config: Some(HostConfig {
                // Builders may fetch dependencies (npm, Go modules); the engine here has
                // no bridge network.
                network_mode: Some("host".to_owned()),
                cap_drop: Some(vec!["ALL".to_owned()]),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                memory: Some(self.config.memory_bytes),
                pids_limit: Some(self.config.pids_limit),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| format!("Error creating container: {e}"))?;
        let mut input = vec![(format!("{BUILD_OUTPUT}/.keep"), Vec::new())];
        for path in package.code_paths() {
            if let Some(bytes) = package.code_file(path) {
                input.push((format!("{BUILD_INPUT}/{path}"), bytes.to_vec()));
            }
        }
        let input: Vec<(&str, &[u8])> = input
            .iter()
            .map(|(p, b)| (p.trim_start_matches('/'), b.as_slice()))
            .collect();
        let upload = UploadToContainerOptionsBuilder::default().path("/").build();
        self.docker
            .upload_to_container(
                name,
                Some(upload),
                bollard::body_full(tar_of(&input)?.into()),
            )
            .await
            .map_err(|e| format!("Error uploading input to container: {e}"))?;
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| format!("Error executing build: {e}"))?;
        let code = exit_code(&self.docker, name).await;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let output: String = self
            .docker
            .logs(name, Some(options))
            .filter_map(|chunk| async move { chunk.ok().map(|c| c.to_string()) })
            .collect::<Vec<_>>()
            .await
            .concat();
        for line in output.lines() {
            info!(target: BUILD_LOG, chaincode = %package.id(), "builder: {line}");
        }
        if code != 0 {
            return Err(format!(
                "Error returned from build: {code} \"{}\"",
                output.trim_end()
            ));
        }
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(&format!("{BUILD_OUTPUT}/."))
            .build();
        let mut download = self.docker.download_from_container(name, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = download.next().await {
            tar.extend_from_slice(&chunk.map_err(|e| format!("Error downloading output: {e}"))?);
        }
        Ok(tar)
    }

    /// Removes the package's container, if any, and waits until its name is free (at
    /// most [`REMOVAL_WAIT`]): a removal still in progress from a stop would otherwise
    /// make the next start's create fail with a name conflict.
    pub async fn remove_container(&self, package_id: &PackageId) {
        let name = container_name(package_id);
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self.docker.remove_container(&name, Some(options)).await;
        let started = Instant::now();
        while self.docker.inspect_container(&name, None).await.is_ok() {
            if started.elapsed() > REMOVAL_WAIT {
                warn!(container = %name, "container still present {REMOVAL_WAIT:?} after its removal");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

/// Where the container finds its TLS material (Fabric's paths).
const TLS_DIR: &str = "/etc/hyperledger/fabric";
/// Fabric's TLS environment for chaincode containers, and the files it names.
const TLS_ENV: [(&str, &str); 5] = [
    ("CORE_TLS_CLIENT_KEY_PATH", "client.key"),
    ("CORE_TLS_CLIENT_CERT_PATH", "client.crt"),
    ("CORE_TLS_CLIENT_KEY_FILE", "client_pem.key"),
    ("CORE_TLS_CLIENT_CERT_FILE", "client_pem.crt"),
    ("CORE_PEER_TLS_ROOTCERT_FILE", "peer.crt"),
];

impl DockerRuntime {
    /// Issues `id`'s client certificate for this launch and writes Fabric's five files
    /// (`client.key`/`client.crt` hold base64 of the PEM, the `_pem` files and `peer.crt`
    /// PEM). Fabric uploads them into the container, which a read-only root filesystem
    /// refuses, so they are mounted instead: readable in a directory of their own, inside
    /// [`DockerConfig::state_dir`] which only the host user can enter.
    fn tls_files(
        &self,
        ca: &ChaincodeCa,
        id: &PackageId,
    ) -> Result<(ClientCredentials, tempfile::TempDir), String> {
        use base64::Engine as _;
        use std::os::unix::fs::PermissionsExt;
        let io = |e: std::io::Error| format!("writing TLS files: {e}");
        let credentials = ca.issue(id).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&self.config.state_dir).map_err(io)?;
        std::fs::set_permissions(&self.config.state_dir, PermissionsExt::from_mode(0o700))
            .map_err(io)?;
        let dir = tempfile::Builder::new()
            .prefix(&container_name(id))
            .tempdir_in(&self.config.state_dir)
            .map_err(io)?;
        let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        let files = [
            ("client.key", b64(&credentials.key_pem)),
            ("client.crt", b64(&credentials.cert_pem)),
            ("client_pem.key", credentials.key_pem.clone()),
            ("client_pem.crt", credentials.cert_pem.clone()),
            ("peer.crt", credentials.root_pem.clone()),
        ];
        for (name, contents) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).map_err(io)?;
            std::fs::set_permissions(&path, PermissionsExt::from_mode(0o444)).map_err(io)?;
        }
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).map_err(io)?;
        Ok((credentials, dir))
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

/// A tar of `files` (path, bytes), files only, mode 0644, mtime 0.
fn tar_of(files: &[(&str, &[u8])]) -> Result<Vec<u8>, String> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, *bytes)
            .map_err(|e| format!("writing a build tar: {e}"))?;
    }
    tar.into_inner()
        .map_err(|e| format!("writing a build tar: {e}"))
}

/// What Fabric's Node builder's `cp -R /chaincode/input/src/.` yields, for a package that
/// needs no builder: its `src/` tree at the root.
fn src_tar(package: &ChaincodePackage) -> Result<Vec<u8>, String> {
    let files: Vec<(&str, &[u8])> = package
        .code_paths()
        .filter_map(|path| Some((path.strip_prefix("src/")?, package.code_file(path)?)))
        .collect();
    tar_of(&files)
}

/// Waits for container `name` to exit; its exit code (-1 if it cannot be told).
async fn exit_code(docker: &Docker, name: &str) -> i64 {
    match docker.wait_container(name, None).next().await {
        Some(Ok(response)) => response.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => {
            debug!(container = name, "waiting for the container failed: {e}");
            -1
        }
        None => -1,
    }
}

/// A running chaincode container.
#[derive(Debug)]
pub struct DockerChaincode {
    runtime: DockerRuntime,
    package_id: PackageId,
    ended: tokio::sync::watch::Receiver<Option<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The launch's TLS material: the certificate binding and the mounted files end with
    /// the container.
    _tls: Option<(ClientCredentials, tempfile::TempDir)>,
}

impl RunningChaincode for DockerChaincode {
    fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
        let (runtime, id) = (self.runtime.clone(), self.package_id.clone());
        tokio::spawn(async move { runtime.remove_container(&id).await });
    }

    fn exited(&self) -> BoxFuture<'_, String> {
        crate::launcher::wait_exited(&self.ended)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        for task in &self.tasks {
            task.abort();
        }
        Box::pin(self.runtime.remove_container(&self.package_id))
    }
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
            let id = package.id().clone();
            let name = container_name(&id);
            let fail = |reason: String| LaunchError::Start {
                package_id: id.clone(),
                reason,
            };
            let platform = platform_of(package).map_err(fail)?;
            if self.docker.inspect_image(&name).await.is_err() {
                self.build_image(package).await?;
            }
            self.remove_container(&id).await;
            let tls = match &support.config().tls {
                Some(ca) => Some(self.tls_files(ca, &id).map_err(fail)?),
                None => None,
            };
            let mut env = vec![
                format!("CORE_CHAINCODE_ID_NAME={id}"),
                format!("CORE_PEER_TLS_ENABLED={}", tls.is_some()),
                format!("CORE_PEER_LOCALMSPID={}", self.config.msp_id),
                "CORE_CHAINCODE_LOGGING_LEVEL=info".to_owned(),
            ];
            let mut binds = None;
            if let Some((_, dir)) = &tls {
                env.extend(
                    TLS_ENV
                        .iter()
                        .map(|(var, file)| format!("{var}={TLS_DIR}/{file}")),
                );
                binds = Some(vec![format!("{}:{TLS_DIR}:ro", dir.path().display())]);
            }
            let host_config = HostConfig {
                binds,
                network_mode: Some("host".to_owned()),
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".to_owned()]),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                memory: Some(self.config.memory_bytes),
                pids_limit: Some(self.config.pids_limit),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_owned(),
                    "rw,size=64m".to_owned(),
                )])),
                ..Default::default()
            };
            let body = ContainerCreateBody {
                image: Some(name.clone()),
                cmd: Some(platform.command(package, &self.config.peer_address)),
                // Node's start runs in its code directory (Fabric's script `cd`s there);
                // the other platforms keep their image's.
                working_dir: (platform == Platform::Node)
                    .then(|| platform.install_dir().to_owned()),
                env: Some(env),
                host_config: Some(host_config),
                ..Default::default()
            };
            let options = CreateContainerOptionsBuilder::default().name(&name).build();
            self.docker
                .create_container(Some(options), body)
                .await
                .map_err(|e| fail(format!("creating container {name}: {e}")))?;
            if let Err(e) = self.docker.start_container(&name, None).await {
                // Created but not started (e.g. its command is not in the image): it
                // must not be left behind.
                self.remove_container(&id).await;
                return Err(fail(format!("starting container {name}: {e}")));
            }
            let tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL)));
            let logs = {
                let (docker, name, id, tail) = (
                    self.docker.clone(),
                    name.clone(),
                    id.clone(),
                    Arc::clone(&tail),
                );
                tokio::spawn(async move {
                    let options = LogsOptionsBuilder::default()
                        .follow(true)
                        .stdout(true)
                        .stderr(true)
                        .build();
                    let mut lines = docker.logs(&name, Some(options));
                    while let Some(Ok(output)) = lines.next().await {
                        for line in output.to_string().lines() {
                            info!(chaincode = %id, "{line}");
                            let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                            if tail.len() == LOG_TAIL {
                                tail.pop_front();
                            }
                            tail.push_back(line.to_owned());
                        }
                    }
                })
            };
            let (end, ended) = tokio::sync::watch::channel(None);
            let wait = {
                let (docker, name) = (self.docker.clone(), name.clone());
                tokio::spawn(async move {
                    let code = exit_code(&docker, &name).await;
                    // Let the log task catch the last lines.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    let tail: Vec<String> = tail
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .cloned()
                        .collect();
                    let _ = end.send(Some(format!(
                        "container {name} exited with code {code}; its last log lines:\n{}",
                        tail.join("\n")
                    )));
                })
            };
            let running: Box<dyn RunningChaincode> = Box::new(DockerChaincode {
                runtime: self.clone(),
                package_id: id,
                ended,
                tasks: vec![logs, wait],
                _tls: tls,
            });
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
