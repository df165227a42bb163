//! [`Stub`]: one invocation's view of the ledger and the transaction, like Fabric's
//! `ChaincodeStubInterface`. The same code runs in the wasm build (over the host calls)
//! and natively (over [`MockStub`](crate::mock::MockStub)'s in-memory ledger).

use std::collections::BTreeMap;
use std::rc::Rc;

use cchost_abi::{LogLevel, TxField};
use cchost_proto::common::{ChannelHeader, Header, SignatureHeader};
use cchost_proto::msp::SerializedIdentity;
use cchost_proto::protos::{
    ChaincodeInput, ChaincodeProposalPayload, Proposal, QueryResponse, QueryResponseMetadata,
    Response, SignedProposal,
};
use cchost_proto::queryresult::{KeyModification, Kv};
use prost::Message;

use crate::Error;
use crate::backend::Backend;

/// The namespace prefix of composite keys (Fabric's `compositeKeyNamespace`).
pub const COMPOSITE_KEY_NAMESPACE: &str = "\u{0}";
/// The smallest code point (Fabric's `minUnicodeRuneValue`): the composite key separator.
const MIN_UNICODE_RUNE: char = '\u{0}';
/// The largest code point (Fabric's `maxUnicodeRuneValue`): the end of partial-key ranges.
const MAX_UNICODE_RUNE: char = '\u{10FFFF}';
/// What an empty range start key becomes, so simple range queries skip composite keys.
const EMPTY_KEY_SUBSTITUTE: &str = "\u{1}";

/// One invocation's view of the ledger and the transaction.
pub struct Stub {
    input: ChaincodeInput,
    backend: Rc<dyn Backend>,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub").field("input", &self.input).finish()
    }
}

/// One page of a paginated query, like Fabric's `QueryResponseMetadata` with its results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The keys and values of this page.
    pub results: Vec<Kv>,
    /// How many records the peer fetched for this page.
    pub fetched_records_count: i32,
    /// Where the next page starts (pass it back as `bookmark`); empty after the last page.
    pub bookmark: String,
}

impl Stub {
    /// A stub over `backend` for an invocation with `input`.
    pub(crate) fn new(input: ChaincodeInput, backend: Rc<dyn Backend>) -> Self {
        Self { input, backend }
    }

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

    /// Every argument as text, like `GetStringArgs`.
    pub fn string_args(&self) -> Vec<String> {
        (0..self.input.args.len())
            .map(|i| self.string_arg(i))
            .collect()
    }

    /// The function name: the first argument.
    pub fn function(&self) -> String {
        self.string_arg(0)
    }

    /// The function name and the other arguments as text, like
    /// `GetFunctionAndParameters`.
    pub fn function_and_parameters(&self) -> (String, Vec<String>) {
        let mut args = self.string_args();
        if args.is_empty() {
            return (String::new(), args);
        }
        let function = args.remove(0);
        (function, args)
    }

    /// Whether this is the chaincode's Init.
    pub fn is_init(&self) -> bool {
        self.input.is_init
    }

    // ---- world state -------------------------------------------------------------

    /// The committed value of `key` (empty if absent), like `GetState`. A transaction
    /// does not read its own writes, as in Fabric.
    pub fn get_state(&self, key: &str) -> Result<Vec<u8>, Error> {
        self.backend.get_state("", key)
    }

    /// Writes `value` to `key`, like `PutState`.
    pub fn put_state(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        require_key(key)?;
        self.backend.put_state("", key, value)
    }

    /// Deletes `key`, like `DelState`.
    pub fn del_state(&self, key: &str) -> Result<(), Error> {
        self.backend.del_state("", key)
    }

    /// The state metadata of `key` as (name, value) pairs, like `GetStateValidationParameter`
    /// reads it.
    pub fn get_state_metadata(&self, key: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
        Ok(self
            .backend
            .get_state_metadata("", key)?
            .entries
            .into_iter()
            .map(|e| (e.metakey, e.value))
            .collect())
    }

