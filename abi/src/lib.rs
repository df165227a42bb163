//! The ABI between cchost and chaincode compiled to `wasm32-wasip1`, defined once for
//! both sides: the host's linker and validator and the guest SDK's one `extern "C"` block
//! use these names, codes and limits.
//!
//! # Shape
//!
//! - The guest exports [`ABI_MARKER`] (a function that is never called) and the entry
//!   points [`ENTRY_INIT`] and [`ENTRY_INVOKE`]: `fn(input_len: u32) -> i32`. The guest
//!   pulls its `ChaincodeInput` (protobuf) with [`imports::INPUT_READ`], runs, sets its
//!   `Response` (protobuf) with [`imports::SET_RESPONSE`], and returns
//!   [`Status::Ok`]. No allocator is exported: the guest owns its memory.
//! - Every other import is a shim operation in module [`IMPORT_MODULE`]. Bytes cross linear
//!   memory as `(ptr: u32, len: u32)` pairs copied in bulk. A call that produces bytes
//!   returns their length (`i64 >= 0`); the guest then copies them with
//!   [`imports::RESULT_READ`]. A negative return is a [`Status`]; on
//!   [`Status::Failed`] the pending result holds the error text, whose length
//!   [`imports::RESULT_LEN`] tells.
//! - ABI abuse (a pointer or length outside memory, a length over its limit, reading a
//!   result that is not there) traps the instance with a fixed message: it is the
//!   guest's fault and the same on every peer.

#![no_std]

/// The import module every shim operation lives in.
pub const IMPORT_MODULE: &str = "cchost";

/// ABI version this crate describes.
pub const ABI_VERSION: u32 = 1;

/// Export that marks a module as cchost chaincode of [`ABI_VERSION`]: `fn()`.
pub const ABI_MARKER: &str = "cchost_abi_v1";

/// Entry point for INIT: `fn(input_len: u32) -> i32` (a [`Status`]).
pub const ENTRY_INIT: &str = "cchost_init";

/// Entry point for TRANSACTION: `fn(input_len: u32) -> i32` (a [`Status`]).
pub const ENTRY_INVOKE: &str = "cchost_invoke";

/// The guest's linear memory export.
pub const MEMORY_EXPORT: &str = "memory";

/// Result of an import or entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// Done.
    Ok = 0,
    /// The peer refused the request; the pending result holds its error text.
    Failed = -1,
    /// Nothing there (e.g. a transaction context field that is not set).
    NotFound = -2,
}

impl Status {
    /// The status a raw return value stands for, if any.
    pub const fn from_raw(raw: i64) -> Option<Self> {
        match raw {
            0 => Some(Self::Ok),
            -1 => Some(Self::Failed),
            -2 => Some(Self::NotFound),
            _ => None,
        }
    }
}

/// Selector for [`imports::TX_CONTEXT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum TxField {
    /// The transaction id (UTF-8).
    TxId = 0,
    /// The channel id (UTF-8).
    ChannelId = 1,
    /// The full `SignedProposal` (protobuf): timestamp, creator, transient map.
    SignedProposal = 2,
    /// `sha256(nonce ‖ creator ‖ LE64(epoch))`, 32 bytes.
    Binding = 3,
}

impl TxField {
    /// The field a raw selector names, if any.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::TxId),
            1 => Some(Self::ChannelId),
            2 => Some(Self::SignedProposal),
            3 => Some(Self::Binding),
            _ => None,
        }
    }
}

/// Log levels for [`imports::LOG`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum LogLevel {
    /// Errors.
    Error = 0,
    /// Warnings.
    Warn = 1,
    /// Information.
    Info = 2,
    /// Debugging.
    Debug = 3,
}

/// Bounds on every length the host reads from guest memory.
pub mod limits {
    /// A key, collection, chaincode name, iterator id, metadata key or event name.
    pub const MAX_KEY_LEN: u32 = 64 * 1024;
    /// A value, event payload, encoded input or encoded response.
    pub const MAX_VALUE_LEN: u32 = 16 * 1024 * 1024;
    /// A log line (longer ones are cut).
    pub const MAX_LOG_LEN: u32 = 4 * 1024;
}

/// Import names, all in [`IMPORT_MODULE`](super::IMPORT_MODULE). Signatures use wasm
/// types: `p`/`l` are a `u32` pointer/length pair.
pub mod imports {
    /// `(p: u32, l: u32) -> i32`: copy the invocation input (exactly `input_len` bytes).
    pub const INPUT_READ: &str = "input_read";
    /// `(p, l) -> i32`: copy the pending result (exactly its length) and clear it.
    pub const RESULT_READ: &str = "result_read";
    /// `() -> i64`: the pending result's length, or `NotFound`.
    pub const RESULT_LEN: &str = "result_len";
    /// `(p, l) -> i32`: the encoded `protos.Response` of this invocation.
    pub const SET_RESPONSE: &str = "set_response";
    /// `(name p, l, payload p, l) -> i32`: the chaincode event (the last one set wins).
    pub const SET_EVENT: &str = "set_event";
    /// `(field: u32) -> i64`: a [`TxField`](super::TxField) of the transaction.
    pub const TX_CONTEXT: &str = "tx_context";
    /// `(level: u32, p, l) -> ()`: a log line, tagged with chaincode and txid by the host.
    pub const LOG: &str = "log";
    /// `(p, l) -> !`: the chaincode panicked with this message (UTF-8). The host ends the
    /// invocation there and answers status 500 with the message, as for an error
    /// response; the call never returns.
    pub const ABORT: &str = "abort";

