//! The node's configuration: a TOML file with Fabric's `core.yaml` key names where
//! Fabric has them, `CORE_*` environment overrides (`peer.listenAddress` →
//! `CORE_PEER_LISTENADDRESS`), and an embedded default written to the data directory on
//! first start.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::ledger::blocks::BatchConfig;

/// The file a data directory's configuration lives in.
pub const FILE: &str = "core.toml";

/// The embedded default, written as `core.toml` on first start.
pub const DEFAULT: &str = r#"# cchost node configuration. Key names follow Fabric's core.yaml; every key can be
# overridden by an environment variable: CORE_ + the key's path in capitals with dots
# as underscores (peer.listenAddress -> CORE_PEER_LISTENADDRESS).

[peer]
# Where clients reach the Endorser, Deliver and Broadcast services (plaintext).
listenAddress = "127.0.0.1:7051"
# Where chaincode processes and containers dial in.
chaincodeListenAddress = "127.0.0.1:7052"
localMspId = "Org1MSP"
# The largest gRPC message the client services accept and send, bytes (Fabric's 100 MiB).
maxRecvMsgSize = 104857600
maxSendMsgSize = 104857600

# The Gateway service (Fabric's peer.gateway.*). Submit never waits for the built-in
# orderer (a full queue answers at once), so broadcastTimeout has no use here.
[peer.gateway]
enabled = true
endorsementTimeout = "10s"

[peer.tls]
# TLS on the client services. The certificates default to those the node generates in
# organizations/peerOrganizations/<domain>/peers/peer0.<domain>/tls (server.crt for
# localhost, 127.0.0.1, peer0.<domain> and the hostnames below).
enabled = false
cert.file = ""
key.file = ""
rootcert.file = ""
clientAuthRequired = false
# Further names (or addresses) the server certificate is valid for (cchost's key).
hostnames = []

[chaincode]
executetimeout = "30s"
startuptimeout = "300s"

[operations]
# /healthz, /metrics, /logspec, /version; empty to switch off.
listenAddress = "127.0.0.1:9443"

# Fabric v0.6's JSON-RPC 2.0 endpoint, POST /chaincode (docs/rest.md).
[rest]
enabled = true
address = "127.0.0.1:7050"
# cchost's keys: whether every request must name its identity (secureContext), the
# largest request body, how long a client may take to send its headers and body, and
# how long `?wait=commit` waits.
security = false
maxBodyBytes = 1048576
readTimeout = "10s"
commitTimeout = "30s"

[channel]
# The channel the node creates on first start.
name = "mychannel"

# The built-in single-node orderer (Fabric's configtx.yaml Orderer section).
[orderer]
BatchTimeout = "2s"

[orderer.BatchSize]
MaxMessageCount = 500
AbsoluteMaxBytes = 10485760
PreferredMaxBytes = 2097152
"#;

/// Everything the node reads from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `peer.listenAddress`.
    pub listen: SocketAddr,
    /// `peer.chaincodeListenAddress`.
    pub chaincode_listen: SocketAddr,
    /// `peer.localMspId`.
    pub msp_id: String,
    /// `chaincode.executetimeout`.
    pub execute_timeout: Duration,
    /// `chaincode.startuptimeout`.
    pub startup_timeout: Duration,
    /// `operations.listenAddress` (None when empty).
    pub operations_listen: Option<SocketAddr>,
    /// `channel.name`.
    pub channel: String,
    /// `orderer.BatchTimeout` and `orderer.BatchSize.*`.
    pub batch: BatchConfig,
    /// `peer.tls.*`.
    pub tls: TlsSettings,
    /// `rest.*` (None when `rest.enabled` is false).
    pub rest: Option<RestSettings>,
    /// `peer.maxRecvMsgSize`.
    pub max_recv_msg_size: usize,
    /// `peer.maxSendMsgSize`.
    pub max_send_msg_size: usize,
    /// `peer.gateway.*` (None when `peer.gateway.enabled` is false).
    pub gateway: Option<crate::gateway::GatewayOptions>,
}

/// `rest.*`: the JSON-RPC 2.0 endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestSettings {
    /// `rest.address`.
    pub address: SocketAddr,
    /// `rest.security`: requests must name their identity.
    pub security: bool,
    /// `rest.maxBodyBytes`.
    pub max_body_bytes: u32,
    /// `rest.readTimeout`: headers and body must arrive within it.
    pub read_timeout: Duration,
    /// `rest.commitTimeout`: how long `?wait=commit` waits.
    pub commit_timeout: Duration,
}

