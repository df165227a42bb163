//! Fabric's block files and block hashes: the first piece of the block store.
//!
//! A Fabric block file (`blockfile_000000`, ...) is a sequence of records, each a
//! uvarint length and a block in Fabric's own serialisation (not the `common.Block`
//! protobuf): uvarint(number) ‖ lenbytes(data_hash) ‖ lenbytes(previous_hash) ‖
//! uvarint(#transactions) ‖ lenbytes(envelope)… ‖ uvarint(#metadata) ‖ lenbytes(metadata)…
//! (`common/ledger/blkstorage/block_serialization.go`). A block's header hash is the
//! SHA-256 of the DER SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING
//! data_hash } (`protoutil.BlockHeaderBytes`); its data hash the SHA-256 of its envelopes
//! concatenated (`protoutil.ComputeBlockDataHash`). [`verify`] checks a chain as Fabric's
//! `ledgerutil verify` does, with its words.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Fabric's `ledgerutil verify` text for a block whose data hash is not its data's.
pub const DATA_HASH_MISMATCH: &str = "DataHash mismatch";
/// Fabric's text for a block whose previous hash is not the previous header's hash.
pub const PREVIOUS_HASH_MISMATCH: &str = "PreviousHash mismatch";

/// A block as a block file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlock {
    /// Its number.
    pub number: u64,
    /// The header's data hash.
    pub data_hash: Vec<u8>,
    /// The header's previous hash.
    pub previous_hash: Vec<u8>,
    /// The transaction envelopes (serialised `common.Envelope`s).
    pub data: Vec<Vec<u8>>,
    /// The metadata slots (SIGNATURES, LAST_CONFIG, TRANSACTIONS_FILTER, ORDERER,
    /// COMMIT_HASH).
    pub metadata: Vec<Vec<u8>>,
}

impl StoredBlock {
    /// The header's hash: what the next block's previous hash must be.
    pub fn header_hash(&self) -> [u8; 32] {
        header_hash(self.number, &self.previous_hash, &self.data_hash)
    }
}

/// Why a block file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockFileError {
    /// A record ends before its length says (a torn write), or a field runs past it.
    #[error("block file: the record at offset {offset} is cut short: {what}")]
    Truncated {
        /// Where the record starts.
        offset: usize,
        /// What was being read.
        what: String,
    },
    /// A record holds bytes after its block.
    #[error("block file: the record at offset {offset} has {extra} bytes after its block")]
    TrailingBytes {
        /// Where the record starts.
        offset: usize,
        /// How many.
        extra: usize,
    },
    /// The directory or file could not be read.
    #[error("block file {path}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        error: String,
    },
}

/// The DER bytes Fabric hashes for a block header.
pub fn header_bytes(number: u64, previous_hash: &[u8], data_hash: &[u8]) -> Vec<u8> {
    // INTEGER: minimal two's complement, big-endian.
    let mut integer: Vec<u8> = number.to_be_bytes().to_vec();
    while integer.len() > 1
        && integer.first() == Some(&0)
        && integer.get(1).is_some_and(|b| *b < 0x80)
    {
        integer.remove(0);
    }
    if integer.first().is_some_and(|b| *b >= 0x80) {
        integer.insert(0, 0);
    }
    let mut body = Vec::with_capacity(integer.len() + previous_hash.len() + data_hash.len() + 8);
    for (tag, value) in [
        (0x02, integer.as_slice()),
        (0x04, previous_hash),
        (0x04, data_hash),
    ] {
        body.push(tag);
        der_length(&mut body, value.len());
        body.extend_from_slice(value);
    }
    let mut out = vec![0x30];
    der_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0));
        out.extend_from_slice(significant);
    }
}

/// SHA-256 of [`header_bytes`].
pub fn header_hash(number: u64, previous_hash: &[u8], data_hash: &[u8]) -> [u8; 32] {
    Sha256::digest(header_bytes(number, previous_hash, data_hash)).into()
}

/// SHA-256 of the envelopes concatenated.
pub fn data_hash(data: &[Vec<u8>]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for envelope in data {
        hasher.update(envelope);
    }
    hasher.finalize().into()
}

