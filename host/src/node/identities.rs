//! The node's organisation on disk, in the layout Fabric's `cryptogen` writes (so Fabric
//! applications and tools pointed at these folders work unchanged):
//!
//! ```text
//! organizations/peerOrganizations/org1.example.com/
//!   ca/ca.org1.example.com-cert.pem, ca/priv_sk          the organisation's root CA
//!   msp/cacerts/..., msp/config.yaml                     the organisation's MSP (NodeOUs)
//!   peers/peer0.org1.example.com/msp/                    the node's identity (peer)
//!   orderers/orderer.org1.example.com/msp/               the built-in orderer (orderer)
//!   users/Admin@org1.example.com/msp/                    an admin (lifecycle)
//!   users/User1@org1.example.com/msp/                    a client
//!   tlsca/tlsca.org1.example.com-cert.pem, tlsca/priv_sk the TLS CA
//!   peers/peer0.org1.example.com/tls/                    server.crt, server.key, ca.crt
//!   users/*/tls/                                         client.crt, client.key, ca.crt
//! ```
//!
//! Each identity's `msp/` holds `signcerts/<name>-cert.pem`, `keystore/priv_sk`,
//! `cacerts/ca.<domain>-cert.pem` and `config.yaml`.

use std::path::{Path, PathBuf};

use crate::msp::{DevCa, Role};
use crate::proposal::DevIdentity;

/// What went wrong reading or writing the folders.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdentityError(pub String);

fn io(path: &Path, e: std::io::Error) -> IdentityError {
    IdentityError(format!("{}: {e}", path.display()))
}

/// The organisation: its CA and where its identities are.
pub struct Organization {
    /// `org1.example.com`.
    pub domain: String,
    /// `organizations/peerOrganizations/<domain>`.
    pub dir: PathBuf,
    /// Its CA.
    pub ca: DevCa,
    /// The MSP id.
    pub msp_id: String,
}

impl std::fmt::Debug for Organization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Organization")
            .field("dir", &self.dir)
            .field("msp_id", &self.msp_id)
            .finish_non_exhaustive()
    }
}

const NODE_OUS: &str = "NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/CA_FILE
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/CA_FILE
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/CA_FILE
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/CA_FILE
    OrganizationalUnitIdentifier: orderer
";

fn write(path: &Path, contents: &[u8]) -> Result<(), IdentityError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    std::fs::write(path, contents).map_err(|e| io(path, e))
}

fn read(path: &Path) -> Result<String, IdentityError> {
    std::fs::read_to_string(path).map_err(|e| io(path, e))
}

impl Organization {
    /// The organisation under `data_dir`: created (CA, MSP, the node, orderer, admin and
    /// user identities) if it is not there yet.
    pub fn open_or_create(data_dir: &Path, msp_id: &str) -> Result<Self, IdentityError> {
        let org = msp_id.strip_suffix("MSP").unwrap_or(msp_id);
        let domain = format!("{}.example.com", org.to_lowercase());
        let dir = data_dir
            .join("organizations/peerOrganizations")
            .join(&domain);
        let ca_cert = dir.join(format!("ca/ca.{domain}-cert.pem"));
        let ca_key = dir.join("ca/priv_sk");
        if ca_cert.exists() {
            let ca = DevCa::load(msp_id, org, &read(&ca_cert)?, &read(&ca_key)?)
                .map_err(|e| IdentityError(format!("{}: {e}", ca_cert.display())))?;
            return Ok(Self {
                domain,
                dir,
                ca,
                msp_id: msp_id.to_owned(),
            });
        }
        let ca = DevCa::new(msp_id, org).map_err(|e| IdentityError(e.to_string()))?;
        let organization = Self {
            domain: domain.clone(),
            dir,
            ca,
            msp_id: msp_id.to_owned(),
        };
        write(&ca_key, organization.ca.key_pem().as_bytes())?;
        organization.write_msp(&organization.dir.join("msp"))?;
        for (role, name) in [
            (Role::Peer, format!("peer0.{domain}")),
            (Role::Orderer, format!("orderer.{domain}")),
            (Role::Admin, format!("Admin@{domain}")),
            (Role::Client, format!("User1@{domain}")),
        ] {
            let identity = organization
                .ca
                .issue(role, &name)
                .map_err(|e| IdentityError(e.to_string()))?;
            let msp = organization.msp_dir(role, &name);
            organization.write_msp(&msp)?;
            write(
                &msp.join(format!("signcerts/{name}-cert.pem")),
                identity.cert_pem().as_bytes(),
            )?;
            let key = identity
                .key_pem()
                .map_err(|e| IdentityError(e.to_string()))?;
            write(&msp.join("keystore/priv_sk"), key.as_bytes())?;
        }
        // Last: its presence marks a complete organisation.
        write(&ca_cert, organization.ca.cert_pem().as_bytes())?;
        Ok(organization)
    }

    /// The TLS CA's certificate (`tlsca/tlsca.<domain>-cert.pem`).
    pub fn tls_ca_cert(&self) -> PathBuf {
        self.dir
            .join(format!("tlsca/tlsca.{}-cert.pem", self.domain))
    }

    /// The node's TLS folder (`peers/peer0.<domain>/tls`: `server.crt`, `server.key`,
    /// `ca.crt`).
    pub fn peer_tls(&self) -> PathBuf {
        self.dir
            .join("peers")
            .join(format!("peer0.{}", self.domain))
            .join("tls")
    }

