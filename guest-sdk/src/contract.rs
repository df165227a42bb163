//! The contract API: Fabric's `fabric-contract-api` for Rust.
//!
//! A contract is a type with an `impl` block marked [`#[contract]`](crate::contract);
//! its `#[transaction]` methods are the transactions, called as `Contract:Function` (or
//! just `Function` on the first, default, contract). Arguments and results travel as
//! fabric-contract-api does: a `String` argument or result is the raw text, anything else
//! is JSON through serde. The macro only writes the routing table ([`Contract`]); the
//! routing, the hooks and the metadata live here, as ordinary tested functions.

use std::cell::OnceCell;

use cchost_proto::protos::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::identity::ClientIdentity;
use crate::{Error, ResponseExt, Stub};

/// The name of Fabric's system contract, which answers `GetMetadata`.
pub const SYSTEM_CONTRACT: &str = "org.hyperledger.fabric";
/// Where fabric-contract-api's metadata points its `$schema`.
pub const METADATA_SCHEMA: &str =
    "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json";
/// What Init answers when called with no function, as fabric-contract-api does.
pub const DEFAULT_INIT_PAYLOAD: &str = "Default initiator successful.";

/// What a transaction function receives: the [`Stub`] and the submitting client's
/// identity, like fabric-contract-api's `Context`.
#[derive(Debug)]
pub struct Context {
    /// The ledger and the transaction.
    pub stub: Stub,
    identity: OnceCell<Result<ClientIdentity, Error>>,
}

impl Context {
    /// The context of one invocation.
    pub fn new(stub: Stub) -> Self {
        Self {
            stub,
            identity: OnceCell::new(),
        }
    }

    /// The submitting client's identity, parsed from the proposal's creator on first use,
    /// like `ctx.clientIdentity`.
    pub fn client_identity(&self) -> Result<&ClientIdentity, Error> {
        self.identity
            .get_or_init(|| ClientIdentity::from_stub(&self.stub))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Whether a transaction changes the ledger (submit) or only reads it (evaluate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// Sent to the orderer: tagged `SUBMIT`, `submitTx`.
    Submit,
    /// Only evaluated: tagged `EVALUATE`.
    Evaluate,
}

/// Produces the JSON schema of a type (in the metadata generator's dialect).
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// The JSON schema of `T`: a `$ref` into `components.schemas` for named object types.
pub fn schema_of<T: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// One parameter of a transaction, for the metadata.
#[derive(Debug, Clone, Copy)]
pub struct ParameterInfo {
    /// Its name (the Rust name in lowerCamelCase).
    pub name: &'static str,
    /// Its documentation.
    pub description: &'static str,
    /// Its type.
    pub schema: SchemaFn,
}

/// One transaction of a contract, for the metadata.
#[derive(Debug, Clone)]
pub struct TransactionInfo {
    /// The name clients call it by.
    pub name: &'static str,
    /// Submit or evaluate.
    pub kind: TxKind,
    /// Its parameters, in order.
    pub parameters: Vec<ParameterInfo>,
    /// The type of its result (`None` when it returns nothing).
    pub returns: Option<SchemaFn>,
}

/// A contract: what [`#[contract]`](crate::contract) implements for a type. The hooks
/// have defaults that do what fabric-contract-api's do; mark a method
/// `#[before_transaction]`, `#[after_transaction]` or `#[unknown_transaction]` to replace
/// one.
pub trait Contract {
    /// The name clients put before the colon in `Contract:Function`.
    fn name(&self) -> &'static str;

    /// Title and version for the metadata's `info`.
    fn info(&self) -> (&'static str, &'static str) {
        ("", "")
    }

    /// The transactions, for the metadata.
    fn transactions(&self) -> Vec<TransactionInfo>;

    /// Runs transaction `function` with the raw `args` (without the function name):
    /// decodes the arguments, runs [`before_transaction`](Self::before_transaction), then
    /// the function, and encodes its result. `None` when the contract has no such
    /// transaction.
    fn call(
        &self,
        ctx: &Context,
        function: &str,
        args: &[Vec<u8>],
    ) -> Option<Result<Vec<u8>, Error>>;

    /// Runs before every transaction function, after its arguments were decoded; an
    /// error fails the transaction.
    fn before_transaction(&self, _ctx: &Context) -> Result<(), Error> {
        Ok(())
    }

    /// Runs after every transaction function that succeeded, with its encoded result; an
    /// error fails the transaction.
    fn after_transaction(&self, _ctx: &Context, _payload: &[u8]) -> Result<(), Error> {
        Ok(())
    }

    /// Runs when the function is not a transaction of this contract, with the first
    /// argument as sent (`Contract:Function` included). Its `Ok` payload is the answer;
    /// the default fails with fabric-contract-api's message.
    fn unknown_transaction(&self, _ctx: &Context, function: &str) -> Result<Vec<u8>, Error> {
        Err(Error::new(format!(
            "You've asked to invoke a function that does not exist: {function}"
        )))
    }
}

/// A chaincode made of contracts: routes `Contract:Function` to a transaction, runs the
/// hooks, answers `org.hyperledger.fabric:GetMetadata`. [`contracts!`](crate::contracts)
/// builds one and exports it from the wasm module.
#[derive(Default)]
pub struct Chaincode {
    contracts: Vec<Box<dyn Contract>>,
    title: String,
    version: String,
}

impl std::fmt::Debug for Chaincode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.contracts.iter().map(|c| c.name()).collect();
        f.debug_struct("Chaincode")
            .field("contracts", &names)
            .finish()
    }
}

