//! Chapter 14: update-by-query and delete-by-query meet concurrent writers.
//!
//! 100 open orders. A job marks every order that has not been reminded yet as reminded
//! (`_update_by_query` with a Painless script), while a customer edits three orders the job has
//! not reached yet. Update-by-query reads a snapshot of the matching documents when it starts
//! and writes each one back on the condition that it has not changed since (the snapshot's
//! `_seq_no`/`_primary_term`), so the customer's edits make those three writes version
//! conflicts.
//!
//! So that this happens every run and not by luck, the job is slowed down: batches of 10
//! (`scroll_size=10`) at 20 documents per second (`requests_per_second=20`, half a second per
//! batch), and the customer edits orders 50 to 52 after the job has read its first batch and
//! while it is still far from them (the example checks both from the task's status, and fails
//! if the edits came too late).
//!
//! 1. Default (`conflicts=abort`): the job stops after the batch with the conflicts. What it
//!    had updated stays updated; everything after is not; `failures` lists the conflicts.
//! 2. `conflicts=proceed`: the job counts the conflicts (`version_conflicts`), skips those
//!    orders, and finishes with `failures` empty. Three orders are silently not done.
//! 3. Finishing safely: rerun with a query that excludes what is done, until a pass meets no
//!    conflict (bounded, with backoff), while the customer edits once more. Every order is
//!    reminded and every customer edit is kept.
//! 4. Delete-by-query: delete the cancelled orders while the customer reactivates two of them;
//!    those two are version conflicts and survive, which is exactly right.
//!
//! Update-by-query lives in the `reindex` module, and its script needs `lang-painless`; the
//! release's build on Maven Central has neither, so on the local path this runs on the newest
//! Elasticsearch that has them there (a 7.x). The output names the server.
//!
//! Run it: `cargo run --example update_by_query` (takes about 15 seconds: the job is slowed
//! down on purpose). It exits non-zero if any of the above does not hold.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use elasticsearch::http::Method;
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::params::Conflicts;
use elasticsearch::{
    BulkOperation, DeleteByQueryParts, Elasticsearch, IndexParts, SearchParts,
    UpdateByQueryParts,
};
use esbook::bulk;
use esbook::doc;
use esbook::indices;
use esbook::retry::until_written;
use harness::report::{self, Claims};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs};
use serde_json::{Value, json};

const INDEX: &str = "orders";
const ORDERS: usize = 100;
/// Documents per batch, and the pace: half a second per batch.
const SCROLL_SIZE: i64 = 10;
const REQUESTS_PER_SECOND: i64 = 20;
/// The orders the customer edits during the first jobs: in the job's sixth batch.
const EDITED: [usize; 3] = [50, 51, 52];
/// How long any one job may take before the example gives up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

const USAGE: &str = "usage: cargo run --example update_by_query (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Scripting, |cluster| async move {
        let mut claims = Claims::new();
        abort_by_default(&cluster, INDEX, &mut claims).await?;
        proceed(&cluster, &format!("{INDEX}-proceed"), &mut claims).await?;
        finish(&cluster, INDEX, &mut claims).await?;
        delete_by_query(&cluster, INDEX, &mut claims).await?;
        Ok(claims)
    })
    .await
}

fn order(i: usize) -> String {
    format!("order-{i:03}")
}

/// A fresh `index` with 100 open orders, `order-000` .. `order-099`, in that order (one bulk,
/// so a job's scroll meets them in that order), refreshed so that a search sees them.
async fn seed(
    client: &Elasticsearch,
    index: &str,
    cancelled_every: usize,
) -> Result<()> {
    doc::fresh_index(client, index).await?;
    let operations: Vec<BulkOperation<Value>> = (0..ORDERS)
        .map(|i| {
            let status = if cancelled_every > 0 && i % cancelled_every == 0 {
                "cancelled"
            } else {
                "open"
            };
            BulkOperation::index(
                json!({ "qty": 1, "status": status, "reminded": false }),
            )
            .id(order(i))
            .into()
        })
        .collect();
    let answer = bulk::send(client, index, operations).await?;
    if answer.errors {
        bail!("seeding {index} failed: {}", answer.body);
    }
    indices::refresh(client, index).await
}

