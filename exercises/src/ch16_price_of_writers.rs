//! Chapter 16: what one more writer costs on a hot document, counted.

use anyhow::Result;
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc;
use esbook::retry::{Backoff, Tally, until_written};
use serde_json::json;

// ANCHOR: solution
/// Runs `clients` tasks at once, each doing `per_client` OCC increments of counter
/// `id` (chapter 6's loop), and returns the counter at the end with what the clients
/// saw: acknowledged increments, and the conflicts each of them cost.
pub async fn race(
    client: &Elasticsearch,
    index: &'static str,
    id: &'static str,
    clients: usize,
    per_client: usize,
) -> Result<(i64, Tally)> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                for _ in 0..per_client {
                    tally += until_written(Backoff::default(), || async {
                        let seen = doc::read(&client, index, id).await?;
                        let response = client
                            .index(IndexParts::IndexId(index, id))
                            .if_seq_no(seen.seq_no)
                            .if_primary_term(seen.primary_term)
                            .body(json!({ "counter": seen.number("counter")? + 1 }))
                            .send()
                            .await?;
                        doc::outcome(response).await
                    })
                    .await?;
                }
                anyhow::Ok(tally)
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally += task.await??;
    }
    let counter = doc::read(client, index, id).await?.number("counter")?;
    Ok((counter, tally))
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};

    /// The same 80 increments by one client and by eight at once: both counters are
    /// exactly 80, the lone client meets no conflict, the eight meet some.
    #[tokio::test]
    async fn conflicts_come_with_the_second_writer() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch16-writers");
        doc::fresh_index(client, index).await?;
        doc::put(client, index, "alone", json!({ "counter": 0 })).await?;
        doc::put(client, index, "crowded", json!({ "counter": 0 })).await?;

        let (count, alone) = race(client, index, "alone", 1, 80).await?;
        assert_eq!((count, alone.acknowledged, alone.conflicts), (80, 80, 0));
        let (count, crowded) = race(client, index, "crowded", 8, 10).await?;
        assert_eq!((count, crowded.acknowledged, crowded.failed), (80, 80, 0));
        assert!(crowded.conflicts > 0, "eight writers met no conflict");
        Ok(())
    }
}
