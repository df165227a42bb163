//! Crash test of the commit pipeline: a child process commits blocks of real endorsed
//! transactions as fast as it can and prints each transaction it has acknowledged (its
//! block committed: files synced, state applied); the test kills it with SIGKILL at a
//! random moment, then opens the ledger as a restarted node would and checks that every
//! acknowledged transaction is there with the code it was acknowledged with, that the
//! chain verifies, and that state equals a replay of the blocks from genesis. Then the
//! next cycle's child goes on from there.
//!
//! `CCHOST_CRASH_CYCLES` sets the number of cycles (50 by default, as CI runs it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cchost::ledger::blockfile::{self, StoredBlock};
use cchost::ledger::blocks::{self, BatchConfig, GenesisConfig, OrgConfig};
use cchost::ledger::commit::{ChannelLedger, LedgerOptions, OpenReport, valid_writes};
use cchost::ledger::policy;
use cchost::ledger::validation::ChaincodeDefinition;
use cchost::ledger::{ReadLimit, RedbStore, StateStore, TxSimulator};
use cchost::msp::{DevCa, Role};
use cchost::proposal::{DevIdentity, ProposalBuilder};
use cchost::transaction::{self, Simulation};
use cchost_proto::protos::{ChaincodeId, Proposal, Response};
use prost::Message;

const CHANNEL: &str = "crashchannel";
const MSP: &str = "Org1MSP";
/// The child's environment variable naming the ledger directory.
const CHILD_DIR: &str = "CCHOST_CRASH_CHILD_DIR";

fn open(dir: &Path, genesis: Option<&StoredBlock>) -> (ChannelLedger, Arc<RedbStore>, OpenReport) {
    let state = Arc::new(RedbStore::open(dir.join("state.redb")).unwrap());
    let shared: Arc<dyn StateStore> = state.clone();
    let (ledger, report) = ChannelLedger::open(
        &dir.join("chain"),
        shared,
        genesis,
        &LedgerOptions::default(),
    )
    .unwrap();
    ledger.define_chaincode(
        "asset",
        ChaincodeDefinition {
            version: "1.0".into(),
            endorsement: policy::signature_policy(policy::parse("OR('Org1MSP.peer')").unwrap()),
        },
    );
    (ledger, state, report)
}

fn identity(dir: &Path, name: &str) -> DevIdentity {
    DevIdentity::from_pem(
        MSP,
        &std::fs::read_to_string(dir.join(format!("{name}.crt"))).unwrap(),
        &std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap(),
    )
    .unwrap()
}

/// The child: commits blocks until killed, printing `ack <txid> <code> <block>` for each
/// transaction once its block is committed.
#[test]
#[ignore = "run by commits_survive_sigkill_at_random_moments as its child process"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let (client, peer, orderer) = (
        identity(&dir, "client"),
        identity(&dir, "peer"),
        identity(&dir, "orderer"),
    );
    let genesis = blockfile::read_blocks(&std::fs::read(dir.join("genesis.block")).unwrap())
        .unwrap()
        .remove(0);
    let (ledger, state, _) = open(&dir, Some(&genesis));
    let mut out = std::io::stdout().lock();
    for round in 0u64.. {
        let size = 1 + usize::try_from(round % 8).unwrap();
        let envelopes: Vec<Vec<u8>> = (0..size)
            .map(|i| {
                let key = format!("k{}", (round * 7 + i as u64 * 3) % 20);
                let proposal = ProposalBuilder::new(CHANNEL, "asset")
                    .args(["bump", key.as_str()])
                    .build(&client)
                    .unwrap();
                let mut sim =
                    TxSimulator::new(state.snapshot(CHANNEL).unwrap(), proposal.txid.clone());
                let old = sim.get_state("asset", &key).unwrap().unwrap_or_default();
                let next = String::from_utf8(old).unwrap().parse::<u64>().unwrap_or(0) + 1;
                sim.put_state("asset", &key, next.to_string().into_bytes())
                    .unwrap();
                let simulation = Simulation {
                    chaincode_id: ChaincodeId {
                        name: "asset".into(),
                        version: "1.0".into(),
                        path: String::new(),
                    },
                    rwset: sim.read_write_set(),
                    response: Response {
                        status: 200,
                        ..Default::default()
                    },
                    event: None,
                };
                let proposal =
                    Proposal::decode(proposal.signed_proposal.proposal_bytes.as_slice()).unwrap();
                let response = transaction::endorse(&proposal, &simulation, &peer).unwrap();
                transaction::assemble(&proposal, &[response], &client)
                    .unwrap()
                    .encode_to_vec()
            })
            .collect();
        let block =
            blocks::make_block(ledger.height(), &ledger.last_hash(), envelopes, 0, &orderer);
        let committed = ledger.commit(block).unwrap();
        for (txid, code) in committed.txids.iter().zip(&committed.codes) {
            writeln!(
                out,
                "ack {txid} {} {}",
                *code as i32, committed.block.number
            )
            .unwrap();
        }
        out.flush().unwrap();
    }
}

