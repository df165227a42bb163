//! Native chaincode: the same contract compiled for the machine and run as a chaincode
//! process that dials the peer, as Go chaincode does with `shim.Start` (feature `shim`).
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     cchost_sdk::shim::start(asset_transfer::chaincode)
//! }
//! ```
//!
//! The process REGISTERs as `CORE_CHAINCODE_ID_NAME`, waits for READY, then runs every
//! INIT or TRANSACTION the peer sends on a thread of its own, with a fresh [`Chaincode`]
//! as the wasm entry builds one per invocation. Each [`Stub`] call becomes the
//! `ChaincodeMessage` Fabric's shims send (the same messages cchost's wasm imports
//! send), and waits for the peer's RESPONSE or ERROR, routed back by channel and txid.
//! Fabric's dev mode runs it by hand:
//!
//! ```text
//! CORE_CHAINCODE_ID_NAME=asset:1.0 asset-transfer-native --peer.address 127.0.0.1:7052
//! ```
//!
//! TLS to the peer is not supported yet: `CORE_PEER_TLS_ENABLED=true` is refused.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cchost_abi::{LogLevel, TxField};
use cchost_proto::common::{ChannelHeader, Header, SignatureHeader};
use cchost_proto::protos::chaincode_message::Type;
use cchost_proto::protos::chaincode_support_client::ChaincodeSupportClient;
use cchost_proto::protos::{
    ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeSpec, DelState,
    GetHistoryForKey, GetQueryResult, GetState, GetStateByRange, GetStateMetadata, Proposal,
    PurgePrivateState, PutState, PutStateMetadata, QueryMetadata, QueryResponse, QueryStateClose,
    QueryStateNext, Response, SignedProposal, StateMetadata, StateMetadataResult,
};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::backend::Backend;
use crate::{Chaincode, Error, ResponseExt, Stub};

/// The largest message either side sends (Fabric's peer default, 100 MiB).
const MAX_MESSAGE: usize = 100 * 1024 * 1024;

/// The text a request gets when the stream ends before its answer.
const CLOSED: &str = "the peer closed the chaincode stream";

/// How long the process waits for READY after REGISTER (Fabric's default
/// `chaincode.startuptimeout`): a peer that refused the registration answers nothing,
/// and the process ends instead of lingering.
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the chaincode process connects and who it says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimConfig {
    /// The peer's chaincode listener, `HOST:PORT`.
    pub peer_address: String,
    /// The name it registers as: the package id (or `name:version` in dev mode).
    pub chaincode_id: String,
}

impl ShimConfig {
    /// Reads the settings Fabric gives a chaincode process: `--peer.address` (or Go's
    /// `-peer.address`, or `CORE_PEER_ADDRESS`), `CORE_CHAINCODE_ID_NAME` (or
    /// `--chaincode-id-name`). `env` looks a variable up.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let (mut peer_address, mut chaincode_id) = (None, None);
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let slot = match flag.trim_start_matches('-') {
                "peer.address" => &mut peer_address,
                "chaincode-id-name" => &mut chaincode_id,
                _ => {
                    return Err(Error::new(format!(
                        "unknown argument {arg:?}: expected --peer.address HOST:PORT or \
                         --chaincode-id-name NAME"
                    )));
                }
            };
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .ok_or_else(|| Error::new(format!("{flag} needs a value")))?,
            };
            *slot = Some(value);
        }
        if env("CORE_PEER_TLS_ENABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(Error::new(
                "CORE_PEER_TLS_ENABLED=true: TLS to the peer is not supported yet by the native shim",
            ));
        }
        let peer_address = peer_address
            .or_else(|| env("CORE_PEER_ADDRESS"))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Error::new("no peer address: pass --peer.address or set CORE_PEER_ADDRESS")
            })?;
        let chaincode_id = chaincode_id
            .or_else(|| env("CORE_CHAINCODE_ID_NAME"))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Error::new(
                    "no chaincode id: set CORE_CHAINCODE_ID_NAME or pass --chaincode-id-name",
                )
            })?;
        Ok(Self {
            peer_address,
            chaincode_id,
        })
    }
}

