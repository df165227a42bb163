//! Building a chaincode `Response`.

use crate::Response;

/// Constructors for Fabric's `Response` (status 200 OK, 500 error, like `shim.Success`
/// and `shim.Error`).
pub trait ResponseExt {
    /// Status 200 with `payload`.
    fn ok(payload: impl AsRef<[u8]>) -> Response;
    /// Status 500 with `message`.
    fn error(message: impl Into<String>) -> Response;
}

impl ResponseExt for Response {
    fn ok(payload: impl AsRef<[u8]>) -> Response {
        Response {
            status: 200,
            message: String::new(),
            payload: payload.as_ref().to_vec(),
        }
    }

    fn error(message: impl Into<String>) -> Response {
        Response {
            status: 500,
            message: message.into(),
            payload: Vec::new(),
        }
    }
}
