//! Campaign `soak`: a node under a steady mixed load — [`IN_FLIGHT`] clients, each
//! evaluating (7 in 10) or submitting and waiting for the commit (3 in 10) through the
//! Gateway — for the whole duration, with the chaincode stopped half-way through as a
//! crash would stop it (launched again by the next transaction).
//!
//! Invariants: no panic; no error outside the crash window (from the stop until the first
//! transaction that started after it succeeds); every submitted transaction committed
//! VALID; in runs of 5 minutes or more, resident memory at the end within 10% of its
//! level at a fifth of the run.
//! Reported: throughput, p50/p99 latency of each kind, errors in the crash window, the
//! time to the first success after the crash, resident memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::ChaCha20Rng;
use rand::{RngExt as _, SeedableRng as _};

use crate::kvnode::KvNode;
use crate::modules::class;
use crate::{Report, resident_bytes, take_panics, watch_panics};

/// Transactions in flight.
pub const IN_FLIGHT: usize = 32;
/// How much resident memory may grow from a fifth of the run to its end.
pub const RSS_GROWTH: f64 = 0.10;
/// Runs at least this long are held to [`RSS_GROWTH`] (minute 1 to minute 5); shorter ones
/// (CI's 30 s) are mostly warm-up, and only report their memory.
pub const RSS_CHECKED_FROM: Duration = Duration::from_secs(300);

/// A failed transaction: when it ran, what it was, why.
struct Failure {
    started: Instant,
    ended: Instant,
    submit: bool,
    error: String,
}

/// Latencies in 0.1 ms buckets up to 10 s (the last bucket holds the rest): fixed
/// memory, so that the load's own bookkeeping does not grow with the run.
struct Histogram(Vec<u64>);

impl Histogram {
    const BUCKETS: usize = 100_000;

    fn new() -> Self {
        Self(vec![0; Self::BUCKETS])
    }

    fn record(&mut self, latency: Duration) {
        let bucket = ((latency.as_secs_f64() * 1e4) as usize).min(Self::BUCKETS - 1);
        if let Some(count) = self.0.get_mut(bucket) {
            *count += 1;
        }
    }

