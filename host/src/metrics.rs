//! Fabric's chaincode metrics (`core/chaincode/metrics.go`: launch, execute and shim
//! request metrics with Fabric's names and labels) with prometheus-client, plus a
//! `runtime` label (`wasm`, `ccaas`, `docker`, or `dev` for chaincode that registered on
//! its own). Counters carry OpenMetrics' `_total` suffix in the text exposition
//! (`chaincode_launch_failures_total`); histograms use Prometheus' default buckets.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::ids::PackageId;

/// Prometheus' default histogram buckets, in seconds (as Fabric's go-kit histograms).
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The runtime label of chaincode no launcher started (dev mode).
pub const DEV_RUNTIME: &str = "dev";

fn histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

fn success(ok: bool) -> String {
    if ok { "true" } else { "false" }.to_owned()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChaincodeLabels {
    chaincode: String,
    runtime: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    chaincode: String,
    success: String,
    runtime: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    r#type: String,
    channel: String,
    chaincode: String,
    runtime: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompletedLabels {
    r#type: String,
    channel: String,
    chaincode: String,
    success: String,
    runtime: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The request metrics of one chaincode, channel and request type (see
/// [`Metrics::requests`]). The completion series of an outcome is created at its first
/// use, so `/metrics` shows only outcomes that happened.
#[derive(Debug)]
pub(crate) struct RequestMetrics {
    received: Counter,
    completed: Family<CompletedLabels, Counter>,
    duration: HistogramFamily<CompletedLabels>,
    labels: RequestLabels,
    /// Counter and histogram of ERROR (0) and RESPONSE (1).
    outcomes: [std::sync::OnceLock<(Counter, Histogram)>; 2],
}

impl RequestMetrics {
    /// A request arrived.
    pub(crate) fn received(&self) {
        self.received.inc();
    }

    /// It was answered after `elapsed`, with RESPONSE (`ok`) or ERROR.
    pub(crate) fn completed(&self, ok: bool, elapsed: Duration) {
        let Some(slot) = self.outcomes.get(usize::from(ok)) else {
            return;
        };
        let (count, duration) = slot.get_or_init(|| {
            let labels = CompletedLabels {
                r#type: self.labels.r#type.clone(),
                channel: self.labels.channel.clone(),
                chaincode: self.labels.chaincode.clone(),
                success: success(ok),
                runtime: self.labels.runtime.clone(),
            };
            (
                self.completed.get_or_create(&labels).clone(),
                self.duration.get_or_create(&labels).clone(),
            )
        });
        count.inc();
        duration.observe(elapsed.as_secs_f64());
    }
}

/// The chaincode metrics of one host.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runtimes: RwLock<HashMap<PackageId, &'static str>>,
    launch_duration: HistogramFamily<OutcomeLabels>,
    launch_failures: Family<ChaincodeLabels, Counter>,
    launch_timeouts: Family<ChaincodeLabels, Counter>,
    execute_timeouts: Family<ChaincodeLabels, Counter>,
    requests_received: Family<RequestLabels, Counter>,
    requests_completed: Family<CompletedLabels, Counter>,
    request_duration: HistogramFamily<CompletedLabels>,
    container_build_duration: HistogramFamily<OutcomeLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let launch_duration = HistogramFamily::new_with_constructor(histogram as fn() -> Histogram);
        let launch_failures = Family::default();
        let launch_timeouts = Family::default();
        let execute_timeouts = Family::default();
        let requests_received = Family::default();
        let requests_completed = Family::default();
        let request_duration =
            HistogramFamily::new_with_constructor(histogram as fn() -> Histogram);
        let container_build_duration =
            HistogramFamily::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            "chaincode_launch_duration",
            "The time to launch a chaincode, in seconds",
            launch_duration.clone(),
        );
        registry.register(
            "chaincode_launch_failures",
            "The number of chaincode launches that have failed",
            launch_failures.clone(),
        );
        registry.register(
            "chaincode_launch_timeouts",
            "The number of chaincode launches that have timed out",
            launch_timeouts.clone(),
        );
        registry.register(
            "chaincode_execute_timeouts",
            "The number of chaincode executions (Init or Invoke) that have timed out",
            execute_timeouts.clone(),
        );
        registry.register(
            "chaincode_shim_requests_received",
            "The number of chaincode shim requests received",
            requests_received.clone(),
        );
        registry.register(
            "chaincode_shim_requests_completed",
            "The number of chaincode shim requests completed",
            requests_completed.clone(),
        );
        registry.register(
            "chaincode_shim_request_duration",
            "The time to complete chaincode shim requests, in seconds",
            request_duration.clone(),
        );
        registry.register(
            "dockercontroller_chaincode_container_build_duration",
            "The time to build a chaincode image, in seconds",
            container_build_duration.clone(),
        );
        let version = Family::<VersionLabels, Gauge>::default();
        version
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("fabric_version", "The active version of cchost", version);
        Self {
            registry,
            runtimes: RwLock::default(),
            launch_duration,
            launch_failures,
            launch_timeouts,
            execute_timeouts,
            requests_received,
            requests_completed,
            request_duration,
            container_build_duration,
        }
    }

    /// Records which runtime serves `package_id` (the launcher calls this).
    pub fn set_runtime(&self, package_id: &PackageId, runtime: &'static str) {
        self.runtimes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(package_id.clone(), runtime);
    }

    fn runtime(&self, package_id: &PackageId) -> String {
        self.runtimes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(package_id)
            .copied()
            .unwrap_or(DEV_RUNTIME)
            .to_owned()
    }

    fn chaincode(&self, package_id: &PackageId) -> ChaincodeLabels {
        ChaincodeLabels {
            chaincode: package_id.to_string(),
            runtime: self.runtime(package_id),
        }
    }

    /// A launch ended after `elapsed`: READY (`ok`), failed, or timed out.
    pub fn launch(&self, package_id: &PackageId, elapsed: Duration, outcome: LaunchOutcome) {
        let labels = self.chaincode(package_id);
        self.launch_duration
            .get_or_create(&OutcomeLabels {
                chaincode: labels.chaincode.clone(),
                success: success(outcome == LaunchOutcome::Ready),
                runtime: labels.runtime.clone(),
            })
            .observe(elapsed.as_secs_f64());
        match outcome {
            LaunchOutcome::Ready => {}
            LaunchOutcome::Failed => {
                self.launch_failures.get_or_create(&labels).inc();
            }
            LaunchOutcome::TimedOut => {
                self.launch_timeouts.get_or_create(&labels).inc();
            }
        }
    }

    /// A transaction of `package_id` hit the execute timeout.
    pub fn execute_timeout(&self, package_id: &PackageId) {
        self.execute_timeouts
            .get_or_create(&self.chaincode(package_id))
            .inc();
    }

    /// A shim request of type `ty` arrived.
    pub fn request_received(&self, package_id: &PackageId, channel: &str, ty: &str) {
        self.requests(package_id, channel, ty).received();
    }

    /// A shim request was answered after `elapsed`, with RESPONSE (`ok`) or ERROR.
    pub fn request_completed(
        &self,
        package_id: &PackageId,
        channel: &str,
        ty: &str,
        ok: bool,
        elapsed: Duration,
    ) {
        self.requests(package_id, channel, ty)
            .completed(ok, elapsed);
    }

    /// The request metrics of one chaincode, channel and request type, resolved once:
    /// a handler keeps them rather than building label sets for every request.
    pub(crate) fn requests(
        &self,
        package_id: &PackageId,
        channel: &str,
        ty: &str,
    ) -> RequestMetrics {
        let labels = RequestLabels {
            r#type: ty.to_owned(),
            channel: channel.to_owned(),
            chaincode: package_id.to_string(),
            runtime: self.runtime(package_id),
        };
        RequestMetrics {
            received: self.requests_received.get_or_create(&labels).clone(),
            completed: self.requests_completed.clone(),
            duration: self.request_duration.clone(),
            labels,
            outcomes: Default::default(),
        }
    }

    /// An image build ended after `elapsed`.
    pub fn container_build(&self, package_id: &PackageId, elapsed: Duration, ok: bool) {
        let labels = self.chaincode(package_id);
        self.container_build_duration
            .get_or_create(&OutcomeLabels {
                chaincode: labels.chaincode,
                success: success(ok),
                runtime: labels.runtime,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text exposition of every family.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// How a launch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchOutcome {
    /// Registered and READY.
    Ready,
    /// The runtime failed to start it.
    Failed,
    /// It did not register within the startup timeout.
    TimedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_fabrics_names_and_labels_plus_the_runtime() {
        let metrics = Metrics::new();
        let id = PackageId::new("asset_1:ab");
        metrics.set_runtime(&id, "wasm");
        metrics.launch(&id, Duration::from_millis(3), LaunchOutcome::Ready);
        metrics.launch(&id, Duration::from_secs(1), LaunchOutcome::TimedOut);
        metrics.request_received(&id, "ch", "GET_STATE");
        metrics.request_completed(&id, "ch", "GET_STATE", true, Duration::from_micros(10));
        metrics.execute_timeout(&PackageId::new("other:cd"));
        let text = metrics.encode();
        for line in [
            r#"chaincode_launch_duration_count{chaincode="asset_1:ab",success="true",runtime="wasm"} 1"#,
            r#"chaincode_launch_timeouts_total{chaincode="asset_1:ab",runtime="wasm"} 1"#,
            r#"chaincode_shim_requests_received_total{type="GET_STATE",channel="ch",chaincode="asset_1:ab",runtime="wasm"} 1"#,
            r#"chaincode_shim_requests_completed_total{type="GET_STATE",channel="ch",chaincode="asset_1:ab",success="true",runtime="wasm"} 1"#,
            r#"chaincode_execute_timeouts_total{chaincode="other:cd",runtime="dev"} 1"#,
            r#"fabric_version{version="0.1.0"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn resolved_request_metrics_count_into_the_same_series_and_add_an_outcome_at_first_use() {
        let metrics = Metrics::new();
        let id = PackageId::new("asset_1:ab");
        metrics.set_runtime(&id, "wasm");
        let requests = metrics.requests(&id, "ch", "PUT_STATE");
        requests.received();
        requests.received();
        requests.completed(true, Duration::from_micros(10));
        let failed = r#"chaincode_shim_requests_completed_total{type="PUT_STATE",channel="ch",chaincode="asset_1:ab",success="false",runtime="wasm"}"#;
        assert!(!metrics.encode().contains(failed), "no failure yet");
        requests.completed(false, Duration::from_micros(10));
        // The unresolved path lands in the same series.
        metrics.request_received(&id, "ch", "PUT_STATE");
        let text = metrics.encode();
        for line in [
            r#"chaincode_shim_requests_received_total{type="PUT_STATE",channel="ch",chaincode="asset_1:ab",runtime="wasm"} 3"#,
            r#"chaincode_shim_requests_completed_total{type="PUT_STATE",channel="ch",chaincode="asset_1:ab",success="true",runtime="wasm"} 1"#,
            &format!("{failed} 1"),
            r#"chaincode_shim_request_duration_count{type="PUT_STATE",channel="ch",chaincode="asset_1:ab",success="false",runtime="wasm"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
