//! Chapter 6, part 1: two clients editing one document (the notebook's first experiment).
//!
//! A document `{"counter": 1}` is written and read back with its `_seq_no` and `_primary_term`.
//! Client A writes `{"counter": 2}` on the condition that the document is still at that
//! `_seq_no`/`_primary_term`; client B then writes `{"counter": 3}` with the same, now stale,
//! numbers.
//!
//! Run it: `cargo run --example stale_write`. You should see, as the notebook printed, A's write
//! answered `updated` at `_seq_no` 1, B's answered HTTP 409 with the whole
//! `version_conflict_engine_exception` error, and the document holding A's `counter=2`. It exits
//! non-zero unless that is what happened.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use elasticsearch::IndexParts;
use esbook::answer::Answer;
use esbook::doc;
use esbook::{Cluster, Needs};
use harness::report::{self, Claims};
use serde_json::json;

// ANCHOR: lesson
const INDEX: &str = "conc_demo";
const DOC_ID: &str = "1";

/// What the two writes were answered, and the counter they left.
struct Writes {
    a: Answer,
    b: Answer,
    counter: i64,
}

/// Reads the document once, then writes it twice on the numbers of that read.
async fn stale_write(cluster: &Cluster, index: &str) -> Result<Writes> {
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;
    doc::put(client, index, DOC_ID, json!({ "counter": 1 })).await?;
    println!("Inserted doc with counter=1");

    // ANCHOR: stale
    let seen = doc::read(client, index, DOC_ID).await?;
    println!(
        "Current seq_no: {} primary_term: {}",
        seen.seq_no, seen.primary_term
    );

    // Client A writes with the numbers it just read: accepted.
    let a = client
        .index(IndexParts::IndexId(index, DOC_ID))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .body(json!({ "counter": 2 }))
        .send()
        .await?;
    let a = Answer::of(a).await?;
    println!("Client A update result (HTTP {}): {}", a.status, a.body);

    // Client B writes with the same numbers, which A's write has made stale:
    // rejected.
    let b = client
        .index(IndexParts::IndexId(index, DOC_ID))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .body(json!({ "counter": 3 }))
        .send()
        .await?;
    let b = Answer::of(b).await?;
    println!("Client B conflict (HTTP {}): {}", b.status, b.error_type());
    println!("{:#}", b.body["error"]);
    // ANCHOR_END: stale

    let counter = doc::read(client, index, DOC_ID).await?.number("counter")?;
    println!("\nThe document holds counter={counter}");
    Ok(Writes { a, b, counter })
}
// ANCHOR_END: lesson

const USAGE: &str = "usage: cargo run --example stale_write (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let started = Instant::now();
        let run = stale_write(&cluster, INDEX).await?;
        Ok(check(&cluster, &run, started.elapsed()))
    })
    .await
}

/// The chapter's claims about the run, checked quietly, and its machine-readable result.
fn check(cluster: &Cluster, run: &Writes, elapsed: Duration) -> Claims {
    let a_written = (200..300).contains(&run.a.status);
    let b_conflict = run.b.status == 409
        && run.b.error_type() == "version_conflict_engine_exception";
    report::result(
        cluster,
        elapsed,
        json!({
            "example": "stale_write",
            "strategy": "occ",
            "expected": 2,
            "final": run.counter,
            "acknowledged": usize::from(a_written),
            "conflicts": usize::from(b_conflict),
            "conflict_status": run.b.status,
            "conflict_type": run.b.body["error"]["type"],
        }),
    );
    let mut claims = Claims::new();
    claims.check(a_written, "A's write with the current seq_no succeeded");
    claims.check(
        b_conflict,
        "B's write with the stale seq_no got HTTP 409 version_conflict_engine_exception",
    );
    claims.check(
        run.counter == 2,
        "the document holds A's counter=2, not B's 3",
    );
    claims
}

#[cfg(test)]
mod tests {
    use harness::recorded::{self, quoted};

    /// The recorded run: A's counter kept, B's write a 409 version conflict.
    #[test]
    fn the_recorded_run_kept_a_and_refused_b() {
        let run = recorded::result("stale_write", "strategy", "occ");
        assert_eq!(run["final"], 2);
        assert_eq!(run["conflict_status"], 409);
        assert_eq!(run["conflict_type"], "version_conflict_engine_exception");
    }

    /// Chapter 6.1 quotes the recorded run: the state read, what A's write made of it, the
    /// conflict's reason, and A's `_shards`.
    #[test]
    fn chapter_6_1_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch06-01-stale-write.md");
        let output = recorded::output("stale_write");
        assert_eq!(
            quoted(&chapter, r"state \(`_seq_no` (\d+), `_primary_term` \d+\)"),
            quoted(&output, r"Current seq_no: (\d+)")
        );
        assert_eq!(
            quoted(&chapter, r"state \(`_seq_no` \d+, `_primary_term` (\d+)\)"),
            quoted(&output, r"primary_term: (\d+)")
        );
        assert_eq!(
            quoted(&chapter, r"now at `_seq_no` (\d+), `_version` \d+"),
            quoted(&output, r#"Client A .*"_seq_no":(\d+)"#)
        );
        assert_eq!(
            quoted(&chapter, r"now at `_seq_no` \d+, `_version` (\d+)"),
            quoted(&output, r#"Client A .*"_version":(\d+)"#)
        );
        let reason = quoted(&chapter, r"\*(required seqNo [^*]+)\*");
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(output.contains(&reason), "the output has no {reason:?}");
        let shards = quoted(&chapter, r#"says `("_shards":\{[^`]+\})`"#);
        assert!(output.contains(&shards), "the output has no {shards}");
        assert!(output.contains("The document holds counter=2"));
    }
}