/// How many documents match `query`, after a refresh (a search sees only refreshed writes).
async fn count(client: &Elasticsearch, index: &str, query: Value) -> Result<u64> {
    indices::refresh(client, index).await?;
    indices::count(client, index, query).await
}

fn not_reminded() -> Value {
    json!({ "term": { "reminded": false } })
}

/// The customer: changes an order with an OCC write of its own, retried by chapter 6's bounded
/// loop, so its edit is never lost either. `change` is applied to the order's current source.
async fn customer_edits(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    change: Value,
) -> Result<()> {
    let backoff = Backoff::default();
    let tally = until_written(backoff, || async {
        let seen = doc::read(client, index, id).await?;
        let mut source = seen.source.clone();
        for (field, value) in change.as_object().into_iter().flatten() {
            source[field] = value.clone();
        }
        let response = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(source)
            .send()
            .await?;
        // A conflict: the job wrote this order between our read and our write.
        doc::outcome(response).await
    })
    .await?;
    if tally.failed > 0 {
        bail!(
            "the customer could not edit {id} in {} tries",
            backoff.max_attempts
        );
    }
    Ok(())
}

/// The document, other than `except`, that a job over `query` will reach last, and its
/// position (0-based): a by-query job's scroll is sorted by `_doc`, the index's internal
/// order.
async fn last_in_job_order(
    client: &Elasticsearch,
    index: &str,
    query: Value,
    except: &[String],
) -> Result<(String, u64)> {
    indices::refresh(client, index).await?;
    let response = client
        .search(SearchParts::Index(&[index]))
        .body(json!({ "query": query, "sort": ["_doc"], "size": ORDERS, "_source": false }))
        .send()
        .await?;
    let body = doc::expect_success(response, &format!("searching {index}")).await?;
    let ids: Vec<String> = body["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|hit| hit["_id"].as_str().map(str::to_string))
        .collect();
    ids.iter()
        .enumerate()
        .rev()
        .find(|(_, id)| !except.contains(id))
        .map(|(position, id)| (id.clone(), position as u64))
        .ok_or_else(|| anyhow!("nothing in {index} matches {query}"))
}

/// What a by-query job reported when it finished.
#[derive(Debug, Default, Clone)]
struct JobReport {
    total: u64,
    updated: u64,
    deleted: u64,
    batches: u64,
    version_conflicts: u64,
    /// `(id, cause type)` of each entry of `failures`.
    failures: Vec<(String, String)>,
}

impl JobReport {
    fn from(response: &Value) -> JobReport {
        let n = |field: &str| response[field].as_u64().unwrap_or(0);
        JobReport {
            total: n("total"),
            updated: n("updated"),
            deleted: n("deleted"),
            batches: n("batches"),
            version_conflicts: n("version_conflicts"),
            failures: response["failures"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    let id = f["id"].as_str().unwrap_or("").to_string();
                    let cause =
                        f["cause"]["type"].as_str().unwrap_or("").to_string();
                    (id, cause)
                })
                .collect(),
        }
    }

    fn show(&self, what: &str) {
        println!(
            "{what}: total={} updated={} deleted={} batches={} version_conflicts={} \
             failures={}",
            self.total,
            self.updated,
            self.deleted,
            self.batches,
            self.version_conflicts,
            self.failures.len()
        );
        for (id, cause) in &self.failures {
            println!("  failure: {id}: {cause}");
        }
    }
}

/// The customer's part in a job: which orders it edits, how, and where the job must not yet
/// be when it does (the position of the first edited document among those the job matches).
struct Meanwhile<'a> {
    edits: &'a [String],
    change: Value,
    position: u64,
}

