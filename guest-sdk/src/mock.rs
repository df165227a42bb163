//! [`MockStub`]: an in-memory ledger for testing chaincode under plain `cargo test`, like
//! Fabric's `shimtest.MockStub`, but with Fabric's transaction semantics: a transaction
//! reads committed state (not its own writes), and its writes, metadata, history and
//! event are committed only when it succeeds.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use cchost_abi::{LogLevel, TxField, refusals};
use cchost_proto::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use cchost_proto::msp::SerializedIdentity;
use cchost_proto::protos::{
    ChaincodeEvent, ChaincodeInput, ChaincodeProposalPayload, Proposal, QueryResponse,
    QueryResponseMetadata, QueryResultBytes, Response, SignedProposal, StateMetadata,
    StateMetadataResult,
};
use cchost_proto::queryresult::{KeyModification, Kv};
use prost::Message;
use prost_types::Timestamp;
use sha2::{Digest, Sha256};

use crate::backend::Backend;
use crate::contract::{Chaincode, Context};
use crate::identity::TEST_CERTIFICATE;
use crate::{Error, Stub};

/// Results per query batch, as Fabric's peer sends them (`totalQueryLimit` aside).
const BATCH: usize = 100;

/// The committed ledger and the settings of the next transactions.
#[derive(Default)]
struct Ledger {
    /// (collection, key) → value; collection "" is the world state.
    state: BTreeMap<(String, String), Vec<u8>>,
    metadata: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
    history: BTreeMap<String, Vec<KeyModification>>,
    events: Vec<ChaincodeEvent>,
    logs: Vec<(LogLevel, String)>,
    peers: BTreeMap<String, (MockStub, Rc<Chaincode>)>,
    next_tx: u64,
    clock: i64,
    channel: String,
    name: String,
    msp_id: String,
    certificate: Vec<u8>,
    transient: BTreeMap<String, Vec<u8>>,
}

/// An in-memory peer for one chaincode: state, private data, metadata, history, events,
/// the creator's identity and transient data. Clones share the ledger.
#[derive(Clone)]
pub struct MockStub {
    ledger: Rc<RefCell<Ledger>>,
}

impl std::fmt::Debug for MockStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ledger = self.ledger.borrow();
        f.debug_struct("MockStub")
            .field("name", &ledger.name)
            .field("keys", &ledger.state.len())
            .finish()
    }
}

impl MockStub {
    /// A mock of chaincode `name` on channel `mychannel`, invoked by `Org1MSP`'s
    /// [`TEST_CERTIFICATE`] user; the transaction clock starts at 2026-01-01T00:00:00Z
    /// and advances one second per transaction.
    pub fn new(name: &str) -> Self {
        Self {
            ledger: Rc::new(RefCell::new(Ledger {
                channel: "mychannel".to_owned(),
                name: name.to_owned(),
                msp_id: "Org1MSP".to_owned(),
                certificate: TEST_CERTIFICATE.as_bytes().to_vec(),
                clock: 1_767_225_600,
                ..Ledger::default()
            })),
        }
    }

    /// Makes the next transactions come from `msp_id` with `certificate_pem`.
    pub fn set_creator(&self, msp_id: &str, certificate_pem: &[u8]) {
        let mut ledger = self.ledger.borrow_mut();
        ledger.msp_id = msp_id.to_owned();
        ledger.certificate = certificate_pem.to_vec();
    }

    /// Sets the transient data the next transactions receive.
    pub fn set_transient(&self, transient: BTreeMap<String, Vec<u8>>) {
        self.ledger.borrow_mut().transient = transient;
    }

    /// Makes chaincode `name` callable through `invoke_chaincode`, with its own ledger
    /// `stub`.
    pub fn register_chaincode(&self, name: &str, stub: MockStub, chaincode: Chaincode) {
        self.ledger
            .borrow_mut()
            .peers
            .insert(name.to_owned(), (stub, Rc::new(chaincode)));
    }

