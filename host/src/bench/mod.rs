//! `cchost bench`: wasm against container (and plain-process) chaincode, in one run, on
//! one machine, with the same contract logic: the Rust `examples/asset-transfer` built for
//! wasm, and its Node twin (`examples/node-asset`, contract `AssetTransfer`) in a Docker
//! container and as a process started by hand (dev mode).
//!
//! Per runtime, in Caliper's terms: install, cold and warm launch to READY, the first
//! invoke after a launch, warm invoke latency and throughput at several concurrencies for
//! `TransferAsset` (1 get + 1 put) and `ReadAsset` (1 get), resident memory and artifact
//! sizes. Every transaction is a real proposal (signed before the clock starts) executed by
//! [`ChaincodeSupport::execute`], as the endorser will; nothing is committed but the
//! seed assets, so every run reads the same state.

pub mod commit;
pub mod gateway;
pub mod load;
pub mod node;
pub mod process;
pub mod report;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::ids::PackageId;
use crate::launcher::{Backoff, ChaincodeRuntime, Launcher};
use crate::ledger::{CommitTx, Height, RedbStore, StateStore};
use crate::package::{ChaincodePackage, PackageStore, build_package, build_wasm_package};
use crate::proposal::{BuiltProposal, DevIdentity, ProposalBuilder};
use crate::runtime::docker::{DockerConfig, DockerRuntime};
use crate::runtime::wasm::{WasmConfig, WasmRuntime};
use crate::support::{ChaincodeSupport, ExecuteResult, SupportConfig};

pub use report::{InvokeRun, Report, RuntimeReport, Samples, Stats, Summary};

const CHANNEL: &str = "mychannel";
/// The chaincode name the package is defined under.
const CHAINCODE: &str = "basic";
/// The chaincode name the null module is defined under.
const NULL_CHAINCODE: &str = "null";
/// The null transaction: per transaction, one `GET_STATE` (of a key that is never
/// written) and one `PUT_STATE` through the handler, then a 200 response; nothing else
/// runs in the guest. With a fresh instance per transaction, it is the floor of a
/// TransferAsset (the same two host calls, without the contract's JSON work).
const NULL_WAT: &str = r#"(module
  (import "cchost" "get_state" (func $get (param i32 i32 i32 i32) (result i64)))
  (import "cchost" "put_state" (func $put (param i32 i32 i32 i32 i32 i32) (result i64)))
  (import "cchost" "set_response" (func $respond (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "null")
  (data (i32.const 16) "\08\c8\01")
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (drop (call $get (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 4)))
    (drop (call $put (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4)))
    (drop (call $respond (i32.const 16) (i32.const 3)))
    (i32.const 0)))"#;
/// Transactions run before each measured run (not recorded).
const WARM_UP: usize = 100;

/// A runtime the benchmark compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Runtime {
    /// The Rust chaincode in wasmtime, in-process.
    Wasm,
    /// The Node chaincode in a Docker container.
    Docker,
    /// The Node chaincode as a local process (dev mode).
    Process,
    /// The same Rust contract as wasm, compiled natively against the SDK's gRPC shim
    /// (`asset-transfer-native`) and run as a local process (dev mode): the baseline
    /// that wasm's own cost is measured against.
    Native,
    /// The Rust chaincode in wasmtime in a process of its own (`cchost chaincode run`,
    /// started by the external builder `cchost builder install` writes), its host calls
    /// crossing the gRPC stream to the peer: what a Fabric peer runs.
    External,
}

