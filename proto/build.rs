//! Compiles Fabric's `.proto` files in `fabric/` with protox (pure Rust: no system
//! `protoc`) and generates prost messages, plus tonic stubs with the `grpc` feature.

use std::path::{Path, PathBuf};

/// Proto root, laid out like Fabric's fabric-protos repository so imports match.
const PROTO_ROOT: &str = "fabric";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = proto_files(Path::new(PROTO_ROOT))?;
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let descriptors = protox::compile(&files, [PROTO_ROOT])?;
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(
        out_dir.join("fabric_descriptor_set.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();

    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        // No `Client::connect` helpers: `protos.Chaincode/Connect` would clash with them.
        // Build clients with `Client::new(channel)`.
        .build_transport(false)
        // Maps encode in key order: encodings that reach hashes and signatures
        // (transient maps, decorations) must be the same on every peer.
        .btree_map(".")
        .compile_fds(descriptors)?;
    Ok(())
}

/// Every `.proto` under `dir`, sorted so builds are reproducible.
fn proto_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(proto_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}
