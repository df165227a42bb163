//! Install-time checks, before anything is compiled: a module that is too big for its
//! budget, imports what the host does not provide, lacks the ABI's exports or has a start
//! function is refused with a message saying what to change. Compilation is only ever
//! spent on modules that passed: bounding compilation is the embedder's job (wasmtime does
//! not treat compile-time denial of service as its own), and cchost is the embedder.

use std::collections::BTreeMap;

use wasmparser::{
    CompositeInnerType, ExternalKind, FuncType, Operator, Parser, Payload, TypeRef, ValType,
};

use super::WasmError;

/// Static limits on a module, checked before it is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticLimits {
    /// Bytes of the module.
    pub module_size: usize,
    /// Imports.
    pub imports: usize,
    /// Exports.
    pub exports: usize,
    /// Functions defined in the module.
    pub functions: usize,
    /// Bytes of one function body.
    pub function_size: usize,
    /// Locals of one function.
    pub locals: u64,
    /// Parameters plus results of one function type.
    pub params: usize,
    /// Types.
    pub types: usize,
    /// Globals.
    pub globals: usize,
    /// Tables.
    pub tables: usize,
    /// Data and element segments, each.
    pub segments: usize,
    /// Targets of one `br_table`.
    pub br_table_targets: u32,
    /// Blocks nested in one another.
    pub nesting: usize,
}

impl Default for StaticLimits {
    /// Generous for chaincode built by rustc (a release build of a contract with serde is a
    /// few hundred KiB and a few thousand functions), far below what hurts the compiler.
    fn default() -> Self {
        Self {
            module_size: 32 * 1024 * 1024,
            imports: 512,
            exports: 1024,
            functions: 100_000,
            function_size: 1024 * 1024,
            locals: 50_000,
            params: 128,
            types: 100_000,
            globals: 10_000,
            tables: 1,
            segments: 100_000,
            br_table_targets: 65_536,
            nesting: 10_000,
        }
    }
}

/// A wasm value type, as far as import signatures care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Val {
    I32,
    I64,
    F32,
    F64,
    V128,
    Ref,
}

impl Val {
    pub(crate) fn from_wasmtime(ty: &wasmtime::ValType) -> Self {
        match ty {
            wasmtime::ValType::I32 => Self::I32,
            wasmtime::ValType::I64 => Self::I64,
            wasmtime::ValType::F32 => Self::F32,
            wasmtime::ValType::F64 => Self::F64,
            wasmtime::ValType::V128 => Self::V128,
            wasmtime::ValType::Ref(_) => Self::Ref,
        }
    }

    /// The type's name in the text format (`funcref` for a reference).
    pub(crate) fn wat_name(&self) -> &'static str {
        match self {
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::V128 => "v128",
            Self::Ref => "funcref",
        }
    }

    fn from_parser(ty: &ValType) -> Self {
        match ty {
            ValType::I32 => Self::I32,
            ValType::I64 => Self::I64,
            ValType::F32 => Self::F32,
            ValType::F64 => Self::F64,
            ValType::V128 => Self::V128,
            ValType::Ref(_) => Self::Ref,
        }
    }
}

/// A function signature: parameters and results.
pub(crate) type Signature = (Vec<Val>, Vec<Val>);

/// Every function the host's linker provides, by `(module, name)`.
pub(crate) type HostImports = BTreeMap<(String, String), Signature>;

fn signature(ty: &FuncType) -> Signature {
    (
        ty.params().iter().map(Val::from_parser).collect(),
        ty.results().iter().map(Val::from_parser).collect(),
    )
}

