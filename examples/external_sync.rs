//! Chapter 13: syncing from a source of truth with external versions.
//!
//! A primary database (simulated in this process) holds 40 product rows, each with a `version`
//! column that grows by one on every change. Its change log, 200 changes, is copied into
//! Elasticsearch by several workers at once (4 by default) that take batches off a shared
//! queue and send each batch as one `_bulk`, as sync pipelines do. Two things reorder the
//! changes on the way, as they do in production: workers run in parallel, so a later batch can
//! land first; and delivery is at-least-once, so about one change in ten is delivered a second
//! time, late, as a queue does when an acknowledgement was lost.
//!
//! The same change log and the same redeliveries are sent three ways:
//!
//! - `none`: plain `index` items. Every item is written; rows whose last delivered change was
//!   not their newest end stale, counted against the source.
//! - `external`: each item carries `version=<row version>&version_type=external`. A change that
//!   is not newer than what the index holds is a 409 and is dropped; the index ends equal to the
//!   source, row for row, `_version` included.
//! - `external_gte`: the same, except that an *equal* version is written again.
//!
//! Then three single documents show what the chapter says about the edges: an equal version
//! with different content (`external` refuses it, `external_gte` overwrites: Elastic's warning);
//! a plain write into an externally versioned index (it bumps `_version`, and the source's next
//! real change is then dropped as stale); a delete with a version (its tombstone turns away
//! older changes); and `if_seq_no` with an external version on one write (refused).
//!
//! Run it: `cargo run --example external_sync`, or `-- --workers 8`, or `-- --mode none`.
//! Flags: `--mode all|none|external|external_gte`, `--workers N` (1 to 32).
//! It exits non-zero if the index without versions is not stale, or if either external mode
//! leaves the index different from the source, or if an edge case does not behave as shown.

use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::params::VersionType;
use elasticsearch::{BulkOperation, Elasticsearch, IndexParts};
use esbook::answer::Answer;
use esbook::bulk;
use harness::cli::Args;
use esbook::doc::{self, Outcome};
use harness::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::{Value, json};

const INDEX: &str = "products";
const ROWS: usize = 40;
/// Changes after the 40 inserts, each to a row chosen at random.
const UPDATES: usize = 160;
const BATCH: usize = 5;
/// One change in this many is delivered a second time, late.
const REDELIVER_ONE_IN: u32 = 10;

fn usage() -> String {
    "usage: cargo run --example external_sync -- [--mode all|none|external|external_gte] \
     [--workers N]"
        .to_string()
}

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let mut args = Args::from_env(&usage())?;
        let mut names = vec!["all"];
        names.extend(Mode::ALL.map(Mode::name));
        let mode = args.choice("mode", "all", &names)?;
        let workers = args.number("workers", 4, 1..=32)?;
        args.finish()?;
        let cluster = Cluster::connect(Needs::Core).await?;
        println!("Connected to {cluster}");

        let source = Database::generate();
        println!(
            "\nThe source: {} rows, {} changes in its log; {} of them will be delivered twice",
            source.rows.len(),
            source.log.len(),
            source.log.iter().filter(|c| c.redelivered).count()
        );
        let mut claims = Claims::new();
        for m in Mode::ALL {
            if mode == "all" || mode == m.name() {
                sync(&cluster, INDEX, &source, m, workers, &mut claims).await?;
            }
        }
        if mode == "all" {
            edges(&cluster, INDEX, &mut claims).await?;
        }
        claims.into_result()
    })
    .await
}

/// One change of the source's log: row `id` now has `price`, at `version`.
#[derive(Debug, Clone)]
struct Change {
    id: String,
    version: i64,
    price: i64,
    /// The queue will deliver this change a second time, at the end.
    redelivered: bool,
}

/// The primary database, the source of truth: every row's current state, and the log of every
/// change, in commit order. A row's `version` only ever grows.
struct Database {
    rows: BTreeMap<String, (i64, i64)>, // id -> (version, price)
    log: Vec<Change>,
}

