//! Hyperledger Fabric's protocol buffers for Rust.
//!
//! The `.proto` files under `fabric/` are written for cchost with exactly Fabric's package
//! names, message names, field numbers and enum values (fabric-protos v0.3, i.e. Fabric 2.5
//! plus the 3.x additions `WRITE_BATCH_STATE`, `GET_STATE_MULTIPLE` and
//! `ChaincodeAdditionalParams`). Wire bytes and gRPC paths therefore match Fabric's:
//! `/protos.ChaincodeSupport/Register`, `/protos.Chaincode/Connect`,
//! `/protos.Endorser/ProcessProposal`, `/protos.Deliver/Deliver`,
//! `/orderer.AtomicBroadcast/Broadcast`, `/gateway.Gateway/Endorse`, ... The integration
//! test `proto_compat` proves this against Fabric's own generated JavaScript
//! (`@hyperledger/fabric-protos` from npm) in both directions.
//!
//! Each Fabric package is a module of the same name. Maps are `BTreeMap`s, so encoding is
//! deterministic.
//!
//! # Features
//!
//! - `grpc` (default): tonic client and server stubs for every service. Turn it off for
//!   chaincode built for `wasm32-wasip1`, which needs only the messages:
//!   `cargo build -p cchost-proto --no-default-features --target wasm32-wasip1`.
//!
//! ```
//! use cchost_proto::protos::{ChaincodeMessage, GetState, chaincode_message::Type};
//! use prost::Message;
//!
//! let request = ChaincodeMessage {
//!     r#type: Type::GetState.into(),
//!     payload: GetState { key: "asset1".into(), collection: String::new() }.encode_to_vec(),
//!     txid: "b4f6...".into(),
//!     channel_id: "mychannel".into(),
//!     ..Default::default()
//! };
//! let bytes = request.encode_to_vec();
//! assert_eq!(ChaincodeMessage::decode(bytes.as_slice()).unwrap(), request);
//! ```

// Generated code: its docs are the comments of the .proto files.
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

pub use prost;
pub use prost_types;

/// The compiled `.proto` files as an encoded `google.protobuf.FileDescriptorSet`: the
/// source of truth for service and method names (gRPC reflection, tests).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/fabric_descriptor_set.bin"));

/// `common`: envelopes, headers, blocks, policies and MSP principals.
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

/// `msp`: serialized identities.
pub mod msp {
    include!(concat!(env!("OUT_DIR"), "/msp.rs"));
}

/// `protos`: the chaincode shim protocol, proposals, transactions, events, the endorser.
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

/// `lifecycle`: the `_lifecycle` system chaincode's arguments, results and state.
pub mod lifecycle {
    include!(concat!(env!("OUT_DIR"), "/lifecycle.rs"));
}

/// `orderer`: seek positions and the atomic broadcast service.
pub mod orderer {
    include!(concat!(env!("OUT_DIR"), "/orderer.rs"));
}

/// `gateway`: the Fabric Gateway service.
pub mod gateway {
    include!(concat!(env!("OUT_DIR"), "/gateway.rs"));
}

/// `rwset`: transaction read/write sets.
pub mod rwset {
    include!(concat!(env!("OUT_DIR"), "/rwset.rs"));
}

/// `kvrwset`: key/value reads, writes, range-query info.
pub mod kvrwset {
    include!(concat!(env!("OUT_DIR"), "/kvrwset.rs"));
}

/// `queryresult`: range and history query results.
pub mod queryresult {
    include!(concat!(env!("OUT_DIR"), "/queryresult.rs"));
}
