//! Chapter 14, part 5: an update-by-query job as a task: sliced, rethrottled, cancelled.
//!
//! 1: the reminders job of `update_by_query`, cut into 2 slices (two sub-tasks, each on its
//! own part of the 100 orders), default `conflicts=abort`, while the customer edits one order
//! of slice 0. Slice 0 stops at the batch with the conflict; slice 1 runs to its end; the job
//! answers once both are over, with each slice's counters; a rerun of the query finishes
//! what is left. 2: the same job throttled to a crawl (1 request per second, a batch of 10
//! every 20 seconds in each slice), sped up with `_rethrottle`, then stopped with
//! `_tasks/<id>/_cancel`; what it did stays done.
//!
//! Run it: `cargo run --example by_query_tasks` (about 30 seconds). You should see slice 0 stop
//! after 30 orders and slice 1 finish, the slices' rate go from 0.5 to 5 requests per second,
//! and the job end `canceled`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use elasticsearch::http::{Method, headers::HeaderMap};
use elasticsearch::params::{Conflicts, Slices};
use elasticsearch::{
    Elasticsearch, UpdateByQueryParts, UpdateByQueryRethrottleParts,
};
use esbook::{Cluster, Needs, doc};
use harness::by_query::{
    self, InSlice, JobReport, Meanwhile, ORDERS, count, follow_sliced,
    running_slices, task_status, wait_for_slices,
};
use harness::{Claims, report};
use serde_json::{Value, json};

/// Two slices, batches of 10 documents.
const SLICES: usize = 2;
const SCROLL_SIZE: i64 = 10;
/// Part 1's pace: 4 requests per second for the job, 2 for each slice, a batch every 5 seconds.
const PART1_RATE: i64 = 4;
/// Where, among slice 0's orders, the order the customer edits is: in its third batch.
const EDITED_POSITION: usize = 25;
/// Part 2's pace, and the rate `_rethrottle` sets.
const CRAWL: i64 = 1;
const FASTER: i64 = 10;
/// How long part 2 waits for any one thing before it gives up.
const WAIT: Duration = Duration::from_secs(60);

fn not_reminded() -> Value {
    json!({ "term": { "reminded": false } })
}

// ANCHOR: sliced
/// Starts "remind every order not reminded yet" on `index` as a task, in `SLICES` slices,
/// throttled to `requests_per_second` for the whole job.
async fn start_sliced(
    client: &Elasticsearch,
    index: &str,
    requests_per_second: i64,
) -> Result<String> {
    let response = client
        .update_by_query(UpdateByQueryParts::Index(&[index]))
        .slices(Slices::Count(SLICES as i32)) // a sub-task per slice
        .scroll_size(SCROLL_SIZE)
        .requests_per_second(requests_per_second) // shared by the slices
        .refresh(true)
        .wait_for_completion(false) // conflicts: the default, abort
        .body(json!({
            "query": { "term": { "reminded": false } },
            "script": { "source": "ctx._source.reminded = true", "lang": "painless" }
        }))
        .send()
        .await?;
    let body = doc::expect_success(response, "starting the sliced job").await?;
    let task = body["task"].as_str().context("no task in the answer")?;
    Ok(task.to_string())
}
// ANCHOR_END: sliced

// ANCHOR: control
/// `POST _update_by_query/<task>/_rethrottle?requests_per_second=N`: the job's new rate,
/// which the server shares among the slices still running. Answers the job's status.
async fn rethrottle(
    client: &Elasticsearch,
    task: &str,
    requests_per_second: i64,
) -> Result<Value> {
    let response = client
        .update_by_query_rethrottle(UpdateByQueryRethrottleParts::TaskId(task))
        .requests_per_second(requests_per_second)
        .send()
        .await?;
    let body = doc::expect_success(response, "rethrottling the job").await?;
    let tasks = body["nodes"].as_object().into_iter().flatten();
    let mut tasks = tasks.filter_map(|(_, node)| node["tasks"].get(task));
    tasks
        .next()
        .cloned()
        .context("the rethrottle's answer does not name the job")
}

