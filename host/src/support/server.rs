//! The gRPC service `protos.ChaincodeSupport` (`Register`) that chaincode dials into.

use std::future::Future;
use std::time::Duration;

use cchost_proto::protos::ChaincodeMessage;
use cchost_proto::protos::chaincode_support_server::{self, ChaincodeSupportServer};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::ChaincodeSupport;

/// Fabric's chaincode listener keepalive: the server pings every 2 h with a 20 s timeout.
/// Client pings are never policed, so the shims' pings (Node every 110 s, Go every 60 s)
/// are always accepted.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// HTTP/2 streams per connection: a shim uses one.
const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// The connections `listener` accepts, with Nagle's algorithm off: a shim's messages
/// are small and answer each other, and a delayed ACK would hold each one ~40 ms.
pub fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// `/protos.ChaincodeSupport/Register` on top of [`ChaincodeSupport`].
#[derive(Debug, Clone)]
pub struct RegisterService {
    support: ChaincodeSupport,
}

#[tonic::async_trait]
impl chaincode_support_server::ChaincodeSupport for RegisterService {
    type RegisterStream = ReceiverStream<Result<ChaincodeMessage, Status>>;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Self::RegisterStream>, Status> {
        let Some(ca) = self.support.config().tls.clone() else {
            return Ok(Response::new(
                self.support.connect(Box::pin(request.into_inner())),
            ));
        };
        // Fabric's TLS interceptor: the first message must register the package the
        // client certificate was issued for; anything else ends the stream with the
        // reason.
        let peer_cert = request
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()));
        let mut first = true;
        let inbound = request.into_inner().map(move |item| {
            let message = item?;
            if std::mem::take(&mut first) {
                ca.authenticate(&message, peer_cert.as_deref())
                    .map_err(Status::permission_denied)?;
            }
            Ok(message)
        });
        Ok(Response::new(self.support.connect(Box::pin(inbound))))
    }
}

impl ChaincodeSupport {
    /// The tonic service, with the configured message size limit both ways.
    pub fn grpc_service(&self) -> ChaincodeSupportServer<RegisterService> {
        let limit = self.config().max_message_size;
        ChaincodeSupportServer::new(RegisterService {
            support: self.clone(),
        })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit)
    }

    /// Serves chaincode connections on `listener` until `shutdown` completes; then ends
    /// every chaincode stream and waits for the connections to close. With
    /// [`SupportConfig::tls`](super::SupportConfig::tls) the listener requires TLS with a
    /// client certificate from that CA.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let mut server = tonic::transport::Server::builder();
        if let Some(ca) = &self.config().tls {
            server = server.tls_config(ca.server_config())?;
        }
        server
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .add_service(self.grpc_service())
            .serve_with_incoming_shutdown(incoming(listener), async {
                shutdown.await;
                self.close_streams();
            })
            .await
    }
}
