//! The TLS material of a chaincode container: Fabric's five files, for one launch.

use crate::ids::PackageId;
use crate::tls::{ChaincodeCa, ClientCredentials};

use super::{DockerRuntime, container_name};

/// Where the container finds its TLS material (Fabric's paths).
pub(super) const TLS_DIR: &str = "/etc/hyperledger/fabric";
/// Fabric's TLS environment for chaincode containers, and the files it names.
pub(super) const TLS_ENV: [(&str, &str); 5] = [
    ("CORE_TLS_CLIENT_KEY_PATH", "client.key"),
    ("CORE_TLS_CLIENT_CERT_PATH", "client.crt"),
    ("CORE_TLS_CLIENT_KEY_FILE", "client_pem.key"),
    ("CORE_TLS_CLIENT_CERT_FILE", "client_pem.crt"),
    ("CORE_PEER_TLS_ROOTCERT_FILE", "peer.crt"),
];

impl DockerRuntime {
    /// Issues `id`'s client certificate for this launch and writes Fabric's five files
    /// (`client.key`/`client.crt` hold base64 of the PEM, the `_pem` files and `peer.crt`
    /// PEM). Fabric uploads them into the container, which a read-only root filesystem
    /// refuses, so they are mounted instead: readable in a directory of their own, inside
    /// [`DockerConfig::state_dir`] which only the host user can enter.
    pub(super) fn tls_files(
        &self,
        ca: &ChaincodeCa,
        id: &PackageId,
    ) -> Result<(ClientCredentials, tempfile::TempDir), String> {
        use base64::Engine as _;
        use std::os::unix::fs::PermissionsExt;
        let io = |e: std::io::Error| format!("writing TLS files: {e}");
        let credentials = ca.issue(id).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&self.config.state_dir).map_err(io)?;
        std::fs::set_permissions(&self.config.state_dir, PermissionsExt::from_mode(0o700))
            .map_err(io)?;
        let dir = tempfile::Builder::new()
            .prefix(&container_name(id))
            .tempdir_in(&self.config.state_dir)
            .map_err(io)?;
        let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        let files = [
            ("client.key", b64(&credentials.key_pem)),
            ("client.crt", b64(&credentials.cert_pem)),
            ("client_pem.key", credentials.key_pem.clone()),
            ("client_pem.crt", credentials.cert_pem.clone()),
            ("peer.crt", credentials.root_pem.clone()),
        ];
        for (name, contents) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).map_err(io)?;
            std::fs::set_permissions(&path, PermissionsExt::from_mode(0o444)).map_err(io)?;
        }
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).map_err(io)?;
        Ok((credentials, dir))
    }
}
