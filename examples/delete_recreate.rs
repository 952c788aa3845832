//! Chapter 11, part 2: deletes, with and without a condition, and `_version` and `_seq_no`
//! across a delete and a re-creation.
//!
//! A client reads account 12345 and decides to close it; a deposit lands; its delete on the
//! condition of its read is a 409, and after a fresh read it goes through. Then one account is
//! created, updated, deleted, deleted again and re-created: a delete is a write (it moves
//! `_version` on, even when there was nothing to delete) and the re-created account continues
//! the count. Once `index.gc_deletes` has passed since the delete, the shard treats the delete
//! as forgotten, with no refresh needed (the example turns refreshes off and counts them):
//! `_version` starts again at 1, while `_seq_no` never goes back, so an old condition never
//! matches.
//!
//! Run it: `cargo run --example delete_recreate`. You should see every request with its
//! answer, and one closing line.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use elasticsearch::http::response::Response;
use elasticsearch::indices::IndicesStatsParts;
use elasticsearch::{CreateParts, DeleteParts, Elasticsearch, UpdateParts};
use esbook::answer::Answer;
use esbook::doc::{self, Versioned};
use esbook::{Cluster, Needs, indices};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";
const OTHER_ACCOUNT: &str = "67890";
/// How long to wait after the delete, with `index.gc_deletes` at 0s: ten ticks
/// of the clock the shard compares the delete's time with, which moves every
/// 200 ms (`thread_pool.estimated_time_interval`).
const FORGET_WAIT: Duration = Duration::from_secs(2);
/// How many times to delete and re-create before giving up.
const TRIES: u32 = 4;

#[tokio::main]
async fn main() -> ExitCode {
    let usage = "usage: cargo run --example delete_recreate (no flags)";
    harness::run_example(usage, Needs::Core, |cluster| async move {
        delete_recreate(&cluster, INDEX).await
    })
    .await
}

// ANCHOR: delete
/// Deletes the account on the condition that it is still as `seen`.
async fn delete_if(
    client: &Elasticsearch,
    index: &str,
    seen: &Versioned,
) -> Result<Answer> {
    let response = client
        .delete(DeleteParts::IndexId(index, ACCOUNT))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .send()
        .await?;
    shown(response).await
}
// ANCHOR_END: delete

async fn delete_recreate(cluster: &Cluster, index: &str) -> Result<Claims> {
    let (client, mut claims) = (&cluster.client, Claims::new());
    let account = json!({ "owner": "A. Client", "balance": 1000 });
    println!("-- A conditional delete");
    doc::fresh_index(client, index).await?;
    doc::put(client, index, ACCOUNT, account.clone()).await?;
    // ANCHOR: close
    let seen = doc::read(client, index, ACCOUNT).await?; // decide to close it...
    let deposit = json!({ "owner": "A. Client", "balance": 1200 });
    doc::put(client, index, ACCOUNT, deposit).await?; // ...a deposit lands
    let stale = delete_if(client, index, &seen).await?;
    let current = doc::read(client, index, ACCOUNT).await?;
    let deleted = delete_if(client, index, &current).await?;
    // ANCHOR_END: close
    let statuses = (stale.status, deleted.status);
    claims.check(statuses == (409, 200), "stale: 409; read again: deleted");

    println!("\n-- _version and _seq_no across delete and re-create");
    let started = Instant::now();
    doc::fresh_index(client, index).await?;
    // No automatic refresh from here on. Changing `refresh_interval` makes the
    // shard refresh once, soon after (asynchronously): do it now, long before
    // the part that counts refreshes.
    let no_refresh = json!({ "refresh_interval": "-1" });
    indices::put_settings(client, index, no_refresh).await?;
    // ANCHOR: history
    let create = || client.create(CreateParts::IndexId(index, ACCOUNT));
    let delete = || client.delete(DeleteParts::IndexId(index, ACCOUNT));
    let update = client.update(UpdateParts::IndexId(index, ACCOUNT));
    let withdrawal = json!({ "doc": { "balance": 900 } });
    let steps = [
        shown(create().body(account.clone()).send().await?).await?,
        shown(update.body(withdrawal).send().await?).await?,
        shown(delete().send().await?).await?,
        shown(delete().send().await?).await?, // there is nothing left to delete
        shown(create().body(account.clone()).send().await?).await?,
    ];
    // ANCHOR_END: history
    let field =
        |f: &str| steps.iter().map(|s| s.body[f].clone()).collect::<Vec<_>>();
    let (versions, seq_nos) = (field("_version"), field("_seq_no"));
    let statuses: Vec<u16> = steps.iter().map(|s| s.status).collect();
    let rising = seq_nos.windows(2).all(|p| p[0].as_i64() < p[1].as_i64());
    claims.check(rising, "every step took a higher _seq_no");

    println!(
        "\n-- index.gc_deletes=0s, refresh_interval=-1: a delete is forgotten without a refresh"
    );
    indices::put_settings(client, index, json!({ "gc_deletes": "0s" })).await?;
    doc::put(client, index, OTHER_ACCOUNT, account.clone()).await?;
    // ANCHOR: old_condition
    // A client reads account 67890 and keeps the numbers...
    let original = doc::read(client, index, OTHER_ACCOUNT).await?;
    let (v, s, t) = (original.version, original.seq_no, original.primary_term);
    println!(
        "account {OTHER_ACCOUNT} as read: _version {v} _seq_no {s} _primary_term {t}"
    );
    // ...meanwhile it is deleted, forgotten and created anew...
    let (recreated, waited, refreshed) =
        forget_and_recreate(client, index, &account).await?;
    let (waited, again) = (waited.as_secs(), recreated.summary());
    println!(
        "deleted; re-created {waited} s later, after {refreshed} refreshes: {again}"
    );
    // ...and the client writes on the condition it read.
    let old_condition = client
        .update(UpdateParts::IndexId(index, OTHER_ACCOUNT))
        .if_seq_no(s)
        .if_primary_term(t)
        .body(json!({ "doc": { "balance": 0 } }))
        .send()
        .await?;
    let old_condition = Answer::of(old_condition).await?;
    println!(
        "the condition read before the delete: {}",
        old_condition.summary()
    );
    // ANCHOR_END: old_condition
    let fields = json!({
        "example": "partial_update", "strategy": "delete_recreate",
        "versions": versions, "seq_nos": seq_nos, "results": field("result"),
        "statuses": statuses, "recreated_after_gc_version": recreated.body["_version"],
        "refreshes_between": refreshed, "old_condition_status": old_condition.status,
    });
    let line = report::result(cluster, started.elapsed(), fields);
    for (key, value) in expected().as_object().into_iter().flatten() {
        claims.check(
            &line[key] == value,
            format!("{key} is {value}, not {}", line[key]),
        );
    }
    Ok(claims)
}