/// `POST _tasks/<task>/_cancel` (the typed call is behind the client's experimental feature):
/// the job, and with it every slice, stops at its next step.
async fn cancel(client: &Elasticsearch, task: &str) -> Result<Value> {
    let path = format!("/_tasks/{task}/_cancel");
    let none = Option::<&()>::None;
    let response = client
        .send(Method::Post, &path, HeaderMap::new(), none, none, None)
        .await?;
    doc::expect_success(response, "cancelling the job").await
}
// ANCHOR_END: control

/// Part 1's run: which order of which slice the customer edited, and what the job did.
struct SlicedAbort {
    sizes: Vec<usize>,
    edited: String,
    run: by_query::SlicedRun,
    reminded: u64,
    kept: bool,
    rerun: JobReport,
    left: u64,
    kept_after: bool,
}

/// Part 1: the sliced job while the customer edits one order of slice 0.
async fn sliced_with_conflict(
    client: &Elasticsearch,
    index: &str,
) -> Result<SlicedAbort> {
    by_query::seed(client, index, 0).await?;
    let mut members = Vec::new();
    for slice in 0..SLICES {
        members.push(
            by_query::slice_members(client, index, not_reminded(), slice, SLICES)
                .await?,
        );
    }
    let sizes: Vec<usize> = members.iter().map(Vec::len).collect();
    if sizes[0] <= EDITED_POSITION + SCROLL_SIZE as usize {
        bail!(
            "slice 0 holds only {} orders: too few for this run",
            sizes[0]
        );
    }
    let edited = members[0][EDITED_POSITION].clone();
    println!(
        "slice 0 holds {} orders, slice 1 {}; the customer edits {edited}, number {} of slice 0",
        sizes[0],
        sizes[1],
        EDITED_POSITION + 1
    );
    let task = start_sliced(client, index, PART1_RATE).await?;
    let edits = std::slice::from_ref(&edited);
    let customer = InSlice {
        edit: Meanwhile::new(edits, json!({ "qty": 5 }), EDITED_POSITION as u64),
        slice: 0,
    };
    let run = follow_sliced(client, index, &task, SLICES, customer).await?;
    let now = &run.meanwhile;
    let what = format!(
        "while slice 1 still ran, the job's status: updated={} version_conflicts={}, by slice",
        now.updated, now.version_conflicts
    );
    show_slices(&what, now);
    run.job.show("the job's answer");
    show_slices("  by slice", &run.job);
    let reminded = ORDERS as u64 - count(client, index, not_reminded()).await?;
    let kept = by_query::all_have(client, index, edits, "qty", json!(5)).await?;
    println!("after it: {reminded} orders reminded; customer edit kept: {kept}");
    // What is left is finished as in `update_by_query`'s part 3: rerun the query.
    let rerun = rerun(client, index).await?;
    let left = count(client, index, not_reminded()).await?;
    let kept_after =
        by_query::all_have(client, index, edits, "qty", json!(5)).await?;
    rerun.show("a rerun of the query, no slices, conflicts=proceed");
    println!("after it: {left} orders left; customer edit kept: {kept_after}");
    Ok(SlicedAbort {
        sizes,
        edited,
        run,
        reminded,
        kept,
        rerun,
        left,
        kept_after,
    })
}

/// The job once more, unsliced, unthrottled, `conflicts=proceed`, waiting for its answer.
async fn rerun(client: &Elasticsearch, index: &str) -> Result<JobReport> {
    let response = client
        .update_by_query(UpdateByQueryParts::Index(&[index]))
        .conflicts(Conflicts::Proceed)
        .refresh(true)
        .body(json!({
            "query": { "term": { "reminded": false } },
            "script": { "source": "ctx._source.reminded = true", "lang": "painless" }
        }))
        .send()
        .await?;
    let body = doc::expect_success(response, "rerunning the job").await?;
    Ok(JobReport::from(&body))
}