    /// Runs one invocation of `chaincode` with `args` (the first is the function), as
    /// the peer would, and commits it if it succeeded.
    pub fn invoke<A: AsRef<[u8]>>(&self, chaincode: &Chaincode, args: &[A]) -> Response {
        let tx = self.begin(args.iter().map(|a| a.as_ref().to_vec()).collect(), false);
        let response = chaincode.invoke(tx.stub());
        if response.status < 400 {
            tx.commit();
        }
        response
    }

    /// Like [`invoke`](Self::invoke), as the chaincode's Init.
    pub fn init<A: AsRef<[u8]>>(&self, chaincode: &Chaincode, args: &[A]) -> Response {
        let tx = self.begin(args.iter().map(|a| a.as_ref().to_vec()).collect(), true);
        let response = chaincode.init(tx.stub());
        if response.status < 400 {
            tx.commit();
        }
        response
    }

    /// Runs `f` as one transaction (for calling a contract's methods directly) and
    /// commits it if `f` returns `Ok`.
    pub fn transact<T, E>(&self, f: impl FnOnce(&Context) -> Result<T, E>) -> Result<T, E> {
        let tx = self.begin(Vec::new(), false);
        let result = f(&Context::new(tx.stub()));
        if result.is_ok() {
            tx.commit();
        }
        result
    }

    /// The committed value of `key` in the world state.
    pub fn state(&self, key: &str) -> Option<Vec<u8>> {
        self.ledger
            .borrow()
            .state
            .get(&(String::new(), key.to_owned()))
            .cloned()
    }

    /// The committed value of `key` as text.
    pub fn state_string(&self, key: &str) -> Option<String> {
        self.state(key)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Writes `key` directly (test setup, no transaction).
    pub fn put_state(&self, key: &str, value: &[u8]) {
        self.ledger
            .borrow_mut()
            .state
            .insert((String::new(), key.to_owned()), value.to_vec());
    }

    /// Every committed world-state key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.ledger
            .borrow()
            .state
            .keys()
            .filter(|(c, _)| c.is_empty())
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// The events of committed transactions, oldest first.
    pub fn events(&self) -> Vec<ChaincodeEvent> {
        self.ledger.borrow().events.clone()
    }

    /// Every line logged through the stub, oldest first.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.ledger.borrow().logs.clone()
    }

    fn begin(&self, args: Vec<Vec<u8>>, is_init: bool) -> Rc<MockTx> {
        let mut ledger = self.ledger.borrow_mut();
        ledger.next_tx += 1;
        ledger.clock += 1;
        let tx_id = format!("mocktx{}", ledger.next_tx);
        let timestamp = Timestamp {
            seconds: ledger.clock,
            nanos: 0,
        };
        let input = ChaincodeInput {
            args,
            is_init,
            ..Default::default()
        };
        let signed_proposal = signed_proposal(&ledger, &tx_id, &timestamp, &input);
        Rc::new(MockTx {
            ledger: self.ledger.clone(),
            tx_id,
            timestamp,
            input,
            signed_proposal,
            writes: RefCell::default(),
            metadata_writes: RefCell::default(),
            event: RefCell::default(),
            queries: RefCell::default(),
            next_query: RefCell::default(),
            wrote: Cell::new(false),
            paginated: Cell::new(false),
        })
    }
}

fn signed_proposal(
    ledger: &Ledger,
    tx_id: &str,
    timestamp: &Timestamp,
    input: &ChaincodeInput,
) -> Vec<u8> {
    let creator = SerializedIdentity {
        mspid: ledger.msp_id.clone(),
        id_bytes: ledger.certificate.clone(),
    }
    .encode_to_vec();
    let header = Header {
        channel_header: ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            channel_id: ledger.channel.clone(),
            tx_id: tx_id.to_owned(),
            timestamp: Some(*timestamp),
            ..Default::default()
        }
        .encode_to_vec(),
        signature_header: SignatureHeader {
            creator,
            nonce: tx_id.as_bytes().to_vec(),
        }
        .encode_to_vec(),
    };
    let payload = ChaincodeProposalPayload {
        input: input.encode_to_vec(),
        transient_map: ledger.transient.clone().into_iter().collect(),
    };
    SignedProposal {
        proposal_bytes: Proposal {
            header: header.encode_to_vec(),
            payload: payload.encode_to_vec(),
            extension: Vec::new(),
        }
        .encode_to_vec(),
        signature: Vec::new(),
    }
    .encode_to_vec()
}

