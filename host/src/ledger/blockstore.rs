//! The block store: one channel's chain in Fabric's block files, with an index.
//!
//! Blocks are appended to `blockfile_NNNNNN` files in Fabric's record format (so
//! Fabric's tools and `cchost ledger verify` read them), a new file once the current one
//! would pass [`BlockStoreConfig::max_file_size`] (Fabric's 64 MiB default). An append is
//! durable when [`BlockStore::append`] returns: the record is written and `fdatasync`ed
//! first. The index (`index.redb` beside the files) maps block numbers to record
//! locations with a CRC-32 of each record, and transaction ids to (block, transaction,
//! validation code). It is a cache of the files: its commits are not synced one by one
//! (every [`INDEX_SYNC_EVERY`] blocks, and on drop, they are), and opening the store
//! re-indexes whatever the files hold past it, as Fabric's `syncIndex` does.
//!
//! Opening recovers: the last indexed block is checked against its CRC, every block past
//! it against the chain (number, previous hash, data hash); the first record that is torn,
//! corrupt or off the chain is truncated away with everything after it, and
//! [`Recovery`] says what was cut. A deleted index is rebuilt from the files.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cchost_proto::common::{ChannelHeader, Envelope, Payload};
use prost::Message;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::blockfile::{self, StoredBlock, TRANSACTIONS_FILTER};

/// Fabric's `ledger.blockchain.maxBlockfileSize` default (64 MiB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// The index is synced to disk once every this many blocks (and when the store closes).
pub const INDEX_SYNC_EVERY: u64 = 64;

/// block number → location (24 bytes: file u32, crc u32, offset u64, length u64).
const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
/// txid → (block u64, tx u64, code u8), the first transaction with that id.
const TXIDS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("txids");

/// Why the block store failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockStoreError {
    /// Reading or writing the files or the index failed.
    #[error("block store {path}: {error}")]
    Io {
        /// The file or directory.
        path: String,
        /// What failed.
        error: String,
    },
    /// A block does not continue the chain (Fabric's texts).
    #[error("{0}")]
    OutOfOrder(String),
    /// A stored block does not read back as it was written.
    #[error("block store: block {number} is corrupt: {reason}")]
    Corrupt {
        /// The block.
        number: u64,
        /// Why.
        reason: String,
    },
}

/// Where a transaction is, and its validation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Its block.
    pub block: u64,
    /// Its index in the block.
    pub tx: u64,
    /// Its validation code (`TxValidationCode`).
    pub code: u8,
}

/// What opening the store had to repair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Blocks found in the files past the index and indexed again.
    pub reindexed: u64,
    /// The first block number cut away, and why, if a record was torn or corrupt.
    pub truncated: Option<(u64, String)>,
    /// Bytes cut from the files.
    pub truncated_bytes: u64,
}

/// The block index's page cache (redb's default, 1 GiB, grew a node's resident memory
/// with its chain; see `STATE_CACHE_BYTES`).
pub const INDEX_CACHE_BYTES: usize = 2 << 20;

/// How the store writes.
#[derive(Debug, Clone, Copy)]
pub struct BlockStoreConfig {
    /// A new block file is started when a record would take the current one past this.
    pub max_file_size: u64,
    /// `fdatasync` each appended block (off only for benchmarks that say so).
    pub sync: bool,
}