/// One line per slice of a job's report (`running` for a slice with no status yet).
fn show_slices(what: &str, job: &JobReport) {
    println!("{what}:");
    for (i, slice) in job.slices.iter().enumerate() {
        match slice {
            Some(s) => println!(
                "    slice {i}: total={} updated={} batches={} version_conflicts={}",
                s.total, s.updated, s.batches, s.version_conflicts
            ),
            None => println!("    slice {i}: null (still running)"),
        }
    }
}

/// What part 2 saw of the job: before and after `_rethrottle`, and its end.
struct Controlled {
    running: bool,
    parent_slices: usize,
    parent_updated: u64,
    rate_before: Vec<f64>,
    rate_after: Vec<f64>,
    parent_rate_after: f64,
    next_batch_after_ms: Vec<u64>,
    done_before_cancel: Vec<u64>,
    cancel_named_job: bool,
    job: JobReport,
    reminded: u64,
}

/// How long a slice's batch takes at the job's rate `requests_per_second`, in milliseconds.
fn batch_time_ms(requests_per_second: i64) -> u64 {
    let share = requests_per_second as f64 / SLICES as f64;
    (SCROLL_SIZE as f64 / share * 1000.0) as u64
}

fn rates(slices: &[(usize, JobReport, Value)]) -> Vec<f64> {
    let rate = |s: &Value| s["requests_per_second"].as_f64().unwrap_or(f64::NAN);
    slices.iter().map(|s| rate(&s.2)).collect()
}