/// A cursor over one record's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    fn cut(&self, what: &str) -> BlockFileError {
        BlockFileError::Truncated {
            offset: self.offset,
            what: what.to_owned(),
        }
    }

    fn uvarint(&mut self, what: &str) -> Result<u64, BlockFileError> {
        prost::encoding::decode_varint(&mut self.bytes).map_err(|_| self.cut(what))
    }

    fn len_bytes(&mut self, what: &str) -> Result<Vec<u8>, BlockFileError> {
        let len = usize::try_from(self.uvarint(what)?).map_err(|_| self.cut(what))?;
        let (value, rest) = self
            .bytes
            .split_at_checked(len)
            .ok_or_else(|| self.cut(what))?;
        self.bytes = rest;
        Ok(value.to_vec())
    }

    /// A count of items each at least one byte long: never more than the bytes left.
    fn count(&mut self, what: &str) -> Result<usize, BlockFileError> {
        let count = self.uvarint(what)?;
        usize::try_from(count)
            .ok()
            .filter(|n| *n <= self.bytes.len())
            .ok_or_else(|| self.cut(what))
    }
}

/// Reads the blocks of one block file's bytes, in order. A record cut short (a torn last
/// write) is an error naming its offset; the blocks before it are in `Err`'s company:
/// see [`read_blocks_lenient`].
pub fn read_blocks(file: &[u8]) -> Result<Vec<StoredBlock>, BlockFileError> {
    let (blocks, error) = read_blocks_lenient(file);
    match error {
        Some(error) => Err(error),
        None => Ok(blocks),
    }
}

/// The blocks of a block file up to the first record that cannot be read, and why it
/// cannot.
pub fn read_blocks_lenient(file: &[u8]) -> (Vec<StoredBlock>, Option<BlockFileError>) {
    let mut blocks = Vec::new();
    let mut rest = file;
    while !rest.is_empty() {
        let offset = file.len() - rest.len();
        let mut length = Reader {
            bytes: rest,
            offset,
        };
        let record = length
            .uvarint("the record length")
            .and_then(|len| usize::try_from(len).map_err(|_| length.cut("the record length")))
            .and_then(|len| {
                length
                    .bytes
                    .split_at_checked(len)
                    .ok_or_else(|| length.cut("the block"))
            });
        let (record, after) = match record {
            Ok(split) => split,
            Err(e) => return (blocks, Some(e)),
        };
        match parse_block(record, offset) {
            Ok(block) => blocks.push(block),
            Err(e) => return (blocks, Some(e)),
        }
        rest = after;
    }
    (blocks, None)
}

fn parse_block(record: &[u8], offset: usize) -> Result<StoredBlock, BlockFileError> {
    let mut r = Reader {
        bytes: record,
        offset,
    };
    let number = r.uvarint("the block number")?;
    let data_hash = r.len_bytes("the data hash")?;
    let previous_hash = r.len_bytes("the previous hash")?;
    let transactions = r.count("the transaction count")?;
    let data = (0..transactions)
        .map(|_| r.len_bytes("a transaction"))
        .collect::<Result<_, _>>()?;
    let slots = r.count("the metadata count")?;
    let metadata = (0..slots)
        .map(|_| r.len_bytes("a metadata entry"))
        .collect::<Result<_, _>>()?;
    if !r.bytes.is_empty() {
        return Err(BlockFileError::TrailingBytes {
            offset,
            extra: r.bytes.len(),
        });
    }
    Ok(StoredBlock {
        number,
        data_hash,
        previous_hash,
        data,
        metadata,
    })
}

/// A block as one record of a block file: uvarint(length) ‖ Fabric's serialisation.
pub fn record(block: &StoredBlock) -> Vec<u8> {
    use prost::encoding::encode_varint;
    fn len_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
        encode_varint(u64::try_from(bytes.len()).unwrap_or(u64::MAX), out);
        out.extend_from_slice(bytes);
    }
    let mut body = Vec::new();
    encode_varint(block.number, &mut body);
    len_bytes(&mut body, &block.data_hash);
    len_bytes(&mut body, &block.previous_hash);
    encode_varint(
        u64::try_from(block.data.len()).unwrap_or(u64::MAX),
        &mut body,
    );
    for envelope in &block.data {
        len_bytes(&mut body, envelope);
    }
    encode_varint(
        u64::try_from(block.metadata.len()).unwrap_or(u64::MAX),
        &mut body,
    );
    for slot in &block.metadata {
        len_bytes(&mut body, slot);
    }
    let mut out = Vec::with_capacity(body.len() + 10);
    len_bytes(&mut out, &body);
    out
}

