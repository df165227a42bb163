//! Chaincode runtimes. Each starts a chaincode and connects it to `ChaincodeSupport`'s
//! handler: [`wasm`] runs it in this process in wasmtime, [`docker`] builds and runs Go,
//! Node and Java chaincode in containers that dial back over gRPC, [`ccaas`] dials
//! chaincode that runs as a service, and [`external`] runs Fabric's external builders.

pub mod ccaas;
pub mod docker;
pub mod external;
pub mod wasm;