/// Every state entry: key → (value, version).
fn dump(state: &dyn StateStore) -> BTreeMap<String, (Vec<u8>, (u64, u64))> {
    state
        .snapshot(CHANNEL)
        .unwrap()
        .range("asset", "", "", ReadLimit::count(usize::MAX))
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, (v.value, (v.version.block, v.version.tx))))
        .collect()
}

#[test]
fn commits_survive_sigkill_at_random_moments() {
    let cycles: usize = std::env::var("CCHOST_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new(MSP, "Org1").unwrap();
    for (name, role) in [
        ("client", Role::Client),
        ("peer", Role::Peer),
        ("orderer", Role::Orderer),
    ] {
        let identity = ca.issue(role, name).unwrap();
        std::fs::write(dir.path().join(format!("{name}.crt")), identity.cert_pem()).unwrap();
        std::fs::write(
            dir.path().join(format!("{name}.key")),
            identity.key_pem().unwrap(),
        )
        .unwrap();
    }
    let genesis = blocks::genesis_block(&GenesisConfig {
        channel: CHANNEL.into(),
        orgs: vec![OrgConfig {
            msp_id: MSP.into(),
            root_certs: vec![ca.cert_pem().to_owned()],
            endorsement: "OR('Org1MSP.peer')".into(),
        }],
        batch: BatchConfig::default(),
    })
    .unwrap();
    std::fs::write(
        dir.path().join("genesis.block"),
        blockfile::record(&genesis),
    )
    .unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: BTreeMap<String, (i32, u64)> = BTreeMap::new();
    let (mut restored, mut truncated, mut replayed) = (0, 0, 0);
    let started = Instant::now();
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parts: Vec<&str> = line.split(' ').collect();
                if let ["ack", txid, code, block] = parts.as_slice() {
                    acks.push((
                        (*txid).to_owned(),
                        (code.parse().unwrap(), block.parse().unwrap()),
                    ));
                }
            }
            acks
        });
        // Kill somewhere between its start-up and a few dozen blocks in.
        let wait = Duration::from_millis(rand::random_range(5..250));
        std::thread::sleep(wait);
        child.kill().unwrap();
        child.wait().unwrap();
        let acks = reader.join().unwrap();
        acknowledged.extend(acks);

        // Restart: open as the node would (with the channel's genesis block at hand: a
        // child killed before it wrote block 0 leaves a ledger without one), and check.
        let (ledger, state, report) = open(dir.path(), Some(&genesis));
        truncated += usize::from(report.block_store.truncated.is_some());
        restored += usize::from(report.restored_block.is_some());
        replayed += usize::from(report.replayed > 0);
        for (txid, (code, block)) in &acknowledged {
            let status = ledger
                .tx_status(txid)
                .unwrap()
                .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged {txid} is lost"));
            assert_eq!(
                (status.code as i32, status.block),
                (*code, *block),
                "cycle {cycle}: {txid}"
            );
        }
        let chain = blockfile::read_dir(&dir.path().join("chain")).unwrap();
        assert_eq!(u64::try_from(chain.len()).unwrap(), ledger.height());
        let bad: Vec<_> = blockfile::verify(&chain)
            .into_iter()
            .filter(|c| !c.valid)
            .collect();
        assert!(bad.is_empty(), "cycle {cycle}: {bad:?}");
        let replay = RedbStore::in_memory().unwrap();
        replay.create_channel(CHANNEL).unwrap();
        for block in &chain {
            replay.commit(CHANNEL, &valid_writes(block)).unwrap();
        }
        assert_eq!(
            dump(state.as_ref()),
            dump(&replay),
            "cycle {cycle}: state is not a replay"
        );
        drop(ledger);
        drop(state);
    }
    let blocks = blockfile::read_dir(&dir.path().join("chain"))
        .unwrap()
        .len();
    println!(
        "{cycles} SIGKILL cycles in {:.1} s: {} acknowledged transactions, {blocks} blocks, all present, chain valid, state equal to replay; on reopen: {truncated} torn tails cut, {restored} blocks restored from state, {replayed} replays",
        started.elapsed().as_secs_f64(),
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > cycles,
        "the children committed too little to test anything"
    );
}
