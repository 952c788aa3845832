//! Chapter 5: how OCC works in Elasticsearch, one claim at a time, each shown by a run.
//!
//! 1. `_seq_no` counts the writes to a *shard*, `_version` the writes to one *document*.
//! 2. The article's request, `PUT /bank/_doc/12345?if_seq_no=..&if_primary_term=..`, succeeds
//!    while the numbers are current, and the very same request is a 409 once they are not.
//! 3. `?version=N` (internal versioning) is refused for this purpose: use `if_seq_no` and
//!    `if_primary_term`.
//! 4. A GET is realtime: it sees the latest write before any refresh, while a search does not.
//!    Refresh is not what loses updates.
//! 5. `retry_on_conflict` cannot be combined with `if_seq_no`: a compare-and-write that failed
//!    must not be retried by the server.
//!
//! Run it: `cargo run --example how_occ_works`. It exits non-zero if any of these does not hold.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::indices::IndicesPutSettingsParts;
use elasticsearch::params::VersionType;
use elasticsearch::{Elasticsearch, IndexParts, SearchParts, UpdateParts};
use esbook::doc::{self, Outcome};
use esbook::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::{Value, json};

const INDEX: &str = "bank";

const USAGE: &str = "usage: cargo run --example how_occ_works (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    esbook::run_example(USAGE, Needs::Core, |cluster| async move {
        how_occ_works(&cluster, INDEX).await
    })
    .await
}

async fn how_occ_works(cluster: &Cluster, index: &str) -> Result<Claims> {
    let started = Instant::now();
    let client = &cluster.client;
    let mut claims = Claims::new();
    doc::fresh_index(client, index).await?;

    println!("\n-- 1. _seq_no is per shard, _version is per document");
    // ANCHOR: counters
    let first =
        doc::put(client, index, "12345", json!({ "balance": 1000 })).await?;
    let other = doc::put(client, index, "67890", json!({ "balance": 50 })).await?;
    let second =
        doc::put(client, index, "12345", json!({ "balance": 900 })).await?;
    // ANCHOR_END: counters
    for (what, body) in [
        ("12345 created", &first),
        ("67890 created", &other),
        ("12345 updated", &second),
    ] {
        println!(
            "{what:14} _seq_no={} _primary_term={} _version={}",
            body["_seq_no"], body["_primary_term"], body["_version"]
        );
    }
    claims.check(
        first["_seq_no"] == 0 && other["_seq_no"] == 1 && second["_seq_no"] == 2,
        "_seq_no counts every write to the shard: 0, 1, 2 across two documents",
    );
    claims.check(
        first["_version"] == 1 && other["_version"] == 1 && second["_version"] == 2,
        "_version counts the writes to each document: 1 and 2 for 12345, 1 for 67890",
    );

    println!("\n-- 2. The article's conditional PUT, twice");
    let seen = doc::read(client, index, "12345").await?;
    let request = format!(
        "PUT /{index}/_doc/12345?if_seq_no={}&if_primary_term={}",
        seen.seq_no, seen.primary_term
    );
    let mut statuses = Vec::new();
    for attempt in ["first", "second"] {
        // ANCHOR: conditional_put
        let response = client
            .index(IndexParts::IndexId(index, "12345"))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "balance": 800 }))
            .send()
            .await?;
        // ANCHOR_END: conditional_put
        let status = response.status_code().as_u16();
        let outcome = doc::outcome(response).await?;
        println!("{attempt} {request} -> HTTP {status}: {}", brief(&outcome));
        statuses.push(status);
    }
    claims.check(
        statuses == [200, 409],
        "the same conditional request succeeds once, then is a 409: its seq_no is no longer current",
    );

    println!("\n-- 3. ?version= (internal versioning) is not the way");
    let response = client
        .index(IndexParts::IndexId(index, "12345"))
        .version(seen.version)
        .version_type(VersionType::Internal)
        .body(json!({ "balance": 700 }))
        .send()
        .await?;
    let status = response.status_code().as_u16();
    let body: Value = response.json().await?;
    println!(
        "PUT /{index}/_doc/12345?version={} -> HTTP {status}: {}",
        seen.version,
        doc::reason(&body)
    );
    claims.check(
        status == 400
            && doc::reason(&body)
                .contains("internal versioning can not be used for optimistic concurrency control"),
        "internal ?version= is rejected (HTTP 400): use if_seq_no and if_primary_term",
    );

    println!("\n-- 4. GET is realtime; search waits for a refresh");
    realtime_get(client, index, &mut claims).await?;

    println!("\n-- 5. retry_on_conflict and if_seq_no do not mix");
    let current = doc::read(client, index, "12345").await?;
    let response = client
        .update(UpdateParts::IndexId(index, "12345"))
        .if_seq_no(current.seq_no)
        .if_primary_term(current.primary_term)
        .retry_on_conflict(3)
        .body(json!({ "doc": { "balance": 600 } }))
        .send()
        .await?;
    let status = response.status_code().as_u16();
    let body: Value = response.json().await?;
    println!(
        "POST /{index}/_update/12345?if_seq_no={}&if_primary_term={}&retry_on_conflict=3 -> HTTP {status}: {}",
        current.seq_no,
        current.primary_term,
        doc::reason(&body)
    );
    claims.check(
        status == 400 && doc::reason(&body).contains("compare and write operations can not be retried"),
        "retry_on_conflict with if_seq_no is rejected (HTTP 400): a failed compare-and-write is the caller's to retry",
    );

    println!();
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "how_occ_works",
            "claims": claims.checked(),
            "held": claims.all_hold(),
        }),
    );
    Ok(claims)
}

/// Writes with refreshes turned off, then compares what a GET and a search see.
async fn realtime_get(
    client: &Elasticsearch,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let settings = client
        .indices()
        .put_settings(IndicesPutSettingsParts::Index(&[index]))
        .body(json!({ "index": { "refresh_interval": "-1" } }))
        .send()
        .await?;
    doc::expect_success(settings, "turning refreshes off").await?;
    // ANCHOR: realtime
    doc::put(client, index, "55555", json!({ "balance": 42 })).await?;
    let got = doc::read(client, index, "55555").await?;
    let search = client
        .search(SearchParts::Index(&[index]))
        .body(json!({ "query": { "ids": { "values": ["55555"] } } }))
        .send()
        .await?;
    let hits =
        doc::expect_success(search, "searching").await?["hits"]["total"]["value"]
            .clone();
    // ANCHOR_END: realtime
    println!(
        "right after the write, with refresh off: GET sees balance={}, search finds {hits} hit(s)",
        got.source["balance"]
    );
    claims.check(
        got.source["balance"] == 42,
        "a GET sees the latest write at once (realtime)",
    );
    claims.check(hits == 0, "a search does not see it until a refresh");
    Ok(())
}

fn brief(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Written(body) => format!(
            "result={} _seq_no={} _version={}",
            body["result"], body["_seq_no"], body["_version"]
        ),
        Outcome::Conflict(error) => format!(
            "{}: {}",
            error["type"].as_str().unwrap_or_default(),
            error["reason"].as_str().unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every claim of the chapter, against a real Elasticsearch.
    #[tokio::test]
    async fn every_claim_of_the_mechanism_chapter_holds() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let claims = how_occ_works(&cluster, "test-how-occ-works")
            .await
            .expect("the demonstrations run");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
