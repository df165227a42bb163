//! Admission to the engine's pooled instances, so that chaincode calling chaincode never
//! deadlocks.
//!
//! Every invocation holds one pooled instance while it runs; a guest calling another wasm
//! chaincode (INVOKE_CHAINCODE) keeps its own and needs a second one. A transaction's
//! invocations form a chain (a caller waits for its callee), identified here by the
//! transaction's proposal, which every invocation of the chain shares. Two rules keep the
//! chains from waiting forever on each other:
//!
//! - Invocations sent by the peer hold at most `total - reserve` instances (a FIFO
//!   semaphore of their own): the reserve is only ever taken by nested calls, so while
//!   top-level transactions fill the pool a nested call still finds an instance or waits
//!   for one a nested call releases.
//! - A nested call that finds the pool full waits, in FIFO order, unless every chain
//!   holding an instance is itself waiting for one: then nothing can free an instance,
//!   and the call fails at once with [`PoolExhausted`] instead of waiting for the execute
//!   timeout. A chain whose latest call went to a container or a service is not waiting
//!   for an instance, so it never causes such a failure.
//!
//! A wasm guest calls one chaincode at a time, so a waiting chain cannot also release an
//! instance. A container chaincode (Node, say) could call several wasm chaincodes at once
//! within one transaction; if one of those calls waits while the others run, the chain
//! counts as waiting and a nested call elsewhere may fail early with [`PoolExhausted`]
//! (retried, it succeeds once the chain ends).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The pool is full and every chain of invocations holding an instance waits for another
/// one: a nested call would wait forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no wasm instance is free for a nested chaincode call: all {total} are held by \
     transactions waiting on chaincode calls (raise max_instances, or retry)"
)]
pub(crate) struct PoolExhausted {
    total: usize,
}

/// Identifies a chain of invocations (one transaction and the chaincode it calls).
pub(crate) type Chain = usize;

#[derive(Debug, Default)]
struct Chains {
    /// Instances held by invocations, in all. It drops as a permit is dropped, before the
    /// semaphore hands the instance on, and rises only once the next holder has it: an
    /// instance on its way to a waiting call never counts as held, so the pool never looks
    /// deadlocked while it is being passed on.
    held: usize,
    /// Instances held, by chain.
    holding: HashMap<Chain, usize>,
    /// Nested calls waiting for an instance, by chain.
    waiting: HashMap<Chain, usize>,
}

impl Chains {
    fn add(map: &mut HashMap<Chain, usize>, chain: Chain) {
        *map.entry(chain).or_default() += 1;
    }

    fn remove(map: &mut HashMap<Chain, usize>, chain: Chain) {
        if let Some(count) = map.get_mut(&chain) {
            *count -= 1;
            if *count == 0 {
                map.remove(&chain);
            }
        }
    }
}

/// The engine's pooled instances, as permits.
#[derive(Debug)]
pub(crate) struct InstancePool {
    total: usize,
    instances: Arc<Semaphore>,
    top_level: Arc<Semaphore>,
    chains: Mutex<Chains>,
    /// Woken when a waiting nested call may have to give up.
    changed: Notify,
}

impl InstancePool {
    /// A pool of `total` instances, a quarter of them (at least one, when there are two
    /// or more) kept for nested calls.
    pub(crate) fn new(total: usize) -> Arc<Self> {
        let reserve = if total >= 2 { (total / 4).max(1) } else { 0 };
        Arc::new(Self {
            total,
            instances: Arc::new(Semaphore::new(total)),
            top_level: Arc::new(Semaphore::new(total - reserve)),
            chains: Mutex::default(),
            changed: Notify::new(),
        })
    }

    fn chains(&self) -> MutexGuard<'_, Chains> {
        self.chains.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `chain` holds one more instance (and, if `waited`, that its call no
    /// longer waits: both at once, so that no one sees the chain holding the instance and
    /// still waiting); wakes waiting nested calls (the pool may be full now).
    fn hold(
        self: &Arc<Self>,
        chain: Chain,
        instance: OwnedSemaphorePermit,
        top_level: Option<OwnedSemaphorePermit>,
        waited: bool,
    ) -> InstancePermit {
        let mut chains = self.chains();
        if waited {
            Chains::remove(&mut chains.waiting, chain);
        }
        chains.held += 1;
        Chains::add(&mut chains.holding, chain);
        if !chains.waiting.is_empty() {
            self.changed.notify_waiters();
        }
        InstancePermit {
            pool: Arc::clone(self),
            chain,
            _instance: instance,
            _top_level: top_level,
        }
    }

    /// An instance for a transaction sent by the peer; waits (first come, first served)
    /// while the top-level share of the pool is in use. (`None` would mean the semaphores
    /// were closed, which nothing does.)
    pub(crate) async fn acquire(self: &Arc<Self>, chain: Chain) -> Option<InstancePermit> {
        let top_level = Arc::clone(&self.top_level).acquire_owned().await.ok()?;
        let instance = Arc::clone(&self.instances).acquire_owned().await.ok()?;
        Some(self.hold(chain, instance, Some(top_level), false))
    }

    /// An instance for a chaincode called within `chain`; waits while one may still be
    /// released, fails once none can be.
    pub(crate) async fn acquire_nested(
        self: &Arc<Self>,
        chain: Chain,
    ) -> Result<InstancePermit, PoolExhausted> {
        if let Ok(instance) = Arc::clone(&self.instances).try_acquire_owned() {
            return Ok(self.hold(chain, instance, None, false));
        }
        let waiting = Waiting::new(self, chain);
        let instance = Arc::clone(&self.instances).acquire_owned();
        tokio::pin!(instance);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.deadlocked() {
                return Err(PoolExhausted { total: self.total });
            }
            tokio::select! {
                instance = &mut instance => match instance {
                    Ok(instance) => return Ok(waiting.into_permit(instance)),
                    Err(_) => return Err(PoolExhausted { total: self.total }),
                },
                () = &mut changed => {}
            }
        }
    }

