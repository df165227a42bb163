//! Chaincode packages in Fabric's format, and the directory installed packages live in.
//!
//! A package is a gzipped tar holding `metadata.json` (`{"path","type","label"}`) and
//! `code.tar.gz`. For wasm chaincode (`"type": "wasm"`) `code.tar.gz` holds the module at
//! `path`. The package id is Fabric's: `label:hex(sha256(package file))`, so the same
//! bytes install to the same id on every peer. [`build_wasm_package`] writes the archive
//! deterministically (fixed order, times, owners and modes): the same module always gives
//! the same package id.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::PackageId;

/// The package's description of itself.
pub const METADATA_FILE: &str = "metadata.json";
/// The archive of the chaincode's code inside a package.
pub const CODE_FILE: &str = "code.tar.gz";
/// `metadata.json` `type` of wasm chaincode.
pub const WASM_TYPE: &str = "wasm";
/// The package type of chaincode-as-a-service (Fabric's `ccaas_builder`).
pub const CCAAS_TYPE: &str = "ccaas";
/// The other package type external builders commonly use for chaincode-as-a-service.
pub const EXTERNAL_TYPE: &str = "external";
/// Where a chaincode-as-a-service package keeps its address, in `code.tar.gz`.
pub const CONNECTION_FILE: &str = "connection.json";
/// Largest package file accepted.
pub const MAX_PACKAGE_SIZE: usize = 64 * 1024 * 1024;
/// Largest total of unpacked bytes (a gzip bomb stops here).
pub const MAX_UNPACKED_SIZE: u64 = 256 * 1024 * 1024;
/// Most entries in one archive.
const MAX_ENTRIES: usize = 10_000;

/// Why a package cannot be read or installed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The bytes are not a package.
    #[error("not a chaincode package: {0}")]
    Malformed(String),
    /// `metadata.json` is missing or wrong.
    #[error("invalid {METADATA_FILE}: {0}")]
    Metadata(String),
    /// The label breaks Fabric's rule.
    #[error(
        "invalid label {0:?}: a label starts with a letter or digit and holds only letters, \
         digits and `_ . + -`"
    )]
    Label(String),
    /// The package is bigger than cchost accepts.
    #[error("the package is {size} bytes; the limit is {MAX_PACKAGE_SIZE}")]
    TooLarge {
        /// Size of the package file.
        size: usize,
    },
    /// No installed package has this id.
    #[error("package {0} is not installed")]
    NotInstalled(PackageId),
    /// Reading or writing the package directory failed.
    #[error("package store: {0}")]
    Io(#[from] std::io::Error),
}

/// `metadata.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMetadata {
    /// For wasm chaincode: the module's path inside `code.tar.gz`.
    pub path: String,
    /// The chaincode type: `wasm`, `golang`, `node`, `java`, `ccaas`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The label the package id starts with.
    pub label: String,
}

/// A parsed package: its id, metadata and the files of `code.tar.gz`.
#[derive(Debug, Clone)]
pub struct ChaincodePackage {
    id: PackageId,
    hash: [u8; 32],
    metadata: PackageMetadata,
    code: BTreeMap<String, Vec<u8>>,
    /// A wasm package loaded from its unpacked copy: the module, read at its first use
    /// (a launch whose artifact is cached never reads it).
    unpacked: Option<UnpackedModule>,
}

/// The module file of an unpacked wasm package.
#[derive(Debug, Clone)]
struct UnpackedModule {
    file: PathBuf,
    size: usize,
    bytes: std::sync::OnceLock<Option<Vec<u8>>>,
}

impl ChaincodePackage {
    /// Reads a package file.
    pub fn parse(bytes: &[u8]) -> Result<Self, PackageError> {
        if bytes.len() > MAX_PACKAGE_SIZE {
            return Err(PackageError::TooLarge { size: bytes.len() });
        }
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let mut outer = unpack(bytes, "the package")?;
        let metadata = outer.remove(METADATA_FILE).ok_or_else(|| {
            PackageError::Malformed(format!("it has no {METADATA_FILE} at its top level"))
        })?;
        let metadata: PackageMetadata =
            serde_json::from_slice(&metadata).map_err(|e| PackageError::Metadata(e.to_string()))?;
        check_label(&metadata.label)?;
        let code = outer.remove(CODE_FILE).ok_or_else(|| {
            PackageError::Malformed(format!("it has no {CODE_FILE} at its top level"))
        })?;
        let code = unpack(&code, CODE_FILE)?;
        let id = PackageId::new(format!("{}:{}", metadata.label, hex::encode(hash)));
        Ok(Self {
            id,
            hash,
            metadata,
            code,
            unpacked: None,
        })
    }

