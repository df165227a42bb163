//! Fabric's external builders and launchers (core.yaml `chaincode.externalBuilders`,
//! Fabric 2.5/3.x `core/container/externalbuilder`).
//!
//! A builder is a directory whose `bin/` holds `detect` and `build`, and optionally
//! `release` and `run`. At install, unless a kept build of the package exists, the code is
//! unpacked into a scratch directory (`$TMPDIR/fabric-<ccid>*/{src,metadata,bld,release}`),
//! the builders' `detect` programs run in order (the first to exit 0 wins), then its
//! `build` and `release`. The output is kept in `<builds_dir>/<ccid>/{bld,release,
//! build-info.json}`, moved into place in one rename so a crash never leaves a half build.
//! At start, a released `chaincode/server/connection.json` is dialed as
//! chaincode-as-a-service; otherwise `bin/run` runs with `chaincode.json` (the peer
//! address and per-launch TLS credentials) and is stopped with SIGTERM, then SIGKILL
//! after 5 s. Programs see only `PATH`, `LD_LIBRARY_PATH`, `LIBPATH`, `TMPDIR` and the
//! builder's `propagate_environment` names. Every program runs in its own process group,
//! and the signals of a timeout or a stop go to the group, so helpers a script forked
//! end with it then (helpers left behind by a program that exits by itself are not
//! hunted down).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use rustix::process::{Pid, Signal, kill_process_group};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::ccaas::{self, ConnectionInfo};
use super::docker::BUILD_LOG;
use crate::ids::PackageId;
use crate::launcher::{ChaincodeRuntime, LaunchError, RunningChaincode};
use crate::package::{ChaincodePackage, METADATA_FILE};
use crate::support::ChaincodeSupport;

/// Variables every program gets when set (Fabric's `DefaultPropagateEnvironment`).
pub const DEFAULT_PROPAGATE_ENVIRONMENT: [&str; 4] =
    ["LD_LIBRARY_PATH", "LIBPATH", "PATH", "TMPDIR"];
/// Where a release puts a chaincode server's address (Fabric's `CCServerReleaseDir`).
pub const SERVER_CONNECTION: &str = "chaincode/server/connection.json";
/// How long `run` has between SIGTERM and SIGKILL (Fabric's `TermTimeout`).
pub const TERM_TIMEOUT: Duration = Duration::from_secs(5);
const BUILD_INFO: &str = "build-info.json";
/// Output kept for the error of a failing program or the exit of `run`, bytes.
const OUTPUT_TAIL: usize = 4096;
/// How long an exit waits for the program's last output once it is gone.
const FLUSH_WAIT: Duration = Duration::from_secs(1);
/// Kept builds are assembled under this prefix, then renamed into place.
const STAGING_PREFIX: &str = ".staging-";

/// A core.yaml `chaincode.externalBuilders` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalBuilder {
    /// Its name, recorded in `build-info.json` of what it built.
    pub name: String,
    /// The directory holding `bin/detect`, `bin/build`, `bin/release`, `bin/run`.
    pub path: PathBuf,
    /// Variables of the peer's environment passed on to its programs.
    pub propagate_environment: Vec<String>,
}

/// How external builders are run.
#[derive(Debug, Clone)]
pub struct ExternalConfig {
    /// Tried in order (Fabric: before Docker).
    pub builders: Vec<ExternalBuilder>,
    /// Kept builds (Fabric: `<peer.fileSystemPath>/externalbuilder/builds`).
    pub builds_dir: PathBuf,
    /// The chaincode listener as `run`'s chaincode dials it.
    pub peer_address: String,
    /// The peer's MSP id, `mspid` in `chaincode.json`.
    pub mspid: String,
    /// How long detect, build and release of one package may take together (Fabric's
    /// `chaincode.installTimeout`); past it the running program is killed.
    pub build_timeout: Duration,
}

/// A configuration [`ExternalRuntime::new`] refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExternalConfigError(String);

/// Builds and starts chaincode with Fabric's external builders.
#[derive(Debug, Clone)]
pub struct ExternalRuntime {
    config: Arc<ExternalConfig>,
    /// Packages every builder's `detect` declined. A package id names the package's
    /// bytes, so the verdict holds: a launcher asks at every launch, and the other
    /// runtimes' packages are not sent through the builders' processes each time.
    declined: Arc<std::sync::Mutex<std::collections::HashSet<PackageId>>>,
    /// The builder whose `detect` accepted a package (by index), so that its build does
    /// not run the builders' `detect` a second time.
    detected: Arc<std::sync::Mutex<std::collections::HashMap<PackageId, usize>>>,
}

/// `build-info.json` of a kept build.
#[derive(Serialize, Deserialize)]
struct BuildInfo {
    builder_name: String,
}

/// A kept build and the builder that made it.
struct Kept {
    builder: ExternalBuilder,
    dir: PathBuf,
}

/// `chaincode.json` in `run`'s RUN_METADATA_DIR.
#[derive(Serialize)]
struct RunConfig<'a> {
    chaincode_id: &'a str,
    peer_address: &'a str,
    client_cert: &'a str,
    client_key: &'a str,
    root_cert: &'a str,
    mspid: &'a str,
}

/// The package id as a directory name: Fabric replaces `<>:"/\|?*&` with `-`.
pub fn sanitize_ccid(ccid: &str) -> String {
    ccid.chars()
        .map(|c| if "<>:\"/\\|?*&".contains(c) { '-' } else { c })
        .collect()
}

