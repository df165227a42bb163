//! fabric-samples' asset-transfer-events in Rust: every change sets a chaincode event
//! named after the transaction whose payload is the asset's JSON, delivered to clients
//! with the block when the transaction commits (and not at all if it fails).

use cchost_sdk::prelude::*;

/// The contract.
#[derive(Debug, Default)]
pub struct AssetEvents;

/// An asset, written and sent in this field order.
#[object]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// The key.
    #[serde(rename = "ID")]
    pub id: String,
    /// Colour.
    #[serde(rename = "Color")]
    pub color: String,
    /// Size.
    #[serde(rename = "Size")]
    pub size: u32,
    /// Owner.
    #[serde(rename = "Owner")]
    pub owner: String,
    /// Appraised value.
    #[serde(rename = "AppraisedValue")]
    pub appraised_value: u32,
}

fn read(ctx: &Context, id: &str) -> Result<Asset> {
    let bytes = ctx.stub.get_state(id)?;
    ensure!(!bytes.is_empty(), "The asset {id} does not exist");
    Ok(serde_json::from_slice(&bytes)?)
}

/// Writes the asset and sets event `name` with the same bytes.
fn write_with_event(ctx: &Context, name: &str, asset: &Asset) -> Result<()> {
    let json = serde_json::to_vec(asset)?;
    ctx.stub.set_event(name, &json)?;
    ctx.stub.put_state(&asset.id, &json)
}

#[contract]
impl AssetEvents {
    /// Creates an asset; event `CreateAsset`.
    #[transaction]
    pub fn create_asset(
        &self,
        ctx: &Context,
        id: String,
        color: String,
        size: u32,
        owner: String,
        appraised_value: u32,
    ) -> Result<()> {
        ensure!(
            ctx.stub.get_state(&id)?.is_empty(),
            "The asset {id} already exists"
        );
        write_with_event(
            ctx,
            "CreateAsset",
            &Asset {
                id,
                color,
                size,
                owner,
                appraised_value,
            },
        )
    }

    /// The asset.
    #[transaction(evaluate)]
    pub fn read_asset(&self, ctx: &Context, id: &str) -> Result<Asset> {
        read(ctx, id)
    }

    /// Changes the owner; event `TransferAsset`.
    #[transaction]
    pub fn transfer_asset(&self, ctx: &Context, id: &str, new_owner: String) -> Result<()> {
        let mut asset = read(ctx, id)?;
        asset.owner = new_owner;
        write_with_event(ctx, "TransferAsset", &asset)
    }

    /// Replaces the asset; event `UpdateAsset`.
    #[transaction]
    pub fn update_asset(
        &self,
        ctx: &Context,
        id: String,
        color: String,
        size: u32,
        owner: String,
        appraised_value: u32,
    ) -> Result<()> {
        read(ctx, &id)?;
        write_with_event(
            ctx,
            "UpdateAsset",
            &Asset {
                id,
                color,
                size,
                owner,
                appraised_value,
            },
        )
    }

    /// Deletes the asset; event `DeleteAsset` with the asset as it was.
    #[transaction]
    pub fn delete_asset(&self, ctx: &Context, id: &str) -> Result<()> {
        let asset = read(ctx, id)?;
        ctx.stub
            .set_event("DeleteAsset", &serde_json::to_vec(&asset)?)?;
        ctx.stub.del_state(id)
    }
}

cchost_sdk::contracts!(title = "asset-transfer-events", version = "1.0.0"; AssetEvents);

#[cfg(test)]
mod tests {
    use cchost_sdk::mock::MockStub;

    use super::*;

    #[test]
    fn each_committed_change_emits_its_event_and_a_failed_one_emits_none() {
        let mock = MockStub::new("events");
        let cc = chaincode();
        for args in [
            &["CreateAsset", "asset1", "blue", "5", "Tomoko", "300"][..],
            &["TransferAsset", "asset1", "Bob"],
            &["UpdateAsset", "asset1", "red", "6", "Bob", "350"],
            &["TransferAsset", "missing", "Bob"],
            &["DeleteAsset", "asset1"],
        ] {
            mock.invoke(&cc, args);
        }
        let events: Vec<(String, String)> = mock
            .events()
            .into_iter()
            .map(|e| (e.event_name, String::from_utf8(e.payload).unwrap()))
            .collect();
        let asset = |owner: &str, color: &str, size: u32, value: u32| {
            format!(
                r#"{{"ID":"asset1","Color":"{color}","Size":{size},"Owner":"{owner}","AppraisedValue":{value}}}"#
            )
        };
        assert_eq!(
            events,
            [
                ("CreateAsset".to_owned(), asset("Tomoko", "blue", 5, 300)),
                ("TransferAsset".to_owned(), asset("Bob", "blue", 5, 300)),
                ("UpdateAsset".to_owned(), asset("Bob", "red", 6, 350)),
                ("DeleteAsset".to_owned(), asset("Bob", "red", 6, 350)),
            ]
        );
        assert_eq!(mock.state("asset1"), None);
    }
}