    fn merge(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `p` quantile, milliseconds (the bucket's upper edge).
    fn quantile(&self, p: f64) -> f64 {
        let rank = (self.count() as f64 * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in self.0.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return (bucket + 1) as f64 / 10.0;
            }
        }
        0.0
    }
}

/// What one client saw.
struct Seen {
    latencies: [Histogram; 2],
    failures: Vec<Failure>,
    /// When its first success among transactions started after the crash ended.
    first_success_after_crash: Option<Instant>,
}

/// One client's loop until `stop`; `crashed` is set once the chaincode was stopped.
async fn client_loop(
    node: Arc<KvNode>,
    worker: usize,
    stop: Arc<AtomicBool>,
    crashed: Arc<std::sync::OnceLock<Instant>>,
) -> Seen {
    let mut rng = ChaCha20Rng::seed_from_u64(worker as u64);
    let mut seen = Seen {
        latencies: [Histogram::new(), Histogram::new()],
        failures: Vec::new(),
        first_success_after_crash: None,
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let submit = rng.random_ratio(3, 10);
        let args = vec![format!("soak-{worker}-{n}").into_bytes()];
        let started = Instant::now();
        let error = if submit {
            match node
                .client
                .submit_transaction(&node.user, "kv", args, false, Some(Duration::from_secs(30)))
                .await
            {
                Ok(submitted) => match submitted.status {
                    Some(status) if status.code as i32 == 0 => None,
                    Some(status) => Some(format!("committed as {}", status.code.as_str_name())),
                    None => Some("no commit status".to_owned()),
                },
                Err(status) => Some(format!("{:?}: {}", status.code(), status.message())),
            }
        } else {
            match node.client.evaluate(&node.user, "kv", args).await {
                Ok(response) if response.status == 200 => None,
                Ok(response) => Some(format!("status {}: {}", response.status, response.message)),
                Err(status) => Some(format!("{:?}: {}", status.code(), status.message())),
            }
        };
        let ended = Instant::now();
        match error {
            None => {
                if let Some(h) = seen.latencies.get_mut(usize::from(submit)) {
                    h.record(ended - started);
                }
                if crashed.get().is_some_and(|c| started >= *c)
                    && seen.first_success_after_crash.is_none()
                {
                    seen.first_success_after_crash = Some(ended);
                }
            }
            Some(error) => seen.failures.push(Failure {
                started,
                ended,
                submit,
                error,
            }),
        }
    }
    seen
}

/// Runs the campaign for `duration`.
pub async fn run(duration: Duration, progress: &(dyn Fn(&str) + Sync)) -> anyhow::Result<Report> {
    watch_panics();
    take_panics();
    progress("soak: starting a node and deploying kv");
    let node = Arc::new(KvNode::start().await?);
    let mut report = Report::new("soak", 0);
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let crashed = Arc::new(std::sync::OnceLock::new());
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|w| {
            tokio::spawn(client_loop(
                Arc::clone(&node),
                w,
                Arc::clone(&stop),
                Arc::clone(&crashed),
            ))
        })
        .collect();
    // Resident memory every tenth of the run, for the report.
    let sampler = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut series = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                series.push(resident_bytes());
                tokio::time::sleep(duration / 10).await;
            }
            series
        }
    });
    // A fifth of the way: the memory level; half-way: the crash.
    tokio::time::sleep(duration / 5).await;
    let early_rss = resident_bytes();
    progress(&format!(
        "soak: {:.0} MiB resident at {:?}",
        early_rss as f64 / 1048576.0,
        began.elapsed()
    ));
    tokio::time::sleep(duration / 2 - duration / 5).await;
    progress("soak: stopping the chaincode");
    let crash = Instant::now();
    node.node.stop_chaincode(&node.package_id).await;
    let _ = crashed.set(Instant::now());
    tokio::time::sleep(duration - duration / 2).await;
    let late_rss = resident_bytes();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = [Histogram::new(), Histogram::new()];
    let mut failures = Vec::new();
    let mut recovered: Option<Instant> = None;
    for worker in workers {
        let seen = worker.await?;
        for (all, mine) in latencies.iter_mut().zip(&seen.latencies) {
            all.merge(mine);
        }
        failures.extend(seen.failures);
        recovered = match (recovered, seen.first_success_after_crash) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let elapsed = began.elapsed();
    let series = sampler.await?;
    progress(&format!(
        "soak: resident memory every tenth of the run (MiB): {}",
        series
            .iter()
            .map(|b| format!("{:.0}", *b as f64 / 1048576.0))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    // The crash window: from the stop until the first success of a transaction that
    // started once the chaincode was gone.
    let in_window = |f: &Failure| f.ended >= crash && recovered.is_none_or(|r| f.started < r);
    let mut window_errors = 0u64;
    for (kind, histogram) in ["evaluate", "submit"].iter().zip(&latencies) {
        report.tried += histogram.count();
        report.count(0, format!("{kind}: ok"), "");
        if let Some(outcome) = report.outcomes.get_mut(&format!("{kind}: ok")) {
            outcome.count = histogram.count();
        }
    }
    for failure in &failures {
        report.tried += 1;
        let kind = if failure.submit { "submit" } else { "evaluate" };
        if in_window(failure) {
            window_errors += 1;
            report.count(
                0,
                format!("{kind}: in the crash window: {}", class(&failure.error)),
                &failure.error,
            );
        } else {
            report.count(
                0,
                format!("{kind}: {}", class(&failure.error)),
                &failure.error,
            );
            report.find(
                0,
                "an error outside the crash window",
                format!("{kind}: {}", failure.error),
            );
        }
    }
    for (kind, histogram) in ["evaluate", "submit"].into_iter().zip(&latencies) {
        report
            .figures
            .insert(format!("{kind} p50 (ms)"), histogram.quantile(0.50));
        report
            .figures
            .insert(format!("{kind} p99 (ms)"), histogram.quantile(0.99));
        report.figures.insert(
            format!("{kind} per s"),
            histogram.count() as f64 / elapsed.as_secs_f64(),
        );
    }
    report.figures.insert(
        "errors in the crash window".to_owned(),
        window_errors as f64,
    );
    report.figures.insert(
        "first success after the crash (ms)".to_owned(),
        recovered.map_or(-1.0, |r| r.duration_since(crash).as_secs_f64() * 1e3),
    );
    let mib = |b: u64| b as f64 / 1048576.0;
    report.figures.insert(
        "resident memory at a fifth (MiB)".to_owned(),
        mib(early_rss),
    );
    report
        .figures
        .insert("resident memory at the end (MiB)".to_owned(), mib(late_rss));
    if recovered.is_none() {
        report.find(
            0,
            "no success after the crash",
            "the chaincode never came back",
        );
    }
    if duration >= RSS_CHECKED_FROM && late_rss as f64 > early_rss as f64 * (1.0 + RSS_GROWTH) {
        report.find(
            0,
            "resident memory grew past 10%",
            format!("{:.0} MiB -> {:.0} MiB", mib(early_rss), mib(late_rss)),
        );
    }
    for panic in take_panics() {
        report.find(0, "panic", panic);
    }
    report.seconds = elapsed.as_secs_f64();
    let node =
        Arc::into_inner(node).ok_or_else(|| anyhow::anyhow!("a client still holds the node"))?;
    node.node.stop().await?;
    Ok(report)
}
