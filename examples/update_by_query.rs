//! Chapter 14: update-by-query meets a concurrent writer.
//!
//! 100 open orders. A job marks every order not reminded yet as reminded (`_update_by_query`
//! with a script) while a customer edits three orders the job has not reached yet. The job
//! writes each order back on the condition that it has not changed since its snapshot, so the
//! customer's edits are three version conflicts. The job is slowed down (batches of 10, half a
//! second each) so that this happens on every run. 1: by default (`conflicts=abort`) the job
//! stops after the batch with the conflicts and keeps what it did. 2: with `conflicts=proceed`
//! it skips them and finishes, `failures` empty. 3: part 1's job is finished by rerunning it
//! on what is not done until a pass meets no conflict.
//!
//! Run it: `cargo run --example update_by_query` (about 15 seconds). You should see the job's
//! answers, what each left behind, and every customer edit kept.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::params::Conflicts;
use elasticsearch::{Elasticsearch, UpdateByQueryParts};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs, doc};
use harness::by_query::{self, JobReport, Meanwhile, ORDERS, count, follow};
use harness::{Claims, report};
use serde_json::{Value, json};

const INDEX: &str = "orders";
/// Documents per batch, and the pace: half a second per batch.
const SCROLL_SIZE: i64 = 10;
const REQUESTS_PER_SECOND: i64 = 20;
/// The orders the customer edits during the job: in its sixth batch.
const EDITED: [usize; 3] = [50, 51, 52];

// ANCHOR: job
/// Starts "remind every order not reminded yet" on `index`, slowed down, as a task.
async fn start_reminders(
    client: &Elasticsearch,
    index: &str,
    conflicts: Conflicts,
) -> Result<String> {
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
    let body =
        doc::expect_success(response, "starting the update-by-query").await?;
    let task = body["task"].as_str().context("no task in the answer")?;
    Ok(task.to_string())
}
// ANCHOR_END: job

// ANCHOR: race
/// What a job did while the customer edited, and what it left.
struct Race {
    job: JobReport,
    reminded: u64,
    untouched: u64,
    kept: bool,
}

fn not_reminded() -> Value {
    json!({ "term": { "reminded": false } })
}

fn edited() -> Vec<String> {
    EDITED.map(by_query::order).to_vec()
}

/// Parts 1 and 2: 100 fresh orders, the job started with `conflicts`, the customer's three
/// edits while it runs, and what the job left behind.
async fn remind_while_customer_edits(
    client: &Elasticsearch,
    index: &str,
    conflicts: Conflicts,
) -> Result<Race> {
    by_query::seed(client, index, 0).await?;
    let task = start_reminders(client, index, conflicts).await?;
    let edits = edited();
    let customer = Meanwhile::new(&edits, json!({ "qty": 5 }), EDITED[0] as u64);
    let job = follow(client, index, &task, Some(customer)).await?;
    job.show("the job's answer");
    let reminded = ORDERS as u64 - count(client, index, not_reminded()).await?;
    // Neither reminded nor edited by the customer: never reached by the job.
    let untouched = json!({ "bool": { "filter": [
        { "term": { "reminded": false } }, { "term": { "qty": 1 } }
    ] } });
    let untouched = count(client, index, untouched).await?;
    let kept = by_query::all_have(client, index, &edits, "qty", json!(5)).await?;
    println!(
        "after it: {reminded} orders reminded, {untouched} untouched; customer edits kept: \
         {kept}"
    );
    Ok(Race {
        job,
        reminded,
        untouched,
        kept,
    })
}
// ANCHOR_END: race

// ANCHOR: finish
/// What the reruns did, pass by pass, and what they left.
struct Finish {
    left_before: u64,
    passes: Vec<JobReport>,
    left: u64,
    kept: bool,
}

