//! A counter that many clients can increment at once: N shard documents, each increment on one
//! of them chosen at random, the total summed on read.
//!
//! Why it is in the library and not only in chapter 15's example: it is a strategy other code
//! measures too (a contention benchmark runs it beside the single hot document), and both must
//! run exactly this code. With `shards = 1` it *is* the single hot document, incremented with
//! chapter 6's OCC loop, so a comparison of 1 shard against N changes nothing but N.
//!
//! The trade-off a real system would weigh: a read costs N documents instead of one (one
//! `_mget`, still realtime, no refresh needed), and the shards cannot enforce a limit on the
//! total (a stock level that must not go below zero needs the one document, or a different
//! design).

use anyhow::{Result, anyhow};
use elasticsearch::{Elasticsearch, IndexParts};
use serde_json::json;

use crate::bulk;
use crate::doc;
use crate::retry::{Backoff, Tally, until_written};

/// A counter made of `shards` documents `<name>-0` .. `<name>-<shards-1>` in `index`, each
/// `{"count": n}`; the counter's value is their sum.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use esbook::counter::ShardedCounter;
/// use esbook::doc;
/// use esbook::retry::Backoff;
///
/// doc::fresh_index(client, "counter-doc").await?;
/// let counter = ShardedCounter::new("counter-doc", "visits", 4);
/// counter.create(client).await?;
/// for _ in 0..10 {
///     let done = counter.increment(client, Backoff::default()).await?;
///     assert_eq!(done.acknowledged, 1);
/// }
/// assert_eq!(counter.total(client).await?, 10); // clients at once: chapter 15
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ShardedCounter {
    pub index: String,
    pub name: String,
    pub shards: u32,
}

impl ShardedCounter {
    /// A counter of `shards` documents (at least one) named after `name`, in `index`.
    pub fn new(index: &str, name: &str, shards: u32) -> ShardedCounter {
        ShardedCounter {
            index: index.to_string(),
            name: name.to_string(),
            shards: shards.max(1),
        }
    }

    /// The id of shard document `shard`.
    pub fn shard_id(&self, shard: u32) -> String {
        format!("{}-{shard}", self.name)
    }

    /// Writes every shard document with a count of 0.
    pub async fn create(&self, client: &Elasticsearch) -> Result<()> {
        for shard in 0..self.shards {
            let id = self.shard_id(shard);
            doc::put(client, &self.index, &id, json!({ "count": 0 })).await?;
        }
        Ok(())
    }

    // ANCHOR: increment
    /// Adds one: reads a shard document chosen at random and writes it back plus one on the
    /// condition `if_seq_no`/`if_primary_term`, retried by chapter 6's bounded loop
    /// (`until_written`). Each try picks its shard anew, so that two clients that collided
    /// are unlikely to collide again. After `backoff.max_attempts` tries it gives up and says
    /// so (`failed: 1`).
    pub async fn increment(
        &self,
        client: &Elasticsearch,
        backoff: Backoff,
    ) -> Result<Tally> {
        until_written(backoff, || async {
            let id = self.shard_id(fastrand::u32(0..self.shards));
            let seen = doc::read(client, &self.index, &id).await?;
            let response = client
                .index(IndexParts::IndexId(&self.index, &id))
                .if_seq_no(seen.seq_no)
                .if_primary_term(seen.primary_term)
                .body(json!({ "count": seen.number("count")? + 1 }))
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        anyhow!(
                            "an increment of {id} got no answer in time: whether it \
                             was applied is unknown (indeterminate)"
                        )
                    } else {
                        anyhow!("incrementing {id}: {e}")
                    }
                })?;
            doc::outcome(response).await
        })
        .await
    }
    // ANCHOR_END: increment

    // ANCHOR: total
    /// The counter's value: the sum of the shard documents, read in one realtime `_mget`.
    pub async fn total(&self, client: &Elasticsearch) -> Result<i64> {
        let ids: Vec<String> = (0..self.shards).map(|s| self.shard_id(s)).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        // Every shard document must be there: `read_all` fails on a missing one.
        let seen = bulk::read_all(client, &self.index, &ids).await?;
        seen.values().map(|doc| doc.number("count")).sum()
    }
    // ANCHOR_END: total
}
