//! `cchost bench load`: a load generator for any Fabric Gateway (a cchost node or a
//! Fabric peer), in the manner of Tape: every transaction is a fresh proposal signed by
//! the generator (no pre-signed pool), sent over a few HTTP/2 connections with a fixed
//! number in flight (closed loop) or at a fixed rate (open loop), for a count or a
//! duration.
//!
//! - **evaluate**: `Gateway/Evaluate` (one signature by the client; the peer verifies the
//!   proposal, runs the chaincode, signs its response);
//! - **submit**: `Gateway/Endorse` → the client signs the prepared transaction →
//!   `Gateway/Submit` → `Gateway/CommitStatus` (signed): a transaction counts as done when
//!   it is committed *valid*; any other validation code is counted as an error by its
//!   name (Tape does not look at it).
//!
//! Errors are counted by gRPC code (and chaincode status or validation code), each class
//! with its first message. At a fixed rate, a transaction's latency runs from when it was
//! due, not from when it was sent (so a stalled server is not hidden by the generator
//! waiting for it: no coordinated omission).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use super::{Samples, micros};
use crate::client::Client;
use crate::node::ClientProfile;
use crate::proposal::DevIdentity;
use cchost_proto::protos::TxValidationCode;

/// What each transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `Gateway/Evaluate`.
    Evaluate,
    /// Endorse, sign, submit, wait for the commit status.
    Submit,
}

impl Mode {
    /// Parses `evaluate` or `submit`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "evaluate" => Ok(Self::Evaluate),
            "submit" => Ok(Self::Submit),
            other => Err(format!(
                "unknown mode {other:?}: expected evaluate or submit"
            )),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Evaluate => "evaluate",
            Self::Submit => "submit",
        }
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// After this many transactions.
    Count(usize),
    /// When no transaction may start any more (those in flight are finished).
    Elapsed(Duration),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Evaluate or submit.
    pub mode: Mode,
    /// The chaincode.
    pub chaincode: String,
    /// The transaction's arguments; `{tx}` in one is replaced by a name unique to the
    /// transaction (the run's random prefix and its index), for transactions that must
    /// not touch the same key.
    pub args: Vec<String>,
    /// Transactions in flight (closed loop), or at most in flight (with a rate).
    pub concurrency: usize,
    /// gRPC connections the transactions are spread over.
    pub connections: usize,
    /// Transactions started per second (open loop); None: as fast as answered.
    pub rate: Option<f64>,
    /// When to stop.
    pub until: Until,
    /// How long a submitted transaction's commit status is waited for.
    pub commit_timeout: Duration,
}

/// A class of failed transactions.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorClass {
    /// How many.
    pub count: usize,
    /// The first one's message.
    pub example: String,
}

/// One transaction, for the CSV.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TxRecord {
    /// When it was due (fixed rate) or started, µs after the run started.
    pub start_us: f64,
    /// Its latency, µs.
    pub latency_us: f64,
    /// `ok`, or its error class.
    pub outcome: String,
}

/// A run's results.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadReport {
    /// `evaluate` or `submit`.
    pub mode: Mode,
    /// The Gateway's address.
    pub address: String,
    /// The channel.
    pub channel: String,
    /// The chaincode.
    pub chaincode: String,
    /// The arguments (before `{tx}` is replaced).
    pub args: Vec<String>,
    /// Transactions in flight (at most, with a rate).
    pub concurrency: usize,
    /// gRPC connections.
    pub connections: usize,
    /// The fixed rate asked for, if any (left out of the JSON when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// From the first transaction's start to the last one's end, seconds.
    pub elapsed_s: f64,
    /// Transactions started.
    pub attempted: usize,
    /// Transactions that succeeded (evaluated with a status below 400, or committed
    /// valid).
    pub succeeded: usize,
    /// Successful transactions per second.
    pub tps: f64,
    /// The successful transactions' latency.
    pub latency: Samples,
    /// The failed ones, by class: `grpc <CODE>`, `chaincode status <N>`, or
    /// `invalid <VALIDATION_CODE>`.
    pub errors: BTreeMap<String, ErrorClass>,
    /// Every transaction in start order.
    #[serde(skip)]
    pub records: Vec<TxRecord>,
}