/// `peer.tls.*`: TLS on the client services.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// `peer.tls.enabled`.
    pub enabled: bool,
    /// `peer.tls.cert.file` (empty: the generated one).
    pub cert_file: String,
    /// `peer.tls.key.file`.
    pub key_file: String,
    /// `peer.tls.rootcert.file`.
    pub rootcert_file: String,
    /// `peer.tls.clientAuthRequired`.
    pub client_auth_required: bool,
    /// `peer.tls.hostnames`: further names for the generated certificate.
    pub hostnames: Vec<String>,
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Parses a Fabric duration: `30s`, `500ms`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The value at dotted `path` (keys compared without case, as Viper does), with its
/// `CORE_` environment override.
fn lookup(table: &toml::Table, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let variable = format!("CORE_{}", path.to_uppercase().replace('.', "_"));
    if let Some(value) = env(&variable) {
        return Some(value);
    }
    let mut current = table;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (_, value) = current.iter().find(|(k, _)| k.eq_ignore_ascii_case(part))?;
        if i + 1 == parts.len() {
            return Some(match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        current = value.as_table()?;
    }
    None
}

impl NodeConfig {
    /// Parses `text` (TOML) with overrides from `env`.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError(format!("{FILE}: {e}")))?;
        let defaults: toml::Table =
            toml::from_str(DEFAULT).map_err(|e| ConfigError(format!("default: {e}")))?;
        let get = |path: &str| -> Result<String, ConfigError> {
            lookup(&table, path, env)
                .or_else(|| lookup(&defaults, path, &|_| None))
                .ok_or_else(|| ConfigError(format!("{path} is not set")))
        };
        let address = |path: &str| -> Result<SocketAddr, ConfigError> {
            let value = get(path)?;
            value.parse().map_err(|e| {
                ConfigError(format!(
                    "{path} = {value:?}: not an address (host:port): {e}"
                ))
            })
        };
        let duration = |path: &str| -> Result<Duration, ConfigError> {
            let value = get(path)?;
            parse_duration(&value).ok_or_else(|| {
                ConfigError(format!(
                    "{path} = {value:?}: not a duration (e.g. 30s, 500ms)"
                ))
            })
        };
        let number = |path: &str| -> Result<u32, ConfigError> {
            let value = get(path)?;
            value
                .parse()
                .map_err(|e| ConfigError(format!("{path} = {value:?}: {e}")))
        };
        let boolean = |path: &str| -> Result<bool, ConfigError> {
            let value = get(path)?;
            value
                .parse()
                .map_err(|_| ConfigError(format!("{path} = {value:?}: expected true or false")))
        };
        let hostnames = match lookup(&table, "peer.tls.hostnames", env) {
            None => Vec::new(),
            Some(text) => match toml::from_str::<toml::Table>(&format!("v = {text}")) {
                Ok(t) => t
                    .get("v")
                    .and_then(toml::Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                // An environment override: comma separated.
                Err(_) => text
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            },
        };
        let tls = TlsSettings {
            enabled: boolean("peer.tls.enabled")?,
            cert_file: get("peer.tls.cert.file")?,
            key_file: get("peer.tls.key.file")?,
            rootcert_file: get("peer.tls.rootcert.file")?,
            client_auth_required: boolean("peer.tls.clientAuthRequired")?,
            hostnames,
        };
        let operations = get("operations.listenAddress")?;
        let gateway = if boolean("peer.gateway.enabled")? {
            Some(crate::gateway::GatewayOptions {
                endorsement_timeout: duration("peer.gateway.endorsementTimeout")?,
            })
        } else {
            None
        };
        let rest = if boolean("rest.enabled")? {
            Some(RestSettings {
                address: address("rest.address")?,
                security: boolean("rest.security")?,
                max_body_bytes: number("rest.maxBodyBytes")?,
                read_timeout: duration("rest.readTimeout")?,
                commit_timeout: duration("rest.commitTimeout")?,
            })
        } else {
            None
        };
        Ok(Self {
            listen: address("peer.listenAddress")?,
            chaincode_listen: address("peer.chaincodeListenAddress")?,
            msp_id: get("peer.localMspId")?,
            execute_timeout: duration("chaincode.executetimeout")?,
            startup_timeout: duration("chaincode.startuptimeout")?,
            operations_listen: if operations.trim().is_empty() {
                None
            } else {
                Some(address("operations.listenAddress")?)
            },
            channel: get("channel.name")?,
            batch: BatchConfig {
                max_message_count: number("orderer.BatchSize.MaxMessageCount")?,
                absolute_max_bytes: number("orderer.BatchSize.AbsoluteMaxBytes")?,
                preferred_max_bytes: number("orderer.BatchSize.PreferredMaxBytes")?,
                timeout: duration("orderer.BatchTimeout")?,
            },
            tls,
            rest,
            gateway,
            max_recv_msg_size: number("peer.maxRecvMsgSize")? as usize,
            max_send_msg_size: number("peer.maxSendMsgSize")? as usize,
        })
    }

    /// Reads `dir/core.toml`, writing the embedded default there first if it is missing.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(FILE);
        if !path.exists() {
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&path, DEFAULT))
                .map_err(|e| ConfigError(format!("writing {}: {e}", path.display())))?;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text, &|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_gives_fabrics_defaults() {
        let config = NodeConfig::parse(DEFAULT, &|_| None).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7051".parse().unwrap());
        assert_eq!(config.chaincode_listen, "127.0.0.1:7052".parse().unwrap());
        assert_eq!(config.execute_timeout, Duration::from_secs(30));
        assert_eq!(config.startup_timeout, Duration::from_secs(300));
        assert_eq!(config.batch, BatchConfig::default());
        assert_eq!(config.channel, "mychannel");
    }

    #[test]
    fn core_environment_variables_override_the_file() {
        let env = |name: &str| match name {
            "CORE_PEER_LISTENADDRESS" => Some("127.0.0.1:17051".to_owned()),
            "CORE_ORDERER_BATCHTIMEOUT" => Some("250ms".to_owned()),
            _ => None,
        };
        let config = NodeConfig::parse("[peer]\nlocalMspId = \"OrgXMSP\"\n", &env).unwrap();
        assert_eq!(config.listen, "127.0.0.1:17051".parse().unwrap());
        assert_eq!(config.batch.timeout, Duration::from_millis(250));
        assert_eq!(config.msp_id, "OrgXMSP");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err =
            NodeConfig::parse("[chaincode]\nexecutetimeout = \"soon\"\n", &|_| None).unwrap_err();
        assert_eq!(
            err.0,
            "chaincode.executetimeout = \"soon\": not a duration (e.g. 30s, 500ms)"
        );
    }
}
