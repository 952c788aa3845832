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
//! 6. A search returns `_seq_no` and `_primary_term` only when asked (`seq_no_primary_term`).
//! 7. `_version` counts writes, not requests: an update that changes nothing (a noop) leaves it
//!    and `_seq_no` alone.
//! 8. With `version_type=external`, `_version` is whatever number your system sends, and it is
//!    a check too: a number that is not higher than the stored one is a 409.
//! 9. `_primary_term` is a generation number, not a count of failovers: closing and reopening
//!    the index on a single node starts a new one, and a condition naming the old term is a 409.
//!
//! What one node cannot show, a replica promoted to primary after a failure, is chapter 17's.
//!
//! Run it: `cargo run --example how_occ_works`. It exits non-zero if any of these does not hold.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::indices::{IndicesCloseParts, IndicesOpenParts};
use elasticsearch::params::VersionType;
use elasticsearch::{Elasticsearch, IndexParts, SearchParts, UpdateParts};
use esbook::answer::Answer;
use esbook::doc;
use esbook::indices;
use harness::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::json;

const INDEX: &str = "bank";

const USAGE: &str = "usage: cargo run --example how_occ_works (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
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
        let answer = Answer::of(response).await?;
        println!("{attempt} {request} -> {}", answer.summary());
        statuses.push(answer.status);
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
    let refused = Answer::of(response).await?;
    println!(
        "PUT /{index}/_doc/12345?version={} -> {}",
        seen.version,
        refused.summary()
    );
    claims.check(
        refused.status == 400
            && refused
                .reason()
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
    let refused = Answer::of(response).await?;
    println!(
        "POST /{index}/_update/12345?if_seq_no={}&if_primary_term={}&retry_on_conflict=3 -> {}",
        current.seq_no,
        current.primary_term,
        refused.summary()
    );
    claims.check(
        refused.status == 400
            && refused.reason().contains("compare and write operations can not be retried"),
        "retry_on_conflict with if_seq_no is rejected (HTTP 400): a failed compare-and-write is the caller's to retry",
    );

    println!("\n-- 6. A search returns _seq_no and _primary_term only when asked");
    search_hits_carry_seq_no_only_when_asked(client, index, &mut claims).await?;

    println!("\n-- 7. _version counts writes: a noop update is not one");
    noop_update(client, index, &mut claims).await?;

    println!("\n-- 8. version_type=external: your number, and a check");
    external_versions(client, index, &mut claims).await?;

    println!("\n-- 9. _primary_term is a generation: close and reopen the index");
    new_primary_term(client, index, &mut claims).await?;

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
    indices::put_settings(client, index, json!({ "refresh_interval": "-1" }))
        .await?;
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

/// After a refresh, the same search without and with `seq_no_primary_term`.
async fn search_hits_carry_seq_no_only_when_asked(
    client: &Elasticsearch,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    indices::refresh(client, index).await?;
    let mut hits = Vec::new();
    for asked in [false, true] {
        // ANCHOR: seq_no_primary_term
        let response = client
            .search(SearchParts::Index(&[index]))
            .seq_no_primary_term(asked)
            .body(json!({ "query": { "ids": { "values": ["55555"] } } }))
            .send()
            .await?;
        // ANCHOR_END: seq_no_primary_term
        let body = doc::expect_success(response, "searching").await?;
        let hit = body["hits"]["hits"][0].clone();
        println!(
            "search, seq_no_primary_term={asked}: hit _seq_no={} _primary_term={}",
            hit["_seq_no"], hit["_primary_term"]
        );
        hits.push(hit);
    }
    claims.check(
        hits[0]["_id"] == "55555" && hits[0]["_seq_no"].is_null(),
        "a search hit has no _seq_no by default: it cannot feed a conditional write",
    );
    claims.check(
        hits[1]["_seq_no"].is_i64() && hits[1]["_primary_term"].is_i64(),
        "with seq_no_primary_term=true, each hit carries _seq_no and _primary_term",
    );
    Ok(())
}

/// A partial update that sets the balance it already has.
async fn noop_update(
    client: &Elasticsearch,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let before = doc::read(client, index, "67890").await?;
    let response = client
        .update(UpdateParts::IndexId(index, "67890"))
        .body(json!({ "doc": { "balance": before.source["balance"] } }))
        .send()
        .await?;
    let noop = Answer::of(response).await?;
    println!(
        "67890 at _seq_no={} _version={}; POST /{index}/_update/67890 {{\"doc\": {{\"balance\": {}}}}} -> {}",
        before.seq_no,
        before.version,
        before.source["balance"],
        noop.summary()
    );
    claims.check(
        noop.body["result"] == "noop"
            && noop.body["_version"] == before.version
            && noop.body["_seq_no"] == before.seq_no,
        "an update that changes nothing is a noop: _version and _seq_no stay as they were",
    );
    Ok(())
}

/// Versions 5, 5 again, 3 and 9 sent as external versions.
async fn external_versions(
    client: &Elasticsearch,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let mut answers = Vec::new();
    for version in [5, 5, 3, 9] {
        // ANCHOR: external
        let response = client
            .index(IndexParts::IndexId(index, "24680"))
            .version(version)
            .version_type(VersionType::External)
            .body(json!({ "balance": 100 * version }))
            .send()
            .await?;
        // ANCHOR_END: external
        let answer = Answer::of(response).await?;
        println!(
            "PUT /{index}/_doc/24680?version={version}&version_type=external -> {}",
            answer.summary()
        );
        answers.push(answer);
    }
    claims.check(
        answers[0].body["_version"] == 5 && answers[3].body["_version"] == 9,
        "with version_type=external, _version is the number sent (5, then 9), not a count",
    );
    claims.check(
        answers[1].status == 409
            && answers[2].status == 409
            && answers[1].reason().contains("current version [5] is higher or equal"),
        "an external version that is not higher than the stored one is a 409: it is a check too",
    );
    Ok(())
}

/// Closes and reopens the index, then writes with the pair read before.
async fn new_primary_term(
    client: &Elasticsearch,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let before = doc::read(client, index, "12345").await?;
    // ANCHOR: reopen
    let closed = client
        .indices()
        .close(IndicesCloseParts::Index(&[index]))
        .send()
        .await?;
    doc::expect_success(closed, "closing the index").await?;
    let opened = client
        .indices()
        .open(IndicesOpenParts::Index(&[index]))
        .wait_for_active_shards("1")
        .send()
        .await?;
    doc::expect_success(opened, "reopening the index").await?;
    // ANCHOR_END: reopen
    let after = doc::read(client, index, "12345").await?;
    let written =
        doc::put(client, index, "67890", json!({ "balance": 60 })).await?;
    let response = client
        .index(IndexParts::IndexId(index, "12345"))
        .if_seq_no(before.seq_no)
        .if_primary_term(before.primary_term)
        .body(json!({ "balance": 500 }))
        .send()
        .await?;
    let touched = Answer::of(response).await?;
    let new_seq_no = written["_seq_no"].as_i64().unwrap_or_default();
    let response = client
        .index(IndexParts::IndexId(index, "67890"))
        .if_seq_no(new_seq_no)
        .if_primary_term(before.primary_term)
        .body(json!({ "balance": 70 }))
        .send()
        .await?;
    let old_term = Answer::of(response).await?;
    let term = written["_primary_term"].as_i64().unwrap_or_default();
    println!(
        "before: 12345 at _seq_no={} _primary_term={}",
        before.seq_no, before.primary_term
    );
    println!(
        "after close and open: GET 12345 still says _primary_term={}; a new write to 67890 gets _seq_no={} _primary_term={term}",
        after.primary_term, written["_seq_no"]
    );
    println!(
        "PUT /{index}/_doc/12345?if_seq_no={}&if_primary_term={} (the pair read before) -> {}",
        before.seq_no,
        before.primary_term,
        touched.summary()
    );
    println!(
        "PUT /{index}/_doc/67890?if_seq_no={new_seq_no}&if_primary_term={} (its _seq_no, the old term) -> {}",
        before.primary_term,
        old_term.summary()
    );
    claims.check(
        term > before.primary_term && after.primary_term == before.primary_term,
        format!(
            "one node, no failover: the reopened shard writes in a new term ({term}); documents written before keep theirs"
        ),
    );
    claims.check(
        touched.status == 200,
        "a pair read before the reopening still names 12345's last write: the condition holds",
    );
    claims.check(
        old_term.status == 409,
        "the right _seq_no with the old term does not name the write made in the new one: a 409",
    );
    Ok(())
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