impl LoadReport {
    /// The lines printed at the end.
    pub fn table(&self) -> String {
        let s = &self.latency.stats;
        let mut out = format!(
            "{} {} on {} ({}), {} in flight{}, {} connection(s)\n",
            self.mode.name(),
            self.args.join(" "),
            self.chaincode,
            self.address,
            self.concurrency,
            self.rate
                .map(|r| format!(" at most, {r:.0} tx/s asked"))
                .unwrap_or_default(),
            self.connections
        );
        out.push_str(&format!(
            "{} of {} succeeded in {:.2} s: {:.0} tx/s; latency p50 {:.0} µs, p95 {:.0} µs, p99 {:.0} µs, max {:.0} µs\n",
            self.succeeded,
            self.attempted,
            self.elapsed_s,
            self.tps,
            s.p50_us,
            s.p95_us,
            s.p99_us,
            s.max_us
        ));
        for (class, e) in &self.errors {
            out.push_str(&format!("{:>8} × {class}: {}\n", e.count, e.example));
        }
        out
    }

    /// One row per transaction: `index,start_us,latency_us,outcome`.
    pub fn csv(&self) -> String {
        let mut out = String::from("index,start_us,latency_us,outcome\n");
        for (i, r) in self.records.iter().enumerate() {
            out.push_str(&format!(
                "{i},{:.1},{:.1},{}\n",
                r.start_us, r.latency_us, r.outcome
            ));
        }
        out
    }

    /// An SVG chart: every transaction's latency (log scale) against when it started,
    /// failures in red.
    pub fn chart(&self) -> Result<String, String> {
        use plotters::prelude::*;
        let fail = |e: &dyn std::fmt::Display| format!("drawing the chart: {e}");
        let high = self
            .records
            .iter()
            .fold(1.0_f64, |m, r| m.max(r.latency_us))
            * 2.0;
        let low = self
            .records
            .iter()
            .fold(high, |m, r| m.min(r.latency_us))
            .max(1.0)
            / 2.0;
        let end = self.elapsed_s.max(0.001);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| fail(&e))?;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!(
                        "{} latency over the run: {:.0} tx/s, {} in flight (µs, log scale)",
                        self.mode.name(),
                        self.tps,
                        self.concurrency
                    ),
                    ("sans-serif", 18),
                )
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(70)
                .build_cartesian_2d(0.0..end, (low..high).log_scale())
                .map_err(|e| fail(&e))?;
            chart
                .configure_mesh()
                .x_desc("seconds into the run")
                .y_desc("latency (µs)")
                .draw()
                .map_err(|e| fail(&e))?;
            for (ok, color) in [(true, BLUE.mix(0.3)), (false, RED.mix(0.8))] {
                chart
                    .draw_series(
                        self.records
                            .iter()
                            .filter(|r| (r.outcome == "ok") == ok)
                            .map(|r| {
                                Circle::new((r.start_us / 1e6, r.latency_us), 1, color.filled())
                            }),
                    )
                    .map_err(|e| fail(&e))?;
            }
            root.present().map_err(|e| fail(&e))?;
        }
        Ok(svg)
    }
}

/// What one transaction came to: Ok, or its error class and message.
type Outcome = Result<(), (String, String)>;

fn grpc_class(status: &tonic::Status) -> (String, String) {
    (
        format!("grpc {}", grpc_code_name(status.code())),
        status.message().to_owned(),
    )
}

/// gRPC's name of a status code, as grpc-go prints it (`UNAVAILABLE`).
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Runs one transaction.
async fn transact(
    client: &Client,
    identity: &DevIdentity,
    config: &LoadConfig,
    args: Vec<Vec<u8>>,
) -> Outcome {
    match config.mode {
        Mode::Evaluate => {
            let response = client
                .evaluate(identity, &config.chaincode, args)
                .await
                .map_err(|s| grpc_class(&s))?;
            if response.status >= 400 {
                return Err((
                    format!("chaincode status {}", response.status),
                    response.message,
                ));
            }
            Ok(())
        }
        Mode::Submit => {
            let submitted = client
                .submit_transaction(
                    identity,
                    &config.chaincode,
                    args,
                    false,
                    Some(config.commit_timeout),
                )
                .await
                .map_err(|s| grpc_class(&s))?;
            match submitted.status {
                Some(status) if status.code == TxValidationCode::Valid => Ok(()),
                Some(status) => Err((
                    format!("invalid {}", status.code.as_str_name()),
                    format!(
                        "transaction {} committed in block {} as {}",
                        status.txid,
                        status.block,
                        status.code.as_str_name()
                    ),
                )),
                None => Err(("no commit status".into(), submitted.txid)),
            }
        }
    }
}

