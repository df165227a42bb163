//! Running Node scripts from `tests/node` against the real npm packages installed there.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// `tests/node`: the npm fixtures (package.json, lockfile, scripts).
pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Runs `node <script> <args>` in `tests/node` with `stdin` as its standard input and
/// returns its output. Panics, naming the missing prerequisite, when Node or the npm
/// packages are not installed: `scripts/test` installs both.
pub(crate) fn run(script: &str, args: &[&str], stdin: &[u8]) -> Output {
    let dir = fixtures_dir();
    assert!(
        dir.join("node_modules/@hyperledger/fabric-protos").is_dir(),
        "the npm test fixtures are not installed in {}: run scripts/test \
         (or `npm ci --prefix tests/node`)",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` (Node.js 18 or newer is required): {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}