/// Runs `chaincode` as a chaincode process with the settings of this process's arguments
/// and environment ([`ShimConfig::from_args`]) until the peer ends the stream; what
/// went wrong is printed on stderr and the exit code is 1. Call it from `main`.
pub fn start(chaincode: fn() -> Chaincode) -> ExitCode {
    let config = match ShimConfig::from_args(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(&config, chaincode));
    // Transactions still running learn that the stream is gone from their next request.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e}", config.chaincode_id);
            ExitCode::FAILURE
        }
    }
}

/// Where a session stands with the peer (the shims' states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Established,
    Ready,
}

/// Connects to the peer, registers and serves until the peer ends the stream (an
/// error: a chaincode process lives as long as its stream).
pub async fn serve(config: &ShimConfig, chaincode: fn() -> Chaincode) -> Result<(), Error> {
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://{}", config.peer_address))
            .map_err(|e| Error::new(format!("peer address {:?}: {e}", config.peer_address)))?;
    let channel = endpoint.connect().await.map_err(|e| {
        Error::new(format!(
            "connecting to the peer at {}: {e}",
            config.peer_address
        ))
    })?;
    let mut client = ChaincodeSupportClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let (outbound, requests) = mpsc::channel(1024);
    let register = ChaincodeMessage {
        r#type: Type::Register.into(),
        payload: ChaincodeId {
            name: config.chaincode_id.clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        ..Default::default()
    };
    outbound
        .send(register)
        .await
        .map_err(|_| Error::new(CLOSED))?;
    let mut inbound = client
        .register(ReceiverStream::new(requests))
        .await
        .map_err(|e| Error::new(format!("opening the chaincode stream: {}", e.message())))?
        .into_inner();
    let line = Arc::new(Line {
        outbound,
        waiting: Mutex::default(),
        in_progress: Mutex::default(),
        chaincode_id: config.chaincode_id.clone(),
    });
    let result = session(&mut inbound, &line, chaincode).await;
    line.close();
    result
}

async fn session(
    inbound: &mut tonic::Streaming<ChaincodeMessage>,
    line: &Arc<Line>,
    chaincode: fn() -> Chaincode,
) -> Result<(), Error> {
    let mut state = State::Created;
    let unready = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let next = inbound.message();
        let next = if state == State::Ready {
            next.await
        } else {
            tokio::time::timeout_at(unready, next).await.map_err(|_| {
                Error::new(format!(
                    "the peer did not make the chaincode READY within {READY_TIMEOUT:?} of REGISTER"
                ))
            })?
        };
        let message = match next {
            Ok(Some(message)) => message,
            Ok(None) => return Err(Error::new(CLOSED)),
            Err(e) => {
                return Err(Error::new(format!(
                    "the chaincode stream failed: {}",
                    e.message()
                )));
            }
        };
        match (message.r#type(), state) {
            (Type::Registered, State::Created) => state = State::Established,
            (Type::Ready, State::Established) => state = State::Ready,
            (Type::Error, State::Created | State::Established) => {
                return Err(Error::new(format!(
                    "the peer refused the registration: {}",
                    String::from_utf8_lossy(&message.payload)
                )));
            }
            // Answered when there is room; a full stream is alive anyway.
            (Type::Keepalive, _) => {
                let _ = line.outbound.try_send(message);
            }
            (Type::Response | Type::Error, State::Ready) => line.answer(message),
            (Type::Init | Type::Transaction, State::Ready) => {
                let key = (message.channel_id.clone(), message.txid.clone());
                if !line.in_progress().insert(key) {
                    let text = format!(
                        "transaction {} on channel {} is already in progress",
                        message.txid, message.channel_id
                    );
                    let _ = line.outbound.try_send(error(&message, text));
                    continue;
                }
                let line = Arc::clone(line);
                // The contract calls the peer synchronously: it runs on a thread of its
                // own, which waits for each answer.
                tokio::task::spawn_blocking(move || {
                    let key = (message.channel_id.clone(), message.txid.clone());
                    let answer = execute(chaincode, message, &line);
                    let _ = line.outbound.blocking_send(answer);
                    line.in_progress().remove(&key);
                });
            }
            (other, state) => {
                eprintln!(
                    "{}: unexpected {} in state {state:?}",
                    line.chaincode_id,
                    other.as_str_name()
                );
                if matches!(other, Type::Init | Type::Transaction) {
                    let text = format!(
                        "cannot handle {} while in state {state:?}",
                        other.as_str_name()
                    );
                    let _ = line.outbound.try_send(error(&message, text));
                }
            }
        }
    }
}