fn show(sig: &Signature) -> String {
    let list = |vals: &[Val]| {
        vals.iter()
            .map(|v| format!("{v:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(&sig.0), list(&sig.1))
}

fn invalid(text: impl Into<String>) -> WasmError {
    WasmError::Invalid(text.into())
}

fn over(what: &str, count: impl std::fmt::Display, limit: impl std::fmt::Display) -> WasmError {
    invalid(format!("it has {count} {what}; the limit is {limit}"))
}

/// Checks `wasm` against the ABI, the host's imports and `limits`; `max_pages` and
/// `max_table_elements` are the per-instance memory and table budgets.
pub(crate) fn validate(
    wasm: &[u8],
    host: &HostImports,
    limits: &StaticLimits,
    max_pages: u64,
    max_table_elements: u64,
) -> Result<(), WasmError> {
    if wasm.len() > limits.module_size {
        return Err(invalid(format!(
            "the module is {} bytes; the limit is {} (build with --release; \
             `[profile.release] strip = true, opt-level = \"s\"` makes it smaller)",
            wasm.len(),
            limits.module_size
        )));
    }
    let malformed = |e: wasmparser::BinaryReaderError| invalid(format!("not a wasm module: {e}"));
    let mut types: Vec<Option<Signature>> = Vec::new();
    // Function index space: imported functions first, then defined ones.
    let mut functions: Vec<u32> = Vec::new();
    let mut exports: BTreeMap<String, (ExternalKind, u32)> = BTreeMap::new();
    let mut imports = 0usize;
    let mut tables = 0usize;
    let mut defined_functions = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(malformed)? {
            Payload::Version { encoding, .. } if encoding != wasmparser::Encoding::Module => {
                return Err(invalid(
                    "it is a component; cchost runs core wasm modules \
                     (build with `--target wasm32-wasip1`)",
                ));
            }
            Payload::TypeSection(section) => {
                for group in section {
                    for ty in group.map_err(malformed)?.into_types() {
                        let sig = match &ty.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                let n = f.params().len() + f.results().len();
                                if n > limits.params {
                                    return Err(over(
                                        "parameters and results in one function type",
                                        n,
                                        limits.params,
                                    ));
                                }
                                Some(signature(f))
                            }
                            _ => None,
                        };
                        types.push(sig);
                        if types.len() > limits.types {
                            return Err(over("types", types.len(), limits.types));
                        }
                    }
                }
            }
            Payload::ImportSection(section) => {
                if section.count() as usize > limits.imports {
                    return Err(over("imports", section.count(), limits.imports));
                }
                for import in section.into_imports() {
                    let import = import.map_err(malformed)?;
                    imports += 1;
                    if imports > limits.imports {
                        return Err(over("imports", imports, limits.imports));
                    }
                    let name = format!("{}::{}", import.module, import.name);
                    let type_index = match import.ty {
                        TypeRef::Func(index) | TypeRef::FuncExact(index) => index,
                        TypeRef::Memory(_) | TypeRef::Table(_) | TypeRef::Global(_) => {
                            return Err(invalid(format!(
                                "it imports `{name}`, which is not a function: chaincode \
                                 defines its own memory, tables and globals"
                            )));
                        }
                        TypeRef::Tag(_) => {
                            return Err(invalid(format!(
                                "it imports the tag `{name}`: exceptions are not supported"
                            )));
                        }
                    };
                    let key = (import.module.to_owned(), import.name.to_owned());
                    let Some(expected) = host.get(&key) else {
                        return Err(invalid(format!(
                            "it imports `{name}`, which cchost does not provide: chaincode may \
                             import the `{}` functions (through cchost-sdk) and WASI preview 1; \
                             remove the code or dependency that needs `{name}`",
                            cchost_abi::IMPORT_MODULE
                        )));
                    };
                    let actual = types
                        .get(type_index as usize)
                        .cloned()
                        .flatten()
                        .ok_or_else(|| invalid(format!("the import `{name}` has no valid type")))?;
                    if &actual != expected {
                        return Err(invalid(format!(
                            "it imports `{name}` as {}, but cchost provides {}: rebuild \
                             against a cchost-sdk of ABI v{}",
                            show(&actual),
                            show(expected),
                            cchost_abi::ABI_VERSION
                        )));
                    }
                    functions.push(type_index);
                }
            }
            Payload::FunctionSection(section) => {
                for type_index in section {
                    functions.push(type_index.map_err(malformed)?);
                    defined_functions += 1;
                    if defined_functions > limits.functions {
                        return Err(over("functions", defined_functions, limits.functions));
                    }
                }
            }
            Payload::TableSection(section) => {
                for table in section {
                    let table = table.map_err(malformed)?;
                    tables += 1;
                    if tables > limits.tables {
                        return Err(over("tables", tables, limits.tables));
                    }
                    if table.ty.initial > max_table_elements {
                        return Err(invalid(format!(
                            "its table starts with {} elements; the limit is {max_table_elements}",
                            table.ty.initial
                        )));
                    }
                }
            }
            Payload::MemorySection(section) => {
                if section.count() > 1 {
                    return Err(over("memories", section.count(), 1));
                }
                for memory in section {
                    let memory = memory.map_err(malformed)?;
                    if memory.memory64 {
                        return Err(invalid("its memory is 64-bit: memory64 is not supported"));
                    }
                    if memory.shared {
                        return Err(invalid(
                            "its memory is shared: threads are not supported (build without \
                             `+atomics`)",
                        ));
                    }
                    if memory.initial > max_pages {
                        return Err(invalid(format!(
                            "its memory starts at {} pages of 64 KiB; the limit is {max_pages} \
                             pages (lower the initial memory, e.g. `-C link-arg=--initial-memory`)",
                            memory.initial
                        )));
                    }
                }
            }
            Payload::GlobalSection(section) if section.count() as usize > limits.globals => {
                return Err(over("globals", section.count(), limits.globals));
            }
            Payload::ExportSection(section) => {
                if section.count() as usize > limits.exports {
                    return Err(over("exports", section.count(), limits.exports));
                }
                for export in section {
                    let export = export.map_err(malformed)?;
                    exports.insert(export.name.to_owned(), (export.kind, export.index));
                }
            }
            Payload::StartSection { .. } => {
                return Err(invalid(
                    "it has a start function: cchost runs guest code only inside \
                     cchost_init/cchost_invoke, where fuel and deadlines apply; remove the \
                     start section",
                ));
            }
            Payload::ElementSection(section) if section.count() as usize > limits.segments => {
                return Err(over("element segments", section.count(), limits.segments));
            }
            Payload::DataSection(section) if section.count() as usize > limits.segments => {
                return Err(over("data segments", section.count(), limits.segments));
            }
            Payload::CodeSectionEntry(body) => check_body(&body, limits)?,
            Payload::TagSection(_) => {
                return Err(invalid("it declares tags: exceptions are not supported"));
            }
            _ => {}
        }
    }
    check_exports(&exports, &functions, &types)
}

