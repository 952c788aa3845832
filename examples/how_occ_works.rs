//! Chapter 5: how OCC works in Elasticsearch: the three numbers, the article's conditional
//! request, and why not `_version`.
//!
//! Three writes to a one-shard index show that `_seq_no` counts the writes to the *shard* and
//! `_version` the writes to one *document*. The article's request,
//! `PUT /bank/_doc/12345?if_seq_no=..&if_primary_term=..`, is sent twice with the numbers a read
//! returned: accepted, then a 409. The old `?version=N` check is refused;
//! `version_type=external` is another tool, and a check too.
//!
//! Run it: `cargo run --example how_occ_works`. You should see `_seq_no` 0, 1, 2 against
//! `_version` 1, 1, 2; HTTP 200 then HTTP 409 for the same request; HTTP 400 for `?version=`;
//! external versions 5 and 9 accepted, 5 again and 3 refused. It exits non-zero if any of these
//! does not hold. Chapter 5's reference details are `occ_details`'s and `new_primary_term`'s.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use elasticsearch::IndexParts;
use elasticsearch::params::VersionType;
use esbook::answer::Answer;
use esbook::doc;
use esbook::{Cluster, Needs};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "bank";

// ANCHOR: lesson
/// The three numbers, the article's request sent twice, and `?version=` refused.
async fn how_occ_works(cluster: &Cluster, index: &str) -> Result<Seen> {
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;

    println!("-- _seq_no is per shard, _version is per document");
    // ANCHOR: counters
    let first =
        doc::put(client, index, "12345", json!({ "balance": 1000 })).await?;
    let other = doc::put(client, index, "67890", json!({ "balance": 50 })).await?;
    let second =
        doc::put(client, index, "12345", json!({ "balance": 900 })).await?;
    // ANCHOR_END: counters
    let writes = [first, other, second];
    for (what, body) in ["12345 created", "67890 created", "12345 updated"]
        .iter()
        .zip(&writes)
    {
        println!(
            "{what:14} _seq_no={} _primary_term={} _version={}",
            body["_seq_no"], body["_primary_term"], body["_version"]
        );
    }

    println!("\n-- The article's conditional PUT, twice");
    // ANCHOR: conditional_put
    let seen = doc::read(client, index, "12345").await?;
    let mut answers = Vec::new();
    for attempt in ["first ", "second"] {
        let response = client
            .index(IndexParts::IndexId(index, "12345"))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "balance": 800 }))
            .send()
            .await?;
        let answer = Answer::of(response).await?;
        println!(
            "{attempt} PUT /{index}/_doc/12345?if_seq_no={}&if_primary_term={} -> {}",
            seen.seq_no,
            seen.primary_term,
            answer.summary()
        );
        answers.push(answer);
    }
    // ANCHOR_END: conditional_put

    println!("\n-- ?version= (internal versioning) is not the way");
    // ANCHOR: internal_version
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
    // ANCHOR_END: internal_version

    println!("\n-- version_type=external: your number, and a check");
    let mut external = Vec::new();
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
        let said = answer.summary();
        println!(
            "PUT /{index}/_doc/24680?version={version}&version_type=external -> {said}"
        );
        external.push(answer);
    }
    Ok(Seen {
        writes,
        answers,
        refused,
        external,
    })
}
// ANCHOR_END: lesson

/// What the three writes, the two conditional PUTs, the `?version=` PUT and the four
/// external versions were answered.
struct Seen {
    writes: [Value; 3],
    answers: Vec<Answer>,
    refused: Answer,
    external: Vec<Answer>,
}

const USAGE: &str = "usage: cargo run --example how_occ_works (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let started = Instant::now();
        let seen = how_occ_works(&cluster, INDEX).await?;
        Ok(check(&cluster, &seen, started.elapsed()))
    })
    .await
}

/// The chapter's claims about the run, checked quietly, and its machine-readable result.
fn check(cluster: &Cluster, seen: &Seen, elapsed: Duration) -> Claims {
    let mut claims = Claims::new();
    let field = |name: &str| {
        seen.writes
            .iter()
            .map(|w| w[name].clone())
            .collect::<Vec<_>>()
    };
    claims.check(
        field("_seq_no") == [0, 1, 2],
        "_seq_no counts every write to the shard: 0, 1, 2 across two documents",
    );
    claims.check(
        field("_version") == [1, 1, 2],
        "_version counts the writes to each document: 1 and 2 for 12345, 1 for 67890",
    );
    let statuses: Vec<u16> = seen.answers.iter().map(|a| a.status).collect();
    claims.check(
        statuses == [200, 409],
        "the same conditional request succeeds once, then is a 409: its seq_no is no longer current",
    );
    claims.check(
        seen.refused.status == 400
            && seen.refused.reason().contains(
                "internal versioning can not be used for optimistic concurrency control",
            ),
        "internal ?version= is rejected (HTTP 400): use if_seq_no and if_primary_term",
    );
    let external = &seen.external;
    claims.check(
        external[0].body["_version"] == 5 && external[3].body["_version"] == 9,
        "with version_type=external, _version is the number sent (5, then 9), not a count",
    );
    claims.check(
        external[1].status == 409
            && external[2].status == 409
            && external[1].reason().contains("current version [5] is higher or equal"),
        "an external version that is not higher than the stored one is a 409: it is a check too",
    );
    report::result(
        cluster,
        elapsed,
        json!({
            "example": "how_occ_works",
            "claims": claims.checked(),
            "held": claims.all_hold(),
        }),
    );
    claims
}

#[cfg(test)]
mod tests {
    use harness::recorded::{self, quoted, quoted_all};

    /// The recorded run held every claim.
    #[test]
    fn the_recorded_run_held() {
        assert_eq!(
            recorded::result("how_occ_works", "example", "how_occ_works")["held"],
            true
        );
    }

    /// Chapter 5 quotes the recorded run: the `_seq_no`s and `_version`s of the three writes,
    /// the `_seq_no` of the document at `_version` 1 that was not the first write, and the
    /// condition the article's request was sent with.
    #[test]
    fn chapter_5_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch05-00-how-occ-works.md");
        let output = recorded::output("how_occ_works");
        let seq_nos =
            quoted_all(&output, r"\d+ (?:created|updated) +_seq_no=(\d+)");
        assert_eq!(
            quoted(&chapter, r"The\s+`_seq_no`s are (\d+, \d+, \d+)"),
            seq_nos.join(", ")
        );
        let versions = quoted_all(
            &output,
            r"\d+ (?:created|updated) +_seq_no=\d+ _primary_term=\d+ _version=(\d+)",
        );
        assert_eq!(
            quoted(&chapter, r"`_version`s are (\d+, \d+, \d+)"),
            versions.join(", ")
        );
        assert_eq!(
            quoted(&chapter, r"67890 is at `_version` 1 with\s+`_seq_no` (\d+)"),
            quoted(&output, r"67890 created +_seq_no=(\d+)")
        );
        let sent = r"first +PUT /bank/_doc/12345\?if_seq_no=(\d+)&if_primary_term=\d+ -> HTTP 200";
        assert_eq!(
            quoted(&chapter, r"sends `if_seq_no=(\d+)` the first time"),
            quoted(&output, sent)
        );
        assert!(output.contains("-> HTTP 409 version_conflict_engine_exception"));
        assert!(output.contains(
            "internal versioning can not be used for optimistic concurrency control"
        ));
    }
}
