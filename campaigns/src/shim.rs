//! Campaign `shim`: generated `ChaincodeMessage` sequences from a rogue client against the
//! real gRPC listener (`protos.ChaincodeSupport/Register`), while transactions for it run
//! and a well-behaved chaincode on the same listener is probed.
//!
//! A case opens a stream, mostly registers (REGISTER may also come late, twice or never),
//! starts up to three transactions for the rogue chaincode, and sends up to 40 messages:
//! requests of every type with valid, random, empty or oversized payloads, for the live
//! transactions' txids or for made-up ones, on the right channel or another; COMPLETED and
//! ERROR (twice, garbage, for unknown txids), KEEPALIVE, REGISTER again, types outside the
//! enum. It then hangs up (at once, after the transactions end, or abruptly).
//!
//! Invariants, every case:
//!
//! - no panic anywhere in the process;
//! - every transaction of the case ends within its execute timeout + 2 s;
//! - the stream is deregistered once the client is gone;
//! - no transaction context and no query iterator stays alive (the support's debug
//!   counters fall back to 0);
//! - the well-behaved chaincode answers correctly while the case runs and after it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cchost::ids::PackageId;
use cchost::ledger::StateStore;
use cchost::proposal::DevIdentity;
use cchost::support::{ChaincodeSupport, SupportConfig};
use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::chaincode_support_client::ChaincodeSupportClient;
use cchost_proto::protos::write_record::Type as WriteType;
use cchost_proto::protos::{
    ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeSpec, DelState, GetHistoryForKey,
    GetQueryResult, GetState, GetStateByRange, GetStateMetadata, GetStateMultiple, PutState,
    PutStateMetadata, QueryResponse, QueryStateClose, QueryStateNext, Response, StateMetadata,
    WriteBatchState, WriteRecord,
};
use prost::Message as _;
use rand::rngs::ChaCha20Rng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::modules::class;
use crate::{Budget, Report, choose, take_panics, watch_panics};

/// The execute timeout of the rogue chaincode's transactions: short, since a rogue client
/// often never completes them.
pub const EXECUTE_TIMEOUT: Duration = Duration::from_millis(300);
/// The largest message the listener accepts here (some generated ones are larger).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// How long after a case the stream may take to deregister and the counters to settle.
const SETTLE: Duration = Duration::from_secs(3);
/// How far past its execute timeout a transaction may end before it counts as hung.
const SLACK: Duration = Duration::from_secs(2);

const CHANNEL: &str = "campaign";
/// The rogue chaincode.
const ROGUE: &str = "rogue";
const ROGUE_ID: &str = "rogue:0000";
/// The well-behaved one.
const STEADY: &str = "steady";
const STEADY_ID: &str = "steady:0000";
/// Keys committed in both namespaces before the campaign.
const KEYS: usize = 6;

/// The node side: a support serving the gRPC listener over a preloaded ledger, and the
/// well-behaved chaincode registered on it.
struct Arena {
    support: ChaincodeSupport,
    addr: SocketAddr,
    identity: Arc<DevIdentity>,
    _stop: oneshot::Sender<()>,
}

impl Arena {
    async fn start() -> anyhow::Result<Self> {
        let store = crate::host::preloaded_store(&[ROGUE, STEADY], KEYS)?;
        let config = SupportConfig {
            dev_mode: true,
            execute_timeout: EXECUTE_TIMEOUT,
            max_message_size: MAX_MESSAGE,
            // Ranges over the preloaded keys stay open (has_more) after a page of two.
            query_batch_size: 2,
            max_iterators_per_tx: 8,
            ..SupportConfig::default()
        };
        let support = ChaincodeSupport::new(config, store as Arc<dyn StateStore>)?;
        support.define(ROGUE, PackageId::new(ROGUE_ID));
        support.define(STEADY, PackageId::new(STEADY_ID));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = support.clone();
        tokio::spawn(async move {
            let _ = server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        tokio::spawn(steady(addr));
        let arena = Self {
            support,
            addr,
            identity: Arc::new(DevIdentity::generate("Org1MSP", "Org1", "User1")?),
            _stop: stop,
        };
        anyhow::ensure!(
            arena
                .support
                .wait_ready(&PackageId::new(STEADY_ID), SETTLE)
                .await,
            "the well-behaved chaincode did not register"
        );
        Ok(arena)
    }

    /// A transaction of the well-behaved chaincode: it reads `k0` and answers its value.
    async fn probe(&self) -> Result<(), String> {
        probe(&self.support, &self.identity).await
    }

    async fn connect(
        &self,
    ) -> anyhow::Result<(
        mpsc::Sender<ChaincodeMessage>,
        tonic::Streaming<ChaincodeMessage>,
    )> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))?
            .connect()
            .await?;
        let (to_host, outbound) = mpsc::channel(64);
        let from_host = ChaincodeSupportClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE * 2)
            .register(ReceiverStream::new(outbound))
            .await?
            .into_inner();
        Ok((to_host, from_host))
    }
}

