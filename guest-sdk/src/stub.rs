//! Safe wrappers over the imports, and the entry glue.

use cchost_abi::{LogLevel, Status, TxField};
use cchost_proto::protos::{
    ChaincodeInput, ChaincodeMessage, QueryResponse, Response, SignedProposal, StateMetadataResult,
    chaincode_message,
};
use cchost_proto::queryresult::{KeyModification, Kv};
use prost::Message;

use crate::{Error, ResponseExt, sys};

/// Copies the pending result of `len` bytes.
fn read_pending(len: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is `len` writable bytes of this module's memory.
    let status = unsafe { sys::result_read(buf.as_mut_ptr(), len as u32) };
    match Status::from_raw(i64::from(status)) {
        Some(Status::Ok) => Ok(buf),
        _ => Err(Error(format!("result_read failed with status {status}"))),
    }
}

/// The return of a byte-producing import: a length to copy, `NotFound` (no bytes), or
/// `Failed` with the peer's error text pending.
fn call(raw: i64) -> Result<Vec<u8>, Error> {
    if let Ok(len) = usize::try_from(raw) {
        return read_pending(len);
    }
    match Status::from_raw(raw) {
        Some(Status::NotFound) => Ok(Vec::new()),
        Some(Status::Failed) => {
            // SAFETY: result_len takes no pointers.
            let len = usize::try_from(unsafe { sys::result_len() }).unwrap_or(0);
            let text = read_pending(len)?;
            Err(Error(String::from_utf8_lossy(&text).into_owned()))
        }
        _ => Err(Error(format!("unexpected status {raw} from the host"))),
    }
}

fn ptr(bytes: &[u8]) -> (*const u8, u32) {
    (bytes.as_ptr(), bytes.len() as u32)
}

/// One invocation's view of the ledger and the transaction, like Fabric's
/// `ChaincodeStubInterface`.
#[derive(Debug)]
pub struct Stub {
    input: ChaincodeInput,
}

