//! # cchost: a WebAssembly-sandboxed Hyperledger Fabric chaincode host
//!
//! cchost runs Fabric chaincode compiled to `wasm32-wasip1` inside wasmtime, and Go, Node
//! and Java chaincode in Docker containers (or started by hand, or as a service), behind
//! one peer-side implementation of Fabric's chaincode shim protocol, which the real npm
//! `fabric-shim` runs against unmodified.
//!
//! **Status:** the chaincode side is built: [`support`] (the handler, registry and
//! `execute` of a signed proposal), [`ledger`] (redb state, history, Fabric's read/write
//! sets), [`runtime`] (wasm in wasmtime, Docker containers through bollard,
//! chaincode-as-a-service), [`launcher`] (one cancel-safe launch path with startup
//! timeouts and crash-loop back-off), [`tls`] (mutual TLS on the chaincode listener),
//! [`metrics`] and [`operations`]. The commit half of the peer is built as a library:
//! [`orderer`] (single-node block cutting, `AtomicBroadcast/Broadcast`), [`ledger`]'s
//! `blocks`, `validation`, `blockstore` and `commit` (Fabric blocks, validation codes,
//! block files with recovery, notifications), [`msp`] and [`transaction`]. The node
//! ([`node`]) serves it: [`endorser`], [`lifecycle`], [`deliver`], and the client APIs:
//! [`gateway`] (Fabric's Gateway), [`rest`] (Fabric v0.6's JSON-RPC 2.0 endpoint) and
//! [`client`] (what the `peer`-shaped CLI is built on).

pub mod bench;
pub mod client;
pub mod deliver;
pub mod descriptors;
pub mod endorser;
pub mod gateway;
pub mod handler;
pub mod ids;
pub mod launcher;
pub mod ledger;
pub mod lifecycle;
pub mod metrics;
pub mod msp;
pub mod node;
pub mod operations;
pub mod orderer;
pub mod package;
pub mod packaging;
pub mod proposal;
pub mod rest;
pub mod runtime;
pub mod support;
pub mod testing;
pub mod tls;
pub mod transaction;

pub use cchost_proto as proto;
