//! A host for campaign cases: the real wasm runtime behind the real handler, over an
//! in-memory ledger holding a few keys, one generated chaincode at a time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cchost::ids::PackageId;
use cchost::ledger::{CommitTx, Height, RedbStore, StateStore, TxSimulator};
use cchost::proposal::{BuiltProposal, DevIdentity, ProposalBuilder};
use cchost::runtime::wasm::{WasmConfig, WasmError, WasmModule, WasmRuntime};
use cchost::support::{ChaincodeSupport, ExecuteError, ExecuteResult, SupportConfig};
use cchost_proto::protos::SignedProposal;

/// The channel cases run on.
pub const CHANNEL: &str = "campaign";
/// The name generated chaincode is defined under.
pub const CHAINCODE: &str = "gen";
/// Keys in the chaincode's namespace before every case (values `v0`..), so that reads and
/// range queries find something.
pub const PRELOADED_KEYS: usize = 8;

/// How long a chaincode may take to register, and to deregister once stopped.
const REGISTRATION: Duration = Duration::from_secs(10);

/// One host: a runtime, a support, a ledger.
#[derive(Debug)]
pub struct CampaignHost {
    /// The wasm runtime (its engine, linker and pool).
    pub runtime: WasmRuntime,
    /// The peer side: handler, registry, execute.
    pub support: ChaincodeSupport,
    package_id: PackageId,
}

/// What running one case gave.
#[derive(Debug)]
pub enum Run {
    /// Install refused or could not compile the module.
    Refused(WasmError),
    /// The transaction ran: the chaincode's answer or the peer's error, and the fuel the
    /// module used.
    Executed {
        /// The answer.
        result: Result<ExecuteResult, ExecuteError>,
        /// Fuel used by the module's invocation.
        fuel: u64,
        /// How long the transaction took (not counting compilation and launch).
        elapsed: std::time::Duration,
    },
}

/// An in-memory ledger with channel [`CHANNEL`] holding `k0`..`k{keys-1}` = `v0`.. in
/// each of `namespaces`, committed as block 1.
pub fn preloaded_store(namespaces: &[&str], keys: usize) -> anyhow::Result<Arc<RedbStore>> {
    let store = Arc::new(RedbStore::in_memory()?);
    store.create_channel(CHANNEL)?;
    let mut simulator = TxSimulator::new(store.snapshot(CHANNEL)?, "preload");
    for namespace in namespaces {
        for i in 0..keys {
            simulator.put_state(namespace, &format!("k{i}"), format!("v{i}").into_bytes())?;
        }
    }
    store.commit(
        CHANNEL,
        &[CommitTx {
            height: Height::new(1, 0),
            tx_id: "preload".to_owned(),
            timestamp: prost_types::Timestamp::default(),
            rwset: simulator.read_write_set(),
        }],
    )?;
    Ok(store)
}

impl CampaignHost {
    /// A host with `wasm` limits and `support` settings, its ledger preloaded.
    pub fn new(wasm: WasmConfig, support: SupportConfig) -> anyhow::Result<Self> {
        let store = preloaded_store(&[CHAINCODE], PRELOADED_KEYS)?;
        let support = ChaincodeSupport::new(support, store as Arc<dyn StateStore>)?;
        let package_id = PackageId::new(format!("{CHAINCODE}_1.0:campaign"));
        support.define(CHAINCODE, package_id.clone());
        Ok(Self {
            runtime: WasmRuntime::new(wasm)?,
            support,
            package_id,
        })
    }

    /// Compiles `wasm` as install does (validation, ABI, link check), starts it, runs
    /// `proposal` and stops it again.
    pub async fn run(&self, wasm: &[u8], proposal: &SignedProposal) -> anyhow::Result<Run> {
        let module = match self.runtime.compile(wasm) {
            Ok(module) => module,
            Err(refusal) => return Ok(Run::Refused(refusal)),
        };
        self.run_module(&module, proposal).await
    }

    /// Starts `module`, runs `proposal`, stops it.
    pub async fn run_module(
        &self,
        module: &WasmModule,
        proposal: &SignedProposal,
    ) -> anyhow::Result<Run> {
        let support = &self.support;
        support.expect_registration(&self.package_id);
        let chaincode = self.runtime.start(support, &self.package_id, module);
        anyhow::ensure!(
            support.wait_ready(&self.package_id, REGISTRATION).await,
            "the chaincode did not register within {REGISTRATION:?}"
        );
        let before = module.fuel_consumed();
        let started = std::time::Instant::now();
        let result = support.execute(proposal).await;
        let elapsed = started.elapsed();
        let fuel = module.fuel_consumed() - before;
        chaincode.stop();
        anyhow::ensure!(
            support
                .wait_deregistered(&self.package_id, REGISTRATION)
                .await,
            "the stopped chaincode did not deregister within {REGISTRATION:?}"
        );
        Ok(Run::Executed {
            result,
            fuel,
            elapsed,
        })
    }
}

/// A signed proposal invoking the generated chaincode with `args`.
pub fn proposal(identity: &DevIdentity, args: &[Vec<u8>]) -> anyhow::Result<BuiltProposal> {
    ProposalBuilder::new(CHANNEL, CHAINCODE)
        .args(args)
        .build(identity)
        .context("building a proposal")
}
