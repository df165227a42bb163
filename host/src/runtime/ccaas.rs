//! Chaincode-as-a-service: the chaincode runs as a gRPC server somewhere (started by the
//! operator), and the peer dials its `/protos.Chaincode/Connect` at the address from the
//! package's `connection.json`, then runs the same handler on that stream. The chaincode
//! sends REGISTER first, as in client mode.

use std::time::Duration;

use cchost_proto::protos::ChaincodeMessage;
use cchost_proto::protos::chaincode_client::ChaincodeClient;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

use crate::ids::PackageId;
use crate::launcher::{ChaincodeRuntime, LaunchError, RunningChaincode};
use crate::package::{CCAAS_TYPE, CONNECTION_FILE, ChaincodePackage, EXTERNAL_TYPE};
use crate::support::ChaincodeSupport;

/// Fabric's default `dial_timeout`.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// `connection.json` of a chaincode-as-a-service package.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConnectionInfo {
    /// `host:port` the chaincode listens on.
    pub address: String,
    /// How long to wait for the connection: a Go duration string (`"10s"`) or
    /// nanoseconds. Default 3 s.
    #[serde(default, deserialize_with = "dial_timeout")]
    pub dial_timeout: Option<Duration>,
    /// Whether the chaincode's server uses TLS.
    #[serde(default)]
    pub tls_required: bool,
    /// Whether it requires a client certificate.
    #[serde(default)]
    pub client_auth_required: bool,
    /// The CA the server's certificate is checked against (PEM), with `tls_required`.
    #[serde(default)]
    pub root_cert: String,
    /// The certificate presented to the server (PEM), with `client_auth_required`.
    #[serde(default)]
    pub client_cert: String,
    /// Its private key (PEM).
    #[serde(default)]
    pub client_key: String,
    /// Fabric 3.x: the name the server's certificate is checked for instead of the
    /// address's host (as in Fabric, only with `client_auth_required`).
    #[serde(default)]
    pub domain: String,
}

impl ConnectionInfo {
    /// Reads and checks the `connection.json` of `package`.
    pub fn from_package(package: &ChaincodePackage) -> Result<Self, LaunchError> {
        let bytes = package
            .code_file(CONNECTION_FILE)
            .ok_or_else(|| LaunchError::Start {
                package_id: package.id().clone(),
                reason: format!("a {CCAAS_TYPE} package needs {CONNECTION_FILE} in code.tar.gz"),
            })?;
        Self::from_json(bytes, package.id())
    }

    /// Reads and checks a `connection.json` (from a package, or released by an external
    /// builder) for chaincode `package_id`.
    pub fn from_json(bytes: &[u8], package_id: &PackageId) -> Result<Self, LaunchError> {
        let fail = |reason: String| LaunchError::Start {
            package_id: package_id.clone(),
            reason,
        };
        let info: Self = serde_json::from_slice(bytes)
            .map_err(|e| fail(format!("{CONNECTION_FILE} is not valid: {e}")))?;
        if info.address.is_empty() || !info.address.contains(':') {
            return Err(fail(format!(
                "{CONNECTION_FILE}: address must be host:port, got {:?}",
                info.address
            )));
        }
        if info.tls_required && info.root_cert.is_empty() {
            return Err(fail(format!(
                "{CONNECTION_FILE}: tls_required needs root_cert, the CA of the server's certificate"
            )));
        }
        if info.client_auth_required
            && (!info.tls_required || info.client_cert.is_empty() || info.client_key.is_empty())
        {
            return Err(fail(format!(
                "{CONNECTION_FILE}: client_auth_required needs tls_required, client_cert and client_key"
            )));
        }
        Ok(info)
    }

    /// The TLS settings of the connection, when `tls_required`.
    fn tls(&self) -> Option<tonic::transport::ClientTlsConfig> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        if !self.tls_required {
            return None;
        }
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.root_cert));
        if self.client_auth_required {
            tls = tls.identity(Identity::from_pem(&self.client_cert, &self.client_key));
            if !self.domain.is_empty() {
                return Some(tls.domain_name(&self.domain));
            }
        }
        Some(tls.domain_name(host))
    }
}

fn dial_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Nanos(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Nanos(n) => Ok(Some(Duration::from_nanos(n))),
        Raw::Text(t) => parse_go_duration(&t).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("dial_timeout {t:?} is not a duration like \"10s\""))
        }),
    }
}

/// A Go duration (`time.ParseDuration`: `10s`, `1m30s`, `1.5s`, `500ms`), read with
/// jiff's duration parser (which accepts a superset); negative durations are refused.
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    let duration: jiff::SignedDuration = text.parse().ok()?;
    Duration::try_from(duration).ok()
}

/// Starts chaincode-as-a-service packages (types `ccaas` and `external`) by dialing them.
#[derive(Debug, Default, Clone)]
pub struct CcaasRuntime;