/// Waits for task `task` to finish (bounded), making `meanwhile`'s edits once the job has
/// read its first batch, and returns the job's report.
async fn follow(
    client: &Elasticsearch,
    index: &str,
    task: &str,
    mut meanwhile: Option<Meanwhile<'_>>,
) -> Result<JobReport> {
    let started = Instant::now();
    let mut last_said = Instant::now();
    loop {
        let status = task_status(client, task).await?;
        if status["completed"] == true {
            if let Some(error) = status.get("error") {
                bail!("the job {task} failed: {error}");
            }
            if meanwhile.is_some() {
                bail!(
                    "the job {task} finished before the customer could edit anything"
                );
            }
            return Ok(JobReport::from(&status["response"]));
        }
        let progress = &status["task"]["status"];
        let done = processed(progress);
        if let Some(m) = &meanwhile
            && progress["batches"].as_u64().unwrap_or(0) >= 1
        {
            // The job has read its first batch: its snapshot was taken before these edits.
            for id in m.edits {
                customer_edits(client, index, id, m.change.clone()).await?;
            }
            // Still far from them: the batch being written now cannot hold them either.
            let after = task_status(client, task).await?;
            let progress = &after["task"]["status"];
            let reached = processed(progress);
            if after["completed"] == true
                || reached + SCROLL_SIZE as u64 > m.position
            {
                bail!(
                    "the customer's edits came too late: the job had processed {reached} \
                     documents, the first edited is number {} (is the machine very busy?)",
                    m.position + 1
                );
            }
            println!(
                "customer: edited {} while the job was at {reached} of {} documents",
                m.edits.join(", "),
                progress["total"]
            );
            meanwhile = None;
        }
        if started.elapsed() > JOB_TIMEOUT {
            bail!("the job {task} did not finish within {JOB_TIMEOUT:?}");
        }
        if last_said.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "[{index}] job {task}: {done} of {} documents",
                progress["total"]
            );
            last_said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many documents a running job has dealt with, from its task's `status`: `total` is what
/// it matched, not what it did.
fn processed(progress: &Value) -> u64 {
    ["updated", "deleted", "version_conflicts", "noops"]
        .iter()
        .map(|field| progress[*field].as_u64().unwrap_or(0))
        .sum()
}

/// `GET _tasks/<task>` (the typed call is behind the crate's experimental feature).
async fn task_status(client: &Elasticsearch, task: &str) -> Result<Value> {
    let response = client
        .send(
            Method::Get,
            &format!("/_tasks/{task}"),
            HeaderMap::new(),
            Option::<&()>::None,
            Option::<&()>::None,
            None,
        )
        .await?;
    doc::expect_success(response, &format!("reading task {task}")).await
}

/// Starts the slowed-down "remind every order not reminded yet" job on `index` and returns its
/// task id.
async fn start_reminders(
    client: &Elasticsearch,
    index: &str,
    conflicts: Conflicts,
) -> Result<String> {
    // ANCHOR: job
    let response = client
        .update_by_query(UpdateByQueryParts::Index(&[index]))
        .conflicts(conflicts) // Abort is the default
        .scroll_size(SCROLL_SIZE) // slowed down, so that the race is
        .requests_per_second(REQUESTS_PER_SECOND) // certain (see the text)
        .refresh(true) // the next search sees what it changed
        .wait_for_completion(false) // a task to follow
        .body(json!({
            "query": { "term": { "reminded": false } },
            "script": { "source": "ctx._source.reminded = true", "lang": "painless" }
        }))
        .send()
        .await?;
    // ANCHOR_END: job
    let body =
        doc::expect_success(response, "starting the update-by-query").await?;
    body["task"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no task in {body}"))
}

fn edited() -> Vec<String> {
    EDITED.iter().map(|&i| order(i)).collect()
}

/// The qty the customer set on each edited order (5) must be there, with everything else.
async fn customer_edits_kept(
    client: &Elasticsearch,
    index: &str,
    ids: &[String],
) -> Result<bool> {
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let seen = bulk::read_all(client, index, &refs).await?;
    Ok(seen.values().all(|d| d.source["qty"] == 5))
}

/// Parts 1 and 2: 100 fresh orders, the job started with `conflicts`, and the customer's three
/// edits while it runs. The job's report, and how many orders it reminded.
async fn remind_while_customer_edits(
    client: &Elasticsearch,
    index: &str,
    conflicts: Conflicts,
) -> Result<(JobReport, u64)> {
    seed(client, index, 0).await?;
    let task = start_reminders(client, index, conflicts).await?;
    let edits = edited();
    let meanwhile = Meanwhile {
        edits: &edits,
        change: json!({ "qty": 5 }),
        position: EDITED[0] as u64,
    };
    let report = follow(client, index, &task, Some(meanwhile)).await?;
    report.show("the job's answer");
    let reminded =
        count(client, index, json!({ "term": { "reminded": true } })).await?;
    Ok((report, reminded))
}

/// Part 1: the default, `conflicts=abort`.
async fn abort_by_default(
    cluster: &Cluster,
    index: &str,
    claims: &mut Claims,
) -> Result<JobReport> {
    let started = Instant::now();
    let client = &cluster.client;
    println!(
        "== 1. update-by-query, default conflicts=abort, while a customer edits 3 orders"
    );
    let (report, reminded) =
        remind_while_customer_edits(client, index, Conflicts::Abort).await?;
    let untouched_after = count(
        client,
        index,
        json!({ "bool": { "filter": [
            { "term": { "reminded": false } },
            { "range": { "qty": { "lte": 1 } } }
        ] } }),
    )
    .await?;
    println!(
        "after it: {reminded} orders reminded, {untouched_after} neither reminded nor edited"
    );
    let edits = edited();
    let kept = customer_edits_kept(client, index, &edits).await?;
    let failed_ids: Vec<&str> =
        report.failures.iter().map(|(id, _)| id.as_str()).collect();
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "update_by_query",
            "part": "abort",
            "orders": ORDERS,
            "total": report.total,
            "updated": report.updated,
            "batches": report.batches,
            "version_conflicts": report.version_conflicts,
            "failures": report.failures.len(),
            "reminded": reminded,
            "not_reached": untouched_after,
            "customer_edits_kept": kept,
        }),
    );
    claims.check(
        report.version_conflicts == EDITED.len() as u64
            && failed_ids == edits.iter().map(String::as_str).collect::<Vec<_>>()
            && report
                .failures
                .iter()
                .all(|(_, cause)| cause == "version_conflict_engine_exception"),
        "abort: the 3 edited orders are version conflicts, listed in failures",
    );
    claims.check(
        report.updated < (ORDERS - EDITED.len()) as u64
            && report.batches < (ORDERS as u64).div_ceil(SCROLL_SIZE as u64)
            && untouched_after > 0,
        format!(
            "abort: the job stopped after the batch with the conflicts ({} batches); \
             {untouched_after} orders after it were never reached",
            report.batches
        ),
    );
    claims.check(
        reminded == report.updated,
        format!(
            "abort: what it had updated stays updated ({reminded} orders reminded): no rollback"
        ),
    );
    claims.check(
        kept,
        "abort: the customer's edits are intact: the conflict kept the job's stale copy out",
    );
    claims.check(
        report.total == ORDERS as u64 && report.updated + report.version_conflicts < report.total,
        format!(
            "abort: \"total\" is {} (the documents the job matched), not the {} it processed",
            report.total,
            report.updated + report.version_conflicts
        ),
    );
    println!();
    Ok(report)
}

