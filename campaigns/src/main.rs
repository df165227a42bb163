//! `cchost-campaign NAME`: runs one of cchost's reliability campaigns for a number of
//! cases or a duration and prints what it tried and found (`scripts/campaign` runs it
//! built with optimisations).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use cchost_campaigns::{Budget, Report};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Campaign {
    /// Generated wasm modules through validation, compilation and the runtime.
    Modules,
    /// The same module and proposal in independent hosts and a worker process: identical
    /// bytes and fuel.
    Differential,
    /// Generated ChaincodeMessage sequences against the real gRPC listener.
    Shim,
    /// Mutated proposals, envelopes and Gateway requests against a node.
    Clients,
    /// A node under mixed load with a chaincode crash half-way (default 5 minutes).
    Soak,
    /// (internal) The differential campaign's worker process.
    #[value(hide = true)]
    DifferentialWorker,
}

/// Runs a reliability campaign: generated inputs against the real host, invariants
/// checked case by case. Case N is generated from seed N alone: `--seed N --count 1` runs
/// a finding again. Exits 1 when anything was found.
#[derive(Debug, Parser)]
#[command(name = "cchost-campaign")]
struct Args {
    /// The campaign.
    campaign: Campaign,
    /// How long to run (e.g. 90s, 10m, 2h).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How many cases at most (without --duration: default 1000).
    #[arg(long)]
    count: Option<u64>,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the generated input of each seed into this directory instead of running it
    /// (`seed-N.wasm` for `modules`): how a finding becomes a regression test.
    #[arg(long)]
    save: Option<PathBuf>,
}

fn campaign_name(campaign: Campaign) -> &'static str {
    match campaign {
        Campaign::Modules => "modules",
        Campaign::Differential | Campaign::DifferentialWorker => "differential",
        Campaign::Shim => "shim",
        Campaign::Clients => "clients",
        Campaign::Soak => "soak",
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    cchost::node::config::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration (e.g. 90s, 10m, 2h)"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let budget = Budget {
        first: args.seed,
        count: match (args.count, args.duration) {
            (None, None) => Some(1000),
            (count, _) => count,
        },
        duration: args.duration,
    };
    match run(&args, budget) {
        Ok(report) => {
            print!("{}", report.text());
            if report.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("cchost-campaign: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args, budget: Budget) -> anyhow::Result<Report> {
    if let Some(dir) = &args.save {
        let count = budget.count.unwrap_or(1);
        cchost_campaigns::save(campaign_name(args.campaign), budget.first, count, dir)?;
        anyhow::bail!(
            "wrote the inputs of seeds {}..{} into {}; nothing ran",
            budget.first,
            budget.first + count,
            dir.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let progress = |line: &str| eprintln!("{line}");
    let report = runtime.block_on(async {
        match args.campaign {
            Campaign::Modules => cchost_campaigns::modules::run(budget, &progress).await,
            Campaign::Differential => {
                let worker = std::env::current_exe()?;
                cchost_campaigns::differential::run(budget, Some(worker), &progress).await
            }
            Campaign::Shim => cchost_campaigns::shim::run(budget, &progress).await,
            Campaign::Clients => cchost_campaigns::clients::run(budget, &progress).await,
            Campaign::Soak => {
                let duration = budget.duration.unwrap_or(Duration::from_secs(300));
                cchost_campaigns::soak::run(duration, &progress).await
            }
            Campaign::DifferentialWorker => {
                cchost_campaigns::differential::worker().await?;
                std::process::exit(0)
            }
        }
    })?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(report)
}
