//! # cchost-sdk: writing Fabric chaincode in Rust for cchost's wasm sandbox
//!
//! Chaincode written with this crate is compiled with
//! `cargo build --release --target wasm32-wasip1` and runs inside cchost's wasmtime
//! sandbox. Each call the chaincode makes on its [`Stub`] (`get_state`, `put_state`, range
//! queries, events, ...) is an imported host call, which the host turns into the same
//! `ChaincodeMessage` that Fabric's Go, Node and Java shims send, served by the same
//! peer-side handler.
//!
//! The contract API mirrors fabric-contract-api:
//!
//! ```ignore
//! use cchost_sdk::prelude::*;
//!
//! #[derive(Default)]
//! pub struct Greeter;
//!
//! #[contract]
//! impl Greeter {
//!     /// Stores a greeting: `Greeter:Greet` or just `Greet`.
//!     #[transaction]
//!     pub fn greet(&self, ctx: &Context, name: String) -> Result<String> {
//!         ensure!(!name.is_empty(), "say who to greet");
//!         let text = format!("Hello, {name}!");
//!         ctx.stub.put_state(&name, text.as_bytes())?;
//!         Ok(text)
//!     }
//! }
//!
//! cchost_sdk::contracts!(Greeter);
//! ```
//!
//! The same code runs natively under `cargo test` against [`mock::MockStub`]. The
//! low-level entry [`chaincode!`] (a `fn(&Stub) -> Response` per entry point) remains for
//! chaincode that routes by hand.

pub use cchost_abi as abi;
pub use cchost_proto as proto;
pub use cchost_proto::protos::Response;
pub use cchost_sdk_macros::{contract, object};
#[doc(hidden)]
pub use schemars;
#[doc(hidden)]
pub use serde;
#[doc(hidden)]
pub use serde_json;

mod arg;
pub mod backend;
pub mod contract;
mod error;
#[cfg(target_arch = "wasm32")]
mod host;
pub mod identity;
#[cfg(not(target_arch = "wasm32"))]
pub mod mock;
mod response;
#[cfg(all(feature = "shim", not(target_arch = "wasm32")))]
pub mod shim;
mod stub;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod sys;

pub use contract::{Chaincode, Context, Contract};
pub use error::Error;
#[cfg(target_arch = "wasm32")]
pub use host::__entry;
pub use identity::ClientIdentity;
pub use response::ResponseExt;
pub use stub::{
    COMPOSITE_KEY_NAMESPACE, HistoryIter, Page, StateIter, Stub, VALIDATION_PARAMETER,
    create_composite_key, split_composite_key,
};

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What a contract module needs in scope.
pub mod prelude {
    pub use crate::contract::{Chaincode, Context, Contract};
    pub use crate::{
        ClientIdentity, Error, Response, ResponseExt, Result, Stub, bail, contract, ensure, object,
    };
}

/// Logs a line at `level`: through the host in the wasm build (tagged with chaincode
/// and txid), to stderr natively.
#[doc(hidden)]
pub fn __log(level: abi::LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs like `format!` at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::__log($crate::abi::LogLevel::Error, &::std::format!($($arg)+)) };
}

/// Logs like `format!` at warning level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::__log($crate::abi::LogLevel::Warn, &::std::format!($($arg)+)) };
}

/// Logs like `format!` at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::__log($crate::abi::LogLevel::Info, &::std::format!($($arg)+)) };
}

/// Logs like `format!` at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::__log($crate::abi::LogLevel::Debug, &::std::format!($($arg)+)) };
}

/// Declares the chaincode's contracts (each `Default`; the first is the default
/// contract) and, in the wasm build, exports them as the module's entry points.
/// Natively it defines `pub fn chaincode() -> Chaincode` for tests.
///
/// ```ignore
/// cchost_sdk::contracts!(AssetTransfer, Marbles);
/// // or with metadata info:
/// cchost_sdk::contracts!(title = "asset-transfer", version = "1.0.0"; AssetTransfer);
/// ```
#[macro_export]
macro_rules! contracts {
    (title = $title:expr, version = $version:expr; $($contract:ty),+ $(,)?) => {
        /// This chaincode: its contracts, the first the default.
        pub fn chaincode() -> $crate::Chaincode {
            $crate::Chaincode::new()
                .info($title, $version)
                $(.contract(<$contract as ::core::default::Default>::default()))+
        }
        $crate::__export_chaincode!(chaincode);
    };
    ($($contract:ty),+ $(,)?) => {
        $crate::contracts!(title = "", version = ""; $($contract),+);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_chaincode {
    ($chaincode:ident) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[unsafe(no_mangle)]
            pub extern "C" fn cchost_abi_v1() {}

            #[unsafe(no_mangle)]
            pub extern "C" fn cchost_init(input_len: u32) -> i32 {
                $crate::__entry(input_len, |stub| $chaincode().init(stub))
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn cchost_invoke(input_len: u32) -> i32 {
                $crate::__entry(input_len, |stub| $chaincode().invoke(stub))
            }
        };
    };
}

/// Exports the ABI marker and the entry points for `init` and `invoke`, each a
/// `fn(&Stub) -> Response`: the low-level alternative to [`contracts!`].
#[macro_export]
macro_rules! chaincode {
    (init = $init:path, invoke = $invoke:path $(,)?) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn cchost_abi_v1() {}

        #[unsafe(no_mangle)]
        pub extern "C" fn cchost_init(input_len: u32) -> i32 {
            $crate::__entry(input_len, |stub| $init(&stub))
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn cchost_invoke(input_len: u32) -> i32 {
            $crate::__entry(input_len, |stub| $invoke(&stub))
        }
    };
}