type Key = (String, String);

/// One transaction in flight: its buffered writes, event and open queries.
struct MockTx {
    ledger: Rc<RefCell<Ledger>>,
    tx_id: String,
    timestamp: Timestamp,
    input: ChaincodeInput,
    signed_proposal: Vec<u8>,
    /// `None` is a delete.
    writes: RefCell<BTreeMap<Key, Option<Vec<u8>>>>,
    metadata_writes: RefCell<BTreeMap<Key, BTreeMap<String, Vec<u8>>>>,
    event: RefCell<Option<ChaincodeEvent>>,
    queries: RefCell<BTreeMap<String, VecDeque<Vec<u8>>>>,
    next_query: RefCell<u64>,
    /// Fabric's read-only rule for paginated queries: a write was made / a page read.
    wrote: Cell<bool>,
    paginated: Cell<bool>,
}

impl MockTx {
    fn stub(self: &Rc<Self>) -> Stub {
        Stub::new(self.input.clone(), self.clone())
    }

    fn commit(&self) {
        let mut ledger = self.ledger.borrow_mut();
        for ((collection, key), value) in self.writes.take() {
            if collection.is_empty() {
                ledger.history.entry(key.clone()).or_default().insert(
                    0,
                    KeyModification {
                        tx_id: self.tx_id.clone(),
                        value: value.clone().unwrap_or_default(),
                        timestamp: Some(self.timestamp),
                        is_delete: value.is_none(),
                    },
                );
            }
            match value {
                Some(value) => {
                    ledger.state.insert((collection, key), value);
                }
                None => {
                    ledger.state.remove(&(collection.clone(), key.clone()));
                    ledger.metadata.remove(&(collection, key));
                }
            }
        }
        for (key, entries) in self.metadata_writes.take() {
            // On a key that does not exist a metadata write does nothing, as on the peer.
            if ledger.state.contains_key(&key) {
                ledger.metadata.insert(key, entries);
            }
        }
        if let Some(event) = self.event.take() {
            ledger.events.push(event);
        }
    }

    /// Opens a query over `results`, answering the first batch.
    fn open(&self, results: Vec<Vec<u8>>, metadata: Vec<u8>) -> QueryResponse {
        let id = {
            let mut next = self.next_query.borrow_mut();
            *next += 1;
            format!("query{next}")
        };
        let mut response = self.batch(&id, results.into());
        response.metadata = metadata;
        response
    }

    fn batch(&self, id: &str, mut rest: VecDeque<Vec<u8>>) -> QueryResponse {
        let first: Vec<_> = rest
            .drain(..rest.len().min(BATCH))
            .map(|result_bytes| QueryResultBytes { result_bytes })
            .collect();
        let has_more = !rest.is_empty();
        if has_more {
            self.queries.borrow_mut().insert(id.to_owned(), rest);
        }
        QueryResponse {
            results: first,
            has_more,
            id: id.to_owned(),
            metadata: Vec::new(),
        }
    }

    fn committed(&self, collection: &str, key: &str) -> Option<Vec<u8>> {
        self.ledger
            .borrow()
            .state
            .get(&(collection.to_owned(), key.to_owned()))
            .cloned()
    }
}

impl MockTx {
    /// The host's ERROR text for a refused `request`.
    fn refused(&self, request: &str, reason: &str) -> Error {
        Error::new(format!(
            "{request} failed: transaction ID: {}: {reason}",
            self.tx_id
        ))
    }

