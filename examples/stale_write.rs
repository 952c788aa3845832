//! Chapter 6, part 1: two clients editing one document (the notebook's first experiment).
//!
//! A document `{"counter": 1}` is written and read back with its `_seq_no` and `_primary_term`.
//! Client A writes `{"counter": 2}` on the condition that the document is still at that
//! `_seq_no`/`_primary_term`: it is, and the write succeeds. Client B then writes
//! `{"counter": 3}` with the same, now stale, numbers and gets HTTP 409
//! `version_conflict_engine_exception`.
//!
//! Run it: `cargo run --example stale_write`
//!
//! It exits non-zero unless A's write succeeded, B's was a 409 version conflict, and the
//! counter holds A's value.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::IndexParts;
use esbook::doc::{self, Outcome};
use harness::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::{Value, json};

const INDEX: &str = "conc_demo";
const DOC_ID: &str = "1";

const USAGE: &str = "usage: cargo run --example stale_write (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        stale_write(&cluster, INDEX).await
    })
    .await
}

async fn stale_write(cluster: &Cluster, index: &str) -> Result<Claims> {
    let started = Instant::now();
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
    let a_status = a.status_code().as_u16();
    let a = doc::outcome(a).await?;

    // Client B writes with the same numbers, which A's write has made stale:
    // rejected.
    let b = client
        .index(IndexParts::IndexId(index, DOC_ID))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .body(json!({ "counter": 3 }))
        .send()
        .await?;
    let b_status = b.status_code().as_u16();
    let b = doc::outcome(b).await?;
    // ANCHOR_END: stale

    let mut claims = Claims::new();
    match &a {
        Outcome::Written(body) => {
            println!("Client A update result (HTTP {a_status}): {body}")
        }
        Outcome::Conflict(error) => {
            println!("Client A was rejected (HTTP {a_status}): {error}")
        }
    }
    claims.check(
        matches!(a, Outcome::Written(_)),
        "A's write with the current seq_no succeeded",
    );
    let conflict = match &b {
        Outcome::Conflict(error) => error.clone(),
        Outcome::Written(_) => Value::Null,
    };
    println!(
        "Client B (HTTP {b_status}) conflict: {}\n{}",
        conflict["type"],
        serde_json::to_string_pretty(&conflict)?
    );
    claims.check(
        b_status == 409 && conflict["type"] == "version_conflict_engine_exception",
        "B's write with the stale seq_no got HTTP 409 version_conflict_engine_exception",
    );
    let counter = doc::read(client, index, DOC_ID).await?.number("counter")?;
    println!("\nThe document holds counter={counter}\n");
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "stale_write",
            "strategy": "occ",
            "expected": 2,
            "final": counter,
            "acknowledged": usize::from(matches!(a, Outcome::Written(_))),
            "conflicts": usize::from(matches!(b, Outcome::Conflict(_))),
            "conflict_status": b_status,
            "conflict_type": conflict["type"],
        }),
    );
    claims.check(counter == 2, "the document holds A's counter=2, not B's 3");
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a real Elasticsearch, a write with a stale `if_seq_no` is an HTTP 409
    /// `version_conflict_engine_exception` and leaves the document as it was.
    #[tokio::test]
    async fn a_stale_if_seq_no_gets_409_version_conflict_engine_exception() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let claims = stale_write(&cluster, "test-stale-write")
            .await
            .expect("the experiment runs");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