/// The blocks of every block file (`blockfile_NNNNNN`) in `dir`, in file order.
pub fn read_dir(dir: &Path) -> Result<Vec<StoredBlock>, BlockFileError> {
    let io = |path: &Path, e: std::io::Error| BlockFileError::Io {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("blockfile_"))
        })
        .collect();
    files.sort();
    let mut blocks = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        blocks.extend(read_blocks(&bytes)?);
    }
    Ok(blocks)
}

/// One block's verdict, as `ledgerutil verify` writes it in `blocks.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BlockCheck {
    /// The block's number.
    #[serde(rename = "blockNum")]
    pub block_num: u64,
    /// Whether every check passed.
    pub valid: bool,
    /// What failed, in Fabric's words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// cchost's text for a block whose COMMIT_HASH is not what its valid writes and the
/// previous commit hash give (a check Fabric's `ledgerutil verify` does not make).
pub const COMMIT_HASH_MISMATCH: &str = "CommitHash mismatch";

/// Fabric's `ledgerutil verify` checks of a chain: each block's data hash against its
/// data, and (from the second block on) its previous hash against the previous block's
/// header hash, as that header was read. Then cchost's own: a block carrying a commit
/// hash must carry the one its transactions give ([`commit_hash`], chained from the
/// previous block's stored hash); a block whose transactions cannot be decoded for it
/// fails it with the reason.
pub fn verify(blocks: &[StoredBlock]) -> Vec<BlockCheck> {
    let mut previous: Option<[u8; 32]> = None;
    let mut previous_commit: Option<Vec<u8>> = None;
    blocks
        .iter()
        .map(|block| {
            let mut errors = Vec::new();
            if block.data_hash != data_hash(&block.data) {
                errors.push(DATA_HASH_MISMATCH.to_owned());
            }
            if previous.is_some_and(|hash| block.previous_hash != hash) {
                errors.push(PREVIOUS_HASH_MISMATCH.to_owned());
            }
            previous = Some(block.header_hash());
            let stored = stored_commit_hash(block);
            if let Some(stored) = &stored {
                match commit_hash(block, previous_commit.as_deref()) {
                    Ok(computed) if computed.as_slice() == stored.as_slice() => {}
                    Ok(_) => errors.push(COMMIT_HASH_MISMATCH.to_owned()),
                    Err(e) => errors.push(format!("{COMMIT_HASH_MISMATCH}: {e}")),
                }
            }
            previous_commit = stored;
            BlockCheck {
                block_num: block.number,
                valid: errors.is_empty(),
                errors,
            }
        })
        .collect()
}

/// The metadata slot of the transaction validation codes (raw bytes, one per
/// transaction).
pub const TRANSACTIONS_FILTER: usize = 2;
/// The metadata slot of the commit hash (`common.Metadata{value: 32 bytes}`).
pub const COMMIT_HASH: usize = 4;

/// `txmgr.Updates` as Fabric marshals it to hash a block's state updates.
#[derive(Clone, PartialEq, prost::Message)]
struct Updates {
    #[prost(message, repeated, tag = "1")]
    kvwrites: Vec<UpdateWrite>,
}

/// `txmgr.KVWrite`.
#[derive(Clone, PartialEq, prost::Message)]
struct UpdateWrite {
    #[prost(string, tag = "1")]
    namespace: String,
    #[prost(string, tag = "2")]
    collection: String,
    #[prost(bytes = "vec", tag = "3")]
    key: Vec<u8>,
    #[prost(bool, tag = "4")]
    is_delete: bool,
    #[prost(bytes = "vec", tag = "5")]
    value: Vec<u8>,
    #[prost(bytes = "vec", tag = "6")]
    version_bytes: Vec<u8>,
}

/// One write of a block's update batch: deleted or not, the value (or its hash), and the
/// (block, transaction) height of the transaction that wrote it last.
type BatchWrite = (bool, Vec<u8>, (u64, u64));

