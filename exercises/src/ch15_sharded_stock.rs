//! Chapter 15: a stock level spread over shard documents that still never goes below zero.

use anyhow::{Result, bail};
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::counter::ShardedCounter;
use esbook::doc::{self, Outcome};
use esbook::retry::Backoff;
use serde_json::json;

// ANCHOR: solution
/// Takes one unit from the stock `stock` (its shard documents hold `{"count": n}`),
/// starting at shard `start` and moving on to the next shard when one is empty.
/// Each shard keeps its own floor of zero with an OCC write, so the total cannot go
/// below zero either; `false` only when every shard was empty when it was read.
pub async fn take_one(
    client: &Elasticsearch,
    stock: &ShardedCounter,
    start: u32,
    backoff: Backoff,
) -> Result<bool> {
    for step in 0..stock.shards {
        let id = stock.shard_id((start + step) % stock.shards);
        let mut tries = 0;
        loop {
            let seen = doc::read(client, &stock.index, &id).await?;
            let count = seen.number("count")?;
            if count == 0 {
                break; // empty: try the next shard
            }
            let response = client
                .index(IndexParts::IndexId(&stock.index, &id))
                .if_seq_no(seen.seq_no)
                .if_primary_term(seen.primary_term)
                .body(json!({ "count": count - 1 }))
                .send()
                .await?;
            match doc::outcome(response).await? {
                Outcome::Written(_) => return Ok(true),
                Outcome::Conflict(_) => tries += 1,
            }
            if tries == backoff.max_attempts {
                bail!("{id}: {tries} conflicts in a row; given up");
            }
            tokio::time::sleep(backoff.delay(tries)).await;
        }
    }
    Ok(false)
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};

    /// Ten units over four shards (3, 3, 2, 2); five clients take units at once until
    /// they are refused: exactly ten are taken, and every shard ends at zero.
    #[tokio::test]
    async fn exactly_the_stock_is_taken() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch15-stock");
        doc::fresh_index(client, index).await?;
        let stock = ShardedCounter::new(index, "widgets", 4);
        for (shard, count) in [3, 3, 2, 2].into_iter().enumerate() {
            let id = stock.shard_id(shard as u32);
            doc::put(client, index, &id, json!({ "count": count })).await?;
        }

        let clients: Vec<_> = (0..5u32)
            .map(|n| {
                let (client, stock) = (client.clone(), stock.clone());
                tokio::spawn(async move {
                    let mut taken = 0;
                    while take_one(&client, &stock, n, Backoff::default()).await? {
                        taken += 1;
                    }
                    anyhow::Ok(taken)
                })
            })
            .collect();
        let mut taken = 0;
        for each in clients {
            taken += each.await??;
        }
        assert_eq!(taken, 10);
        assert_eq!(stock.total(client).await?, 0);
        for shard in 0..4 {
            let seen = doc::read(client, index, &stock.shard_id(shard)).await?;
            assert_eq!(seen.number("count")?, 0);
        }
        Ok(())
    }
}
