//! Campaign `differential`: the same module and the same signed proposal run by
//! independent hosts must give the same bytes. Host A runs on the campaign's runtime;
//! host B on a thread of its own with its own engine and a pool of another size (other
//! slots, other history); every [`PROCESS_EVERY`]th case also runs in a worker process
//! (another address-space layout). Compared: the response (status, message, payload), the
//! event, the read/write set's encoding, the error text, and the fuel used.
//!
//! Even seeds run a `wasm-smith` module shaped to the ABI ([`modules::generate`]);
//! odd seeds run an *observer*: a generated program of float operations on NaNs,
//! infinities and signed zeros, memory growth, WASI clock and random reads and bounded
//! loops, each result stored in memory and the whole written with `put_state` and
//! returned as the payload, so that every computed bit reaches the read/write set.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use cchost::proposal::DevIdentity;
use cchost_proto::protos::SignedProposal;
use prost::Message as _;
use rand::{RngExt as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::host::{self, CampaignHost, Run};
use crate::modules::{self, class};
use crate::{Budget, Case, Report, take_panics, watch_panics};

/// Every how many cases the worker process runs the case too.
pub const PROCESS_EVERY: u64 = 8;
/// Pool size of host B (host A uses [`modules::wasm_config`]'s).
const POOL_B: u32 = 7;

/// What a host observed of one case: everything that would reach a peer's endorsement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// `refused: ...`, `error: ...` or `status N`.
    pub outcome: String,
    /// The response's message.
    pub message: String,
    /// The response's payload, hex.
    pub payload: String,
    /// The event's name and payload (hex).
    pub event: Option<(String, String)>,
    /// The read/write set, encoded, hex.
    pub rwset: String,
    /// Fuel the invocation used.
    pub fuel: u64,
}

impl Observed {
    /// What `run` showed.
    pub fn of_run(run: &Run) -> Self {
        match run {
            Run::Refused(refusal) => Self {
                outcome: format!("refused: {refusal}"),
                message: String::new(),
                payload: String::new(),
                event: None,
                rwset: String::new(),
                fuel: 0,
            },
            Run::Executed { result, fuel, .. } => match result {
                Ok(result) => Self {
                    outcome: format!("status {}", result.response.status),
                    message: result.response.message.clone(),
                    payload: hex::encode(&result.response.payload),
                    event: result
                        .event
                        .as_ref()
                        .map(|e| (e.event_name.clone(), hex::encode(&e.payload))),
                    rwset: hex::encode(result.rwset.encode_to_vec()),
                    fuel: *fuel,
                },
                Err(error) => Self {
                    outcome: format!("error: {error}"),
                    message: String::new(),
                    payload: String::new(),
                    event: None,
                    rwset: String::new(),
                    fuel: *fuel,
                },
            },
        }
    }

    /// The first field in which `self` and `other` differ, both values shown.
    pub fn difference(&self, other: &Self) -> Option<String> {
        let short = |s: &str| s.chars().take(200).collect::<String>();
        let fields = [
            ("outcome", short(&self.outcome), short(&other.outcome)),
            ("message", short(&self.message), short(&other.message)),
            ("payload", short(&self.payload), short(&other.payload)),
            (
                "event",
                format!("{:?}", self.event),
                format!("{:?}", other.event),
            ),
            ("rwset", short(&self.rwset), short(&other.rwset)),
            ("fuel", self.fuel.to_string(), other.fuel.to_string()),
        ];
        fields
            .into_iter()
            .find(|(_, a, b)| a != b)
            .map(|(field, a, b)| format!("{field}: {a} / {b}"))
    }
}

/// Case `seed`: a `wasm-smith` module (even seeds) or an observer (odd seeds).
pub fn generate(seed: u64, menu: &[u8]) -> Result<Case, String> {
    if seed.is_multiple_of(2) {
        Ok(Case {
            kind: "wasm-smith",
            ..modules::generate(seed, menu)?
        })
    } else {
        let wat = observer(seed);
        Ok(Case {
            wasm: wat::parse_str(&wat).map_err(|e| format!("observer {seed}: {e}"))?,
            kind: "observer",
            args: vec![b"go".to_vec()],
        })
    }
}

/// Float constants chosen to show NaN payloads and signs, infinities and signed zeros.
const F64S: &[&str] = &[
    "nan",
    "-nan",
    "nan:0x4000000000001",
    "-nan:0x1",
    "inf",
    "-inf",
    "0",
    "-0",
    "1.5",
    "-2.25",
    "0x1p-1074",
    "1e308",
];
const F32S: &[&str] = &[
    "nan",
    "-nan",
    "nan:0x200001",
    "-nan:0x1",
    "inf",
    "-inf",
    "0",
    "-0",
    "3.5",
    "0x1p-149",
];
const F64_BINARY: &[&str] = &[
    "f64.add",
    "f64.sub",
    "f64.mul",
    "f64.div",
    "f64.min",
    "f64.max",
    "f64.copysign",
];
const F64_UNARY: &[&str] = &[
    "f64.sqrt",
    "f64.neg",
    "f64.abs",
    "f64.ceil",
    "f64.floor",
    "f64.trunc",
    "f64.nearest",
];
const F32_BINARY: &[&str] = &["f32.add", "f32.mul", "f32.div", "f32.min", "f32.max"];