impl Stub {
    /// The invocation's arguments; the first is the function name.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.input.args
    }

    /// Argument `i` (empty if missing).
    pub fn arg(&self, i: usize) -> &[u8] {
        self.input.args.get(i).map_or(&[], Vec::as_slice)
    }

    /// Argument `i` as text (lossy UTF-8, empty if missing).
    pub fn string_arg(&self, i: usize) -> String {
        String::from_utf8_lossy(self.arg(i)).into_owned()
    }

    /// The function name: the first argument.
    pub fn function(&self) -> String {
        self.string_arg(0)
    }

    /// Whether this is the chaincode's Init.
    pub fn is_init(&self) -> bool {
        self.input.is_init
    }

    /// The committed value of `key` (empty if absent), like `GetState`.
    pub fn get_state(&self, key: &str) -> Result<Vec<u8>, Error> {
        self.get_private_data("", key)
    }

    /// Writes `value` to `key`, like `PutState` (an empty value deletes, as in Fabric).
    pub fn put_state(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.put_private_data("", key, value)
    }

    /// Deletes `key`, like `DelState`.
    pub fn del_state(&self, key: &str) -> Result<(), Error> {
        self.del_private_data("", key)
    }

    /// `GetPrivateData` (collection non-empty) or `GetState` (empty).
    pub fn get_private_data(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        call(unsafe { sys::get_state(c, cl, k, kl) })
    }

    /// `PutPrivateData` or `PutState`.
    pub fn put_private_data(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        let ((c, cl), (k, kl), (v, vl)) =
            (ptr(collection.as_bytes()), ptr(key.as_bytes()), ptr(value));
        // SAFETY: all regions are live borrowed slices.
        call(unsafe { sys::put_state(c, cl, k, kl, v, vl) }).map(drop)
    }

    /// `DelPrivateData` or `DelState`.
    pub fn del_private_data(&self, collection: &str, key: &str) -> Result<(), Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        call(unsafe { sys::del_state(c, cl, k, kl) }).map(drop)
    }

    /// `GetPrivateDataHash`.
    pub fn get_private_data_hash(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        call(unsafe { sys::get_private_data_hash(c, cl, k, kl) })
    }

    /// `PurgePrivateData`.
    pub fn purge_private_data(&self, collection: &str, key: &str) -> Result<(), Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        call(unsafe { sys::purge_private_data(c, cl, k, kl) }).map(drop)
    }

    /// The state metadata of `key` (name, value), like `GetStateValidationParameter`.
    pub fn get_state_metadata(&self, key: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let ((c, cl), (k, kl)) = (ptr(b""), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        let bytes = call(unsafe { sys::get_state_metadata(c, cl, k, kl) })?;
        let result = StateMetadataResult::decode(bytes.as_slice())?;
        Ok(result
            .entries
            .into_iter()
            .map(|e| (e.metakey, e.value))
            .collect())
    }

    /// Sets one metadata entry of `key`, like `SetStateValidationParameter`.
    pub fn put_state_metadata(&self, key: &str, metakey: &str, value: &[u8]) -> Result<(), Error> {
        let ((c, cl), (k, kl), (m, ml), (v, vl)) = (
            ptr(b""),
            ptr(key.as_bytes()),
            ptr(metakey.as_bytes()),
            ptr(value),
        );
        // SAFETY: all regions are live borrowed slices.
        call(unsafe { sys::put_state_metadata(c, cl, k, kl, m, ml, v, vl) }).map(drop)
    }

    /// Keys in `[start, end)` (empty `end`: no bound), fetched from the peer in batches.
    pub fn get_state_by_range(&self, start: &str, end: &str) -> Result<RangeIter, Error> {
        // Like the Fabric shims: an empty start key skips composite keys.
        let start = if start.is_empty() { "\u{1}" } else { start };
        let response = self.range_call(start, end, 0, "")?;
        Ok(RangeIter(Batches::new(response)))
    }

    /// One page of `[start, end)` from `bookmark`, like `GetStateByRangeWithPagination`:
    /// the keys and the bookmark of the next page (empty at the end).
    pub fn get_state_by_range_with_pagination(
        &self,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<(Vec<Kv>, String), Error> {
        let start = if start.is_empty() { "\u{1}" } else { start };
        let response = self.range_call(start, end, page_size, bookmark)?;
        let metadata =
            cchost_proto::protos::QueryResponseMetadata::decode(response.metadata.as_slice())?;
        let kvs = response
            .results
            .iter()
            .map(|r| Kv::decode(r.result_bytes.as_slice()))
            .collect::<Result<Vec<_>, _>>()?;
        close(&response.id);
        Ok((kvs, metadata.bookmark))
    }

    fn range_call(
        &self,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error> {
        let ((c, cl), (s, sl), (e, el), (b, bl)) = (
            ptr(b""),
            ptr(start.as_bytes()),
            ptr(end.as_bytes()),
            ptr(bookmark.as_bytes()),
        );
        // SAFETY: all regions are live borrowed slices.
        let bytes =
            call(unsafe { sys::get_state_by_range(c, cl, s, sl, e, el, page_size, b, bl) })?;
        Ok(QueryResponse::decode(bytes.as_slice())?)
    }

    /// Every committed modification of `key`, newest first, like `GetHistoryForKey`.
    pub fn get_history_for_key(&self, key: &str) -> Result<HistoryIter, Error> {
        let (k, kl) = ptr(key.as_bytes());
        // SAFETY: the region is a live borrowed slice.
        let bytes = call(unsafe { sys::get_history_for_key(k, kl) })?;
        Ok(HistoryIter(Batches::new(QueryResponse::decode(
            bytes.as_slice(),
        )?)))
    }

    /// Sets the transaction's event (the last one set wins), like `SetEvent`.
    pub fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), Error> {
        let ((n, nl), (p, pl)) = (ptr(name.as_bytes()), ptr(payload));
        // SAFETY: both regions are live borrowed slices.
        let status = unsafe { sys::set_event(n, nl, p, pl) };
        match Status::from_raw(i64::from(status)) {
            Some(Status::Ok) => Ok(()),
            _ => Err(Error(format!("set_event failed with status {status}"))),
        }
    }

    /// Runs `args` on chaincode `name` (on `channel`, or this channel if empty) within
    /// this transaction, like `InvokeChaincode`.
    pub fn invoke_chaincode(
        &self,
        name: &str,
        args: &[&[u8]],
        channel: &str,
    ) -> Result<Response, Error> {
        let target = if channel.is_empty() {
            name.to_owned()
        } else {
            format!("{name}/{channel}")
        };
        let input = ChaincodeInput {
            args: args.iter().map(|a| a.to_vec()).collect(),
            ..Default::default()
        }
        .encode_to_vec();
        let ((t, tl), (i, il)) = (ptr(target.as_bytes()), ptr(&input));
        // SAFETY: both regions are live borrowed slices.
        let bytes = call(unsafe { sys::invoke_chaincode(t, tl, i, il) })?;
        let message = ChaincodeMessage::decode(bytes.as_slice())?;
        if message.r#type() == chaincode_message::Type::Completed {
            Ok(Response::decode(message.payload.as_slice())?)
        } else {
            Err(Error(
                String::from_utf8_lossy(&message.payload).into_owned(),
            ))
        }
    }

    fn tx_field(&self, field: TxField) -> Vec<u8> {
        // SAFETY: tx_context takes no pointers.
        call(unsafe { sys::tx_context(field as u32) }).unwrap_or_default()
    }

    /// The transaction id.
    pub fn tx_id(&self) -> String {
        String::from_utf8_lossy(&self.tx_field(TxField::TxId)).into_owned()
    }

    /// The channel id.
    pub fn channel_id(&self) -> String {
        String::from_utf8_lossy(&self.tx_field(TxField::ChannelId)).into_owned()
    }

    /// The client's signed proposal (timestamp, creator and transient map are inside).
    pub fn signed_proposal(&self) -> Result<SignedProposal, Error> {
        Ok(SignedProposal::decode(
            self.tx_field(TxField::SignedProposal).as_slice(),
        )?)
    }

    /// `sha256(nonce ‖ creator ‖ epoch)`, like `GetBinding`.
    pub fn binding(&self) -> Vec<u8> {
        self.tx_field(TxField::Binding)
    }

    /// Logs through the host, tagged with chaincode and txid.
    pub fn log(&self, level: LogLevel, message: &str) {
        let (p, l) = ptr(message.as_bytes());
        // SAFETY: the region is a live borrowed slice.
        unsafe { sys::log(level as u32, p, l) };
    }
}