impl Runtime {
    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Wasm => "wasm",
            Self::Docker => "docker",
            Self::Process => "process",
            Self::Native => "native",
            Self::External => "external",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "wasm" => Ok(Self::Wasm),
            "docker" => Ok(Self::Docker),
            "process" => Ok(Self::Process),
            "native" => Ok(Self::Native),
            "external" => Ok(Self::External),
            other => Err(format!(
                "unknown runtime {other:?}: expected wasm, native, external, docker or process"
            )),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The runtimes, in order.
    pub runtimes: Vec<Runtime>,
    /// Install and launch repetitions.
    pub rounds: usize,
    /// Measured transactions per transaction type and concurrency.
    pub transactions: usize,
    /// Transactions in flight for the warm runs.
    pub concurrency: Vec<usize>,
    /// The asset-transfer module (`examples/asset-transfer` built for wasm32-wasip1).
    pub wasm: PathBuf,
    /// The Node chaincode directory (`examples/node-asset`, with `node_modules`).
    pub node_dir: PathBuf,
    /// The native asset-transfer program (`examples/asset-transfer/native`, needed by
    /// [`Runtime::Native`] only).
    pub native: PathBuf,
    /// The Docker engine and images (the peer address is set by the benchmark).
    pub docker: DockerConfig,
    /// How long a launch may take.
    pub startup_timeout: Duration,
    /// The `cchost` binary the external builder's programs run (needed by
    /// [`Runtime::External`] only).
    pub cchost: Option<PathBuf>,
    /// The Gateway figures (a node with the wasm chaincode, loaded through its Gateway),
    /// when wasm is measured; None: not measured.
    pub gateway: Option<gateway::GatewayBenchConfig>,
}