impl Database {
    fn generate() -> Database {
        let mut rows = BTreeMap::new();
        let mut log = Vec::new();
        let mut commit = |rows: &mut BTreeMap<String, (i64, i64)>, id: String| {
            let (version, _) = rows.get(&id).copied().unwrap_or((0, 0));
            let price = fastrand::i64(1..1000);
            rows.insert(id.clone(), (version + 1, price));
            log.push(Change {
                id,
                version: version + 1,
                price,
                redelivered: fastrand::u32(0..REDELIVER_ONE_IN) == 0,
            });
        };
        for row in 0..ROWS {
            commit(&mut rows, format!("row-{row:02}"));
        }
        for _ in 0..UPDATES {
            let row = fastrand::usize(0..ROWS);
            commit(&mut rows, format!("row-{row:02}"));
        }
        Database { rows, log }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    External,
    ExternalGte,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::None, Mode::External, Mode::ExternalGte];

    fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::External => "external",
            Mode::ExternalGte => "external_gte",
        }
    }

    /// The `version_type` each write carries, if any.
    fn version_type(self) -> Option<VersionType> {
        match self {
            Mode::None => None,
            Mode::External => Some(VersionType::External),
            Mode::ExternalGte => Some(VersionType::ExternalGte),
        }
    }
}

/// What the workers saw, all together.
#[derive(Debug, Default, Clone, Copy)]
struct Delivery {
    batches: u64,
    deliveries: u64,
    written: u64,
    /// Items refused with a 409 (stale or duplicate), and dropped.
    dropped: u64,
}

/// How the index compares with the source, row by row.
#[derive(Debug, Default)]
struct Comparison {
    stale: usize,
    missing: usize,
    /// `_version` differs from the row's version (external modes only).
    version_mismatch: usize,
}

/// Copies the source's log into a fresh `index` with `workers` parallel workers, then compares
/// the index with the source.
async fn sync(
    cluster: &Cluster,
    index: &str,
    source: &Database,
    mode: Mode,
    workers: u32,
    claims: &mut Claims,
) -> Result<(Delivery, Comparison)> {
    let started = Instant::now();
    doc::fresh_index(&cluster.client, index).await?;
    // The queue: the log in commit order; redeliveries are put back at its end when their
    // first delivery is taken, as an at-least-once queue does when an ack is lost.
    let queue: Arc<Mutex<VecDeque<Change>>> =
        Arc::new(Mutex::new(source.log.iter().cloned().collect()));
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (client, queue, index) =
            (cluster.client.clone(), queue.clone(), index.to_string());
        running.spawn(async move { worker(&client, &index, &queue, mode).await });
    }
    let mut total = Delivery::default();
    while let Some(joined) = running.join_next().await {
        let seen = joined.context("a worker panicked")??;
        total.batches += seen.batches;
        total.deliveries += seen.deliveries;
        total.written += seen.written;
        total.dropped += seen.dropped;
    }
    let compared = compare(&cluster.client, index, source, mode).await?;
    let equal = compared.stale == 0
        && compared.missing == 0
        && (mode == Mode::None || compared.version_mismatch == 0);
    println!(
        "\n== {}: {} deliveries in {} bulks by {workers} workers: {} written, {} refused (409) \
         and dropped; {} of {} rows stale; the index {} the source",
        mode.name(),
        total.deliveries,
        total.batches,
        total.written,
        total.dropped,
        compared.stale,
        source.rows.len(),
        if equal { "equals" } else { "differs from" }
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "external_sync",
            "mode": mode.name(),
            "workers": workers,
            "rows": source.rows.len(),
            "changes": source.log.len(),
            "deliveries": total.deliveries,
            "written": total.written,
            "dropped": total.dropped,
            "stale_rows": compared.stale,
            "missing_rows": compared.missing,
            "version_mismatches": compared.version_mismatch,
            "equals_source": equal,
        }),
    );
    let redeliveries = source.log.iter().filter(|c| c.redelivered).count() as u64;
    claims.check(
        total.deliveries == source.log.len() as u64 + redeliveries
            && total.written + total.dropped == total.deliveries,
        format!(
            "{}: every change was delivered (redeliveries included) and each was written or \
             dropped",
            mode.name()
        ),
    );
    match mode {
        Mode::None => {
            claims.check(
                total.dropped == 0,
                "none: every delivery was written, nothing was refused",
            );
            claims.check(
                compared.stale > 0,
                format!(
                    "none: the index ends with stale rows ({} of {})",
                    compared.stale,
                    source.rows.len()
                ),
            );
        }
        Mode::External | Mode::ExternalGte => {
            claims.check(
                total.dropped > 0,
                format!(
                    "{}: stale changes came back as 409s and were dropped",
                    mode.name()
                ),
            );
            claims.check(
                equal,
                format!(
                    "{}: the index equals the source, every row at its version, none stale",
                    mode.name()
                ),
            );
        }
    }
    Ok((total, compared))
}