fn check_body(body: &wasmparser::FunctionBody<'_>, limits: &StaticLimits) -> Result<(), WasmError> {
    let malformed = |e: wasmparser::BinaryReaderError| invalid(format!("not a wasm module: {e}"));
    let size = body.range().len();
    if size > limits.function_size {
        return Err(invalid(format!(
            "a function body is {size} bytes; the limit is {}",
            limits.function_size
        )));
    }
    let mut locals = 0u64;
    for group in body.get_locals_reader().map_err(malformed)? {
        let (count, _) = group.map_err(malformed)?;
        locals = locals.saturating_add(u64::from(count));
    }
    if locals > limits.locals {
        return Err(over("locals in one function", locals, limits.locals));
    }
    let mut operators = body.get_operators_reader().map_err(malformed)?;
    let mut depth = 0usize;
    while !operators.eof() {
        match operators.read().map_err(malformed)? {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. }
            | Operator::Try { .. } => {
                depth += 1;
                if depth > limits.nesting {
                    return Err(over("blocks nested in one another", depth, limits.nesting));
                }
            }
            Operator::End => depth = depth.saturating_sub(1),
            Operator::BrTable { targets } if targets.len() > limits.br_table_targets => {
                return Err(over(
                    "targets in one br_table",
                    targets.len(),
                    limits.br_table_targets,
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_exports(
    exports: &BTreeMap<String, (ExternalKind, u32)>,
    functions: &[u32],
    types: &[Option<Signature>],
) -> Result<(), WasmError> {
    if !exports.contains_key(cchost_abi::ABI_MARKER) {
        let other = exports.keys().find(|name| name.starts_with("cchost_abi_v"));
        return Err(invalid(match other {
            Some(other) => format!(
                "it was built for `{other}`, but this host speaks `{}`: rebuild it against a \
                 cchost-sdk of ABI v{}",
                cchost_abi::ABI_MARKER,
                cchost_abi::ABI_VERSION
            ),
            None => format!(
                "it has no `{}` export, so it was not built with cchost-sdk: declare the \
                 chaincode with `cchost_sdk::chaincode!`",
                cchost_abi::ABI_MARKER
            ),
        }));
    }
    let entry: Signature = (vec![Val::I32], vec![Val::I32]);
    for (name, expected) in [
        (cchost_abi::ABI_MARKER, (vec![], vec![])),
        (cchost_abi::ENTRY_INIT, entry.clone()),
        (cchost_abi::ENTRY_INVOKE, entry),
    ] {
        let Some(&(kind, index)) = exports.get(name) else {
            return Err(invalid(format!(
                "it does not export `{name}`: declare the chaincode with \
                 `cchost_sdk::chaincode!`"
            )));
        };
        let actual = matches!(kind, ExternalKind::Func | ExternalKind::FuncExact)
            .then(|| functions.get(index as usize))
            .flatten()
            .and_then(|&ty| types.get(ty as usize).cloned().flatten());
        if actual.as_ref() != Some(&expected) {
            return Err(invalid(format!(
                "its export `{name}` is not a function {}",
                show(&expected)
            )));
        }
    }
    match exports.get(cchost_abi::MEMORY_EXPORT) {
        Some((ExternalKind::Memory, _)) => Ok(()),
        _ => Err(invalid(format!(
            "it does not export its memory as `{}`",
            cchost_abi::MEMORY_EXPORT
        ))),
    }
}