    /// Sets one metadata entry of `key`.
    pub fn put_state_metadata(&self, key: &str, metakey: &str, value: &[u8]) -> Result<(), Error> {
        self.backend.put_state_metadata("", key, metakey, value)
    }

    /// The key-level endorsement policy of `key` (empty if none), like
    /// `GetStateValidationParameter`.
    pub fn get_state_validation_parameter(&self, key: &str) -> Result<Vec<u8>, Error> {
        Ok(self
            .get_state_metadata(key)?
            .into_iter()
            .find(|(name, _)| name == VALIDATION_PARAMETER)
            .map(|(_, value)| value)
            .unwrap_or_default())
    }

    /// Sets the key-level endorsement policy of `key`, like
    /// `SetStateValidationParameter`.
    pub fn set_state_validation_parameter(&self, key: &str, policy: &[u8]) -> Result<(), Error> {
        self.put_state_metadata(key, VALIDATION_PARAMETER, policy)
    }

    // ---- range, composite key and history queries -----------------------------------

    /// Keys in `[start, end)` (an empty `end`: no upper bound), fetched from the peer in
    /// batches, like `GetStateByRange`. An empty `start` skips composite keys, as in
    /// Fabric.
    pub fn get_state_by_range(&self, start: &str, end: &str) -> Result<StateIter, Error> {
        validate_simple_keys(&[start, end])?;
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        let first = self.backend.get_state_by_range("", start, end, 0, "")?;
        Ok(StateIter(Batches::new(self.backend.clone(), first)))
    }

