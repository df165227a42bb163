//! The error a stub call returns.

use core::fmt;

/// A shim call failed: the peer's error text (Fabric's
/// `"<TYPE> failed: transaction ID: <txid>: <cause>"`), or a reply that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Self {
        Self(format!("malformed reply from the peer: {e}"))
    }
}
