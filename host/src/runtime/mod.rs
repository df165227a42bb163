//! Chaincode runtimes. Each starts a chaincode and connects it to `ChaincodeSupport`'s
//! handler: [`wasm`] runs it in this process in wasmtime, [`docker`] builds and runs Go,
//! Node and Java chaincode in containers that dial back over gRPC, [`ccaas`] dials
//! chaincode that runs as a service, and [`external`] runs Fabric's external builders.

pub mod ccaas;
pub mod docker;
pub mod external;
pub mod wasm;

/// An error and its causes on one line: transport errors (tonic's, hyper's) say little
/// alone ("transport error"), their causes say what failed.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
