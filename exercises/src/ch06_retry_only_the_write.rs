//! Chapter 6, exercise 1: what retrying only the write does, and the retry that works.

use std::cell::Cell;

use anyhow::Result;
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc::{self, Versioned};
use esbook::retry::{Backoff, Tally, until_written};
use serde_json::json;

// ANCHOR: solution
/// The prediction: `seen` is read once, so every attempt sends the same stale
/// `if_seq_no`, and every attempt is a 409 until the loop gives up.
pub async fn retry_only_the_write(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    seen: &Versioned,
    backoff: Backoff,
) -> Result<Tally> {
    until_written(backoff, || async {
        let response = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "counter": seen.number("counter")? + 1 }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await
}

/// The fix: the first attempt uses the read the client already has; every later
/// attempt reads again, so that it carries the document's current condition.
pub async fn retry_from_a_fresh_read(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    seen: Versioned,
    backoff: Backoff,
) -> Result<Tally> {
    let first = Cell::new(Some(seen));
    until_written(backoff, || async {
        let seen = match first.take() {
            Some(seen) => seen,
            None => doc::read(client, index, id).await?,
        };
        let response = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "counter": seen.number("counter")? + 1 }))
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

    /// A read, another client's write, then five tries of the write alone: five 409s and
    /// a give-up; retried from a fresh read, the increment lands on top of the other write.
    #[tokio::test]
    async fn only_the_write_gives_up_a_fresh_read_lands() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch06-retry");
        doc::fresh_index(client, index).await?;
        doc::put(client, index, "1", json!({ "counter": 0 })).await?;
        let seen = doc::read(client, index, "1").await?;
        doc::put(client, index, "1", json!({ "counter": 5 })).await?; // someone else
        let backoff = Backoff {
            max_attempts: 5,
            ..Backoff::default()
        };

        let stale =
            retry_only_the_write(client, index, "1", &seen, backoff).await?;
        assert_eq!(
            (stale.acknowledged, stale.conflicts, stale.failed),
            (0, 5, 1)
        );
        assert_eq!(doc::read(client, index, "1").await?.number("counter")?, 5);

        let fresh =
            retry_from_a_fresh_read(client, index, "1", seen, backoff).await?;
        assert_eq!(
            (fresh.acknowledged, fresh.conflicts, fresh.failed),
            (1, 1, 0)
        );
        assert_eq!(doc::read(client, index, "1").await?.number("counter")?, 6);
        Ok(())
    }
}
