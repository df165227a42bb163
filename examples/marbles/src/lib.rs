//! fabric-samples' marbles02 in Rust with the contract API: a `color~name` composite-key
//! index queried by partial key, range and paginated range queries, and key history.

use cchost_sdk::prelude::*;

/// The index of marbles by colour: `color~name` → `\0`.
pub const COLOR_INDEX: &str = "color~name";

/// The contract.
#[derive(Debug, Default)]
pub struct Marbles;

/// A marble as marbles02 stores it.
#[object]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marble {
    /// Always `marble`.
    #[serde(rename = "docType")]
    pub doc_type: String,
    /// The key.
    pub name: String,
    /// Lower-cased colour.
    pub color: String,
    /// Size.
    pub size: u32,
    /// Lower-cased owner.
    pub owner: String,
}

/// One page of marbles.
#[object]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarblePage {
    /// The marbles of this page.
    pub records: Vec<Marble>,
    /// How many the peer fetched.
    #[serde(rename = "fetchedRecordsCount")]
    pub fetched_records_count: i32,
    /// Where the next page starts; empty after the last.
    pub bookmark: String,
}

/// One modification of a marble.
#[object]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The transaction that made it.
    #[serde(rename = "txId")]
    pub tx_id: String,
    /// The marble after it (absent for a delete).
    pub value: Option<Marble>,
    /// Its timestamp, seconds since the Unix epoch.
    pub timestamp: i64,
    /// Whether it deleted the marble.
    #[serde(rename = "isDelete")]
    pub is_delete: bool,
}

fn read(ctx: &Context, name: &str) -> Result<Marble> {
    let bytes = ctx.stub.get_state(name)?;
    ensure!(!bytes.is_empty(), "Marble does not exist: {name}");
    Ok(serde_json::from_slice(&bytes)?)
}

fn write(ctx: &Context, marble: &Marble) -> Result<()> {
    ctx.stub
        .put_state(&marble.name, &serde_json::to_vec(marble)?)
}

fn index_key(marble: &Marble) -> Result<String> {
    cchost_sdk::create_composite_key(COLOR_INDEX, &[&marble.color, &marble.name])
}

fn marbles(iter: cchost_sdk::StateIter) -> Result<Vec<Marble>> {
    iter.map(|kv| Ok(serde_json::from_slice(&kv?.value)?))
        .collect()
}

#[contract]
impl Marbles {
    /// Creates a marble and its colour index entry.
    #[transaction]
    pub fn init_marble(
        &self,
        ctx: &Context,
        name: String,
        color: String,
        size: u32,
        owner: String,
    ) -> Result<Marble> {
        ensure!(
            ctx.stub.get_state(&name)?.is_empty(),
            "This marble already exists: {name}"
        );
        let marble = Marble {
            doc_type: "marble".to_owned(),
            name,
            color: color.to_lowercase(),
            size,
            owner: owner.to_lowercase(),
        };
        write(ctx, &marble)?;
        // The index entry's value is a single NUL: only the key matters.
        ctx.stub.put_state(&index_key(&marble)?, b"\0")?;
        Ok(marble)
    }

    /// One marble.
    #[transaction(evaluate)]
    pub fn read_marble(&self, ctx: &Context, name: &str) -> Result<Marble> {
        read(ctx, name)
    }

    /// Gives a marble to `new_owner`.
    #[transaction]
    pub fn transfer_marble(&self, ctx: &Context, name: &str, new_owner: &str) -> Result<()> {
        let mut marble = read(ctx, name)?;
        marble.owner = new_owner.to_lowercase();
        write(ctx, &marble)
    }