/// A one-node chaincode host: support, listener, in-memory ledger, a signing identity.
struct Node {
    support: ChaincodeSupport,
    store: Arc<RedbStore>,
    addr: SocketAddr,
    identity: DevIdentity,
    block: u64,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Node {
    async fn start() -> anyhow::Result<Self> {
        let store = Arc::new(RedbStore::in_memory()?);
        store.create_channel(CHANNEL)?;
        let support = ChaincodeSupport::new(
            SupportConfig::default(),
            Arc::clone(&store) as Arc<dyn StateStore>,
        )?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = support.clone();
        tokio::spawn(async move {
            let _ = server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            support,
            store,
            addr,
            identity: DevIdentity::generate("Org1MSP", "Org1", "User1")?,
            block: 1,
            stop: Some(stop),
        })
    }

    fn proposal(&self, args: &[&str]) -> anyhow::Result<BuiltProposal> {
        self.proposal_on(CHAINCODE, args)
    }

    fn proposal_on(&self, chaincode: &str, args: &[&str]) -> anyhow::Result<BuiltProposal> {
        Ok(ProposalBuilder::new(CHANNEL, chaincode)
            .args(args)
            .build(&self.identity)?)
    }

    async fn execute(&self, proposal: &BuiltProposal) -> anyhow::Result<ExecuteResult> {
        execute(&self.support, proposal).await
    }

    fn commit(&mut self, result: &ExecuteResult, proposal: &BuiltProposal) -> anyhow::Result<()> {
        self.store.commit(
            CHANNEL,
            &[CommitTx {
                height: Height::new(self.block, 0),
                tx_id: result.txid.clone(),
                timestamp: proposal.timestamp,
                rwset: result.rwset.clone(),
            }],
        )?;
        self.block += 1;
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn execute(
    support: &ChaincodeSupport,
    proposal: &BuiltProposal,
) -> anyhow::Result<ExecuteResult> {
    let result = support.execute(&proposal.signed_proposal).await?;
    if result.response.status >= 400 {
        bail!(
            "the chaincode answered {}: {}",
            result.response.status,
            result.response.message
        );
    }
    Ok(result)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Resident memory of process `pid` (`self` for this one), bytes.
fn rss(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kb = line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?;
                kb.trim().parse::<u64>().ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time this process has used, all threads, user and system.
fn cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// CPU time process `pid` has used, all threads, user and system (`/proc/PID/stat`, in
/// clock ticks of 10 ms: the runs are long enough for that).
fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let total = ticks(11)? + ticks(12)?;
    Some(Duration::from_millis(total * 1000 / CLOCK_TICKS_PER_SECOND))
}

/// Linux's `USER_HZ`, the unit of `/proc/PID/stat` times (100 on every architecture
/// Linux runs this on).
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The seed transaction's arguments and the two measured ones.
fn transfer_args(i: usize) -> [String; 3] {
    [
        "AssetTransfer:TransferAsset".to_owned(),
        format!("asset{}", i % 6 + 1),
        format!("owner{i}"),
    ]
}

fn read_args(i: usize) -> [String; 2] {
    [
        "AssetTransfer:ReadAsset".to_owned(),
        format!("asset{}", i % 6 + 1),
    ]
}

/// Runs the benchmark; `progress` hears what is being measured.
pub async fn run(config: &BenchConfig, progress: &(dyn Fn(&str) + Sync)) -> anyhow::Result<Report> {
    if config.rounds == 0 || config.transactions == 0 || config.concurrency.is_empty() {
        bail!("rounds, transactions and concurrency must be at least 1");
    }
    let mut report = Report {
        machine: machine(config),
        runtimes: BTreeMap::new(),
        gateway: None,
        summary: None,
    };
    for runtime in &config.runtimes {
        let name = runtime.name();
        progress(&format!("[{name}] starting"));
        let result = match runtime {
            Runtime::Wasm => bench_wasm(config, progress).await,
            Runtime::Docker => bench_docker(config, progress).await,
            Runtime::Process => bench_process(config, progress).await,
            Runtime::Native => bench_native(config, progress).await,
            Runtime::External => bench_external(config, progress).await,
        }
        .with_context(|| format!("benchmarking the {name} runtime"))?;
        report.runtimes.insert(name.to_owned(), result);
    }
    if let Some(gateway) = &config.gateway
        && config.runtimes.contains(&Runtime::Wasm)
    {
        report.gateway = Some(
            gateway::run(&config.wasm, gateway, progress)
                .await
                .context("benchmarking the Gateway")?,
        );
    }
    report.summarize();
    Ok(report)
}

/// The machine and the run's settings, for the report.
fn machine(config: &BenchConfig) -> BTreeMap<String, String> {
    let mut machine = machine_facts();
    machine.extend([
        ("rounds".to_owned(), config.rounds.to_string()),
        ("transactions".to_owned(), config.transactions.to_string()),
        (
            "concurrency".to_owned(),
            config
                .concurrency
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
    ]);
    machine
}

/// The machine: CPU, memory, kernel, versions, and when the run started.
fn machine_facts() -> BTreeMap<String, String> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let memory = read("/proc/meminfo")
        .lines()
        .next()
        .map(|l| l.trim_start_matches("MemTotal:").trim().to_owned())
        .unwrap_or_default();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    BTreeMap::from([
        ("cpu".to_owned(), model),
        ("cpus".to_owned(), cpus.to_string()),
        ("memory".to_owned(), memory),
        (
            "kernel".to_owned(),
            read("/proc/sys/kernel/osrelease").trim().to_owned(),
        ),
        ("cchost".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        ("node".to_owned(), node),
        (
            "started_unix".to_owned(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string(),
        ),
    ])
}

/// A launcher over `data` with one runtime and no back-off (failures are the run's end).
fn launcher(
    node: &Node,
    data: &Path,
    runtime: Arc<dyn ChaincodeRuntime>,
    config: &BenchConfig,
) -> anyhow::Result<Arc<Launcher>> {
    Ok(Launcher::with_backoff(
        node.support.clone(),
        PackageStore::open(data.join("chaincodes"))?,
        vec![runtime],
        config.startup_timeout,
        Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            stable_after: Duration::ZERO,
        },
    ))
}

/// Launches `id` and times it, then times its first transaction.
async fn launch_and_first_invoke(
    node: &Node,
    launcher: &Launcher,
    id: &PackageId,
    round: usize,
) -> anyhow::Result<(f64, f64)> {
    let first = node.proposal(&transfer_args(round).each_ref().map(String::as_str))?;
    let started = Instant::now();
    launcher.launch(id).await?;
    let launch = micros(started.elapsed());
    let started = Instant::now();
    node.execute(&first).await?;
    Ok((launch, micros(started.elapsed())))
}

/// Launches `id` (not timed), seeds the six assets (committed) and stops it again.
async fn seed(node: &mut Node, launcher: &Launcher, id: &PackageId) -> anyhow::Result<()> {
    launcher.launch(id).await?;
    let proposal = node.proposal(&["AssetTransfer:InitLedger"])?;
    let result = node.execute(&proposal).await?;
    node.commit(&result, &proposal)?;
    launcher.stop(id).await;
    Ok(())
}

/// The warm runs: each transaction type at each concurrency.
async fn warm_invokes(
    node: &Node,
    config: &BenchConfig,
    label: &str,
    transactions: &[&str],
    chaincode_pid: Option<u32>,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Vec<InvokeRun>> {
    let mut runs = Vec::new();
    for &transaction in transactions {
        for &concurrency in &config.concurrency {
            progress(&format!(
                "[{label}] {transaction} × {} at concurrency {concurrency}",
                config.transactions
            ));
            let build = |i: usize| match transaction {
                "transfer" => node.proposal(&transfer_args(i).each_ref().map(String::as_str)),
                "null" => node.proposal_on(NULL_CHAINCODE, &["null"]),
                _ => node.proposal(&read_args(i).each_ref().map(String::as_str)),
            };
            let warm_up: Vec<BuiltProposal> = (0..WARM_UP.min(config.transactions))
                .map(build)
                .collect::<Result<_, _>>()?;
            run_concurrently(&node.support, warm_up, concurrency).await?;
            let proposals: Vec<BuiltProposal> = (0..config.transactions)
                .map(build)
                .collect::<Result<_, _>>()?;
            let chaincode_cpu = || chaincode_pid.and_then(process_cpu_time);
            let (started, cpu, cc_cpu) = (Instant::now(), cpu_time(), chaincode_cpu());
            let samples = run_concurrently(&node.support, proposals, concurrency).await?;
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = cpu_time().saturating_sub(cpu);
            let cc_cpu = chaincode_cpu()
                .zip(cc_cpu)
                .map(|(after, before)| after.saturating_sub(before));
            runs.push(InvokeRun {
                transaction: transaction.to_owned(),
                concurrency,
                tps: samples.len() as f64 / elapsed,
                host_cpu_us_per_tx: micros(cpu) / samples.len().max(1) as f64,
                chaincode_cpu_us_per_tx: cc_cpu.map(|c| micros(c) / samples.len().max(1) as f64),
                latency: Samples::new(samples),
            });
        }
    }
    Ok(runs)
}

/// Executes `proposals` with `concurrency` in flight; the latency of each, µs.
async fn run_concurrently(
    support: &ChaincodeSupport,
    proposals: Vec<BuiltProposal>,
    concurrency: usize,
) -> anyhow::Result<Vec<f64>> {
    let proposals = Arc::new(proposals);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (support, proposals, next) =
                (support.clone(), Arc::clone(&proposals), Arc::clone(&next));
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while let Some(proposal) = proposals.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let started = Instant::now();
                    execute(&support, proposal).await?;
                    samples.push(micros(started.elapsed()));
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(proposals.len());
    for worker in workers {
        samples.extend(worker.await??);
    }
    Ok(samples)
}

async fn bench_wasm(
    config: &BenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<RuntimeReport> {
    let wasm = std::fs::read(&config.wasm)
        .with_context(|| format!("reading the wasm module {}", config.wasm.display()))?;
    let package = build_wasm_package("asset_transfer_wasm", "asset_transfer", &wasm)?;
    let parsed = ChaincodePackage::parse(&package)?;
    let mut node = Node::start().await?;
    let scratch = tempfile::tempdir()?;
    let wasm_config = |cache: &Path| WasmConfig {
        cache_dir: Some(cache.to_owned()),
        ..WasmConfig::default()
    };

    // Install: validate + compile + write the artifact, into an empty cache each time.
    let mut install = Vec::new();
    for round in 0..config.rounds {
        progress(&format!("[wasm] install {}/{}", round + 1, config.rounds));
        let cache = scratch.path().join(format!("install-{round}"));
        let runtime = WasmRuntime::new(wasm_config(&cache))?;
        let started = Instant::now();
        runtime.install(&parsed)?;
        install.push(micros(started.elapsed()));
    }

    // The data directory every launcher below shares: package installed, artifact cached.
    let data = scratch.path().join("data");
    let cache = data.join("wasm-cache");
    let id = {
        let runtime = Arc::new(WasmRuntime::new(wasm_config(&cache))?);
        launcher(&node, &data, runtime, config)?.install(&package)?
    };
    node.support.define(CHAINCODE, id.clone());
    {
        let runtime = Arc::new(WasmRuntime::new(wasm_config(&cache))?);
        let seeder = launcher(&node, &data, runtime, config)?;
        seed(&mut node, &seeder, &id).await?;
    }

    let (mut cold, mut warm, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cold_start, mut setup) = (Vec::new(), Vec::new());
    for round in 0..config.rounds {
        progress(&format!("[wasm] launches {}/{}", round + 1, config.rounds));
        // Cold: a fresh runtime and launcher (as after a restart): the package and the
        // artifact come from disk. Making the runtime (engine, instance pool, linker) is
        // timed apart: a peer does it once, when it starts, as a Docker engine is up
        // before any container starts.
        let made = Instant::now();
        let runtime = Arc::new(WasmRuntime::new(wasm_config(&cache))?);
        let launcher = launcher(&node, &data, runtime, config)?;
        setup.push(micros(made.elapsed()));
        let (launch, invoke) = launch_and_first_invoke(&node, &launcher, &id, round).await?;
        cold.push(launch);
        cold_start.push(launch + invoke);
        first.push(invoke);
        // Warm: stopped and started again by the same launcher.
        launcher.stop(&id).await;
        let (launch, invoke) = launch_and_first_invoke(&node, &launcher, &id, round).await?;
        warm.push(launch);
        first.push(invoke);
        launcher.stop(&id).await;
    }

    let runtime = Arc::new(WasmRuntime::new(wasm_config(&cache))?);
    let launcher = launcher(&node, &data, runtime, config)?;
    let before = rss("self");
    launcher.launch(&id).await?;
    for i in 0..100 {
        node.execute(&node.proposal(&transfer_args(i).each_ref().map(String::as_str))?)
            .await?;
    }
    let memory = rss("self").saturating_sub(before);
    let null = build_wasm_package("null_wasm", "null", &wat::parse_str(NULL_WAT)?)?;
    let null_id = launcher.install(&null)?;
    node.support.define(NULL_CHAINCODE, null_id.clone());
    launcher.launch(&null_id).await?;
    let invoke = warm_invokes(
        &node,
        config,
        "wasm",
        &["transfer", "read", "null"],
        None,
        progress,
    )
    .await?;
    launcher.shutdown().await;

    let artifact = std::fs::read_dir(&cache)?
        .flatten()
        .flat_map(|engine| {
            std::fs::read_dir(engine.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|f| f.metadata().ok().map(|m| m.len()))
        .sum::<u64>();
    Ok(RuntimeReport {
        install_is: "validate + compile + write the artifact (empty cache)".to_owned(),
        install: Samples::new(install),
        cold_launch: Samples::new(cold),
        cold_start: Samples::new(cold_start),
        runtime_setup: Samples::new(setup),
        warm_launch: Samples::new(warm),
        first_invoke: Samples::new(first),
        invoke,
        memory_bytes: memory,
        memory_is: "growth of cchost's resident memory from launching the chaincode and running 100 TransferAsset".to_owned(),
        artifact_bytes: BTreeMap::from([
            ("package".to_owned(), package.len() as u64),
            ("wasm".to_owned(), wasm.len() as u64),
            ("compiled_artifact".to_owned(), artifact),
        ]),
    })
}

/// The Node chaincode directory as a `node` package (with its `node_modules`).
fn node_package(dir: &Path, label: &str) -> anyhow::Result<Vec<u8>> {
    if !dir.join("node_modules/fabric-shim/cli.js").is_file() {
        bail!(
            "{} has no node_modules/fabric-shim: run `npm ci` there (scripts/setup does)",
            dir.display()
        );
    }
    let files = crate::package::source_files(dir)?;
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    Ok(build_package(label, "node", "", &refs)?)
}

async fn bench_docker(
    config: &BenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<RuntimeReport> {
    let package = node_package(&config.node_dir, "asset_transfer_node")?;
    let parsed = ChaincodePackage::parse(&package)?;
    let mut node = Node::start().await?;
    let docker = DockerRuntime::connect(
        DockerConfig {
            peer_address: node.addr.to_string(),
            build_cache: false,
            ..config.docker.clone()
        },
        Some(Arc::clone(node.support.metrics())),
    )
    .map_err(anyhow::Error::msg)?;
    docker.ping().await.map_err(anyhow::Error::msg)?;
    let scratch = tempfile::tempdir()?;
    let data = scratch.path().join("data");
    let launcher = launcher(&node, &data, Arc::new(docker.clone()), config)?;
    let id = launcher.install(&package)?;
    node.support.define(CHAINCODE, id.clone());
    seed(&mut node, &launcher, &id).await?;

    let (mut install, mut cold, mut warm, mut first) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cold_start = Vec::new();
    for round in 0..config.rounds {
        progress(&format!(
            "[docker] image build and launches {}/{}",
            round + 1,
            config.rounds
        ));
        // Install: a cold image build (the previous image removed first).
        docker.remove_image(&id).await;
        let started = Instant::now();
        docker.build_image(&parsed).await?;
        install.push(micros(started.elapsed()));
        // Cold: the first container of the new image.
        let (launch, invoke) = launch_and_first_invoke(&node, &launcher, &id, round).await?;
        cold.push(launch);
        cold_start.push(launch + invoke);
        first.push(invoke);
        // Warm: a new container of the existing image.
        launcher.stop(&id).await;
        let (launch, invoke) = launch_and_first_invoke(&node, &launcher, &id, round).await?;
        warm.push(launch);
        first.push(invoke);
        launcher.stop(&id).await;
    }

    launcher.launch(&id).await?;
    for i in 0..100 {
        node.execute(&node.proposal(&transfer_args(i).each_ref().map(String::as_str))?)
            .await?;
    }
    let pid = docker
        .container_pid(&id)
        .await
        .map_err(anyhow::Error::msg)?;
    let memory = rss(&pid.to_string());
    let cgroup = docker.memory_usage(&id).await.map_err(anyhow::Error::msg)?;
    let invoke = warm_invokes(
        &node,
        config,
        "docker",
        &["transfer", "read"],
        None,
        progress,
    )
    .await?;
    let image = docker.image_size(&id).await.map_err(anyhow::Error::msg)?;
    launcher.shutdown().await;
    Ok(RuntimeReport {
        install_is: "cold image build from the package (node_modules included: no network)"
            .to_owned(),
        install: Samples::new(install),
        cold_launch: Samples::new(cold),
        cold_start: Samples::new(cold_start),
        runtime_setup: Samples::new(Vec::new()),
        warm_launch: Samples::new(warm),
        first_invoke: Samples::new(first),
        invoke,
        memory_bytes: memory,
        memory_is: format!(
            "the node process's resident memory after 100 TransferAsset (the container's cgroup: {cgroup} bytes without inactive file cache)"
        ),
        artifact_bytes: BTreeMap::from([
            ("package".to_owned(), package.len() as u64),
            ("image".to_owned(), image),
        ]),
    })
}

async fn bench_process(
    config: &BenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<RuntimeReport> {
    let package = node_package(&config.node_dir, "asset_transfer_process")?;
    bench_dev_mode(
        config,
        package,
        |address| process::ProcessRuntime::node(config.node_dir.clone(), address),
        "the node process's resident memory after 100 TransferAsset",
        progress,
    )
    .await
}

async fn bench_native(
    config: &BenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<RuntimeReport> {
    let program = std::fs::read(&config.native).with_context(|| {
        format!(
            "reading the native chaincode {} (build examples/asset-transfer/native)",
            config.native.display()
        )
    })?;
    // What an operator would hand over: the program (the package is only its id here,
    // the operator starts the process).
    let package = build_package(
        "asset_transfer_native",
        "native",
        "",
        &[("asset-transfer-native", &program)],
    )?;
    // It runs in its own directory: a relative path would name another file there.
    let program = std::path::absolute(&config.native)?;
    bench_dev_mode(
        config,
        package,
        |address| process::ProcessRuntime::native(&program, address),
        "the native process's resident memory after 100 TransferAsset",
        progress,
    )
    .await
}

/// A chaincode started as a process by hand (Fabric's dev mode): launches, cold starts,
/// warm runs with the process's own CPU time, its memory.
async fn bench_dev_mode(
    config: &BenchConfig,
    package: Vec<u8>,
    runtime: impl FnOnce(String) -> process::ProcessRuntime,
    memory_is: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<RuntimeReport> {
    let mut node = Node::start().await?;
    let runtime = runtime(node.addr.to_string());
    let label = runtime.name;
    let scratch = tempfile::tempdir()?;
    let data = scratch.path().join("data");
    let launcher = launcher(&node, &data, Arc::new(runtime.clone()), config)?;
    let id = launcher.install(&package)?;
    node.support.define(CHAINCODE, id.clone());
    seed(&mut node, &launcher, &id).await?;

    let (mut cold, mut warm, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let mut cold_start = Vec::new();
    for round in 0..config.rounds {
        progress(&format!(
            "[{label}] launches {}/{}",
            round + 1,
            config.rounds
        ));
        let (launch, invoke) = launch_and_first_invoke(&node, &launcher, &id, round).await?;
        cold.push(launch);
        cold_start.push(launch + invoke);
        first.push(invoke);
        launcher.stop(&id).await;
        let (launch, invoke) = launch_and_first_invoke(&node, &launcher, &id, round).await?;
        warm.push(launch);
        first.push(invoke);
        launcher.stop(&id).await;
    }

    launcher.launch(&id).await?;
    for i in 0..100 {
        node.execute(&node.proposal(&transfer_args(i).each_ref().map(String::as_str))?)
            .await?;
    }
    let pid = runtime.last_pid.load(Ordering::Relaxed);
    let memory = rss(&pid.to_string());
    let invoke = warm_invokes(
        &node,
        config,
        label,
        &["transfer", "read"],
        Some(pid),
        progress,
    )
    .await?;
    launcher.shutdown().await;
    Ok(RuntimeReport {
        install_is: "nothing: the operator starts the process".to_owned(),
        install: Samples::new(Vec::new()),
        cold_launch: Samples::new(cold),
        cold_start: Samples::new(cold_start),
        runtime_setup: Samples::new(Vec::new()),
        warm_launch: Samples::new(warm),
        first_invoke: Samples::new(first),
        invoke,
        memory_bytes: memory,
        memory_is: memory_is.to_owned(),
        artifact_bytes: BTreeMap::from([("package".to_owned(), package.len() as u64)]),
    })
}

/// The process `cchost chaincode run` this process started last (its programs exec
/// cchost, so it is a child of this process), if one runs.
fn chaincode_run_pid() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The parent is the fourth field, after the parenthesised command name.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(me)
        })
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(14).any(|w| w == b"chaincode\0run\0"))
        })
        .max()
}

async fn bench_external(
    config: &BenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<RuntimeReport> {
    use crate::runtime::external::{ExternalBuilder, ExternalConfig, ExternalRuntime};

    let cchost = config
        .cchost
        .as_deref()
        .context("the external runtime needs the cchost binary its builder runs")?;
    let wasm = std::fs::read(&config.wasm)
        .with_context(|| format!("reading the wasm module {}", config.wasm.display()))?;
    let package = build_wasm_package("asset_transfer_external", "asset_transfer", &wasm)?;
    let mut node = Node::start().await?;
    let scratch = tempfile::tempdir()?;
    let builder = ExternalBuilder {
        name: "wasm".to_owned(),
        path: scratch.path().join("builder"),
        propagate_environment: Vec::new(),
    };
    crate::runtime::wasm::builder::install(&builder.path, cchost)?;
    let peer_address = node.addr.to_string();
    let external = |data: &Path| -> anyhow::Result<Arc<dyn ChaincodeRuntime>> {
        Ok(Arc::new(ExternalRuntime::new(ExternalConfig {
            builders: vec![builder.clone()],
            builds_dir: data.join("externalbuilder/builds"),
            peer_address: peer_address.clone(),
            mspid: "Org1MSP".to_owned(),
            build_timeout: config.startup_timeout,
        })?))
    };

    // Install: detect, build (validate + precompile, in a cchost process) and release,
    // into an empty data directory each time.
    let mut install = Vec::new();
    for round in 0..config.rounds {
        progress(&format!(
            "[external] install {}/{}",
            round + 1,
            config.rounds
        ));
        let data = scratch.path().join(format!("install-{round}"));
        let launcher = launcher(&node, &data, external(&data)?, config)?;
        let started = Instant::now();
        launcher.install(&package)?;
        install.push(micros(started.elapsed()));
    }

    let data = scratch.path().join("data");
    let id = launcher(&node, &data, external(&data)?, config)?.install(&package)?;
    node.support.define(CHAINCODE, id.clone());
    {
        let seeder = launcher(&node, &data, external(&data)?, config)?;
        seed(&mut node, &seeder, &id).await?;
    }

    // Every launch starts a process that loads the kept build: cold is a fresh launcher
    // (as after a restart), warm the same launcher again.
    let (mut cold, mut warm, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let mut cold_start = Vec::new();
    for round in 0..config.rounds {
        progress(&format!(
            "[external] launches {}/{}",
            round + 1,
            config.rounds
        ));
        let launcher = launcher(&node, &data, external(&data)?, config)?;
        let (launch, invoke) = launch_and_first_invoke(&node, &launcher, &id, round).await?;
        cold.push(launch);
        cold_start.push(launch + invoke);
        first.push(invoke);
        launcher.stop(&id).await;
        let (launch, invoke) = launch_and_first_invoke(&node, &launcher, &id, round).await?;
        warm.push(launch);
        first.push(invoke);
        launcher.stop(&id).await;
    }

    let launcher = launcher(&node, &data, external(&data)?, config)?;
    launcher.launch(&id).await?;
    for i in 0..100 {
        node.execute(&node.proposal(&transfer_args(i).each_ref().map(String::as_str))?)
            .await?;
    }
    let pid = chaincode_run_pid();
    let memory = pid.map_or(0, |pid| rss(&pid.to_string()));
    let invoke = warm_invokes(
        &node,
        config,
        "external",
        &["transfer", "read"],
        pid,
        progress,
    )
    .await?;
    launcher.shutdown().await;
    let kept = |name: &str| {
        std::fs::read_dir(data.join("externalbuilder/builds"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|build| std::fs::metadata(build.path().join("bld").join(name)).ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    Ok(RuntimeReport {
        install_is: "detect + build (validate + precompile) + release by the external builder's programs (empty data directory)".to_owned(),
        install: Samples::new(install),
        cold_launch: Samples::new(cold),
        cold_start: Samples::new(cold_start),
        runtime_setup: Samples::new(Vec::new()),
        warm_launch: Samples::new(warm),
        first_invoke: Samples::new(first),
        invoke,
        memory_bytes: memory,
        memory_is: "the `cchost chaincode run` process's resident memory after 100 TransferAsset".to_owned(),
        artifact_bytes: BTreeMap::from([
            ("package".to_owned(), package.len() as u64),
            ("wasm".to_owned(), wasm.len() as u64),
            ("compiled_artifact".to_owned(), kept(crate::runtime::wasm::BUILD_ARTIFACT)),
        ]),
    })
}