    /// What the host answers a request naming a private data collection: they are not
    /// supported yet (and never in Init).
    fn check_collection(&self, request: &str, collection: &str) -> Result<(), Error> {
        if collection.is_empty() {
            return Ok(());
        }
        if self.input.is_init {
            return Err(self.refused(request, refusals::PRIVATE_DATA_IN_INIT));
        }
        Err(self.refused(
            request,
            &format!(
                "{} (collection \"{collection}\")",
                refusals::PRIVATE_DATA_UNSUPPORTED
            ),
        ))
    }

    /// Fabric's rule: no write after a paginated query.
    fn check_writable(&self, request: &str) -> Result<(), Error> {
        if self.paginated.get() {
            return Err(self.refused(
                request,
                &format!(
                    "txid [{}]: unsuppored transaction. Transaction has already performed a \
                     paginated query. Writes are not allowed",
                    self.tx_id
                ),
            ));
        }
        self.wrote.set(true);
        Ok(())
    }

    /// Fabric's rule: no paginated query after a write; after one, no writes.
    fn begin_paginated(&self, request: &str) -> Result<(), Error> {
        if self.wrote.get() {
            return Err(self.refused(
                request,
                &format!(
                    "txid [{}]: unsuppored transaction. Paginated queries are supported only \
                     in a read-only transaction",
                    self.tx_id
                ),
            ));
        }
        self.paginated.set(true);
        Ok(())
    }
}

impl Backend for MockTx {
    fn get_state(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        self.check_collection("GET_STATE", collection)?;
        Ok(self.committed(collection, key).unwrap_or_default())
    }

    fn put_state(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        self.check_collection("PUT_STATE", collection)?;
        self.check_writable("PUT_STATE")?;
        // An empty value is a delete, as on the peer.
        let value = (!value.is_empty()).then(|| value.to_vec());
        self.writes
            .borrow_mut()
            .insert((collection.to_owned(), key.to_owned()), value);
        Ok(())
    }

    fn del_state(&self, collection: &str, key: &str) -> Result<(), Error> {
        self.check_collection("DEL_STATE", collection)?;
        self.check_writable("DEL_STATE")?;
        self.writes
            .borrow_mut()
            .insert((collection.to_owned(), key.to_owned()), None);
        Ok(())
    }

    fn get_private_data_hash(&self, collection: &str, _key: &str) -> Result<Vec<u8>, Error> {
        self.check_collection("GET_PRIVATE_DATA_HASH", collection)?;
        Err(self.refused(
            "GET_PRIVATE_DATA_HASH",
            refusals::PRIVATE_DATA_HASH_WITHOUT_COLLECTION,
        ))
    }

    fn purge_private_data(&self, collection: &str, _key: &str) -> Result<(), Error> {
        if collection.is_empty() {
            return Err(self.refused("PURGE_PRIVATE_DATA", refusals::PURGE_WITHOUT_COLLECTION));
        }
        self.check_collection("PURGE_PRIVATE_DATA", collection)
    }