/// Part 2: `conflicts=proceed`.
async fn proceed(
    cluster: &Cluster,
    index: &str,
    claims: &mut Claims,
) -> Result<JobReport> {
    let started = Instant::now();
    let client = &cluster.client;
    println!("== 2. the same with conflicts=proceed");
    let (report, reminded) =
        remind_while_customer_edits(client, index, Conflicts::Proceed).await?;
    let left = count(client, index, not_reminded()).await?;
    println!("after it: {reminded} orders reminded, {left} not");
    let kept = customer_edits_kept(client, index, &edited()).await?;
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "update_by_query",
            "part": "proceed",
            "orders": ORDERS,
            "total": report.total,
            "updated": report.updated,
            "batches": report.batches,
            "version_conflicts": report.version_conflicts,
            "failures": report.failures.len(),
            "reminded": reminded,
            "left": left,
            "customer_edits_kept": kept,
        }),
    );
    claims.check(
        report.version_conflicts == EDITED.len() as u64
            && report.failures.is_empty()
            && report.updated == (ORDERS - EDITED.len()) as u64,
        "proceed: 3 version_conflicts counted, failures empty, every other order updated",
    );
    claims.check(
        left == EDITED.len() as u64 && kept,
        "proceed: the 3 edited orders were skipped: not reminded, the customer's edits kept",
    );
    println!();
    Ok(report)
}

