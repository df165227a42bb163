//! `cchost bench node`: a node started in this process on a temporary data directory,
//! driven over gRPC (loopback) by the client library as the CLI drives it:
//!
//! - **endorse**: `ReadAsset` proposals to the Endorser (Fabric's checks, the simulation
//!   in wasm, the node's signature), `--transactions` of them at each concurrency;
//! - **endorse + commit**: `TransferAsset` (each in flight on its own asset) endorsed,
//!   assembled and signed by the client, broadcast, and waited for through
//!   DeliverFiltered as `--waitForEvent` waits: ordering, validation (two signatures
//!   verified), the block file `fdatasync` and the state commit included;
//! - the ECDSA P-256 signing and verification rates of this build on one thread, to set
//!   the figures against: each endorse costs the client one signature, the node one
//!   verification and one signature; each commit adds the client's envelope signature,
//!   the orderer's block signature (per block), and two verifications at validation.
//!
//! Proposals are built and signed before the clock starts; the client's envelope
//! signatures and commit waits are inside it. The orderer cuts blocks after
//! `--batch-timeout` (default 10 ms, not Fabric's 2 s: a closed loop waiting for commits
//! would measure the timeout) or 500 transactions.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::{Samples, micros};
use crate::client::Client;
use crate::node::{RunningNode, StartOptions};
use crate::proposal::{BuiltProposal, ProposalBuilder};
use cchost_proto::protos::TxValidationCode;

/// What to run.
#[derive(Debug, Clone)]
pub struct NodeBenchConfig {
    /// The asset-transfer module.
    pub wasm: PathBuf,
    /// Measured transactions per figure and concurrency.
    pub transactions: usize,
    /// Transactions in flight.
    pub concurrency: Vec<usize>,
    /// The orderer's batch timeout.
    pub batch_timeout: Duration,
}

/// One measured run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeRun {
    /// `endorse` or `endorse+commit`.
    pub figure: String,
    /// Transactions in flight.
    pub concurrency: usize,
    /// Latency of each.
    #[serde(flatten)]
    pub latency: Samples,
    /// Transactions per second.
    pub tps: f64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeReport {
    /// ECDSA P-256 signatures per second, one thread.
    pub sign_per_s: f64,
    /// ECDSA P-256 verifications per second, one thread.
    pub verify_per_s: f64,
    /// The runs.
    pub runs: Vec<NodeRun>,
}

impl NodeReport {
    /// The table printed at the end.
    pub fn table(&self) -> String {
        let mut out = format!(
            "ECDSA P-256, one thread: {:.0} signatures/s, {:.0} verifications/s\n",
            self.sign_per_s, self.verify_per_s
        );
        out.push_str(&format!(
            "{:<16}{:>6}{:>12}{:>12}{:>12}\n",
            "figure", "c", "tx/s", "p50 (µs)", "p99 (µs)"
        ));
        for run in &self.runs {
            out.push_str(&format!(
                "{:<16}{:>6}{:>12.0}{:>12.0}{:>12.0}\n",
                run.figure,
                run.concurrency,
                run.tps,
                run.latency.stats.p50_us,
                run.latency.stats.p99_us
            ));
        }
        out
    }
}

/// Signs and verifies on one thread for about a second each; the rates.
pub(crate) fn ecdsa_rates() -> anyhow::Result<(f64, f64)> {
    let ca = crate::msp::DevCa::new("Org1MSP", "Org1")?;
    let identity = ca.issue(crate::msp::Role::Client, "bench")?;
    let msps = crate::msp::MspManager::new([ca.msp()?]);
    let verifier = msps.deserialize(&identity.creator())?;
    let message = vec![7u8; 2048];
    let rate = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut n = 0u32;
        while started.elapsed() < Duration::from_secs(1) {
            f()?;
            n += 1;
        }
        Ok(f64::from(n) / started.elapsed().as_secs_f64())
    };
    let signature = identity.sign(&message);
    let sign = rate(&mut || {
        std::hint::black_box(identity.sign(&message));
        Ok(())
    })?;
    let verify = rate(&mut || Ok(verifier.verify(&message, &signature)?))?;
    Ok((sign, verify))
}

/// Runs `count` jobs with `concurrency` in flight; each job's latency, and the elapsed
/// time.
async fn closed_loop<F, Fut>(
    count: usize,
    concurrency: usize,
    job: F,
) -> anyhow::Result<(Vec<f64>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (job, next) = (Arc::clone(&job), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                job(i).await?;
                latencies.push(micros(t.elapsed()));
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((all, started.elapsed()))
}

/// A node in this process on a temporary data directory (its orderer cutting blocks
/// after `batch_timeout`), with `wasm` (asset-transfer) deployed as `basic` and its
/// `InitLedger` committed; a client of it and its user. Keep the directory while the
/// node runs.
pub(crate) async fn start_with_asset_transfer(
    wasm: &std::path::Path,
    batch_timeout: Duration,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<(
    tempfile::TempDir,
    RunningNode,
    Client,
    crate::proposal::DevIdentity,
)> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data)?;
    std::fs::write(
        data.join(crate::node::config::FILE),
        format!(
            "[peer]\nlistenAddress = \"127.0.0.1:0\"\nchaincodeListenAddress = \"127.0.0.1:0\"\n\
             [operations]\nlistenAddress = \"\"\n[rest]\nenabled = false\n[orderer]\nBatchTimeout = \"{}ms\"\n",
            batch_timeout.as_millis()
        ),
    )?;
    let node = RunningNode::start(&data, StartOptions::default()).await?;
    let client = Client::connect(node.profile.clone()).await?;
    let wasm = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let package = crate::package::build_wasm_package("basic_1.0", "asset_transfer.wasm", &wasm)?;
    progress("deploying asset-transfer as basic");
    client
        .deploy(
            package,
            "basic",
            "1.0",
            false,
            Vec::new(),
            Duration::from_secs(60),
        )
        .await?;
    let user = client.user()?;
    let seed = ProposalBuilder::new(node.profile.channel.clone(), "basic")
        .args(["InitLedger"])
        .build(&user)?;
    let response = client.endorse(&seed).await?;
    client
        .submit(&seed, &[response], &user, Some(Duration::from_secs(60)))
        .await?;
    Ok((dir, node, client, user))
}

