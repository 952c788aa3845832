//! Requests about a whole index rather than one document: changing its settings, refreshing
//! it, and counting what a search of it sees.
//!
//! Why they matter to OCC: a GET by id is realtime, a search or a count is not (it sees only
//! what the last refresh made visible), and the chapters that show the difference turn the
//! automatic refresh off and refresh by hand.

use anyhow::{Result, anyhow};
use elasticsearch::indices::{IndicesPutSettingsParts, IndicesRefreshParts};
use elasticsearch::{CountParts, Elasticsearch};
use serde_json::{Value, json};

use crate::doc;

/// Changes the dynamic `settings` of `index` (the `index` object of a settings request).
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use esbook::{doc, indices};
/// use serde_json::json;
///
/// doc::fresh_index(client, "indices-settings").await?;
/// indices::put_settings(client, "indices-settings", json!({ "refresh_interval": "-1" }))
///     .await?;
/// let refused = indices::put_settings(client, "indices-settings", json!({ "no_such": 1 }));
/// assert!(refused.await.unwrap_err().to_string().contains("HTTP 400"));
/// # Ok(()) }
/// ```
pub async fn put_settings(
    client: &Elasticsearch,
    index: &str,
    settings: Value,
) -> Result<()> {
    let response = client
        .indices()
        .put_settings(IndicesPutSettingsParts::Index(&[index]))
        .body(json!({ "index": settings }))
        .send()
        .await?;
    doc::expect_success(response, &format!("changing the settings of {index}"))
        .await?;
    Ok(())
}

/// Refreshes `index`: what has been written becomes visible to searches and counts.
///
/// See [`count`] for an example.
pub async fn refresh(client: &Elasticsearch, index: &str) -> Result<()> {
    let response = client
        .indices()
        .refresh(IndicesRefreshParts::Index(&[index]))
        .send()
        .await?;
    doc::expect_success(response, &format!("refreshing {index}")).await?;
    Ok(())
}

/// How many documents of `index` match `query`, as a search sees them: only what the last
/// refresh made visible.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use esbook::{doc, indices};
/// use serde_json::json;
///
/// let all = || json!({ "match_all": {} });
/// doc::fresh_index(client, "indices-count").await?;
/// indices::put_settings(client, "indices-count", json!({ "refresh_interval": "-1" }))
///     .await?;
/// doc::put(client, "indices-count", "1", json!({ "n": 1 })).await?;
/// assert_eq!(indices::count(client, "indices-count", all()).await?, 0);
/// indices::refresh(client, "indices-count").await?;
/// assert_eq!(indices::count(client, "indices-count", all()).await?, 1);
/// # Ok(()) }
/// ```
pub async fn count(
    client: &Elasticsearch,
    index: &str,
    query: Value,
) -> Result<u64> {
    let response = client
        .count(CountParts::Index(&[index]))
        .body(json!({ "query": query }))
        .send()
        .await?;
    let body =
        doc::expect_success(response, &format!("counting in {index}")).await?;
    body["count"]
        .as_u64()
        .ok_or_else(|| anyhow!("a count without a count: {body}"))
}
