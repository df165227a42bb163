//! fabric-samples' asset-transfer-basic (`chaincode-javascript`) in Rust: the same
//! transaction names, the same stored bytes, the same payloads and error messages as the
//! current JavaScript sample under fabric-contract-api. cchost's integration tests run the
//! sample's logic under the real fabric-shim and this contract in wasm on the same steps,
//! and compare every answer and the state left behind.
//!
//! What the JavaScript sample does, and so this contract:
//! - InitLedger stores six assets with numeric `Size` and `AppraisedValue` and
//!   `docType: "asset"`.
//! - CreateAsset stores `Size` and `AppraisedValue` as `Number(text)` (a JSON number, or
//!   `null` when the text is not a number) and answers the asset in the order the sample
//!   builds it (ID, Color, Size, Owner, AppraisedValue); UpdateAsset stores every field as
//!   the text the client sent (fabric-contract-api hands an un-annotated JavaScript
//!   contract its arguments as strings).
//! - State is written with the keys of every object sorted (the sample's
//!   `json-stringify-deterministic` of `sort-keys-recursive`), numbers written as
//!   JavaScript writes them ([`js`]).
//! - UpdateAsset and DeleteAsset answer what `putState`/`deleteState` resolve to: the
//!   peer's empty RESPONSE payload as a Node Buffer, which fabric-contract-api (with the
//!   class-transformer 0.4.0 the sample's npm-shrinkwrap.json pins) serialises as
//!   `{"type":"Buffer","data":[]}`.
//! - InitLedger and GetAllAssets, which declare no parameters, accept and ignore extra
//!   arguments, as fabric-contract-api does for such a JavaScript function.

pub mod js;

use cchost_sdk::prelude::*;
use serde_json::{Map, Value};

/// The contract.
#[derive(Debug, Default)]
pub struct AssetTransfer;

/// How fabric-contract-api serialises a Node `Buffer` a transaction returns.
#[object]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBuffer {
    /// Always `"Buffer"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl NodeBuffer {
    /// What `putState` and `deleteState` resolve to: the peer's RESPONSE payload, which
    /// Fabric (and cchost) leave empty.
    fn state_write_result() -> Self {
        Self {
            kind: "Buffer".to_owned(),
            data: Vec::new(),
        }
    }
}

const SEED: [(&str, &str, u32, &str, u32); 6] = [
    ("asset1", "blue", 5, "Tomoko", 300),
    ("asset2", "red", 5, "Brad", 400),
    ("asset3", "green", 10, "Jin Soo", 500),
    ("asset4", "yellow", 10, "Max", 600),
    ("asset5", "black", 15, "Adriana", 700),
    ("asset6", "white", 15, "Michel", 800),
];

