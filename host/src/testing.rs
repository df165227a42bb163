//! [`WasmHarness`]: a chaincode `.wasm` in an in-process host, for integration tests of
//! chaincode (like CosmWasm's `mock_instance`). The module runs in the real wasm runtime,
//! behind the real handler, over a real (in-memory) ledger; each successful `submit` is
//! committed as its own block, as a peer would after ordering.
//!
//! ```ignore
//! let harness = WasmHarness::load(&std::fs::read("asset_transfer.wasm")?).await?;
//! harness.submit(&["InitLedger"]).await?;
//! let asset = harness.evaluate(&["ReadAsset", "asset1"]).await?;
//! assert_eq!(asset.status, 200);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cchost_proto::protos::{ChaincodeEvent, Response};

use crate::ids::PackageId;
use crate::ledger::{CommitTx, Height, LedgerError, ReadLimit, RedbStore, StateStore};
use crate::proposal::{DevIdentity, ProposalBuilder, ProposalError};
use crate::runtime::wasm::{WasmChaincode, WasmConfig, WasmError, WasmRuntime};
use crate::support::{ChaincodeSupport, ExecuteError, SupportConfig};

/// The channel the harness's transactions run on.
pub const CHANNEL: &str = "mychannel";
/// The chaincode name the module is defined under.
pub const CHAINCODE: &str = "chaincode";

/// Why the harness could not start or run a transaction.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The module was refused or failed to compile.
    #[error(transparent)]
    Wasm(#[from] WasmError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The proposal could not be built.
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    /// The peer could not run the transaction (trap, timeout, stream ended).
    #[error(transparent)]
    Execute(#[from] ExecuteError),
    /// The host's configuration was refused.
    #[error(transparent)]
    Config(#[from] crate::support::ConfigError),
    /// The chaincode did not register in time.
    #[error("the chaincode did not register within {0:?}")]
    NotReady(Duration),
}

/// The outcome of one transaction.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Status, message and payload as the chaincode answered.
    pub response: Response,
    /// The event it set.
    pub event: Option<ChaincodeEvent>,
    /// Whether its writes were committed (submit, status below 400).
    pub committed: bool,
}

impl Outcome {
    /// The payload as text (lossy UTF-8).
    pub fn payload(&self) -> String {
        String::from_utf8_lossy(&self.response.payload).into_owned()
    }
}

/// A wasm chaincode in an in-process host.
#[derive(Debug)]
pub struct WasmHarness {
    support: ChaincodeSupport,
    store: Arc<RedbStore>,
    identity: DevIdentity,
    next_block: AtomicU64,
    _chaincode: WasmChaincode,
}

impl WasmHarness {
    /// Validates, compiles and starts `wasm` with the default [`WasmConfig`].
    pub async fn load(wasm: &[u8]) -> Result<Self, HarnessError> {
        Self::with_config(wasm, WasmConfig::default()).await
    }

    /// Like [`load`](Self::load), with `config`.
    pub async fn with_config(wasm: &[u8], config: WasmConfig) -> Result<Self, HarnessError> {
        let store = Arc::new(RedbStore::in_memory()?);
        store.create_channel(CHANNEL)?;
        let support = ChaincodeSupport::new(
            SupportConfig::default(),
            Arc::clone(&store) as Arc<dyn StateStore>,
        )?;
        let runtime = WasmRuntime::new(config)?;
        let module = runtime.compile(wasm)?;
        let package_id = PackageId::new(format!("{CHAINCODE}_1.0:harness"));
        support.define(CHAINCODE, package_id.clone());
        support.expect_registration(&package_id);
        let chaincode = runtime.start(&support, &package_id, &module);
        let wait = Duration::from_secs(10);
        if !support.wait_ready(&package_id, wait).await {
            return Err(HarnessError::NotReady(wait));
        }
        Ok(Self {
            support,
            store,
            identity: DevIdentity::generate("Org1MSP", "Org1", "User1")?,
            next_block: AtomicU64::new(1),
            _chaincode: chaincode,
        })
    }

    /// Runs a transaction and commits its writes if it succeeded.
    pub async fn submit(&self, args: &[&str]) -> Result<Outcome, HarnessError> {
        self.run(args, true).await
    }

    /// Runs a transaction without committing anything.
    pub async fn evaluate(&self, args: &[&str]) -> Result<Outcome, HarnessError> {
        self.run(args, false).await
    }

    async fn run(&self, args: &[&str], commit: bool) -> Result<Outcome, HarnessError> {
        let proposal = ProposalBuilder::new(CHANNEL, CHAINCODE)
            .args(args)
            .build(&self.identity)?;
        let result = self.support.execute(&proposal.signed_proposal).await?;
        let committed = commit && result.response.status < 400;
        if committed {
            let height = Height::new(self.next_block.fetch_add(1, Ordering::SeqCst), 0);
            self.store.commit(
                CHANNEL,
                &[CommitTx {
                    height,
                    tx_id: result.txid.clone(),
                    timestamp: proposal.timestamp,
                    rwset: result.rwset.clone(),
                }],
            )?;
        }
        Ok(Outcome {
            response: result.response,
            event: result.event,
            committed,
        })
    }

    /// The committed value of `key` in the chaincode's namespace.
    pub fn state(&self, key: &str) -> Result<Option<Vec<u8>>, HarnessError> {
        let snapshot = self.store.snapshot(CHANNEL)?;
        Ok(snapshot.get(CHAINCODE, key)?.map(|v| v.value))
    }

    /// Every committed key of the chaincode's namespace and its value, in key order.
    pub fn all_state(&self) -> Result<Vec<(String, Vec<u8>)>, HarnessError> {
        let snapshot = self.store.snapshot(CHANNEL)?;
        Ok(snapshot
            .range(CHAINCODE, "", "", ReadLimit::count(usize::MAX))?
            .into_iter()
            .map(|(key, value)| (key, value.value))
            .collect())
    }
}
