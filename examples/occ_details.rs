//! Chapter 5's reference: details of Elasticsearch's OCC, each shown by a run.
//!
//! A GET is realtime, a search is not; `retry_on_conflict` cannot be combined with `if_seq_no`;
//! a search returns `_seq_no` and `_primary_term` only when asked; an update that changes
//! nothing (a noop) is not a write. (That reopening an index starts a new primary term is
//! `new_primary_term`'s.)
//!
//! Run it: `cargo run --example occ_details`. You should see one short section per detail,
//! the requests it sent and what came back. It exits non-zero if any detail does not hold.

use std::process::ExitCode;

use anyhow::Result;
use elasticsearch::{Elasticsearch, SearchParts, UpdateParts};
use esbook::answer::Answer;
use esbook::doc::{self, Versioned};
use esbook::{Cluster, Needs, indices};
use harness::report::Claims;
use serde_json::{Value, json};

const INDEX: &str = "bank";

// ANCHOR: realtime
/// Writes with refreshes turned off; a GET, then the same search before a refresh, after
/// it, and after it with `seq_no_primary_term`.
async fn realtime_get(es: &Elasticsearch, index: &str) -> Result<Vec<Value>> {
    indices::put_settings(es, index, json!({ "refresh_interval": "-1" })).await?;
    doc::put(es, index, "55555", json!({ "balance": 42 })).await?;
    let got = doc::read(es, index, "55555").await?;
    println!(
        "GET 55555 right after the write: balance={}",
        got.source["balance"]
    );
    let mut hits = vec![got.source];
    for (refresh, asked) in [(false, false), (true, false), (true, true)] {
        if refresh {
            indices::refresh(es, index).await?;
        }
        // ANCHOR: seq_no_primary_term
        let response = es
            .search(SearchParts::Index(&[index]))
            .seq_no_primary_term(asked)
            .body(json!({ "query": { "ids": { "values": ["55555"] } } }))
            .send()
            .await?;
        // ANCHOR_END: seq_no_primary_term
        let found = doc::expect_success(response, "searching").await?;
        let hit = found["hits"]["hits"].get(0).cloned().unwrap_or_default();
        let (s, t) = (&hit["_seq_no"], &hit["_primary_term"]);
        let n = &found["hits"]["total"]["value"];
        println!(
            "search, refreshed={refresh}, seq_no_primary_term={asked}: {n} hit(s)"
        );
        if !hit.is_null() {
            println!("  hit _seq_no={s} _primary_term={t}");
        }
        hits.push(hit);
    }
    Ok(hits)
}
// ANCHOR_END: realtime

// ANCHOR: retry_on_conflict
/// An update on a condition, with `retry_on_conflict`: refused before it runs.
async fn retry_a_condition(es: &Elasticsearch, index: &str) -> Result<Answer> {
    let seen = doc::read(es, index, "12345").await?;
    let response = es
        .update(UpdateParts::IndexId(index, "12345"))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .retry_on_conflict(3)
        .body(json!({ "doc": { "balance": 600 } }))
        .send()
        .await?;
    let refused = Answer::of(response).await?;
    let (s, t) = (seen.seq_no, seen.primary_term);
    println!(
        "POST /{index}/_update/12345?if_seq_no={s}&if_primary_term={t}&retry_on_conflict=3"
    );
    println!("  -> {}", refused.summary());
    Ok(refused)
}
// ANCHOR_END: retry_on_conflict

// ANCHOR: noop
/// A partial update that sets the balance the document already has.
async fn noop_update(
    es: &Elasticsearch,
    index: &str,
) -> Result<(Versioned, Answer)> {
    let before = doc::read(es, index, "67890").await?;
    let balance = &before.source["balance"];
    let response = es
        .update(UpdateParts::IndexId(index, "67890"))
        .body(json!({ "doc": { "balance": balance } }))
        .send()
        .await?;
    let noop = Answer::of(response).await?;
    println!(
        "67890 at _seq_no={} _version={}",
        before.seq_no, before.version
    );
    println!("POST /{index}/_update/67890 {{\"doc\":{{\"balance\":{balance}}}}}");
    println!("  -> {}", noop.summary());
    Ok((before, noop))
}
// ANCHOR_END: noop

/// Runs each detail in the order chapter 5's reference tells them, and checks it quietly.
async fn run_and_check(cluster: &Cluster, index: &str) -> Result<Claims> {
    let es = &cluster.client;
    doc::fresh_index(es, index).await?;
    doc::put(es, index, "12345", json!({ "balance": 1000 })).await?;
    doc::put(es, index, "67890", json!({ "balance": 50 })).await?;
    let mut claims = Claims::new();

    println!(
        "-- A GET is realtime; a search waits for a refresh, and for being asked"
    );
    let hits = realtime_get(es, index).await?;
    claims.check(hits[0]["balance"] == 42, "a GET sees the latest write");
    claims.check(
        hits[1].is_null(),
        "a search does not see it until a refresh",
    );
    claims.check(
        hits[2]["_id"] == "55555" && hits[2]["_seq_no"].is_null(),
        "a search hit has no _seq_no by default",
    );
    claims.check(
        hits[3]["_seq_no"].is_i64() && hits[3]["_primary_term"].is_i64(),
        "with seq_no_primary_term=true, each hit carries _seq_no and _primary_term",
    );

    println!("\n-- retry_on_conflict and if_seq_no do not mix");
    let refused = retry_a_condition(es, index).await?;
    let why = "compare and write operations can not be retried";
    claims.check(
        refused.status == 400 && refused.reason().contains(why),
        "retry_on_conflict with if_seq_no is an HTTP 400",
    );

    println!("\n-- _version counts writes: a noop update is not one");
    let (before, noop) = noop_update(es, index).await?;
    claims.check(
        noop.body["result"] == "noop"
            && (&noop.body["_version"], &noop.body["_seq_no"])
                == (&json!(before.version), &json!(before.seq_no)),
        "an update that changes nothing is a noop: _version and _seq_no stay",
    );

    Ok(claims)
}

const USAGE: &str = "usage: cargo run --example occ_details (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run::run_story(USAGE, Needs::Core, "occ_details", async |cluster| {
        run_and_check(cluster, INDEX).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use harness::recorded;

    /// The recorded run held every check, and shows what the reference says it shows.
    #[test]
    fn the_recorded_run_shows_each_detail() {
        let run = recorded::result("occ_details", "example", "occ_details");
        assert_eq!(run["held"], true);
        let output = recorded::output("occ_details");
        for words in [
            "GET 55555 right after the write: balance=42",
            "refreshed=false, seq_no_primary_term=false: 0 hit(s)",
            "compare and write operations can not be retried",
            "seq_no_primary_term=false: 1 hit(s)\n  hit _seq_no=null",
            "result=noop",
        ] {
            assert!(output.contains(words), "occ_details.txt lacks {words:?}");
        }
    }
}
