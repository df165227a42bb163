//! Builds the test chaincode under `tests/guests/` and the Rust examples for
//! `wasm32-wasip1` (release), and asset-transfer natively (`asset-transfer-native`), with
//! a nested cargo in its own target directory (`target/guests`: sharing the outer one
//! would deadlock on its lock), and tells the tests where the `.wasm` files and the
//! program are.

use std::path::PathBuf;
use std::process::Command;

const GUESTS: &[(&str, &str)] = &[
    ("guest-asset", "GUEST_ASSET_WASM"),
    ("asset-transfer", "ASSET_TRANSFER_WASM"),
    ("asset-events", "ASSET_EVENTS_WASM"),
    ("marbles", "MARBLES_WASM"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?)
        .parent()
        .ok_or("tests/ has no parent")?
        .to_path_buf();
    for watched in [
        "tests/guests",
        "examples/asset-transfer",
        "examples/events",
        "examples/marbles",
        "guest-sdk",
        "abi",
        "proto/fabric",
        "proto/src",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = root.join("target/guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The guests for wasm32-wasip1, and the native build of asset-transfer (the SDK's gRPC
    // shim: a chaincode process).
    let mut wasm: Vec<&str> = vec!["--target", "wasm32-wasip1"];
    for (package, _) in GUESTS {
        wasm.extend(["-p", package]);
    }
    for (args, what) in [
        (
            wasm,
            "the wasm test chaincode (is the wasm32-wasip1 target installed? scripts/setup installs it)",
        ),
        (
            vec!["-p", "asset-transfer-native"],
            "the native asset-transfer chaincode",
        ),
    ] {
        let mut command = Command::new(&cargo);
        command
            .current_dir(&root)
            .args(["build", "--release", "--target-dir"])
            .arg(&target_dir)
            .args(args);
        // The outer build's wrappers and flags (clippy, coverage) are not for the guest.
        for var in [
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTC_WRAPPER",
            "CLIPPY_ARGS",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
        ] {
            command.env_remove(var);
        }
        // The same profile as `cchost package`, so packaging the test guest reuses this build.
        command
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
        let output = command.output()?;
        if !output.status.success() {
            return Err(format!(
                "building {what} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
    }
    println!(
        "cargo:rustc-env=NATIVE_ASSET_TRANSFER={}",
        target_dir.join("release/asset-transfer-native").display()
    );
    for (package, env) in GUESTS {
        let wasm = target_dir
            .join("wasm32-wasip1/release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        println!("cargo:rustc-env={env}={}", wasm.display());
    }
    Ok(())
}