/// Part 2: the job at a crawl, rethrottled, then cancelled.
async fn rethrottle_and_cancel(
    client: &Elasticsearch,
    index: &str,
) -> Result<Controlled> {
    by_query::seed(client, index, 0).await?;
    let task = start_sliced(client, index, CRAWL).await?;
    // Each slice writes its first batch at once, then waits 20 s before the next.
    let first =
        |s: &[JobReport]| s.iter().all(|s| s.batches >= 1 && s.processed() >= 10);
    let slices = wait_for_slices(
        client,
        task.as_str(),
        SLICES,
        "a first batch",
        WAIT,
        first,
    );
    let slices = slices.await?;
    let status = task_status(client, &task).await?;
    let running = status["completed"] == false;
    let parent = JobReport::from(&status["task"]["status"]);
    let parent_slices = parent.slices.iter().filter(|s| s.is_none()).count();
    let parent_updated = parent.updated;
    let rate_before = rates(&slices);
    let done: Vec<u64> = slices.iter().map(|s| s.1.processed()).collect();
    println!(
        "GET _tasks/<id>: completed={}, updated={parent_updated}, slices [{}]",
        status["completed"],
        vec!["null"; parent_slices].join(", ")
    );
    println!(
        "GET _tasks?parent_task_id=<id>: requests_per_second {rate_before:?}, documents done \
         {done:?}"
    );

    let answer = rethrottle(client, &task, FASTER).await?;
    let parent_rate_after = answer["status"]["requests_per_second"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let after = answer["status"]["slices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rate_after: Vec<f64> = after
        .iter()
        .map(|s| s["requests_per_second"].as_f64().unwrap_or(f64::NAN))
        .collect();
    let next_batch_after_ms: Vec<u64> = after
        .iter()
        .map(|s| s["throttled_until_millis"].as_u64().unwrap_or(u64::MAX))
        .collect();
    let bound = batch_time_ms(FASTER);
    let due = next_batch_after_ms.iter().all(|ms| *ms <= bound);
    println!(
        "_rethrottle?requests_per_second={FASTER}: the job at {parent_rate_after}, its slices \
         at {rate_after:?}; each slice's next batch due within {bound} ms: {due}"
    );

    // The slices move on at the new pace: one more batch each, then the job is cancelled.
    let second = |s: &[JobReport]| s.iter().all(|s| s.processed() >= 20);
    let slices = wait_for_slices(
        client,
        task.as_str(),
        SLICES,
        "a second batch",
        WAIT,
        second,
    );
    let done_before_cancel: Vec<u64> =
        slices.await?.iter().map(|s| s.1.processed()).collect();
    println!("then each slice wrote another batch; _tasks/<id>/_cancel");
    let answer = cancel(client, &task).await?;
    let tasks = answer["nodes"].as_object().into_iter().flatten();
    let cancel_named_job = tasks
        .into_iter()
        .any(|(_, node)| node["tasks"].get(&task).is_some());
    let job = wait_for_end(client, &task).await?;
    job.show("the job's answer");
    let why: Vec<&str> = job
        .slices
        .iter()
        .map(|s| s.as_ref().map_or("running", |s| s.canceled.as_str()))
        .collect();
    println!("  canceled: {:?}; its slices: {why:?}", job.canceled);
    let reminded = ORDERS as u64 - count(client, index, not_reminded()).await?;
    println!("after it: {reminded} orders reminded");
    Ok(Controlled {
        running,
        parent_slices,
        parent_updated,
        rate_before,
        rate_after,
        parent_rate_after,
        next_batch_after_ms,
        done_before_cancel,
        cancel_named_job,
        job,
        reminded,
    })
}

/// Waits (bounded) for job `task` to be over, and returns its answer.
async fn wait_for_end(client: &Elasticsearch, task: &str) -> Result<JobReport> {
    let started = Instant::now();
    loop {
        let status = task_status(client, task).await?;
        if status["completed"] == true {
            if let Some(error) = status.get("error") {
                bail!("the job {task} failed: {error}");
            }
            return Ok(JobReport::from(&status["response"]));
        }
        if started.elapsed() > WAIT {
            let running = running_slices(client, task).await?.len();
            bail!(
                "the job {task} was still running {WAIT:?} after the cancel ({running} slices)"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const USAGE: &str = "usage: cargo run --example by_query_tasks (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Scripting, |cluster| async move {
        let (client, mut claims) = (&cluster.client, Claims::new());
        println!(
            "== 1. slices=2, conflicts=abort, {PART1_RATE} requests/s, while the customer edits \
             one order of slice 0"
        );
        let started = Instant::now();
        let part1 = sliced_with_conflict(client, "orders-sliced").await?;
        check_sliced(&cluster, &part1, started.elapsed(), &mut claims);

        println!(
            "\n== 2. the same job at {CRAWL} request/s, rethrottled to {FASTER}, then cancelled"
        );
        let started = Instant::now();
        let part2 = rethrottle_and_cancel(client, "orders-throttled").await?;
        check_controlled(&cluster, &part2, started.elapsed(), &mut claims);
        Ok(claims)
    })
    .await
}

/// Part 1's claims, checked quietly, and its machine-readable result.
fn check_sliced(
    cluster: &Cluster,
    part: &SlicedAbort,
    took: Duration,
    claims: &mut Claims,
) {
    let (job, meanwhile) = (&part.run.job, &part.run.meanwhile);
    let mut c = |ok: bool, what: &str| claims.check(ok, format!("sliced: {what}"));
    let slices: Vec<&JobReport> = job.slices.iter().flatten().collect();
    c(
        slices.len() == SLICES && job.slices.len() == SLICES,
        "the answer has a status for each slice",
    );
    let Some((zero, one)) = slices.first().zip(slices.get(1)) else {
        return;
    };
    let sizes = [zero.total as usize, one.total as usize];
    c(
        sizes == part.sizes[..],
        "each slice matched the orders a sliced search gives it",
    );
    let batch = SCROLL_SIZE as u64;
    let stopped_at = (EDITED_POSITION as u64 / batch + 1) * batch;
    c(
        zero.version_conflicts == 1 && zero.processed() == stopped_at,
        "slice 0 stopped after the batch with the conflict",
    );
    c(
        one.version_conflicts == 0 && one.updated == one.total,
        "slice 1 ran to its end",
    );
    let failed: Vec<&str> = job.failures.iter().map(|f| f.0.as_str()).collect();
    let why = job
        .failures
        .iter()
        .all(|f| f.1 == "version_conflict_engine_exception");
    c(
        failed == [part.edited.as_str()] && why,
        "failures lists the one conflict",
    );
    c(
        job.updated == zero.updated + one.updated && job.version_conflicts == 1,
        "the answer's counters are the slices' sums",
    );
    let early = meanwhile.slices.first().cloned().flatten();
    let early_ok = early
        .is_some_and(|s| s.version_conflicts == 1 && s.processed() == stopped_at)
        && matches!(meanwhile.slices.get(1), Some(None));
    c(
        early_ok,
        "slice 0 was over while slice 1 still ran (null in the job's status)",
    );
    c(
        part.reminded == job.updated && part.kept,
        "what it updated stays, the edit is kept",
    );
    c(
        meanwhile.updated == zero.updated
            && meanwhile.version_conflicts == zero.version_conflicts,
        "the job's status counted the finished slice only",
    );
    let rest = ORDERS as u64 - part.reminded;
    c(
        part.rerun.updated == rest && part.left == 0 && part.kept_after,
        "a rerun of the query finished the rest, the edit kept",
    );
    report::result(
        cluster,
        took,
        json!({
            "example": "by_query_tasks",
            "part": "sliced_abort",
            "orders": ORDERS,
            "edited": part.edited,
            "slices": SLICES,
            "slice_totals": [zero.total, one.total],
            "slice_updated": [zero.updated, one.updated],
            "slice_conflicts": [zero.version_conflicts, one.version_conflicts],
            "slice_batches": [zero.batches, one.batches],
            "updated": job.updated,
            "version_conflicts": job.version_conflicts,
            "failures": job.failures.len(),
            "reminded": part.reminded,
            "customer_edit_kept": part.kept,
            "rerun_updated": part.rerun.updated,
            "left": part.left,
        }),
    );
}

/// Part 2's claims, checked quietly, and its machine-readable result.
fn check_controlled(
    cluster: &Cluster,
    part: &Controlled,
    took: Duration,
    claims: &mut Claims,
) {
    let mut c =
        |ok: bool, what: &str| claims.check(ok, format!("controlled: {what}"));
    let share = |rate: i64| rate as f64 / SLICES as f64;
    c(
        part.running && part.parent_slices == SLICES && part.parent_updated == 0,
        "while running, the job's own status lists its slices as null, updated 0",
    );
    let all = |rates: &[f64], want: f64| {
        rates.len() == SLICES && rates.iter().all(|r| (r - want).abs() < 1e-6)
    };
    c(
        all(&part.rate_before, share(CRAWL)),
        "each slice ran at its share of the rate",
    );
    c(
        all(&part.rate_after, share(FASTER))
            && (part.parent_rate_after - FASTER as f64).abs() < 1e-6,
        "_rethrottle set each running slice to its share of the new rate",
    );
    // Speeding up reschedules the waiting batch: at most one batch at the new rate away.
    let bound = batch_time_ms(FASTER);
    c(
        part.next_batch_after_ms.len() == SLICES
            && part.next_batch_after_ms.iter().all(|ms| *ms <= bound),
        "each slice's waiting batch was rescheduled to the new rate",
    );
    let job = &part.job;
    let canceled = job
        .slices
        .iter()
        .flatten()
        .filter(|s| s.canceled == "by user request");
    c(
        part.cancel_named_job
            && job.canceled == "by user request"
            && canceled.count() == SLICES
            && job.failures.is_empty(),
        "the job and each slice answered canceled, failures empty",
    );
    let before: u64 = part.done_before_cancel.iter().sum();
    c(
        job.updated >= before
            && job.updated < job.total
            && part.reminded == job.updated,
        "it stopped part way; what it updated stays",
    );
    report::result(
        cluster,
        took,
        json!({
            "example": "by_query_tasks",
            "part": "rethrottle_cancel",
            "orders": ORDERS,
            "rate": CRAWL,
            "slice_rate_before": part.rate_before,
            "rethrottled_to": FASTER,
            "slice_rate_after": part.rate_after,
            "canceled": job.canceled,
            "total": job.total,
            "updated": job.updated,
            "failures": job.failures.len(),
            "reminded": part.reminded,
        }),
    );
}

#[cfg(test)]
mod tests {
    use harness::recorded;

    /// The recorded run has the shape chapter 14 describes: one slice stopped, the other ran
    /// on; the rate shared between the slices before and after `_rethrottle`; `canceled`.
    #[test]
    fn the_recorded_run_stops_one_slice_rethrottles_and_cancels() {
        let sliced = recorded::result("by_query_tasks", "part", "sliced_abort");
        assert_eq!(sliced["slice_conflicts"], serde_json::json!([1, 0]));
        assert_eq!(sliced["slice_updated"][0], 29);
        assert_eq!(sliced["slice_updated"][1], sliced["slice_totals"][1]);
        assert_eq!(sliced["failures"], 1);
        assert_eq!(sliced["reminded"], sliced["updated"]);
        assert_eq!(sliced["left"], 0);
        let controlled =
            recorded::result("by_query_tasks", "part", "rethrottle_cancel");
        assert_eq!(
            controlled["slice_rate_before"],
            serde_json::json!([0.5, 0.5])
        );
        assert_eq!(
            controlled["slice_rate_after"],
            serde_json::json!([5.0, 5.0])
        );
        assert_eq!(controlled["canceled"], "by user request");
        assert_eq!(controlled["failures"], 0);
    }

    /// Every number chapter 14 quotes from this run is the run's.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch14-00-update-by-query.md");
        let chapter = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        let quoted = |pattern: &str| recorded::quoted(&chapter, pattern);
        let sliced = recorded::result("by_query_tasks", "part", "sliced_abort");
        let controlled =
            recorded::result("by_query_tasks", "part", "rethrottle_cancel");
        assert_eq!(
            quoted(r"slice 0 matched (\d+) orders"),
            sliced["slice_totals"][0].to_string()
        );
        assert_eq!(
            quoted(r"and slice 1 (\d+)"),
            sliced["slice_totals"][1].to_string()
        );
        assert_eq!(
            quoted(r"slice 0 stopped with `updated=(\d+)`"),
            sliced["slice_updated"][0].to_string()
        );
        assert_eq!(
            quoted(r"slice 1 updated all (\d+) of its orders"),
            sliced["slice_updated"][1].to_string()
        );
        assert_eq!(
            quoted(r"The customer edited (order-\d+), the 26th order of slice 0"),
            sliced["edited"].as_str().unwrap()
        );
        assert_eq!(
            quoted(r"one conflict, after its (\w+) batch"),
            ["first", "second", "third", "fourth"]
                [sliced["slice_batches"][0].as_u64().unwrap() as usize - 1]
        );
        assert_eq!(
            quoted(r"sliced job's answer: `updated=(\d+)`, `version_conflicts=1`"),
            sliced["updated"].to_string()
        );
        assert_eq!(
            quoted(r"each sub-task said `requests_per_second` (\d+(?:\.\d+)?)"),
            controlled["slice_rate_before"][0].to_string()
        );
        assert_eq!(
            quoted(
                r"running slices in it: (\d+(?:\.\d+)?) requests per second each"
            ),
            controlled["slice_rate_after"][0]
                .as_f64()
                .unwrap()
                .to_string()
        );
        assert_eq!(
            quoted(r"the sliced job's status said `updated=(\d+)`"),
            sliced["slice_updated"][0].to_string()
        );
        assert_eq!(
            quoted(r"updated the (\d+) orders left"),
            sliced["rerun_updated"].to_string()
        );
        let never = sliced["slice_totals"][0].as_u64().unwrap()
            - sliced["slice_updated"][0].as_u64().unwrap()
            - 1;
        assert_eq!(
            quoted(r"the (\d+) that slice 0 never reached"),
            never.to_string()
        );
        assert_eq!(
            quoted(r"it had updated (\d+) of the 100 orders"),
            controlled["updated"].to_string()
        );
    }
}
