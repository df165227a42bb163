//! Compiled artifacts on disk: `<dir>/<engine>/<package sha256>.cwasm`, where `<engine>`
//! is a digest of `Engine::precompile_compatibility_hash()`. An artifact is only ever
//! loaded into an engine of the same configuration and wasmtime build; a host with another
//! configuration simply finds its own directory empty and compiles.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;

use super::WasmError;
use crate::package::write_atomically;

#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    pub(crate) fn new(root: &Path, engine: &Engine) -> Self {
        // SipHash with fixed keys: stable for a given build, which is all the key needs
        // (another build compiles into another directory at worst).
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir: root.join(format!("{:016x}", hasher.finish())),
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
