//! The Gateway figures of `cchost bench`: a node started in this process (fsync on,
//! every signature checked) with the wasm asset-transfer deployed, loaded through its
//! Gateway by [`super::load`] (the generator signs every proposal as it goes): evaluate
//! (`ReadAsset`) and submit (`CreateAsset` of a new asset each, waited for and checked
//! VALID) at a fixed concurrency; beside each, its signature-bound limit: the machine's
//! cores divided by the ECDSA P-256 work one transaction needs (measured on one thread in
//! the same run).
//!
//! The generator runs on the same cores as the node, as Tape beside a peer does on one
//! machine: its own CPU (a signature and a gRPC client per call) is part of the cost.

use std::time::Duration;

use serde::Serialize;

use super::load::{LoadConfig, LoadReport, Mode, Until};

/// ECDSA operations per evaluate: the client signs the proposal; the peer verifies it and
/// signs its endorsement.
pub const EVALUATE_SIGNS: u32 = 2;
/// See [`EVALUATE_SIGNS`].
pub const EVALUATE_VERIFIES: u32 = 1;
/// ECDSA operations per submit: the client signs the proposal, the prepared transaction
/// and the commit status request; the peer signs the endorsement and verifies the
/// proposal, the status request, and at validation the transaction's creator and the
/// endorsement (the orderer's block signature, one per block, is left out).
pub const SUBMIT_SIGNS: u32 = 4;
/// See [`SUBMIT_SIGNS`].
pub const SUBMIT_VERIFIES: u32 = 4;

/// What to run.
#[derive(Debug, Clone)]
pub struct GatewayBenchConfig {
    /// Transactions in flight.
    pub concurrency: usize,
    /// How long each of evaluate and submit runs.
    pub duration: Duration,
    /// The orderer's batch timeout.
    pub batch_timeout: Duration,
}

/// The Gateway figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GatewayReport {
    /// ECDSA P-256 signatures per second, one thread.
    pub sign_per_s: f64,
    /// ECDSA P-256 verifications per second, one thread.
    pub verify_per_s: f64,
    /// Cores the limits assume.
    pub cores: usize,
    /// `cores / (2 signatures + 1 verification)`, tx/s.
    pub evaluate_signature_bound_tps: f64,
    /// `cores / (4 signatures + 4 verifications)`, tx/s.
    pub submit_signature_bound_tps: f64,
    /// The evaluate run.
    pub evaluate: LoadReport,
    /// The submit run.
    pub submit: LoadReport,
}

impl GatewayReport {
    /// The lines printed after the runtimes' table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "Gateway ({} cores; ECDSA P-256 on one thread: {:.0} signatures/s, {:.0} verifications/s)\n",
            self.cores, self.sign_per_s, self.verify_per_s
        );
        out.push_str(&format!(
            "{:<10}{:>6}{:>10}{:>11}{:>11}{:>8}{:>18}{:>10}\n",
            "mode", "c", "tx/s", "p50 (µs)", "p99 (µs)", "errors", "signature bound", "share"
        ));
        for (run, bound) in [
            (&self.evaluate, self.evaluate_signature_bound_tps),
            (&self.submit, self.submit_signature_bound_tps),
        ] {
            out.push_str(&format!(
                "{:<10}{:>6}{:>10.0}{:>11.0}{:>11.0}{:>8}{:>18.0}{:>9.0}%\n",
                run.mode.name(),
                run.concurrency,
                run.tps,
                run.latency.stats.p50_us,
                run.latency.stats.p99_us,
                run.attempted - run.succeeded,
                bound,
                100.0 * run.tps / bound
            ));
        }
        out
    }
}

/// The signature-bound rate: `cores` divided by the time `signs` signatures and
/// `verifies` verifications take at the given one-thread rates.
pub fn signature_bound(
    cores: usize,
    signs: u32,
    verifies: u32,
    sign_per_s: f64,
    verify_per_s: f64,
) -> f64 {
    let seconds = f64::from(signs) / sign_per_s + f64::from(verifies) / verify_per_s;
    cores as f64 / seconds
}

/// Runs evaluate and submit against a node of its own with `wasm` deployed.
pub async fn run(
    wasm: &std::path::Path,
    config: &GatewayBenchConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<GatewayReport> {
    progress("[gateway] ECDSA P-256 rates");
    let (sign_per_s, verify_per_s) =
        tokio::task::spawn_blocking(super::node::ecdsa_rates).await??;
    let (_dir, node, client, user) =
        super::node::start_with_asset_transfer(wasm, config.batch_timeout, progress).await?;
    let load = |mode: Mode, args: &[&str]| LoadConfig {
        mode,
        chaincode: "basic".to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        concurrency: config.concurrency,
        connections: 4,
        rate: None,
        until: Until::Elapsed(config.duration),
        commit_timeout: Duration::from_secs(60),
    };
    progress(&format!(
        "[gateway] evaluate ReadAsset, {} in flight for {:?}",
        config.concurrency, config.duration
    ));
    let user = std::sync::Arc::new(user);
    let evaluate = super::load::run(
        &client.profile,
        std::sync::Arc::clone(&user),
        &load(Mode::Evaluate, &["ReadAsset", "asset1"]),
    )
    .await?;
    progress(&format!(
        "[gateway] submit CreateAsset, {} in flight for {:?}",
        config.concurrency, config.duration
    ));
    let submit = super::load::run(
        &client.profile,
        user,
        &load(
            Mode::Submit,
            &["CreateAsset", "{tx}", "blue", "5", "Tomoko", "300"],
        ),
    )
    .await?;
    node.stop().await?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(GatewayReport {
        sign_per_s,
        verify_per_s,
        cores,
        evaluate_signature_bound_tps: signature_bound(
            cores,
            EVALUATE_SIGNS,
            EVALUATE_VERIFIES,
            sign_per_s,
            verify_per_s,
        ),
        submit_signature_bound_tps: signature_bound(
            cores,
            SUBMIT_SIGNS,
            SUBMIT_VERIFIES,
            sign_per_s,
            verify_per_s,
        ),
        evaluate,
        submit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_bound_divides_the_cores_by_the_ecdsa_time_per_transaction() {
        // 2 signatures at 50,000/s (40 µs) + 1 verification at 20,000/s (50 µs) = 90 µs;
        // two cores: 22,222 tx/s.
        let bound = signature_bound(2, 2, 1, 50_000.0, 20_000.0);
        assert!((bound - 2.0 / 90e-6).abs() < 1e-6, "{bound}");
    }
}
