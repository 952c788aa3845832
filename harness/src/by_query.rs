//! Chapter 14's staging, shared by `update_by_query` and `delete_by_query`, and no part of what
//! the chapter teaches: the orders, the customer who edits some of them (with an OCC write of
//! its own, retried by chapter 6's bounded loop), and following a by-query job's task so that
//! the customer edits at the one moment that makes the race certain: after the job took its
//! snapshot, while it is still far from the orders edited.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use elasticsearch::http::{Method, headers::HeaderMap};
use elasticsearch::{
    BulkOperation, ClearScrollParts, Elasticsearch, IndexParts, SearchParts,
};
use esbook::retry::{Backoff, until_written};
use esbook::{bulk, doc, indices};
use serde_json::{Value, json};

pub const ORDERS: usize = 100;
/// How long any one job may take before the example gives up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// How far (in documents) the job must still be from the first edited order once the customer
/// has edited: a batch of the update-by-query job, so the batch being written cannot hold it.
const MARGIN: u64 = 10;

pub fn order(i: usize) -> String {
    format!("order-{i:03}")
}

/// A fresh `index` with 100 orders, `order-000` .. `order-099`, in that order (one bulk, so a
/// job's scroll meets them in that order), every `cancelled_every`th one cancelled (none if
/// 0), the rest open; refreshed, so that a search sees them.
pub async fn seed(
    client: &Elasticsearch,
    index: &str,
    cancelled_every: usize,
) -> Result<()> {
    doc::fresh_index(client, index).await?;
    let operations: Vec<BulkOperation<Value>> = (0..ORDERS)
        .map(|i| {
            let cancelled = cancelled_every > 0 && i % cancelled_every == 0;
            let status = if cancelled { "cancelled" } else { "open" };
            let source = json!({ "qty": 1, "status": status, "reminded": false });
            BulkOperation::index(source).id(order(i)).into()
        })
        .collect();
    let answer = bulk::send(client, index, operations).await?;
    if answer.errors {
        bail!("seeding {index} failed: {}", answer.body);
    }
    indices::refresh(client, index).await
}

/// How many documents match `query`, after a refresh (a search sees only refreshed writes).
pub async fn count(
    client: &Elasticsearch,
    index: &str,
    query: Value,
) -> Result<u64> {
    indices::refresh(client, index).await?;
    indices::count(client, index, query).await
}

/// Whether every one of `ids` has `field` set to `value` (the customer's edits are there).
pub async fn all_have(
    client: &Elasticsearch,
    index: &str,
    ids: &[String],
    field: &str,
    value: Value,
) -> Result<bool> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let seen = bulk::read_all(client, index, &ids).await?;
    Ok(seen.values().all(|d| d.source[field] == value))
}