/// The sample's stored form of an object: keys sorted, JavaScript's numbers.
fn stored(fields: Map<String, Value>) -> Vec<u8> {
    js::stringify(&Value::Object(fields)).into_bytes()
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

/// A JavaScript number as JSON: `null` for NaN and ±∞, as `JSON.stringify` writes them.
fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

#[contract]
impl AssetTransfer {
    /// Stores the six sample assets.
    #[transaction(extra_args)]
    pub fn init_ledger(&self, ctx: &Context) -> Result<()> {
        for (id, color, size, owner, appraised_value) in SEED {
            let asset = Map::from_iter([
                ("ID".to_owned(), text(id)),
                ("Color".to_owned(), text(color)),
                ("Size".to_owned(), Value::from(size)),
                ("Owner".to_owned(), text(owner)),
                ("AppraisedValue".to_owned(), Value::from(appraised_value)),
                ("docType".to_owned(), text("asset")),
            ]);
            ctx.stub.put_state(id, &stored(asset))?;
        }
        Ok(())
    }

    /// Issues a new asset: `Size` and `AppraisedValue` as JavaScript's `Number(text)`.
    /// Answers its JSON in the order the sample builds it.
    #[transaction]
    pub fn create_asset(
        &self,
        ctx: &Context,
        id: String,
        color: String,
        size: String,
        owner: String,
        appraised_value: String,
    ) -> Result<String> {
        ensure!(
            !self.asset_exists(ctx, &id)?,
            "The asset {id} already exists"
        );
        let (size, appraised_value) = (js::number(&size), js::number(&appraised_value));
        let asset = Map::from_iter([
            ("ID".to_owned(), text(&id)),
            ("Color".to_owned(), text(&color)),
            ("Size".to_owned(), number(size)),
            ("Owner".to_owned(), text(&owner)),
            ("AppraisedValue".to_owned(), number(appraised_value)),
        ]);
        ctx.stub.put_state(&id, &stored(asset))?;
        Ok(format!(
            r#"{{"ID":{},"Color":{},"Size":{},"Owner":{},"AppraisedValue":{}}}"#,
            text(&id),
            text(&color),
            js::number_json(size),
            text(&owner),
            js::number_json(appraised_value)
        ))
    }

    /// The stored asset, as stored.
    #[transaction(evaluate)]
    pub fn read_asset(&self, ctx: &Context, id: &str) -> Result<String> {
        let json = ctx.stub.get_state(id)?;
        ensure!(!json.is_empty(), "The asset {id} does not exist");
        Ok(String::from_utf8_lossy(&json).into_owned())
    }

    /// Replaces an existing asset with the fields as sent.
    #[transaction]
    pub fn update_asset(
        &self,
        ctx: &Context,
        id: String,
        color: String,
        size: String,
        owner: String,
        appraised_value: String,
    ) -> Result<NodeBuffer> {
        ensure!(
            self.asset_exists(ctx, &id)?,
            "The asset {id} does not exist"
        );
        let asset = Map::from_iter([
            ("ID".to_owned(), text(&id)),
            ("Color".to_owned(), text(&color)),
            ("Size".to_owned(), text(&size)),
            ("Owner".to_owned(), text(&owner)),
            ("AppraisedValue".to_owned(), text(&appraised_value)),
        ]);
        ctx.stub.put_state(&id, &stored(asset))?;
        Ok(NodeBuffer::state_write_result())
    }

    /// Deletes an existing asset.
    #[transaction]
    pub fn delete_asset(&self, ctx: &Context, id: &str) -> Result<NodeBuffer> {
        ensure!(self.asset_exists(ctx, id)?, "The asset {id} does not exist");
        ctx.stub.del_state(id)?;
        Ok(NodeBuffer::state_write_result())
    }

    /// Whether the asset exists.
    #[transaction(evaluate)]
    pub fn asset_exists(&self, ctx: &Context, id: &str) -> Result<bool> {
        Ok(!ctx.stub.get_state(id)?.is_empty())
    }

    /// Gives the asset to `new_owner`; answers the previous owner (its text; a number
    /// as JavaScript writes it, nothing when there was none).
    #[transaction]
    pub fn transfer_asset(&self, ctx: &Context, id: &str, new_owner: String) -> Result<String> {
        let mut asset: Value = serde_json::from_str(&self.read_asset(ctx, id)?)?;
        let Some(fields) = asset.as_object_mut() else {
            bail!("The asset {id} is not a JSON object");
        };
        let old_owner = match fields.insert("Owner".to_owned(), Value::String(new_owner)) {
            Some(Value::String(owner)) => owner,
            None | Some(Value::Null) => String::new(),
            Some(other) => js::stringify(&other),
        };
        ctx.stub.put_state(id, js::stringify(&asset).as_bytes())?;
        Ok(old_owner)
    }

    /// Every asset, in key order, as `JSON.stringify` of the parsed values (a value that
    /// is not JSON appears as a string).
    #[transaction(evaluate, extra_args)]
    pub fn get_all_assets(&self, ctx: &Context) -> Result<String> {
        let mut all = Vec::new();
        for kv in ctx.stub.get_state_by_range("", "")? {
            let kv = kv?;
            let text = String::from_utf8_lossy(&kv.value).into_owned();
            all.push(serde_json::from_str(&text).unwrap_or(Value::String(text)));
        }
        Ok(js::stringify(&Value::Array(all)))
    }
}

cchost_sdk::contracts!(title = "asset-transfer-basic", version = "1.0.0"; AssetTransfer);

#[cfg(test)]
mod tests;
