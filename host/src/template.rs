//! `cchost new`: a chaincode crate that builds, tests and packages as it is.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const CARGO_TOML: &str = include_str!("template/Cargo.toml.in");
const LIB_RS: &str = include_str!("template/lib.rs.in");
/// The versions cchost's own tests build the SDK with: the new crate starts from them,
/// so it builds as tested (cargo drops what the crate does not use).
const CARGO_LOCK: &str = include_str!("../../Cargo.lock");

/// The SDK in the source tree this binary was built from.
pub(crate) fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk")
}

/// Writes a new chaincode crate at `dir`, named after its last component, depending on
/// the SDK at `sdk`. Refuses to touch an existing non-empty directory.
pub(crate) fn new_crate(dir: &Path, sdk: &Path) -> anyhow::Result<String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the crate directory needs a name")?
        .to_owned();
    if !name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        bail!(
            "{name:?} is not a crate name cchost can use: start with a lowercase letter, then lowercase letters, digits, '_' or '-'"
        );
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = std::fs::canonicalize(sdk).with_context(|| {
        format!(
            "the SDK directory {} does not exist (use --sdk)",
            sdk.display()
        )
    })?;
    let sdk_text = sdk.to_str().context("the SDK path is not UTF-8")?;
    let contract = contract_name(&name);
    let fill = |text: &str| {
        text.replace("{{name}}", &name)
            .replace("{{contract}}", &contract)
            .replace("{{sdk}}", &sdk_text.replace('\\', "/"))
    };
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    for (path, text) in [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("Cargo.lock", CARGO_LOCK.to_owned()),
        (".gitignore", "/target\n*.tar.gz\n".to_owned()),
    ] {
        std::fs::write(dir.join(path), text)
            .with_context(|| format!("writing {}", dir.join(path).display()))?;
    }
    Ok(contract)
}

/// `my-chaincode` → `MyChaincode`.
fn contract_name(crate_name: &str) -> String {
    crate_name
        .split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_contract_types() {
        assert_eq!(contract_name("demo"), "Demo");
        assert_eq!(contract_name("my-token_v2"), "MyTokenV2");
    }

    #[test]
    fn bad_names_and_non_empty_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = new_crate(&dir.path().join("Bad"), &default_sdk_path()).unwrap_err();
        assert!(
            e.to_string().starts_with("\"Bad\" is not a crate name"),
            "{e}"
        );
        let full = dir.path().join("full");
        std::fs::create_dir_all(&full).unwrap();
        std::fs::write(full.join("x"), "x").unwrap();
        let e = new_crate(&full, &default_sdk_path()).unwrap_err();
        assert!(e.to_string().ends_with("exists and is not empty"), "{e}");
    }
}