/// Part 3: finish the aborted job safely: rerun on what is not done yet, until a pass meets no
/// conflict.
async fn finish(cluster: &Cluster, index: &str, claims: &mut Claims) -> Result<()> {
    let started = Instant::now();
    let client = &cluster.client;
    let left_before = count(client, index, not_reminded()).await?;
    println!("== 3. finishing part 1's job: {left_before} orders left");
    let backoff = Backoff {
        max_attempts: 10,
        ..Backoff::default()
    };
    // The customer edits one more order: the one, among those not edited yet, that the job
    // will reach last (its scroll walks the index in its internal order, which earlier
    // writes have changed).
    let (last, position) =
        last_in_job_order(client, index, not_reminded(), &edited()).await?;
    let later = [last];
    let mut passes = Vec::new();
    // ANCHOR: finish
    let mut done = false;
    for pass in 1..=backoff.max_attempts {
        // Only what is not done yet: the query excludes the orders already reminded.
        let task = start_reminders(client, index, Conflicts::Proceed).await?;
        let meanwhile = (pass == 1).then(|| Meanwhile {
            edits: &later,
            change: json!({ "qty": 5 }),
            position,
        });
        let report = follow(client, index, &task, meanwhile).await?;
        report.show(&format!("pass {pass}"));
        passes.push(report.clone());
        if report.version_conflicts == 0 {
            done = true; // a pass that met no conflict: nothing was skipped
            break;
        }
        tokio::time::sleep(backoff.delay(pass)).await;
    }
    // ANCHOR_END: finish
    let left = count(client, index, not_reminded()).await?;
    let mut edits = edited();
    edits.extend(later.iter().cloned());
    let kept = customer_edits_kept(client, index, &edits).await?;
    println!(
        "after the reruns: {left} orders not reminded; customer edits kept: {kept}"
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "update_by_query",
            "part": "finish",
            "left_before": left_before,
            "passes": passes.len(),
            "updated_per_pass": passes.iter().map(|p| p.updated).collect::<Vec<_>>(),
            "conflicts_per_pass": passes.iter().map(|p| p.version_conflicts).collect::<Vec<_>>(),
            "left": left,
            "customer_edits_kept": kept,
        }),
    );
    claims.check(
        passes.first().is_some_and(|p| p.version_conflicts == 1),
        "finish: the first rerun met the customer's new edit as a conflict and skipped it",
    );
    claims.check(
        done && passes.iter().map(|p| p.updated).sum::<u64>() == left_before,
        format!(
            "finish: the reruns updated exactly the {left_before} orders left, in {} passes, \
             the last without conflicts",
            passes.len()
        ),
    );
    claims.check(
        left == 0 && kept,
        format!(
            "finish: all {ORDERS} orders are reminded, and all {} customer edits are intact",
            edits.len()
        ),
    );
    println!();
    Ok(())
}

