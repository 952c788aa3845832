//! Chapter 18: an increment that can be sent again after any failure, without scripts.

use anyhow::{Result, bail};
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc::{self, Outcome};
use esbook::retry::Backoff;
use serde_json::json;

// ANCHOR: solution
/// Increments counter `id` once for operation `op`, however many times it is called:
/// reads the counter; if it lists `op`, the increment has landed; otherwise writes
/// the counter plus one *and* `op`, on the condition of that read. `true` if this
/// call applied it, `false` if an earlier attempt had.
pub async fn increment_once(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    op: &str,
    backoff: Backoff,
) -> Result<bool> {
    for attempt in 1..=backoff.max_attempts {
        let seen = doc::read(client, index, id).await?;
        let mut ops = seen.source["ops"].as_array().cloned().unwrap_or_default();
        if ops.contains(&json!(op)) {
            return Ok(false);
        }
        ops.push(json!(op));
        let counter = seen.number("counter")? + 1;
        let response = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "counter": counter, "ops": ops }))
            .send()
            .await?;
        if let Outcome::Written(_) = doc::outcome(response).await? {
            return Ok(true);
        }
        tokio::time::sleep(backoff.delay(attempt)).await;
    }
    bail!(
        "{op}: still conflicting after {} attempts",
        backoff.max_attempts
    )
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};

    /// Three clients, ten operations each, every operation sent twice (as after a lost
    /// answer): the counter is exactly 30, and each second sending applied nothing.
    #[tokio::test]
    async fn every_operation_counts_once() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch18-once");
        doc::fresh_index(client, index).await?;
        doc::put(client, index, "c", json!({ "counter": 0, "ops": [] })).await?;

        let clients: Vec<_> = (0..3)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut applied = (0, 0);
                    for i in 0..10 {
                        let op = format!("client-{n}-op-{i}");
                        for sending in [&mut applied.0, &mut applied.1] {
                            let done = increment_once(
                                &client,
                                index,
                                "c",
                                &op,
                                Backoff::default(),
                            );
                            *sending += u32::from(done.await?);
                        }
                    }
                    anyhow::Ok(applied)
                })
            })
            .collect();
        for each in clients {
            assert_eq!(each.await??, (10, 0));
        }
        let counter = doc::read(client, index, "c").await?;
        assert_eq!(counter.number("counter")?, 30);
        assert_eq!(counter.source["ops"].as_array().map(Vec::len), Some(30));
        Ok(())
    }
}