    fn get_state_metadata(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<StateMetadataResult, Error> {
        self.check_collection("GET_STATE_METADATA", collection)?;
        let ledger = self.ledger.borrow();
        let entries = ledger
            .metadata
            .get(&(collection.to_owned(), key.to_owned()))
            .into_iter()
            .flatten()
            .map(|(metakey, value)| StateMetadata {
                metakey: metakey.clone(),
                value: value.clone(),
            })
            .collect();
        Ok(StateMetadataResult { entries })
    }

    fn put_state_metadata(
        &self,
        collection: &str,
        key: &str,
        metakey: &str,
        value: &[u8],
    ) -> Result<(), Error> {
        self.check_collection("PUT_STATE_METADATA", collection)?;
        self.check_writable("PUT_STATE_METADATA")?;
        // As on the peer, the key's metadata becomes exactly this one entry.
        self.metadata_writes.borrow_mut().insert(
            (collection.to_owned(), key.to_owned()),
            BTreeMap::from([(metakey.to_owned(), value.to_vec())]),
        );
        Ok(())
    }

    fn get_state_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error> {
        self.check_collection("GET_STATE_BY_RANGE", collection)?;
        // The peer's rules: a page size or a bookmark asks for a page, which starts at the
        // bookmark when there is one and holds at most the page size (any size when it
        // is not positive).
        let paginated = page_size != 0 || !bookmark.is_empty();
        if paginated {
            self.begin_paginated("GET_STATE_BY_RANGE")?;
        }
        let from = if bookmark.is_empty() { start } else { bookmark };
        let ledger = self.ledger.borrow();
        let mut keys = ledger
            .state
            .range((collection.to_owned(), from.to_owned())..)
            .take_while(|((c, k), _)| c == collection && (end.is_empty() || k.as_str() < end));
        let limit = usize::try_from(page_size).unwrap_or(0);
        let mut results = Vec::new();
        for ((_, key), value) in keys.by_ref() {
            if limit > 0 && results.len() == limit {
                break;
            }
            results.push(
                Kv {
                    namespace: ledger.name.clone(),
                    key: key.clone(),
                    value: value.clone(),
                }
                .encode_to_vec(),
            );
        }
        let metadata = if paginated {
            // The bookmark is the first key of the next page.
            let next = ledger
                .state
                .range((collection.to_owned(), from.to_owned())..)
                .take_while(|((c, k), _)| c == collection && (end.is_empty() || k.as_str() < end))
                .nth(results.len())
                .map(|((_, k), _)| k.clone())
                .unwrap_or_default();
            QueryResponseMetadata {
                fetched_records_count: i32::try_from(results.len()).unwrap_or(i32::MAX),
                bookmark: next,
            }
            .encode_to_vec()
        } else {
            Vec::new()
        };
        drop(ledger);
        Ok(self.open(results, metadata))
    }

    fn get_query_result(
        &self,
        collection: &str,
        _query: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error> {
        self.check_collection("GET_QUERY_RESULT", collection)?;
        if page_size != 0 || !bookmark.is_empty() {
            self.begin_paginated("GET_QUERY_RESULT")?;
        }
        Err(self.refused("GET_QUERY_RESULT", refusals::RICH_QUERIES_UNSUPPORTED))
    }

    fn query_state_next(&self, id: &str) -> Result<QueryResponse, Error> {
        let rest = self.queries.borrow_mut().remove(id);
        match rest {
            Some(rest) => Ok(self.batch(id, rest)),
            None => Err(Error::new(format!("query iterator {id} is not open"))),
        }
    }

    fn query_state_close(&self, id: &str) {
        self.queries.borrow_mut().remove(id);
    }

    fn get_history_for_key(&self, key: &str) -> Result<QueryResponse, Error> {
        let results = self
            .ledger
            .borrow()
            .history
            .get(key)
            .into_iter()
            .flatten()
            .map(Message::encode_to_vec)
            .collect();
        Ok(self.open(results, Vec::new()))
    }

    fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), Error> {
        *self.event.borrow_mut() = Some(ChaincodeEvent {
            chaincode_id: self.ledger.borrow().name.clone(),
            tx_id: self.tx_id.clone(),
            event_name: name.to_owned(),
            payload: payload.to_vec(),
        });
        Ok(())
    }

    fn invoke_chaincode(&self, target: &str, input: &ChaincodeInput) -> Result<Response, Error> {
        let name = target.split('/').next().unwrap_or(target);
        let peer = self.ledger.borrow().peers.get(name).cloned();
        let Some((stub, chaincode)) = peer else {
            return Err(Error::new(format!(
                "chaincode {name} is not registered with this MockStub (register_chaincode)"
            )));
        };
        Ok(stub.invoke(&chaincode, &input.args))
    }

    fn tx_field(&self, field: TxField) -> Vec<u8> {
        match field {
            TxField::TxId => self.tx_id.clone().into_bytes(),
            TxField::ChannelId => self.ledger.borrow().channel.clone().into_bytes(),
            TxField::SignedProposal => self.signed_proposal.clone(),
            TxField::Binding => {
                Sha256::digest([self.tx_id.as_bytes(), &self.ledger.borrow().certificate].concat())
                    .to_vec()
            }
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.ledger
            .borrow_mut()
            .logs
            .push((level, message.to_owned()));
    }
}