/// Spawns with `spawn`, again a few times while the program is busy (ETXTBSY): a program
/// written a moment ago is busy while any process forked meanwhile still holds it open for
/// writing, which a peer installing builders while it launches chaincode can meet.
fn spawn_when_not_busy<T>(mut spawn: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut attempts = 0;
    loop {
        match spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn program(builder: &ExternalBuilder, name: &str) -> PathBuf {
    builder.path.join("bin").join(name)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a builder's programs see: the builder's names, then Fabric's defaults, as set.
fn environment(builder: &ExternalBuilder) -> Vec<(String, OsString)> {
    let mut names: Vec<&str> = builder
        .propagate_environment
        .iter()
        .map(String::as_str)
        .collect();
    for name in DEFAULT_PROPAGATE_ENVIRONMENT {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .filter_map(|n| std::env::var_os(n).map(|v| (n.to_owned(), v)))
        .collect()
}

/// How a program ended, in words.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The last [`OUTPUT_TAIL`] bytes of a program's output.
#[derive(Default)]
struct Tail {
    bytes: VecDeque<u8>,
    cut: bool,
}

impl Tail {
    fn push(&mut self, line: &[u8]) {
        self.bytes.extend(line.iter().chain(b"\n"));
        while self.bytes.len() > OUTPUT_TAIL {
            self.bytes.pop_front();
            self.cut = true;
        }
    }

    fn text(&mut self) -> String {
        let text = String::from_utf8_lossy(self.bytes.make_contiguous());
        let text = text.trim_end();
        if self.cut {
            format!("[...]{text}")
        } else {
            text.to_owned()
        }
    }
}

/// Logs the lines of a build program's `pipe` and keeps their tail, on a thread.
fn forward<R: Read + Send + 'static>(
    pipe: R,
    builder: &ExternalBuilder,
    name: &str,
    tail: &Arc<Mutex<Tail>>,
) -> std::thread::JoinHandle<()> {
    let (tail, builder, name) = (Arc::clone(tail), builder.name.clone(), name.to_owned());
    std::thread::spawn(move || {
        let (mut reader, mut line) = (BufReader::new(pipe), Vec::new());
        while read_line_capped(&mut reader, &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            info!(target: BUILD_LOG, builder, program = name, "{text}");
            tail.lock().unwrap_or_else(|e| e.into_inner()).push(&line);
        }
    })
}

/// The longest line of a program's output kept whole: a longer one is logged in pieces
/// of this size, so output without newlines cannot grow the peer's memory (Fabric stops
/// reading at 64 KiB).
const MAX_LINE: usize = 64 * 1024;

/// Reads the next line (without its newline) into `line`, at most [`MAX_LINE`] bytes of
/// it; returns the bytes consumed (0 at the end).
fn read_line_capped(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    line.clear();
    let n = reader.take(MAX_LINE as u64).read_until(b'\n', line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(n)
}

/// Logs the lines of `run`'s `pipe`, tagged with the chaincode, and keeps their tail.
fn forward_run<R: tokio::io::AsyncRead + Send + Unpin + 'static>(
    pipe: R,
    package_id: &PackageId,
    builder: &str,
    tail: &Arc<Mutex<Tail>>,
) -> tokio::task::JoinHandle<()> {
    let (tail, id, builder) = (Arc::clone(tail), package_id.clone(), builder.to_owned());
    tokio::spawn(async move {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
        let (mut reader, mut line) = (tokio::io::BufReader::new(pipe), Vec::new());
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .await;
            if !read.is_ok_and(|n| n > 0) {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            info!(chaincode = %id, builder, "{}", String::from_utf8_lossy(&line));
            tail.lock().unwrap_or_else(|e| e.into_inner()).push(&line);
        }
    })
}

/// Writes `value` as JSON to a new file only the owner reads, flushed to disk.
fn write_private(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(&serde_json::to_vec(value)?)?;
    file.sync_all()
}

/// The scratch directories of one build; removed when dropped.
struct BuildContext {
    _scratch: tempfile::TempDir,
    src: PathBuf,
    metadata: PathBuf,
    bld: PathBuf,
    release: PathBuf,
}

impl BuildContext {
    /// Fabric's `NewBuildContext`: scratch directories, the code unpacked into `src`,
    /// `metadata.json` into `metadata`.
    fn new(package: &ChaincodePackage) -> std::io::Result<Self> {
        let scratch = tempfile::Builder::new()
            .prefix(&format!("fabric-{}", sanitize_ccid(package.id().as_str())))
            .tempdir()?;
        let dir = |name: &str| -> std::io::Result<PathBuf> {
            let path = scratch.path().join(name);
            std::fs::DirBuilder::new().mode(0o700).create(&path)?;
            Ok(path)
        };
        let (src, metadata, bld, release) =
            (dir("src")?, dir("metadata")?, dir("bld")?, dir("release")?);
        // The package reader has refused absolute paths and `..` already.
        for path in package.code_paths() {
            let target = src.join(path);
            if let Some(parent) = target.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
            }
            std::fs::write(&target, package.code_file(path).unwrap_or_default())?;
        }
        std::fs::write(
            metadata.join(METADATA_FILE),
            serde_json::to_vec(package.metadata())?,
        )?;
        Ok(Self {
            _scratch: scratch,
            src,
            metadata,
            bld,
            release,
        })
    }
}

/// Moves directory `from` to `to`: renamed, or copied across file systems.
fn move_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    copy_dir(from, to, from)
}

/// Fabric's `CopyDir`: directories, regular files, and relative symbolic links that stay
/// inside `root`; anything else is refused.
fn copy_dir(from: &Path, to: &Path, root: &Path) -> std::io::Result<()> {
    let refuse = |what: String| Err(std::io::Error::other(what));
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (path, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&path, &target, root)?;
        } else if kind.is_file() {
            std::fs::copy(&path, &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&path)?;
            let mut depth = path
                .strip_prefix(root)
                .map_or(0, |p| p.components().count())
                .saturating_sub(1);
            for part in link.components() {
                match part {
                    Component::Normal(_) => depth += 1,
                    Component::CurDir => {}
                    Component::ParentDir if depth > 0 => depth -= 1,
                    _ => {
                        return refuse(format!(
                            "refusing to copy symlink {} -> {} pointing outside of source root",
                            path.display(),
                            link.display()
                        ));
                    }
                }
            }
            std::os::unix::fs::symlink(&link, &target)?;
        } else {
            return refuse(format!(
                "refusing to copy unsupported file {}",
                path.display()
            ));
        }
    }
    Ok(())
}

