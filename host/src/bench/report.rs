//! The benchmark's results: raw samples, statistics, the summary, and the table, CSV and
//! chart made from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Latency statistics of a set of samples, in microseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
}

/// The nearest-rank percentile `p` (0..=1) of sorted `samples`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or(0.0)
}

impl Stats {
    /// Statistics of `samples` (µs); all zero when there are none.
    pub fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            n: sorted.len(),
            p50_us: percentile(&sorted, 0.50),
            p95_us: percentile(&sorted, 0.95),
            p99_us: percentile(&sorted, 0.99),
            max_us: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

/// A set of samples and their statistics.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Samples {
    /// The statistics.
    #[serde(flatten)]
    pub stats: Stats,
    /// Every sample, µs, in the order taken.
    pub samples_us: Vec<f64>,
}

impl Samples {
    /// `samples` (µs) with their statistics.
    pub fn new(samples: Vec<f64>) -> Self {
        Self {
            stats: Stats::of(&samples),
            samples_us: samples,
        }
    }
}

/// Warm invocations of one transaction at one concurrency.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InvokeRun {
    /// `transfer` (TransferAsset: 1 get + 1 put) or `read` (ReadAsset: 1 get).
    pub transaction: String,
    /// Transactions in flight.
    pub concurrency: usize,
    /// Latency of each.
    #[serde(flatten)]
    pub latency: Samples,
    /// Transactions per second over the run.
    pub tps: f64,
    /// CPU time (user and system, every thread) this process spent per transaction
    /// over the run, µs: all of a wasm transaction's cost, only the peer's share of a
    /// Node one.
    pub host_cpu_us_per_tx: f64,
    /// CPU time the chaincode's own process spent per transaction, µs, where it is a
    /// process the benchmark knows (native, process, external); None otherwise (wasm
    /// runs in the host, a container's process is the engine's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaincode_cpu_us_per_tx: Option<f64>,
}

impl InvokeRun {
    /// Host and chaincode CPU per transaction together, µs.
    pub fn total_cpu_us_per_tx(&self) -> f64 {
        self.host_cpu_us_per_tx + self.chaincode_cpu_us_per_tx.unwrap_or(0.0)
    }
}

/// Everything measured for one runtime.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuntimeReport {
    /// What "install" means for this runtime.
    pub install_is: String,
    /// Install (wasm: validate + compile + write the artifact; docker: cold image build).
    /// Empty where nothing is installed (a process started by hand).
    pub install: Samples,
    /// First launch to READY after install (wasm: in a fresh runtime, from the artifact
    /// on disk, as after a restart).
    pub cold_launch: Samples,
    /// Cold start to the first response: a cold launch and the first transaction after
    /// it, back to back (what a user waits for after a restart or a new image).
    pub cold_start: Samples,
    /// What a process makes once before its first launch: wasm's engine, instance pool
    /// and linker (a fresh runtime per round). Empty for the other runtimes, whose
    /// engine (Docker, the operating system) is up already.
    pub runtime_setup: Samples,
    /// Launch to READY after a stop (cached artifact, existing image).
    pub warm_launch: Samples,
    /// The first transaction after each launch.
    pub first_invoke: Samples,
    /// Warm invocations.
    pub invoke: Vec<InvokeRun>,
    /// Resident memory of one running chaincode, bytes.
    pub memory_bytes: u64,
    /// What `memory_bytes` measures.
    pub memory_is: String,
    /// Artifact sizes, bytes (package, compiled module, image).
    pub artifact_bytes: BTreeMap<String, u64>,
}

impl RuntimeReport {
    /// The warm run of `transaction` at `concurrency`.
    pub fn run(&self, transaction: &str, concurrency: usize) -> Option<&InvokeRun> {
        self.invoke
            .iter()
            .find(|r| r.transaction == transaction && r.concurrency == concurrency)
    }
}