    /// One page of `[start, end)` from `bookmark`, like
    /// `GetStateByRangeWithPagination`.
    pub fn get_state_by_range_with_pagination(
        &self,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<Page, Error> {
        validate_simple_keys(&[start, end])?;
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        self.page(start, end, page_size, bookmark)
    }

    /// Every key of `object_type` whose first attributes are `attributes`, like
    /// `GetStateByPartialCompositeKey`.
    pub fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<StateIter, Error> {
        let (start, end) = partial_key_range(object_type, attributes)?;
        let first = self.backend.get_state_by_range("", &start, &end, 0, "")?;
        Ok(StateIter(Batches::new(self.backend.clone(), first)))
    }

    /// One page of [`get_state_by_partial_composite_key`](Self::get_state_by_partial_composite_key),
    /// like `GetStateByPartialCompositeKeyWithPagination`.
    pub fn get_state_by_partial_composite_key_with_pagination(
        &self,
        object_type: &str,
        attributes: &[&str],
        page_size: i32,
        bookmark: &str,
    ) -> Result<Page, Error> {
        let (start, end) = partial_key_range(object_type, attributes)?;
        self.page(&start, &end, page_size, bookmark)
    }

    fn page(&self, start: &str, end: &str, page_size: i32, bookmark: &str) -> Result<Page, Error> {
        if page_size <= 0 {
            return Err(Error::new(format!(
                "the page size must be positive, not {page_size}"
            )));
        }
        let first = self
            .backend
            .get_state_by_range("", start, end, page_size, bookmark)?;
        let metadata = QueryResponseMetadata::decode(first.metadata.as_slice())?;
        let results =
            StateIter(Batches::new(self.backend.clone(), first)).collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            results,
            fetched_records_count: metadata.fetched_records_count,
            bookmark: metadata.bookmark,
        })
    }

    /// Runs a rich query (a CouchDB selector), like `GetQueryResult`. cchost's state
    /// database is not CouchDB, so the peer refuses it with an error that says so.
    pub fn get_query_result(&self, query: &str) -> Result<StateIter, Error> {
        let first = self.backend.get_query_result("", query, 0, "")?;
        Ok(StateIter(Batches::new(self.backend.clone(), first)))
    }

    /// Every committed modification of `key`, newest first, like `GetHistoryForKey`.
    pub fn get_history_for_key(&self, key: &str) -> Result<HistoryIter, Error> {
        let first = self.backend.get_history_for_key(key)?;
        Ok(HistoryIter(Batches::new(self.backend.clone(), first)))
    }

    /// `\0objectType\0attr1\0attr2\0...`, like `CreateCompositeKey`.
    pub fn create_composite_key(object_type: &str, attributes: &[&str]) -> Result<String, Error> {
        create_composite_key(object_type, attributes)
    }

    /// The object type and attributes of a composite key, like `SplitCompositeKey`.
    pub fn split_composite_key(key: &str) -> Result<(String, Vec<String>), Error> {
        split_composite_key(key)
    }

    // ---- private data ---------------------------------------------------------------

    /// `GetPrivateData`.
    pub fn get_private_data(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        require_collection(collection)?;
        self.backend.get_state(collection, key)
    }

    /// `PutPrivateData`.
    pub fn put_private_data(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        require_collection(collection)?;
        require_key(key)?;
        self.backend.put_state(collection, key, value)
    }

    /// `DelPrivateData`.
    pub fn del_private_data(&self, collection: &str, key: &str) -> Result<(), Error> {
        require_collection(collection)?;
        self.backend.del_state(collection, key)
    }

    /// `GetPrivateDataHash`.
    pub fn get_private_data_hash(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        require_collection(collection)?;
        self.backend.get_private_data_hash(collection, key)
    }

    /// `PurgePrivateData`.
    pub fn purge_private_data(&self, collection: &str, key: &str) -> Result<(), Error> {
        require_collection(collection)?;
        self.backend.purge_private_data(collection, key)
    }

    // ---- events and other chaincode -------------------------------------------------

    /// Sets the transaction's event (the last one set wins), like `SetEvent`.
    pub fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::new("Event name must be a non-empty string"));
        }
        self.backend.set_event(name, payload)
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
        };
        self.backend.invoke_chaincode(&target, &input)
    }

    // ---- the transaction ------------------------------------------------------------

    /// The transaction id, like `GetTxID`.
    pub fn tx_id(&self) -> String {
        String::from_utf8_lossy(&self.backend.tx_field(TxField::TxId)).into_owned()
    }

    /// The channel id, like `GetChannelID`.
    pub fn channel_id(&self) -> String {
        String::from_utf8_lossy(&self.backend.tx_field(TxField::ChannelId)).into_owned()
    }

    /// The client's signed proposal, like `GetSignedProposal`.
    pub fn signed_proposal(&self) -> Result<SignedProposal, Error> {
        Ok(SignedProposal::decode(
            self.backend.tx_field(TxField::SignedProposal).as_slice(),
        )?)
    }

    fn proposal_parts(&self) -> Result<(Header, Proposal), Error> {
        let proposal = Proposal::decode(self.signed_proposal()?.proposal_bytes.as_slice())?;
        let header = Header::decode(proposal.header.as_slice())?;
        Ok((header, proposal))
    }

    /// The client's timestamp from the proposal's channel header (seconds and nanoseconds
    /// since the Unix epoch), like `GetTxTimestamp`. The same on every endorser, unlike
    /// the local clock.
    pub fn tx_timestamp(&self) -> Result<(i64, i32), Error> {
        let (header, _) = self.proposal_parts()?;
        let channel = ChannelHeader::decode(header.channel_header.as_slice())?;
        let ts = channel.timestamp.unwrap_or_default();
        Ok((ts.seconds, ts.nanos))
    }

    /// The submitting client's identity (MSP id and PEM certificate), like `GetCreator`.
    pub fn creator(&self) -> Result<SerializedIdentity, Error> {
        let (header, _) = self.proposal_parts()?;
        let signature = SignatureHeader::decode(header.signature_header.as_slice())?;
        Ok(SerializedIdentity::decode(signature.creator.as_slice())?)
    }

    /// The transient data the client passed (never written to the ledger), like
    /// `GetTransient`.
    pub fn transient(&self) -> Result<BTreeMap<String, Vec<u8>>, Error> {
        let (_, proposal) = self.proposal_parts()?;
        let payload = ChaincodeProposalPayload::decode(proposal.payload.as_slice())?;
        Ok(payload.transient_map.into_iter().collect())
    }

    /// `sha256(nonce ‖ creator ‖ epoch)`, like `GetBinding`.
    pub fn binding(&self) -> Vec<u8> {
        self.backend.tx_field(TxField::Binding)
    }

    /// Logs through the peer, tagged with chaincode and txid.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.backend.log(level, message);
    }
}

