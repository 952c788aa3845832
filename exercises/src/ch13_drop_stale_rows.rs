//! Chapter 13: a sync from a database that numbers its rows' states, which drops what
//! arrives late.

use anyhow::Result;
use elasticsearch::params::VersionType;
use elasticsearch::{BulkOperation, Elasticsearch};
use esbook::bulk;
use esbook::doc::Outcome;
use serde_json::{Value, json};

// ANCHOR: solution
/// One change of a row in the source: the row's id, its version after the change,
/// and its new price.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: &'static str,
    pub version: i64,
    pub price: i64,
}

/// Sends `changes` in one bulk, each with the row's version as an external version:
/// the index keeps the highest version of each row. Returns (written, dropped): a 409
/// means the index already holds this version of the row or a newer one, so the change
/// is dropped, not retried.
pub async fn sync(
    client: &Elasticsearch,
    index: &str,
    changes: &[Change],
) -> Result<(usize, usize)> {
    let operations: Vec<BulkOperation<Value>> = changes
        .iter()
        .map(|change| {
            let row = json!({ "price": change.price, "version": change.version });
            BulkOperation::index(row)
                .id(change.id)
                .version(change.version)
                .version_type(VersionType::External)
                .into()
        })
        .collect();
    let answer = bulk::send(client, index, operations).await?;
    let (mut written, mut dropped) = (0, 0);
    for item in &answer.items {
        match item.outcome()? {
            Outcome::Written(_) => written += 1,
            Outcome::Conflict(_) => dropped += 1,
        }
    }
    Ok((written, dropped))
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::doc;
    use esbook::{Cluster, Needs};

    /// Changes delivered out of order and twice: the older ones and the duplicate are
    /// dropped as 409s, and each document holds its row's newest state and version.
    #[tokio::test]
    async fn late_and_repeated_changes_are_dropped() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch13-sync");
        doc::fresh_index(client, index).await?;
        let change = |id, version, price| Change { id, version, price };
        let first = [
            change("p-1", 1, 10),
            change("p-1", 3, 30), // overtook version 2
            change("p-1", 2, 20), // late
            change("p-2", 1, 5),
            change("p-1", 3, 30), // redelivered
        ];
        assert_eq!(sync(client, index, &first).await?, (3, 2));
        let straggler = [change("p-2", 1, 5), change("p-2", 2, 6)];
        assert_eq!(sync(client, index, &straggler).await?, (1, 1));

        let p1 = doc::read(client, index, "p-1").await?;
        assert_eq!((p1.number("price")?, p1.version), (30, 3));
        let p2 = doc::read(client, index, "p-2").await?;
        assert_eq!((p2.number("price")?, p2.version), (6, 2));
        Ok(())
    }
}