/// Writes by key (public) or key hash (private).
type Writes = std::collections::BTreeMap<Vec<u8>, BatchWrite>;

/// One namespace's updates: public writes, and hashed private writes by collection.
type NamespaceWrites = (Writes, std::collections::BTreeMap<String, Writes>);

/// A block's updates by namespace. Later valid transactions overwrite earlier ones.
#[derive(Default)]
struct Batch {
    namespaces: std::collections::BTreeMap<String, NamespaceWrites>,
}

/// Fabric's order-preserving encoding of a number: a length byte, then the big-endian
/// bytes without leading zeros (0 is the length byte alone).
fn ordered_varint(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    let mut out = vec![u8::try_from(significant.len()).unwrap_or(0)];
    out.extend_from_slice(significant);
    out
}

/// Why a block's commit hash cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {block}, transaction {tx}: {what}")]
pub struct CommitHashError {
    /// The block.
    pub block: u64,
    /// The transaction's index in it.
    pub tx: usize,
    /// What could not be decoded.
    pub what: String,
}

/// Adds the writes of one valid transaction envelope to `batch`.
fn add_writes(batch: &mut Batch, envelope: &[u8], height: (u64, u64)) -> Result<(), String> {
    use cchost_proto::common::{ChannelHeader, Envelope, HeaderType, Payload};
    use cchost_proto::kvrwset::{HashedRwSet, KvrwSet};
    use cchost_proto::protos::{
        ChaincodeAction, ChaincodeActionPayload, ProposalResponsePayload, Transaction,
    };
    use cchost_proto::rwset::TxReadWriteSet;
    use prost::Message;

    fn bad(what: &'static str) -> impl Fn(prost::DecodeError) -> String {
        move |e| format!("{what}: {e}")
    }
    let envelope = Envelope::decode(envelope).map_err(bad("envelope"))?;
    let payload = Payload::decode(envelope.payload.as_slice()).map_err(bad("payload"))?;
    let header = payload.header.unwrap_or_default();
    let channel_header =
        ChannelHeader::decode(header.channel_header.as_slice()).map_err(bad("channel header"))?;
    if channel_header.r#type != HeaderType::EndorserTransaction as i32 {
        return Ok(());
    }
    let transaction = Transaction::decode(payload.data.as_slice()).map_err(bad("transaction"))?;
    for action in transaction.actions {
        let action_payload = ChaincodeActionPayload::decode(action.payload.as_slice())
            .map_err(bad("chaincode action payload"))?;
        let endorsed = action_payload.action.unwrap_or_default();
        let response =
            ProposalResponsePayload::decode(endorsed.proposal_response_payload.as_slice())
                .map_err(bad("proposal response payload"))?;
        let chaincode_action = ChaincodeAction::decode(response.extension.as_slice())
            .map_err(bad("chaincode action"))?;
        let results = TxReadWriteSet::decode(chaincode_action.results.as_slice())
            .map_err(bad("read/write set"))?;
        for ns in results.ns_rwset {
            let (public, collections) = batch.namespaces.entry(ns.namespace).or_default();
            let kv = KvrwSet::decode(ns.rwset.as_slice()).map_err(bad("kv read/write set"))?;
            for write in kv.writes {
                public.insert(
                    write.key.into_bytes(),
                    (write.is_delete, write.value, height),
                );
            }
            for collection in ns.collection_hashed_rwset {
                let hashed = HashedRwSet::decode(collection.hashed_rwset.as_slice())
                    .map_err(bad("hashed read/write set"))?;
                let writes = collections.entry(collection.collection_name).or_default();
                for write in hashed.hashed_writes {
                    writes.insert(write.key_hash, (write.is_delete, write.value_hash, height));
                }
            }
        }
    }
    Ok(())
}