fn close(id: &str) {
    let (p, l) = ptr(id.as_bytes());
    // SAFETY: the region is a live borrowed slice. Fabric answers CLOSE for any id.
    let _ = call(unsafe { sys::query_state_close(p, l) });
}

/// Batches of query results, fetched with QUERY_STATE_NEXT and always closed (as the Node
/// shim does).
#[derive(Debug)]
struct Batches {
    id: String,
    results: std::vec::IntoIter<Vec<u8>>,
    has_more: bool,
}

impl Batches {
    fn new(response: QueryResponse) -> Self {
        Self {
            id: response.id,
            results: response
                .results
                .into_iter()
                .map(|r| r.result_bytes)
                .collect::<Vec<_>>()
                .into_iter(),
            has_more: response.has_more,
        }
    }

    fn next_bytes(&mut self) -> Option<Result<Vec<u8>, Error>> {
        if let Some(bytes) = self.results.next() {
            return Some(Ok(bytes));
        }
        if !self.has_more {
            return None;
        }
        let (p, l) = ptr(self.id.as_bytes());
        // SAFETY: the region is a live borrowed slice.
        let next = call(unsafe { sys::query_state_next(p, l) })
            .and_then(|bytes| Ok(QueryResponse::decode(bytes.as_slice())?));
        match next {
            Ok(response) => {
                *self = Self::new(QueryResponse {
                    id: std::mem::take(&mut self.id),
                    ..response
                });
                self.results.next().map(Ok)
            }
            Err(e) => {
                self.has_more = false;
                Some(Err(e))
            }
        }
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        close(&self.id);
    }
}

/// The results of a range query.
#[derive(Debug)]
pub struct RangeIter(Batches);

impl Iterator for RangeIter {
    type Item = Result<Kv, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.0
                .next_bytes()?
                .and_then(|b| Ok(Kv::decode(b.as_slice())?)),
        )
    }
}

/// The results of a history query.
#[derive(Debug)]
pub struct HistoryIter(Batches);

impl Iterator for HistoryIter {
    type Item = Result<KeyModification, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.0
                .next_bytes()?
                .and_then(|b| Ok(KeyModification::decode(b.as_slice())?)),
        )
    }
}

/// Entry glue behind [`chaincode!`](crate::chaincode): reads the input, runs `f`, sets the
/// response.
#[doc(hidden)]
pub fn __entry(input_len: u32, f: fn(&Stub) -> Response) -> i32 {
    let mut input = vec![0u8; input_len as usize];
    // SAFETY: `input` is `input_len` writable bytes.
    let status = unsafe { sys::input_read(input.as_mut_ptr(), input_len) };
    if status != Status::Ok as i32 {
        return status;
    }
    let response = match ChaincodeInput::decode(input.as_slice()) {
        Ok(input) => f(&Stub { input }),
        Err(e) => Response::error(format!("malformed ChaincodeInput: {e}")),
    };
    let bytes = response.encode_to_vec();
    // SAFETY: `bytes` is a live borrowed slice.
    unsafe { sys::set_response(bytes.as_ptr(), bytes.len() as u32) }
}

/// Exports the ABI marker and the entry points for `init` and `invoke`, each a
/// `fn(&Stub) -> Response`.
#[macro_export]
macro_rules! chaincode {
    (init = $init:path, invoke = $invoke:path $(,)?) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn cchost_abi_v1() {}

        #[unsafe(no_mangle)]
        pub extern "C" fn cchost_init(input_len: u32) -> i32 {
            $crate::__entry(input_len, $init)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn cchost_invoke(input_len: u32) -> i32 {
            $crate::__entry(input_len, $invoke)
        }
    };
}