/// Part 4: delete-by-query while the customer reactivates two cancelled orders.
async fn delete_by_query(
    cluster: &Cluster,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let started = Instant::now();
    let client = &cluster.client;
    // Every 5th order is cancelled: 20 of them; the customer reactivates two late ones.
    seed(client, index, 5).await?;
    let reactivated = [order(70), order(85)];
    println!(
        "== 4. delete-by-query of the 20 cancelled orders, while the customer reactivates {}",
        reactivated.join(" and ")
    );
    let mut reports = Vec::new();
    for pass in 1..=3 {
        // ANCHOR: delete
        let response = client
            .delete_by_query(DeleteByQueryParts::Index(&[index]))
            .conflicts(Conflicts::Proceed)
            .scroll_size(2)
            .requests_per_second(4)
            .refresh(true)
            .wait_for_completion(false)
            .body(json!({ "query": { "match": { "status": "cancelled" } } }))
            .send()
            .await?;
        // ANCHOR_END: delete
        let body =
            doc::expect_success(response, "starting the delete-by-query").await?;
        let task = body["task"].as_str().context("no task")?.to_string();
        let meanwhile = (pass == 1).then(|| Meanwhile {
            edits: &reactivated,
            change: json!({ "status": "open" }),
            position: 14, // order-070 is the 15th cancelled order
        });
        let report = follow(client, index, &task, meanwhile).await?;
        report.show(&format!("delete-by-query pass {pass}"));
        let conflicts = report.version_conflicts;
        reports.push(report);
        if conflicts == 0 {
            break;
        }
        tokio::time::sleep(Backoff::default().delay(pass)).await;
    }
    let cancelled =
        count(client, index, json!({ "match": { "status": "cancelled" } })).await?;
    let remaining = count(client, index, json!({ "match_all": {} })).await?;
    let refs: Vec<&str> = reactivated.iter().map(String::as_str).collect();
    let survivors = bulk::read_all(client, index, &refs).await?;
    let reopened = survivors.values().all(|d| d.source["status"] == "open");
    println!(
        "after it: {cancelled} cancelled orders, {remaining} orders in all; the reactivated \
         ones are there and open: {reopened}"
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "update_by_query",
            "part": "delete_by_query",
            "deleted_per_pass": reports.iter().map(|r| r.deleted).collect::<Vec<_>>(),
            "conflicts_per_pass": reports.iter().map(|r| r.version_conflicts).collect::<Vec<_>>(),
            "cancelled_left": cancelled,
            "orders_left": remaining,
            "reactivated_kept": reopened,
        }),
    );
    claims.check(
        reports.first().is_some_and(|r| r.version_conflicts == 2 && r.deleted == 18),
        "delete-by-query: the 2 reactivated orders were version conflicts, 18 deleted",
    );
    claims.check(
        reports.len() == 2 && reports[1].deleted == 0 && reports[1].version_conflicts == 0,
        "delete-by-query: the rerun found nothing more to delete: the reactivated orders no \
         longer match",
    );
    claims.check(
        cancelled == 0 && remaining == (ORDERS - 18) as u64 && reopened,
        "delete-by-query: no cancelled order left, the 2 reactivated ones kept and open",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cluster() -> Cluster {
        Cluster::connect(Needs::Scripting)
            .await
            .expect("a cluster with update-by-query")
    }

    /// By default the job stops at the batch with the conflicts, keeps what it did, and lists
    /// the conflicts in failures.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn by_default_update_by_query_aborts_and_keeps_what_it_did() {
        let mut claims = Claims::new();
        let report =
            abort_by_default(&cluster().await, "test-ubq-abort", &mut claims)
                .await
                .expect("the job runs");
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(report.failures.len(), EDITED.len());
    }

    /// With conflicts=proceed it counts the conflicts, skips those documents, and reports no
    /// failure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_proceed_it_counts_and_skips() {
        let mut claims = Claims::new();
        let report = proceed(&cluster().await, "test-ubq-proceed", &mut claims)
            .await
            .expect("the job runs");
        assert!(claims.all_hold(), "{claims:?}");
        assert!(report.failures.is_empty());
    }

    /// Rerunning on what is not done, until a pass meets no conflict, finishes the job and
    /// keeps every concurrent edit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reruns_finish_the_job_without_losing_edits() {
        let cluster = cluster().await;
        let mut claims = Claims::new();
        abort_by_default(&cluster, "test-ubq-finish", &mut claims)
            .await
            .expect("the first job runs");
        finish(&cluster, "test-ubq-finish", &mut claims)
            .await
            .expect("the reruns run");
        assert!(claims.all_hold(), "{claims:?}");
    }

    /// Delete-by-query skips the orders reactivated during it, and a rerun leaves them alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delete_by_query_spares_orders_changed_during_it() {
        let mut claims = Claims::new();
        delete_by_query(&cluster().await, "test-dbq", &mut claims)
            .await
            .expect("the job runs");
        assert!(claims.all_hold(), "{claims:?}");
    }

    /// The probe behind Needs::Scripting: the cluster it gives runs update-by-query.
    #[tokio::test]
    async fn the_scripting_cluster_runs_update_by_query() {
        let cluster = cluster().await;
        assert!(cluster.has_update_by_query().await.expect("the probe runs"));
    }

    /// On the local path, the release's build from Maven Central has no reindex module: the
    /// reason this chapter runs on the scripting server there. (Other paths run full
    /// distributions, which have it; there the probe must say so.)
    #[tokio::test]
    async fn the_release_build_on_the_local_path_lacks_update_by_query() {
        let core = Cluster::connect(Needs::Core).await.expect("a cluster");
        let has = core.has_update_by_query().await.expect("the probe runs");
        let local_release = core.source == esbook::Source::Local
            && core.version == provision::facts::RELEASE.version;
        if local_release {
            assert!(!has, "{core} answered an update-by-query");
        }
        let served = core.for_needs(Needs::Scripting).await.expect("a cluster");
        assert!(served.has_update_by_query().await.expect("the probe runs"));
    }
}
