//! Chaincode as a plain process (Fabric's dev mode, started by the benchmark the way an
//! operator starts it by hand) with Fabric's environment: the Node chaincode
//! (`node node_modules/fabric-shim/cli.js start` in its directory) or the native Rust
//! one (`asset-transfer-native`, the SDK's gRPC shim).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::launcher::{ChaincodeRuntime, LaunchError, RunningChaincode};
use crate::package::ChaincodePackage;
use crate::support::ChaincodeSupport;

/// Starts a chaincode program as a local process for packages of one type.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    /// The runtime's name (in metrics and logs).
    pub name: &'static str,
    /// The package type it starts (`node`, `native`).
    pub kind: &'static str,
    /// The program and the arguments before `--peer.address ADDRESS`.
    pub command: Vec<String>,
    /// Where it runs (a Node chaincode's directory, with `package.json` and
    /// `node_modules`).
    pub dir: PathBuf,
    /// The chaincode listener.
    pub peer_address: String,
    /// The process id of the last start (0: none yet).
    pub last_pid: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl ProcessRuntime {
    /// The Node chaincode in `dir`, for `node` packages.
    pub fn node(dir: PathBuf, peer_address: String) -> Self {
        Self {
            name: "process",
            kind: "node",
            command: ["node", "node_modules/fabric-shim/cli.js", "start"]
                .map(str::to_owned)
                .to_vec(),
            dir,
            peer_address,
            last_pid: Default::default(),
        }
    }

    /// The native chaincode program `program` (the SDK's shim), for `native` packages.
    pub fn native(program: &std::path::Path, peer_address: String) -> Self {
        Self {
            name: "native",
            kind: "native",
            command: vec![program.display().to_string()],
            dir: program
                .parent()
                .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf),
            peer_address,
            last_pid: Default::default(),
        }
    }
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
        self.name
    }

    fn handles(&self, kind: &str) -> bool {
        kind == self.kind
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
            let (program, args) = self
                .command
                .split_first()
                .ok_or_else(|| LaunchError::Start {
                    package_id: id.clone(),
                    reason: "no program to run".to_owned(),
                })?;
            let mut child = tokio::process::Command::new(program)
                .args(args)
                .arg("--peer.address")
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
                    reason: format!("running {program} in {}: {e}", self.dir.display()),
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
                        let _ = end.send(Some(format!("the chaincode process exited with {status}")));
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
