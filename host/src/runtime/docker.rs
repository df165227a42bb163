//! Node chaincode in Docker containers (Fabric's dockercontroller), through bollard.
//!
//! A `node` package's `src/` (its `package.json`, code and `node_modules`: no network is
//! needed at build time) becomes an image `FROM` the configured Node runtime image; the
//! container runs the Node shim in client mode against the chaincode listener, with
//! Fabric's environment, host networking, and hardening beyond Fabric: read-only root
//! filesystem (a tmpfs `/tmp`), every capability dropped, `no-new-privileges`, memory and
//! pids limits. Its output goes to the host's log tagged with the chaincode; an exit before
//! REGISTER is reported at once with the exit code and the tail of the log.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tracing::{debug, info};

use crate::ids::PackageId;
use crate::launcher::{ChaincodeRuntime, LaunchError, RunningChaincode};
use crate::metrics::Metrics;
use crate::package::ChaincodePackage;
use crate::support::ChaincodeSupport;
use crate::tls::{ChaincodeCa, ClientCredentials};

/// The package type this runtime starts.
pub const NODE_TYPE: &str = "node";
/// Log lines kept for the report of a container that exits early.
const LOG_TAIL: usize = 20;

/// How containers are built and run.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The Docker socket.
    pub socket: String,
    /// The image Node chaincode images build `FROM` (Fabric: `fabric-nodeenv`).
    pub node_image: String,
    /// The chaincode listener as the container reaches it (host networking: loopback).
    pub peer_address: String,
    /// `CORE_PEER_LOCALMSPID`.
    pub msp_id: String,
    /// Memory limit per container, bytes.
    pub memory_bytes: i64,
    /// Process limit per container.
    pub pids_limit: i64,
    /// Where per-launch TLS material is written (a directory only the host user can
    /// enter); each launch's files are mounted read-only at `/etc/hyperledger/fabric`.
    pub state_dir: std::path::PathBuf,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            socket: "/var/run/docker.sock".to_owned(),
            node_image: "hyperledger/fabric-nodeenv:2.5".to_owned(),
            peer_address: "127.0.0.1:7052".to_owned(),
            msp_id: "Org1MSP".to_owned(),
            memory_bytes: 512 * 1024 * 1024,
            pids_limit: 512,
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

    /// Builds the package's image (tagged [`container_name`]) from its `src/`.
    pub async fn build_image(&self, package: &ChaincodePackage) -> Result<(), LaunchError> {
        let id = package.id();
        let fail = |reason: String| LaunchError::Start {
            package_id: id.clone(),
            reason,
        };
        let started = Instant::now();
        let context = build_context(package, &self.config.node_image).map_err(fail)?;
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(&container_name(id))
            .rm(true)
            .forcerm(true)
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
                        info!(chaincode = %id, "image build: {line}");
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        error = Some(detail);
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        let ok = error.is_none();
        if let Some(metrics) = &self.metrics {
            metrics.container_build(id, started.elapsed(), ok);
        }
        match error {
            None => Ok(()),
            Some(e) => Err(fail(format!("building image {}: {e}", container_name(id)))),
        }
    }

    /// Removes the package's container, if any.
    pub async fn remove_container(&self, package_id: &PackageId) {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self
            .docker
            .remove_container(&container_name(package_id), Some(options))
            .await;
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

/// The build context: a Dockerfile and the package's `src/` tree.
fn build_context(package: &ChaincodePackage, base_image: &str) -> Result<Vec<u8>, String> {
    let dockerfile =
        format!("FROM {base_image}\nCOPY src /usr/local/src\nWORKDIR /usr/local/src\n");
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, bytes)
            .map_err(|e| format!("writing the build context: {e}"))
    };
    add("Dockerfile", dockerfile.as_bytes())?;
    let mut any = false;
    for path in package.code_paths() {
        if path.starts_with("src/")
            && let Some(bytes) = package.code_file(path)
        {
            add(path, bytes)?;
            any = true;
        }
    }
    if !any || package.code_file("src/package.json").is_none() {
        return Err("a node package needs src/package.json in code.tar.gz".to_owned());
    }
    tar.into_inner()
        .map_err(|e| format!("writing the build context: {e}"))
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
}

impl ChaincodeRuntime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn handles(&self, kind: &str) -> bool {
        kind == NODE_TYPE
    }

    fn install(&self, package: &ChaincodePackage) -> Result<(), LaunchError> {
        // The image is built at the first launch (an async daemon call); here the
        // package is only checked.
        build_context(package, &self.config.node_image)
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
                // Fabric runs `npm start -- --peer.address`; the package's start script is
                // `fabric-chaincode-node start`, which is this (the runtime image needs no npm).
                cmd: Some(
                    [
                        "node",
                        "node_modules/fabric-shim/cli.js",
                        "start",
                        "--peer.address",
                        &self.config.peer_address,
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                ),
                working_dir: Some("/usr/local/src".to_owned()),
                env: Some(env),
                host_config: Some(host_config),
                ..Default::default()
            };
            let options = CreateContainerOptionsBuilder::default().name(&name).build();
            self.docker
                .create_container(Some(options), body)
                .await
                .map_err(|e| fail(format!("creating container {name}: {e}")))?;
            self.docker
                .start_container(&name, None)
                .await
                .map_err(|e| fail(format!("starting container {name}: {e}")))?;
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
                    let code = match docker.wait_container(&name, None).next().await {
                        Some(Ok(response)) => response.status_code,
                        Some(Err(bollard::errors::Error::DockerContainerWaitError {
                            code,
                            ..
                        })) => code,
                        Some(Err(e)) => {
                            debug!(container = name, "waiting for the container failed: {e}");
                            -1
                        }
                        None => -1,
                    };
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
