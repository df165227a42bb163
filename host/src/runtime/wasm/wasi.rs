//! Deterministic WASI preview 1: what a guest sees depends only on the proposal.
//!
//! Both clocks read the proposal's timestamp; random bytes come from ChaCha20 seeded with
//! `sha256(channel ‖ txid)`; arguments and environment are empty; stdout and stderr are
//! captured (bounded) and logged by the host; there are no preopened directories, so
//! the filesystem is unreachable; `poll_oneoff` traps and `sched_yield` does nothing.

use std::time::Duration;

use rand::{Rng as _, SeedableRng};
use sha2::{Digest, Sha256};
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use super::guest::{GuestState, HostFailure, charge, charge_bytes, write_paid};
use super::imports::HOST_CALL_FUEL;

/// Bytes of stdout and of stderr kept per invocation; a guest writing more gets an error.
pub(crate) const MAX_OUTPUT: usize = 64 * 1024;

/// WASI p1's `EFAULT`: a buffer outside the guest's memory.
const ERRNO_FAULT: i32 = 21;

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

/// The seed of a transaction's random numbers: `sha256(channel ‖ txid)`.
pub(crate) fn seed(channel: &str, txid: &str) -> [u8; 32] {
    let mut seed = Sha256::new();
    seed.update(channel.as_bytes());
    seed.update(txid.as_bytes());
    seed.finalize().into()
}

/// The WASI context of one invocation, and its captured stdout and stderr.
pub(crate) fn context(
    channel: &str,
    txid: &str,
    timestamp: Duration,
) -> (WasiP1Ctx, MemoryOutputPipe, MemoryOutputPipe) {
    let seed = seed(channel, txid);
    let stdout = MemoryOutputPipe::new(MAX_OUTPUT);
    let stderr = MemoryOutputPipe::new(MAX_OUTPUT);
    // WASI p1 reads randomness only through `random_get`, which `add_to_linker` replaces;
    // the context's own sources are seeded alike, so nothing in it is nondeterministic.
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

/// WASI p1 (async, as the store runs inside tokio), with `poll_oneoff` replaced by a trap,
/// `sched_yield` by a no-op and `random_get` by one that charges fuel per byte.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    // Every WASI p1 function starts by asking for the context: that is where its call is
    // counted, to be paid for as it returns (see `HOST_CALL_FUEL`).
    wasmtime_wasi::p1::add_to_linker_async(linker, |state: &mut GuestState| {
        state.wasi_calls_unpaid += 1;
        state.wasi()
    })?;
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |mut caller: Caller<'_, GuestState>,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            Err(HostFailure::error(
                "poll_oneoff is not available to chaincode: waiting is not deterministic",
            ))
        },
    )?;
    // A single-threaded guest has nothing to yield to: succeed without touching the
    // host's scheduler.
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "sched_yield",
        |mut caller: Caller<'_, GuestState>| -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            Ok(0)
        },
    )?;
    // Random bytes are work the host does for the guest: paid for per byte (before they
    // are made), from the transaction's ChaCha20 stream.
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "random_get",
        |mut caller: Caller<'_, GuestState>, ptr: u32, len: u32| -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            charge_bytes(&mut caller, len as usize)?;
            let Some(memory) = caller
                .get_export(cchost_abi::MEMORY_EXPORT)
                .and_then(|e| e.into_memory())
            else {
                return Ok(ERRNO_FAULT);
            };
            let in_bounds = (ptr as usize)
                .checked_add(len as usize)
                .is_some_and(|end| end <= memory.data_size(&caller));
            if !in_bounds {
                return Ok(ERRNO_FAULT);
            }
            let mut bytes = vec![0; len as usize];
            caller.data_mut().random().fill_bytes(&mut bytes);
            write_paid(&mut caller, ptr, len, &bytes)?;
            Ok(0)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