/// Where an observer's results go (8 bytes each), after a 5-byte `Response` header.
const RESULTS: u32 = 1024;
/// At most this many results: the payload's length must fit one varint byte.
const MAX_RESULTS: u32 = 15;

/// An observer program for `seed` (see the module documentation).
pub fn observer(seed: u64) -> String {
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(seed);
    let count = rng.random_range(4..=MAX_RESULTS);
    let pick = |rng: &mut rand::rngs::ChaCha20Rng, list: &[&'static str]| -> &'static str {
        list.get(rng.random_range(0..list.len()))
            .copied()
            .unwrap_or("0")
    };
    let mut body = String::new();
    for slot in 0..count {
        let at = RESULTS + slot * 8;
        // A value computed earlier, read back: chains results together.
        let earlier = RESULTS + rng.random_range(0..=slot) * 8;
        let statement = match rng.random_range(0..9u32) {
            0 => format!(
                "(f64.store (i32.const {at}) ({} (f64.const {}) (f64.const {})))",
                pick(&mut rng, F64_BINARY),
                pick(&mut rng, F64S),
                pick(&mut rng, F64S)
            ),
            1 => format!(
                "(f64.store (i32.const {at}) ({} ({} (f64.load (i32.const {earlier})) (f64.const {}))))",
                pick(&mut rng, F64_UNARY),
                pick(&mut rng, F64_BINARY),
                pick(&mut rng, F64S)
            ),
            2 => format!(
                "(f32.store (i32.const {at}) ({} (f32.const {}) (f32.demote_f64 (f64.const {}))))",
                pick(&mut rng, F32_BINARY),
                pick(&mut rng, F32S),
                pick(&mut rng, F64S)
            ),
            3 => format!(
                "(f64.store (i32.const {at}) (f64.promote_f32 ({} (f32.const {}) (f32.const {}))))",
                pick(&mut rng, F32_BINARY),
                pick(&mut rng, F32S),
                pick(&mut rng, F32S)
            ),
            4 => format!(
                "(i64.store (i32.const {at}) (i64.extend_i32_s (memory.grow (i32.const {}))))",
                rng.random_range(0..24u32)
            ),
            5 => format!("(i64.store (i32.const {at}) (i64.extend_i32_u (memory.size)))"),
            6 => format!(
                "(drop (call $clock (i32.const {}) (i64.const 1) (i32.const {at})))",
                rng.random_range(0..2u32)
            ),
            7 => format!("(drop (call $random (i32.const {at}) (i32.const 8)))"),
            _ => format!(
                "(local.set $i (i32.const 0)) (local.set $acc (i64.load (i32.const {earlier}))) \
                 (loop $l (local.set $acc (i64.add (i64.rotl (local.get $acc) (i64.const 7)) \
                 (i64.extend_i32_u (local.get $i)))) (local.set $i (i32.add (local.get $i) \
                 (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const {})))) \
                 (i64.store (i32.const {at}) (local.get $acc))",
                rng.random_range(1..2000u32)
            ),
        };
        body.push_str("    ");
        body.push_str(&statement);
        body.push('\n');
    }
    let len = count * 8;
    let header = RESULTS - 5;
    format!(
        r#"(module
  (import "cchost" "put_state" (func $put (param i32 i32 i32 i32 i32 i32) (result i64)))
  (import "cchost" "set_response" (func $respond (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1 32)
  ;; A Response: status 200 (08 c8 01), then the payload's tag (1a) and length.
  (data (i32.const {header}) "\08\c8\01\1a\{len:02x}")
  (data (i32.const 0) "out")
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (local $i i32) (local $acc i64)
{body}    (drop (call $put (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 3) (i32.const {RESULTS}) (i32.const {len})))
    (drop (call $respond (i32.const {header}) (i32.const {})))
    (i32.const 0)))"#,
        len + 5
    )
}

/// A case for host B.
struct Job {
    wasm: Vec<u8>,
    proposal: SignedProposal,
    answer: oneshot::Sender<anyhow::Result<Observed>>,
}

/// Host B: its own engine, pool and runtime on a thread of its own.
fn start_host_b() -> anyhow::Result<mpsc::Sender<Job>> {
    let (jobs, mut inbox) = mpsc::channel::<Job>(1);
    let config = cchost::runtime::wasm::WasmConfig {
        max_instances: POOL_B,
        ..modules::wasm_config()
    };
    let host = CampaignHost::new(config, modules::support_config())?;
    std::thread::Builder::new()
        .name("differential-b".to_owned())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                while let Some(job) = inbox.recv().await {
                    let observed = host
                        .run(&job.wasm, &job.proposal)
                        .await
                        .map(|run| Observed::of_run(&run));
                    let _ = job.answer.send(observed);
                }
            });
        })?;
    Ok(jobs)
}

/// The worker process: `cchost-campaign differential-worker`.
struct Worker {
    child: Child,
    input: ChildStdin,
    output: std::io::BufReader<ChildStdout>,
}