/// The headline figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Wasm warm launch to READY, median, µs.
    pub wasm_warm_launch_p50_us: f64,
    /// Container warm launch to READY, median, µs.
    pub container_warm_launch_p50_us: f64,
    /// How many times faster the wasm launch is.
    pub launch_ratio: f64,
    /// Wasm TransferAsset (1 get + 1 put) throughput at the highest concurrency, tx/s.
    pub wasm_invoke_tps_c32: f64,
    /// The Node chaincode's (container) throughput at the same concurrency, tx/s.
    pub node_invoke_tps_c32: f64,
    /// How many times the wasm throughput is the Node one.
    pub invoke_ratio: f64,
    /// Wasm cold start to the first response (runtime made, package and artifact read
    /// from disk, REGISTER/READY, the first TransferAsset), median, µs.
    pub wasm_cold_start_p50_us: f64,
    /// The container's (first container of a new image, its first TransferAsset),
    /// median, µs.
    pub container_cold_start_p50_us: f64,
    /// How many times faster the wasm cold start is.
    pub cold_start_ratio: f64,
    /// The wasm null transaction's throughput at the same concurrency, tx/s (0 when not
    /// measured).
    pub wasm_null_tps_c32: f64,
    /// TransferAsset's throughput as a share of the null transaction's.
    pub wasm_invoke_of_null: f64,
    /// Evaluates through the Gateway per second (0 when not measured).
    pub gateway_evaluate_tps: f64,
    /// Submits through the Gateway, each waited for until committed valid, per second
    /// (0 when not measured).
    pub gateway_submit_tps: f64,
    /// The same Rust contract compiled natively (a process over the gRPC shim):
    /// TransferAsset at the same concurrency, tx/s (0 when not measured).
    pub native_invoke_tps_c32: f64,
    /// How many times the native throughput the wasm one is (above 1: wasm is faster).
    pub wasm_of_native_tps: f64,
    /// Wasm TransferAsset CPU per transaction at concurrency 1, µs (all in the host).
    pub wasm_cpu_us_per_tx_c1: f64,
    /// Native TransferAsset CPU per transaction at concurrency 1, µs: the peer's and the
    /// chaincode process's together (0 when not measured).
    pub native_cpu_us_per_tx_c1: f64,
    /// The concurrency the `_c32` figures were taken at (32 unless `--concurrency`
    /// leaves it out: then the highest run).
    pub at_concurrency: usize,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// The machine and the run's settings.
    pub machine: BTreeMap<String, String>,
    /// Per runtime: `wasm`, `docker`, `process`.
    pub runtimes: BTreeMap<String, RuntimeReport>,
    /// The Gateway figures, when measured.
    pub gateway: Option<super::gateway::GatewayReport>,
    /// The headline figures (present when wasm and docker both ran).
    pub summary: Option<Summary>,
}

/// `a / b`, or 0 when it is not a finite number.
fn ratio(a: f64, b: f64) -> f64 {
    let r = a / b;
    if r.is_finite() { r } else { 0.0 }
}

impl Report {
    /// Computes the summary from the runtimes measured.
    pub fn summarize(&mut self) {
        let (Some(wasm), Some(docker)) = (self.runtimes.get("wasm"), self.runtimes.get("docker"))
        else {
            self.summary = None;
            return;
        };
        let at = wasm
            .invoke
            .iter()
            .map(|r| r.concurrency)
            .filter(|c| docker.run("transfer", *c).is_some())
            .max_by_key(|c| (*c == 32, *c))
            .unwrap_or(1);
        let tps = |r: &RuntimeReport| r.run("transfer", at).map_or(0.0, |r| r.tps);
        let cpu_c1 = |r: Option<&RuntimeReport>| {
            r.and_then(|r| r.run("transfer", 1))
                .map_or(0.0, InvokeRun::total_cpu_us_per_tx)
        };
        let native = self.runtimes.get("native");
        let native_tps = native.map_or(0.0, tps);
        let null = wasm.run("null", at).map_or(0.0, |r| r.tps);
        let (wasm_cold, container_cold) =
            (wasm.cold_start.stats.p50_us, docker.cold_start.stats.p50_us);
        let (wasm_launch, container_launch) = (
            wasm.warm_launch.stats.p50_us,
            docker.warm_launch.stats.p50_us,
        );
        self.summary = Some(Summary {
            wasm_warm_launch_p50_us: wasm_launch,
            container_warm_launch_p50_us: container_launch,
            launch_ratio: ratio(container_launch, wasm_launch),
            wasm_invoke_tps_c32: tps(wasm),
            node_invoke_tps_c32: tps(docker),
            invoke_ratio: ratio(tps(wasm), tps(docker)),
            wasm_cold_start_p50_us: wasm_cold,
            container_cold_start_p50_us: container_cold,
            cold_start_ratio: ratio(container_cold, wasm_cold),
            wasm_null_tps_c32: null,
            wasm_invoke_of_null: ratio(tps(wasm), null),
            gateway_evaluate_tps: self.gateway.as_ref().map_or(0.0, |g| g.evaluate.tps),
            gateway_submit_tps: self.gateway.as_ref().map_or(0.0, |g| g.submit.tps),
            native_invoke_tps_c32: native_tps,
            wasm_of_native_tps: ratio(tps(wasm), native_tps),
            wasm_cpu_us_per_tx_c1: cpu_c1(Some(wasm)),
            native_cpu_us_per_tx_c1: cpu_c1(native),
            at_concurrency: at,
        });
    }