impl ExternalRuntime {
    /// A runtime over `config.builders`. Refuses a builder without a name or path
    /// (Fabric's checks) or without executable `bin/detect` and `bin/build`; creates
    /// `builds_dir` and removes builds a crash left half assembled there.
    pub fn new(config: ExternalConfig) -> Result<Self, ExternalConfigError> {
        for builder in &config.builders {
            if builder.path.as_os_str().is_empty() {
                return Err(ExternalConfigError(
                    "invalid external builder configuration, path attribute missing in one or \
                     more builders"
                        .to_owned(),
                ));
            }
            if builder.name.is_empty() {
                return Err(ExternalConfigError(format!(
                    "external builder at path {} has no name attribute",
                    builder.path.display()
                )));
            }
            for name in ["detect", "build"] {
                let path = program(builder, name);
                if !is_executable(&path) {
                    return Err(ExternalConfigError(format!(
                        "external builder '{}': {} is missing or not executable \
                         (a builder needs bin/detect and bin/build)",
                        builder.name,
                        path.display()
                    )));
                }
            }
        }
        let dir = &config.builds_dir;
        let fail = |e: std::io::Error| {
            ExternalConfigError(format!(
                "could not create externalbuilder build output dir {}: {e}",
                dir.display()
            ))
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
        for entry in std::fs::read_dir(dir).map_err(fail)?.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(STAGING_PREFIX)
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(Self {
            config: Arc::new(config),
            declined: Arc::default(),
            detected: Arc::default(),
        })
    }

    /// Where the build of `package_id` is kept.
    pub fn build_dir(&self, package_id: &PackageId) -> PathBuf {
        self.config
            .builds_dir
            .join(sanitize_ccid(package_id.as_str()))
    }

    /// Fabric's `CachedBuild`: the kept build of `package_id`, if there is one.
    fn kept_build(&self, package_id: &PackageId) -> Result<Option<Kept>, LaunchError> {
        let fail = |reason: String| LaunchError::Build {
            package_id: package_id.clone(),
            reason: format!("existing build could not be restored: {reason}"),
        };
        let dir = self.build_dir(package_id);
        match std::fs::metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(fail(format!(
                    "existing build detected, but something went wrong inspecting it: {e}"
                )));
            }
            Ok(_) => {}
        }
        let path = dir.join(BUILD_INFO);
        let bytes = std::fs::read(&path).map_err(|e| {
            fail(format!(
                "could not read '{}' for build info: {e}",
                path.display()
            ))
        })?;
        let info: BuildInfo = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("malformed build info at '{}': {e}", path.display())))?;
        let name = info.builder_name;
        let builder = self.config.builders.iter().find(|b| b.name == name);
        let builder = builder.ok_or_else(|| {
            fail(format!(
                "chaincode '{package_id}' was already built with builder '{name}', \
                 but that builder is no longer available"
            ))
        })?;
        Ok(Some(Kept {
            builder: builder.clone(),
            dir,
        }))
    }

    /// Runs `bin/<name>` of `builder` with `args` until it ends or `deadline` passes
    /// (then its process group is killed). Its output is logged; an error describes how
    /// it ended, with the tail of its output.
    fn run_program(
        &self,
        builder: &ExternalBuilder,
        name: &str,
        args: &[&Path],
        deadline: Option<Instant>,
    ) -> Result<(), String> {
        let mut command = Command::new(program(builder, name));
        command
            .args(args)
            .env_clear()
            .envs(environment(builder))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = spawn_when_not_busy(|| command.spawn())
            .map_err(|e| format!("bin/{name} could not run: {e}"))?;
        let tail = Arc::new(Mutex::new(Tail::default()));
        let readers = [
            child
                .stdout
                .take()
                .map(|p| forward(p, builder, name, &tail)),
            child
                .stderr
                .take()
                .map(|p| forward(p, builder, name, &tail)),
        ];
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if deadline.is_none_or(|d| Instant::now() < d) => {}
                // Timed out, or it cannot be waited for: killed with its helpers.
                _ => {
                    if let Some(group) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) {
                        let _ = kill_process_group(group, Signal::KILL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // A helper that left the group may hold the pipes open: not waited for long.
        let flushed = Instant::now() + FLUSH_WAIT;
        while readers.iter().flatten().any(|r| !r.is_finished()) && Instant::now() < flushed {
            std::thread::sleep(Duration::from_millis(5));
        }
        let what = match status {
            Some(status) if status.success() => return Ok(()),
            Some(status) => format!("bin/{name} exited with {}", describe(status)),
            None => format!(
                "bin/{name} was killed: the build timeout ({:?}) passed",
                self.config.build_timeout
            ),
        };
        let output = tail.lock().unwrap_or_else(|e| e.into_inner()).text();
        Err(if output.is_empty() {
            what
        } else {
            format!("{what}; its output:\n{output}")
        })
    }

    /// The first builder whose `detect` exits 0.
    fn detect(
        &self,
        context: &BuildContext,
        deadline: Option<Instant>,
    ) -> Option<&ExternalBuilder> {
        self.config.builders.iter().find(|builder| {
            let args: [&Path; 2] = [&context.src, &context.metadata];
            self.run_program(builder, "detect", &args, deadline)
                .inspect_err(|e| debug!("builder '{}' detect failed: {e}", builder.name))
                .is_ok()
        })
    }

    /// Fabric's `Detector.Build`: the kept build, or detect, build, release and keep.
    /// `None` when no builder accepts the package.
    fn build(&self, package: &ChaincodePackage) -> Result<Option<Kept>, LaunchError> {
        let id = package.id();
        let fail = |reason: String| LaunchError::Build {
            package_id: id.clone(),
            reason,
        };
        if let Some(kept) = self.kept_build(id)? {
            return Ok(Some(kept));
        }
        let deadline = Instant::now().checked_add(self.config.build_timeout);
        let context = BuildContext::new(package)
            .map_err(|e| fail(format!("could not create build context: {e}")))?;
        let remembered = self
            .detected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .and_then(|index| self.config.builders.get(index));
        let Some(builder) = remembered.or_else(|| self.detect(&context, deadline)) else {
            return Ok(None);
        };
        let name = &builder.name;
        let args: [&Path; 3] = [&context.src, &context.metadata, &context.bld];
        self.run_program(builder, "build", &args, deadline)
            .map_err(|e| {
                fail(format!(
                    "external builder failed to build: external builder '{name}' failed: {e}"
                ))
            })?;
        if is_executable(&program(builder, "release")) {
            let args: [&Path; 2] = [&context.bld, &context.release];
            self.run_program(builder, "release", &args, deadline)
                .map_err(|e| {
                    fail(format!(
                        "external builder failed to release: builder '{name}' release failed: {e}"
                    ))
                })?;
        }
        let dir = self.build_dir(id);
        self.keep(builder, &context, &dir).map_err(|e| {
            fail(format!(
                "could not move or copy build output to persistent location '{}': {e}",
                dir.display()
            ))
        })?;
        info!(target: BUILD_LOG, chaincode = %id, builder = name, "built");
        Ok(Some(Kept {
            builder: builder.clone(),
            dir,
        }))
    }

    /// Assembles the kept build beside `dir`, then renames it into place.
    fn keep(
        &self,
        builder: &ExternalBuilder,
        context: &BuildContext,
        dir: &Path,
    ) -> std::io::Result<()> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let staging = tempfile::Builder::new()
            .prefix(&format!("{STAGING_PREFIX}{name}-"))
            .tempdir_in(&self.config.builds_dir)?;
        move_dir(&context.release, &staging.path().join("release"))?;
        move_dir(&context.bld, &staging.path().join("bld"))?;
        let builder_name = builder.name.clone();
        write_private(
            &staging.path().join(BUILD_INFO),
            &BuildInfo { builder_name },
        )?;
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, dir) {
            let _ = std::fs::remove_dir_all(&staged);
            // A concurrent install of the same package got there first.
            if !dir.join(BUILD_INFO).is_file() {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Starts `bin/run BUILD_OUTPUT_DIR RUN_METADATA_DIR` of a kept build.
    fn run(
        &self,
        kept: &Kept,
        package_id: &PackageId,
        support: &ChaincodeSupport,
    ) -> Result<ExternalChaincode, LaunchError> {
        let fail = |reason: String| LaunchError::Start {
            package_id: package_id.clone(),
            reason,
        };
        let name = kept.builder.name.clone();
        let credentials = match &support.config().tls {
            Some(ca) => Some(ca.issue(package_id).map_err(|e| fail(e.to_string()))?),
            None => None,
        };
        let run_dir = tempfile::Builder::new()
            .prefix("fabric-run")
            .tempdir()
            .map_err(|e| fail(format!("could not create temp run dir: {e}")))?;
        let config = RunConfig {
            chaincode_id: package_id.as_str(),
            peer_address: &self.config.peer_address,
            client_cert: credentials.as_ref().map_or("", |c| &c.cert_pem),
            client_key: credentials.as_ref().map_or("", |c| &c.key_pem),
            root_cert: credentials.as_ref().map_or("", |c| &c.root_pem),
            mspid: &self.config.mspid,
        };
        write_private(&run_dir.path().join("chaincode.json"), &config)
            .map_err(|e| fail(format!("could not write chaincode.json: {e}")))?;
        let mut command = tokio::process::Command::new(program(&kept.builder, "run"));
        command
            .arg(kept.dir.join("bld"))
            .arg(run_dir.path())
            .env_clear()
            .envs(environment(&kept.builder))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = spawn_when_not_busy(|| command.spawn())
            .map_err(|e| fail(format!("builder '{name}' run failed to start: {e}")))?;
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);
        let tail = Arc::new(Mutex::new(Tail::default()));
        let readers = [
            child
                .stdout
                .take()
                .map(|p| forward_run(p, package_id, &name, &tail)),
            child
                .stderr
                .take()
                .map(|p| forward_run(p, package_id, &name, &tail)),
        ];
        let stopping = Arc::new(AtomicBool::new(false));
        let (end, ended) = tokio::sync::watch::channel(None);
        let (gone_tx, gone) = tokio::sync::watch::channel(false);
        let stopped = Arc::clone(&stopping);
        tokio::spawn(async move {
            let status = child.wait().await;
            let readers = futures_util::future::join_all(readers.into_iter().flatten());
            let _ = tokio::time::timeout(FLUSH_WAIT, readers).await;
            // Fabric removes the run directory when `run` exits; the certificate's
            // binding ends with it.
            drop((run_dir, credentials));
            let _ = gone_tx.send(true);
            if !stopped.load(Ordering::Acquire) {
                let status = status.map_or_else(|e| format!("an unknown status ({e})"), describe);
                let tail = tail.lock().unwrap_or_else(|e| e.into_inner()).text();
                let _ = end.send(Some(format!(
                    "bin/run of builder {name} exited with {status}; its last output:\n{tail}"
                )));
            }
        });
        Ok(ExternalChaincode {
            handle: tokio::runtime::Handle::current(),
            builder: kept.builder.name.clone(),
            package_id: package_id.clone(),
            group,
            stopping,
            ended,
            gone,
        })
    }
}

impl ChaincodeRuntime for ExternalRuntime {
    fn name(&self) -> &'static str {
        "external"
    }

    /// No type as such: [`accepts`](ChaincodeRuntime::accepts) asks the builders.
    fn handles(&self, _kind: &str) -> bool {
        false
    }

    /// A kept build exists (its errors are then reported at install or start, as Fabric
    /// fails such a build), or a builder's `detect` exits 0.
    fn accepts(&self, package: &ChaincodePackage) -> bool {
        if self.config.builders.is_empty() {
            return false;
        }
        if self.build_dir(package.id()).exists() {
            return true;
        }
        let declined = || self.declined.lock().unwrap_or_else(|e| e.into_inner());
        if declined().contains(package.id()) {
            return false;
        }
        let deadline = Instant::now().checked_add(self.config.build_timeout);
        match BuildContext::new(package) {
            Ok(context) => match self.detect(&context, deadline) {
                Some(builder) => {
                    let index = self
                        .config
                        .builders
                        .iter()
                        .position(|b| std::ptr::eq(b, builder));
                    if let Some(index) = index {
                        self.detected
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(package.id().clone(), index);
                    }
                    true
                }
                None => {
                    declined().insert(package.id().clone());
                    false
                }
            },
            Err(e) => {
                warn!(chaincode = %package.id(), "could not create build context: {e}");
                false
            }
        }
    }

    fn install(&self, package: &ChaincodePackage) -> Result<(), LaunchError> {
        match self.build(package)? {
            Some(_) => Ok(()),
            None => Err(LaunchError::Build {
                package_id: package.id().clone(),
                reason: "no external builder detected it".to_owned(),
            }),
        }
    }

    fn start<'a>(
        &'a self,
        package: &'a ChaincodePackage,
        support: &'a ChaincodeSupport,
    ) -> BoxFuture<'a, Result<Box<dyn RunningChaincode>, LaunchError>> {
        Box::pin(async move {
            let id = package.id();
            let fail = |reason: String| LaunchError::Start {
                package_id: id.clone(),
                reason,
            };
            let kept = match self.kept_build(id)? {
                Some(kept) => Some(kept),
                // Built at launch, as Fabric does when the kept build is gone.
                None => {
                    let (runtime, package) = (self.clone(), package.clone());
                    tokio::task::spawn_blocking(move || runtime.build(&package))
                        .await
                        .map_err(|e| fail(format!("the build task failed: {e}")))??
                }
            };
            let kept = kept.ok_or_else(|| fail("no external builder detected it".to_owned()))?;
            let connection = kept.dir.join("release").join(SERVER_CONNECTION);
            match std::fs::read(&connection) {
                Ok(bytes) => {
                    let info = ConnectionInfo::from_json(&bytes, id)?;
                    let running: Box<dyn RunningChaincode> =
                        Box::new(ccaas::dial(&info, id, support).await?);
                    return Ok(running);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(fail(format!(
                        "could not read '{}' for chaincode info: {e}",
                        connection.display()
                    )));
                }
            }
            if !is_executable(&program(&kept.builder, "run")) {
                return Err(fail(format!(
                    "builder '{}' has no bin/run and its release has no \
                     {SERVER_CONNECTION}: nothing can start it",
                    kept.builder.name
                )));
            }
            let running: Box<dyn RunningChaincode> = Box::new(self.run(&kept, id, support)?);
            Ok(running)
        })
    }
}

