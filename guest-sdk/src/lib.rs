//! # cchost-sdk: writing Fabric chaincode in Rust for cchost's wasm sandbox
//!
//! Chaincode written with this crate is compiled with
//! `cargo build --release --target wasm32-wasip1` and runs inside cchost's wasmtime
//! sandbox. Each call the chaincode makes on its stub (`get_state`, `put_state`, range
//! queries, events, ...) becomes an imported host call, which the host turns into the same
//! `ChaincodeMessage` that Fabric's Go, Node and Java shims send, served by the same
//! peer-side handler.
//!
//! This crate will own the guest side of that ABI (the only `extern "C"` block), the stub
//! API that mirrors Fabric's `ChaincodeStubInterface`, the contract macros, and a
//! `MockStub` for testing chaincode logic natively with `cargo test`.
//!
//! **Status:** not written yet. Today the crate only re-exports [`cchost_proto`], built
//! without gRPC so that it compiles for `wasm32-wasip1`. The ABI and the stub API arrive
//! with the Wasm runtime issue; the contract API with the chaincode authors' issue. See
//! the repository's README for the plan.

pub use cchost_proto as proto;