    /// The table printed at the end: one row per figure, one column per runtime, and
    /// how many times better wasm does than the container.
    pub fn table(&self) -> String {
        let names: Vec<&String> = self.runtimes.keys().collect();
        // The third field: whether lower is better (None: no ratio, the runtimes'
        // figures measure different things).
        let mut rows: Vec<(String, Vec<Option<f64>>, Option<bool>)> = Vec::new();
        let mut row =
            |label: String, f: &dyn Fn(&RuntimeReport) -> Option<f64>, lower: Option<bool>| {
                let values: Vec<Option<f64>> = names
                    .iter()
                    .map(|n| self.runtimes.get(*n).and_then(f))
                    .collect();
                // A figure no runtime has (the chaincode process's CPU of wasm's null
                // transaction) is no row.
                if values.iter().any(Option::is_some) {
                    rows.push((label, values, lower));
                }
            };
        let nonzero = |s: &Samples| (s.stats.n > 0).then_some(s.stats.p50_us);
        row(
            "install p50 (µs)".into(),
            &|r| nonzero(&r.install),
            Some(true),
        );
        row(
            "cold launch p50 (µs)".into(),
            &|r| nonzero(&r.cold_launch),
            Some(true),
        );
        row(
            "runtime setup p50 (µs)".into(),
            &|r| nonzero(&r.runtime_setup),
            None,
        );
        row(
            "cold start to 1st reply p50 (µs)".into(),
            &|r| nonzero(&r.cold_start),
            Some(true),
        );
        row(
            "warm launch p50 (µs)".into(),
            &|r| nonzero(&r.warm_launch),
            Some(true),
        );
        row(
            "first invoke p50 (µs)".into(),
            &|r| nonzero(&r.first_invoke),
            Some(true),
        );
        let mut runs: Vec<(String, usize)> = self
            .runtimes
            .values()
            .flat_map(|r| {
                r.invoke
                    .iter()
                    .map(|i| (i.transaction.clone(), i.concurrency))
            })
            .collect();
        runs.sort();
        runs.dedup();
        for (tx, c) in runs {
            // Host CPU is all of a wasm transaction's cost but only the peer's share of
            // a Node one: no ratio.
            for (what, lower) in [
                ("p50", Some(true)),
                ("p99", Some(true)),
                ("tx/s", Some(false)),
                ("host CPU/tx", None),
                ("chaincode CPU/tx", None),
            ] {
                let (tx2, what2) = (tx.clone(), what);
                row(
                    format!(
                        "{tx} c{c} {what}{}",
                        if what == "tx/s" { "" } else { " (µs)" }
                    ),
                    &move |r| {
                        r.run(&tx2, c).and_then(|run| match what2 {
                            "p50" => Some(run.latency.stats.p50_us),
                            "p99" => Some(run.latency.stats.p99_us),
                            "tx/s" => Some(run.tps),
                            "host CPU/tx" => Some(run.host_cpu_us_per_tx),
                            _ => run.chaincode_cpu_us_per_tx,
                        })
                    },
                    lower,
                );
            }
        }
        row(
            "memory per chaincode (KiB)".into(),
            &|r| Some(r.memory_bytes as f64 / 1024.0),
            Some(true),
        );
        let wasm = names.iter().position(|n| n.as_str() == "wasm");
        let docker = names.iter().position(|n| n.as_str() == "docker");
        let mut out = String::new();
        let _ = write!(out, "{:<34}", "figure");
        for name in &names {
            let _ = write!(out, "{name:>14}");
        }
        if wasm.is_some() && docker.is_some() {
            let _ = write!(out, "{:>16}", "wasm advantage");
        }
        out.push('\n');
        for (label, values, lower) in rows {
            let _ = write!(out, "{label:<34}");
            for value in &values {
                match value {
                    Some(v) => {
                        let _ = write!(out, "{:>14}", format_figure(*v));
                    }
                    None => {
                        let _ = write!(out, "{:>14}", "n/a");
                    }
                }
            }
            if let (Some(w), Some(d), Some(lower)) = (wasm, docker, lower)
                && let (Some(Some(w)), Some(Some(d))) = (values.get(w), values.get(d))
            {
                let advantage = if lower { ratio(*d, *w) } else { ratio(*w, *d) };
                let _ = write!(out, "{:>15}×", format_figure(advantage));
            }
            out.push('\n');
        }
        if let Some(gateway) = &self.gateway {
            out.push('\n');
            out.push_str(&gateway.table());
        }
        out
    }

