//! Chaincode containers: created with Fabric's environment (and TLS files) on the host
//! network, hardened beyond Fabric, their output logged, their exit reported; removed
//! when stopped, dropped or ended.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tracing::{debug, info, warn};

use super::tls_files::{TLS_DIR, TLS_ENV};
use super::{DockerRuntime, Platform, RemoveOnDrop, container_name, platform_of};
use crate::ids::PackageId;
use crate::launcher::{LaunchError, RunningChaincode};
use crate::package::ChaincodePackage;
use crate::support::ChaincodeSupport;
use crate::tls::ClientCredentials;

/// Log lines kept for the report of a container that exits early.
const LOG_TAIL: usize = 20;
/// How long a removal may take before a start goes ahead anyway.
const REMOVAL_WAIT: Duration = Duration::from_secs(30);
/// How long an exit's report waits for the container's last log lines.
const LOG_FLUSH_WAIT: Duration = Duration::from_secs(2);

impl DockerRuntime {
    /// Builds the package's image if it has none, then creates and starts its container.
    pub(super) async fn run_container(
        &self,
        package: &ChaincodePackage,
        support: &ChaincodeSupport,
    ) -> Result<DockerChaincode, LaunchError> {
        let handle = tokio::runtime::Handle::current();
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
            working_dir: (platform == Platform::Node).then(|| platform.install_dir().to_owned()),
            env: Some(env),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        // From its creation until it is handed over, the container goes if the launch
        // does (its start failed, e.g. its command is not in the image, or the launch was
        // dropped meanwhile).
        let created = RemoveOnDrop::new(self, &name);
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| fail(format!("creating container {name}: {e}")))?;
        if let Err(e) = self.docker.start_container(&name, None).await {
            created.remove().await;
            return Err(fail(format!("starting container {name}: {e}")));
        }
        created.defuse();
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL)));
        let (logs_done, logs_ended) = tokio::sync::oneshot::channel::<()>();
        let logs = {
            let (docker, name, id, tail) = (
                self.docker.clone(),
                name.clone(),
                id.clone(),
                Arc::clone(&tail),
            );
            tokio::spawn(async move {
                let _done = logs_done;
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
                // The log stream ends with the container: its last lines are in the tail
                // once it has (a stream that lingers is not waited for long).
                let _ = tokio::time::timeout(LOG_FLUSH_WAIT, logs_ended).await;
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
        Ok(DockerChaincode {
            handle,
            runtime: self.clone(),
            package_id: id,
            ended,
            tasks: vec![logs, wait],
            tls: Mutex::new(tls),
            stopped: AtomicBool::new(false),
        })
    }

    /// Removes the package's container, if any, and waits until it is gone (at most
    /// [`REMOVAL_WAIT`]): a removal still in progress from a stop would otherwise make the
    /// next start's create fail with a name conflict.
    pub async fn remove_container(&self, package_id: &PackageId) {
        self.remove_named(&container_name(package_id)).await;
    }

    /// Removes container `name` (killing it), and waits until the engine has removed it.
    pub(super) async fn remove_named(&self, name: &str) {
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self.docker.remove_container(name, Some(remove)).await;
        // `removed` resolves when the removal ends; a container already gone is a 404.
        let until_removed = WaitContainerOptionsBuilder::default()
            .condition("removed")
            .build();
        let mut wait = self.docker.wait_container(name, Some(until_removed));
        if tokio::time::timeout(REMOVAL_WAIT, wait.next())
            .await
            .is_err()
        {
            warn!(container = %name, "container still present {REMOVAL_WAIT:?} after its removal");
        }
    }
}

/// Waits for container `name` to exit; its exit code (-1 if it cannot be told).
pub(super) async fn exit_code(docker: &Docker, name: &str) -> i64 {
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

/// A running chaincode container. Stopping or dropping it kills and removes the
/// container; its TLS files go once the container is gone.
#[derive(Debug)]
pub struct DockerChaincode {
    /// The runtime the container was started from, where its removal runs.
    handle: tokio::runtime::Handle,
    runtime: DockerRuntime,
    package_id: PackageId,
    ended: tokio::sync::watch::Receiver<Option<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The launch's TLS material: the certificate binding and the mounted files.
    tls: Mutex<Option<(ClientCredentials, tempfile::TempDir)>>,
    stopped: AtomicBool,
}

impl DockerChaincode {
    /// Ends the tasks watching the container; false if it was stopped already.
    fn begin_stop(&self) -> bool {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return false;
        }
        for task in &self.tasks {
            task.abort();
        }
        true
    }

    fn take_tls(&self) -> Option<(ClientCredentials, tempfile::TempDir)> {
        self.tls.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl RunningChaincode for DockerChaincode {
    fn stop(&self) {
        if !self.begin_stop() {
            return;
        }
        let (runtime, id, tls) = (
            self.runtime.clone(),
            self.package_id.clone(),
            self.take_tls(),
        );
        // On the runtime the container was started from: `stop` may be called from a
        // drop outside of it.
        drop(self.handle.spawn(async move {
            runtime.remove_container(&id).await;
            drop(tls);
        }));
    }

    fn exited(&self) -> BoxFuture<'_, String> {
        crate::launcher::wait_exited(&self.ended)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.begin_stop();
        Box::pin(async move {
            self.runtime.remove_container(&self.package_id).await;
            drop(self.take_tls());
        })
    }
}

impl Drop for DockerChaincode {
    fn drop(&mut self) {
        self.stop();
    }
}
