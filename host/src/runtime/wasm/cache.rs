//! Compiled artifacts on disk: `<dir>/<engine>/<package sha256>.cwasm`, where `<engine>`
//! is the SHA-256 (first 8 bytes, hex) of what `Engine::precompile_compatibility_hash()`
//! feeds a hasher. An engine of another configuration or wasmtime build gets another
//! directory, finds it empty and compiles. The name is not promised to stay the same
//! across Rust or wasmtime releases (it comes from `Hash` implementations): a new build
//! may compile afresh into a new directory, never load an artifact it cannot use
//! (wasmtime checks every artifact it deserializes too).

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use wasmtime::Engine;

use super::WasmError;
use crate::package::write_atomically;

#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
}

/// Feeds what a `Hash` implementation writes into SHA-256 (rather than `DefaultHasher`,
/// whose algorithm may change in any Rust release).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Not used: the digest is read from the inner SHA-256.
    fn finish(&self) -> u64 {
        0
    }
}

impl ArtifactCache {
    pub(crate) fn new(root: &Path, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let digest = hasher.0.finalize();
        Self {
            dir: root.join(hex::encode(digest.get(..8).unwrap_or_default())),
        }
    }

    pub(crate) fn path(&self, package_hash: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("{}.cwasm", hex::encode(package_hash)))
    }

    pub(crate) fn store(&self, package_hash: &[u8; 32], artifact: &[u8]) -> Result<(), WasmError> {
        write_atomically(&self.path(package_hash), artifact)
            .map_err(|e| WasmError::Cache(format!("writing {}: {e}", self.dir.display())))
    }

    pub(crate) fn remove(&self, package_hash: &[u8; 32]) -> Result<(), WasmError> {
        match std::fs::remove_file(self.path(package_hash)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(WasmError::Cache(format!(
                "removing from {}: {e}",
                self.dir.display()
            ))),
        }
    }
}