/// Takes batches off the queue until it is empty, each as one bulk; a 409 item is a change the
/// index already has, or has something newer than, and is dropped.
async fn worker(
    client: &Elasticsearch,
    index: &str,
    queue: &Mutex<VecDeque<Change>>,
    mode: Mode,
) -> Result<Delivery> {
    let mut seen = Delivery::default();
    loop {
        let batch: Vec<Change> = {
            let mut queue = queue.lock().expect("the queue");
            let n = queue.len().min(BATCH);
            let batch: Vec<Change> = queue.drain(..n).collect();
            for change in &batch {
                if change.redelivered {
                    // Taken, but its ack will be lost: the queue hands it out again later.
                    queue.push_back(Change {
                        redelivered: false,
                        ..change.clone()
                    });
                }
            }
            batch
        };
        if batch.is_empty() {
            return Ok(seen);
        }
        // Transit time: batches taken in one order land in another.
        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..3000))).await;
        // ANCHOR: versioned
        let operations: Vec<BulkOperation<Value>> = batch
            .iter()
            .map(|change| {
                let row =
                    json!({ "price": change.price, "version": change.version });
                let item = BulkOperation::index(row).id(&change.id);
                match mode.version_type() {
                    None => item.into(),
                    Some(version_type) => item
                        .version(change.version)
                        .version_type(version_type)
                        .into(),
                }
            })
            .collect();
        let answer = bulk::send(client, index, operations).await?;
        for item in &answer.items {
            match item.outcome()? {
                Outcome::Written(_) => seen.written += 1,
                // The index has this version or a newer one: nothing to do.
                Outcome::Conflict(_) => seen.dropped += 1,
            }
        }
        // ANCHOR_END: versioned
        seen.batches += 1;
        seen.deliveries += batch.len() as u64;
    }
}

/// Every row of the source against its document: same version and price?
async fn compare(
    client: &Elasticsearch,
    index: &str,
    source: &Database,
    mode: Mode,
) -> Result<Comparison> {
    let ids: Vec<&str> = source.rows.keys().map(String::as_str).collect();
    let docs = bulk::read_all(client, index, &ids).await?;
    let mut compared = Comparison::default();
    for (id, &(version, price)) in &source.rows {
        let Some(doc) = docs.get(id) else {
            compared.missing += 1;
            continue;
        };
        if doc.number("version")? != version || doc.number("price")? != price {
            compared.stale += 1;
        }
        if mode != Mode::None && doc.version != version {
            compared.version_mismatch += 1;
        }
    }
    Ok(compared)
}

/// Writes `{"price": price}` to `id` with `version` and `version_type` (or with neither),
/// and says what came back.
async fn versioned_put(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    price: i64,
    version: Option<(i64, VersionType)>,
) -> Result<Answer> {
    let body = json!({ "price": price });
    let mut request = client
        .index(IndexParts::IndexId(index, id))
        .body(body.clone());
    if let Some((version, version_type)) = version {
        request = request.version(version).version_type(version_type);
    }
    let answer = Answer::of(request.send().await?).await?;
    let shown = match version {
        Some((v, t)) => format!("version={v}&version_type={}", type_name(t)),
        None => "(no version)".to_string(),
    };
    println!("PUT {id} {body} {shown} -> {}", answer.summary());
    Ok(answer)
}

fn type_name(version_type: VersionType) -> &'static str {
    match version_type {
        VersionType::External => "external",
        VersionType::ExternalGte => "external_gte",
        VersionType::Internal => "internal",
    }
}

