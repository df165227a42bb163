//! Chaincode runtimes. Each starts a chaincode and connects it to `ChaincodeSupport`'s
//! handler; `wasm` runs it in-process in wasmtime.

pub mod wasm;
