//! Per-invocation store data and bounds-checked access to guest memory.

use std::sync::Arc;
use std::time::Duration;

use cchost_proto::protos::{ChaincodeEvent, ChaincodeMessage};
use wasmtime::{AsContextMut, Caller, Memory, StoreLimits};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use super::remote::RemoteLine;
use super::wasi;
use crate::handler::{Handler, TxProposal};

/// What one invocation's store holds.
pub(crate) struct GuestState {
    /// WASI, built at the guest's first WASI call: most transactions make none.
    wasi: Option<WasiP1Ctx>,
    /// The guest's captured stdout and stderr, once WASI is built.
    pub(crate) output: Option<(MemoryOutputPipe, MemoryOutputPipe)>,
    /// WASI calls made and not yet paid for: charged as each returns.
    pub(crate) wasi_calls_unpaid: u64,
    /// The transaction's random numbers (`random_get`), at first use.
    random: Option<rand::rngs::ChaCha20Rng>,
    pub(crate) limits: StoreLimits,
    pub(crate) memory: Option<Memory>,
    pub(crate) call: TxCall,
    /// The encoded `ChaincodeInput`, pulled by `input_read`.
    pub(crate) input: Vec<u8>,
    /// Bytes waiting for `result_read`.
    pub(crate) pending: Option<Vec<u8>>,
    /// The encoded `Response` set by the guest.
    pub(crate) response: Option<Vec<u8>>,
    pub(crate) event: Option<ChaincodeEvent>,
}

/// The transaction an invocation belongs to, and its line to the handler.
pub(crate) struct TxCall {
    pub(crate) chaincode: String,
    pub(crate) channel: String,
    pub(crate) txid: String,
    /// The proposal's timestamp: what both WASI clocks read.
    pub(crate) timestamp: Duration,
    /// The client's proposal (none for a detached state).
    pub(crate) proposal: Option<Arc<TxProposal>>,
    /// Where the invocation's requests go. `None` for a detached state.
    pub(crate) line: Option<PeerLine>,
}

/// The chaincode's line to the peer's handler: the same ChaincodeMessages either way.
#[derive(Clone)]
pub(crate) enum PeerLine {
    /// The handler is in this process: a request is handed to it by a call
    /// ([`Handler::request`]) and answered the same way.
    Direct(Arc<Handler>),
    /// The handler is a peer at the other end of a gRPC stream (`cchost chaincode run`
    /// and `serve`): a request is sent on the stream, its answer routed back by txid.
    Remote(Arc<RemoteLine>),
}

impl PeerLine {
    /// Sends `message` (a request of this invocation's transaction) and waits for the
    /// peer's RESPONSE or ERROR; `Err` says why no answer will come.
    pub(crate) async fn request(
        &self,
        message: ChaincodeMessage,
    ) -> Result<ChaincodeMessage, &'static str> {
        match self {
            Self::Direct(handler) => handler
                .request(message)
                .await
                .ok_or("the peer dropped a concurrent request"),
            Self::Remote(line) => line.request(message).await,
        }
    }
}

impl GuestState {
    /// A fresh invocation's state.
    pub(crate) fn new(call: TxCall, input: Vec<u8>, limits: StoreLimits) -> Self {
        Self {
            wasi: None,
            output: None,
            random: None,
            wasi_calls_unpaid: 0,
            limits,
            memory: None,
            call,
            input,
            pending: None,
            response: None,
            event: None,
        }
    }

    /// A state that belongs to no transaction: for stores that never run guest code
    /// (listing the linker's functions).
    pub(crate) fn detached() -> Self {
        let call = TxCall {
            chaincode: String::new(),
            channel: String::new(),
            txid: String::new(),
            timestamp: Duration::ZERO,
            proposal: None,
            line: None,
        };
        Self::new(call, Vec::new(), StoreLimits::default())
    }

    /// The transaction's ChaCha20 stream (seeded with `sha256(channel ‖ txid)`), started
    /// at first use.
    pub(crate) fn random(&mut self) -> &mut rand::rngs::ChaCha20Rng {
        let call = &self.call;
        self.random.get_or_insert_with(|| {
            rand::SeedableRng::from_seed(wasi::seed(&call.channel, &call.txid))
        })
    }

    /// The invocation's deterministic WASI context, built at first use.
    pub(crate) fn wasi(&mut self) -> &mut WasiP1Ctx {
        let (call, output) = (&self.call, &mut self.output);
        self.wasi.get_or_insert_with(|| {
            let (ctx, stdout, stderr) = wasi::context(&call.channel, &call.txid, call.timestamp);
            *output = Some((stdout, stderr));
            ctx
        })
    }
}

