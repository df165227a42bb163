//! Fabric's gRPC methods as cchost compiled them, read from the `.proto` descriptors,
//! and which of them cchost serves and dials today (`cchost version` lists those).
//!
//! Paths, message types and streaming flags come from
//! [`cchost_proto::FILE_DESCRIPTOR_SET`], the same descriptors the stubs were generated
//! from. The integration test `proto_compat` checks them against Fabric's own service
//! definitions.

use cchost_proto::FILE_DESCRIPTOR_SET;
use prost::Message;
use prost_types::FileDescriptorSet;

/// One gRPC method of a Fabric service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrpcMethod {
    /// `/<package>.<Service>/<Method>`, e.g. `/protos.ChaincodeSupport/Register`.
    pub path: String,
    /// Fully qualified request message, e.g. `protos.ChaincodeMessage`.
    pub request: String,
    /// Fully qualified response message.
    pub response: String,
    /// The client sends a stream.
    pub client_streaming: bool,
    /// The server answers with a stream.
    pub server_streaming: bool,
}

/// The methods cchost serves: the chaincode listener (`cchost node`, `cchost devnode`),
/// wasm chaincode as a service (`cchost chaincode serve`), and the node's client services
/// (the endorser, Deliver, the built-in orderer, the Gateway).
pub const SERVED: &[&str] = &[
    "/protos.ChaincodeSupport/Register",
    "/protos.Chaincode/Connect",
    "/protos.Endorser/ProcessProposal",
    "/protos.Deliver/Deliver",
    "/protos.Deliver/DeliverFiltered",
    "/orderer.AtomicBroadcast/Broadcast",
    "/orderer.AtomicBroadcast/Deliver",
    "/gateway.Gateway/Endorse",
    "/gateway.Gateway/Submit",
    "/gateway.Gateway/CommitStatus",
    "/gateway.Gateway/Evaluate",
    "/gateway.Gateway/ChaincodeEvents",
];

/// The methods cchost calls as a client: chaincode-as-a-service (the peer side), the
/// peer's chaincode listener (`cchost chaincode run`), and a node's services (the CLI,
/// the REST endpoint).
pub const DIALED: &[&str] = &[
    "/gateway.Gateway/Endorse",
    "/gateway.Gateway/Submit",
    "/gateway.Gateway/CommitStatus",
    "/gateway.Gateway/Evaluate",
    "/protos.Chaincode/Connect",
    "/protos.ChaincodeSupport/Register",
    "/protos.Endorser/ProcessProposal",
    "/protos.Deliver/Deliver",
    "/protos.Deliver/DeliverFiltered",
    "/orderer.AtomicBroadcast/Broadcast",
];

/// Every method of every service in Fabric's protocol as cchost compiled it, in `.proto`
/// file order (most of them not served yet: see [`SERVED`]).
pub fn grpc_methods() -> Result<Vec<GrpcMethod>, prost::DecodeError> {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)?;
    let type_name = |t: &str| t.trim_start_matches('.').to_owned();
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                methods.push(GrpcMethod {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    request: type_name(method.input_type()),
                    response: type_name(method.output_type()),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    Ok(methods)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cchost_proto::protos;
    use tonic::server::NamedService;

    #[test]
    fn the_served_and_dialed_methods_are_those_of_the_generated_server_and_client() {
        let methods: Vec<String> = grpc_methods()
            .unwrap()
            .into_iter()
            .map(|m| m.path)
            .collect();
        for path in SERVED.iter().chain(DIALED) {
            assert!(
                methods.iter().any(|m| m == path),
                "{path} is not in the descriptors"
            );
        }
        // What the servers mount and the clients dial.
        let support =
            <protos::chaincode_support_server::ChaincodeSupportServer<()> as NamedService>::NAME;
        let chaincode = <protos::chaincode_server::ChaincodeServer<()> as NamedService>::NAME;
        let endorser = <protos::endorser_server::EndorserServer<()> as NamedService>::NAME;
        let deliver = <protos::deliver_server::DeliverServer<()> as NamedService>::NAME;
        let broadcast = <cchost_proto::orderer::atomic_broadcast_server::AtomicBroadcastServer<()> as NamedService>::NAME;
        let gateway =
            <cchost_proto::gateway::gateway_server::GatewayServer<()> as NamedService>::NAME;
        let m = |service: &str, method: &str| format!("/{service}/{method}");
        assert_eq!(
            SERVED,
            [
                m(support, "Register"),
                m(chaincode, "Connect"),
                m(endorser, "ProcessProposal"),
                m(deliver, "Deliver"),
                m(deliver, "DeliverFiltered"),
                m(broadcast, "Broadcast"),
                m(broadcast, "Deliver"),
                m(gateway, "Endorse"),
                m(gateway, "Submit"),
                m(gateway, "CommitStatus"),
                m(gateway, "Evaluate"),
                m(gateway, "ChaincodeEvents"),
            ]
        );
        assert_eq!(
            DIALED,
            [
                m(gateway, "Endorse"),
                m(gateway, "Submit"),
                m(gateway, "CommitStatus"),
                m(gateway, "Evaluate"),
                m(chaincode, "Connect"),
                m(support, "Register"),
                m(endorser, "ProcessProposal"),
                m(deliver, "Deliver"),
                m(deliver, "DeliverFiltered"),
                m(broadcast, "Broadcast"),
            ]
        );
    }

    #[test]
    fn register_is_a_bidirectional_stream_of_chaincode_messages() {
        let register = grpc_methods()
            .unwrap()
            .into_iter()
            .find(|m| m.path == "/protos.ChaincodeSupport/Register")
            .unwrap();
        assert_eq!(
            register,
            GrpcMethod {
                path: "/protos.ChaincodeSupport/Register".into(),
                request: "protos.ChaincodeMessage".into(),
                response: "protos.ChaincodeMessage".into(),
                client_streaming: true,
                server_streaming: true,
            }
        );
    }
}