    /// `label:sha256hex`.
    pub fn id(&self) -> &PackageId {
        &self.id
    }

    /// sha256 of the package file.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The total size of the files in `code.tar.gz`, bytes.
    pub fn code_size(&self) -> usize {
        self.code.values().map(Vec::len).sum::<usize>()
            + self.unpacked.as_ref().map_or(0, |u| u.size)
    }

    /// `metadata.json`.
    pub fn metadata(&self) -> &PackageMetadata {
        &self.metadata
    }

    /// A file of `code.tar.gz`, by its path in the archive.
    pub fn code_file(&self, path: &str) -> Option<&[u8]> {
        if let Some(file) = self.code.get(path) {
            return Some(file);
        }
        let unpacked = self
            .unpacked
            .as_ref()
            .filter(|_| path == self.metadata.path)?;
        unpacked
            .bytes
            .get_or_init(|| std::fs::read(&unpacked.file).ok())
            .as_deref()
    }

    /// The paths of every file in `code.tar.gz`, sorted.
    pub fn code_paths(&self) -> impl Iterator<Item = &str> {
        self.code
            .keys()
            .map(String::as_str)
            .chain(self.unpacked.as_ref().map(|_| self.metadata.path.as_str()))
    }

    /// The wasm module of a `wasm` package.
    pub fn wasm(&self) -> Result<&[u8], PackageError> {
        if self.metadata.kind != WASM_TYPE {
            return Err(PackageError::Metadata(format!(
                "type is {:?}, not {WASM_TYPE:?}",
                self.metadata.kind
            )));
        }
        self.code_file(&self.metadata.path).ok_or_else(|| {
            PackageError::Malformed(format!(
                "{CODE_FILE} has no {:?}, the path {METADATA_FILE} names",
                self.metadata.path
            ))
        })
    }
}

/// Writes a `wasm` package holding `wasm` as `<name>.wasm`; returns its bytes.
pub fn build_wasm_package(label: &str, name: &str, wasm: &[u8]) -> Result<Vec<u8>, PackageError> {
    let path = format!("{name}.wasm");
    build_package(label, WASM_TYPE, &path, &[(path.as_str(), wasm)])
}

/// A chaincode-as-a-service package: `connection.json` in `code.tar.gz`, type `ccaas`,
/// as Fabric's `ccaas_builder` expects it.
pub fn build_ccaas_package(label: &str, connection_json: &[u8]) -> Result<Vec<u8>, PackageError> {
    build_package(label, CCAAS_TYPE, "", &[(CONNECTION_FILE, connection_json)])
}

/// A package of type `kind` whose `code.tar.gz` holds `files`, written deterministically.
pub fn build_package(
    label: &str,
    kind: &str,
    path: &str,
    files: &[(&str, &[u8])],
) -> Result<Vec<u8>, PackageError> {
    check_label(label)?;
    let code = pack(files)?;
    let metadata = serde_json::to_vec(&PackageMetadata {
        path: path.to_owned(),
        kind: kind.to_owned(),
        label: label.to_owned(),
    })
    .map_err(|e| PackageError::Metadata(e.to_string()))?;
    pack(&[(METADATA_FILE, &metadata), (CODE_FILE, &code)])
}

/// The package id of a package file, without parsing it: `label:sha256hex`.
pub fn package_id(label: &str, package: &[u8]) -> PackageId {
    PackageId::new(format!("{label}:{}", hex::encode(Sha256::digest(package))))
}

/// Fabric's label rule: `^[[:alnum:]][[:alnum:]_.+-]*$`.
fn check_label(label: &str) -> Result<(), PackageError> {
    let mut chars = label.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c)) {
        Ok(())
    } else {
        Err(PackageError::Label(label.to_owned()))
    }
}

/// A deterministic `.tar.gz` of `files`, in the given order.
fn pack(files: &[(&str, &[u8])]) -> Result<Vec<u8>, PackageError> {
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut gzip = write_tar(gzip, files)?;
    gzip.flush()?;
    Ok(gzip.finish()?)
}

/// A deterministic tar of `files` (regular files, mode 0644, owner 0, mtime 0), in the
/// given order, written to `out`: the one tar writer of packages and image builds.
pub(crate) fn write_tar<W: Write>(out: W, files: &[(&str, &[u8])]) -> std::io::Result<W> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, *bytes)?;
    }
    tar.into_inner()
}