type TxKey = (String, String);

/// The stream to the peer, the requests waiting for its answers and the transactions in
/// flight, both by channel and txid.
struct Line {
    outbound: mpsc::Sender<ChaincodeMessage>,
    waiting: Mutex<HashMap<TxKey, oneshot::Sender<ChaincodeMessage>>>,
    in_progress: Mutex<HashSet<TxKey>>,
    chaincode_id: String,
}

impl Line {
    fn waiting(&self) -> MutexGuard<'_, HashMap<TxKey, oneshot::Sender<ChaincodeMessage>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn in_progress(&self) -> MutexGuard<'_, HashSet<TxKey>> {
        self.in_progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a request and blocks until its answer. A transaction has one request in
    /// flight at a time (its contract waits for each), so channel and txid name it.
    fn request(&self, message: ChaincodeMessage) -> Result<ChaincodeMessage, Error> {
        let key = (message.channel_id.clone(), message.txid.clone());
        let (answer, answered) = oneshot::channel();
        self.waiting().insert(key.clone(), answer);
        if self.outbound.blocking_send(message).is_err() {
            self.waiting().remove(&key);
            return Err(Error::new(CLOSED));
        }
        answered.blocking_recv().map_err(|_| Error::new(CLOSED))
    }

    /// Hands the peer's RESPONSE or ERROR to the request waiting for it.
    fn answer(&self, message: ChaincodeMessage) {
        let key = (message.channel_id.clone(), message.txid.clone());
        if let Some(waiter) = self.waiting().remove(&key) {
            let _ = waiter.send(message);
        }
    }

    /// Fails every waiting request: the stream is gone.
    fn close(&self) {
        self.waiting().clear();
    }
}

/// Runs one INIT or TRANSACTION: COMPLETED with the contract's response and event, or
/// ERROR when the message cannot be run.
fn execute(
    chaincode: fn() -> Chaincode,
    message: ChaincodeMessage,
    line: &Arc<Line>,
) -> ChaincodeMessage {
    let input = match ChaincodeInput::decode(message.payload.as_slice()) {
        Ok(input) => input,
        Err(e) => return error(&message, format!("malformed ChaincodeInput: {e}")),
    };
    let binding = match &message.proposal {
        None => Vec::new(),
        Some(signed) => match binding(signed) {
            Ok(binding) => binding,
            Err(e) => return error(&message, format!("the transaction's proposal: {e}")),
        },
    };
    let backend = Rc::new(ShimBackend {
        line: Arc::clone(line),
        txid: message.txid.clone(),
        channel: message.channel_id.clone(),
        proposal: message.proposal.clone(),
        binding,
        event: RefCell::new(None),
    });
    let stub = Stub::new(input, Rc::clone(&backend) as Rc<dyn Backend>);
    let init = message.r#type() == Type::Init;
    // A panic answers status 500 with its message, as in the wasm build.
    let response = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let chaincode = chaincode();
        if init {
            chaincode.init(stub)
        } else {
            chaincode.invoke(stub)
        }
    }))
    .unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the contract panicked".to_owned());
        Response::error(text)
    });
    ChaincodeMessage {
        r#type: Type::Completed.into(),
        payload: response.encode_to_vec(),
        txid: message.txid,
        channel_id: message.channel_id,
        chaincode_event: backend.event.borrow_mut().take(),
        ..Default::default()
    }
}

/// `sha256(nonce ‖ creator ‖ LE64(epoch))` of a signed proposal, like the shims' binding.
fn binding(signed: &SignedProposal) -> Result<Vec<u8>, prost::DecodeError> {
    let proposal = Proposal::decode(signed.proposal_bytes.as_slice())?;
    let header = Header::decode(proposal.header.as_slice())?;
    let signature = SignatureHeader::decode(header.signature_header.as_slice())?;
    let channel = ChannelHeader::decode(header.channel_header.as_slice())?;
    let mut hash = Sha256::new();
    hash.update(&signature.nonce);
    hash.update(&signature.creator);
    hash.update(channel.epoch.to_le_bytes());
    Ok(hash.finalize().to_vec())
}