/// Runs the benchmark; `progress` hears what is being measured.
pub async fn run(
    config: &NodeBenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<NodeReport> {
    if config.transactions == 0 || config.concurrency.is_empty() {
        bail!("transactions and concurrency must be at least 1");
    }
    progress("ECDSA P-256 rates");
    let (sign_per_s, verify_per_s) = tokio::task::spawn_blocking(ecdsa_rates).await??;

    let (_dir, node, client, user) =
        start_with_asset_transfer(&config.wasm, config.batch_timeout, progress).await?;
    let user = Arc::new(user);

    let mut runs = Vec::new();
    for &c in &config.concurrency {
        let proposals: Arc<Vec<BuiltProposal>> = Arc::new(
            (0..config.transactions)
                .map(|i| {
                    ProposalBuilder::new(node.profile.channel.clone(), "basic")
                        .args(["ReadAsset".to_owned(), format!("asset{}", i % 6 + 1)])
                        .build(&user)
                })
                .collect::<Result<_, _>>()?,
        );
        progress(&format!("endorse, {c} in flight"));
        let job_client = client.clone();
        let (latencies, elapsed) = closed_loop(config.transactions, c, move |i| {
            let (client, proposals) = (job_client.clone(), Arc::clone(&proposals));
            async move {
                let proposal = proposals.get(i).context("no proposal")?;
                let response = client.endorse(proposal).await?;
                if response.endorsement.is_none() {
                    bail!("not endorsed: {:?}", response.response);
                }
                Ok(())
            }
        })
        .await?;
        runs.push(NodeRun {
            figure: "endorse".into(),
            concurrency: c,
            latency: Samples::new(latencies),
            tps: config.transactions as f64 / elapsed.as_secs_f64(),
        });

        // Each worker transfers its own asset (no MVCC conflicts between them).
        let assets: Vec<String> = (0..c).map(|w| format!("bench{c}_{w}")).collect();
        for asset in &assets {
            let create = ProposalBuilder::new(node.profile.channel.clone(), "basic")
                .args(["CreateAsset", asset, "blue", "5", "Tomoko", "300"])
                .build(&user)?;
            let response = client.endorse(&create).await?;
            client.submit(&create, &[response], &user, None).await?;
        }
        // Wait until the last creation is visible.
        let probe = assets.last().cloned().unwrap_or_default();
        for _ in 0..600 {
            let q = ProposalBuilder::new(node.profile.channel.clone(), "basic")
                .args(["AssetExists", probe.as_str()])
                .build(&user)?;
            let r = client.endorse(&q).await?;
            if r.response.as_ref().is_some_and(|r| r.payload == b"true") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let per_worker = config.transactions.div_ceil(c.max(1));
        let transfers: Arc<Vec<BuiltProposal>> = Arc::new(
            (0..per_worker * c)
                .map(|i| {
                    // Job i runs on worker i % c (`closed_loop_by_worker`), which owns
                    // asset i % c: no two transactions in flight touch one asset.
                    ProposalBuilder::new(node.profile.channel.clone(), "basic")
                        .args([
                            "TransferAsset".to_owned(),
                            format!("bench{c}_{}", i % c),
                            format!("owner{i}"),
                        ])
                        .build(&user)
                })
                .collect::<Result<_, _>>()?,
        );
        progress(&format!("endorse + commit, {c} in flight"));
        let (job_client, job_user) = (client.clone(), Arc::clone(&user));
        let total = per_worker * c;
        let (latencies, elapsed) = closed_loop_by_worker(total, c, move |i| {
            let (client, user, transfers) = (
                job_client.clone(),
                Arc::clone(&job_user),
                Arc::clone(&transfers),
            );
            async move {
                let proposal = transfers.get(i).context("no proposal")?;
                let response = client.endorse(proposal).await?;
                let committed = client
                    .submit(proposal, &[response], &user, Some(Duration::from_secs(60)))
                    .await?
                    .context("not waited for")?;
                if committed.code != TxValidationCode::Valid {
                    bail!("transaction {} was {:?}", committed.txid, committed.code);
                }
                Ok(())
            }
        })
        .await?;
        runs.push(NodeRun {
            figure: "endorse+commit".into(),
            concurrency: c,
            latency: Samples::new(latencies),
            tps: total as f64 / elapsed.as_secs_f64(),
        });
    }
    node.stop().await?;
    Ok(NodeReport {
        sign_per_s,
        verify_per_s,
        runs,
    })
}

/// Like [`closed_loop`], but worker `w` runs jobs `w, w + n, w + 2n, ...` (so a job's
/// index modulo the concurrency names its worker).
async fn closed_loop_by_worker<F, Fut>(
    count: usize,
    concurrency: usize,
    job: F,
) -> anyhow::Result<(Vec<f64>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let job = Arc::new(job);
    let n = concurrency.max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..n {
        let job = Arc::clone(&job);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = w;
            while i < count {
                let t = Instant::now();
                job(i).await?;
                latencies.push(micros(t.elapsed()));
                i += n;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((all, started.elapsed()))
}
