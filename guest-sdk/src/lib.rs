//! # cchost-sdk: writing Fabric chaincode in Rust for cchost's wasm sandbox
//!
//! Chaincode written with this crate is compiled with
//! `cargo build --release --target wasm32-wasip1` and runs inside cchost's wasmtime
//! sandbox. Each call the chaincode makes on its [`Stub`] (`get_state`, `put_state`, range
//! queries, events, ...) is an imported host call, which the host turns into the same
//! `ChaincodeMessage` that Fabric's Go, Node and Java shims send, served by the same
//! peer-side handler.
//!
//! This is the minimal layer: the one `extern "C"` block (in `sys`, wasm32 only), safe
//! wrappers for every import on [`Stub`], and the entry glue [`chaincode!`]. The ergonomic
//! contract API (macros, typed arguments, `MockStub`) is built on top of it next.
//!
//! ```ignore
//! use cchost_sdk::{Stub, Response};
//!
//! fn invoke(stub: &Stub) -> Response {
//!     match stub.function().as_str() {
//!         "put" => match stub.put_state(&stub.string_arg(1), stub.arg(2)) {
//!             Ok(()) => Response::ok(b"ok"),
//!             Err(e) => Response::error(e.to_string()),
//!         },
//!         other => Response::error(format!("unknown function {other}")),
//!     }
//! }
//!
//! cchost_sdk::chaincode!(init = invoke, invoke = invoke);
//! ```

pub use cchost_abi as abi;
pub use cchost_proto as proto;
pub use cchost_proto::protos::Response;

mod error;
mod response;
#[cfg(target_arch = "wasm32")]
mod stub;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod sys;

pub use error::Error;
pub use response::ResponseExt;
#[cfg(target_arch = "wasm32")]
pub use stub::{__entry, HistoryIter, RangeIter, Stub};
