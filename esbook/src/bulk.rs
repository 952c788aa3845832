//! Many documents in one request: `_mget` to read them with their `_seq_no`/`_primary_term`,
//! `_bulk` to write them, and the bulk answer read item by item.
//!
//! Why this is its own module: a bulk answer is not like a single write's. It is HTTP 200
//! whenever the request as a whole was understood, whatever happened to each action in it;
//! `"errors": true` and a `status` per item say which actions failed. A version conflict in an
//! item is the same 409 as a single write's, but it never reaches `status_code()`, so the
//! single-document check ([`crate::doc::outcome`]) does not carry over. [`send`] returns every
//! item, in request order, each classified like a single write ([`Item::outcome`]), so that no
//! failure goes unread. Chapters 12 and 13 both write this way.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use elasticsearch::{BulkOperation, BulkParts, Elasticsearch, MgetParts};
use serde_json::{Value, json};

use crate::doc::{self, Outcome, Versioned};

/// What one action of a bulk request came back with.
#[derive(Debug, Clone)]
pub struct Item {
    /// `index`, `create`, `update` or `delete`.
    pub action: String,
    pub id: String,
    /// The item's own HTTP status: 200/201 written, 409 version conflict, ...
    pub status: u16,
    /// The item as the server sent it (`_seq_no`, `result`, or `error`).
    pub body: Value,
}

// ANCHOR: item
impl Item {
    /// The item classified like a single write: written, a version conflict, or an error for
    /// any other failure (a 400 or a 5xx for this item: a bug or an outage, not a race).
    pub fn outcome(&self) -> Result<Outcome> {
        let what = format!("bulk {} of {}", self.action, self.id);
        doc::classify(self.status, self.body.clone(), &what)
    }

    /// Whether the item is a version conflict (HTTP 409 `version_conflict_engine_exception`).
    pub fn is_conflict(&self) -> bool {
        matches!(self.outcome(), Ok(Outcome::Conflict(_)))
    }
}
// ANCHOR_END: item

/// A bulk request's answer: the HTTP status of the whole, the `errors` flag, and every item.
#[derive(Debug, Clone)]
pub struct BulkAnswer {
    /// 200 even when items failed.
    pub status: u16,
    /// `true` if at least one item failed.
    pub errors: bool,
    /// One per action, in the order of the request.
    pub items: Vec<Item>,
    /// The whole body as the server sent it, to show.
    pub body: Value,
}

/// Sends `operations` to `index` in one `_bulk` request and returns every item's answer.
///
/// An error only if the request as a whole failed (unreachable, or a 4xx/5xx for the whole
/// bulk); a failed *item* is in [`BulkAnswer::items`]. A request that times out is reported as
/// indeterminate: some of its actions may have been applied.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use elasticsearch::BulkOperation;
/// use esbook::{bulk, doc};
/// use serde_json::json;
///
/// doc::fresh_index(client, "bulk-send").await?;
/// doc::put(client, "bulk-send", "a", json!({ "n": 1 })).await?; // _seq_no 0
/// let answer = bulk::send(client, "bulk-send", vec![
///     // Written: "a" is still at _seq_no 0.
///     BulkOperation::index(json!({ "n": 2 })).id("a").if_seq_no(0).if_primary_term(1).into(),
///     // A conflict: the item before it has just moved "a" on.
///     BulkOperation::index(json!({ "n": 3 })).id("a").if_seq_no(0).if_primary_term(1).into(),
/// ]).await?;
/// assert_eq!((answer.status, answer.errors), (200, true)); // an Ok response, with a 409 inside
/// assert_eq!(answer.items[0].status, 200);
/// assert!(answer.items[1].is_conflict());
/// # Ok(()) }
/// ```
pub async fn send(
    client: &Elasticsearch,
    index: &str,
    operations: Vec<BulkOperation<Value>>,
) -> Result<BulkAnswer> {
    let actions = operations.len();
    let response = client
        .bulk(BulkParts::Index(index))
        .body(operations)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                anyhow!(
                    "a bulk of {actions} actions to {index} got no answer in time: \
                     whether each was applied is unknown (indeterminate); re-read before \
                     deciding"
                )
            } else {
                anyhow!("sending a bulk of {actions} actions to {index}: {e}")
            }
        })?;
    let status = response.status_code().as_u16();
    let body: Value = response.json().await?;
    if !(200..300).contains(&status) {
        bail!(
            "the bulk request to {index} was refused as a whole (HTTP {status}): {}",
            doc::reason(&body)
        );
    }
    let items = body["items"]
        .as_array()
        .ok_or_else(|| anyhow!("a bulk answer without items: {body}"))?
        .iter()
        .map(|entry| {
            // Each entry is { "<action>": { "_id": ..., "status": ..., ... } }.
            let (action, item) =
                entry.as_object().and_then(|o| o.iter().next()).ok_or_else(
                    || anyhow!("a bulk item that is not an action: {entry}"),
                )?;
            Ok(Item {
                action: action.clone(),
                id: item["_id"].as_str().unwrap_or_default().to_string(),
                status: item["status"].as_u64().unwrap_or_default() as u16,
                body: item.clone(),
            })
        })
        .collect::<Result<Vec<Item>>>()?;
    if items.len() != actions {
        bail!(
            "a bulk of {actions} actions came back with {} items",
            items.len()
        );
    }
    Ok(BulkAnswer {
        status,
        errors: body["errors"] == true,
        items,
        body,
    })
}

/// Reads the documents `ids` in one `_mget`, each with its `_seq_no` and `_primary_term`
/// (realtime, like a GET). A missing document is an error.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use esbook::{bulk, doc};
/// use serde_json::json;
///
/// doc::fresh_index(client, "bulk-read").await?;
/// doc::put(client, "bulk-read", "a", json!({ "n": 1 })).await?;
/// doc::put(client, "bulk-read", "b", json!({ "n": 2 })).await?;
/// let seen = bulk::read_all(client, "bulk-read", &["a", "b"]).await?;
/// assert_eq!(seen["b"].number("n")?, 2);
/// assert_eq!((seen["a"].seq_no, seen["b"].seq_no), (0, 1));
/// # Ok(()) }
/// ```
pub async fn read_all(
    client: &Elasticsearch,
    index: &str,
    ids: &[&str],
) -> Result<BTreeMap<String, Versioned>> {
    let response = client
        .mget(MgetParts::Index(index))
        .body(json!({ "ids": ids }))
        .send()
        .await?;
    let body =
        doc::expect_success(response, &format!("reading {} documents", ids.len()))
            .await?;
    let mut found = BTreeMap::new();
    for entry in body["docs"].as_array().into_iter().flatten() {
        let id = entry["_id"].as_str().unwrap_or_default().to_string();
        if entry["found"] != true {
            bail!("reading {index}/{id}: not found");
        }
        let seen =
            Versioned::from_answer(entry, &format!("_mget of {index}/{id}"))?;
        found.insert(id, seen);
    }
    Ok(found)
}
