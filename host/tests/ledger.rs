//! Block files written by Hyperledger Fabric itself (`../shared/fixtures/`, Fabric's own
//! test data with Fabric's verdicts), read and verified by cchost; the chain's hashes
//! recomputed independently (the `der` crate's DER, not cchost's encoder).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use cchost::ledger::blockfile::{self, BlockCheck};
use sha2::{Digest, Sha256};

/// The fixtures next to the repository; missing is a failure, never a skip.
fn fixture(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    let path = dir.join(name);
    assert!(
        path.is_dir(),
        "{} is missing: the Fabric block-file fixtures live in ../shared/fixtures next to \
         the repository",
        path.display()
    );
    path
}

#[test]
fn fabrics_sample_ledger_reads_as_eight_blocks_whose_chain_and_data_hashes_hold() {
    let blocks = blockfile::read_dir(&fixture("fabric-sample-ledger")).unwrap();
    let numbers: Vec<u64> = blocks.iter().map(|b| b.number).collect();
    assert_eq!(numbers, (0..8).collect::<Vec<_>>());
    assert!(
        blocks[0].previous_hash.is_empty(),
        "the genesis block has no previous hash"
    );
    for pair in blocks.windows(2) {
        assert_eq!(
            pair[1].previous_hash,
            common::independent_header_hash(&pair[0])
        );
        assert_eq!(
            pair[0].header_hash().to_vec(),
            common::independent_header_hash(&pair[0])
        );
    }
    for block in &blocks {
        let concatenated: Vec<u8> = block.data.concat();
        assert_eq!(block.data_hash, Sha256::digest(&concatenated).to_vec());
        // Fabric always writes the five metadata slots.
        assert_eq!(block.metadata.len(), 5, "block {}", block.number);
    }
    // The genesis block is the config block alone, its filter "VALID".
    assert_eq!(blocks[0].data.len(), 1);
    assert_eq!(blocks[0].metadata[2], [0]);
    assert!(blockfile::verify(&blocks).iter().all(|c| c.valid));
}

#[test]
fn fabrics_bad_ledger_gets_fabrics_verdicts_block_by_block() {
    let blocks = blockfile::read_dir(&fixture("fabric-bad-ledger")).unwrap();
    let checks = blockfile::verify(&blocks);
    let bad: Vec<&BlockCheck> = checks.iter().filter(|c| !c.valid).collect();
    assert_eq!(
        bad,
        [
            &BlockCheck {
                block_num: 0,
                valid: false,
                errors: vec!["DataHash mismatch".to_owned()],
            },
            &BlockCheck {
                block_num: 1,
                valid: false,
                errors: vec!["PreviousHash mismatch".to_owned()],
            },
        ]
    );
    assert!(checks.len() > 2 && checks[2..].iter().all(|c| c.valid));
    // Recomputed independently: block 0's data is not what its header says, and block 1
    // does not point at block 0's header.
    let concatenated: Vec<u8> = blocks[0].data.concat();
    assert_ne!(blocks[0].data_hash, Sha256::digest(&concatenated).to_vec());
    assert_ne!(
        blocks[1].previous_hash,
        common::independent_header_hash(&blocks[0])
    );
    assert_eq!(
        blocks[2].previous_hash,
        common::independent_header_hash(&blocks[1])
    );
}

#[test]
fn ledger_verify_prints_a_verdict_per_block_and_fails_on_a_bad_chain() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cchost"))
            .args(args)
            .output()
            .unwrap()
    };
    let good = fixture("fabric-sample-ledger");
    let out = run(&["ledger", "verify", good.to_str().unwrap()]);
    assert!(out.status.success());
    let expected: String = (0..8)
        .map(|n| format!("block {n}: valid\n"))
        .chain(["8 blocks: 8 valid, 0 erroneous\n".to_owned()])
        .collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    let bad = fixture("fabric-bad-ledger").join("blockfile_000000");
    let out = run(&["ledger", "verify", "--json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "[{\"blockNum\":0,\"valid\":false,\"errors\":[\"DataHash mismatch\"]},\
         {\"blockNum\":1,\"valid\":false,\"errors\":[\"PreviousHash mismatch\"]}]\n"
    );
}

#[test]
fn a_torn_last_record_is_reported_with_its_offset() {
    let file = fixture("fabric-sample-ledger").join("blockfile_000000");
    let bytes = std::fs::read(file).unwrap();
    let whole = blockfile::read_blocks(&bytes).unwrap();
    let torn = &bytes[..bytes.len() - 10];
    let (blocks, error) = blockfile::read_blocks_lenient(torn);
    assert_eq!(blocks, whole[..7]);
    let error = error.unwrap().to_string();
    assert!(
        error.starts_with("block file: the record at offset ")
            && error.ends_with(" is cut short: the block"),
        "{error}"
    );
}

#[test]
fn commit_hashes_of_fabrics_sample_ledger_are_recomputed_from_its_blocks() {
    let blocks = blockfile::read_dir(&fixture("fabric-sample-ledger")).unwrap();
    // The genesis block has none; from block 1 on each chains to the previous one.
    assert_eq!(blockfile::stored_commit_hash(&blocks[0]), None);
    let mut previous: Option<Vec<u8>> = None;
    for block in &blocks[1..] {
        let stored = blockfile::stored_commit_hash(block).unwrap();
        let computed = blockfile::commit_hash(block, previous.as_deref()).unwrap();
        assert_eq!(computed.to_vec(), stored, "block {}", block.number);
        previous = Some(stored);
    }
}

#[test]
fn a_changed_commit_hash_fails_its_block_and_the_next_which_chains_from_it() {
    use prost::Message;
    let mut blocks = blockfile::read_dir(&fixture("fabric-sample-ledger")).unwrap();
    let slot = &mut blocks[3].metadata[blockfile::COMMIT_HASH];
    let mut metadata = cchost::proto::common::Metadata::decode(slot.as_slice()).unwrap();
    metadata.value[0] ^= 1;
    *slot = metadata.encode_to_vec();
    let bad: Vec<(u64, Vec<String>)> = blockfile::verify(&blocks)
        .into_iter()
        .filter(|c| !c.valid)
        .map(|c| (c.block_num, c.errors))
        .collect();
    let mismatch = vec!["CommitHash mismatch".to_owned()];
    assert_eq!(bad, [(3, mismatch.clone()), (4, mismatch)]);
}

#[test]
fn fabrics_block_files_are_written_back_byte_for_byte() {
    for ledger in ["fabric-sample-ledger", "fabric-bad-ledger"] {
        let file = fixture(ledger).join("blockfile_000000");
        let bytes = std::fs::read(&file).unwrap();
        let written: Vec<u8> = blockfile::read_blocks(&bytes)
            .unwrap()
            .iter()
            .flat_map(blockfile::record)
            .collect();
        assert!(written == bytes, "{ledger}: the records differ");
    }
}
