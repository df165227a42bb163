//! `cchost bench commit`: what committing costs, through the real commit pipeline
//! ([`ChannelLedger::commit`]: validation, block file append with `fdatasync`, the state
//! database transaction), and how it grows with the ledger.
//!
//! Two ledgers are measured in one run: a **new** one (genesis only) and a **large** one,
//! preloaded through the same pipeline with `--keys` keys in `--blocks` blocks. On each,
//! with signature checks on and off ([`LedgerOptions::skip_signatures`]), `--transactions`
//! transactions are committed in blocks of each `--block-sizes` size; each transaction
//! reads one key and writes it (TransferAsset's shape: a new key on the new ledger, an
//! existing one on the large ledger), endorsed by a peer of the channel's one
//! organisation under the default MAJORITY policy. Transactions and blocks are made and
//! signed before the clock starts (signing is the client's, the endorser's and the
//! orderer's work, not the committer's). Then reads (a state key, a block by number, a
//! transaction's status by id) and restarts (clean, index deleted, a torn append, a
//! damaged last block, the state database behind by `--replay` blocks) are timed on both.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use prost::Message as _;
use serde::Serialize;

use super::{Samples, cpu_time, micros};
use crate::ledger::blockfile::{self, StoredBlock};
use crate::ledger::blocks::{self, BatchConfig, GenesisConfig, OrgConfig};
use crate::ledger::commit::{ChannelLedger, LedgerOptions, OpenReport};
use crate::ledger::policy;
use crate::ledger::validation::ChaincodeDefinition;
use crate::ledger::{RedbStore, StateStore, TxSimulator};
use crate::msp::{DevCa, Role};
use crate::proposal::{DevIdentity, ProposalBuilder};
use crate::transaction::{self, Simulation};
use cchost_proto::protos::{ChaincodeId, Proposal, Response, TxValidationCode};

const CHANNEL: &str = "mychannel";
const CHAINCODE: &str = "basic";
const MSP: &str = "Org1MSP";

/// What to run.
#[derive(Debug, Clone)]
pub struct CommitBenchConfig {
    /// Where the ledgers are written (a directory on the disk being measured).
    pub dir: PathBuf,
    /// Transactions committed per block size, signature setting and ledger.
    pub transactions: usize,
    /// Transactions per block.
    pub block_sizes: Vec<usize>,
    /// Keys preloaded into the large ledger.
    pub keys: usize,
    /// Blocks the preload takes (each one transaction writing `keys / blocks` keys).
    pub blocks: usize,
    /// Timed reads of each kind.
    pub reads: usize,
    /// Blocks the state database is behind in the replay restart.
    pub replay: usize,
}

/// Commits of one block size.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommitRun {
    /// Whether creator and endorser signatures were checked.
    pub signatures: bool,
    /// Transactions per block.
    pub block_size: usize,
    /// Transactions committed (all valid).
    pub transactions: usize,
    /// Latency of each block's commit (validate, append and sync, apply to state).
    #[serde(flatten)]
    pub latency: Samples,
    /// Transactions per second over the run.
    pub tps: f64,
    /// CPU time of this process per transaction over the run, µs.
    pub cpu_us_per_tx: f64,
}

/// One timed restart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenRun {
    /// `clean`, `index deleted`, `torn append` (half a record past the last block, as a
    /// crash during an append leaves), `last block damaged` (cut after it was synced and
    /// indexed) or `state behind`.
    pub case: String,
    /// Opening the state database and the ledger, µs (`clean`: the median of five).
    pub micros: f64,
    /// What the open reported repairing.
    pub repaired: String,
}

/// Everything measured on one ledger.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LedgerReport {
    /// `new` or `large`.
    pub ledger: String,
    /// Keys in state before the commit runs.
    pub keys: u64,
    /// Blocks in the store before the commit runs (genesis included).
    pub blocks: u64,
    /// How long preloading took, s (the large ledger).
    pub preload_seconds: Option<f64>,
    /// Commit runs.
    pub commits: Vec<CommitRun>,
    /// Read latencies: `state get` (a snapshot and one key), `block by number`,
    /// `tx status by id`.
    pub reads: BTreeMap<String, Samples>,
    /// Restarts.
    pub opens: Vec<OpenRun>,
    /// Bytes on disk after the runs: `state` (the state database) and `blocks` (block
    /// files and index).
    pub disk_bytes: BTreeMap<String, u64>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommitReport {
    /// The machine and the run's settings.
    pub machine: BTreeMap<String, String>,
    /// The new ledger, then the large one.
    pub ledgers: Vec<LedgerReport>,
}

