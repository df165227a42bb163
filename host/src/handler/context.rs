//! Per-transaction state on a handler: the simulator, the proposal, open iterators, and
//! the slot the chaincode's COMPLETED or ERROR is delivered to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cchost_proto::protos::{ChaincodeInput, ChaincodeMessage, SignedProposal};
use tokio::sync::oneshot;

use super::query::QueryIterator;
use crate::ids::TxKey;
use crate::ledger::TxSimulator;
use crate::proposal::ParsedProposal;

/// The client's proposal a transaction runs for: as signed (what a chaincode's stub is
/// given) and decoded once (what the peer and in-process chaincode read from it).
#[derive(Debug)]
pub struct TxProposal {
    /// As the client signed it.
    pub signed: SignedProposal,
    /// Its decoded layers, but for `parsed.input`, which is moved into the INIT or
    /// TRANSACTION message (its payload) and left empty here.
    pub parsed: ParsedProposal,
}

/// What a transaction sent to a chaincode runs with.
#[derive(Debug, Clone)]
pub(crate) struct TxParams {
    /// Channel and txid.
    pub(crate) key: TxKey,
    /// The chaincode name: the namespace of its reads and writes.
    pub(crate) namespace: String,
    /// Shared with chaincode it invokes on the same channel.
    pub(crate) simulator: Arc<Mutex<TxSimulator>>,
    /// The client's proposal, given to the chaincode's stub.
    pub(crate) proposal: Option<Arc<TxProposal>>,
    /// INIT rather than TRANSACTION.
    pub(crate) is_init: bool,
    /// Called by another chaincode within its transaction.
    pub(crate) nested: bool,
    /// The invocation arguments.
    pub(crate) input: ChaincodeInput,
}

/// What the handlers of one support hold at this moment: transaction contexts and open
/// query iterators, each counted from its creation to its drop, so that one kept alive
/// past its transaction (a leak) stays counted. Both are 0 when no transaction runs.
#[derive(Debug, Default)]
pub(crate) struct LiveCounts {
    pub(crate) contexts: AtomicUsize,
    pub(crate) iterators: AtomicUsize,
}

pub(crate) struct TxContext {
    pub(crate) key: TxKey,
    pub(crate) namespace: String,
    pub(crate) simulator: Arc<Mutex<TxSimulator>>,
    pub(crate) proposal: Option<Arc<TxProposal>>,
    pub(crate) is_init: bool,
    /// Open query iterators: only through the methods below, which keep `live` exact.
    iterators: Mutex<HashMap<String, QueryIterator>>,
    /// Query iterators opened so far (their ids follow from it).
    iterators_opened: AtomicU64,
    completion: Mutex<Option<oneshot::Sender<ChaincodeMessage>>>,
    busy: AtomicBool,
    live: Arc<LiveCounts>,
}

impl Drop for TxContext {
    fn drop(&mut self) {
        let open = self.iterators.get_mut().map_or(0, |map| map.len());
        self.live.iterators.fetch_sub(open, Ordering::Relaxed);
        self.live.contexts.fetch_sub(1, Ordering::Relaxed);
    }
}

impl TxContext {
    pub(crate) fn new(
        params: &TxParams,
        live: &Arc<LiveCounts>,
    ) -> (Arc<Self>, oneshot::Receiver<ChaincodeMessage>) {
        let (tx, rx) = oneshot::channel();
        live.contexts.fetch_add(1, Ordering::Relaxed);
        let ctx = Arc::new(Self {
            key: params.key.clone(),
            namespace: params.namespace.clone(),
            simulator: Arc::clone(&params.simulator),
            proposal: params.proposal.clone(),
            is_init: params.is_init,
            iterators: Mutex::new(HashMap::new()),
            iterators_opened: AtomicU64::new(0),
            completion: Mutex::new(Some(tx)),
            busy: AtomicBool::new(false),
            live: Arc::clone(live),
        });
        (ctx, rx)
    }

    /// The simulator, locked. Never held across an `.await`.
    pub(crate) fn sim(&self) -> MutexGuard<'_, TxSimulator> {
        self.simulator.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of the next query iterator: shaped like Fabric's (a random UUID) but drawn
    /// from `sha256(channel ‖ txid ‖ n)`, so that a chaincode that hands it on (into a
    /// response or a write) answers the same on every peer.
    pub(crate) fn next_iterator_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let n = self.iterators_opened.fetch_add(1, Ordering::Relaxed);
        let mut hash = Sha256::new();
        hash.update(self.key.channel.as_bytes());
        hash.update([0]);
        hash.update(self.key.txid.as_bytes());
        hash.update(n.to_be_bytes());
        let bytes: [u8; 32] = hash.finalize().into();
        let random = *bytes.first_chunk::<16>().unwrap_or(&[0; 16]);
        uuid::Builder::from_random_bytes(random)
            .into_uuid()
            .to_string()
    }

    fn iterators(&self) -> MutexGuard<'_, HashMap<String, QueryIterator>> {
        self.iterators.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open query iterators.
    pub(crate) fn open_iterators(&self) -> usize {
        self.iterators().len()
    }

    /// Keeps `iter` open as `id`.
    pub(crate) fn keep_iterator(&self, id: String, iter: QueryIterator) {
        if self.iterators().insert(id, iter).is_none() {
            self.live.iterators.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes iterator `id` out (to advance or to close it).
    pub(crate) fn take_iterator(&self, id: &str) -> Option<QueryIterator> {
        let iter = self.iterators().remove(id);
        if iter.is_some() {
            self.live.iterators.fetch_sub(1, Ordering::Relaxed);
        }
        iter
    }

    /// Delivers the chaincode's COMPLETED or ERROR; false if one was delivered already.
    pub(crate) fn complete(&self, message: ChaincodeMessage) -> bool {
        let sender = self
            .completion
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        sender.is_some_and(|s| s.send(message).is_ok())
    }

    /// The stream ended: the waiting execute sees it at once.
    pub(crate) fn abandon(&self) {
        self.completion
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let closed = self.iterators().drain().count();
        self.live.iterators.fetch_sub(closed, Ordering::Relaxed);
    }

    /// Marks a request in progress until the guard drops (however the request ends);
    /// `None` if one already is.
    pub(crate) fn begin_request(self: &Arc<Self>) -> Option<RequestGuard> {
        (!self.busy.swap(true, Ordering::AcqRel)).then(|| RequestGuard(Arc::clone(self)))
    }
}

/// A transaction's request in progress; see [`TxContext::begin_request`].
pub(crate) struct RequestGuard(Arc<TxContext>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}
