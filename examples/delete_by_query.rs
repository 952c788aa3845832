//! Chapter 14, delete-by-query: delete every cancelled order while the customer reactivates
//! two of them.
//!
//! 100 orders, every fifth cancelled: 20. A `_delete_by_query` job deletes the cancelled ones,
//! slowed down (batches of 2, half a second each), and the customer sets two of them back to
//! `open` after the job took its snapshot and before it reaches them. The job deletes each
//! order on the condition that it has not changed since its snapshot, so those two deletes are
//! version conflicts and the two orders survive. A rerun with the same query finds nothing:
//! they no longer match.
//!
//! Run it: `cargo run --example delete_by_query` (about 10 seconds). You should see 18 orders
//! deleted and 2 conflicts, then a pass with nothing to do, and 82 orders left, none cancelled.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::params::Conflicts;
use elasticsearch::{DeleteByQueryParts, Elasticsearch};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs, doc};
use harness::by_query::{self, JobReport, Meanwhile, ORDERS, count, order};
use harness::{Claims, report};
use serde_json::json;

const INDEX: &str = "orders";

// ANCHOR: delete
/// What the passes did, and what they left.
struct Deleted {
    passes: Vec<JobReport>,
    cancelled: u64,
    orders: u64,
    kept: bool,
}

/// Deletes the cancelled orders, rerunning until a pass meets no conflict (bounded), while the
/// customer reactivates two of them during the first pass.
async fn delete_cancelled(client: &Elasticsearch, index: &str) -> Result<Deleted> {
    by_query::seed(client, index, 5).await?; // every 5th order is cancelled: 20 of them
    let reactivated = [order(70), order(85)];
    let (first, second) = (&reactivated[0], &reactivated[1]);
    println!(
        "== delete-by-query of the 20 cancelled orders, while the customer reactivates {first} and {second}"
    );
    let backoff = Backoff {
        max_attempts: 3,
        ..Backoff::default()
    };
    let mut passes: Vec<JobReport> = Vec::new();
    for pass in 1..=backoff.max_attempts {
        let response = client
            .delete_by_query(DeleteByQueryParts::Index(&[index]))
            .conflicts(Conflicts::Proceed)
            .scroll_size(2) // slowed down, as in part 1
            .requests_per_second(4)
            .refresh(true)
            .wait_for_completion(false)
            .body(json!({ "query": { "match": { "status": "cancelled" } } }))
            .send()
            .await?;
        let body =
            doc::expect_success(response, "starting the delete-by-query").await?;
        let task = body["task"].as_str().context("no task in the answer")?;
        let meanwhile = (pass == 1).then(|| Meanwhile {
            edits: &reactivated,
            change: json!({ "status": "open" }),
            position: 14, // order-070 is the 15th cancelled order
        });
        let job = by_query::follow(client, index, task, meanwhile).await?;
        job.show(&format!("pass {pass}"));
        let done = job.version_conflicts == 0;
        passes.push(job);
        if done {
            break;
        }
        tokio::time::sleep(backoff.delay(pass)).await;
    }
    let cancelled =
        count(client, index, json!({ "match": { "status": "cancelled" } })).await?;
    let orders = count(client, index, json!({ "match_all": {} })).await?;
    let open = json!("open");
    let kept =
        by_query::all_have(client, index, &reactivated, "status", open).await?;
    println!(
        "after it: {cancelled} cancelled orders, {orders} orders in all; the reactivated ones \
         are there and open: {kept}"
    );
    Ok(Deleted {
        passes,
        cancelled,
        orders,
        kept,
    })
}
// ANCHOR_END: delete

const USAGE: &str = "usage: cargo run --example delete_by_query (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Scripting, |cluster| async move {
        let started = Instant::now();
        let deleted = delete_cancelled(&cluster.client, INDEX).await?;
        Ok(check(&cluster, &deleted, started.elapsed()))
    })
    .await
}

/// The chapter's claims, checked quietly, and the machine-readable result.
fn check(cluster: &Cluster, deleted: &Deleted, elapsed: Duration) -> Claims {
    let mut claims = Claims::new();
    let per_pass: Vec<u64> = deleted.passes.iter().map(|p| p.deleted).collect();
    let conflicts: Vec<u64> =
        deleted.passes.iter().map(|p| p.version_conflicts).collect();
    claims.check(
        per_pass.first() == Some(&18) && conflicts.first() == Some(&2),
        "delete-by-query: the 2 reactivated orders were version conflicts, 18 deleted",
    );
    claims.check(
        per_pass.get(1..) == Some(&[0][..]) && conflicts.get(1..) == Some(&[0][..]),
        "delete-by-query: the rerun found nothing more to delete",
    );
    claims.check(
        deleted.cancelled == 0 && deleted.orders == (ORDERS - 18) as u64 && deleted.kept,
        "delete-by-query: no cancelled order left, the 2 reactivated ones kept and open",
    );
    report::result(
        cluster,
        elapsed,
        json!({
            "example": "update_by_query",
            "part": "delete_by_query",
            "deleted_per_pass": per_pass,
            "conflicts_per_pass": conflicts,
            "cancelled_left": deleted.cancelled,
            "orders_left": deleted.orders,
            "reactivated_kept": deleted.kept,
        }),
    );
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    /// The recorded run: 18 deleted and 2 conflicts, then nothing, and 82 orders left.
    #[test]
    fn the_recorded_run_spares_the_reactivated_orders() {
        let run = recorded::result("delete_by_query", "part", "delete_by_query");
        assert_eq!(run["example"], "update_by_query");
        assert_eq!(run["deleted_per_pass"], json!([18, 0]));
        assert_eq!(run["conflicts_per_pass"], json!([2, 0]));
        assert_eq!(run["orders_left"], 82);
        assert_eq!(run["cancelled_left"], 0);
        assert_eq!(run["reactivated_kept"], true);
    }

    /// Every number chapter 14 quotes about delete-by-query is the run's.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch14-00-update-by-query.md");
        let chapter = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        let run = recorded::result("delete_by_query", "part", "delete_by_query");
        let quoted = |pattern: &str| recorded::quoted(&chapter, pattern);
        assert_eq!(
            quoted(r"first pass deleted (\d+) and"),
            run["deleted_per_pass"][0].to_string()
        );
        assert_eq!(
            quoted(r"deleted \d+ and met (\d+) conflicts"),
            run["conflicts_per_pass"][0].to_string()
        );
        assert_eq!(
            quoted(r"(\d+) orders remain, none cancelled"),
            run["orders_left"].to_string()
        );
    }
}
