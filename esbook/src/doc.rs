//! The document operations every chapter performs, so each example can show only what its
//! chapter is about.

use anyhow::{Context, Result, anyhow, bail};
use elasticsearch::http::response::Response;
use elasticsearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesGetMappingParts,
};
use elasticsearch::{Elasticsearch, GetParts, IndexParts};
use serde_json::{Value, json};

/// A document as read, with the coordinates of the write that produced it.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use esbook::doc;
/// use serde_json::json;
///
/// doc::fresh_index(client, "doc-versioned").await?;
/// doc::put(client, "doc-versioned", "1", json!({ "balance": 1000 })).await?;
/// doc::put(client, "doc-versioned", "1", json!({ "balance": 800 })).await?;
/// let seen = doc::read(client, "doc-versioned", "1").await?;
/// assert_eq!(seen.number("balance")?, 800);
/// assert_eq!((seen.seq_no, seen.primary_term, seen.version), (1, 1, 2));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Versioned {
    pub source: Value,
    /// Position of that write in its shard's history (per shard, not per document).
    pub seq_no: i64,
    /// Which primary copy of the shard accepted that write; grows when a replica is promoted.
    pub primary_term: i64,
    /// How many times this document has been written (per document).
    pub version: i64,
}

impl Versioned {
    /// The document in a GET's answer, or in one entry of an `_mget`'s (`what` names the
    /// request in errors).
    pub(crate) fn from_answer(body: &Value, what: &str) -> Result<Versioned> {
        let number = |field: &str| {
            body[field]
                .as_i64()
                .ok_or_else(|| anyhow!("{what} answered without {field}"))
        };
        Ok(Versioned {
            seq_no: number("_seq_no")?,
            primary_term: number("_primary_term")?,
            version: number("_version")?,
            source: body["_source"].clone(),
        })
    }

    /// A whole-number field of the document, such as `balance` or `counter`; an error if it
    /// has none.
    pub fn number(&self, field: &str) -> Result<i64> {
        self.source[field].as_i64().ok_or_else(|| {
            anyhow!(
                "the document has no whole-number {field:?}: {}",
                self.source
            )
        })
    }
}

/// What a write came back with: see [`outcome`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 2xx: the response body (`_seq_no`, `_version`, `result`, ...).
    Written(Value),
    /// HTTP 409 with `version_conflict_engine_exception`: the `error` object of the body.
    Conflict(Value),
}

/// Marks the indices this book creates, so it never deletes one it did not create.
const CREATED_BY: &str = "occ-book";

/// Deletes `index` if this book created it, and creates it anew: one shard, no replicas (a single
/// node could not place a replica, and one shard keeps every `_seq_no` in one history you can
/// follow).
///
/// On your own cluster an index of the same name that this book did not create is left alone,
/// and this fails instead.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use esbook::doc;
///
/// doc::fresh_index(client, "doc-fresh").await?;
/// doc::put(client, "doc-fresh", "1", serde_json::json!({ "n": 1 })).await?;
/// doc::fresh_index(client, "doc-fresh").await?; // empty again
/// assert!(doc::read(client, "doc-fresh", "1").await.is_err());
/// # Ok(()) }
/// ```
pub async fn fresh_index(client: &Elasticsearch, index: &str) -> Result<()> {
    let mapping = client
        .indices()
        .get_mapping(IndicesGetMappingParts::Index(&[index]))
        .send()
        .await?;
    if mapping.status_code().is_success() {
        let body: Value = mapping.json().await?;
        if body[index]["mappings"]["_meta"]["created_by"] != CREATED_BY {
            bail!(
                "index {index:?} exists and was not created by this book; \
                 not deleting it (use another cluster, or delete it yourself)"
            );
        }
        let deleted = client
            .indices()
            .delete(IndicesDeleteParts::Index(&[index]))
            .send()
            .await?;
        expect_success(deleted, &format!("deleting index {index}")).await?;
    }
    let created = client
        .indices()
        .create(IndicesCreateParts::Index(index))
        .body(json!({
            "settings": { "number_of_shards": 1, "number_of_replicas": 0 },
            "mappings": { "_meta": { "created_by": CREATED_BY } }
        }))
        .send()
        .await?;
    expect_success(created, &format!("creating index {index}")).await?;
    Ok(())
}

/// Writes `source` as document `id`, unconditionally (last writer wins), and returns the
/// answer (`result`, `_seq_no`, `_primary_term`, `_version`).
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use esbook::doc;
/// use serde_json::json;
///
/// doc::fresh_index(client, "doc-put").await?;
/// let created = doc::put(client, "doc-put", "1", json!({ "balance": 1000 })).await?;
/// let replaced = doc::put(client, "doc-put", "1", json!({ "balance": 500 })).await?;
/// assert_eq!((created["result"].as_str(), replaced["result"].as_str()),
///            (Some("created"), Some("updated")));
/// assert_eq!(replaced["_seq_no"], 1);
/// # Ok(()) }
/// ```
pub async fn put(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    source: Value,
) -> Result<Value> {
    let response = client
        .index(IndexParts::IndexId(index, id))
        .body(source)
        .send()
        .await?;
    expect_success(response, &format!("writing {index}/{id}")).await
}

