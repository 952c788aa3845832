//! Chapter 10: a counter that may not exist yet, which also records when it was created, and
//! records it once.

use anyhow::Result;
use elasticsearch::{Elasticsearch, UpdateParts};
use esbook::doc;
use esbook::retry::{Backoff, Tally, until_written};
use serde_json::json;

// ANCHOR: solution
/// With `scripted_upsert` the script runs on a missing counter too, on the request's
/// `upsert` document, with `ctx.op` set to `create`: the one place to set
/// `created_at`. On an existing counter it only adds.
const INCREMENT: &str = "
    if (ctx.op == 'create') {
        ctx._source.counter = params.by;
        ctx._source.created_at = params.now;
    } else {
        ctx._source.counter += params.by;
    }";

/// Adds `by` to counter `id`, creating it (with `created_at: now`) if there is none;
/// the server retries conflicts ten times, the client a 409 that outlasts them.
pub async fn increment(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    by: i64,
    now: &str,
) -> Result<Tally> {
    until_written(Backoff::default(), || async {
        let response = client
            .update(UpdateParts::IndexId(index, id))
            .retry_on_conflict(10)
            .body(json!({
                "scripted_upsert": true,
                "script": {
                    "source": INCREMENT,
                    "params": { "by": by, "now": now }
                },
                "upsert": {}
            }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};

    /// Four clients, ten increments each, from no counter at all: the counter is exactly
    /// 40, one increment created it, and `created_at` is that increment's.
    #[tokio::test]
    async fn exact_count_and_one_creation() -> Result<()> {
        let cluster = Cluster::connect(Needs::Scripting).await?;
        let (client, index) = (&cluster.client, "ex-ch10-created");
        doc::fresh_index(client, index).await?;

        let clients: Vec<_> = (0..4)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut creator = None;
                    for i in 0..10 {
                        let now = format!("client-{n}-increment-{i}");
                        let done =
                            increment(&client, index, "views", 1, &now).await?;
                        if done.created == 1 {
                            creator = Some(now);
                        }
                        tally += done;
                    }
                    anyhow::Ok((tally, creator))
                })
            })
            .collect();
        let mut tally = Tally::default();
        let mut creators = Vec::new();
        for each in clients {
            let (done, creator) = each.await??;
            tally += done;
            creators.extend(creator);
        }
        assert_eq!(
            (tally.acknowledged, tally.created, tally.failed),
            (40, 1, 0)
        );
        let counter = doc::read(client, index, "views").await?;
        assert_eq!(counter.number("counter")?, 40);
        assert_eq!(counter.source["created_at"], creators[0].as_str());
        Ok(())
    }
}