/// A guest broke the ABI: the instance traps with this fixed text.
pub(crate) fn abi_violation(what: &str) -> wasmtime::Error {
    HostFailure::error(format!("chaincode broke the cchost ABI: {what}"))
}

fn memory(caller: &mut Caller<'_, GuestState>) -> wasmtime::Result<Memory> {
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
    let memory = caller
        .get_export(cchost_abi::MEMORY_EXPORT)
        .and_then(|e| e.into_memory())
        .ok_or_else(|| abi_violation("no exported memory"))?;
    caller.data_mut().memory = Some(memory);
    Ok(memory)
}

/// Takes `fuel` from the store; running out traps, as the guest's own instructions do.
pub(crate) fn charge(mut store: impl AsContextMut, fuel: u64) -> wasmtime::Result<()> {
    let mut store = store.as_context_mut();
    let left = store.get_fuel()?;
    if left < fuel {
        store.set_fuel(0)?;
        return Err(wasmtime::Trap::OutOfFuel.into());
    }
    store.set_fuel(left - fuel)
}

/// Charges the fuel for `len` bytes a host call moves across the guest's memory boundary
/// (see [`FUEL_PER_BYTE`](super::imports::FUEL_PER_BYTE)).
pub(crate) fn charge_bytes(store: impl AsContextMut, len: usize) -> wasmtime::Result<()> {
    let cost = u64::try_from(len)
        .unwrap_or(u64::MAX)
        .saturating_mul(super::imports::FUEL_PER_BYTE);
    charge(store, cost)
}

/// Copies `len` bytes at `ptr` out of guest memory; `len` must not exceed `limit`. The
/// copy is paid for in fuel before it is made.
pub(crate) fn read(
    caller: &mut Caller<'_, GuestState>,
    ptr: u32,
    len: u32,
    limit: u32,
) -> wasmtime::Result<Vec<u8>> {
    if len > limit {
        return Err(abi_violation(&format!(
            "a length of {len} bytes exceeds the limit of {limit}"
        )));
    }
    charge_bytes(&mut *caller, len as usize)?;
    let memory = memory(caller)?;
    let start = ptr as usize;
    let end = start
        .checked_add(len as usize)
        .ok_or_else(|| abi_violation("a pointer and length overflow"))?;
    memory
        .data(&*caller)
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| abi_violation("a pointer and length reach past the end of memory"))
}

/// Like [`read`], as UTF-8 text.
pub(crate) fn read_str(
    caller: &mut Caller<'_, GuestState>,
    ptr: u32,
    len: u32,
    limit: u32,
) -> wasmtime::Result<String> {
    String::from_utf8(read(caller, ptr, len, limit)?)
        .map_err(|_| abi_violation("a string is not UTF-8"))
}

/// Copies `bytes` into guest memory at `ptr`; the region must be exactly `len` long. The
/// copy is paid for in fuel before it is made.
pub(crate) fn write(
    caller: &mut Caller<'_, GuestState>,
    ptr: u32,
    len: u32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    charge_bytes(&mut *caller, bytes.len())?;
    write_paid(caller, ptr, len, bytes)
}

/// [`write`] of bytes whose fuel was charged already (a result, paid for when it
/// arrived).
pub(crate) fn write_paid(
    caller: &mut Caller<'_, GuestState>,
    ptr: u32,
    len: u32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    if bytes.len() != len as usize {
        return Err(abi_violation(&format!(
            "a buffer of {len} bytes was given for {} bytes",
            bytes.len()
        )));
    }
    let memory = memory(caller)?;
    let start = ptr as usize;
    let end = start
        .checked_add(bytes.len())
        .ok_or_else(|| abi_violation("a pointer and length overflow"))?;
    memory
        .data_mut(&mut *caller)
        .get_mut(start..end)
        .ok_or_else(|| abi_violation("a pointer and length reach past the end of memory"))?
        .copy_from_slice(bytes);
    Ok(())
}

/// A failure the host itself ends an invocation with (a broken cchost ABI, the peer gone),
/// its text final. Failures of WASI calls carry wasmtime-wasi's own texts instead, and
/// are labelled as such ([`describe_failure`](super::shim::describe_failure)).
#[derive(Debug)]
pub(crate) struct HostFailure(pub(crate) String);

impl HostFailure {
    pub(crate) fn error(text: impl Into<String>) -> wasmtime::Error {
        wasmtime::Error::new(Self(text.into()))
    }
}

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostFailure {}

/// The guest called `abort` (its panic hook): the invocation ends with status 500 and
/// this message.
#[derive(Debug)]
pub(crate) struct GuestAbort(pub(crate) String);

impl std::fmt::Display for GuestAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chaincode panicked: {}", self.0)
    }
}

impl std::error::Error for GuestAbort {}