/// The customer: changes an order with an OCC write of its own, retried by chapter 6's bounded
/// loop, so its edit is never lost either. `change` is applied to the order's current source.
async fn customer_edits(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    change: &Value,
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
/// position (0-based): a by-query job's scroll is sorted by `_doc`, the index's internal order.
pub async fn last_in_job_order(
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
    let hits = body["hits"]["hits"].as_array().cloned().unwrap_or_default();
    let ids: Vec<String> = hits
        .iter()
        .filter_map(|h| h["_id"].as_str().map(String::from))
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
pub struct JobReport {
    pub total: u64,
    pub updated: u64,
    pub deleted: u64,
    pub batches: u64,
    pub version_conflicts: u64,
    /// `retries` as the job answered it: `{"bulk": N, "search": N}`, rejections it retried.
    pub retries: Value,
    /// `(id, cause type)` of each entry of `failures`.
    pub failures: Vec<(String, String)>,
    /// `canceled`: why the job was cancelled (`by user request`), empty if it was not.
    pub canceled: String,
    /// A sliced job's `slices`, one report per slice in slice order (`None`: no status yet,
    /// the slice is still running); empty for a job without slices.
    pub slices: Vec<Option<JobReport>>,
}

impl JobReport {
    /// The report in a job's answer, or in its task's `status` while it runs.
    pub fn from(response: &Value) -> JobReport {
        let n = |field: &str| response[field].as_u64().unwrap_or(0);
        let failure = |f: &Value| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (text(&f["id"]), text(&f["cause"]["type"]))
        };
        JobReport {
            total: n("total"),
            updated: n("updated"),
            deleted: n("deleted"),
            batches: n("batches"),
            version_conflicts: n("version_conflicts"),
            retries: response["retries"].clone(),
            failures: response["failures"]
                .as_array()
                .into_iter()
                .flatten()
                .map(failure)
                .collect(),
            canceled: response["canceled"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            slices: response["slices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|slice| (!slice.is_null()).then(|| JobReport::from(slice)))
                .collect(),
        }
    }

    /// How many documents the job has dealt with: `total` is what it matched, not what it did.
    pub fn processed(&self) -> u64 {
        self.updated + self.deleted + self.version_conflicts
    }

    /// The job's answer, its counters on one line and one line per failure.
    pub fn show(&self, what: &str) {
        println!(
            "{what}: total={} updated={} deleted={} batches={} version_conflicts={} \
             retries={} failures={}",
            self.total,
            self.updated,
            self.deleted,
            self.batches,
            self.version_conflicts,
            self.retries,
            self.failures.len()
        );
        for (id, cause) in &self.failures {
            println!("  failure: {id}: {cause}");
        }
    }
}

/// The customer's part in a job: which orders it edits, how, and where the job must not yet
/// be when it does (the position of the first edited document among those the job matches).
pub struct Meanwhile<'a> {
    pub edits: &'a [String],
    pub change: Value,
    pub position: u64,
}

impl<'a> Meanwhile<'a> {
    pub fn new(edits: &'a [String], change: Value, position: u64) -> Meanwhile<'a> {
        Meanwhile {
            edits,
            change,
            position,
        }
    }
}

/// Waits for task `task` to finish (bounded), making `meanwhile`'s edits once the job has
/// read its first batch, and returns the job's report. Fails if the edits came too late.
pub async fn follow(
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
        if let Some(m) = &meanwhile
            && progress["batches"].as_u64().unwrap_or(0) >= 1
        {
            // The job has read its first batch: its snapshot was taken before these edits.
            for id in m.edits {
                customer_edits(client, index, id, &m.change).await?;
            }
            // Still far from them: the batch being written now cannot hold them either.
            let after = task_status(client, task).await?;
            let progress = &after["task"]["status"];
            let reached = processed(progress);
            if after["completed"] == true || reached + MARGIN > m.position {
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
            let (done, total) = (processed(progress), &progress["total"]);
            eprintln!("[{index}] job {task}: {done} of {total} documents");
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

/// `GET _tasks/<task>` (the typed call is behind the client's experimental feature).
pub async fn task_status(client: &Elasticsearch, task: &str) -> Result<Value> {
    let path = format!("/_tasks/{task}");
    let none = Option::<&()>::None;
    let response = client
        .send(Method::Get, &path, HeaderMap::new(), none, none, None)
        .await?;
    doc::expect_success(response, &format!("reading task {task}")).await
}

/// The ids of the documents matching `query` that slice `slice` of `max` holds, in the order
/// that slice of a by-query job meets them: a sliced search (on `_id`, as the job slices its
/// search), sorted by `_doc`.
pub async fn slice_members(
    client: &Elasticsearch,
    index: &str,
    query: Value,
    slice: usize,
    max: usize,
) -> Result<Vec<String>> {
    indices::refresh(client, index).await?;
    let body = json!({
        "query": query, "slice": { "id": slice, "max": max },
        "sort": ["_doc"], "size": ORDERS, "_source": false
    });
    // A sliced search needs a scroll (on 7.10); one page holds every order.
    let response = client
        .search(SearchParts::Index(&[index]))
        .scroll("1m")
        .body(body)
        .send()
        .await?;
    let body = doc::expect_success(response, &format!("searching {index}")).await?;
    if let Some(scroll) = body["_scroll_id"].as_str() {
        let ids = [scroll];
        client
            .clear_scroll(ClearScrollParts::ScrollId(&ids))
            .send()
            .await?;
    }
    let hits = body["hits"]["hits"].as_array().cloned().unwrap_or_default();
    Ok(hits
        .iter()
        .filter_map(|h| h["_id"].as_str().map(String::from))
        .collect())
}

/// The sub-tasks of a sliced job still running, each as its status reports it, in slice
/// order: `GET _tasks?parent_task_id=<task>&detailed=true`.
pub async fn running_slices(
    client: &Elasticsearch,
    task: &str,
) -> Result<Vec<(usize, JobReport, Value)>> {
    let path = format!("/_tasks?parent_task_id={task}&detailed=true");
    let none = Option::<&()>::None;
    let response = client
        .send(Method::Get, &path, HeaderMap::new(), none, none, None)
        .await?;
    let body =
        doc::expect_success(response, &format!("listing the slices of {task}"))
            .await?;
    let mut slices: Vec<(usize, JobReport, Value)> = Vec::new();
    for node in body["nodes"].as_object().into_iter().flatten() {
        for (_, child) in node.1["tasks"].as_object().into_iter().flatten() {
            let status = &child["status"];
            let id = status["slice_id"].as_u64().unwrap_or(0) as usize;
            slices.push((id, JobReport::from(status), status.clone()));
        }
    }
    slices.sort_by_key(|s| s.0);
    Ok(slices)
}

/// Polls the running slices of job `task` until `ready` holds for them (every slice running),
/// and returns them; fails after `timeout`, or if the job finished first.
pub async fn wait_for_slices(
    client: &Elasticsearch,
    task: &str,
    slices: usize,
    what: &str,
    timeout: Duration,
    ready: impl Fn(&[JobReport]) -> bool,
) -> Result<Vec<(usize, JobReport, Value)>> {
    let started = Instant::now();
    loop {
        let running = running_slices(client, task).await?;
        let reports: Vec<JobReport> = running.iter().map(|s| s.1.clone()).collect();
        if running.len() == slices && ready(&reports) {
            return Ok(running);
        }
        if task_status(client, task).await?["completed"] == true {
            bail!("the job {task} finished before {what}");
        }
        if started.elapsed() > timeout {
            bail!("no {what} within {timeout:?} (job {task})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The customer's part in a sliced job: which order it edits, in which slice, at which
/// position among that slice's documents.
pub struct InSlice<'a> {
    pub edit: Meanwhile<'a>,
    pub slice: usize,
}

/// What a sliced job did: its answer, and its own status as it was seen once the customer's
/// slice had finished while another slice still ran.
pub struct SlicedRun {
    pub job: JobReport,
    pub meanwhile: JobReport,
}

/// Waits for sliced job `task` to finish (bounded), making the customer's edit once the
/// customer's slice has read its first batch and while it is still far from the order; and
/// records the job's own status (`GET _tasks/<task>`) at the first moment the customer's slice
/// has finished and another has not. Fails if the edit came too late or that moment never came.
pub async fn follow_sliced(
    client: &Elasticsearch,
    index: &str,
    task: &str,
    slices: usize,
    customer: InSlice<'_>,
) -> Result<SlicedRun> {
    let started = Instant::now();
    let mut pending = Some(customer.edit);
    let mut meanwhile: Option<JobReport> = None;
    loop {
        let status = task_status(client, task).await?;
        if status["completed"] == true {
            if let Some(error) = status.get("error") {
                bail!("the job {task} failed: {error}");
            }
            if pending.is_some() {
                bail!(
                    "the job {task} finished before the customer could edit anything"
                );
            }
            let Some(meanwhile) = meanwhile else {
                bail!(
                    "slice {} never finished while another still ran (job {task})",
                    customer.slice
                );
            };
            let job = JobReport::from(&status["response"]);
            return Ok(SlicedRun { job, meanwhile });
        }
        if let Some(m) = &pending {
            let running = running_slices(client, task).await?;
            let mine = running.iter().find(|s| s.0 == customer.slice);
            if let Some((_, slice, _)) = mine
                && slice.batches >= 1
            {
                // The slice has read its first batch: its snapshot predates the edit.
                for id in m.edits {
                    customer_edits(client, index, id, &m.change).await?;
                }
                let running = running_slices(client, task).await?;
                let mine = running.iter().find(|s| s.0 == customer.slice);
                let Some((_, slice, _)) = mine else {
                    bail!(
                        "slice {} finished before the customer's edit",
                        customer.slice
                    );
                };
                let reached = slice.processed();
                if reached + MARGIN > m.position {
                    bail!(
                        "the customer's edit came too late: slice {} had processed {reached} \
                         documents, the edited one is number {} (is the machine very busy?)",
                        customer.slice,
                        m.position + 1
                    );
                }
                println!(
                    "customer: edited {} while slice {} was at {reached} of {} documents",
                    m.edits.join(", "),
                    customer.slice,
                    slice.total
                );
                pending = None;
            }
        } else if meanwhile.is_none() {
            let now = JobReport::from(&status["task"]["status"]);
            let done = |i: usize| matches!(now.slices.get(i), Some(Some(_)));
            if done(customer.slice) && (0..slices).any(|i| !done(i)) {
                meanwhile = Some(now);
            }
        }
        if started.elapsed() > JOB_TIMEOUT {
            bail!("the job {task} did not finish within {JOB_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
