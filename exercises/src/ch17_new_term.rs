//! Chapter 17: a new primary term, on one node, and the condition read before it.

use anyhow::{Result, anyhow};
use elasticsearch::cluster::ClusterStateParts;
use elasticsearch::indices::{IndicesCloseParts, IndicesOpenParts};
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc::{self, Outcome, Versioned};
use serde_json::Value;

// ANCHOR: solution
/// Closes and reopens `index`, so that its shard's one copy is initialised anew,
/// under a new primary term; returns that term, from the cluster state.
pub async fn new_term(client: &Elasticsearch, index: &str) -> Result<i64> {
    let closed = client
        .indices()
        .close(IndicesCloseParts::Index(&[index]))
        .send()
        .await?;
    doc::expect_success(closed, "closing").await?;
    let opened = client
        .indices()
        .open(IndicesOpenParts::Index(&[index]))
        .wait_for_active_shards("1") // the reopened copy is started
        .send()
        .await?;
    doc::expect_success(opened, "reopening").await?;
    let parts = ClusterStateParts::MetricIndex(&["metadata"], &[index]);
    let state = client.cluster().state(parts).send().await?;
    let state = doc::expect_success(state, "reading the cluster state").await?;
    let term = &state["metadata"]["indices"][index]["primary_terms"]["0"];
    term.as_i64()
        .ok_or_else(|| anyhow!("no primary term in {state}"))
}

/// Writes `source` on the condition of `seen`.
pub async fn write_if_unchanged(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    seen: &Versioned,
    source: Value,
) -> Result<Outcome> {
    let response = client
        .index(IndexParts::IndexId(index, id))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .body(source)
        .send()
        .await?;
    doc::outcome(response).await
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};
    use serde_json::json;

    /// A read in term 1, then a new term: the condition still holds (nobody wrote), the
    /// write is the first of the new term, and the same write again is a 409.
    #[tokio::test]
    async fn the_condition_survives_a_new_term() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch17-term");
        doc::fresh_index(client, index).await?;
        doc::put(client, index, "acct", json!({ "balance": 1000 })).await?;
        let seen = doc::read(client, index, "acct").await?;
        assert_eq!((seen.seq_no, seen.primary_term), (0, 1));

        let term = new_term(client, index).await?;
        assert!(term > 1, "term {term}");
        let again = doc::read(client, index, "acct").await?;
        assert_eq!((again.seq_no, again.primary_term), (0, 1)); // the same write

        let body = json!({ "balance": 900 });
        let written =
            write_if_unchanged(client, index, "acct", &seen, body.clone());
        let Outcome::Written(answer) = written.await? else {
            panic!("the condition of the unchanged document was refused")
        };
        assert_eq!(
            (&answer["_seq_no"], &answer["_primary_term"]),
            (&json!(1), &json!(term))
        );
        let repeated =
            write_if_unchanged(client, index, "acct", &seen, body).await?;
        let Outcome::Conflict(error) = repeated else {
            panic!("the same condition was accepted twice")
        };
        let reason = error["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(&format!("seqNo [1] and primary term [{term}]")),
            "{reason}"
        );
        Ok(())
    }
}