/// The regular files of a `.tar.gz`, by path (`./` prefixes dropped); at most
/// [`MAX_UNPACKED_SIZE`] bytes in all.
fn unpack(bytes: &[u8], what: &str) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    let malformed = |e: std::io::Error| PackageError::Malformed(format!("{what}: {e}"));
    let gzip = flate2::read::GzDecoder::new(bytes).take(MAX_UNPACKED_SIZE + 1);
    let mut archive = tar::Archive::new(gzip);
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        if files.len() >= MAX_ENTRIES {
            return Err(PackageError::Malformed(format!(
                "{what} has more than {MAX_ENTRIES} entries"
            )));
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Directory => continue,
            other => {
                return Err(PackageError::Malformed(format!(
                    "{what} holds a {other:?} entry; only files and directories are allowed"
                )));
            }
        }
        let path = entry.path().map_err(malformed)?;
        let path = path
            .to_str()
            .ok_or_else(|| PackageError::Malformed(format!("{what} has a non-UTF-8 path")))?
            .trim_start_matches("./")
            .to_owned();
        if path.split('/').any(|part| part == "..") || path.starts_with('/') {
            return Err(PackageError::Malformed(format!(
                "{what} has a path outside the archive: {path:?}"
            )));
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNPACKED_SIZE {
            return Err(PackageError::Malformed(format!(
                "{what} unpacks to more than {MAX_UNPACKED_SIZE} bytes"
            )));
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(malformed)?;
        if files.insert(path.clone(), content).is_some() {
            return Err(PackageError::Malformed(format!(
                "{what} holds {path:?} twice"
            )));
        }
    }
    Ok(files)
}

/// Installed packages: `<dir>/<label>.<hash>.tar.gz`, as Fabric names them.
#[derive(Debug, Clone)]
pub struct PackageStore {
    dir: PathBuf,
}

impl PackageStore {
    /// The store in `dir` (created when missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, PackageError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Saves `bytes`, the file `package` was parsed from (checked by hash, so it is not
    /// unpacked again); saving the same package again changes nothing.
    pub fn save(&self, package: &ChaincodePackage, bytes: &[u8]) -> Result<(), PackageError> {
        if Sha256::digest(bytes).as_slice() != package.hash() {
            return Err(PackageError::Malformed(format!(
                "these bytes are not the file of package {}",
                package.id()
            )));
        }
        let path = self.path(package.id());
        if !path.exists() {
            write_atomically(&path, bytes)?;
        }
        if package.metadata().kind == WASM_TYPE && !self.unpacked_paths(package.id()).1.exists() {
            self.save_unpacked(package)?;
        }
        Ok(())
    }

    /// Where a wasm package's unpacked copy is kept: its module and its metadata.
    fn unpacked_paths(&self, id: &PackageId) -> (PathBuf, PathBuf) {
        let stem = id.as_str().replacen(':', ".", 1);
        (
            self.dir.join(format!("{stem}.module.wasm")),
            self.dir.join(format!("{stem}.metadata.json")),
        )
    }

    /// Writes the unpacked copy of a wasm package (the module, then the metadata, which
    /// marks the copy complete), so that a launch reads it instead of unpacking the
    /// archive (gunzip and untar of the module: about 2 ms of a 2.2 ms cold launch).
    fn save_unpacked(&self, package: &ChaincodePackage) -> Result<(), PackageError> {
        let (module, metadata) = self.unpacked_paths(package.id());
        write_atomically(&module, package.wasm()?)?;
        let json = serde_json::to_vec(package.metadata())
            .map_err(|e| PackageError::Metadata(e.to_string()))?;
        write_atomically(&metadata, &json)?;
        Ok(())
    }

    /// A wasm package from its unpacked copy, if it is complete and names the id's
    /// label. Its hash is the id's: the copy was written from the archive the id was
    /// computed from (the store's directory belongs to the host, as the artifact cache
    /// does), so it is not hashed again.
    fn load_unpacked(&self, id: &PackageId) -> Option<ChaincodePackage> {
        let (module, metadata) = self.unpacked_paths(id);
        let metadata: PackageMetadata =
            serde_json::from_slice(&std::fs::read(metadata).ok()?).ok()?;
        let (label, hash) = id.as_str().split_once(':')?;
        if metadata.kind != WASM_TYPE || metadata.label != label {
            return None;
        }
        let hash: [u8; 32] = hex::decode(hash).ok()?.try_into().ok()?;
        let size = usize::try_from(std::fs::metadata(&module).ok()?.len()).ok()?;
        Some(ChaincodePackage {
            id: id.clone(),
            hash,
            code: BTreeMap::new(),
            unpacked: Some(UnpackedModule {
                file: module,
                size,
                bytes: std::sync::OnceLock::new(),
            }),
            metadata,
        })
    }

