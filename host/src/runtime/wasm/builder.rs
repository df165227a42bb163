//! cchost as a Fabric external builder for wasm chaincode (`cchost builder`).
//!
//! [`install`] (`cchost builder install DIR`) writes `DIR/bin/{detect,build,release,run}`, which a
//! peer's `chaincode.externalBuilders` entry points at. Each is a two-line shell program
//! that execs this cchost binary by its absolute path (a peer passes builders only
//! `PATH`, `LD_LIBRARY_PATH`, `LIBPATH`, `TMPDIR` and the names configured in
//! `propagateEnvironment`), running `cchost builder detect|build|release` or
//! `cchost chaincode run` with the peer's arguments.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{WasmConfig, WasmRuntime};
use crate::package::{ChaincodePackage, METADATA_FILE, PackageMetadata, WASM_TYPE};

/// The builder's programs: each runs this cchost with these arguments, then the peer's.
const PROGRAMS: [(&str, &str); 4] = [
    ("detect", "builder detect"),
    ("build", "builder build"),
    ("release", "builder release"),
    ("run", "chaincode run"),
];

/// Where a package's CouchDB definitions are, in its source and in a build.
const COUCHDB_SOURCE: &str = "META-INF/statedb/couchdb";
/// Where the peer reads them in a release (Fabric's `statedb/couchdb/indexes` and
/// `statedb/couchdb/collections/<collection>/indexes`).
const COUCHDB_RELEASE: &str = "statedb/couchdb";

/// Writes the builder into `dir`, its programs running the `cchost` binary at `cchost`
/// (an absolute path); returns the programs written.
pub fn install(dir: &Path, cchost: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let cchost = cchost
        .canonicalize()
        .with_context(|| format!("finding {}", cchost.display()))?;
    let cchost = cchost
        .to_str()
        .context("the cchost binary's path is not UTF-8")?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let mut written = Vec::new();
    for (name, command) in PROGRAMS {
        let path = bin.join(name);
        let script = format!(
            "#!/bin/sh\n# Fabric external builder for wasm chaincode, written by `cchost builder \
             install` (cchost {}).\nexec {} {command} \"$@\"\n",
            env!("CARGO_PKG_VERSION"),
            shell_quote(cchost)
        );
        let mut file =
            std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        file.write_all(script.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
        written.push(path);
    }
    Ok(written)
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn read_metadata(metadata_dir: &Path) -> anyhow::Result<PackageMetadata> {
    let path = metadata_dir.join(METADATA_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
}

/// `detect SOURCE_DIR METADATA_DIR`: whether this builder builds the package — exactly
/// the packages whose metadata.json type is `wasm`.
pub fn detect(metadata_dir: &Path) -> anyhow::Result<bool> {
    let metadata = read_metadata(metadata_dir)?;
    Ok(metadata.kind.eq_ignore_ascii_case(WASM_TYPE))
}

/// `build SOURCE_DIR METADATA_DIR BUILD_OUTPUT_DIR`: the checks `cchost install` makes
/// (with its error texts), then the module and its precompiled artifact into the build
/// output, and the package's CouchDB definitions for `release`.
pub fn build(source: &Path, metadata_dir: &Path, output: &Path) -> anyhow::Result<()> {
    let metadata = read_metadata(metadata_dir)?;
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(source).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", source.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(source)
            .ok()
            .and_then(Path::to_str)
            .with_context(|| format!("{} is not a UTF-8 path", entry.path().display()))?
            .to_owned();
        files.push((relative, std::fs::read(entry.path())?));
    }
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .collect();
    // The same package the peer installed, but for its bytes: what `install` checks.
    let package = ChaincodePackage::parse(&crate::package::build_package(
        &metadata.label,
        &metadata.kind,
        &metadata.path,
        &files,
    )?)?;
    let runtime = WasmRuntime::new(WasmConfig::default())?;
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    runtime.write_build(&package, output)?;
    copy_tree(&source.join(COUCHDB_SOURCE), &output.join(COUCHDB_SOURCE))?;
    // On stderr: a peer logs its builders' stderr and drops their stdout.
    eprintln!(
        "validated and precompiled {} ({} bytes) into {}",
        metadata.path,
        package.wasm()?.len(),
        output.display()
    );
    Ok(())
}

/// `release BUILD_OUTPUT_DIR RELEASE_OUTPUT_DIR`: the package's CouchDB index
/// definitions, where the peer looks for them.
pub fn release(build: &Path, release: &Path) -> anyhow::Result<()> {
    copy_tree(&build.join(COUCHDB_SOURCE), &release.join(COUCHDB_RELEASE))
}

/// Copies the regular files under `from` (when it exists) to the same places under `to`.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(from).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let Ok(relative) = entry.path().strip_prefix(from) else {
            continue;
        };
        let target = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("creating {}", target.display()))?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}
