//! The campaigns' bounded CI runs (a fixed seed range each, the same cases every run)
//! and the checks that they can see what they look for.

use std::time::Duration;

use cchost::proposal::DevIdentity;
use cchost_campaigns::differential::{self, Observed};
use cchost_campaigns::host::{self, CampaignHost, Run};
use cchost_campaigns::{Budget, clients, modules, shim, soak};

/// Seeds the CI run of `modules` covers (about a minute on two cores).
const MODULE_SEEDS: u64 = 3_000;
/// Seeds the CI run of `differential` covers.
const DIFFERENTIAL_SEEDS: u64 = 600;
/// Seeds the CI run of `shim` covers.
const SHIM_SEEDS: u64 = 1_000;
/// Seeds the CI run of `clients` covers.
const CLIENT_SEEDS: u64 = 1_500;

fn progress(line: &str) {
    eprintln!("{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_modules_of_the_ci_seed_range_break_no_invariant() {
    let report = modules::run(Budget::seeds(0, MODULE_SEEDS), &progress)
        .await
        .unwrap();
    eprint!("{}", report.text());
    assert_eq!(report.tried, MODULE_SEEDS);
    assert_eq!(report.findings, []);
    // Not a campaign of refusals only: most modules reach the guest, and every kind of
    // end is represented.
    let ran: u64 = report
        .outcomes
        .iter()
        .filter(|(class, _)| class.contains(": ran, status") || class.contains(": error: "))
        .map(|(_, outcome)| outcome.count)
        .sum();
    assert!(
        ran * 2 > MODULE_SEEDS,
        "only {ran} of {MODULE_SEEDS} modules ran"
    );
    for class in [
        "abi: error: transaction returned with failure: chaincode ran out of fuel",
        "abi: error: transaction returned with failure: chaincode trapped: out of bounds memory access",
        "free: refused (invalid): the chaincode module is refused: it has no `…` export",
    ] {
        assert!(
            report.outcomes.keys().any(|c| c.starts_with(class)),
            "no case ended as {class:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_differential_ci_seed_range_gives_identical_bytes_and_fuel_everywhere() {
    let worker = env!("CARGO_BIN_EXE_cchost-campaign").into();
    let report = differential::run(
        Budget::seeds(0, DIFFERENTIAL_SEEDS),
        Some(worker),
        &progress,
    )
    .await
    .unwrap();
    eprint!("{}", report.text());
    assert_eq!(report.tried, DIFFERENTIAL_SEEDS);
    assert_eq!(report.findings, []);
    assert_eq!(
        report.figures["cases also run in a worker process"],
        (DIFFERENTIAL_SEEDS / differential::PROCESS_EVERY) as f64
    );
    let observers = &report.outcomes["observer: status 200"];
    assert_eq!(
        observers.count,
        DIFFERENTIAL_SEEDS / 2,
        "every observer answers 200"
    );
}

/// The differential sees a difference where there is one: the same observer module under
/// two proposals (two txids, so two random streams) gives two payloads, and the report
/// names the payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_reading_random_bytes_differ_between_txids_and_the_difference_is_named() {
    // An observer whose statements include a random read.
    let seed = (1..1000)
        .step_by(2)
        .find(|&seed| differential::observer(seed).contains("call $random"))
        .unwrap();
    let wasm = wat::parse_str(differential::observer(seed)).unwrap();
    let host = CampaignHost::new(modules::wasm_config(), modules::support_config()).unwrap();
    let identity = DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let proposal = host::proposal(&identity, &[b"go".to_vec()]).unwrap();
        let run = host.run(&wasm, &proposal.signed_proposal).await.unwrap();
        let Run::Executed { result, .. } = &run else {
            panic!("refused: {run:?}")
        };
        assert_eq!(result.as_ref().unwrap().response.status, 200);
        seen.push(Observed::of_run(&run));
    }
    let difference = seen[0].difference(&seen[1]).unwrap();
    assert!(difference.starts_with("payload: "), "{difference}");
    // The same proposal again: identical.
    let proposal = host::proposal(&identity, &[b"go".to_vec()]).unwrap();
    let first = host.run(&wasm, &proposal.signed_proposal).await.unwrap();
    let again = host.run(&wasm, &proposal.signed_proposal).await.unwrap();
    assert_eq!(Observed::of_run(&first), Observed::of_run(&again));
}

/// A case's outcome does not depend on what ran before it in the same host: a campaign
/// of 40 seeds from 0 and the same seeds run one by one in fresh hosts agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_run_alone_reproduces_its_outcome_in_a_campaign() {
    let report = modules::run(Budget::seeds(0, 40), &progress).await.unwrap();
    for (class, outcome) in &report.outcomes {
        let alone = modules::run(Budget::seeds(outcome.first_seed, 1), &progress)
            .await
            .unwrap();
        let (alone_class, alone_outcome) = alone.outcomes.iter().next().unwrap();
        assert_eq!(
            (alone_class, &alone_outcome.example),
            (class, &outcome.example)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_shim_sequences_of_the_ci_seed_range_leak_nothing_and_never_stop_the_listener() {
    let report = shim::run(Budget::seeds(0, SHIM_SEEDS), &progress)
        .await
        .unwrap();
    eprint!("{}", report.text());
    assert_eq!(report.tried, SHIM_SEEDS);
    assert_eq!(report.findings, []);
    // The sequences reach the states that matter: registered streams the host ends for a
    // message out of place or too large, transactions that time out and that the
    // rogue answers, clients that hang up.
    for class in [
        "registered: stream failed: cannot handle REGISTER message while in ready state",
        "registered: stream failed: chaincode stream failed: Error, decoded message length too large",
        "registered: stream hung up abruptly",
        "no REGISTER first: stream failed: cannot handle ",
        "transaction: failed to execute transaction <txid>: error sending: timeout expired while executing transaction",
        "transaction: failed to execute transaction <txid>: error sending: chaincode stream terminated",
        "transaction: status N",
    ] {
        assert!(
            report.outcomes.keys().any(|c| c.starts_with(class)),
            "no case ended as {class:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_client_messages_of_the_ci_seed_range_are_refused_or_committed_invalid() {
    let report = clients::run(Budget::seeds(0, CLIENT_SEEDS), &progress)
        .await
        .unwrap();
    eprint!("{}", report.text());
    assert_eq!(report.tried, CLIENT_SEEDS);
    assert_eq!(report.findings, []);
    // Every service was reached, and tampering was caught at each stage: refused by the
    // endorser and the Gateway, refused by the orderer, marked invalid by validation.
    for class in [
        "endorser: Unknown: error validating proposal: access denied",
        "gateway evaluate: InvalidArgument: failed to unpack transaction proposal",
        "gateway endorse: ",
        "gateway submit: Aborted: received unsuccessful response from orderer",
        "gateway commit status: InvalidArgument: invalid status request",
        "broadcast: ",
        "committed as BAD_CREATOR_SIGNATURE",
        "committed as BAD_PROPOSAL_TXID (re-signed, txid changed)",
        "committed as VALID",
    ] {
        assert!(
            report.outcomes.keys().any(|c| c.starts_with(class)),
            "no case ended as {class:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_soak_with_a_chaincode_crash_has_errors_only_in_the_crash_window() {
    let report = soak::run(Duration::from_secs(30), &progress).await.unwrap();
    eprint!("{}", report.text());
    assert_eq!(report.findings, []);
    for kind in ["evaluate: ok", "submit: ok"] {
        assert!(
            report.outcomes[kind].count > 100,
            "{kind}: {:?}",
            report.outcomes[kind]
        );
    }
    assert!(report.figures["first success after the crash (ms)"] >= 0.0);
    for figure in [
        "evaluate p99 (ms)",
        "submit p99 (ms)",
        "resident memory at the end (MiB)",
    ] {
        assert!(report.figures[figure] > 0.0, "{figure}");
    }
}