/// The commit hash Fabric's peer puts in `block`'s COMMIT_HASH slot, given the previous
/// block's (`kv_ledger.go` `addBlockCommitHash`): SHA-256 of uvarint(len(filter)) ‖
/// filter ‖ the marshalled updates of the valid transactions ‖ the previous hash.
pub fn commit_hash(
    block: &StoredBlock,
    previous: Option<&[u8]>,
) -> Result<[u8; 32], CommitHashError> {
    let filter = block
        .metadata
        .get(TRANSACTIONS_FILTER)
        .cloned()
        .unwrap_or_default();
    let mut batch = Batch::default();
    for (index, envelope) in block.data.iter().enumerate() {
        if filter.get(index) != Some(&0) {
            continue;
        }
        let height = (block.number, u64::try_from(index).unwrap_or(u64::MAX));
        add_writes(&mut batch, envelope, height).map_err(|what| CommitHashError {
            block: block.number,
            tx: index,
            what,
        })?;
    }
    let mut updates = Updates::default();
    let write = |namespace: &str, collection: &str, key: &[u8], w: &BatchWrite| UpdateWrite {
        namespace: namespace.to_owned(),
        collection: collection.to_owned(),
        key: key.to_vec(),
        is_delete: w.0,
        value: w.1.clone(),
        version_bytes: [ordered_varint(w.2.0), ordered_varint(w.2.1)].concat(),
    };
    for (namespace, (public, collections)) in &batch.namespaces {
        if namespace.is_empty() {
            continue;
        }
        let first = updates.kvwrites.len();
        for (key, w) in public {
            updates.kvwrites.push(write("", "", key, w));
        }
        for (collection, writes) in collections {
            let first_of_collection = updates.kvwrites.len();
            for (key, w) in writes {
                updates.kvwrites.push(write("", "", key, w));
            }
            if let Some(entry) = updates.kvwrites.get_mut(first_of_collection) {
                entry.collection.clone_from(collection);
            }
        }
        if let Some(entry) = updates.kvwrites.get_mut(first) {
            entry.namespace.clone_from(namespace);
        }
    }
    let mut hasher = Sha256::new();
    let mut length = Vec::new();
    prost::encoding::encode_varint(u64::try_from(filter.len()).unwrap_or(0), &mut length);
    hasher.update(&length);
    hasher.update(&filter);
    if !updates.kvwrites.is_empty() {
        hasher.update(prost::Message::encode_to_vec(&updates));
    }
    hasher.update(previous.unwrap_or_default());
    Ok(hasher.finalize().into())
}

/// The commit hash a block carries (COMMIT_HASH's `Metadata.value`), if any.
pub fn stored_commit_hash(block: &StoredBlock) -> Option<Vec<u8>> {
    let slot = block.metadata.get(COMMIT_HASH)?;
    let metadata =
        <cchost_proto::common::Metadata as prost::Message>::decode(slot.as_slice()).ok()?;
    (!metadata.value.is_empty()).then_some(metadata.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_are_fabrics_der() {
        let (prev, data) = ([0xaa; 32], [0xbb; 32]);
        let genesis = header_bytes(0, &[], &data);
        assert_eq!(
            genesis.get(..9).unwrap(),
            [0x30, 0x27, 0x02, 0x01, 0x00, 0x04, 0x00, 0x04, 0x20]
        );
        let one = header_bytes(1, &prev, &data);
        assert_eq!(
            one.get(..7).unwrap(),
            [0x30, 0x47, 0x02, 0x01, 0x01, 0x04, 0x20]
        );
        // 128 needs a leading zero to stay positive.
        let big = header_bytes(128, &[], &[]);
        assert_eq!(
            big,
            [0x30, 0x08, 0x02, 0x02, 0x00, 0x80, 0x04, 0x00, 0x04, 0x00]
        );
        assert_eq!(
            header_bytes(255, &[], &[]).get(2..6).unwrap(),
            [0x02, 0x02, 0x00, 0xff]
        );
        assert_eq!(
            header_bytes(256, &[], &[]).get(2..6).unwrap(),
            [0x02, 0x02, 0x01, 0x00]
        );
    }

    #[test]
    fn a_record_cut_short_names_its_offset_and_keeps_the_blocks_before_it() {
        let block = [1u8, 1, 0xdd, 0, 0, 0];
        let mut file = vec![u8::try_from(block.len()).unwrap()];
        file.extend_from_slice(&block);
        let whole = file.len();
        file.extend_from_slice(&[10, 2, 1]);
        let (blocks, error) = read_blocks_lenient(&file);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].number, 1);
        assert_eq!(blocks[0].data_hash, [0xdd]);
        assert_eq!(
            error,
            Some(BlockFileError::Truncated {
                offset: whole,
                what: "the block".to_owned()
            })
        );
    }
}
