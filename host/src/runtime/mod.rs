//! Chaincode runtimes. Each starts a chaincode and connects it to `ChaincodeSupport`'s
//! handler: `wasm` runs it in-process in wasmtime, `external` dials chaincode that runs
//! as a service.

pub mod docker;
pub mod external;
pub mod wasm;
