//! The Fabric gRPC services cchost speaks, with the names their stubs were generated under.
//!
//! The names come from the generated tonic servers, so they are exactly the gRPC paths a
//! Fabric shim, peer CLI or SDK uses: `/<service>/<method>`.

use cchost_proto::{gateway, orderer, protos};
use tonic::server::NamedService;

/// One gRPC service: its fully qualified name and methods, and who serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// Fully qualified name, e.g. `protos.ChaincodeSupport`.
    pub name: &'static str,
    /// Method names, in the order of the `.proto` file.
    pub methods: &'static [&'static str],
    /// Who serves it in a Fabric network.
    pub served_by: &'static str,
}

impl Service {
    /// The gRPC paths of every method: `/<service>/<method>`.
    pub fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.methods.iter().map(|m| format!("/{}/{m}", self.name))
    }
}

/// Every service of Fabric's protocol that cchost implements or calls.
pub fn all() -> [Service; 6] {
    use gateway::gateway_server::GatewayServer;
    use orderer::atomic_broadcast_server::AtomicBroadcastServer;
    use protos::chaincode_server::ChaincodeServer;
    use protos::chaincode_support_server::ChaincodeSupportServer;
    use protos::deliver_server::DeliverServer;
    use protos::endorser_server::EndorserServer;
    [
        Service {
            name: <ChaincodeSupportServer<()> as NamedService>::NAME,
            methods: &["Register"],
            served_by: "the peer; chaincode dials in and sends REGISTER",
        },
        Service {
            name: <ChaincodeServer<()> as NamedService>::NAME,
            methods: &["Connect"],
            served_by: "chaincode-as-a-service; the peer dials out",
        },
        Service {
            name: <EndorserServer<()> as NamedService>::NAME,
            methods: &["ProcessProposal"],
            served_by: "the peer",
        },
        Service {
            name: <DeliverServer<()> as NamedService>::NAME,
            methods: &["Deliver", "DeliverFiltered", "DeliverWithPrivateData"],
            served_by: "the peer",
        },
        Service {
            name: <GatewayServer<()> as NamedService>::NAME,
            methods: &[
                "Endorse",
                "Submit",
                "CommitStatus",
                "Evaluate",
                "ChaincodeEvents",
            ],
            served_by: "the peer",
        },
        Service {
            name: <AtomicBroadcastServer<()> as NamedService>::NAME,
            methods: &["Broadcast", "Deliver"],
            served_by: "the ordering service",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths_are_fabrics() {
        let paths: Vec<String> = all().iter().flat_map(|s| s.paths()).collect();
        assert_eq!(
            paths,
            [
                "/protos.ChaincodeSupport/Register",
                "/protos.Chaincode/Connect",
                "/protos.Endorser/ProcessProposal",
                "/protos.Deliver/Deliver",
                "/protos.Deliver/DeliverFiltered",
                "/protos.Deliver/DeliverWithPrivateData",
                "/gateway.Gateway/Endorse",
                "/gateway.Gateway/Submit",
                "/gateway.Gateway/CommitStatus",
                "/gateway.Gateway/Evaluate",
                "/gateway.Gateway/ChaincodeEvents",
                "/orderer.AtomicBroadcast/Broadcast",
                "/orderer.AtomicBroadcast/Deliver",
            ]
        );
    }
}