/// Connects `config.connections` clients to the Gateway of `profile` and runs the load
/// as `identity`.
pub async fn run(
    profile: &ClientProfile,
    identity: Arc<DevIdentity>,
    config: &LoadConfig,
) -> anyhow::Result<LoadReport> {
    if config.concurrency == 0 || config.connections == 0 {
        bail!("--concurrency and --connections must be at least 1");
    }
    if config.args.is_empty() {
        bail!("no transaction: name the function and its arguments with -c");
    }
    if let Some(rate) = config.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of transactions per second, got {rate}");
    }
    let mut clients = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        clients.push(Client::connect(profile.clone()).await?);
    }
    let clients = Arc::new(clients);
    let config_arc = Arc::new(config.clone());
    let prefix = format!("load{:08x}", rand::random::<u32>());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(config.concurrency);
    for w in 0..config.concurrency {
        let (clients, identity, config, next, prefix) = (
            Arc::clone(&clients),
            Arc::clone(&identity),
            Arc::clone(&config_arc),
            Arc::clone(&next),
            prefix.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Some(client) = clients.get(w % clients.len()) else {
                return Vec::new();
            };
            let mut records = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                // A due time past what an Instant can hold is past any end.
                let due = match config.rate {
                    Some(rate) => Duration::try_from_secs_f64(i as f64 / rate)
                        .ok()
                        .and_then(|after| started.checked_add(after)),
                    None => Some(Instant::now()),
                };
                let more = match (config.until, due) {
                    (_, None) => false,
                    (Until::Count(n), _) => i < n,
                    (Until::Elapsed(d), Some(due)) => {
                        started.checked_add(d).is_none_or(|end| due < end)
                    }
                };
                let (true, Some(due)) = (more, due) else {
                    break;
                };
                tokio::time::sleep_until(due.into()).await;
                let tx = format!("{prefix}_{i}");
                let args = config
                    .args
                    .iter()
                    .map(|a| a.replace("{tx}", &tx).into_bytes())
                    .collect();
                let outcome = transact(client, &identity, &config, args).await;
                records.push((i, due, Instant::now(), outcome));
            }
            records
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await?);
    }
    all.sort_by_key(|(i, ..)| *i);
    let elapsed = all
        .iter()
        .map(|(_, _, end, _)| end.duration_since(started))
        .max()
        .unwrap_or_default();
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, ErrorClass> = BTreeMap::new();
    let mut records = Vec::with_capacity(all.len());
    for (_, due, end, outcome) in all {
        let latency = micros(end.duration_since(due));
        let outcome = match outcome {
            Ok(()) => {
                latencies.push(latency);
                "ok".to_owned()
            }
            Err((class, message)) => {
                errors
                    .entry(class.clone())
                    .or_insert(ErrorClass {
                        count: 0,
                        example: message,
                    })
                    .count += 1;
                class
            }
        };
        records.push(TxRecord {
            start_us: micros(due.duration_since(started)),
            latency_us: latency,
            outcome,
        });
    }
    let succeeded = latencies.len();
    Ok(LoadReport {
        mode: config.mode,
        address: profile.address.clone(),
        channel: profile.channel.clone(),
        chaincode: config.chaincode.clone(),
        args: config.args.clone(),
        concurrency: config.concurrency,
        connections: config.connections,
        rate: config.rate,
        elapsed_s: elapsed.as_secs_f64(),
        attempted: records.len(),
        succeeded,
        tps: if elapsed.is_zero() {
            0.0
        } else {
            succeeded as f64 / elapsed.as_secs_f64()
        },
        latency: Samples::new(latencies),
        errors,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_name_and_refuse_others_with_the_choices() {
        assert_eq!(Mode::parse("evaluate"), Ok(Mode::Evaluate));
        assert_eq!(Mode::parse("submit"), Ok(Mode::Submit));
        assert_eq!(
            Mode::parse("invoke"),
            Err("unknown mode \"invoke\": expected evaluate or submit".to_owned())
        );
    }

    #[test]
    fn grpc_codes_are_named_as_grpc_go_names_them() {
        assert_eq!(grpc_code_name(tonic::Code::Unavailable), "UNAVAILABLE");
        assert_eq!(
            grpc_code_name(tonic::Code::DeadlineExceeded),
            "DEADLINE_EXCEEDED"
        );
    }
}