    /// `(collection p, l, key p, l) -> i64`: the value (empty if absent).
    pub const GET_STATE: &str = "get_state";
    /// `(collection p, l, key p, l, value p, l) -> i64`.
    pub const PUT_STATE: &str = "put_state";
    /// `(collection p, l, key p, l) -> i64`.
    pub const DEL_STATE: &str = "del_state";
    /// `(collection p, l, key p, l) -> i64`: an encoded `StateMetadataResult`.
    pub const GET_STATE_METADATA: &str = "get_state_metadata";
    /// `(collection p, l, key p, l, metakey p, l, value p, l) -> i64`.
    pub const PUT_STATE_METADATA: &str = "put_state_metadata";
    /// `(collection p, l, key p, l) -> i64`: the private data hash.
    pub const GET_PRIVATE_DATA_HASH: &str = "get_private_data_hash";
    /// `(collection p, l, key p, l) -> i64`.
    pub const PURGE_PRIVATE_DATA: &str = "purge_private_data";
    /// `(collection p, l, start p, l, end p, l, page_size: i32, bookmark p, l) -> i64`: an
    /// encoded `QueryResponse` (page_size 0 and an empty bookmark: not paginated).
    pub const GET_STATE_BY_RANGE: &str = "get_state_by_range";
    /// `(id p, l) -> i64`: the next encoded `QueryResponse`.
    pub const QUERY_STATE_NEXT: &str = "query_state_next";
    /// `(id p, l) -> i64`.
    pub const QUERY_STATE_CLOSE: &str = "query_state_close";
    /// `(key p, l) -> i64`: an encoded `QueryResponse` of `KeyModification`s.
    pub const GET_HISTORY_FOR_KEY: &str = "get_history_for_key";
    /// `(collection p, l, query p, l, page_size: i32, bookmark p, l) -> i64`.
    pub const GET_QUERY_RESULT: &str = "get_query_result";
    /// `(target p, l, input p, l) -> i64`: `target` is `name` or `name/channel`, `input`
    /// an encoded `ChaincodeInput`; the result is the callee's encoded `ChaincodeMessage`.
    pub const INVOKE_CHAINCODE: &str = "invoke_chaincode";

    /// Every import name, for validation.
    pub const ALL: &[&str] = &[
        INPUT_READ,
        RESULT_READ,
        RESULT_LEN,
        SET_RESPONSE,
        SET_EVENT,
        TX_CONTEXT,
        LOG,
        ABORT,
        GET_STATE,
        PUT_STATE,
        DEL_STATE,
        GET_STATE_METADATA,
        PUT_STATE_METADATA,
        GET_PRIVATE_DATA_HASH,
        PURGE_PRIVATE_DATA,
        GET_STATE_BY_RANGE,
        QUERY_STATE_NEXT,
        QUERY_STATE_CLOSE,
        GET_HISTORY_FOR_KEY,
        GET_QUERY_RESULT,
        INVOKE_CHAINCODE,
    ];
}

/// What the host answers requests it refuses, shared with the guest SDK's `MockStub` so
/// that chaincode tested natively fails the same way as on cchost. The host's ERROR reads
/// `<REQUEST TYPE> failed: transaction ID: <txid>: <text>`.
pub mod refusals {
    /// A private-data request in Init (Fabric's text).
    pub const PRIVATE_DATA_IN_INIT: &str = "private data APIs are not allowed in chaincode Init()";
    /// A request naming a private data collection: followed by ` (collection "<name>")`.
    pub const PRIVATE_DATA_UNSUPPORTED: &str =
        "private data collections are not supported by cchost yet";
    /// GET_PRIVATE_DATA_HASH of the world state.
    pub const PRIVATE_DATA_HASH_WITHOUT_COLLECTION: &str =
        "GetPrivateDataHash requires a collection";
    /// PURGE_PRIVATE_DATA of the world state (Fabric's text).
    pub const PURGE_WITHOUT_COLLECTION: &str = "only applicable for private data";
    /// GET_QUERY_RESULT: the state database has no rich queries.
    pub const RICH_QUERIES_UNSUPPORTED: &str = "rich queries (GetQueryResult) are not supported \
        by this state database (redb); use key-range or partial composite-key queries";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_field_codes_round_trip() {
        for status in [Status::Ok, Status::Failed, Status::NotFound] {
            assert_eq!(Status::from_raw(status as i64), Some(status));
        }
        assert_eq!(Status::from_raw(5), None);
        for field in [
            TxField::TxId,
            TxField::ChannelId,
            TxField::SignedProposal,
            TxField::Binding,
        ] {
            assert_eq!(TxField::from_raw(field as u32), Some(field));
        }
        assert_eq!(TxField::from_raw(9), None);
    }

    #[test]
    fn import_names_are_unique() {
        for (i, a) in imports::ALL.iter().enumerate() {
            assert!(!imports::ALL[i + 1..].contains(a), "{a} twice");
        }
    }
}
