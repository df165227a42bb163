//! cchost's integration tests: one binary, one module per feature.
//!
//! Run them with the README's test command (`scripts/test`), which first installs what
//! they need (the npm packages under `tests/node`, the wasm32-wasip1 target). Tests that
//! need such a prerequisite fail with a message naming it; they never skip silently.

mod node;
mod proto_compat;