    /// Every sample as CSV: `runtime,figure,transaction,concurrency,index,value_us`.
    pub fn csv(&self) -> String {
        let mut out = String::from("runtime,figure,transaction,concurrency,index,value_us\n");
        for (name, r) in &self.runtimes {
            for (figure, samples) in [
                ("install", &r.install),
                ("cold_launch", &r.cold_launch),
                ("cold_start", &r.cold_start),
                ("runtime_setup", &r.runtime_setup),
                ("warm_launch", &r.warm_launch),
                ("first_invoke", &r.first_invoke),
            ] {
                for (i, v) in samples.samples_us.iter().enumerate() {
                    let _ = writeln!(out, "{name},{figure},,,{i},{v:.1}");
                }
            }
            for run in &r.invoke {
                for (i, v) in run.latency.samples_us.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name},invoke,{},{},{i},{v:.1}",
                        run.transaction, run.concurrency
                    );
                }
            }
        }
        out
    }

    /// An SVG chart of the launch latency distributions: every cold and warm launch of
    /// every runtime on a logarithmic time axis, with its median marked.
    pub fn launch_chart(&self) -> Result<String, String> {
        use plotters::prelude::*;
        let series: Vec<(String, &Samples)> = self
            .runtimes
            .iter()
            .flat_map(|(name, r)| {
                [
                    (format!("{name} cold"), &r.cold_launch),
                    (format!("{name} warm"), &r.warm_launch),
                ]
            })
            .filter(|(_, s)| s.stats.n > 0)
            .collect();
        let all = series
            .iter()
            .flat_map(|(_, s)| s.samples_us.iter().copied());
        let (low, high) = all.fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (low, high) = if high > 0.0 {
            (low.max(1.0) / 2.0, high * 2.0)
        } else {
            (1.0, 10.0)
        };
        let rows = series.len().max(1);
        let mut svg = String::new();
        {
            let height = 120 + 40 * u32::try_from(rows).unwrap_or(1);
            let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
            let fail = |e: &dyn std::fmt::Display| format!("drawing the chart: {e}");
            root.fill(&WHITE).map_err(|e| fail(&e))?;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    "Launch to READY (µs, log scale; bar = median)",
                    ("sans-serif", 18),
                )
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(110)
                .build_cartesian_2d((low..high).log_scale(), 0.0..rows as f64)
                .map_err(|e| fail(&e))?;
            let labels: Vec<String> = series.iter().map(|(l, _)| l.clone()).collect();
            chart
                .configure_mesh()
                .y_labels(rows * 2 + 1)
                .y_label_formatter(&|y: &f64| {
                    let slot = y - 0.5;
                    if (slot - slot.round()).abs() < 1e-6 && slot >= 0.0 {
                        labels
                            .get(slot.round() as usize)
                            .cloned()
                            .unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .x_desc("microseconds")
                .draw()
                .map_err(|e| fail(&e))?;
            let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
            for (row, (_, samples)) in series.iter().enumerate() {
                let color = colors.get(row / 2 % colors.len()).copied().unwrap_or(BLACK);
                let y = row as f64 + 0.5;
                let n = samples.samples_us.len().max(1) as f64;
                chart
                    .draw_series(samples.samples_us.iter().enumerate().map(|(i, v)| {
                        // Spread the points over the row so that equal values stay visible.
                        let jitter = (i as f64 / n - 0.5) * 0.5;
                        Circle::new((*v, y + jitter), 3, color.mix(0.6).filled())
                    }))
                    .map_err(|e| fail(&e))?;
                let median = samples.stats.p50_us;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(median, y - 0.4), (median, y + 0.4)],
                        color.stroke_width(3),
                    )))
                    .map_err(|e| fail(&e))?;
            }
            root.present().map_err(|e| fail(&e))?;
        }
        Ok(svg)
    }
}

/// A figure with about four significant digits.
fn format_figure(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let stats = Stats::of(&samples);
        assert_eq!(
            (
                stats.n,
                stats.p50_us,
                stats.p95_us,
                stats.p99_us,
                stats.max_us
            ),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(Stats::of(&[]).p50_us, 0.0);
        assert_eq!(Stats::of(&[7.0]).p99_us, 7.0);
    }
}