impl Chaincode {
    /// A chaincode with no contracts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a contract; the first added is the default (called without `Contract:`).
    pub fn contract(mut self, contract: impl Contract + 'static) -> Self {
        self.contracts.push(Box::new(contract));
        self
    }

    /// Title and version for the metadata's top-level `info`.
    pub fn info(mut self, title: impl Into<String>, version: impl Into<String>) -> Self {
        self.title = title.into();
        self.version = version.into();
        self
    }

    /// Answers Init: with no arguments, fabric-contract-api's default success;
    /// otherwise the named transaction, as for Invoke.
    pub fn init(&self, stub: Stub) -> Response {
        self.invoke(stub)
    }

    /// Answers one invocation: status 200 with the transaction's result, or 500 with the
    /// error's message.
    pub fn invoke(&self, stub: Stub) -> Response {
        if stub.args().is_empty() {
            return Response::ok(DEFAULT_INIT_PAYLOAD);
        }
        let function = String::from_utf8_lossy(stub.arg(0)).into_owned();
        let args = stub.args().get(1..).unwrap_or_default().to_vec();
        match self.route(Context::new(stub), &function, &args) {
            Ok(payload) => Response::ok(payload),
            Err(e) => Response::error(e.0),
        }
    }

    fn route(&self, ctx: Context, full_name: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
        let (contract_name, function) = split_function_name(full_name);
        if contract_name == SYSTEM_CONTRACT {
            return match function {
                "GetMetadata" => Ok(serde_json::to_vec(&self.metadata())?),
                _ => Err(Error::new(format!(
                    "You've asked to invoke a function that does not exist: {full_name}"
                ))),
            };
        }
        let contract = if contract_name.is_empty() {
            self.contracts.first()
        } else {
            self.contracts.iter().find(|c| c.name() == contract_name)
        };
        let Some(contract) = contract else {
            return Err(Error::new(format!(
                "Contract name is not known: {contract_name}"
            )));
        };
        match contract.call(&ctx, function, args) {
            Some(result) => {
                let payload = result?;
                contract.after_transaction(&ctx, &payload)?;
                Ok(payload)
            }
            None => contract.unknown_transaction(&ctx, full_name),
        }
    }