/// The state metadata key of a key-level endorsement policy (Fabric's
/// `pb.MetaDataKeys_VALIDATION_PARAMETER`).
pub const VALIDATION_PARAMETER: &str = "VALIDATION_PARAMETER";

/// As Fabric's Go shim: a write needs a key (reads and deletes go to the peer as they
/// are).
fn require_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::new("key must not be an empty string"));
    }
    Ok(())
}

fn require_collection(collection: &str) -> Result<(), Error> {
    if collection.is_empty() {
        return Err(Error::new("collection must not be an empty string"));
    }
    Ok(())
}

/// Simple keys must not start with the composite key namespace (Fabric's
/// `validateSimpleKeys`).
fn validate_simple_keys(keys: &[&str]) -> Result<(), Error> {
    for key in keys {
        if key.starts_with(COMPOSITE_KEY_NAMESPACE) {
            return Err(Error::new(format!(
                "first character of the key [{key}] contains a null character which is not allowed"
            )));
        }
    }
    Ok(())
}

/// The Node shim refuses empty parts, the Go shim the two delimiting code points; both
/// rules apply.
fn validate_composite_key_attribute(attribute: &str) -> Result<(), Error> {
    if attribute.is_empty() {
        return Err(Error::new(
            "object type or attribute not a non-zero length string",
        ));
    }
    for (position, c) in attribute.char_indices() {
        if c == MIN_UNICODE_RUNE || c == MAX_UNICODE_RUNE {
            return Err(Error::new(format!(
                "input contains unicode {} starting at position [{position}]. {} and {} are not allowed in the input attribute of a composite key",
                unicode_name(c),
                unicode_name(MIN_UNICODE_RUNE),
                unicode_name(MAX_UNICODE_RUNE),
            )));
        }
    }
    Ok(())
}