/// A chaincode `bin/run` started. Stopping it sends SIGTERM to its process group, then
/// SIGKILL after [`TERM_TIMEOUT`]; its run directory and TLS binding go when it is gone.
#[derive(Debug)]
pub struct ExternalChaincode {
    handle: tokio::runtime::Handle,
    builder: String,
    package_id: PackageId,
    group: Option<Pid>,
    stopping: Arc<AtomicBool>,
    ended: tokio::sync::watch::Receiver<Option<String>>,
    gone: tokio::sync::watch::Receiver<bool>,
}

/// Whether `gone` turns true within `wait`.
async fn gone_within(gone: &mut tokio::sync::watch::Receiver<bool>, wait: Duration) -> bool {
    tokio::time::timeout(wait, gone.wait_for(|g| *g))
        .await
        .is_ok()
}

impl ExternalChaincode {
    fn signal(group: Option<Pid>, gone: &tokio::sync::watch::Receiver<bool>, signal: Signal) {
        if let Some(group) = group.filter(|_| !*gone.borrow()) {
            let _ = kill_process_group(group, signal);
        }
    }

    /// Sends SIGTERM; false if it was stopped already.
    fn begin_stop(&self) -> bool {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return false;
        }
        Self::signal(self.group, &self.gone, Signal::TERM);
        true
    }
}

