//! Registered chaincode handlers by package id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::handler::Handler;
use crate::ids::PackageId;

/// Why a REGISTER was refused (logged; Fabric sends nothing back).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegisterError {
    #[error("duplicate chaincodeID: {0}")]
    Duplicate(PackageId),
    #[error("peer will not accept external chaincode connection {0} (except in dev mode)")]
    NotLaunched(PackageId),
}

struct Entry {
    handler: Arc<Handler>,
    ready: bool,
}

#[derive(Default)]
struct State {
    handlers: HashMap<PackageId, Entry>,
    expected: HashSet<PackageId>,
}

pub(crate) struct Registry {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl Registry {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.changes.send_modify(|generation| *generation += 1);
    }

    pub(crate) fn expect(&self, package_id: &PackageId) {
        self.state().expected.insert(package_id.clone());
    }

    /// Forgets an expected registration that has not happened (a launch that failed or
    /// was dropped): the package id can no longer register outside dev mode.
    pub(crate) fn withdraw(&self, package_id: &PackageId) {
        self.state().expected.remove(package_id);
    }

    pub(crate) fn is_expected(&self, package_id: &PackageId) -> bool {
        self.state().expected.contains(package_id)
    }

    /// Whether a handler (ready or not) is registered as `package_id`.
    pub(crate) fn is_registered(&self, package_id: &PackageId) -> bool {
        self.state().handlers.contains_key(package_id)
    }

    /// Claims `package_id` for `handler`, not yet ready (so nothing is sent to it before
    /// READY).
    pub(crate) fn register(
        &self,
        package_id: &PackageId,
        handler: &Arc<Handler>,
        dev_mode: bool,
    ) -> Result<(), RegisterError> {
        let mut state = self.state();
        if state.handlers.contains_key(package_id) {
            return Err(RegisterError::Duplicate(package_id.clone()));
        }
        if !state.expected.remove(package_id) && !dev_mode {
            return Err(RegisterError::NotLaunched(package_id.clone()));
        }
        state.handlers.insert(
            package_id.clone(),
            Entry {
                handler: Arc::clone(handler),
                ready: false,
            },
        );
        Ok(())
    }

    pub(crate) fn mark_ready(&self, package_id: &PackageId) {
        if let Some(entry) = self.state().handlers.get_mut(package_id) {
            entry.ready = true;
        }
        self.changed();
    }

    pub(crate) fn get(&self, package_id: &PackageId) -> Option<Arc<Handler>> {
        self.state()
            .handlers
            .get(package_id)
            .filter(|entry| entry.ready)
            .map(|entry| Arc::clone(&entry.handler))
    }

    /// Removes `handler`'s registration (not a newer handler's under the same id).
    pub(crate) fn deregister(&self, package_id: &PackageId, handler: &Arc<Handler>) {
        let mut state = self.state();
        if state
            .handlers
            .get(package_id)
            .is_some_and(|entry| Arc::ptr_eq(&entry.handler, handler))
        {
            state.handlers.remove(package_id);
            drop(state);
            self.changed();
        }
    }

    /// Waits until no handler is registered as `package_id`; false after `timeout`.
    pub(crate) async fn wait_deregistered(
        &self,
        package_id: &PackageId,
        timeout: Duration,
    ) -> bool {
        let mut changes = self.changes.subscribe();
        let wait = async {
            loop {
                if !self.is_registered(package_id) {
                    return true;
                }
                if changes.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    pub(crate) async fn wait_ready(&self, package_id: &PackageId, timeout: Duration) -> bool {
        let mut changes = self.changes.subscribe();
        let wait = async {
            loop {
                if self.get(package_id).is_some() {
                    return true;
                }
                if changes.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }
}
