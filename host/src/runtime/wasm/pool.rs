//! Admission to the engine's pooled instances, so that chaincode calling chaincode never
//! deadlocks.
//!
//! Every invocation holds one pooled instance while it runs; a guest calling another wasm
//! chaincode (INVOKE_CHAINCODE) keeps its own and needs a second one. Two rules keep that
//! from waiting forever:
//!
//! - Top-level invocations may hold at most `total - reserve` instances: the reserve is
//!   only ever taken by nested calls, so while top-level transactions fill the pool a
//!   nested call still finds a free instance or waits for one a nested call releases.
//! - A nested call that finds the pool full waits, unless every instance in use belongs
//!   to a guest that is itself waiting in a chaincode call: then nothing can free one,
//!   and the call fails at once with [`PoolExhausted`] instead of waiting for the execute
//!   timeout.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The pool is full and every instance in use belongs to a guest waiting on a chaincode
/// call: a nested call would wait forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no wasm instance is free for a nested chaincode call: all {total} are held by \
     transactions waiting on chaincode calls (raise max_instances, or retry)"
)]
pub(crate) struct PoolExhausted {
    total: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Instances held, top-level and nested.
    in_use: usize,
    /// Instances held by top-level invocations.
    top_level: usize,
    /// Guests holding an instance that are waiting in a chaincode call.
    waiting_on_calls: usize,
}

/// The engine's pooled instances, as permits.
#[derive(Debug)]
pub(crate) struct InstancePool {
    total: usize,
    top_level_max: usize,
    state: Mutex<State>,
    changed: Notify,
}

impl InstancePool {
    /// A pool of `total` instances, a quarter of them (at least one, when there are two
    /// or more) kept for nested calls.
    pub(crate) fn new(total: usize) -> Arc<Self> {
        let reserve = if total >= 2 { (total / 4).max(1) } else { 0 };
        Arc::new(Self {
            total,
            top_level_max: total - reserve,
            state: Mutex::default(),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An instance for a transaction sent by the peer; waits while the top-level share
    /// of the pool is in use.
    pub(crate) async fn acquire(self: &Arc<Self>) -> InstancePermit {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.state();
                if state.in_use < self.total && state.top_level < self.top_level_max {
                    state.in_use += 1;
                    state.top_level += 1;
                    return InstancePermit {
                        pool: Arc::clone(self),
                        top_level: true,
                    };
                }
            }
            changed.await;
        }
    }

    /// An instance for a chaincode called by a chaincode; waits while one may still be
    /// released, fails once none can be.
    pub(crate) async fn acquire_nested(self: &Arc<Self>) -> Result<InstancePermit, PoolExhausted> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.state();
                if state.in_use < self.total {
                    state.in_use += 1;
                    return Ok(InstancePermit {
                        pool: Arc::clone(self),
                        top_level: false,
                    });
                }
                if state.waiting_on_calls >= state.in_use {
                    return Err(PoolExhausted { total: self.total });
                }
            }
            changed.await;
        }
    }

    /// Marks a guest holding one of this pool's instances as waiting in a chaincode call
    /// until the guard is dropped.
    pub(crate) fn waiting_on_call(self: &Arc<Self>) -> CallWait {
        self.state().waiting_on_calls += 1;
        self.changed.notify_waiters();
        CallWait {
            pool: Arc::clone(self),
        }
    }
}

/// One pooled instance, returned on drop.
#[derive(Debug)]
pub(crate) struct InstancePermit {
    pool: Arc<InstancePool>,
    top_level: bool,
}

impl Drop for InstancePermit {
    fn drop(&mut self) {
        {
            let mut state = self.pool.state();
            state.in_use = state.in_use.saturating_sub(1);
            if self.top_level {
                state.top_level = state.top_level.saturating_sub(1);
            }
        }
        self.pool.changed.notify_waiters();
    }
}

/// A guest waiting in a chaincode call; see [`InstancePool::waiting_on_call`].
#[derive(Debug)]
pub(crate) struct CallWait {
    pool: Arc<InstancePool>,
}

impl Drop for CallWait {
    fn drop(&mut self) {
        {
            let mut state = self.pool.state();
            state.waiting_on_calls = state.waiting_on_calls.saturating_sub(1);
        }
        self.pool.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn top_level_invocations_leave_a_quarter_of_the_pool_to_nested_calls() {
        let pool = InstancePool::new(4);
        let _a = pool.acquire().await;
        let _b = pool.acquire().await;
        let _c = pool.acquire().await;
        assert!(
            pool.acquire().now_or_never().is_none(),
            "the fourth instance is the reserve"
        );
        let nested = pool.acquire_nested().await.unwrap();
        drop(nested);
        drop(_a);
        let _d = pool.acquire().await;
    }

    #[tokio::test]
    async fn a_nested_call_fails_at_once_when_every_holder_waits_on_a_call() {
        let pool = InstancePool::new(2);
        let outer = pool.acquire().await;
        let outer_waits = pool.waiting_on_call();
        let inner = pool.acquire_nested().await.unwrap();
        let inner_waits = pool.waiting_on_call();
        assert_eq!(
            pool.acquire_nested().await.unwrap_err().to_string(),
            "no wasm instance is free for a nested chaincode call: all 2 are held by \
             transactions waiting on chaincode calls (raise max_instances, or retry)"
        );
        drop((inner_waits, inner, outer_waits, outer));
    }

    #[tokio::test]
    async fn a_nested_call_waits_for_an_instance_a_running_guest_will_release() {
        let pool = InstancePool::new(2);
        let outer = pool.acquire().await;
        let _outer_waits = pool.waiting_on_call();
        let running = pool.acquire_nested().await.unwrap();
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.acquire_nested().await.map(drop) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the running guest will release one");
        drop(running);
        waiter.await.unwrap().unwrap();
        drop(outer);
    }
}