impl Default for BlockStoreConfig {
    fn default() -> Self {
        Self {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            sync: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    file: u32,
    crc: u32,
    offset: u64,
    length: u64,
}

impl Location {
    fn encode(self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..4].copy_from_slice(&self.file.to_be_bytes());
        out[4..8].copy_from_slice(&self.crc.to_be_bytes());
        out[8..16].copy_from_slice(&self.offset.to_be_bytes());
        out[16..].copy_from_slice(&self.length.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 24] = bytes.try_into().ok()?;
        let (file, rest) = bytes.split_first_chunk::<4>()?;
        let (crc, rest) = rest.split_first_chunk::<4>()?;
        let (offset, length) = rest.split_first_chunk::<8>()?;
        Some(Self {
            file: u32::from_be_bytes(*file),
            crc: u32::from_be_bytes(*crc),
            offset: u64::from_be_bytes(*offset),
            length: u64::from_be_bytes(length.try_into().ok()?),
        })
    }

    fn end(self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

/// One channel's block files and index.
pub struct BlockStore {
    dir: PathBuf,
    config: BlockStoreConfig,
    index: Database,
    file: File,
    file_number: u32,
    file_size: u64,
    height: u64,
    last_hash: Vec<u8>,
    unsynced: u64,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("dir", &self.dir)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> BlockStoreError {
    BlockStoreError::Io {
        path: path.display().to_string(),
        error: error.to_string(),
    }
}

fn file_name(number: u32) -> String {
    format!("blockfile_{number:06}")
}

/// The ids of a block's transactions (empty where an envelope does not decode).
pub fn tx_ids(block: &StoredBlock) -> Vec<String> {
    block
        .data
        .iter()
        .map(|envelope| {
            Envelope::decode(envelope.as_slice())
                .ok()
                .and_then(|e| Payload::decode(e.payload.as_slice()).ok())
                .and_then(|p| p.header)
                .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
                .map(|h| h.tx_id)
                .unwrap_or_default()
        })
        .collect()
}

/// The bytes of file `path` from `offset` on, and the file's length.
fn read_from(path: &Path, offset: u64) -> std::io::Result<(Vec<u8>, u64)> {
    use std::io::{Read as _, Seek as _};
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let mut tail = Vec::new();
    if offset < length {
        file.seek(std::io::SeekFrom::Start(offset))?;
        file.read_to_end(&mut tail)?;
    }
    Ok((tail, length))
}

impl BlockStore {
    /// Opens (or creates) the store in `dir`, recovering as the module says.
    pub fn open(dir: &Path, config: BlockStoreConfig) -> Result<(Self, Recovery), BlockStoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let index_path = dir.join("index.redb");
        let index = Database::builder()
            .set_cache_size(INDEX_CACHE_BYTES)
            .create(&index_path)
            .map_err(|e| io_error(&index_path, e))?;
        {
            let write = index.begin_write().map_err(|e| io_error(&index_path, e))?;
            write
                .open_table(BLOCKS)
                .map_err(|e| io_error(&index_path, e))?;
            write
                .open_table(TXIDS)
                .map_err(|e| io_error(&index_path, e))?;
            write.commit().map_err(|e| io_error(&index_path, e))?;
        }
        let mut recovery = Recovery::default();

        // Resume after the last indexed block if its record reads back with its CRC.
        // If it does not, the index cannot be trusted past the blocks before it: rebuild
        // it from the files, accepting blocks before the bad one only.
        let last = {
            let read = index.begin_read().map_err(|e| io_error(&index_path, e))?;
            let blocks = read
                .open_table(BLOCKS)
                .map_err(|e| io_error(&index_path, e))?;
            let last = blocks.last().map_err(|e| io_error(&index_path, e))?;
            last.and_then(|(n, location)| Some((n.value(), Location::decode(location.value())?)))
        };
        let mut limit: Option<u64> = None;
        let start = match last {
            Some((number, location)) => {
                let block = read_record(dir, number, location)
                    .and_then(|record| parse_record(&record, number))
                    .ok()
                    .filter(|block| block.number == number);
                match block {
                    Some(block) => Some((number + 1, location, block.header_hash().to_vec())),
                    None => {
                        clear_index(&index, &index_path)?;
                        limit = Some(number);
                        None
                    }
                }
            }
            None => None,
        };
        let (mut height, mut file_number, mut offset, mut last_hash) = match &start {
            Some((next, location, hash)) => (*next, location.file, location.end(), hash.clone()),
            None => (0, 0, 0, Vec::new()),
        };

        // Scan what the files hold past the index, in order, indexing good blocks and
        // cutting at the first bad record.
        let mut batch: Vec<(u64, Location, Vec<String>, Vec<u8>)> = Vec::new();
        loop {
            let path = dir.join(file_name(file_number));
            // Only what lies past the index is read: a clean open reads nothing.
            let (tail, file_length) = match read_from(&path, offset) {
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_error(&path, e)),
            };
            let tail = tail.as_slice();
            let mut cut: Option<String> = None;
            let mut position = offset;
            let mut rest = tail;
            while !rest.is_empty() {
                let Some((record_len, header_len)) = record_length(rest) else {
                    cut = Some("the record is cut short".into());
                    break;
                };
                let total = header_len + record_len;
                let Some(record) = rest.get(..total) else {
                    cut = Some("the record is cut short".into());
                    break;
                };
                if limit == Some(height) {
                    cut = Some("its record does not match its checksum".into());
                    break;
                }
                let block = match parse_record(record, height) {
                    Ok(block) => block,
                    Err(e) => {
                        cut = Some(e.to_string());
                        break;
                    }
                };
                if let Err(reason) = continues(&block, height, &last_hash) {
                    cut = Some(reason);
                    break;
                }
                let location = Location {
                    file: file_number,
                    crc: crc32fast::hash(record),
                    offset: position,
                    length: u64::try_from(total).unwrap_or(u64::MAX),
                };
                batch.push((
                    height,
                    location,
                    tx_ids(&block),
                    block
                        .metadata
                        .get(TRANSACTIONS_FILTER)
                        .cloned()
                        .unwrap_or_default(),
                ));
                last_hash = block.header_hash().to_vec();
                height += 1;
                position = location.end();
                rest = rest.get(total..).unwrap_or_default();
            }
            if let Some(reason) = cut {
                let cut_bytes = file_length.saturating_sub(position);
                recovery.truncated_bytes += cut_bytes;
                if recovery.truncated.is_none() {
                    recovery.truncated = Some((height, reason));
                }
                truncate(&path, position)?;
                // Later files hold blocks past the cut: they go too.
                let mut later = file_number + 1;
                loop {
                    let path = dir.join(file_name(later));
                    match std::fs::metadata(&path) {
                        Ok(meta) => {
                            recovery.truncated_bytes += meta.len();
                            std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                        }
                        Err(_) => break,
                    }
                    later += 1;
                }
                offset = position;
                break;
            }
            offset = position;
            let next = dir.join(file_name(file_number + 1));
            if next.exists() {
                file_number += 1;
                offset = 0;
            } else {
                break;
            }
        }
        recovery.reindexed = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        if !batch.is_empty() {
            let write = index.begin_write().map_err(|e| io_error(&index_path, e))?;
            {
                let mut blocks = write
                    .open_table(BLOCKS)
                    .map_err(|e| io_error(&index_path, e))?;
                let mut txids = write
                    .open_table(TXIDS)
                    .map_err(|e| io_error(&index_path, e))?;
                for (number, location, ids, filter) in &batch {
                    blocks
                        .insert(*number, location.encode().as_slice())
                        .map_err(|e| io_error(&index_path, e))?;
                    index_txids(&mut txids, *number, ids, filter)
                        .map_err(|e| io_error(&index_path, e))?;
                }
            }
            write.commit().map_err(|e| io_error(&index_path, e))?;
        }
        let path = dir.join(file_name(file_number));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        Ok((
            Self {
                dir: dir.to_owned(),
                config,
                index,
                file,
                file_number,
                file_size: offset,
                height,
                last_hash,
                unsynced: 0,
            },
            recovery,
        ))
    }

    /// The number of blocks: the next block's number.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The header hash of the last block (empty before the first).
    pub fn last_hash(&self) -> &[u8] {
        &self.last_hash
    }

    /// Appends `block` durably: it must be the next block of the chain (Fabric's texts
    /// otherwise). `txids` are its transactions' ids, as [`tx_ids`] reads them (the
    /// committer has them from validation already). Returns the record written. On a
    /// write error the file is cut back to where it was.
    pub fn append(
        &mut self,
        block: &StoredBlock,
        txids: &[String],
    ) -> Result<Vec<u8>, BlockStoreError> {
        if block.number != self.height {
            return Err(BlockStoreError::OutOfOrder(format!(
                "block number should have been {} but was {}",
                self.height, block.number
            )));
        }
        if self.height > 0 && block.previous_hash != self.last_hash {
            return Err(BlockStoreError::OutOfOrder(format!(
                "unexpected Previous block hash. Expected PreviousHash = [{}], PreviousHash referred in the latest block= [{}]",
                hex::encode(&self.last_hash),
                hex::encode(&block.previous_hash)
            )));
        }
        let record = blockfile::record(block);
        let length = u64::try_from(record.len()).unwrap_or(u64::MAX);
        if self.file_size > 0 && self.file_size + length > self.config.max_file_size {
            self.roll_file()?;
        }
        let path = self.dir.join(file_name(self.file_number));
        let written = self.file.write_all(&record).and_then(|()| {
            if self.config.sync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Cut a partial record back off so the next append starts clean.
            let _ = self.file.set_len(self.file_size);
            return Err(io_error(&path, e));
        }
        let location = Location {
            file: self.file_number,
            crc: crc32fast::hash(&record),
            offset: self.file_size,
            length,
        };
        self.file_size += length;
        self.height += 1;
        self.last_hash = block.header_hash().to_vec();
        self.index_block(block, txids, location)?;
        Ok(record)
    }

    fn roll_file(&mut self) -> Result<(), BlockStoreError> {
        let next = self.file_number + 1;
        let path = self.dir.join(file_name(next));
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        // The new file's directory entry must be durable before a block in it counts.
        if self.config.sync {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(&self.dir, e))?;
        }
        self.file_number = next;
        self.file_size = 0;
        Ok(())
    }

    fn index_block(
        &mut self,
        block: &StoredBlock,
        txids: &[String],
        location: Location,
    ) -> Result<(), BlockStoreError> {
        let path = self.dir.join("index.redb");
        let mut write = self.index.begin_write().map_err(|e| io_error(&path, e))?;
        self.unsynced += 1;
        let durable = self.unsynced >= INDEX_SYNC_EVERY;
        write
            .set_durability(if durable {
                Durability::Immediate
            } else {
                Durability::None
            })
            .map_err(|e| io_error(&path, e))?;
        {
            let mut blocks = write.open_table(BLOCKS).map_err(|e| io_error(&path, e))?;
            let mut index = write.open_table(TXIDS).map_err(|e| io_error(&path, e))?;
            blocks
                .insert(block.number, location.encode().as_slice())
                .map_err(|e| io_error(&path, e))?;
            let filter = block
                .metadata
                .get(TRANSACTIONS_FILTER)
                .cloned()
                .unwrap_or_default();
            index_txids(&mut index, block.number, txids, &filter)
                .map_err(|e| io_error(&path, e))?;
        }
        write.commit().map_err(|e| io_error(&path, e))?;
        if durable {
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Block `number`, read from its file and checked against its CRC.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>, BlockStoreError> {
        let path = self.dir.join("index.redb");
        let read = self.index.begin_read().map_err(|e| io_error(&path, e))?;
        let blocks = read.open_table(BLOCKS).map_err(|e| io_error(&path, e))?;
        let Some(location) = blocks.get(number).map_err(|e| io_error(&path, e))? else {
            return Ok(None);
        };
        let location =
            Location::decode(location.value()).ok_or_else(|| BlockStoreError::Corrupt {
                number,
                reason: "bad index entry".into(),
            })?;
        let record = read_record(&self.dir, number, location)?;
        parse_record(&record, number).map(Some)
    }

    /// Where transaction `txid` is, if any block holds it (valid or not).
    pub fn tx(&self, txid: &str) -> Result<Option<TxLocation>, BlockStoreError> {
        let path = self.dir.join("index.redb");
        let read = self.index.begin_read().map_err(|e| io_error(&path, e))?;
        let txids = read.open_table(TXIDS).map_err(|e| io_error(&path, e))?;
        let Some(value) = txids.get(txid).map_err(|e| io_error(&path, e))? else {
            return Ok(None);
        };
        let bytes = value.value();
        let (block, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| io_error(&path, "bad txid entry"))?;
        let (tx, code) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| io_error(&path, "bad txid entry"))?;
        Ok(Some(TxLocation {
            block: u64::from_be_bytes(*block),
            tx: u64::from_be_bytes(*tx),
            code: code.first().copied().unwrap_or(u8::MAX),
        }))
    }
}

impl Drop for BlockStore {
    fn drop(&mut self) {
        if self.unsynced > 0
            && let Ok(write) = self.index.begin_write()
        {
            // An empty durable commit makes the earlier non-durable ones durable.
            let _ = write.commit();
        }
    }
}

fn index_txids(
    txids: &mut redb::Table<'_, &str, &[u8]>,
    block: u64,
    ids: &[String],
    filter: &[u8],
) -> Result<(), redb::Error> {
    for (tx, id) in ids.iter().enumerate() {
        if id.is_empty() || txids.get(id.as_str())?.is_some() {
            continue;
        }
        let mut value = [0u8; 17];
        value[..8].copy_from_slice(&block.to_be_bytes());
        value[8..16].copy_from_slice(&u64::try_from(tx).unwrap_or(u64::MAX).to_be_bytes());
        value[16] = filter.get(tx).copied().unwrap_or(u8::MAX);
        txids.insert(id.as_str(), value.as_slice())?;
    }
    Ok(())
}

fn clear_index(index: &Database, path: &Path) -> Result<(), BlockStoreError> {
    let write = index.begin_write().map_err(|e| io_error(path, e))?;
    write.delete_table(BLOCKS).map_err(|e| io_error(path, e))?;
    write.delete_table(TXIDS).map_err(|e| io_error(path, e))?;
    write.open_table(BLOCKS).map_err(|e| io_error(path, e))?;
    write.open_table(TXIDS).map_err(|e| io_error(path, e))?;
    write.commit().map_err(|e| io_error(path, e))
}

/// (length of the block, length of the uvarint before it), if the uvarint is whole.
fn record_length(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut cursor = bytes;
    let length = prost::encoding::decode_varint(&mut cursor).ok()?;
    Some((usize::try_from(length).ok()?, bytes.len() - cursor.len()))
}

/// Reads and CRC-checks one record.
fn read_record(dir: &Path, number: u64, location: Location) -> Result<Vec<u8>, BlockStoreError> {
    let path = dir.join(file_name(location.file));
    let mut file = File::open(&path).map_err(|e| io_error(&path, e))?;
    file.seek(SeekFrom::Start(location.offset))
        .map_err(|e| io_error(&path, e))?;
    let mut record = vec![0; usize::try_from(location.length).unwrap_or(0)];
    file.read_exact(&mut record)
        .map_err(|e| io_error(&path, e))?;
    if crc32fast::hash(&record) != location.crc {
        return Err(BlockStoreError::Corrupt {
            number,
            reason: "its record does not match its checksum".into(),
        });
    }
    Ok(record)
}

fn parse_record(record: &[u8], number: u64) -> Result<StoredBlock, BlockStoreError> {
    match blockfile::read_blocks(record) {
        Ok(mut blocks) if blocks.len() == 1 => Ok(blocks.remove(0)),
        Ok(_) => Err(BlockStoreError::Corrupt {
            number,
            reason: "the record does not hold one block".into(),
        }),
        Err(e) => Err(BlockStoreError::Corrupt {
            number,
            reason: e.to_string(),
        }),
    }
}

/// Whether `block` is block `height` of a chain whose last header hash is `last_hash`.
fn continues(block: &StoredBlock, height: u64, last_hash: &[u8]) -> Result<(), String> {
    if block.number != height {
        return Err(format!(
            "block number should have been {height} but was {}",
            block.number
        ));
    }
    if height > 0 && block.previous_hash != last_hash {
        return Err(blockfile::PREVIOUS_HASH_MISMATCH.to_owned());
    }
    if block.data_hash != blockfile::data_hash(&block.data) {
        return Err(blockfile::DATA_HASH_MISMATCH.to_owned());
    }
    Ok(())
}

fn truncate(path: &Path, size: u64) -> Result<(), BlockStoreError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    file.set_len(size).map_err(|e| io_error(path, e))?;
    file.sync_all().map_err(|e| io_error(path, e))
}
