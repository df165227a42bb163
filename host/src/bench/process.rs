//! Node chaincode as a plain process (Fabric's dev mode, started by the benchmark the
//! way an operator starts it by hand): `node node_modules/fabric-shim/cli.js start` in
//! the chaincode's directory, with Fabric's environment.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::launcher::{ChaincodeRuntime, LaunchError, RunningChaincode};
use crate::package::ChaincodePackage;
use crate::support::ChaincodeSupport;

/// Starts the Node chaincode in `dir` as a local process for `node` packages.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    /// The chaincode's directory (its `package.json` and `node_modules`).
    pub dir: PathBuf,
    /// The chaincode listener.
    pub peer_address: String,
    /// The process id of the last start (0: none yet).
    pub last_pid: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

/// A running chaincode process.
#[derive(Debug)]
pub struct ProcessChaincode {
    kill: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    ended: tokio::sync::watch::Receiver<Option<String>>,
}

impl RunningChaincode for ProcessChaincode {
    fn stop(&self) {
        if let Some(kill) = self.kill.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = kill.send(());
        }
    }

    fn exited(&self) -> BoxFuture<'_, String> {
        crate::launcher::wait_exited(&self.ended)
    }
}

impl ChaincodeRuntime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn handles(&self, kind: &str) -> bool {
        kind == "node"
    }

    fn install(&self, _package: &ChaincodePackage) -> Result<(), LaunchError> {
        Ok(())
    }

    fn start<'a>(
        &'a self,
        package: &'a ChaincodePackage,
        _support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>> {
        Box::pin(async move {
            let id = package.id().clone();
            let mut child = tokio::process::Command::new("node")
                .args(["node_modules/fabric-shim/cli.js", "start", "--peer.address"])
                .arg(&self.peer_address)
                .current_dir(&self.dir)
                .env("CORE_CHAINCODE_ID_NAME", id.as_str())
                .env("CORE_PEER_TLS_ENABLED", "false")
                .env("CORE_PEER_LOCALMSPID", "Org1MSP")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| LaunchError::Start {
                    package_id: id.clone(),
                    reason: format!("running node in {}: {e}", self.dir.display()),
                })?;
            let pid = child.id();
            self.last_pid
                .store(pid.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
            let (end, ended) = tokio::sync::watch::channel(None);
            let (kill, killed) = tokio::sync::oneshot::channel::<()>();
            // The watcher owns the child: it reports an exit, or kills and reaps it.
            tokio::spawn(async move {
                tokio::select! {
                    status = child.wait() => {
                        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                        let _ = end.send(Some(format!("node exited with {status}")));
                    }
                    _ = killed => {
                        let _ = child.kill().await;
                    }
                }
            });
            let running: Box<dyn RunningChaincode> = Box::new(ProcessChaincode {
                kill: Mutex::new(Some(kill)),
                ended,
            });
            Ok(running)
        })
    }
}