    /// Gives every marble of `color` to `new_owner`, found through the colour index;
    /// answers how many moved.
    #[transaction]
    pub fn transfer_marbles_based_on_color(
        &self,
        ctx: &Context,
        color: &str,
        new_owner: &str,
    ) -> Result<u32> {
        let mut moved = 0;
        for kv in ctx
            .stub
            .get_state_by_partial_composite_key(COLOR_INDEX, &[&color.to_lowercase()])?
        {
            let (_, attributes) = cchost_sdk::split_composite_key(&kv?.key)?;
            let Some(name) = attributes.get(1) else {
                bail!("malformed {COLOR_INDEX} index entry");
            };
            self.transfer_marble(ctx, name, new_owner)?;
            moved += 1;
        }
        Ok(moved)
    }

    /// Deletes a marble and its index entry.
    #[transaction]
    pub fn delete(&self, ctx: &Context, name: &str) -> Result<()> {
        let marble = read(ctx, name)?;
        ctx.stub.del_state(name)?;
        ctx.stub.del_state(&index_key(&marble)?)
    }

    /// The marbles of `color`, through the index.
    #[transaction(evaluate)]
    pub fn query_marbles_by_color(&self, ctx: &Context, color: &str) -> Result<Vec<Marble>> {
        let mut found = Vec::new();
        for kv in ctx
            .stub
            .get_state_by_partial_composite_key(COLOR_INDEX, &[&color.to_lowercase()])?
        {
            let (_, attributes) = cchost_sdk::split_composite_key(&kv?.key)?;
            if let Some(name) = attributes.get(1) {
                found.push(read(ctx, name)?);
            }
        }
        Ok(found)
    }

    /// Marbles with names in `[start, end)`.
    #[transaction(evaluate)]
    pub fn get_marbles_by_range(
        &self,
        ctx: &Context,
        start: &str,
        end: &str,
    ) -> Result<Vec<Marble>> {
        marbles(ctx.stub.get_state_by_range(start, end)?)
    }

    /// One page of marbles with names in `[start, end)`.
    #[transaction(evaluate)]
    pub fn get_marbles_by_range_with_pagination(
        &self,
        ctx: &Context,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<MarblePage> {
        let page = ctx
            .stub
            .get_state_by_range_with_pagination(start, end, page_size, bookmark)?;
        let records = page
            .results
            .iter()
            .map(|kv| Ok(serde_json::from_slice(&kv.value)?))
            .collect::<Result<_>>()?;
        Ok(MarblePage {
            records,
            fetched_records_count: page.fetched_records_count,
            bookmark: page.bookmark,
        })
    }

    /// Every committed modification of a marble, newest first.
    #[transaction(evaluate)]
    pub fn get_history_for_marble(&self, ctx: &Context, name: &str) -> Result<Vec<HistoryEntry>> {
        let mut history = Vec::new();
        for modification in ctx.stub.get_history_for_key(name)? {
            let m = modification?;
            history.push(HistoryEntry {
                tx_id: m.tx_id,
                value: if m.is_delete {
                    None
                } else {
                    Some(serde_json::from_slice(&m.value)?)
                },
                timestamp: m.timestamp.map_or(0, |t| t.seconds),
                is_delete: m.is_delete,
            });
        }
        Ok(history)
    }
}

cchost_sdk::contracts!(title = "marbles", version = "1.0.0"; Marbles);

#[cfg(test)]
mod tests {
    use cchost_sdk::mock::MockStub;

    use super::*;

    fn ok(mock: &MockStub, args: &[&str]) -> String {
        let response = mock.invoke(&chaincode(), args);
        assert_eq!(response.status, 200, "{args:?}: {}", response.message);
        String::from_utf8(response.payload).unwrap()
    }

    fn seeded() -> MockStub {
        let mock = MockStub::new("marbles");
        for (name, color, size, owner) in [
            ("marble1", "Blue", "35", "Tom"),
            ("marble2", "red", "50", "tom"),
            ("marble3", "blue", "70", "jerry"),
            ("marble4", "green", "10", "jerry"),
        ] {
            ok(&mock, &["InitMarble", name, color, size, owner]);
        }
        mock
    }

