//! fabric-samples' asset-transfer-basic (`chaincode-javascript`) in Rust: the same
//! transaction names, the same stored JSON, the same payloads and error messages.
//!
//! What the JavaScript sample does, and so this contract:
//! - InitLedger stores six assets with numeric `Size` and `AppraisedValue` and
//!   `docType: "asset"`; CreateAsset and UpdateAsset store what the client sent, as text
//!   (fabric-contract-api hands an un-annotated JavaScript contract every argument as a
//!   string), without `docType`.
//! - State is written with the keys of every object sorted (`json-stringify-deterministic`
//!   of `sort-keys-recursive` in the sample, [`to_sorted_json`] here).
//! - CreateAsset answers the asset in the order the sample builds it (ID, Color, Size,
//!   Owner, AppraisedValue), unsorted.
//!
//! One deliberate difference: the sample's UpdateAsset and DeleteAsset return what
//! `putState`/`deleteState` resolve to (an empty Buffer), which fabric-contract-api
//! 2.5.8 with class-transformer 0.4.1 fails to serialise (`classToPlain is not a
//! function`), and 0.4.0 serialises as `{"type":"Buffer","data":[]}`. Here they answer
//! an empty payload, as the sample's Go version does.

use cchost_sdk::contract::to_sorted_json;
use cchost_sdk::prelude::*;
use serde_json::Value;

/// The contract.
#[derive(Debug, Default)]
pub struct AssetTransfer;

/// An asset as CreateAsset and UpdateAsset build it: every field as the client sent it,
/// in the sample's order.
#[object]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// The key.
    #[serde(rename = "ID")]
    pub id: String,
    /// Colour.
    #[serde(rename = "Color")]
    pub color: String,
    /// Size, as sent.
    #[serde(rename = "Size")]
    pub size: String,
    /// Owner.
    #[serde(rename = "Owner")]
    pub owner: String,
    /// Appraised value, as sent.
    #[serde(rename = "AppraisedValue")]
    pub appraised_value: String,
}

/// An asset as InitLedger writes it: numbers, and the `docType` marker.
#[object]
struct SeedAsset {
    #[serde(rename = "ID")]
    id: &'static str,
    #[serde(rename = "Color")]
    color: &'static str,
    #[serde(rename = "Size")]
    size: u32,
    #[serde(rename = "Owner")]
    owner: &'static str,
    #[serde(rename = "AppraisedValue")]
    appraised_value: u32,
    #[serde(rename = "docType")]
    doc_type: &'static str,
}

const SEED: [(&str, &str, u32, &str, u32); 6] = [
    ("asset1", "blue", 5, "Tomoko", 300),
    ("asset2", "red", 5, "Brad", 400),
    ("asset3", "green", 10, "Jin Soo", 500),
    ("asset4", "yellow", 10, "Max", 600),
    ("asset5", "black", 15, "Adriana", 700),
    ("asset6", "white", 15, "Michel", 800),
];

#[contract]
impl AssetTransfer {
    /// Stores the six sample assets.
    #[transaction]
    pub fn init_ledger(&self, ctx: &Context) -> Result<()> {
        for (id, color, size, owner, appraised_value) in SEED {
            let asset = SeedAsset {
                id,
                color,
                size,
                owner,
                appraised_value,
                doc_type: "asset",
            };
            ctx.stub.put_state(id, &to_sorted_json(&asset)?)?;
        }
        Ok(())
    }

    /// Issues a new asset.
    #[transaction]
    pub fn create_asset(
        &self,
        ctx: &Context,
        id: String,
        color: String,
        size: String,
        owner: String,
        appraised_value: String,
    ) -> Result<Asset> {
        ensure!(
            !self.asset_exists(ctx, &id)?,
            "The asset {id} already exists"
        );
        let asset = Asset {
            id,
            color,
            size,
            owner,
            appraised_value,
        };
        ctx.stub.put_state(&asset.id, &to_sorted_json(&asset)?)?;
        Ok(asset)
    }

    /// The stored asset, as stored.
    #[transaction(evaluate)]
    pub fn read_asset(&self, ctx: &Context, id: &str) -> Result<String> {
        let json = ctx.stub.get_state(id)?;
        ensure!(!json.is_empty(), "The asset {id} does not exist");
        Ok(String::from_utf8_lossy(&json).into_owned())
    }

    /// Replaces an existing asset.
    #[transaction]
    pub fn update_asset(
        &self,
        ctx: &Context,
        id: String,
        color: String,
        size: String,
        owner: String,
        appraised_value: String,
    ) -> Result<()> {
        ensure!(
            self.asset_exists(ctx, &id)?,
            "The asset {id} does not exist"
        );
        let asset = Asset {
            id,
            color,
            size,
            owner,
            appraised_value,
        };
        ctx.stub.put_state(&asset.id, &to_sorted_json(&asset)?)
    }

    /// Deletes an existing asset.
    #[transaction]
    pub fn delete_asset(&self, ctx: &Context, id: &str) -> Result<()> {
        ensure!(self.asset_exists(ctx, id)?, "The asset {id} does not exist");
        ctx.stub.del_state(id)
    }

    /// Whether the asset exists.
    #[transaction(evaluate)]
    pub fn asset_exists(&self, ctx: &Context, id: &str) -> Result<bool> {
        Ok(!ctx.stub.get_state(id)?.is_empty())
    }

    /// Gives the asset to `new_owner`; answers the previous owner.
    #[transaction]
    pub fn transfer_asset(&self, ctx: &Context, id: &str, new_owner: String) -> Result<String> {
        let mut asset: Value = serde_json::from_str(&self.read_asset(ctx, id)?)?;
        let Some(fields) = asset.as_object_mut() else {
            bail!("The asset {id} is not a JSON object");
        };
        let old_owner = match fields.insert("Owner".to_owned(), Value::String(new_owner)) {
            Some(Value::String(owner)) => owner,
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        ctx.stub.put_state(id, &to_sorted_json(&asset)?)?;
        Ok(old_owner)
    }

    /// Every asset, in key order (a value that is not JSON appears as a string).
    #[transaction(evaluate)]
    pub fn get_all_assets(&self, ctx: &Context) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        for kv in ctx.stub.get_state_by_range("", "")? {
            let kv = kv?;
            all.push(serde_json::from_slice(&kv.value).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&kv.value).into_owned())
            }));
        }
        Ok(all)
    }
}

cchost_sdk::contracts!(title = "asset-transfer-basic", version = "1.0.0"; AssetTransfer);

#[cfg(test)]
mod tests;