/// Go's `%#U` for the two forbidden code points.
fn unicode_name(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `\0objectType\0attr1\0...`: see [`Stub::create_composite_key`].
pub fn create_composite_key(object_type: &str, attributes: &[&str]) -> Result<String, Error> {
    validate_composite_key_attribute(object_type)?;
    let mut key = String::with_capacity(
        2 + object_type.len() + attributes.iter().map(|a| a.len() + 1).sum::<usize>(),
    );
    key.push_str(COMPOSITE_KEY_NAMESPACE);
    key.push_str(object_type);
    key.push(MIN_UNICODE_RUNE);
    for attribute in attributes {
        validate_composite_key_attribute(attribute)?;
        key.push_str(attribute);
        key.push(MIN_UNICODE_RUNE);
    }
    Ok(key)
}

/// See [`Stub::split_composite_key`].
pub fn split_composite_key(key: &str) -> Result<(String, Vec<String>), Error> {
    let Some(body) = key.strip_prefix(COMPOSITE_KEY_NAMESPACE) else {
        return Err(Error::new(format!("key {key:?} is not a composite key")));
    };
    let mut parts = body.split(MIN_UNICODE_RUNE).map(str::to_owned);
    let object_type = parts.next().unwrap_or_default();
    let mut attributes: Vec<String> = parts.collect();
    // The key ends with a separator: the last piece is empty.
    if attributes.last().is_some_and(String::is_empty) {
        attributes.pop();
    }
    Ok((object_type, attributes))
}

fn partial_key_range(object_type: &str, attributes: &[&str]) -> Result<(String, String), Error> {
    let start = create_composite_key(object_type, attributes)?;
    let mut end = start.clone();
    end.push(MAX_UNICODE_RUNE);
    Ok((start, end))
}

/// The batches of one query, fetched with `QUERY_STATE_NEXT` and always closed (as the
/// Node shim does).
struct Batches {
    backend: Rc<dyn Backend>,
    id: String,
    results: std::vec::IntoIter<Vec<u8>>,
    has_more: bool,
}

impl Batches {
    fn new(backend: Rc<dyn Backend>, response: QueryResponse) -> Self {
        let mut batches = Self {
            backend,
            id: String::new(),
            results: Vec::new().into_iter(),
            has_more: false,
        };
        batches.load(response);
        batches
    }

    fn load(&mut self, response: QueryResponse) {
        self.id = response.id;
        self.has_more = response.has_more;
        self.results = response
            .results
            .into_iter()
            .map(|r| r.result_bytes)
            .collect::<Vec<_>>()
            .into_iter();
    }

    fn next_bytes(&mut self) -> Option<Result<Vec<u8>, Error>> {
        if let Some(bytes) = self.results.next() {
            return Some(Ok(bytes));
        }
        if !self.has_more {
            return None;
        }
        match self.backend.query_state_next(&self.id) {
            Ok(response) => {
                let id = std::mem::take(&mut self.id);
                self.load(QueryResponse { id, ..response });
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
        self.backend.query_state_close(&self.id);
    }
}

/// The results of a range, partial composite key or rich query: `Kv` (namespace, key,
/// value), in key order.
pub struct StateIter(Batches);

impl std::fmt::Debug for StateIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateIter").field("id", &self.0.id).finish()
    }
}

impl Iterator for StateIter {
    type Item = Result<Kv, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.0
                .next_bytes()?
                .and_then(|b| Ok(Kv::decode(b.as_slice())?)),
        )
    }
}

/// The results of a history query: `KeyModification`s, newest first.
pub struct HistoryIter(Batches);

impl std::fmt::Debug for HistoryIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryIter")
            .field("id", &self.0.id)
            .finish()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_have_fabrics_layout_and_split_back() {
        let key = create_composite_key("marble", &["blue", "marble1"]).unwrap();
        assert_eq!(key, "\u{0}marble\u{0}blue\u{0}marble1\u{0}");
        assert_eq!(
            split_composite_key(&key).unwrap(),
            (
                "marble".to_owned(),
                vec!["blue".to_owned(), "marble1".to_owned()]
            )
        );
        assert_eq!(
            split_composite_key(&create_composite_key("t", &[]).unwrap()).unwrap(),
            ("t".to_owned(), vec![])
        );
        assert_eq!(
            partial_key_range("marble", &["blue"]).unwrap(),
            (
                "\u{0}marble\u{0}blue\u{0}".to_owned(),
                "\u{0}marble\u{0}blue\u{0}\u{10FFFF}".to_owned()
            )
        );
    }

    #[test]
    fn forbidden_code_points_in_composite_keys_are_refused_with_fabrics_text() {
        assert_eq!(
            create_composite_key("marble", &["a\u{0}b"])
                .unwrap_err()
                .to_string(),
            "input contains unicode U+0000 starting at position [1]. U+0000 and U+10FFFF are not allowed in the input attribute of a composite key"
        );
        assert!(create_composite_key("m\u{10FFFF}", &[]).is_err());
        assert_eq!(
            create_composite_key("marble", &[""])
                .unwrap_err()
                .to_string(),
            "object type or attribute not a non-zero length string"
        );
        assert_eq!(
            validate_simple_keys(&["\u{0}x"]).unwrap_err().to_string(),
            "first character of the key [\u{0}x] contains a null character which is not allowed"
        );
        assert_eq!(
            split_composite_key("plain").unwrap_err().to_string(),
            "key \"plain\" is not a composite key"
        );
    }
}