    #[test]
    fn marbles_are_stored_lower_cased_with_a_colour_index() {
        let mock = seeded();
        assert_eq!(
            mock.state_string("marble1").unwrap(),
            r#"{"docType":"marble","name":"marble1","color":"blue","size":35,"owner":"tom"}"#
        );
        assert_eq!(
            mock.state_string("\0color~name\0blue\0marble1\0")
                .as_deref(),
            Some("\0")
        );
        let e = mock.invoke(&chaincode(), &["InitMarble", "marble1", "blue", "1", "x"]);
        assert_eq!(e.message, "This marble already exists: marble1");
        let e = mock.invoke(&chaincode(), &["InitMarble", "m9", "blue", "big", "x"]);
        assert_eq!(
            e.message,
            "Unable to convert parameter size: expected value at line 1 column 1"
        );
    }

    #[test]
    fn partial_key_queries_find_and_move_a_colour() {
        let mock = seeded();
        let blue: Vec<Marble> =
            serde_json::from_str(&ok(&mock, &["QueryMarblesByColor", "BLUE"])).unwrap();
        assert_eq!(
            blue.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["marble1", "marble3"]
        );
        assert_eq!(
            ok(&mock, &["TransferMarblesBasedOnColor", "blue", "Anna"]),
            "2"
        );
        let marble3: Marble = serde_json::from_str(&ok(&mock, &["ReadMarble", "marble3"])).unwrap();
        assert_eq!(marble3.owner, "anna");
        assert_eq!(
            ok(&mock, &["TransferMarblesBasedOnColor", "purple", "x"]),
            "0"
        );
    }

    #[test]
    fn range_queries_skip_the_index_and_page_with_bookmarks() {
        let mock = seeded();
        let all: Vec<Marble> =
            serde_json::from_str(&ok(&mock, &["GetMarblesByRange", "", ""])).unwrap();
        assert_eq!(
            all.len(),
            4,
            "composite index keys are not in simple ranges"
        );
        let some: Vec<Marble> =
            serde_json::from_str(&ok(&mock, &["GetMarblesByRange", "marble2", "marble4"])).unwrap();
        assert_eq!(
            some.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["marble2", "marble3"]
        );
        let page: MarblePage = serde_json::from_str(&ok(
            &mock,
            &["GetMarblesByRangeWithPagination", "", "", "3", ""],
        ))
        .unwrap();
        assert_eq!(
            (
                page.records.len(),
                page.fetched_records_count,
                page.bookmark.as_str()
            ),
            (3, 3, "marble4")
        );
        let last: MarblePage = serde_json::from_str(&ok(
            &mock,
            &[
                "GetMarblesByRangeWithPagination",
                "",
                "",
                "3",
                &page.bookmark,
            ],
        ))
        .unwrap();
        assert_eq!(
            (last.records[0].name.as_str(), last.bookmark.as_str()),
            ("marble4", "")
        );
    }

    #[test]
    fn history_lists_every_change_newest_first_including_the_delete() {
        let mock = seeded();
        ok(&mock, &["TransferMarble", "marble2", "jerry"]);
        ok(&mock, &["Delete", "marble2"]);
        let history: Vec<HistoryEntry> =
            serde_json::from_str(&ok(&mock, &["GetHistoryForMarble", "marble2"])).unwrap();
        assert_eq!(history.len(), 3);
        assert!(history[0].is_delete && history[0].value.is_none());
        assert_eq!(history[1].value.as_ref().unwrap().owner, "jerry");
        assert_eq!(history[2].value.as_ref().unwrap().owner, "tom");
        assert!(history[0].timestamp > history[2].timestamp);
        assert_eq!(
            mock.state("\0color~name\0red\0marble2\0"),
            None,
            "the index entry went too"
        );
        let e = mock.invoke(&chaincode(), &["ReadMarble", "marble2"]);
        assert_eq!(e.message, "Marble does not exist: marble2");
    }
}