/// A connected chaincode-as-a-service stream; stopping it ends the stream.
#[derive(Debug)]
pub struct CcaasChaincode {
    task: tokio::task::JoinHandle<()>,
    /// Set to why the stream ended, when it ends by itself.
    ended: tokio::sync::watch::Receiver<Option<String>>,
}

impl RunningChaincode for CcaasChaincode {
    fn stop(&self) {
        self.task.abort();
    }

    fn exited(&self) -> BoxFuture<'_, String> {
        crate::launcher::wait_exited(&self.ended)
    }
}

impl Drop for CcaasChaincode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChaincodeRuntime for CcaasRuntime {
    fn name(&self) -> &'static str {
        "ccaas"
    }

    fn handles(&self, kind: &str) -> bool {
        kind == CCAAS_TYPE || kind == EXTERNAL_TYPE
    }

    fn install(&self, package: &ChaincodePackage) -> Result<(), LaunchError> {
        ConnectionInfo::from_package(package).map(drop)
    }

    fn start<'a>(
        &'a self,
        package: &'a ChaincodePackage,
        support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>> {
        Box::pin(async move {
            let info = ConnectionInfo::from_package(package)?;
            let running: Box<dyn RunningChaincode> =
                Box::new(dial(&info, package.id(), support).await?);
            Ok(running)
        })
    }
}

/// Dials the chaincode server at `info.address` and serves `package_id`'s stream on it
/// with `support`'s handler: chaincode-as-a-service, for [`CcaasRuntime`] and for
/// external builders that release a `connection.json`.
pub(crate) async fn dial(
    info: &ConnectionInfo,
    package_id: &PackageId,
    support: &ChaincodeSupport,
) -> Result<CcaasChaincode, LaunchError> {
    let fail = |reason: String| LaunchError::Start {
        package_id: package_id.clone(),
        reason,
    };
    let timeout = info.dial_timeout.unwrap_or(DEFAULT_DIAL_TIMEOUT);
    let scheme = if info.tls_required { "https" } else { "http" };
    let mut endpoint =
        tonic::transport::Endpoint::from_shared(format!("{scheme}://{}", info.address))
            .map_err(|e| fail(format!("address {:?}: {e}", info.address)))?
            .connect_timeout(timeout)
            .keep_alive_while_idle(true)
            .http2_keep_alive_interval(Duration::from_secs(60))
            .keep_alive_timeout(Duration::from_secs(20));
    if let Some(tls) = info.tls() {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| fail(format!("{CONNECTION_FILE}: TLS settings: {e}")))?;
    }
    let channel = tokio::time::timeout(timeout, endpoint.connect())
        .await
        .map_err(|_| {
            fail(format!(
                "dialing {} timed out after {timeout:?}",
                info.address
            ))
        })?
        .map_err(|e| {
            fail(format!(
                "dialing {}: {}",
                info.address,
                super::error_chain(&e)
            ))
        })?;
    // The peer's messages go out through `to_chaincode`; the chaincode's come back
    // as the response stream, which the handler serves.
    let (to_chaincode, outbound) = tokio::sync::mpsc::channel::<ChaincodeMessage>(64);
    let limit = support.config().max_message_size;
    // The call is bounded by the dial timeout too: a server that accepts the
    // connection but never answers `Connect` must not hold the launch.
    let mut client = ChaincodeClient::new(channel)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let connect = client.connect(ReceiverStream::new(outbound));
    let inbound = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| {
            fail(format!(
                "Connect at {} did not answer within {timeout:?}",
                info.address
            ))
        })?
        .map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|cause| format!(": {}", super::error_chain(cause)))
                .unwrap_or_default();
            fail(format!(
                "Connect at {}: {}{cause}",
                info.address,
                e.message()
            ))
        })?
        .into_inner();
    let mut replies = support.connect(Box::pin(inbound));
    let address = info.address.clone();
    let (end, ended) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(async move {
        let reason = loop {
            match replies.next().await {
                Some(Ok(message)) => {
                    if to_chaincode.send(message).await.is_err() {
                        break format!("the stream to {address} closed");
                    }
                }
                Some(Err(status)) => {
                    warn!(address, "chaincode stream failed: {status}");
                    break format!("the stream from {address} failed: {}", status.message());
                }
                None => break format!("{address} closed the stream"),
            }
        };
        debug!(address, "chaincode-as-a-service stream ended: {reason}");
        let _ = end.send(Some(reason));
    });
    Ok(CcaasChaincode { task, ended })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_fabric_reads_dial_timeout() {
        assert_eq!(parse_go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(parse_go_duration("-1s"), None);
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration(""), None);
        let info: ConnectionInfo = serde_json::from_str(
            r#"{"address":"127.0.0.1:9999","dial_timeout":"10s","tls_required":false}"#,
        )
        .unwrap();
        assert_eq!(info.dial_timeout, Some(Duration::from_secs(10)));
        let info: ConnectionInfo =
            serde_json::from_str(r#"{"address":"127.0.0.1:9999","dial_timeout":2000000000}"#)
                .unwrap();
        assert_eq!(info.dial_timeout, Some(Duration::from_secs(2)));
    }
}