/// The channel's organisation and the identities that transact on it.
struct Org {
    client: DevIdentity,
    peer: DevIdentity,
    orderer: DevIdentity,
    genesis: StoredBlock,
}

impl Org {
    fn new() -> anyhow::Result<Self> {
        let ca = DevCa::new(MSP, "Org1")?;
        let genesis = blocks::genesis_block(&GenesisConfig {
            channel: CHANNEL.into(),
            orgs: vec![OrgConfig {
                msp_id: MSP.into(),
                root_certs: vec![ca.cert_pem().to_owned()],
                endorsement: format!("OR('{MSP}.peer')"),
            }],
            batch: BatchConfig::default(),
        })?;
        Ok(Self {
            client: ca.issue(Role::Client, "User1")?,
            peer: ca.issue(Role::Peer, "peer0.org1")?,
            orderer: ca.issue(Role::Orderer, "orderer.org1")?,
            genesis,
        })
    }

    /// A signed, endorsed transaction envelope of what `body` does on `state`.
    fn transaction(
        &self,
        state: &dyn StateStore,
        body: impl FnOnce(&mut TxSimulator) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<u8>> {
        let built = ProposalBuilder::new(CHANNEL, CHAINCODE)
            .args(["TransferAsset"])
            .build(&self.client)?;
        let mut simulator = TxSimulator::new(state.snapshot(CHANNEL)?, built.txid.clone());
        body(&mut simulator)?;
        let simulation = Simulation {
            chaincode_id: ChaincodeId {
                name: CHAINCODE.into(),
                version: "1.0".into(),
                path: String::new(),
            },
            rwset: simulator.read_write_set(),
            response: Response {
                status: 200,
                message: String::new(),
                payload: Vec::new(),
            },
            event: None,
        };
        let proposal = Proposal::decode(built.signed_proposal.proposal_bytes.as_slice())?;
        let response = transaction::endorse(&proposal, &simulation, &self.peer)?;
        Ok(transaction::assemble(&proposal, &[response], &self.client)?.encode_to_vec())
    }

    /// `envelopes` cut into blocks of `size`, chained after the ledger's last block.
    fn blocks(
        &self,
        ledger: &ChannelLedger,
        envelopes: Vec<Vec<u8>>,
        size: usize,
    ) -> Vec<StoredBlock> {
        let mut number = ledger.height();
        let mut previous = ledger.last_hash();
        let mut out = Vec::with_capacity(envelopes.len().div_ceil(size.max(1)));
        let mut envelopes = envelopes.into_iter().peekable();
        while envelopes.peek().is_some() {
            let batch: Vec<Vec<u8>> = envelopes.by_ref().take(size.max(1)).collect();
            let block = blocks::make_block(number, &previous, batch, 0, &self.orderer);
            previous = block.header_hash().to_vec();
            number += 1;
            out.push(block);
        }
        out
    }
}

/// An open ledger over its own directory and state database.
struct Bench {
    dir: PathBuf,
    state: Arc<RedbStore>,
    ledger: Option<ChannelLedger>,
}

impl Bench {
    fn chain_dir(dir: &Path) -> PathBuf {
        dir.join("chain")
    }

    /// Opens (or creates, from `genesis`) the ledger in `dir`.
    fn open(
        dir: &Path,
        genesis: Option<&StoredBlock>,
        skip_signatures: bool,
    ) -> anyhow::Result<(Self, OpenReport)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let state = Arc::new(RedbStore::open(dir.join("state.redb"))?);
        let shared: Arc<dyn StateStore> = state.clone();
        let (ledger, report) = ChannelLedger::open(
            &Self::chain_dir(dir),
            shared,
            genesis,
            &LedgerOptions {
                skip_signatures,
                ..LedgerOptions::default()
            },
        )?;
        ledger.define_chaincode(
            CHAINCODE,
            ChaincodeDefinition {
                version: "1.0".into(),
                endorsement: policy::default_endorsement(),
            },
        );
        Ok((
            Self {
                dir: dir.to_owned(),
                state,
                ledger: Some(ledger),
            },
            report,
        ))
    }

    fn ledger(&self) -> anyhow::Result<&ChannelLedger> {
        self.ledger.as_ref().context("the ledger is closed")
    }

