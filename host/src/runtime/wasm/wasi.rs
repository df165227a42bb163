//! Deterministic WASI preview 1: what a guest sees depends only on the proposal.
//!
//! Both clocks read the proposal's timestamp; random bytes come from ChaCha20 seeded with
//! `sha256(channel ‖ txid)`; arguments and environment are empty; stdout and stderr are
//! captured (bounded) and logged by the host; there are no preopened directories, so
//! the filesystem is unreachable; `poll_oneoff` traps and `sched_yield` does nothing.

use std::time::Duration;

use rand::SeedableRng;
use sha2::{Digest, Sha256};
use wasmtime::Linker;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use super::guest::GuestState;

/// Bytes of stdout and of stderr kept per invocation; a guest writing more gets an error.
pub(crate) const MAX_OUTPUT: usize = 64 * 1024;

struct ProposalClock(Duration);

impl HostWallClock for ProposalClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

impl HostMonotonicClock for ProposalClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The WASI context of one invocation, and its captured stdout and stderr.
pub(crate) fn context(
    channel: &str,
    txid: &str,
    timestamp: Duration,
) -> (WasiP1Ctx, MemoryOutputPipe, MemoryOutputPipe) {
    let mut seed = Sha256::new();
    seed.update(channel.as_bytes());
    seed.update(txid.as_bytes());
    let seed: [u8; 32] = seed.finalize().into();
    let stdout = MemoryOutputPipe::new(MAX_OUTPUT);
    let stderr = MemoryOutputPipe::new(MAX_OUTPUT);
    let ctx = WasiCtxBuilder::new()
        .wall_clock(ProposalClock(timestamp))
        .monotonic_clock(ProposalClock(timestamp))
        .secure_random(rand::rngs::ChaCha20Rng::from_seed(seed))
        .insecure_random(rand::rngs::ChaCha20Rng::from_seed(seed))
        .insecure_random_seed(u128::from_le_bytes(
            *seed.first_chunk::<16>().unwrap_or(&[0; 16]),
        ))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build_p1();
    (ctx, stdout, stderr)
}

/// WASI p1 (async, as the store runs inside tokio), with `poll_oneoff` replaced by a trap
/// and `sched_yield` by a no-op.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, GuestState::wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |_: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<i32> {
            Err(wasmtime::format_err!(
                "poll_oneoff is not available to chaincode: waiting is not deterministic"
            ))
        },
    )?;
    // A single-threaded guest has nothing to yield to: succeed without touching the
    // host's scheduler.
    linker.func_wrap("wasi_snapshot_preview1", "sched_yield", || -> i32 { 0 })?;
    linker.allow_shadowing(false);
    Ok(())
}