    /// The contract metadata in fabric-contract-api's shape (contract-schema.json): what
    /// `org.hyperledger.fabric:GetMetadata` answers.
    pub fn metadata(&self) -> Value {
        let mut generator = schemars::generate::SchemaSettings::draft07()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
            .into_generator();
        let mut contracts = Map::new();
        for (i, contract) in self.contracts.iter().enumerate() {
            let transactions: Vec<Value> = contract
                .transactions()
                .iter()
                .map(|tx| transaction_metadata(tx, &mut generator))
                .collect();
            let mut instance = Map::new();
            instance.insert("name".to_owned(), json!(contract.name()));
            if i == 0 {
                instance.insert("default".to_owned(), json!(true));
            }
            let (title, version) = contract.info();
            contracts.insert(
                contract.name().to_owned(),
                json!({
                    "name": contract.name(),
                    "contractInstance": instance,
                    "transactions": transactions,
                    "info": { "title": title, "version": version },
                }),
            );
        }
        contracts.insert(
            SYSTEM_CONTRACT.to_owned(),
            json!({
                "name": SYSTEM_CONTRACT,
                "contractInstance": { "name": SYSTEM_CONTRACT },
                "transactions": [ { "name": "GetMetadata" } ],
                "info": { "title": "", "version": "" },
            }),
        );
        let mut schemas = Map::new();
        for (name, mut schema) in generator.take_definitions(true) {
            if let Value::Object(object) = &mut schema {
                object.insert("$id".to_owned(), Value::String(name.clone()));
                object.remove("title");
            }
            schemas.insert(name, schema);
        }
        json!({
            "$schema": METADATA_SCHEMA,
            "contracts": contracts,
            "info": { "version": self.version, "title": self.title },
            "components": { "schemas": schemas },
        })
    }
}

fn transaction_metadata(tx: &TransactionInfo, generator: &mut schemars::SchemaGenerator) -> Value {
    let tag = match tx.kind {
        TxKind::Submit => json!(["SUBMIT", "submitTx"]),
        TxKind::Evaluate => json!(["EVALUATE"]),
    };
    let parameters: Vec<Value> = tx
        .parameters
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "description": p.description,
                "schema": (p.schema)(generator).to_value(),
            })
        })
        .collect();
    let mut entry = Map::new();
    entry.insert("name".to_owned(), json!(tx.name));
    entry.insert("tag".to_owned(), tag);
    entry.insert("parameters".to_owned(), Value::Array(parameters));
    if let Some(returns) = tx.returns {
        entry.insert("returns".to_owned(), returns(generator).to_value());
    }
    Value::Object(entry)
}

/// `Contract:Function` → (`Contract`, `Function`): everything before the first colon is
/// the contract (empty: the default one), as fabric-contract-api splits it.
pub fn split_function_name(name: &str) -> (&str, &str) {
    name.split_once(':').unwrap_or(("", name))
}

/// Decodes argument `index` for parameter `name`: the raw text for a `String`, JSON for
/// anything else, `true`/`false` in any case for a `bool`.
#[doc(hidden)]
pub fn __arg<T: DeserializeOwned>(args: &[Vec<u8>], index: usize, name: &str) -> Result<T, Error> {
    let raw = args.get(index).map_or(&[][..], Vec::as_slice);
    T::deserialize(crate::arg::ArgDeserializer::new(raw))
        .map_err(|e| Error::new(format!("Unable to convert parameter {name}: {e}")))
}

/// Checks the argument count as fabric-contract-api does.
#[doc(hidden)]
pub fn __arity(args: &[Vec<u8>], expected: usize) -> Result<(), Error> {
    if args.len() == expected {
        return Ok(());
    }
    Err(Error::new(format!(
        "Expected {expected} parameters, but {} have been supplied",
        args.len()
    )))
}

