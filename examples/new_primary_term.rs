//! Chapter 5's reference: `_primary_term` is a generation number, not a count of failovers.
//!
//! On a single node, with no replica to take over, the example closes the index and opens it
//! again. The reopened shard writes in a new primary term; documents written before keep the
//! term of the write that produced them, so a condition read before the reopening still holds
//! for them, while the right `_seq_no` with the old term names no write and is a 409.
//!
//! Run it: `cargo run --example new_primary_term`. You should see 12345 at `_primary_term` 1
//! before and after, a new write at a higher term, then HTTP 200 for the pair read before and
//! HTTP 409 for a new `_seq_no` with the old term. It exits non-zero if any of these does not
//! hold.

use std::process::ExitCode;

use anyhow::Result;
use elasticsearch::indices::{IndicesCloseParts, IndicesOpenParts};
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::answer::Answer;
use esbook::doc::{self, Versioned};
use esbook::{Cluster, Needs};
use harness::report::Claims;
use serde_json::{Value, json};

const INDEX: &str = "bank";

// ANCHOR: reopen
/// Closes and reopens the index, then writes on conditions that name the old term.
async fn reopen(
    es: &Elasticsearch,
    index: &str,
) -> Result<(Versioned, Versioned, Value)> {
    let before = doc::read(es, index, "12345").await?;
    let closed = es
        .indices()
        .close(IndicesCloseParts::Index(&[index]))
        .send()
        .await?;
    doc::expect_success(closed, "closing the index").await?;
    let opened = es
        .indices()
        .open(IndicesOpenParts::Index(&[index]))
        .wait_for_active_shards("1")
        .send()
        .await?;
    doc::expect_success(opened, "reopening the index").await?;
    let after = doc::read(es, index, "12345").await?;
    let new = doc::put(es, index, "67890", json!({ "balance": 60 })).await?;
    let (s, t) = (before.seq_no, before.primary_term);
    println!("before: 12345 at _seq_no={s} _primary_term={t}");
    println!(
        "after:  GET 12345 still says _primary_term={}",
        after.primary_term
    );
    let (s, t) = (&new["_seq_no"], &new["_primary_term"]);
    println!("after:  a new write to 67890 gets _seq_no={s} _primary_term={t}");
    Ok((before, after, new))
}

/// A write to `id` on the condition `if_seq_no`, `if_primary_term`.
async fn put_if(
    es: &Elasticsearch,
    index: &str,
    id: &str,
    s: i64,
    t: i64,
) -> Result<Answer> {
    let response = es
        .index(IndexParts::IndexId(index, id))
        .if_seq_no(s)
        .if_primary_term(t)
        .body(json!({ "balance": 500 }))
        .send()
        .await?;
    let answer = Answer::of(response).await?;
    let said = answer.summary();
    println!("PUT /{index}/_doc/{id}?if_seq_no={s}&if_primary_term={t} -> {said}");
    Ok(answer)
}
// ANCHOR_END: reopen

/// Writes two accounts, reopens the index, writes on the old term, and checks it quietly.
async fn run_and_check(cluster: &Cluster, index: &str) -> Result<Claims> {
    let es = &cluster.client;
    doc::fresh_index(es, index).await?;
    doc::put(es, index, "12345", json!({ "balance": 1000 })).await?;
    doc::put(es, index, "67890", json!({ "balance": 50 })).await?;
    let mut claims = Claims::new();
    println!("-- _primary_term is a generation: close and reopen the index");
    let (before, after, new) = reopen(es, index).await?;
    let (old, term) = (
        before.primary_term,
        new["_primary_term"].as_i64().unwrap_or(0),
    );
    let new_seq_no = new["_seq_no"].as_i64().unwrap_or(0);
    let kept = put_if(es, index, "12345", before.seq_no, old).await?;
    let stale = put_if(es, index, "67890", new_seq_no, old).await?;
    claims.check(
        term > old && after.primary_term == old,
        "the reopened shard writes in a new term; documents written before keep theirs",
    );
    claims.check(
        kept.status == 200,
        "a pair read before the reopening still holds",
    );
    claims.check(
        stale.status == 409,
        "the right _seq_no with the old term is a 409",
    );
    Ok(claims)
}

const USAGE: &str = "usage: cargo run --example new_primary_term (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run::run_story(
        USAGE,
        Needs::Core,
        "new_primary_term",
        async |cluster| run_and_check(cluster, INDEX).await,
    )
    .await
}

#[cfg(test)]
mod tests {
    use harness::recorded::{self, quoted};

    /// The recorded run held every check, and the reference quotes its primary terms.
    #[test]
    fn the_reference_quotes_the_recorded_run() {
        let run =
            recorded::result("new_primary_term", "example", "new_primary_term");
        assert_eq!(run["held"], true);
        let chapter = recorded::chapter("ch05-01-occ-details.md");
        let output = recorded::output("new_primary_term");
        assert_eq!(
            quoted(&chapter, r"the next write got `_primary_term` (\d+)"),
            quoted(
                &output,
                r"a new write to 67890 gets _seq_no=\d+ _primary_term=(\d+)"
            )
        );
        assert_eq!(
            quoted(&chapter, r"where everything\s+before had (\d+)"),
            quoted(&output, r"before: 12345 at _seq_no=\d+ _primary_term=(\d+)")
        );
        assert!(output.contains("HTTP 409 version_conflict_engine_exception"));
    }
}