impl RunningChaincode for ExternalChaincode {
    fn stop(&self) {
        if self.begin_stop() {
            let (group, mut gone) = (self.group, self.gone.clone());
            drop(self.handle.spawn(async move {
                if !gone_within(&mut gone, TERM_TIMEOUT).await {
                    Self::signal(group, &gone, Signal::KILL);
                }
            }));
        }
    }

    fn exited(&self) -> BoxFuture<'_, String> {
        crate::launcher::wait_exited(&self.ended)
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.begin_stop();
        Box::pin(async move {
            let mut gone = self.gone.clone();
            if !gone_within(&mut gone, TERM_TIMEOUT).await {
                Self::signal(self.group, &gone, Signal::KILL);
                if !gone_within(&mut gone, TERM_TIMEOUT).await {
                    let id = &self.package_id;
                    warn!(chaincode = %id, builder = self.builder, "failed to stop instance");
                }
            }
        })
    }
}

impl Drop for ExternalChaincode {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RedbStore;
    use crate::package::{PackageStore, build_ccaas_package, build_package};
    use crate::support::SupportConfig;
    use crate::tls::ChaincodeCa;
    use cchost_proto::protos::chaincode_message::Type;
    use cchost_proto::protos::{ChaincodeId, ChaincodeMessage};
    use prost::Message;

