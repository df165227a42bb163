//! The Fabric gRPC services cchost speaks, read from the compiled `.proto` descriptors.
//!
//! Nothing here is written by hand: paths, message types and streaming flags come from
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

/// Every method of every service in Fabric's protocol as cchost compiled it, in `.proto`
/// file order.
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
    use cchost_proto::{gateway, orderer, protos};
    use tonic::server::NamedService;

    #[test]
    fn generated_servers_carry_the_service_names_of_the_descriptors() {
        let mut from_descriptors: Vec<String> = grpc_methods()
            .unwrap()
            .into_iter()
            .filter_map(|m| Some(m.path.trim_start_matches('/').split_once('/')?.0.to_owned()))
            .collect();
        from_descriptors.dedup();
        from_descriptors.sort();
        let mut generated = vec![
            <protos::chaincode_support_server::ChaincodeSupportServer<()> as NamedService>::NAME,
            <protos::chaincode_server::ChaincodeServer<()> as NamedService>::NAME,
            <protos::endorser_server::EndorserServer<()> as NamedService>::NAME,
            <protos::deliver_server::DeliverServer<()> as NamedService>::NAME,
            <gateway::gateway_server::GatewayServer<()> as NamedService>::NAME,
            <orderer::atomic_broadcast_server::AtomicBroadcastServer<()> as NamedService>::NAME,
        ];
        generated.sort();
        assert_eq!(from_descriptors, generated);
        assert_eq!(
            generated,
            [
                "gateway.Gateway",
                "orderer.AtomicBroadcast",
                "protos.Chaincode",
                "protos.ChaincodeSupport",
                "protos.Deliver",
                "protos.Endorser",
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