/// Reads document `id` with its `_seq_no`, `_primary_term` and `_version`. A GET is realtime:
/// it sees the latest acknowledged write even before a refresh. A missing document is an error.
///
/// See [`Versioned`] for an example.
pub async fn read(
    client: &Elasticsearch,
    index: &str,
    id: &str,
) -> Result<Versioned> {
    find(client, index, id)
        .await?
        .ok_or_else(|| anyhow!("reading {index}/{id}: HTTP 404: no such document"))
}

/// Like [`read`], but a document that does not exist (HTTP 404, `"found": false`) is `None`
/// rather than an error: for the clients that decide between creating and updating.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use esbook::doc;
/// use serde_json::json;
///
/// doc::fresh_index(client, "doc-find").await?;
/// assert!(doc::find(client, "doc-find", "1").await?.is_none());
/// doc::put(client, "doc-find", "1", json!({ "counter": 1 })).await?;
/// let found = doc::find(client, "doc-find", "1").await?.expect("it exists now");
/// assert_eq!((found.number("counter")?, found.seq_no), (1, 0));
/// # Ok(()) }
/// ```
pub async fn find(
    client: &Elasticsearch,
    index: &str,
    id: &str,
) -> Result<Option<Versioned>> {
    let response = client.get(GetParts::IndexId(index, id)).send().await?;
    if response.status_code().as_u16() == 404 {
        let body: Value = response.json().await.with_context(|| {
            format!("reading {index}/{id}: a 404 that is not JSON")
        })?;
        // A missing index is a 404 too, with an error instead of "found": false.
        if body["found"] == false {
            return Ok(None);
        }
        bail!("reading {index}/{id}: HTTP 404: {}", reason(&body));
    }
    let body = expect_success(response, &format!("reading {index}/{id}")).await?;
    Versioned::from_answer(&body, &format!("GET {index}/{id}")).map(Some)
}

/// Classifies a write's response: written, or rejected as a version conflict. Anything else
/// (a 400, a 5xx) is an error, with the server's reason.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use elasticsearch::IndexParts;
/// use esbook::doc::{self, Outcome};
/// use serde_json::json;
///
/// doc::fresh_index(client, "doc-outcome").await?;
/// doc::put(client, "doc-outcome", "1", json!({ "counter": 1 })).await?;
/// let seen = doc::read(client, "doc-outcome", "1").await?;
/// let mut outcomes = Vec::new();
/// for counter in [2, 3] {
///     let response = client
///         .index(IndexParts::IndexId("doc-outcome", "1"))
///         .if_seq_no(seen.seq_no)
///         .if_primary_term(seen.primary_term)
///         .body(json!({ "counter": counter }))
///         .send()
///         .await?;
///     outcomes.push(doc::outcome(response).await?);
/// }
/// assert!(matches!(outcomes[0], Outcome::Written(_)));
/// let Outcome::Conflict(error) = &outcomes[1] else { panic!("not a conflict") };
/// assert_eq!(error["type"], "version_conflict_engine_exception");
/// # Ok(()) }
/// ```
pub async fn outcome(response: Response) -> Result<Outcome> {
    let status = response.status_code().as_u16();
    let body: Value = response
        .json()
        .await
        .context("reading the write's response")?;
    classify(status, body, "the write")
}

/// A write's answer (`status`, `body`) as written, a version conflict, or an error naming
/// `what` for any other status: the one rule for single writes and bulk items alike.
pub(crate) fn classify(status: u16, body: Value, what: &str) -> Result<Outcome> {
    match status {
        200..=299 => Ok(Outcome::Written(body)),
        409 if body["error"]["type"] == "version_conflict_engine_exception" => {
            Ok(Outcome::Conflict(body["error"].clone()))
        }
        _ => bail!("{what} failed with HTTP {status}: {}", reason(&body)),
    }
}

/// The body of a successful response, or an error with the server's reason.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// use elasticsearch::GetParts;
///
/// let response = cluster.client.get(GetParts::IndexId("doc-no-such-index", "1")).send().await?;
/// let error = esbook::doc::expect_success(response, "reading").await.unwrap_err();
/// assert!(error.to_string().starts_with("reading: HTTP 404"), "{error}");
/// # Ok(()) }
/// ```
pub async fn expect_success(response: Response, what: &str) -> Result<Value> {
    let status = response.status_code();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{what}: the response was not JSON"))?;
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {}", reason(&body));
    }
    Ok(body)
}

/// `error.type: error.reason` from an error body, or the body itself.
///
/// ```
/// let body = serde_json::json!({ "error": { "type": "version_conflict_engine_exception",
///                                           "reason": "[1]: version conflict" } });
/// assert_eq!(esbook::doc::reason(&body),
///            "version_conflict_engine_exception: [1]: version conflict");
/// ```
pub fn reason(body: &Value) -> String {
    match (&body["error"]["type"], &body["error"]["reason"]) {
        (Value::String(kind), Value::String(reason)) => format!("{kind}: {reason}"),
        _ => body.to_string(),
    }
}