/// Part 3: finishes part 1's job by rerunning it on what is not done yet, until a pass meets
/// no conflict (bounded, with backoff), while the customer edits once more.
async fn finish(client: &Elasticsearch, index: &str) -> Result<Finish> {
    let left_before = count(client, index, not_reminded()).await?;
    println!("== 3. finishing part 1's job: {left_before} orders left");
    // The customer edits one more order: the one the first pass will reach last.
    let not_edited = edited();
    let last =
        by_query::last_in_job_order(client, index, not_reminded(), &not_edited);
    let (last, position) = last.await?;
    let backoff = Backoff {
        max_attempts: 10,
        ..Backoff::default()
    };
    let mut passes: Vec<JobReport> = Vec::new();
    for pass in 1..=backoff.max_attempts {
        // Only what is not done yet: the job's query excludes the orders already reminded.
        let task = start_reminders(client, index, Conflicts::Proceed).await?;
        let edits = std::slice::from_ref(&last);
        let customer = Meanwhile::new(edits, json!({ "qty": 5 }), position);
        let job =
            follow(client, index, &task, (pass == 1).then_some(customer)).await?;
        job.show(&format!("pass {pass}"));
        passes.push(job);
        if passes[passes.len() - 1].version_conflicts == 0 {
            break; // a pass that met no conflict skipped nothing: done
        }
        tokio::time::sleep(backoff.delay(pass)).await;
    }
    let left = count(client, index, not_reminded()).await?;
    let edits = [not_edited, vec![last]].concat();
    let kept = by_query::all_have(client, index, &edits, "qty", json!(5)).await?;
    println!(
        "after the reruns: {left} orders not reminded; customer edits kept: {kept}"
    );
    Ok(Finish {
        left_before,
        passes,
        left,
        kept,
    })
}
// ANCHOR_END: finish

const USAGE: &str = "usage: cargo run --example update_by_query (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Scripting, |cluster| async move {
        let (client, mut claims) = (&cluster.client, Claims::new());
        println!("== 1. update-by-query, default conflicts=abort, while a customer edits 3 orders");
        let started = Instant::now();
        let race = remind_while_customer_edits(client, INDEX, Conflicts::Abort).await?;
        check_race(&cluster, "abort", &race, started.elapsed(), &mut claims);

        println!("\n== 2. the same with conflicts=proceed");
        let (started, index) = (Instant::now(), format!("{INDEX}-proceed"));
        let race = remind_while_customer_edits(client, &index, Conflicts::Proceed).await?;
        check_race(&cluster, "proceed", &race, started.elapsed(), &mut claims);

        println!();
        let started = Instant::now();
        let finished = finish(client, INDEX).await?;
        check_finish(&cluster, &finished, started.elapsed(), &mut claims);
        Ok(claims)
    })
    .await
}

/// Part 1's or part 2's claims, checked quietly, and its machine-readable result.
fn check_race(
    cluster: &Cluster,
    part: &str,
    race: &Race,
    took: Duration,
    claims: &mut Claims,
) {
    let (job, others) = (&race.job, (ORDERS - EDITED.len()) as u64);
    let left = ORDERS as u64 - race.reminded;
    let mut c = |ok: bool, what: &str| claims.check(ok, format!("{part}: {what}"));
    c(race.kept, "the customer's edits are intact");
    c(
        job.version_conflicts == 3,
        "the 3 edits are version conflicts",
    );
    if part == "proceed" {
        let ok = job.failures.is_empty() && job.updated == others;
        c(ok, "no failure, every other order updated");
        c(left == 3 && race.untouched == 0, "the 3 edits were skipped");
    } else {
        let failed: Vec<String> =
            job.failures.iter().map(|f| f.0.clone()).collect();
        let mut why = job.failures.iter().map(|f| f.1.as_str());
        let ok = why.all(|cause| cause == "version_conflict_engine_exception");
        c(ok && failed == edited(), "failures lists the 3 conflicts");
        let batches = (ORDERS as u64).div_ceil(SCROLL_SIZE as u64);
        let ok = job.updated < others && job.batches < batches;
        c(
            ok && race.untouched > 0,
            "the job stopped after the conflicts",
        );
        c(
            race.reminded == job.updated,
            "what it updated stays updated",
        );
        let processed = job.updated + job.version_conflicts;
        let ok = job.total == ORDERS as u64 && processed < job.total;
        c(ok, "\"total\" is what the job matched");
    }
    let mut fields = json!({
        "example": "update_by_query",
        "part": part,
        "orders": ORDERS,
        "total": job.total,
        "updated": job.updated,
        "batches": job.batches,
        "version_conflicts": job.version_conflicts,
        "failures": job.failures.len(),
        "reminded": race.reminded,
        "customer_edits_kept": race.kept,
    });
    match part {
        "proceed" => fields["left"] = json!(left),
        _ => fields["not_reached"] = json!(race.untouched),
    }
    report::result(cluster, took, fields);
}

