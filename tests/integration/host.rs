//! A cchost chaincode listener on 127.0.0.1 with an in-memory ledger, for tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cchost::ledger::{CommitTx, Height, RedbStore, StateStore, TxSimulator};
use cchost::proposal::{BuiltProposal, DevIdentity, ProposalBuilder};
use cchost::support::{ChaincodeSupport, ExecuteError, ExecuteResult, SupportConfig};
use tokio::sync::oneshot;

pub(crate) const CHANNEL: &str = "mychannel";

/// A loopback port for a server another process binds (the Node shim in server mode),
/// which cannot be handed a listening socket. Ports come from the 10 000 below the
/// kernel's ephemeral range (`ip_local_port_range`), which `bind(0)` never hands out,
/// through a counter of this process, so no other test of this run is given the same one;
/// a block of 500 per process (by pid) keeps two runs side by side apart, and a port
/// something else holds is skipped.
pub(crate) fn service_port() -> u16 {
    use std::sync::atomic::AtomicU16;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let base = ephemeral_low.saturating_sub(10_000).max(1024)
        + u16::try_from(std::process::id() % 20).unwrap() * 500;
    for _ in 0..500 {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 500;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("every port in {base}..{} is taken", base + 500);
}

/// A loopback port that refuses connections at once: bound, so that nothing else takes it
/// while the socket lives, but not listening.
pub(crate) fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

pub(crate) struct TestHost {
    pub(crate) support: ChaincodeSupport,
    pub(crate) addr: SocketAddr,
    pub(crate) store: Arc<RedbStore>,
    pub(crate) identity: DevIdentity,
    next_block: AtomicU64,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestHost {
    /// Serves `Register` on an ephemeral loopback port.
    pub(crate) async fn start(config: SupportConfig) -> Self {
        let store = Arc::new(RedbStore::in_memory().unwrap());
        store.create_channel(CHANNEL).unwrap();
        let support =
            ChaincodeSupport::new(config, Arc::clone(&store) as Arc<dyn StateStore>).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = support.clone();
        tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
        });
        Self {
            support,
            addr,
            store,
            identity: DevIdentity::generate("Org1MSP", "Org1", "User1").unwrap(),
            next_block: AtomicU64::new(1),
            shutdown: Some(shutdown),
        }
    }

    pub(crate) fn proposal(&self, chaincode: &str, args: &[&str]) -> BuiltProposal {
        ProposalBuilder::new(CHANNEL, chaincode)
            .args(args)
            .build(&self.identity)
            .unwrap()
    }

    /// Builds a proposal and executes it.
    pub(crate) async fn invoke(
        &self,
        chaincode: &str,
        args: &[&str],
    ) -> (BuiltProposal, Result<ExecuteResult, ExecuteError>) {
        let proposal = self.proposal(chaincode, args);
        let result = self.support.execute(&proposal.signed_proposal).await;
        (proposal, result)
    }

    /// Commits a transaction's writes as the only transaction of the next block.
    pub(crate) fn commit(&self, result: &ExecuteResult, proposal: &BuiltProposal) -> Height {
        let height = Height::new(self.next_block.fetch_add(1, Ordering::SeqCst), 0);
        self.store
            .commit(
                CHANNEL,
                &[CommitTx {
                    height,
                    tx_id: result.txid.clone(),
                    timestamp: proposal.timestamp,
                    rwset: result.rwset.clone(),
                }],
            )
            .unwrap();
        height
    }

    /// Commits `value` at `key` of chaincode `namespace` in a block of its own, as if a
    /// transaction of that chaincode had written it.
    pub(crate) fn put(&self, namespace: &str, key: &str, value: Vec<u8>) {
        let mut simulator = TxSimulator::new(self.store.snapshot(CHANNEL).unwrap(), "put");
        simulator.put_state(namespace, key, value).unwrap();
        let height = Height::new(self.next_block.fetch_add(1, Ordering::SeqCst), 0);
        self.store
            .commit(
                CHANNEL,
                &[CommitTx {
                    height,
                    tx_id: "put".to_owned(),
                    timestamp: prost_types::Timestamp::default(),
                    rwset: simulator.read_write_set(),
                }],
            )
            .unwrap();
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