/// The edges: an equal version with other content, a plain write among versioned ones, and a
/// versioned delete.
async fn edges(cluster: &Cluster, index: &str, claims: &mut Claims) -> Result<()> {
    let started = Instant::now();
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;
    use VersionType::{External, ExternalGte};

    println!("\n== an equal version with different content");
    // ANCHOR: equal
    let put = |id, price, version| versioned_put(client, index, id, price, version);
    // The newer content at version 5 arrives first; an older one that carries the same
    // version 5 (two edits within one tick of the source's version clock) arrives second.
    put("eq", 20, Some((5, External))).await?;
    let external = put("eq", 10, Some((5, External))).await?.status;
    let gte = put("eq", 10, Some((5, ExternalGte))).await?.status;
    // ANCHOR_END: equal
    let now = doc::read(client, index, "eq").await?;
    println!(
        "the document now: price {} at _version {}",
        now.number("price")?,
        now.version
    );
    claims.check(
        external == 409,
        "external: an equal version is a 409 (the first arrival stays)",
    );
    claims.check(
        gte == 200 && now.number("price")? == 10 && now.version == 5,
        "external_gte: an equal version overwrites, silently (HTTP 200, price 20 replaced by 10, \
         _version still 5)",
    );

    println!("\n== a plain write into an externally versioned index");
    put("mix", 30, Some((5, External))).await?;
    let plain = put("mix", 99, None).await?;
    let next = put("mix", 31, Some((6, External))).await?.status;
    let now = doc::read(client, index, "mix").await?;
    claims.check(
        plain.body["_version"] == 6 && next == 409 && now.number("price")? == 99,
        "a plain write bumps _version (5 -> 6), and the source's real change 6 is then dropped as \
         stale: the index keeps the plain write",
    );

    println!("\n== a delete with a version");
    put("del", 40, Some((6, External))).await?;
    let response = client
        .delete(elasticsearch::DeleteParts::IndexId(index, "del"))
        .version(7)
        .version_type(External)
        .send()
        .await?;
    let deleted = Answer::of(response).await?;
    println!(
        "DELETE del version=7&version_type=external -> {}",
        deleted.summary()
    );
    let late = put("del", 40, Some((6, External))).await?.status;
    let gone = doc::find(client, index, "del").await?.is_none();
    claims.check(
        deleted.status == 200 && late == 409 && gone,
        "a late change older than a versioned delete is a 409: the row stays deleted",
    );

    println!("\n== if_seq_no and an external version on one write");
    let seen = doc::read(client, index, "mix").await?;
    let response = client
        .index(IndexParts::IndexId(index, "mix"))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .version(seen.version + 1)
        .version_type(External)
        .body(json!({ "price": 32 }))
        .send()
        .await?;
    let both = Answer::of(response).await?;
    println!(
        "PUT mix if_seq_no={}&if_primary_term={}&version={}&version_type=external -> {}",
        seen.seq_no,
        seen.primary_term,
        seen.version + 1,
        both.summary()
    );
    claims.check(
        both.status == 400
            && both
                .reason()
                .contains("compare and write operations can not use versioning"),
        "if_seq_no and version_type=external do not mix: HTTP 400",
    );
    println!();
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "external_sync",
            "mode": "edges",
            "equal_version_external": external,
            "equal_version_external_gte": gte,
            "after_plain_write": next,
            "after_delete": late,
            "if_seq_no_with_external": both.status,
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(
        mode: Mode,
        workers: u32,
        index: &str,
    ) -> (Claims, Delivery, Comparison) {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let source = Database::generate();
        let mut claims = Claims::new();
        let (delivery, compared) =
            sync(&cluster, index, &source, mode, workers, &mut claims)
                .await
                .expect("the sync runs");
        (claims, delivery, compared)
    }

    /// Four workers, plain index items, late redeliveries: the index ends with stale rows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn without_versions_the_index_ends_stale() {
        let (claims, delivery, compared) =
            run(Mode::None, 4, "test-sync-none").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(delivery.dropped, 0);
        assert!(compared.stale > 0);
    }

    /// The same with version_type=external: stale deliveries are 409s and the index equals the
    /// source.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn with_external_versions_the_index_equals_the_source() {
        let (claims, delivery, compared) =
            run(Mode::External, 4, "test-sync-external").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert!(delivery.dropped > 0);
        assert_eq!((compared.stale, compared.version_mismatch), (0, 0));
    }

    /// One worker: no parallel reordering, yet the late redeliveries alone make the unversioned
    /// index stale, and external versions still make it equal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_worker_with_redeliveries_needs_versions_too() {
        let (claims, _, compared) = run(Mode::None, 1, "test-sync-one-none").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert!(compared.stale > 0);
        let (claims, _, compared) =
            run(Mode::ExternalGte, 1, "test-sync-one-gte").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(compared.stale, 0);
    }

    /// external refuses an equal version, external_gte overwrites it; a plain write breaks the
    /// scheme; a versioned delete turns away older changes.
    #[tokio::test]
    async fn the_edges_behave_as_the_chapter_says() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let mut claims = Claims::new();
        edges(&cluster, "test-sync-edges", &mut claims)
            .await
            .expect("the requests run");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