/// Part 3's claims, checked quietly, and its machine-readable result.
fn check_finish(
    cluster: &Cluster,
    done: &Finish,
    took: Duration,
    claims: &mut Claims,
) {
    let updated: Vec<u64> = done.passes.iter().map(|p| p.updated).collect();
    let conflicts: Vec<u64> =
        done.passes.iter().map(|p| p.version_conflicts).collect();
    let mut c = |ok: bool, what: &str| claims.check(ok, format!("finish: {what}"));
    c(conflicts.first() == Some(&1), "pass 1 skipped the new edit");
    let ok = updated.iter().sum::<u64>() == done.left_before;
    c(
        ok && conflicts.last() == Some(&0),
        "the passes did the rest",
    );
    c(
        done.left == 0 && done.kept,
        "all reminded, all 4 edits kept",
    );
    let fields = json!({
        "example": "update_by_query",
        "part": "finish",
        "left_before": done.left_before,
        "passes": done.passes.len(),
        "updated_per_pass": updated,
        "conflicts_per_pass": conflicts,
        "left": done.left,
        "customer_edits_kept": done.kept,
    });
    report::result(cluster, took, fields);
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    async fn cluster() -> Cluster {
        Cluster::connect(Needs::Scripting)
            .await
            .expect("a cluster with update-by-query")
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

    /// The recorded run has the shape chapter 14 describes, batch by batch.
    #[test]
    fn the_recorded_run_aborts_skips_and_finishes() {
        let abort = recorded::result("update_by_query", "part", "abort");
        assert_eq!(abort["version_conflicts"], 3);
        assert_eq!(abort["failures"], 3);
        assert_eq!(
            abort["updated"], 57,
            "the job stopped after its sixth batch"
        );
        assert_eq!(abort["batches"], 6);
        assert_eq!(abort["reminded"], abort["updated"]);
        assert_eq!(abort["total"], 100);
        assert_eq!(abort["customer_edits_kept"], true);
        let proceed = recorded::result("update_by_query", "part", "proceed");
        assert_eq!(proceed["version_conflicts"], 3);
        assert_eq!(proceed["failures"], 0);
        assert_eq!(
            (proceed["updated"].as_u64(), proceed["left"].as_u64()),
            (Some(97), Some(3))
        );
        let finish = recorded::result("update_by_query", "part", "finish");
        assert_eq!(finish["left_before"], 43);
        assert_eq!(finish["updated_per_pass"], json!([42, 1]));
        assert_eq!(finish["conflicts_per_pass"], json!([1, 0]));
        assert_eq!(finish["left"], 0);
    }

    /// Every number chapter 14 quotes from the run is the run's.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch14-00-update-by-query.md");
        let chapter = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        let quoted = |pattern: &str| recorded::quoted(&chapter, pattern);
        let abort = recorded::result("update_by_query", "part", "abort");
        let proceed = recorded::result("update_by_query", "part", "proceed");
        let finish = recorded::result("update_by_query", "part", "finish");
        assert_eq!(
            quoted(r"The job's answer: `updated=(\d+)`"),
            abort["updated"].to_string()
        );
        assert_eq!(
            quoted(r"`version_conflicts=(\d+)`, `batches"),
            abort["version_conflicts"].to_string()
        );
        assert_eq!(
            quoted(r"`batches=(\d+)`, and `failures`"),
            abort["batches"].to_string()
        );
        assert_eq!(
            quoted(r"finds exactly (\d+) orders reminded"),
            abort["reminded"].to_string()
        );
        assert_eq!(
            quoted(r"the server answered `total=(\d+)`"),
            abort["total"].to_string()
        );
        let processed = abort["updated"].as_u64().unwrap()
            + abort["version_conflicts"].as_u64().unwrap();
        assert_eq!(
            quoted(r"the job processed (\d+) documents"),
            processed.to_string()
        );
        assert_eq!(
            quoted(r"Orders (\d+) to 99 were never reached"),
            (processed).to_string()
        );
        assert_eq!(
            quoted(r"Now the job runs to the end: `updated=(\d+)`"),
            proceed["updated"].to_string()
        );
        assert_eq!(
            quoted(r"part 1's index, with (\d+) orders not reminded"),
            finish["left_before"].to_string()
        );
        assert_eq!(
            quoted(r"the first updated (\d+) and met 1 conflict"),
            finish["updated_per_pass"][0].to_string()
        );
        assert_eq!(
            quoted(r"conflicted and the (\d+) never reached"),
            abort["not_reached"].to_string()
        );
        let output = recorded::output("update_by_query");
        let retries =
            recorded::quoted(&output, r"the job's answer: .* retries=(\S+) ");
        assert_eq!(quoted(r"`retries` is `(\S+)` in every answer"), retries);
    }
}