    /// Closes and reopens, timing the open as a restart (state database and ledger).
    fn restart(self, skip_signatures: bool) -> anyhow::Result<(Self, Duration, OpenReport)> {
        let dir = self.dir.clone();
        drop(self);
        let started = Instant::now();
        let (bench, report) = Self::open(&dir, None, skip_signatures)?;
        Ok((bench, started.elapsed(), report))
    }

    /// Commits `blocks`, each of which must be valid throughout; returns each block's
    /// commit latency, µs.
    fn commit_all(&self, blocks: Vec<StoredBlock>) -> anyhow::Result<Vec<f64>> {
        let ledger = self.ledger()?;
        let mut latencies = Vec::with_capacity(blocks.len());
        for block in blocks {
            let number = block.number;
            let started = Instant::now();
            let committed = ledger.commit(block)?;
            latencies.push(micros(started.elapsed()));
            if let Some((i, code)) = committed
                .codes
                .iter()
                .enumerate()
                .find(|(_, code)| **code != TxValidationCode::Valid)
            {
                bail!("block {number} transaction {i} was not valid: {code:?}");
            }
        }
        Ok(latencies)
    }
}

/// The key of asset `i`.
fn key(i: usize) -> String {
    format!("asset{i:08}")
}

fn asset(i: usize, owner: &str) -> Vec<u8> {
    format!(
        r#"{{"AppraisedValue":{},"Color":"blue","ID":"{}","Owner":"{owner}","Size":{}}}"#,
        300 + i % 700,
        key(i),
        5 + i % 20
    )
    .into_bytes()
}

/// Bytes of `path`: a file's length, or the sum over a directory's files.
fn disk_bytes(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path).map_or(0, |entries| {
            entries
                .flatten()
                .map(|entry| disk_bytes(&entry.path()))
                .sum()
        }),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// A small deterministic generator for read positions (xorshift64*).
struct Positions(u64);