/// An ERROR answering `message`.
fn error(message: &ChaincodeMessage, text: String) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: Type::Error.into(),
        payload: text.into_bytes(),
        txid: message.txid.clone(),
        channel_id: message.channel_id.clone(),
        ..Default::default()
    }
}

/// Encoded `QueryMetadata` when the query is paginated, else nothing.
fn query_metadata(page_size: i32, bookmark: &str) -> Vec<u8> {
    if page_size == 0 && bookmark.is_empty() {
        return Vec::new();
    }
    QueryMetadata {
        page_size,
        bookmark: bookmark.to_owned(),
    }
    .encode_to_vec()
}

/// One transaction's [`Backend`]: every call a request on the stream.
struct ShimBackend {
    line: Arc<Line>,
    txid: String,
    channel: String,
    proposal: Option<SignedProposal>,
    binding: Vec<u8>,
    event: RefCell<Option<ChaincodeEvent>>,
}

impl ShimBackend {
    /// Sends a request of `ty` for this transaction: RESPONSE's payload, or ERROR's
    /// text as the error.
    fn call(&self, ty: Type, payload: Vec<u8>) -> Result<Vec<u8>, Error> {
        let reply = self.line.request(ChaincodeMessage {
            r#type: ty.into(),
            payload,
            txid: self.txid.clone(),
            channel_id: self.channel.clone(),
            ..Default::default()
        })?;
        match reply.r#type() {
            Type::Response => Ok(reply.payload),
            Type::Error => Err(Error::new(
                String::from_utf8_lossy(&reply.payload).into_owned(),
            )),
            other => Err(Error::new(format!(
                "unexpected {} from the peer",
                other.as_str_name()
            ))),
        }
    }

    fn query(&self, ty: Type, payload: Vec<u8>) -> Result<QueryResponse, Error> {
        Ok(QueryResponse::decode(self.call(ty, payload)?.as_slice())?)
    }
}

impl Backend for ShimBackend {
    fn get_state(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        let request = GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        self.call(Type::GetState, request.encode_to_vec())
    }

    fn put_state(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        let request = PutState {
            key: key.to_owned(),
            value: value.to_vec(),
            collection: collection.to_owned(),
        };
        self.call(Type::PutState, request.encode_to_vec()).map(drop)
    }

    fn del_state(&self, collection: &str, key: &str) -> Result<(), Error> {
        let request = DelState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        self.call(Type::DelState, request.encode_to_vec()).map(drop)
    }

    fn get_private_data_hash(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        let request = GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        self.call(Type::GetPrivateDataHash, request.encode_to_vec())
    }

    fn purge_private_data(&self, collection: &str, key: &str) -> Result<(), Error> {
        let request = PurgePrivateState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        self.call(Type::PurgePrivateData, request.encode_to_vec())
            .map(drop)
    }

