//! `cchost package`: builds a chaincode crate for `wasm32-wasip1` (release) and writes it as
//! a Fabric-style package; or packages a Node chaincode directory as Fabric's `node` type.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ids::PackageId;
use crate::package::{build_package, build_wasm_package, package_id};
use anyhow::{Context, bail};

/// What `cchost package` produced.
#[derive(Debug)]
pub struct Packaged {
    /// The module's size, bytes.
    pub wasm_size: usize,
    /// The package's id.
    pub package_id: PackageId,
}

/// Builds the crate in `crate_dir` and writes its package to `output`.
pub fn package_crate(
    crate_dir: &Path,
    label: &str,
    output: &Path,
    target_dir: Option<&Path>,
) -> anyhow::Result<Packaged> {
    let manifest = crate_dir.join("Cargo.toml");
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("no Cargo.toml in {}", crate_dir.display()))?;
    let wasm_path = build(&manifest, target_dir)?;
    let wasm =
        std::fs::read(&wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
    let name = wasm_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("chaincode");
    let package = build_wasm_package(label, name, &wasm)?;
    std::fs::write(output, &package).with_context(|| format!("writing {}", output.display()))?;
    Ok(Packaged {
        wasm_size: wasm.len(),
        package_id: package_id(label, &package),
    })
}

/// Builds the crate in `crate_dir` (`cargo build --release --target wasm32-wasip1`) and
/// returns its `.wasm`.
pub fn build_wasm(crate_dir: &Path, target_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let manifest = crate_dir
        .join("Cargo.toml")
        .canonicalize()
        .with_context(|| format!("no Cargo.toml in {}", crate_dir.display()))?;
    build(&manifest, target_dir)
}

/// Builds the program of the crate in `crate_dir` for this machine
/// (`cargo build --release`, e.g. `examples/asset-transfer/native`) and returns it.
pub fn build_native(crate_dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = crate_dir
        .join("Cargo.toml")
        .canonicalize()
        .with_context(|| format!("no Cargo.toml in {}", crate_dir.display()))?;
    let output = cargo(&manifest, &[])?;
    artifacts(&output, &manifest)
        .find_map(|artifact| {
            let is_bin = artifact
                .target
                .kind
                .contains(&cargo_metadata::TargetKind::Bin);
            artifact.executable.filter(|_| is_bin)
        })
        .map(cargo_metadata::camino::Utf8PathBuf::into_std_path_buf)
        .with_context(|| format!("{} built no program", manifest.display()))
}

/// Runs `cargo build --release` with `args` and JSON messages; the messages.
fn cargo(manifest: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release"])
        .args(args)
        .args([
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(manifest)
        // A package carries no debug info: it would only make it bigger and slower to
        // validate and compile (traps never show guest backtraces).
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // A lint wrapper of an outer build (`cargo clippy`, or cchost's own test
        // command) is not for the chaincode's build.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        bail!("cargo build --release {} failed", args.join(" "));
    }
    Ok(output.stdout)
}

/// The artifacts cargo built for the crate of `manifest`.
fn artifacts<'a>(
    output: &'a [u8],
    manifest: &'a Path,
) -> impl Iterator<Item = cargo_metadata::Artifact> + 'a {
    cargo_metadata::Message::parse_stream(output).filter_map(move |message| match message {
        Ok(cargo_metadata::Message::CompilerArtifact(artifact))
            if artifact.manifest_path.as_std_path() == manifest =>
        {
            Some(artifact)
        }
        _ => None,
    })
}

/// Runs `cargo build --release --target wasm32-wasip1` and returns the crate's `.wasm`.
fn build(manifest: &Path, target_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut args = vec!["--target", "wasm32-wasip1"];
    let target_dir = target_dir.map(|d| d.display().to_string());
    if let Some(dir) = &target_dir {
        args.extend(["--target-dir", dir]);
    }
    let output = cargo(manifest, &args).map_err(|e| {
        anyhow::anyhow!("{e} (is the target installed? `rustup target add wasm32-wasip1`)")
    })?;
    artifacts(&output, manifest)
        .filter(|artifact| {
            artifact
                .target
                .kind
                .contains(&cargo_metadata::TargetKind::CDyLib)
        })
        .flat_map(|artifact| artifact.filenames)
        .filter(|f| f.extension() == Some("wasm"))
        .last()
        .map(cargo_metadata::camino::Utf8PathBuf::into_std_path_buf)
        .with_context(|| {
            format!(
                "{} built no .wasm: a chaincode crate needs `[lib] crate-type = [\"cdylib\"]`",
                manifest.display()
            )
        })
}

/// Packages the Node chaincode in `dir` (its `package.json`, code and, unlike Fabric's
/// `peer lifecycle chaincode package`, its `node_modules`: the image build then needs no
/// network) as a `node` package ([`crate::package::source_files`]). Returns the file
/// count and id.
pub fn package_node_dir(
    dir: &Path,
    label: &str,
    output: &Path,
) -> anyhow::Result<(usize, PackageId)> {
    if !dir.join("package.json").is_file() {
        bail!("no package.json in {}", dir.display());
    }
    let files = crate::package::source_files(dir)?;
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .collect();
    let package = build_package(label, "node", "", &refs)?;
    std::fs::write(output, &package).with_context(|| format!("writing {}", output.display()))?;
    Ok((files.len(), package_id(label, &package)))
}
