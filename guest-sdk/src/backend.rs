//! What a [`Stub`](crate::Stub) needs from the peer: one method per host call.
//!
//! The wasm build talks to cchost through the imports ([`crate::host`], wasm32 only);
//! [`MockStub`](crate::mock::MockStub) keeps a ledger in memory for native tests. Query
//! results travel as Fabric's own `QueryResponse` in both, so iterators, paging and
//! composite keys are the same code on both sides.

use cchost_abi::{LogLevel, TxField};
use cchost_proto::protos::{ChaincodeInput, QueryResponse, Response, StateMetadataResult};

use crate::Error;

/// The peer side of a [`Stub`](crate::Stub). Methods mirror the `cchost` imports
/// (`cchost_abi::imports`); an empty `collection` is the public world state.
pub trait Backend {
    /// The value of `key` (empty if absent).
    fn get_state(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error>;
    /// Writes `key`.
    fn put_state(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), Error>;
    /// Deletes `key`.
    fn del_state(&self, collection: &str, key: &str) -> Result<(), Error>;
    /// The hash of a private data value (empty if absent).
    fn get_private_data_hash(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error>;
    /// Purges a private data key.
    fn purge_private_data(&self, collection: &str, key: &str) -> Result<(), Error>;
    /// The metadata entries of `key`.
    fn get_state_metadata(&self, collection: &str, key: &str)
    -> Result<StateMetadataResult, Error>;
    /// Sets one metadata entry of `key`.
    fn put_state_metadata(
        &self,
        collection: &str,
        key: &str,
        metakey: &str,
        value: &[u8],
    ) -> Result<(), Error>;
    /// Opens a range query over `[start, end)` (empty `end`: unbounded); `page_size` 0
    /// means not paginated.
    fn get_state_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error>;
    /// Opens a rich query (CouchDB selector).
    fn get_query_result(
        &self,
        collection: &str,
        query: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error>;
    /// The next batch of an open query.
    fn query_state_next(&self, id: &str) -> Result<QueryResponse, Error>;
    /// Closes an open query (errors are ignored, as the shims do).
    fn query_state_close(&self, id: &str);
    /// Opens a history query over `key`.
    fn get_history_for_key(&self, key: &str) -> Result<QueryResponse, Error>;
    /// Sets the transaction's event (the last one wins).
    fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), Error>;
    /// Runs another chaincode (`name` or `name/channel`) within this transaction. An
    /// `Err` is the peer refusing the call; the callee's own failure is a `Response` with
    /// status >= 400.
    fn invoke_chaincode(&self, target: &str, input: &ChaincodeInput) -> Result<Response, Error>;
    /// A field of the transaction context.
    fn tx_field(&self, field: TxField) -> Vec<u8>;
    /// Logs a line.
    fn log(&self, level: LogLevel, message: &str);
}
