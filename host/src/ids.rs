//! Typed identifiers: package ids and transaction keys (channel and txid).

use std::fmt;

/// A chaincode package id, `label:sha256hex` (legacy chaincode: `name:version`). The name a
/// chaincode registers with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageId(String);

impl PackageId {
    /// Wraps a package id as sent in `REGISTER` or computed at install.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A transaction's key in the handler: Fabric keys contexts by `channel_id + txid`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey {
    /// The channel the transaction runs on (empty for system calls).
    pub channel: String,
    /// The transaction id.
    pub txid: String,
}

impl TxKey {
    /// The key of a transaction on a channel.
    pub fn new(channel: impl Into<String>, txid: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            txid: txid.into(),
        }
    }
}

impl fmt::Display for TxKey {
    /// Fabric's form, used in its error texts: `txid(channel)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.txid, self.channel)
    }
}