    /// Loads an installed package.
    /// A wasm package comes from its unpacked copy when there is one; else (a package
    /// installed by an older cchost, or a damaged copy) from the archive, and the copy is
    /// written again.
    pub fn load(&self, id: &PackageId) -> Result<ChaincodePackage, PackageError> {
        if let Some(package) = self.load_unpacked(id) {
            return Ok(package);
        }
        let package = self.load_archive(id)?;
        if package.metadata().kind == WASM_TYPE
            && let Err(e) = self.save_unpacked(&package)
        {
            tracing::warn!(package_id = %id, error = %e, "cannot keep the unpacked copy of a wasm package");
        }
        Ok(package)
    }

    fn load_archive(&self, id: &PackageId) -> Result<ChaincodePackage, PackageError> {
        let path = self.path(id);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PackageError::NotInstalled(id.clone()));
            }
            Err(e) => return Err(e.into()),
        };
        let package = ChaincodePackage::parse(&bytes)?;
        if package.id() != id {
            return Err(PackageError::Malformed(format!(
                "{} holds package {}, not {id}",
                path.display(),
                package.id()
            )));
        }
        Ok(package)
    }

    /// Whether package `id` is installed (one `stat`, no read).
    pub fn contains(&self, id: &PackageId) -> bool {
        self.path(id).is_file()
    }

    /// The ids of every installed package, sorted.
    pub fn list(&self) -> Result<Vec<PackageId>, PackageError> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".tar.gz")) else {
                continue;
            };
            if let Some((label, hash)) = stem.rsplit_once('.') {
                ids.push(PackageId::new(format!("{label}:{hash}")));
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn path(&self, id: &PackageId) -> PathBuf {
        // Labels cannot hold ':' or '/', so this is one file name.
        self.dir
            .join(format!("{}.tar.gz", id.as_str().replacen(':', ".", 1)))
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new one: a
/// temporary file in the same directory, synced, renamed over `path`, and the directory
/// synced.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Every regular file under the chaincode directory `dir`, as `src/<relative path>` in
/// path order (Fabric's layout of a package's source): `.git` left out, symbolic links
/// skipped (Fabric packages hold none), `node_modules` kept.
pub fn source_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, PackageError> {
    let walk = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.file_name() != ".git");
    let mut files = Vec::new();
    for entry in walk {
        let entry = entry.map_err(|e| PackageError::Io(e.into()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(dir)
            .ok()
            .and_then(Path::to_str)
            .ok_or_else(|| {
                PackageError::Malformed(format!("{} is not a UTF-8 path", entry.path().display()))
            })?;
        files.push((format!("src/{relative}"), std::fs::read(entry.path())?));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn a_wasm_package_round_trips_with_fabrics_id_and_is_deterministic() {
        let bytes = build_wasm_package("asset_1.0", "asset", WASM).unwrap();
        assert_eq!(
            bytes,
            build_wasm_package("asset_1.0", "asset", WASM).unwrap()
        );
        let package = ChaincodePackage::parse(&bytes).unwrap();
        let hash = hex::encode(Sha256::digest(&bytes));
        assert_eq!(package.id().as_str(), format!("asset_1.0:{hash}"));
        assert_eq!(package.id(), &package_id("asset_1.0", &bytes));
        assert_eq!(
            package.metadata(),
            &PackageMetadata {
                path: "asset.wasm".into(),
                kind: "wasm".into(),
                label: "asset_1.0".into()
            }
        );
        assert_eq!(package.wasm().unwrap(), WASM);
    }

    #[test]
    fn fabric_label_rules_apply() {
        for bad in ["", "_x", "a b", "a:b", "a/b", "é"] {
            assert!(matches!(
                build_wasm_package(bad, "x", WASM),
                Err(PackageError::Label(_))
            ));
        }
        build_wasm_package("a-1.0+b_c", "x", WASM).unwrap();
    }

    #[test]
    fn broken_packages_are_refused_with_what_is_wrong() {
        let err = |bytes: &[u8]| ChaincodePackage::parse(bytes).unwrap_err().to_string();
        assert!(err(b"not gzip").starts_with("not a chaincode package: the package: "));
        let no_code =
            pack(&[(METADATA_FILE, br#"{"path":"a","type":"wasm","label":"a"}"#)]).unwrap();
        assert_eq!(
            err(&no_code),
            "not a chaincode package: it has no code.tar.gz at its top level"
        );
        let code = pack(&[("other.wasm", WASM)]).unwrap();
        let bad_json = pack(&[(METADATA_FILE, b"{"), (CODE_FILE, &code)]).unwrap();
        assert!(err(&bad_json).starts_with("invalid metadata.json: "));
        let wrong_path = pack(&[
            (
                METADATA_FILE,
                br#"{"path":"a.wasm","type":"wasm","label":"a"}"#,
            ),
            (CODE_FILE, &code),
        ])
        .unwrap();
        let package = ChaincodePackage::parse(&wrong_path).unwrap();
        assert_eq!(
            package.wasm().unwrap_err().to_string(),
            "not a chaincode package: code.tar.gz has no \"a.wasm\", the path metadata.json names"
        );
        // tar refuses to write `..`, so the entry is written by hand.
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..4].copy_from_slice(b"../x");
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut escape = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        escape.write_all(header.as_bytes()).unwrap();
        escape.write_all(&[0; 1024]).unwrap();
        assert_eq!(
            err(&escape.finish().unwrap()),
            "not a chaincode package: the package has a path outside the archive: \"../x\""
        );
    }

    #[test]
    fn an_entry_bigger_than_the_unpacked_limit_is_refused_before_it_is_inflated() {
        let mut header = tar::Header::new_gnu();
        header.set_path("metadata.json").unwrap();
        header.set_size(MAX_UNPACKED_SIZE + 1);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(header.as_bytes()).unwrap();
        gzip.write_all(&[0; 4096]).unwrap();
        let bomb = gzip.finish().unwrap();
        assert_eq!(
            ChaincodePackage::parse(&bomb).unwrap_err().to_string(),
            format!(
                "not a chaincode package: the package unpacks to more than {MAX_UNPACKED_SIZE} bytes"
            )
        );
    }

    #[test]
    fn the_store_saves_lists_and_loads_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path()).unwrap();
        let bytes = build_wasm_package("asset_1.0", "asset", WASM).unwrap();
        let saved = ChaincodePackage::parse(&bytes).unwrap();
        store.save(&saved, &bytes).unwrap();
        store.save(&saved, &bytes).unwrap();
        assert_eq!(store.list().unwrap(), vec![saved.id().clone()]);
        assert_eq!(store.load(saved.id()).unwrap().wasm().unwrap(), WASM);
        let other = build_wasm_package("asset_1.0", "other", WASM).unwrap();
        assert_eq!(
            store.save(&saved, &other).unwrap_err().to_string(),
            format!(
                "not a chaincode package: these bytes are not the file of package {}",
                saved.id()
            )
        );
        let missing = PackageId::new("x:00");
        assert_eq!(
            store.load(&missing).unwrap_err().to_string(),
            "package x:00 is not installed"
        );
    }

    #[test]
    fn a_wasm_package_loads_from_its_unpacked_copy_without_reading_its_archive_and_a_damaged_copy_is_rewritten()
     {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path()).unwrap();
        let bytes = build_wasm_package("asset_1.0", "asset", WASM).unwrap();
        let saved = ChaincodePackage::parse(&bytes).unwrap();
        store.save(&saved, &bytes).unwrap();
        let archive = store.path(saved.id());
        let (module, metadata) = store.unpacked_paths(saved.id());
        // The archive is not read: garbage in its place changes nothing.
        std::fs::write(&archive, b"not a package").unwrap();
        let loaded = store.load(saved.id()).unwrap();
        assert_eq!(
            (
                loaded.id(),
                loaded.hash(),
                loaded.metadata(),
                loaded.wasm().unwrap()
            ),
            (saved.id(), saved.hash(), saved.metadata(), WASM)
        );
        // A damaged copy: the archive is read (here, the garbage is refused) ...
        std::fs::write(&metadata, b"{").unwrap();
        assert!(store.load(saved.id()).is_err());
        // ... and with the archive back, the package loads and the copy is whole again.
        std::fs::write(&archive, &bytes).unwrap();
        assert_eq!(store.load(saved.id()).unwrap().wasm().unwrap(), WASM);
        assert_eq!(
            serde_json::from_slice::<PackageMetadata>(&std::fs::read(&metadata).unwrap()).unwrap(),
            *saved.metadata()
        );
        std::fs::write(&archive, b"not a package").unwrap();
        assert_eq!(store.load(saved.id()).unwrap().wasm().unwrap(), WASM);
        // The module is read at its first use, not when the package loads (a launch
        // whose artifact is cached never reads it).
        let lazy = store.load(saved.id()).unwrap();
        std::fs::write(&module, b"\0asm read later").unwrap();
        assert_eq!(lazy.wasm().unwrap(), b"\0asm read later");
    }
}