/// Checks the argument count of a transaction that takes extra arguments (and ignores
/// them), as fabric-contract-api does for a JavaScript function without parameter
/// metadata.
#[doc(hidden)]
pub fn __arity_at_least(args: &[Vec<u8>], expected: usize) -> Result<(), Error> {
    if args.len() >= expected {
        return Ok(());
    }
    __arity(args, expected)
}

/// Encodes a transaction's result as fabric-contract-api does: a string as its text,
/// `()`/`None` as no bytes, numbers and booleans as their text, anything else as JSON.
#[doc(hidden)]
pub fn __output<T: Serialize, E: Into<Error>>(result: Result<T, E>) -> Result<Vec<u8>, Error> {
    let value = result.map_err(Into::into)?;
    to_payload(&value)
}

/// See [`__output`].
pub fn to_payload<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_vec(value)?;
    match json.first() {
        Some(b'"') => Ok(serde_json::from_slice::<String>(&json)?.into_bytes()),
        _ if json == b"null" => Ok(Vec::new()),
        _ => Ok(json),
    }
}

/// Serialises `value` as JSON with the keys of every object sorted, as fabric-samples
/// writes state (`json-stringify-deterministic` of `sort-keys-recursive`), so every peer
/// and every language writes the same bytes.
pub fn to_sorted_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    // serde_json's `Value` keeps objects in a BTreeMap: converting sorts every level.
    Ok(serde_json::to_vec(&serde_json::to_value(value)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_split_like_fabric_contract_api() {
        assert_eq!(split_function_name("CreateAsset"), ("", "CreateAsset"));
        assert_eq!(split_function_name("Assets:Create"), ("Assets", "Create"));
        assert_eq!(split_function_name("a:b:c"), ("a", "b:c"));
        assert_eq!(
            split_function_name("org.hyperledger.fabric:GetMetadata"),
            ("org.hyperledger.fabric", "GetMetadata")
        );
        assert_eq!(split_function_name(":F"), ("", "F"));
    }

    #[test]
    fn results_are_encoded_like_the_json_serializer() {
        assert_eq!(to_payload("asset1").unwrap(), b"asset1");
        assert_eq!(to_payload("with \"quotes\"").unwrap(), b"with \"quotes\"");
        assert_eq!(to_payload(&()).unwrap(), b"");
        assert_eq!(to_payload(&None::<u8>).unwrap(), b"");
        assert_eq!(to_payload(&true).unwrap(), b"true");
        assert_eq!(to_payload(&42u32).unwrap(), b"42");
        assert_eq!(to_payload(&vec!["a", "b"]).unwrap(), br#"["a","b"]"#);
        assert_eq!(
            to_sorted_json(&json!({"b": 1, "a": {"d": 2, "c": 3}})).unwrap(),
            br#"{"a":{"c":3,"d":2},"b":1}"#
        );
    }

    #[test]
    fn arguments_are_decoded_like_the_json_serializer() {
        let args = vec![
            b"plain text".to_vec(),
            b"\"quoted\"".to_vec(),
            b"15".to_vec(),
            b" TRUE ".to_vec(),
            br#"{"a":1}"#.to_vec(),
        ];
        assert_eq!(__arg::<String>(&args, 0, "s").unwrap(), "plain text");
        assert_eq!(__arg::<String>(&args, 1, "s").unwrap(), "\"quoted\"");
        assert_eq!(__arg::<String>(&args, 2, "s").unwrap(), "15");
        assert_eq!(__arg::<u32>(&args, 2, "n").unwrap(), 15);
        assert!(__arg::<bool>(&args, 3, "b").unwrap());
        assert_eq!(
            __arg::<std::collections::BTreeMap<String, u8>>(&args, 4, "m").unwrap()["a"],
            1
        );
        assert_eq!(
            __arg::<u32>(&args, 0, "size").unwrap_err().to_string(),
            "Unable to convert parameter size: expected value at line 1 column 1"
        );
        assert_eq!(
            __arity(&args, 2).unwrap_err().to_string(),
            "Expected 2 parameters, but 5 have been supplied"
        );
    }
}