    /// Writes `<dir>/<builder>/bin/<name>`, a `/bin/sh` script running `body`.
    fn script(dir: &Path, builder: &str, name: &str, body: &str) {
        let bin = dir.join(builder).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join(name), format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A builder `name` under `dir` with `detect` and `build` from the given bodies.
    fn builder(dir: &Path, name: &str, detect: &str, build: &str) -> ExternalBuilder {
        script(dir, name, "detect", detect);
        script(dir, name, "build", build);
        ExternalBuilder {
            name: name.to_owned(),
            path: dir.join(name),
            propagate_environment: Vec::new(),
        }
    }

    fn runtime(
        dir: &Path,
        builders: Vec<ExternalBuilder>,
        build_timeout: Duration,
    ) -> ExternalRuntime {
        ExternalRuntime::new(ExternalConfig {
            builders,
            builds_dir: dir.join("builds"),
            peer_address: "127.0.0.1:7052".to_owned(),
            mspid: "Org1MSP".to_owned(),
            build_timeout,
        })
        .unwrap()
    }

    /// A package of type `sh` holding `main.sh`.
    fn package() -> ChaincodePackage {
        let bytes = build_package("ext", "sh", "", &[("main.sh", b"echo hi")]).unwrap();
        ChaincodePackage::parse(&bytes).unwrap()
    }

    fn support(tls: Option<Arc<ChaincodeCa>>) -> ChaincodeSupport {
        let config = SupportConfig {
            tls,
            ..SupportConfig::default()
        };
        ChaincodeSupport::new(config, Arc::new(RedbStore::in_memory().unwrap())).unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Waits up to 5 s for `path` to exist; its content.
    async fn wait_for(path: &Path) -> String {
        for _ in 0..500 {
            if let Ok(text) = std::fs::read_to_string(path)
                && (text.ends_with('\n') || text.ends_with('}'))
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} never appeared", path.display());
    }

    /// Installs a package whose builder `b` has `run` = `body`, and starts it.
    async fn start_run(
        dir: &Path,
        body: &str,
        support: &ChaincodeSupport,
    ) -> (PackageId, Box<dyn RunningChaincode>) {
        let b = builder(dir, "b", "exit 0", "exit 0");
        script(dir, "b", "run", body);
        let rt = runtime(dir, vec![b], Duration::from_secs(10));
        let package = package();
        rt.install(&package).unwrap();
        let running = rt.start(&package, support).await.unwrap();
        (package.id().clone(), running)
    }

    #[test]
    fn sanitize_replaces_the_nine_characters_fabric_replaces_with_a_dash() {
        assert_eq!(
            sanitize_ccid("a<b>c:d\"e/f\\g|h?i*j&k.l_m+n"),
            "a-b-c-d-e-f-g-h-i-j-k.l_m+n"
        );
    }

    #[test]
    fn new_refuses_a_builder_without_an_executable_bin_build() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "nobuild", "detect", "exit 0");
        let config = ExternalConfig {
            builders: vec![ExternalBuilder {
                name: "nobuild".to_owned(),
                path: dir.path().join("nobuild"),
                propagate_environment: Vec::new(),
            }],
            builds_dir: dir.path().join("builds"),
            peer_address: "127.0.0.1:7052".to_owned(),
            mspid: "Org1MSP".to_owned(),
            build_timeout: Duration::from_secs(1),
        };
        assert_eq!(
            ExternalRuntime::new(config).unwrap_err().to_string(),
            format!(
                "external builder 'nobuild': {}/nobuild/bin/build is missing or not executable \
                 (a builder needs bin/detect and bin/build)",
                dir.path().display()
            )
        );
    }

    #[test]
    fn the_first_detect_to_exit_0_wins_and_its_kept_build_is_reused_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let count = d.join("count");
        let refuses = builder(d, "refuses", "exit 1", "exit 0");
        let first = builder(
            d,
            "first",
            r#"[ -f "$1/main.sh" ] && grep -q '"type":"sh"' "$2/metadata.json""#,
            &format!(
                r#"echo x >> {0}; cp "$1/main.sh" "$3/"; echo first > "$3/by""#,
                count.display()
            ),
        );
        script(
            d,
            "first",
            "release",
            r#"mkdir -p "$2/statedb" && echo index > "$2/statedb/i""#,
        );
        let second = builder(d, "second", "exit 0", r#"echo second > "$3/by""#);
        let rt = runtime(
            d,
            vec![refuses, first, second.clone()],
            Duration::from_secs(10),
        );
        let package = package();
        assert!(rt.accepts(&package));
        rt.install(&package).unwrap();
        rt.install(&package).unwrap();

        let kept = rt.build_dir(package.id());
        assert_eq!(
            kept,
            d.join("builds")
                .join(package.id().as_str().replace(':', "-"))
        );
        assert_eq!(
            entries(&d.join("builds")),
            [kept.file_name().unwrap().to_string_lossy()]
        );
        assert_eq!(entries(&kept), ["bld", "build-info.json", "release"]);
        let read = |p: &str| std::fs::read_to_string(kept.join(p)).unwrap();
        assert_eq!(read("build-info.json"), r#"{"builder_name":"first"}"#);
        assert_eq!(read("bld/by"), "first\n");
        assert_eq!(read("bld/main.sh"), "echo hi");
        assert_eq!(read("release/statedb/i"), "index\n");
        assert_eq!(
            std::fs::read_to_string(&count).unwrap(),
            "x\n",
            "built once"
        );

        let without_first = runtime(d, vec![second], Duration::from_secs(10));
        assert_eq!(
            without_first.install(&package).unwrap_err().to_string(),
            format!(
                "could not build chaincode {0}: existing build could not be restored: chaincode \
                 '{0}' was already built with builder 'first', but that builder is no longer \
                 available",
                package.id()
            )
        );
    }

    #[test]
    fn a_failing_build_reports_builder_program_status_and_output_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let failing = builder(
            dir.path(),
            "wasm",
            "exit 0",
            "echo 'wasm validation: import env.foo is not allowed' >&2; exit 3",
        );
        let rt = runtime(dir.path(), vec![failing], Duration::from_secs(10));
        let package = package();
        assert_eq!(
            rt.install(&package).unwrap_err().to_string(),
            format!(
                "could not build chaincode {}: external builder failed to build: external builder \
                 'wasm' failed: bin/build exited with status 3; its output:\n\
                 wasm validation: import env.foo is not allowed",
                package.id()
            )
        );
        assert!(entries(&dir.path().join("builds")).is_empty());
    }

