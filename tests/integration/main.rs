//! cchost's integration tests: one binary, one module per feature.
//!
//! Run them with the README's test command (`scripts/test`), which first installs what
//! they need (the npm packages under `tests/node`, the wasm32-wasip1 target). Tests that
//! need such a prerequisite fail with a message naming it; they never skip silently.

// Everything in this crate is test code: failing loudly is its job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bench;
mod ccaas;
mod contracts;
mod docker;
mod host;
mod hostile;
mod launcher;
mod native;
mod node;
mod node_shim;
mod operations;
mod proto_compat;
mod rogue_shim;
mod tls;
mod wasm;
mod while_hostile;