fn register(name: &str) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: Type::Register.into(),
        payload: ChaincodeId {
            name: name.to_owned(),
            ..Default::default()
        }
        .encode_to_vec(),
        ..Default::default()
    }
}

/// The well-behaved chaincode: registers, then answers each transaction with the value
/// of `k0`, read with GET_STATE.
async fn steady(addr: SocketAddr) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let (to_host, outbound) = mpsc::channel(16);
    let mut from_host = ChaincodeSupportClient::new(channel)
        .register(ReceiverStream::new(outbound))
        .await?
        .into_inner();
    to_host.send(register(STEADY_ID)).await?;
    // Transactions waiting for their GET_STATE answer, by txid: the rogue chaincode may
    // call this one from its own transactions, interleaved with the probes.
    let mut waiting: std::collections::HashMap<String, ChaincodeMessage> =
        std::collections::HashMap::new();
    while let Some(message) = from_host.message().await? {
        let reply = |ty: Type, payload: Vec<u8>, tx: &ChaincodeMessage| ChaincodeMessage {
            r#type: ty.into(),
            payload,
            txid: tx.txid.clone(),
            channel_id: tx.channel_id.clone(),
            ..Default::default()
        };
        match message.r#type() {
            Type::Transaction => {
                let get = GetState {
                    key: "k0".to_owned(),
                    collection: String::new(),
                };
                to_host
                    .send(reply(Type::GetState, get.encode_to_vec(), &message))
                    .await?;
                waiting.insert(message.txid.clone(), message);
            }
            Type::Response | Type::Error => {
                if let Some(tx) = waiting.remove(&message.txid) {
                    let response = Response {
                        status: 200,
                        message: String::new(),
                        payload: message.payload,
                    };
                    to_host
                        .send(reply(Type::Completed, response.encode_to_vec(), &tx))
                        .await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What the rogue client has learnt from the host: txids to use, iterator ids to page.
#[derive(Debug, Default)]
struct Seen {
    txids: Vec<String>,
    iterators: Vec<String>,
    ready: bool,
}

/// A key: mostly the preloaded ones, sometimes odd ones.
fn key(rng: &mut ChaCha20Rng) -> String {
    match rng.random_range(0..12u32) {
        0 => String::new(),
        1 => "\u{0}comp\u{0}a\u{0}".to_owned(),
        2 => "k".repeat(rng.random_range(1..70_000)),
        3 => "\u{fffd}\u{0}\u{7f}".to_owned(),
        _ => format!("k{}", rng.random_range(0..KEYS + 2)),
    }
}

fn bytes(rng: &mut ChaCha20Rng, max: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; rng.random_range(0..=max)];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn collection(rng: &mut ChaCha20Rng) -> String {
    if rng.random_ratio(1, 10) {
        "secrets".to_owned()
    } else {
        String::new()
    }
}

/// A valid payload for a message of type `ty`.
fn payload(rng: &mut ChaCha20Rng, ty: Type, seen: &Seen) -> Vec<u8> {
    let iterator = |rng: &mut ChaCha20Rng| match choose(rng, &seen.iterators) {
        Some(id) if rng.random_ratio(4, 5) => id.clone(),
        _ => format!("{:x}", rng.next_u64()),
    };
    match ty {
        Type::Register => ChaincodeId {
            name: choose(rng, &[ROGUE_ID, STEADY_ID, "other:1", ""])
                .map_or(String::new(), |name| (*name).to_owned()),
            ..Default::default()
        }
        .encode_to_vec(),
        Type::GetState | Type::GetPrivateDataHash => GetState {
            key: key(rng),
            collection: collection(rng),
        }
        .encode_to_vec(),
        Type::PutState => PutState {
            key: key(rng),
            value: bytes(rng, 64),
            collection: collection(rng),
        }
        .encode_to_vec(),
        Type::DelState | Type::PurgePrivateData => DelState {
            key: key(rng),
            collection: collection(rng),
        }
        .encode_to_vec(),
        Type::GetStateByRange => GetStateByRange {
            start_key: key(rng),
            end_key: if rng.random_bool(0.5) {
                String::new()
            } else {
                key(rng)
            },
            collection: collection(rng),
            ..Default::default()
        }
        .encode_to_vec(),
        Type::QueryStateNext => QueryStateNext { id: iterator(rng) }.encode_to_vec(),
        Type::QueryStateClose => QueryStateClose { id: iterator(rng) }.encode_to_vec(),
        Type::GetHistoryForKey => GetHistoryForKey { key: key(rng) }.encode_to_vec(),
        Type::GetQueryResult => GetQueryResult {
            query: "{\"selector\":{}}".to_owned(),
            collection: collection(rng),
            ..Default::default()
        }
        .encode_to_vec(),
        Type::GetStateMetadata => GetStateMetadata {
            key: key(rng),
            collection: collection(rng),
        }
        .encode_to_vec(),
        Type::PutStateMetadata => PutStateMetadata {
            key: key(rng),
            collection: collection(rng),
            metadata: Some(StateMetadata {
                metakey: "VALIDATION_PARAMETER".to_owned(),
                value: bytes(rng, 32),
            }),
        }
        .encode_to_vec(),
        Type::WriteBatchState => WriteBatchState {
            rec: (0..rng.random_range(0..6))
                .map(|_| WriteRecord {
                    key: key(rng),
                    value: bytes(rng, 16),
                    r#type: choose(
                        rng,
                        &[
                            WriteType::PutState,
                            WriteType::DelState,
                            WriteType::Undefined,
                        ],
                    )
                    .map_or(0, |ty| (*ty).into()),
                    ..Default::default()
                })
                .collect(),
        }
        .encode_to_vec(),
        Type::GetStateMultiple => GetStateMultiple {
            keys: (0..rng.random_range(0..6)).map(|_| key(rng)).collect(),
            collection: String::new(),
        }
        .encode_to_vec(),
        Type::InvokeChaincode => ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name: choose(rng, &[STEADY, ROGUE, "nobody", STEADY_ID])
                    .map_or(String::new(), |name| (*name).to_owned()),
                ..Default::default()
            }),
            input: Some(ChaincodeInput {
                args: vec![b"probe".to_vec()],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
        Type::Completed | Type::Error => Response {
            status: choose(rng, &[200, 400, 500, 0, 99_999])
                .copied()
                .unwrap_or(200),
            message: "rogue".to_owned(),
            payload: bytes(rng, 32),
        }
        .encode_to_vec(),
        _ => bytes(rng, 32),
    }
}

const REQUESTS: &[Type] = &[
    Type::GetState,
    Type::PutState,
    Type::DelState,
    Type::GetStateByRange,
    Type::QueryStateNext,
    Type::QueryStateNext,
    Type::QueryStateClose,
    Type::GetHistoryForKey,
    Type::GetQueryResult,
    Type::GetStateMetadata,
    Type::PutStateMetadata,
    Type::GetPrivateDataHash,
    Type::PurgePrivateData,
    Type::WriteBatchState,
    Type::GetStateMultiple,
    Type::InvokeChaincode,
];
const OTHERS: &[Type] = &[
    Type::Undefined,
    Type::Registered,
    Type::Init,
    Type::Ready,
    Type::Transaction,
    Type::Response,
];

/// One generated message.
fn message(rng: &mut ChaCha20Rng, seen: &Seen) -> ChaincodeMessage {
    let pick = |rng: &mut ChaCha20Rng, list: &[Type]| {
        choose(rng, list).copied().unwrap_or(Type::Undefined)
    };
    let ty = match rng.random_range(0..100u32) {
        0..=69 => pick(rng, REQUESTS),
        70..=79 => pick(rng, &[Type::Completed, Type::Error]),
        80..=84 => Type::Register,
        85..=89 => Type::Keepalive,
        90..=94 => pick(rng, OTHERS),
        _ => Type::Undefined,
    };
    let raw_type: i32 = if rng.random_range(0..100u32) >= 95 {
        // Outside the enum.
        choose(rng, &[26, 99, -1, i32::MAX]).copied().unwrap_or(99)
    } else {
        ty.into()
    };
    let txid = match (rng.random_range(0..20u32), choose(rng, &seen.txids)) {
        (0..=13, Some(txid)) => txid.clone(),
        (0..=15, _) => format!("{:016x}", rng.next_u64()),
        (16..=18, _) => String::new(),
        _ => "\u{0}".repeat(3),
    };
    let channel_id = match rng.random_range(0..20u32) {
        0 => String::new(),
        1 => "elsewhere".to_owned(),
        _ => CHANNEL.to_owned(),
    };
    let payload = match rng.random_range(0..100u32) {
        0..=69 => payload(rng, ty, seen),
        70..=89 => bytes(rng, 200),
        90..=96 => Vec::new(),
        // Past the listener's limit, or just under it.
        _ => vec![0x0a; rng.random_range(MAX_MESSAGE - 1024..MAX_MESSAGE + 1024 * 1024)],
    };
    ChaincodeMessage {
        r#type: raw_type,
        payload,
        txid,
        channel_id,
        ..Default::default()
    }
}

/// Reads what the host sends the rogue client until the stream ends; returns how it ended.
async fn read(mut from_host: tonic::Streaming<ChaincodeMessage>, seen: Arc<Mutex<Seen>>) -> String {
    loop {
        match from_host.message().await {
            Ok(Some(message)) => {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                match message.r#type() {
                    Type::Transaction | Type::Init => seen.txids.push(message.txid),
                    Type::Ready => seen.ready = true,
                    Type::Response => {
                        if let Ok(page) = QueryResponse::decode(message.payload.as_slice())
                            && page.has_more
                        {
                            seen.iterators.push(page.id);
                        }
                    }
                    _ => {}
                }
            }
            Ok(None) => return "ended by the host".to_owned(),
            Err(status) => return format!("failed: {}", class(status.message())),
        }
    }
}

/// Runs case `seed`; its outcome and findings go into `report`.
async fn case(arena: &Arena, seed: u64, report: &mut Report) -> anyhow::Result<()> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (to_host, from_host) = arena.connect().await?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = tokio::spawn(read(from_host, Arc::clone(&seen)));
    let registers = rng.random_ratio(4, 5);
    if registers {
        to_host.send(register(ROGUE_ID)).await?;
        let started = Instant::now();
        while !seen.lock().map(|s| s.ready).unwrap_or(true) && started.elapsed() < SETTLE {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // Transactions for the rogue chaincode, run while it misbehaves.
    let mut transactions = Vec::new();
    for _ in 0..rng.random_range(0..=3u32) {
        let proposal = cchost::proposal::ProposalBuilder::new(CHANNEL, ROGUE)
            .args([b"go".to_vec(), bytes(&mut rng, 16)])
            .build(&arena.identity)?;
        let support = arena.support.clone();
        transactions.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = support.execute(&proposal.signed_proposal).await;
            (proposal.txid, result, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    let count = rng.random_range(1..=40u32);
    let mut probe_during = None;
    for i in 0..count {
        let message = {
            let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            message(&mut rng, &seen)
        };
        if to_host.send(message).await.is_err() {
            break;
        }
        if rng.random_ratio(1, 4) {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if i == count / 2 {
            // The well-behaved chaincode, while the rogue one is at it.
            probe_during = Some(tokio::spawn({
                let support = arena.support.clone();
                let identity = Arc::clone(&arena.identity);
                async move { probe(&support, &identity).await }
            }));
        }
    }
    // Hanging up: at once, once the transactions ended, or abruptly (the reader dropped
    // with the stream).
    let ending = rng.random_range(0..3u32);
    let stream = match ending {
        0 => {
            drop(to_host);
            reader.await.unwrap_or_else(|e| format!("reader: {e}"))
        }
        1 => {
            let waiting = Instant::now();
            while !transactions.iter().all(|tx| tx.is_finished())
                && waiting.elapsed() < EXECUTE_TIMEOUT + SLACK
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            drop(to_host);
            reader.await.unwrap_or_else(|e| format!("reader: {e}"))
        }
        _ => {
            reader.abort();
            drop(to_host);
            "hung up abruptly".to_owned()
        }
    };
    report.count(
        seed,
        format!(
            "{}: stream {stream}",
            if registers {
                "registered"
            } else {
                "no REGISTER first"
            }
        ),
        &stream,
    );
    for tx in transactions {
        match tokio::time::timeout(EXECUTE_TIMEOUT + SLACK, tx).await {
            Err(_) => report.find(seed, "transaction hung", "no end past its timeout + 2 s"),
            Ok(Err(e)) => report.find(seed, "transaction task failed", e.to_string()),
            Ok(Ok((txid, result, elapsed))) => {
                if elapsed > EXECUTE_TIMEOUT + SLACK {
                    report.find(seed, "transaction past its timeout", format!("{elapsed:?}"));
                }
                let text = match &result {
                    Ok(result) => format!("status {}", result.response.status),
                    Err(e) => e.to_string(),
                };
                let text = text.replace(&txid, "<txid>");
                // An ERROR's payload is the rogue chaincode's own (random) text.
                let outcome = match text.split_once("transaction returned with failure: ") {
                    Some(_) => {
                        "transaction returned with failure: (the ERROR's payload)".to_owned()
                    }
                    None => class(&text),
                };
                report.count(seed, format!("transaction: {outcome}"), &text);
            }
        }
    }
    if let Some(probe) = probe_during {
        match probe.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => report.find(seed, "steady chaincode failed during the case", e),
            Err(e) => report.find(seed, "probe task failed", e.to_string()),
        }
    }
    let settled = Instant::now();
    if !arena
        .support
        .wait_deregistered(&PackageId::new(ROGUE_ID), SETTLE)
        .await
    {
        report.find(seed, "stream not deregistered", format!("after {SETTLE:?}"));
    }
    loop {
        let live = (
            arena.support.live_transaction_contexts(),
            arena.support.open_query_iterators(),
        );
        if live == (0, 0) {
            break;
        }
        if settled.elapsed() > SETTLE {
            report.find(
                seed,
                "context or iterator leaked",
                format!("{} contexts, {} iterators alive", live.0, live.1),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if let Err(e) = arena.probe().await {
        report.find(seed, "steady chaincode failed after the case", e);
    }
    for panic in take_panics() {
        report.find(seed, "panic", panic);
    }
    Ok(())
}

/// A transaction of the well-behaved chaincode: it reads `k0` and answers its value.
async fn probe(support: &ChaincodeSupport, identity: &DevIdentity) -> Result<(), String> {
    let proposal = cchost::proposal::ProposalBuilder::new(CHANNEL, STEADY)
        .args(["probe"])
        .build(identity)
        .map_err(|e| e.to_string())?;
    match support.execute(&proposal.signed_proposal).await {
        Ok(result) if result.response.status == 200 && result.response.payload == b"v0" => Ok(()),
        Ok(result) => Err(format!("answered {:?}", result.response)),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the campaign.
pub async fn run(budget: Budget, progress: &(dyn Fn(&str) + Sync)) -> anyhow::Result<Report> {
    watch_panics();
    take_panics();
    let arena = Arena::start().await.context("starting the listener")?;
    let mut report = Report::new("shim", budget.first);
    let started = Instant::now();
    while budget.allows(report.tried, started) {
        let seed = budget.first + report.tried;
        report.tried += 1;
        if report.tried.is_multiple_of(100) {
            progress(&format!(
                "shim: {} cases, {} findings, {:.0} s",
                report.tried,
                report.findings.len(),
                started.elapsed().as_secs_f64()
            ));
        }
        case(&arena, seed, &mut report).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