    /// Every instance is held, and every chain holding one waits for another.
    fn deadlocked(&self) -> bool {
        let chains = self.chains();
        chains.held == self.total
            && chains
                .holding
                .keys()
                .all(|chain| chains.waiting.contains_key(chain))
    }
}

/// A nested call of a chain waiting for an instance, until dropped.
struct Waiting<'a> {
    pool: &'a Arc<InstancePool>,
    chain: Chain,
    /// The call got its instance (and is no longer recorded as waiting).
    served: bool,
}

impl<'a> Waiting<'a> {
    fn new(pool: &'a Arc<InstancePool>, chain: Chain) -> Self {
        Chains::add(&mut pool.chains().waiting, chain);
        pool.changed.notify_waiters();
        Self {
            pool,
            chain,
            served: false,
        }
    }

    fn into_permit(mut self, instance: OwnedSemaphorePermit) -> InstancePermit {
        self.served = true;
        self.pool.hold(self.chain, instance, None, true)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.served {
            Chains::remove(&mut self.pool.chains().waiting, self.chain);
        }
    }
}

/// One pooled instance, returned on drop.
#[derive(Debug)]
pub(crate) struct InstancePermit {
    pool: Arc<InstancePool>,
    chain: Chain,
    _instance: OwnedSemaphorePermit,
    _top_level: Option<OwnedSemaphorePermit>,
}

impl Drop for InstancePermit {
    fn drop(&mut self) {
        let mut chains = self.pool.chains();
        chains.held -= 1;
        Chains::remove(&mut chains.holding, self.chain);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn top_level_invocations_leave_a_quarter_of_the_pool_to_nested_calls() {
        let pool = InstancePool::new(4);
        let held: Vec<_> = [1, 2, 3]
            .iter()
            .map(|&chain| pool.acquire(chain).now_or_never().flatten().unwrap())
            .collect();
        assert!(
            pool.acquire(4).now_or_never().is_none(),
            "the fourth instance is the reserve"
        );
        let nested = pool.acquire_nested(1).await.unwrap();
        drop(nested);
        drop(held);
        assert!(pool.acquire(4).now_or_never().flatten().is_some());
    }

    #[tokio::test]
    async fn a_nested_call_fails_at_once_when_every_chain_holding_an_instance_waits() {
        let pool = InstancePool::new(2);
        let outer = pool.acquire(1).await.unwrap();
        let inner = pool.acquire_nested(1).await.unwrap();
        // The pool is full; the only chain holding instances now waits for a third.
        assert_eq!(
            pool.acquire_nested(1).await.unwrap_err().to_string(),
            "no wasm instance is free for a nested chaincode call: all 2 are held by \
             transactions waiting on chaincode calls (raise max_instances, or retry)"
        );
        drop((inner, outer));
    }

    #[tokio::test]
    async fn a_nested_call_waits_while_another_chain_can_still_release_an_instance() {
        let pool = InstancePool::new(2);
        // Chain 1 holds an instance and calls, say, a container: it is not waiting.
        let busy = pool.acquire(1).await.unwrap();
        let caller = pool.acquire_nested(2).await.unwrap();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.acquire_nested(2).await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "chain 1 will release its instance");
        drop(busy);
        waiter.await.unwrap().unwrap();
        drop(caller);
    }

    #[tokio::test]
    async fn an_instance_being_handed_to_a_waiting_call_does_not_look_held() {
        let pool = InstancePool::new(2);
        let first = pool.acquire(1).await.unwrap();
        let second = pool.acquire_nested(2).await.unwrap();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.acquire_nested(2).await }
        });
        tokio::task::yield_now().await;
        // Chain 1 ends: its instance goes to chain 2's waiting call, which has not run yet.
        // Chain 3's call must wait for it, not give up.
        drop(first);
        assert!(pool.acquire_nested(3).now_or_never().is_none());
        let third = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.acquire_nested(3).await.map(drop) }
        });
        let handed = waiter.await.unwrap().unwrap();
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "chain 2 runs and will release");
        drop((handed, second));
        third.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn when_the_last_running_chain_waits_too_one_call_gives_up_and_the_other_goes_on() {
        let pool = InstancePool::new(2);
        let first = pool.acquire(1).await.unwrap();
        let second = pool.acquire_nested(2).await.unwrap();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.acquire_nested(2).await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "chain 1 still runs");
        // Chain 1 now calls a wasm chaincode too: both chains wait and nothing can move, so
        // its call fails; chain 1 then goes on and ends, and chain 2's call gets its instance.
        assert!(pool.acquire_nested(1).await.is_err());
        assert!(!waiter.is_finished());
        drop(first);
        waiter.await.unwrap().unwrap();
        drop(second);
    }
}