/// What the chapter says of the run; the tests hold the recorded run to it:
/// create, update, delete, delete of nothing, re-create; then, once
/// `index.gc_deletes` has passed and with no refresh between the delete and
/// the re-creation, `_version` 1 again and the old condition a 409.
fn expected() -> Value {
    json!({
        "versions": [1, 2, 3, 4, 5], "statuses": [201, 200, 200, 404, 201],
        "results": ["created", "updated", "deleted", "not_found", "created"],
        "recreated_after_gc_version": 1, "refreshes_between": 0,
        "old_condition_status": 409,
    })
}

/// Reads an answer and prints it after the request it answers.
async fn shown(response: Response) -> Result<Answer> {
    let url = response.url();
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let method = format!("{:?}", response.method()).to_uppercase();
    let request = format!("{method} {}{query}", url.path());
    let answer = Answer::of(response).await?;
    println!("{request:32} -> {}", answer.summary());
    Ok(answer)
}

// ANCHOR: forget
/// Deletes account 67890 and re-creates it once `index.gc_deletes` has passed,
/// with no refresh in between (the index's refresh is off, and the example
/// counts its refreshes, internal ones included). Returns the re-creation and
/// that count. If the server's clock had not moved on yet (a starved machine),
/// the account comes back at a higher `_version`; if the shard refreshed anyway
/// (a node refreshes a shard on its own to free memory or when it flushes it),
/// the attempt shows nothing. Either way, try again, waiting longer (bounded).
async fn forget_and_recreate(
    client: &Elasticsearch,
    index: &str,
    account: &Value,
) -> Result<(Answer, Duration, u64)> {
    let mut wait = FORGET_WAIT;
    for _ in 0..TRIES {
        let before = refreshes(client, index).await?;
        let response = client
            .delete(DeleteParts::IndexId(index, OTHER_ACCOUNT))
            .send()
            .await?;
        doc::expect_success(response, "deleting the account").await?;
        tokio::time::sleep(wait).await;
        let response = client
            .create(CreateParts::IndexId(index, OTHER_ACCOUNT))
            .body(account.clone())
            .send()
            .await?;
        let created = Answer::of(response).await?;
        let between = refreshes(client, index).await?.saturating_sub(before);
        if created.body["_version"] == 1 && between == 0 {
            return Ok((created, wait, between));
        }
        let why = if between > 0 {
            "the shard refreshed meanwhile"
        } else {
            "the delete was not forgotten yet"
        };
        eprintln!("{why}; trying again, waiting longer");
        wait *= 2;
    }
    anyhow::bail!(
        "in {TRIES} tries, the delete was never forgotten without a refresh in between"
    )
}
// ANCHOR_END: forget