impl Worker {
    fn start(program: &PathBuf) -> anyhow::Result<Self> {
        let mut child = Command::new(program)
            .arg("differential-worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the worker {}", program.display()))?;
        let input = child.stdin.take().context("the worker has no stdin")?;
        let output = std::io::BufReader::new(child.stdout.take().context("no stdout")?);
        Ok(Self {
            child,
            input,
            output,
        })
    }

    /// Runs a case in the worker (blocking: a case takes milliseconds).
    fn run(&mut self, wasm: &[u8], proposal: &SignedProposal) -> anyhow::Result<Observed> {
        write_frame(&mut self.input, wasm)?;
        write_frame(&mut self.input, &proposal.encode_to_vec())?;
        self.input.flush()?;
        let mut line = String::new();
        self.output.read_line(&mut line)?;
        anyhow::ensure!(!line.is_empty(), "the worker process ended");
        Ok(serde_json::from_str(&line)?)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_frame(to: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    to.write_all(&len.to_le_bytes())?;
    to.write_all(bytes)
}

fn read_frame(from: &mut impl std::io::Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match from.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    from.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

/// The worker's side: reads cases (module, signed proposal) from stdin until it ends,
/// answers each with a JSON line of what its own host observed.
pub async fn worker() -> anyhow::Result<()> {
    let host = CampaignHost::new(modules::wasm_config(), modules::support_config())?;
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    while let Some(wasm) = read_frame(&mut stdin)? {
        let proposal = read_frame(&mut stdin)?.context("a module without a proposal")?;
        let proposal = SignedProposal::decode(proposal.as_slice())?;
        let observed = Observed::of_run(&host.run(&wasm, &proposal).await?);
        serde_json::to_writer(&mut stdout, &observed)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

/// Runs the campaign. `worker` is the `cchost-campaign` program (`None`: no process
/// comparison).
pub async fn run(
    budget: Budget,
    worker: Option<PathBuf>,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Report> {
    watch_panics();
    take_panics();
    let host_a = CampaignHost::new(modules::wasm_config(), modules::support_config())?;
    let host_b = start_host_b()?;
    let mut worker = worker.as_ref().map(Worker::start).transpose()?;
    let menu = wat::parse_str(host_a.runtime.imports_wat())?;
    let identity = DevIdentity::generate("Org1MSP", "Org1", "User1")?;
    let mut report = Report::new("differential", budget.first);
    let started = Instant::now();
    let mut in_process = 0u64;
    while budget.allows(report.tried, started) {
        let seed = budget.first + report.tried;
        report.tried += 1;
        if report.tried.is_multiple_of(500) {
            progress(&format!(
                "differential: {} cases, {} findings, {:.0} s",
                report.tried,
                report.findings.len(),
                started.elapsed().as_secs_f64()
            ));
        }
        let Case { wasm, kind, args } = match generate(seed, &menu) {
            Ok(generated) => generated,
            Err(e) => {
                take_panics();
                report.count(seed, format!("not generated: {}", class(&e)), &e);
                continue;
            }
        };
        let proposal = host::proposal(&identity, &args)?.signed_proposal;
        let a = Observed::of_run(&host_a.run(&wasm, &proposal).await?);
        let (answer, answered) = oneshot::channel();
        host_b
            .send(Job {
                wasm: wasm.clone(),
                proposal: proposal.clone(),
                answer,
            })
            .await
            .context("host B stopped")?;
        let b = answered.await.context("host B stopped")??;
        let outcome = if a.outcome.starts_with("status") {
            format!("{kind}: {}", a.outcome)
        } else {
            format!("{kind}: {}", class(&a.outcome))
        };
        report.count(seed, outcome, &a.outcome);
        if let Some(difference) = a.difference(&b) {
            report.find(seed, "host B differs from host A", difference);
        }
        if seed.is_multiple_of(PROCESS_EVERY)
            && let Some(worker) = worker.as_mut()
        {
            in_process += 1;
            let c = tokio::task::block_in_place(|| worker.run(&wasm, &proposal))?;
            if let Some(difference) = a.difference(&c) {
                report.find(seed, "the worker process differs from host A", difference);
            }
        }
        for panic in take_panics() {
            report.find(seed, "panic", panic);
        }
    }
    report.figures.insert(
        "cases also run in a worker process".to_owned(),
        in_process as f64,
    );
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observers_are_valid_modules_for_many_seeds() {
        for seed in (1..400).step_by(2) {
            let wat = observer(seed);
            wat::parse_str(&wat).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{wat}"));
        }
    }

    #[test]
    fn a_difference_names_the_first_field_that_differs() {
        let a = Observed {
            outcome: "status 200".to_owned(),
            message: String::new(),
            payload: "00".to_owned(),
            event: None,
            rwset: "0a".to_owned(),
            fuel: 10,
        };
        assert_eq!(a.difference(&a.clone()), None);
        let b = Observed {
            fuel: 11,
            ..a.clone()
        };
        assert_eq!(a.difference(&b).as_deref(), Some("fuel: 10 / 11"));
    }
}
