//! Chaincode runtimes. Each starts a chaincode and connects it to `ChaincodeSupport`'s
//! handler: [`wasm`] runs it in this process in wasmtime, [`docker`] builds and runs Go,
//! Node and Java chaincode in containers that dial back over gRPC, and [`ccaas`] dials
//! chaincode that runs as a service.

pub mod ccaas;
pub mod docker;
pub mod wasm;