/// How many times the index's primary shards have refreshed, internal refreshes
/// included (`GET /{index}/_stats/refresh`: `refresh.total`).
async fn refreshes(client: &Elasticsearch, index: &str) -> Result<u64> {
    let response = client
        .indices()
        .stats(IndicesStatsParts::IndexMetric(&[index], &["refresh"]))
        .send()
        .await?;
    let body = doc::expect_success(response, "reading the refresh count").await?;
    let total = &body["_all"]["primaries"]["refresh"]["total"];
    total
        .as_u64()
        .ok_or_else(|| anyhow!("no refresh count in {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded::{self, quoted};

    /// The recorded run is the one chapter 11 tells: `_version` and `_seq_no` across create,
    /// update, delete, delete of nothing and re-create; `_version` 1 again once forgotten.
    #[test]
    fn the_recorded_run_is_the_one_the_chapter_tells() {
        let history =
            recorded::result("delete_recreate", "strategy", "delete_recreate");
        assert_eq!(history["example"], "partial_update");
        assert_eq!(history["versions"], json!([1, 2, 3, 4, 5]));
        assert_eq!(history["seq_nos"], json!([0, 1, 2, 3, 4]));
        assert_eq!(history["recreated_after_gc_version"], 1);
        assert_eq!(
            history["refreshes_between"], 0,
            "forgotten without a refresh"
        );
        assert_eq!(history["old_condition_status"], 409);
        for (key, value) in expected().as_object().unwrap() {
            assert_eq!(&history[key], value, "{key}");
        }
        let output = recorded::output("delete_recreate");
        assert!(output.contains("result=not_found"), "the delete of nothing");
        assert!(!output.contains("RESULT") && !output.contains("claim holds"));
    }

    /// Every number chapter 11 quotes from this run is the recorded one.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch11-00-partial-updates-and-deletes.md");
        let output = recorded::output("delete_recreate");
        let run =
            recorded::result("delete_recreate", "strategy", "delete_recreate");
        let said = |pattern| quoted(&chapter, pattern);
        let versions = &run["versions"];
        let became = said(r"`_version` (\d+) becomes \d+");
        assert_eq!(became, versions[1].to_string());
        assert_eq!(
            said(r"`_version` \d+ becomes (\d+)"),
            versions[2].to_string()
        );
        assert_eq!(
            said(r"moves `_version` on \((\d+) to \d+\)"),
            versions[2].to_string()
        );
        assert_eq!(
            said(r"moves `_version` on \(\d+ to (\d+)\)"),
            versions[3].to_string()
        );
        assert_eq!(
            said(r"from the tombstone, at \*\*(\d+)\*\*"),
            versions[4].to_string()
        );
        let again = said(r"The re-created account is at `_version` \*\*(\d+)\*\*");
        assert_eq!(again, run["recreated_after_gc_version"].to_string());
        let read = said(r"reads once at\s+`_version` (\d+)");
        assert!(
            output.contains(&format!("as read: _version {read} ")),
            "{read}"
        );
        let old = said(r"the client actually holds is a \*\*(\d+)\*\*");
        assert_eq!(old, run["old_condition_status"].to_string());
        let stale = said(r"on the condition of its read, is a \*\*(\d+)\*\*");
        assert!(
            output.contains(&format!("-> HTTP {stale} version_conflict")),
            "{stale}"
        );
        let wait = said(r"deleted and, (\d+) seconds later, created anew");
        assert_eq!(wait, FORGET_WAIT.as_secs().to_string());
        assert!(
            output.contains(&format!("re-created {wait} s later")),
            "{wait}"
        );
        assert_eq!(
            said(r"re-created the account (\d+) s after the delete"),
            wait
        );
        let refreshes = said(r"after\s+\*\*(\d+)\*\* refreshes");
        assert_eq!(refreshes, run["refreshes_between"].to_string());
        assert!(output.contains(&format!("after {refreshes} refreshes")));
        // Ten ticks of the server's 200 ms clock; four tries.
        assert_eq!(said(r"The program waits (\w+) ticks"), "ten");
        assert_eq!(FORGET_WAIT, Duration::from_millis(10 * 200));
        assert_eq!(said(r"\((\w+) tries\s+at most\)"), "four");
        assert_eq!(TRIES, 4);
        let gone = said(r"already gone answers \*\*HTTP (\d+)\*\*");
        assert!(
            output.contains(&format!("HTTP {gone} result=not_found")),
            "{gone}"
        );
    }
}
