//! Mutual TLS on the chaincode listener: a Rust gRPC client with certificates from the
//! host's chaincode CA (the Docker test runs the real Node shim over the same TLS).

use std::sync::Arc;
use std::time::Duration;

use cchost::ids::PackageId;
use cchost::proto::protos::chaincode_message::Type;
use cchost::proto::protos::chaincode_support_client::ChaincodeSupportClient;
use cchost::proto::protos::{ChaincodeId, ChaincodeMessage};
use cchost::support::SupportConfig;
use cchost::tls::{ChaincodeCa, ClientCredentials};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::host::TestHost;

const WAIT: Duration = Duration::from_secs(10);

fn register(name: &str) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: Type::Register.into(),
        payload: ChaincodeId {
            name: name.to_owned(),
            ..Default::default()
        }
        .encode_to_vec(),
        ..Default::default()
    }
}

/// Opens `Register` over TLS (with the certificate and key `identity`, or none), sends REGISTER
/// for `name`, and returns what came back first: the message types, or the status that
/// ended the stream.
async fn register_as(
    host: &TestHost,
    ca: &ChaincodeCa,
    identity: Option<(&str, &str)>,
    name: &str,
) -> Result<Vec<Type>, String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.ca_pem()));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(format!("https://{}", host.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let (tx, rx) = mpsc::channel(4);
    tx.send(register(name)).await.unwrap();
    let mut inbound = ChaincodeSupportClient::new(channel)
        .register(ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("register: {}", s.message()))?
        .into_inner();
    let mut types = Vec::new();
    while types.len() < 2 {
        match tokio::time::timeout(WAIT, inbound.message()).await {
            Err(_) => return Err("silent".to_owned()),
            Ok(Ok(Some(message))) => types.push(Type::try_from(message.r#type).unwrap()),
            Ok(Ok(None)) => return Err("ended".to_owned()),
            Ok(Err(status)) => return Err(format!("{:?}: {}", status.code(), status.message())),
        }
    }
    drop(tx);
    Ok(types)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_registers_only_with_the_certificate_issued_for_it() {
    let ca = Arc::new(ChaincodeCa::new(&["127.0.0.1"]).unwrap());
    let host = TestHost::start(SupportConfig {
        tls: Some(Arc::clone(&ca)),
        ..SupportConfig::default()
    })
    .await;
    let (a, b) = (PackageId::new("a_1:0a"), PackageId::new("b_1:0b"));
    let (cert_a, cert_b) = (ca.issue(&a).unwrap(), ca.issue(&b).unwrap());
    host.support.expect_registration(&a);
    host.support.expect_registration(&b);

    // B's certificate (same CA, valid TLS) cannot register A: Fabric's refusal.
    let b_der = pem_der(&cert_b.cert_pem);
    let refused = register_as(&host, &ca, Some(pair(&cert_b)), a.as_str()).await;
    assert_eq!(
        refused,
        Err(format!(
            "Unknown: chaincode stream failed: Chaincode {a} with given certificate hash {} belongs to a different chaincode",
            hex::encode(Sha256::digest(&b_der))
        ))
    );
    assert!(!host.support.is_ready(&a));

    // No client certificate: the handshake itself is refused.
    let anonymous = register_as(&host, &ca, None, a.as_str()).await;
    assert!(anonymous.is_err(), "{anonymous:?}");
    assert!(!host.support.is_ready(&a));

    // A's own certificate registers A: REGISTERED, then READY.
    assert_eq!(
        register_as(&host, &ca, Some(pair(&cert_a)), a.as_str()).await,
        Ok(vec![Type::Registered, Type::Ready])
    );

    // A certificate whose launch ended (dropped credentials) is no longer bound.
    let b_hash = hex::encode(Sha256::digest(&b_der));
    let kept = (cert_b.cert_pem.clone(), cert_b.key_pem.clone());
    drop(cert_b);
    assert_eq!(
        register_as(&host, &ca, Some((&kept.0, &kept.1)), b.as_str()).await,
        Err(format!(
            "Unknown: chaincode stream failed: Chaincode {b} with given certificate hash {b_hash} not found in registry"
        ))
    );
}

fn pair(credentials: &ClientCredentials) -> (&str, &str) {
    (&credentials.cert_pem, &credentials.key_pem)
}

/// The DER bytes of a PEM certificate.
fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}