impl Positions {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let n = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        usize::try_from(n % u64::try_from(below.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// Runs the benchmark; `progress` hears what is being measured.
pub fn run(
    config: &CommitBenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<CommitReport> {
    if config.transactions == 0 || config.block_sizes.contains(&0) || config.reads == 0 {
        bail!("transactions, block sizes and reads must be at least 1");
    }
    if config.blocks == 0 || config.keys < config.blocks {
        bail!("the preload needs at least one block and one key per block");
    }
    let org = Org::new()?;
    let mut ledgers = Vec::new();
    // Keys the commit runs touch: past the preloaded ones on the new ledger (so they are
    // absent), inside them on the large one (so they exist).
    let needed = config.transactions * config.block_sizes.len() * 2;
    if needed > config.keys {
        bail!(
            "the large ledger's runs touch {needed} preloaded keys: --keys must be at least that"
        );
    }
    for large in [false, true] {
        let name = if large { "large" } else { "new" };
        let dir = config.dir.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let (mut bench, _) = Bench::open(&dir, Some(&org.genesis), false)?;
        let mut preload_seconds = None;
        let mut keys = 0;
        if large {
            let started = Instant::now();
            preload(&bench, &org, config, progress)?;
            preload_seconds = Some(started.elapsed().as_secs_f64());
            keys = config.keys as u64;
        }
        let blocks_before = bench.ledger()?.height();
        let mut report = LedgerReport {
            ledger: name.to_owned(),
            keys,
            blocks: blocks_before,
            preload_seconds,
            commits: Vec::new(),
            reads: BTreeMap::new(),
            opens: Vec::new(),
            disk_bytes: BTreeMap::new(),
        };
        let mut next_key = if large { 0 } else { config.keys };
        let mut touched = Vec::new();
        for signatures in [true, false] {
            // Reopened with the setting (a restart, not timed).
            bench = bench.restart(!signatures)?.0;
            for &size in &config.block_sizes {
                progress(&format!(
                    "{name} ledger: {} transactions in blocks of {size}, signatures {}",
                    config.transactions,
                    if signatures { "checked" } else { "not checked" }
                ));
                let mut envelopes = Vec::with_capacity(config.transactions);
                for _ in 0..config.transactions {
                    let i = next_key;
                    next_key += 1;
                    touched.push(i);
                    envelopes.push(org.transaction(bench.state.as_ref(), |sim| {
                        let _ = sim.get_state(CHAINCODE, &key(i))?;
                        sim.put_state(CHAINCODE, &key(i), asset(i, "Christopher"))?;
                        Ok(())
                    })?);
                }
                let blocks = org.blocks(bench.ledger()?, envelopes, size);
                let (cpu, started) = (cpu_time(), Instant::now());
                let latencies = bench.commit_all(blocks)?;
                let elapsed = started.elapsed();
                let cpu = cpu_time().saturating_sub(cpu);
                let run = CommitRun {
                    signatures,
                    block_size: size,
                    transactions: config.transactions,
                    latency: Samples::new(latencies),
                    tps: config.transactions as f64 / elapsed.as_secs_f64(),
                    cpu_us_per_tx: micros(cpu) / config.transactions as f64,
                };
                progress(&format!(
                    "  {:.0} tx/s, block commit p50 {:.0} µs, p99 {:.0} µs",
                    run.tps, run.latency.stats.p50_us, run.latency.stats.p99_us
                ));
                report.commits.push(run);
            }
        }
        bench = bench.restart(false)?.0;
        progress(&format!("{name} ledger: reads"));
        report.reads = reads(&bench, config, &touched, large)?;
        progress(&format!("{name} ledger: restarts"));
        let (opens, bench) = restarts(bench, &org, config)?;
        report.opens = opens;
        drop(bench);
        report.disk_bytes = BTreeMap::from([
            ("state".to_owned(), disk_bytes(&dir.join("state.redb"))),
            ("blocks".to_owned(), disk_bytes(&Bench::chain_dir(&dir))),
        ]);
        ledgers.push(report);
    }
    Ok(CommitReport {
        machine: machine(config),
        ledgers,
    })
}

/// Fills the large ledger: `config.blocks` blocks of one transaction, each writing its
/// share of `config.keys` keys.
fn preload(
    bench: &Bench,
    org: &Org,
    config: &CommitBenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    let per_block = config.keys / config.blocks;
    let extra = config.keys % config.blocks;
    progress(&format!(
        "large ledger: preloading {} keys in {} blocks",
        config.keys, config.blocks
    ));
    let ledger = bench.ledger()?;
    let mut next = 0;
    let started = Instant::now();
    for b in 0..config.blocks {
        let count = per_block + usize::from(b < extra);
        let keys = next..next + count;
        next += count;
        let envelope = org.transaction(bench.state.as_ref(), |sim| {
            for i in keys {
                sim.put_state(CHAINCODE, &key(i), asset(i, "Tomoko"))?;
            }
            Ok(())
        })?;
        let block = org.blocks(ledger, vec![envelope], 1);
        bench.commit_all(block)?;
        if (b + 1) % 1000 == 0 {
            progress(&format!(
                "  {} blocks, {next} keys, {:.0} s",
                b + 1,
                started.elapsed().as_secs_f64()
            ));
        }
    }
    Ok(())
}

/// Timed point reads: a key of state (in a fresh snapshot, as a simulation opens one), a
/// block by number, a transaction's status by id.
fn reads(
    bench: &Bench,
    config: &CommitBenchConfig,
    touched: &[usize],
    large: bool,
) -> anyhow::Result<BTreeMap<String, Samples>> {
    let ledger = bench.ledger()?;
    let height = ledger.height();
    let mut positions = Positions(0x9E37_79B9_7F4A_7C15);
    // Keys that exist: all preloaded ones on the large ledger, the runs' on the new one.
    let key_count = if large { config.keys } else { touched.len() };
    let mut state = Vec::with_capacity(config.reads);
    for _ in 0..config.reads {
        let n = positions.next(key_count);
        let i = if large {
            n
        } else {
            touched.get(n).copied().unwrap_or_default()
        };
        let started = Instant::now();
        let value = bench.state.snapshot(CHANNEL)?.get(CHAINCODE, &key(i))?;
        state.push(micros(started.elapsed()));
        if value.is_none() {
            bail!("key {} is missing", key(i));
        }
    }
    let mut block_reads = Vec::with_capacity(config.reads);
    let mut txids = Vec::new();
    for _ in 0..config.reads {
        let number = u64::try_from(positions.next(usize::try_from(height)?))?;
        let started = Instant::now();
        let block = ledger.block(number)?;
        block_reads.push(micros(started.elapsed()));
        let block = block.with_context(|| format!("block {number} is missing"))?;
        if number > 0 {
            txids.extend(crate::ledger::blockstore::tx_ids(&block));
        }
    }
    let mut status = Vec::with_capacity(config.reads);
    for _ in 0..config.reads {
        let Some(txid) = txids.get(positions.next(txids.len())) else {
            break;
        };
        let started = Instant::now();
        let found = ledger.tx_status(txid)?;
        status.push(micros(started.elapsed()));
        if found.is_none() {
            bail!("transaction {txid} is missing from the index");
        }
    }
    Ok(BTreeMap::from([
        ("state get".to_owned(), Samples::new(state)),
        ("block by number".to_owned(), Samples::new(block_reads)),
        ("tx status by id".to_owned(), Samples::new(status)),
    ]))
}

/// Timed restarts: clean, with the index deleted, with a torn last block, and with the
/// state database `config.replay` blocks behind the block store.
fn restarts(
    bench: Bench,
    org: &Org,
    config: &CommitBenchConfig,
) -> anyhow::Result<(Vec<OpenRun>, Bench)> {
    let mut opens = Vec::new();
    let describe = |report: &OpenReport| {
        let mut parts = Vec::new();
        if report.block_store.reindexed > 0 {
            parts.push(format!("{} blocks reindexed", report.block_store.reindexed));
        }
        if let Some((number, _)) = &report.block_store.truncated {
            parts.push(format!(
                "block {number} cut ({} bytes)",
                report.block_store.truncated_bytes
            ));
        }
        if let Some(number) = report.restored_block {
            parts.push(format!("block {number} restored from state"));
        }
        if report.replayed > 0 {
            parts.push(format!("{} blocks replayed", report.replayed));
        }
        if parts.is_empty() {
            "nothing".to_owned()
        } else {
            parts.join(", ")
        }
    };
    // The median of five (the others change the files, so they run once).
    let mut bench = bench;
    let mut clean = Vec::new();
    let mut repaired = String::new();
    for _ in 0..5 {
        let (reopened, took, report) = bench.restart(false)?;
        bench = reopened;
        clean.push(micros(took));
        repaired = describe(&report);
    }
    opens.push(OpenRun {
        case: "clean".into(),
        micros: Samples::new(clean).stats.p50_us,
        repaired,
    });

    let dir = bench.dir.clone();
    drop(bench);
    let index = Bench::chain_dir(&dir).join("index.redb");
    std::fs::remove_file(&index).with_context(|| format!("removing {}", index.display()))?;
    let started = Instant::now();
    let (bench, report) = Bench::open(&dir, None, false)?;
    opens.push(OpenRun {
        case: "index deleted".into(),
        micros: micros(started.elapsed()),
        repaired: describe(&report),
    });

    // A crash in the middle of an append: half a record past the last block.
    let ledger = bench.ledger()?;
    let last = ledger
        .block(ledger.height() - 1)?
        .context("the last block is missing")?;
    drop(bench);
    let record = blockfile::record(&last);
    let path = last_block_file(&Bench::chain_dir(&dir))?;
    let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
    file.write_all(record.get(..record.len() / 2).unwrap_or_default())?;
    file.sync_all()?;
    drop(file);
    let started = Instant::now();
    let (bench, report) = Bench::open(&dir, None, false)?;
    opens.push(OpenRun {
        case: "torn append".into(),
        micros: micros(started.elapsed()),
        repaired: describe(&report),
    });

    // The last block damaged after it was synced and indexed (its checksum fails).
    drop(bench);
    let length = std::fs::metadata(&path)?.len();
    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
    file.set_len(length.saturating_sub(7))?;
    file.sync_all()?;
    drop(file);
    let started = Instant::now();
    let (bench, report) = Bench::open(&dir, None, false)?;
    opens.push(OpenRun {
        case: "last block damaged".into(),
        micros: micros(started.elapsed()),
        repaired: describe(&report),
    });

    // The state database as it was `replay` blocks ago.
    drop(bench);
    let copy = dir.join("state-behind.redb");
    std::fs::copy(dir.join("state.redb"), &copy)?;
    let (bench, _) = Bench::open(&dir, None, false)?;
    let envelopes = (0..config.replay)
        .map(|i| {
            org.transaction(bench.state.as_ref(), |sim| {
                sim.put_state(CHAINCODE, &format!("replay{i:06}"), asset(i, "Max"))?;
                Ok(())
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let blocks = org.blocks(bench.ledger()?, envelopes, 1);
    bench.commit_all(blocks)?;
    drop(bench);
    std::fs::rename(&copy, dir.join("state.redb"))?;
    let started = Instant::now();
    let (bench, report) = Bench::open(&dir, None, false)?;
    opens.push(OpenRun {
        case: "state behind".into(),
        micros: micros(started.elapsed()),
        repaired: describe(&report),
    });
    Ok((opens, bench))
}

/// The highest-numbered block file in `dir`.
fn last_block_file(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("blockfile_"))
        })
        .collect();
    files.sort();
    files
        .pop()
        .with_context(|| format!("no block file in {}", dir.display()))
}

fn machine(config: &CommitBenchConfig) -> BTreeMap<String, String> {
    let mut machine = super::machine_facts();
    for (name, value) in [
        ("transactions", config.transactions.to_string()),
        (
            "block_sizes",
            config
                .block_sizes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("keys", config.keys.to_string()),
        ("blocks", config.blocks.to_string()),
        ("reads", config.reads.to_string()),
        ("replay", config.replay.to_string()),
        ("dir", config.dir.display().to_string()),
    ] {
        machine.insert(name.to_owned(), value);
    }
    machine
}

impl CommitReport {
    /// The table printed at the end: one row per figure, a column per ledger, and how
    /// many times the large ledger's figure is the new one's.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, Vec<Option<f64>>)> = Vec::new();
        let column = |f: &dyn Fn(&LedgerReport) -> Option<f64>| -> Vec<Option<f64>> {
            self.ledgers.iter().map(f).collect()
        };
        let mut runs: Vec<(bool, usize)> = self
            .ledgers
            .iter()
            .flat_map(|l| l.commits.iter().map(|c| (!c.signatures, c.block_size)))
            .collect();
        runs.sort_unstable();
        runs.dedup();
        for (unsigned, size) in runs {
            let find = move |l: &LedgerReport| {
                l.commits
                    .iter()
                    .find(|c| c.signatures != unsigned && c.block_size == size)
                    .cloned()
            };
            let label = format!("block {size}{}", if unsigned { ", no sig" } else { "" });
            rows.push((format!("{label} tx/s"), column(&|l| find(l).map(|c| c.tps))));
            rows.push((
                format!("{label} p50 (µs)"),
                column(&|l| find(l).map(|c| c.latency.stats.p50_us)),
            ));
            rows.push((
                format!("{label} p99 (µs)"),
                column(&|l| find(l).map(|c| c.latency.stats.p99_us)),
            ));
            rows.push((
                format!("{label} CPU/tx (µs)"),
                column(&|l| find(l).map(|c| c.cpu_us_per_tx)),
            ));
        }
        for read in ["state get", "block by number", "tx status by id"] {
            rows.push((
                format!("{read} p50 (µs)"),
                column(&|l| l.reads.get(read).map(|s| s.stats.p50_us)),
            ));
        }
        for case in [
            "clean",
            "index deleted",
            "torn append",
            "last block damaged",
            "state behind",
        ] {
            rows.push((
                format!("restart, {case} (µs)"),
                column(&|l| l.opens.iter().find(|o| o.case == case).map(|o| o.micros)),
            ));
        }
        for what in ["state", "blocks"] {
            rows.push((
                format!("{what} on disk (MB)"),
                column(&|l| {
                    l.disk_bytes
                        .get(what)
                        .map(|b| *b as f64 / (1024.0 * 1024.0))
                }),
            ));
        }
        let mut out = format!("{:<32}", "figure");
        for ledger in &self.ledgers {
            out.push_str(&format!(
                "{:>18}",
                format!("{} ({} keys)", ledger.ledger, short(ledger.keys))
            ));
        }
        out.push_str(&format!("{:>14}\n", "large / new"));
        for (label, values) in rows {
            out.push_str(&format!("{label:<32}"));
            for value in &values {
                match value {
                    Some(v) if *v >= 100.0 => out.push_str(&format!("{v:>18.0}")),
                    Some(v) => out.push_str(&format!("{v:>18.1}")),
                    None => out.push_str(&format!("{:>18}", "n/a")),
                }
            }
            if let [Some(new), Some(large)] = values.as_slice() {
                let r = large / new;
                if r.is_finite() {
                    out.push_str(&format!("{:>13.2}×", r));
                }
            }
            out.push('\n');
        }
        for ledger in &self.ledgers {
            for open in &ledger.opens {
                out.push_str(&format!(
                    "{} ledger, restart {}: {}\n",
                    ledger.ledger, open.case, open.repaired
                ));
            }
        }
        out
    }
}

fn short(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