    /// Creates the organisation's TLS CA and its certificates if they are not there
    /// (as `cryptogen` does): the node's server certificate for `localhost`, `127.0.0.1`,
    /// `peer0.<domain>` and `hosts`, and `tls/ca.crt` (with a client certificate) for the
    /// node, the admin and the user.
    pub fn ensure_tls(&self, hosts: &[String]) -> Result<(), IdentityError> {
        if self.tls_ca_cert().exists() {
            return Ok(());
        }
        let fail = |e: rcgen::Error| IdentityError(format!("TLS certificates: {e}"));
        let ca_key = rcgen::KeyPair::generate().map_err(fail)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, self.domain.as_str());
        dn.push(rcgen::DnType::CommonName, format!("tlsca.{}", self.domain));
        params.distinguished_name = dn;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = params.self_signed(&ca_key).map_err(fail)?.pem();
        write(
            &self.dir.join("tlsca/priv_sk"),
            ca_key.serialize_pem().as_bytes(),
        )?;
        let issuer = rcgen::Issuer::new(params, ca_key);
        let issue = |names: Vec<String>, common_name: &str, server: bool| {
            let key = rcgen::KeyPair::generate().map_err(fail)?;
            let mut params = rcgen::CertificateParams::new(names).map_err(fail)?;
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(rcgen::DnType::OrganizationName, self.domain.as_str());
            dn.push(rcgen::DnType::CommonName, common_name);
            params.distinguished_name = dn;
            params.extended_key_usages = if server {
                vec![
                    rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                    rcgen::ExtendedKeyUsagePurpose::ClientAuth,
                ]
            } else {
                vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth]
            };
            let cert = params.signed_by(&key, &issuer).map_err(fail)?.pem();
            Ok::<_, IdentityError>((cert, key.serialize_pem()))
        };
        let peer = format!("peer0.{}", self.domain);
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), peer.clone()];
        names.extend(hosts.iter().cloned());
        names.dedup();
        let (cert, key) = issue(names, &peer, true)?;
        let tls = self.peer_tls();
        write(&tls.join("server.crt"), cert.as_bytes())?;
        write(&tls.join("server.key"), key.as_bytes())?;
        write(&tls.join("ca.crt"), ca_pem.as_bytes())?;
        for user in ["Admin", "User1"] {
            let name = format!("{user}@{}", self.domain);
            let (cert, key) = issue(Vec::new(), &name, false)?;
            let tls = self.dir.join("users").join(&name).join("tls");
            write(&tls.join("client.crt"), cert.as_bytes())?;
            write(&tls.join("client.key"), key.as_bytes())?;
            write(&tls.join("ca.crt"), ca_pem.as_bytes())?;
        }
        // Last: its presence marks complete TLS material.
        write(&self.tls_ca_cert(), ca_pem.as_bytes())
    }

    /// The `msp` folder of identity `name` with `role`.
    pub fn msp_dir(&self, role: Role, name: &str) -> PathBuf {
        let group = match role {
            Role::Peer => "peers",
            Role::Orderer => "orderers",
            Role::Admin | Role::Client => "users",
        };
        self.dir.join(group).join(name).join("msp")
    }

    /// The node's own identity.
    pub fn peer(&self) -> Result<DevIdentity, IdentityError> {
        load_msp(
            &self.msp_dir(Role::Peer, &format!("peer0.{}", self.domain)),
            &self.msp_id,
        )
    }

    /// The built-in orderer's identity.
    pub fn orderer(&self) -> Result<DevIdentity, IdentityError> {
        load_msp(
            &self.msp_dir(Role::Orderer, &format!("orderer.{}", self.domain)),
            &self.msp_id,
        )
    }

    /// The admin's `msp` folder.
    pub fn admin_msp(&self) -> PathBuf {
        self.msp_dir(Role::Admin, &format!("Admin@{}", self.domain))
    }

    /// The user's `msp` folder.
    pub fn user_msp(&self) -> PathBuf {
        self.msp_dir(Role::Client, &format!("User1@{}", self.domain))
    }

    fn write_msp(&self, msp: &Path) -> Result<(), IdentityError> {
        let ca_file = format!("ca.{}-cert.pem", self.domain);
        write(
            &msp.join("cacerts").join(&ca_file),
            self.ca.cert_pem().as_bytes(),
        )?;
        write(
            &msp.join("config.yaml"),
            NODE_OUS.replace("CA_FILE", &ca_file).as_bytes(),
        )
    }
}

/// The identity in an `msp` folder: the first certificate of `signcerts/` and the first
/// key of `keystore/`, as Fabric's tools read them.
pub fn load_msp(msp: &Path, msp_id: &str) -> Result<DevIdentity, IdentityError> {
    let first = |dir: &Path| -> Result<PathBuf, IdentityError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
            .into_iter()
            .next()
            .ok_or_else(|| IdentityError(format!("{}: no file in it", dir.display())))
    };
    let cert = read(&first(&msp.join("signcerts"))?)?;
    let key = read(&first(&msp.join("keystore"))?)?;
    DevIdentity::from_pem(msp_id, &cert, &key)
        .map_err(|e| IdentityError(format!("{}: {e}", msp.display())))
}
