//! Chapter 14: an update-by-query that finishes its job whatever the concurrent writers do.

use anyhow::{Result, bail};
use elasticsearch::params::Conflicts;
use elasticsearch::{Elasticsearch, UpdateByQueryParts};
use esbook::doc;
use esbook::retry::Backoff;
use serde_json::json;

// ANCHOR: solution
/// Marks every order not reminded yet as reminded. Each pass skips what conflicts
/// (`conflicts=proceed`) and refreshes when it ends, so that the next pass's search
/// sees what it did; the query excludes what is done, so a pass redoes only what was
/// skipped. Stops at the first pass that met no conflict, and returns each pass's
/// (`updated`, `version_conflicts`).
pub async fn remind_all(
    client: &Elasticsearch,
    index: &str,
    backoff: Backoff,
) -> Result<Vec<(u64, u64)>> {
    let mut passes = Vec::new();
    for pass in 1..=backoff.max_attempts {
        let response = client
            .update_by_query(UpdateByQueryParts::Index(&[index]))
            .conflicts(Conflicts::Proceed)
            .refresh(true)
            .body(json!({
                "query": { "term": { "reminded": false } },
                "script": { "source": "ctx._source.reminded = true", "lang": "painless" }
            }))
            .send()
            .await?;
        let answer = doc::expect_success(response, "reminding").await?;
        let conflicts = answer["version_conflicts"].as_u64().unwrap_or_default();
        passes.push((answer["updated"].as_u64().unwrap_or_default(), conflicts));
        if conflicts == 0 {
            return Ok(passes);
        }
        tokio::time::sleep(backoff.delay(pass)).await;
    }
    bail!("orders still conflicting after {} passes", passes.len())
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs, indices};

    /// A customer edits three orders after the last refresh, so the job's search finds
    /// their old state: the first pass skips them as conflicts, the second reminds them,
    /// and the customer's edits are kept.
    #[tokio::test]
    async fn a_second_pass_finishes_and_edits_are_kept() -> Result<()> {
        let cluster = Cluster::connect(Needs::Scripting).await?;
        let (client, index) = (&cluster.client, "ex-ch14-finish");
        doc::fresh_index(client, index).await?;
        indices::put_settings(client, index, json!({ "refresh_interval": "-1" }))
            .await?;
        for n in 0..20 {
            let order = json!({ "qty": 1, "status": "open", "reminded": false });
            doc::put(client, index, &format!("order-{n:03}"), order).await?;
        }
        indices::refresh(client, index).await?;
        let edited = ["order-005", "order-010", "order-015"];
        for id in edited {
            let order = json!({ "qty": 5, "status": "open", "reminded": false });
            doc::put(client, index, id, order).await?; // not refreshed
        }

        let passes = remind_all(client, index, Backoff::default()).await?;
        assert_eq!(passes, vec![(17, 3), (3, 0)]);
        let left =
            indices::count(client, index, json!({ "term": { "reminded": false } }));
        assert_eq!(left.await?, 0);
        for id in edited {
            let order = doc::read(client, index, id).await?;
            assert_eq!(
                (order.number("qty")?, &order.source["reminded"]),
                (5, &json!(true))
            );
        }
        Ok(())
    }
}