    #[test]
    fn a_build_past_build_timeout_is_killed_within_it_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let slow = builder(dir.path(), "slow", "exit 0", "echo started >&2; sleep 30");
        let rt = runtime(dir.path(), vec![slow], Duration::from_secs(1));
        let package = package();
        let started = Instant::now();
        let error = rt.install(&package).unwrap_err().to_string();
        // Killed at its timeout, long before its 30 s sleep ends.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            error,
            format!(
                "could not build chaincode {}: external builder failed to build: external builder \
                 'slow' failed: bin/build was killed: the build timeout (1s) passed; its output:\n\
                 started",
                package.id()
            )
        );
        assert!(entries(&dir.path().join("builds")).is_empty());
    }

    #[test]
    fn programs_see_exactly_path_ld_library_path_libpath_tmpdir_and_propagated_names_as_set() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("environ");
        let mut b = builder(
            dir.path(),
            "env",
            &format!(
                r"tr '\0' '\n' < /proc/$$/environ > {}; exit 1",
                out.display()
            ),
            "exit 0",
        );
        b.propagate_environment = vec!["HOME".to_owned(), "CCHOST_TEST_NEVER_SET".to_owned()];
        let rt = runtime(dir.path(), vec![b], Duration::from_secs(10));
        assert!(!rt.accepts(&package()));
        let mut seen: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        seen.sort();
        let expected: Vec<String> = ["HOME", "LD_LIBRARY_PATH", "LIBPATH", "PATH", "TMPDIR"]
            .into_iter()
            .filter_map(|name| Some(format!("{name}={}", std::env::var(name).ok()?)))
            .collect();
        assert!(expected.iter().any(|v| v.starts_with("PATH=")));
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn run_gets_chaincode_json_with_empty_credentials_without_tls() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("chaincode.json");
        let body = format!(
            r#"cp "$2/chaincode.json" {0}.tmp && mv {0}.tmp {0}; exec sleep 30"#,
            out.display()
        );
        let (id, running) = start_run(dir.path(), &body, &support(None)).await;
        let json: serde_json::Value = serde_json::from_str(&wait_for(&out).await).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "chaincode_id": id.as_str(),
                "peer_address": "127.0.0.1:7052",
                "client_cert": "",
                "client_key": "",
                "root_cert": "",
                "mspid": "Org1MSP",
            })
        );
        running.shutdown().await;
    }

    fn register(id: &PackageId) -> ChaincodeMessage {
        let name = id.as_str().to_owned();
        ChaincodeMessage {
            r#type: Type::Register as i32,
            payload: ChaincodeId {
                name,
                ..Default::default()
            }
            .encode_to_vec(),
            ..Default::default()
        }
    }

    fn der(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap()
    }

    #[tokio::test]
    async fn run_gets_pem_credentials_bound_to_the_package_until_it_is_gone_and_its_run_dir_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (out, run_dir) = (
            dir.path().join("chaincode.json"),
            dir.path().join("run_dir"),
        );
        let body = format!(
            r#"echo "$2" > {1}; cp "$2/chaincode.json" {0}.tmp && mv {0}.tmp {0}; exec sleep 30"#,
            out.display(),
            run_dir.display()
        );
        let ca = Arc::new(ChaincodeCa::new(&["127.0.0.1"]).unwrap());
        let (id, running) = start_run(dir.path(), &body, &support(Some(Arc::clone(&ca)))).await;
        let json: serde_json::Value = serde_json::from_str(&wait_for(&out).await).unwrap();
        let field = |name: &str| json[name].as_str().unwrap().to_owned();
        assert_eq!(field("chaincode_id"), id.as_str());
        assert_eq!(field("mspid"), "Org1MSP");
        assert!(field("client_cert").starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(field("client_key").starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(field("root_cert"), ca.ca_pem());
        let cert = der(&field("client_cert"));
        assert_eq!(ca.authenticate(&register(&id), Some(&cert)), Ok(()));
        let run_dir = PathBuf::from(std::fs::read_to_string(&run_dir).unwrap().trim_end());
        assert!(run_dir.join("chaincode.json").is_file());

        running.shutdown().await;
        let error = ca.authenticate(&register(&id), Some(&cert)).unwrap_err();
        assert!(error.ends_with("not found in registry"), "{error}");
        assert!(!run_dir.exists());
    }

    #[tokio::test]
    async fn stop_sends_sigterm_then_sigkill_after_5_s_to_a_run_that_ignores_term() {
        let dir = tempfile::tempdir().unwrap();
        let (pid, log) = (dir.path().join("pid"), dir.path().join("log"));
        let body = format!(
            "trap 'echo term >> {1}' TERM; echo $$ > {0}; while :; do sleep 0.1; done",
            pid.display(),
            log.display()
        );
        let (_, running) = start_run(dir.path(), &body, &support(None)).await;
        let pid: i32 = wait_for(&pid).await.trim().parse().unwrap();
        let started = Instant::now();
        running.shutdown().await;
        let took = started.elapsed();
        assert!(
            took >= TERM_TIMEOUT && took < TERM_TIMEOUT + Duration::from_secs(5),
            "{took:?}"
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "term\n");
        assert!(rustix::process::test_kill_process(Pid::from_raw(pid).unwrap()).is_err());
    }

    #[tokio::test]
    async fn stop_ends_a_run_that_exits_on_term_without_waiting_for_sigkill_and_reports_no_exit() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        let body = format!("echo $$ > {}; exec sleep 30", pid.display());
        let (_, running) = start_run(dir.path(), &body, &support(None)).await;
        let pid: i32 = wait_for(&pid).await.trim().parse().unwrap();
        let started = Instant::now();
        running.shutdown().await;
        assert!(started.elapsed() < TERM_TIMEOUT, "{:?}", started.elapsed());
        assert!(rustix::process::test_kill_process(Pid::from_raw(pid).unwrap()).is_err());
        let exited = tokio::time::timeout(Duration::from_millis(200), running.exited()).await;
        assert!(
            exited.is_err(),
            "a stopped run reported an exit: {exited:?}"
        );
    }

    #[tokio::test]
    async fn an_exit_of_run_reports_builder_status_and_last_output() {
        let dir = tempfile::tempdir().unwrap();
        let body = "echo 'dialing the peer' >&2; echo 'connection refused' >&2; exit 1";
        let (_, running) = start_run(dir.path(), body, &support(None)).await;
        let reason = tokio::time::timeout(Duration::from_secs(5), running.exited())
            .await
            .unwrap();
        assert_eq!(
            reason,
            "bin/run of builder b exited with status 1; its last output:\n\
             dialing the peer\nconnection refused"
        );
    }

    #[tokio::test]
    async fn a_released_connection_json_makes_start_dial_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let b = builder(dir.path(), "svc", "exit 0", "exit 0");
        script(
            dir.path(),
            "svc",
            "release",
            &format!(
                "mkdir -p \"$2/chaincode/server\" && echo '{{\"address\":\"127.0.0.1:{port}\",\
                 \"dial_timeout\":\"1s\"}}' > \"$2/chaincode/server/connection.json\""
            ),
        );
        let rt = runtime(dir.path(), vec![b], Duration::from_secs(10));
        let package = package();
        rt.install(&package).unwrap();
        let error = rt
            .start(&package, &support(None))
            .await
            .unwrap_err()
            .to_string();
        let dialing = format!(
            "starting chaincode {}: dialing 127.0.0.1:{port}",
            package.id()
        );
        assert!(error.starts_with(&dialing), "{error}");
    }

    #[tokio::test]
    async fn start_without_run_or_released_connection_json_names_both() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(
            dir.path(),
            vec![builder(dir.path(), "b", "exit 0", "exit 0")],
            Duration::from_secs(10),
        );
        let package = package();
        rt.install(&package).unwrap();
        assert_eq!(
            rt.start(&package, &support(None))
                .await
                .unwrap_err()
                .to_string(),
            format!(
                "starting chaincode {}: builder 'b' has no bin/run and its release has no \
                 chaincode/server/connection.json: nothing can start it",
                package.id()
            )
        );
    }

    #[tokio::test]
    async fn the_launcher_installs_with_external_builders_first_and_else_with_the_next_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let sh = builder(
            dir.path(),
            "sh",
            r#"grep -q '"type":"sh"' "$2/metadata.json""#,
            "exit 0",
        );
        let external = runtime(dir.path(), vec![sh], Duration::from_secs(10));
        let runtimes: Vec<Arc<dyn ChaincodeRuntime>> =
            vec![Arc::new(external.clone()), Arc::new(ccaas::CcaasRuntime)];
        let packages = PackageStore::open(dir.path().join("packages")).unwrap();
        let launcher = crate::launcher::Launcher::new(
            support(None),
            packages,
            runtimes,
            Duration::from_secs(5),
        );

        let sh_package = build_package("ext", "sh", "", &[("main.sh", b"echo hi")]).unwrap();
        let id = launcher.install(&sh_package).unwrap();
        assert!(external.build_dir(&id).join(BUILD_INFO).is_file());

        let ccaas_package = build_ccaas_package("svc", br#"{"address":"127.0.0.1:9999"}"#).unwrap();
        let id = launcher.install(&ccaas_package).unwrap();
        assert!(!external.build_dir(&id).exists());

        let other = build_package("other", "cobol", "", &[("main.cbl", b"")]).unwrap();
        assert_eq!(
            launcher.install(&other).unwrap_err().to_string(),
            r#"no runtime starts chaincode of type "cobol""#
        );
    }

    #[test]
    fn a_package_every_builder_declined_is_not_detected_again() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("detected");
        let detect = format!("echo run >> '{}'; exit 1", count.display());
        let none = builder(dir.path(), "none", &detect, "exit 0");
        let external = runtime(dir.path(), vec![none], Duration::from_secs(10));
        let package = ChaincodePackage::parse(
            &build_ccaas_package("svc", br#"{"address":"127.0.0.1:9999"}"#).unwrap(),
        )
        .unwrap();
        assert!(!external.accepts(&package));
        assert!(!external.accepts(&package));
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "run\n");
    }

    #[test]
    fn installing_through_the_launcher_runs_the_accepting_detect_once() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("detected");
        let detect = format!("echo run >> '{}'; exit 0", count.display());
        let all = builder(dir.path(), "all", &detect, "exit 0");
        let external = runtime(dir.path(), vec![all], Duration::from_secs(10));
        let packages = PackageStore::open(dir.path().join("packages")).unwrap();
        let launcher = crate::launcher::Launcher::new(
            support(None),
            packages,
            vec![Arc::new(external.clone())],
            Duration::from_secs(5),
        );
        let package = build_package("ext", "sh", "", &[("main.sh", b"echo hi")]).unwrap();
        let id = launcher.install(&package).unwrap();
        assert!(external.build_dir(&id).join(BUILD_INFO).is_file());
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "run\n");
    }

    #[test]
    fn output_lines_longer_than_the_cap_are_read_in_pieces_of_the_cap() {
        let long = vec![b'x'; MAX_LINE + 10];
        let input = [b"short\n".as_slice(), &long, b"\nlast"].concat();
        let mut reader = std::io::BufReader::new(input.as_slice());
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while read_line_capped(&mut reader, &mut line).unwrap() > 0 {
            lines.push(line.clone());
        }
        let lengths: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lengths, [5, MAX_LINE, 10, 4]);
        assert_eq!(lines[0], b"short");
        assert_eq!(lines[3], b"last");
    }
}