    fn get_state_metadata(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<StateMetadataResult, Error> {
        let request = GetStateMetadata {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        let reply = self.call(Type::GetStateMetadata, request.encode_to_vec())?;
        Ok(StateMetadataResult::decode(reply.as_slice())?)
    }

    fn put_state_metadata(
        &self,
        collection: &str,
        key: &str,
        metakey: &str,
        value: &[u8],
    ) -> Result<(), Error> {
        let request = PutStateMetadata {
            key: key.to_owned(),
            collection: collection.to_owned(),
            metadata: Some(StateMetadata {
                metakey: metakey.to_owned(),
                value: value.to_vec(),
            }),
        };
        self.call(Type::PutStateMetadata, request.encode_to_vec())
            .map(drop)
    }

    fn get_state_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error> {
        let request = GetStateByRange {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            collection: collection.to_owned(),
            metadata: query_metadata(page_size, bookmark),
        };
        self.query(Type::GetStateByRange, request.encode_to_vec())
    }

    fn get_query_result(
        &self,
        collection: &str,
        query: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error> {
        let request = GetQueryResult {
            query: query.to_owned(),
            collection: collection.to_owned(),
            metadata: query_metadata(page_size, bookmark),
        };
        self.query(Type::GetQueryResult, request.encode_to_vec())
    }

    fn query_state_next(&self, id: &str) -> Result<QueryResponse, Error> {
        let request = QueryStateNext { id: id.to_owned() };
        self.query(Type::QueryStateNext, request.encode_to_vec())
    }

    fn query_state_close(&self, id: &str) {
        // Errors are ignored, as the shims do.
        let request = QueryStateClose { id: id.to_owned() };
        let _ = self.call(Type::QueryStateClose, request.encode_to_vec());
    }

    fn get_history_for_key(&self, key: &str) -> Result<QueryResponse, Error> {
        let request = GetHistoryForKey {
            key: key.to_owned(),
        };
        self.query(Type::GetHistoryForKey, request.encode_to_vec())
    }

    fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), Error> {
        *self.event.borrow_mut() = Some(ChaincodeEvent {
            event_name: name.to_owned(),
            payload: payload.to_vec(),
            ..Default::default()
        });
        Ok(())
    }

    fn invoke_chaincode(&self, target: &str, input: &ChaincodeInput) -> Result<Response, Error> {
        let spec = ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name: target.to_owned(),
                ..Default::default()
            }),
            input: Some(input.clone()),
            ..Default::default()
        };
        let reply = self.call(Type::InvokeChaincode, spec.encode_to_vec())?;
        // The callee's own answer: COMPLETED with its response, or ERROR with its text.
        let message = ChaincodeMessage::decode(reply.as_slice())?;
        if message.r#type() == Type::Completed {
            Ok(Response::decode(message.payload.as_slice())?)
        } else {
            Err(Error::new(
                String::from_utf8_lossy(&message.payload).into_owned(),
            ))
        }
    }

    fn tx_field(&self, field: TxField) -> Vec<u8> {
        match field {
            TxField::TxId => self.txid.clone().into_bytes(),
            TxField::ChannelId => self.channel.clone().into_bytes(),
            TxField::SignedProposal => self
                .proposal
                .as_ref()
                .map(Message::encode_to_vec)
                .unwrap_or_default(),
            TxField::Binding => self.binding.clone(),
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        eprintln!(
            "[{level:?}] {} {}: {message}",
            self.line.chaincode_id, self.txid
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str], env: &[(&str, &str)]) -> Result<ShimConfig, Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ShimConfig::from_args(args.iter().map(|a| (*a).to_owned()), |k| {
            env.get(k).cloned()
        })
    }

    #[test]
    fn flags_win_over_the_environment_in_every_spelling() {
        let env = [
            ("CORE_PEER_ADDRESS", "env:1"),
            ("CORE_CHAINCODE_ID_NAME", "cc:env"),
        ];
        let expected = |address: &str, id: &str| ShimConfig {
            peer_address: address.to_owned(),
            chaincode_id: id.to_owned(),
        };
        assert_eq!(config(&[], &env), Ok(expected("env:1", "cc:env")));
        assert_eq!(
            config(&["--peer.address", "a:2"], &env),
            Ok(expected("a:2", "cc:env"))
        );
        assert_eq!(
            config(
                &["-peer.address=b:3", "--chaincode-id-name", "cc:flag"],
                &env
            ),
            Ok(expected("b:3", "cc:flag"))
        );
    }

    #[test]
    fn missing_settings_unknown_flags_and_tls_are_refused_with_what_to_do() {
        let id = [("CORE_CHAINCODE_ID_NAME", "cc:1")];
        assert_eq!(
            config(&[], &id).unwrap_err().0,
            "no peer address: pass --peer.address or set CORE_PEER_ADDRESS"
        );
        assert_eq!(
            config(&["--peer.address", "a:1"], &[]).unwrap_err().0,
            "no chaincode id: set CORE_CHAINCODE_ID_NAME or pass --chaincode-id-name"
        );
        assert_eq!(
            config(&["--peer.address"], &id).unwrap_err().0,
            "--peer.address needs a value"
        );
        assert_eq!(
            config(&["--verbose"], &id).unwrap_err().0,
            "unknown argument \"--verbose\": expected --peer.address HOST:PORT or --chaincode-id-name NAME"
        );
        let tls = [
            ("CORE_CHAINCODE_ID_NAME", "cc:1"),
            ("CORE_PEER_TLS_ENABLED", "true"),
        ];
        assert_eq!(
            config(&["--peer.address", "a:1"], &tls).unwrap_err().0,
            "CORE_PEER_TLS_ENABLED=true: TLS to the peer is not supported yet by the native shim"
        );
    }

    /// `Panic` panics; `Event` sets an event and answers "ok". Neither asks the peer
    /// anything.
    struct Faulty;

    impl crate::Contract for Faulty {
        fn name(&self) -> &'static str {
            "Faulty"
        }

        fn transactions(&self) -> Vec<crate::contract::TransactionInfo> {
            Vec::new()
        }

        fn call(
            &self,
            ctx: &crate::Context,
            function: &str,
            _args: &[Vec<u8>],
        ) -> Option<Result<Vec<u8>, Error>> {
            match function {
                "Panic" => panic!("Panic was called"),
                "Event" => Some(ctx.stub.set_event("Done", b"1").map(|()| b"ok".to_vec())),
                _ => None,
            }
        }
    }

    fn faulty() -> Chaincode {
        Chaincode::new().contract(Faulty)
    }

    fn transaction(txid: &str, function: &str) -> ChaincodeMessage {
        ChaincodeMessage {
            r#type: Type::Transaction.into(),
            txid: txid.to_owned(),
            channel_id: "ch".to_owned(),
            payload: ChaincodeInput {
                args: vec![function.as_bytes().to_vec()],
                ..Default::default()
            }
            .encode_to_vec(),
            ..Default::default()
        }
    }

    /// A line to a peer that is never asked anything.
    fn line() -> Arc<Line> {
        let (outbound, _requests) = mpsc::channel(1);
        Arc::new(Line {
            outbound,
            waiting: Mutex::default(),
            in_progress: Mutex::default(),
            chaincode_id: "cc:1".to_owned(),
        })
    }

    #[test]
    fn a_panicking_transaction_completes_with_500_and_its_message_and_the_next_runs() {
        let line = line();
        let answer = execute(faulty, transaction("t1", "Panic"), &line);
        assert_eq!(answer.r#type(), Type::Completed);
        assert_eq!(
            (answer.txid.as_str(), answer.channel_id.as_str()),
            ("t1", "ch")
        );
        assert_eq!(
            Response::decode(answer.payload.as_slice()).unwrap(),
            Response::error("Panic was called")
        );
        assert_eq!(answer.chaincode_event, None);

        let answer = execute(faulty, transaction("t2", "Event"), &line);
        assert_eq!(answer.r#type(), Type::Completed);
        assert_eq!(
            Response::decode(answer.payload.as_slice()).unwrap(),
            Response::ok("ok")
        );
        assert_eq!(
            answer.chaincode_event,
            Some(ChaincodeEvent {
                event_name: "Done".to_owned(),
                payload: b"1".to_vec(),
                ..Default::default()
            })
        );
    }

    #[test]
    fn an_undecodable_input_is_answered_with_error() {
        let line = line();
        let mut message = transaction("t3", "Event");
        message.payload = vec![0x0a, 0x05, 1];
        let answer = execute(faulty, message, &line);
        assert_eq!(answer.r#type(), Type::Error);
        assert!(
            String::from_utf8(answer.payload)
                .unwrap()
                .starts_with("malformed ChaincodeInput: "),
        );
    }

    #[test]
    fn the_binding_is_sha256_of_nonce_creator_and_little_endian_epoch() {
        let header = Header {
            channel_header: ChannelHeader {
                epoch: 1,
                ..Default::default()
            }
            .encode_to_vec(),
            signature_header: SignatureHeader {
                creator: b"c".to_vec(),
                nonce: b"n".to_vec(),
            }
            .encode_to_vec(),
        };
        let signed = SignedProposal {
            proposal_bytes: Proposal {
                header: header.encode_to_vec(),
                ..Default::default()
            }
            .encode_to_vec(),
            signature: Vec::new(),
        };
        let expected = Sha256::digest(b"nc\x01\x00\x00\x00\x00\x00\x00\x00").to_vec();
        assert_eq!(binding(&signed).unwrap(), expected);
    }
}
