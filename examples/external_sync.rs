//! Chapter 13: syncing from a source of truth with external versions.
//!
//! A primary database (simulated here) holds 40 product rows whose `version` grows by one on
//! every change. 4 workers copy its log of 200 changes into Elasticsearch, taking batches of 5
//! off a shared queue and sending each as one `_bulk`: batches land out of order, and about one
//! change in ten is delivered again, late (an at-least-once queue that lost an ack). The log is
//! sent three times: plain `index` items, then with the row's version and
//! `version_type=external`, then with `external_gte`.
//!
//! Run it: `cargo run --example external_sync` (or `-- --workers 1`, `-- --mode external`).
//! You should see stale rows without versions, and an index equal to the source with either
//! version type, its stale deliveries refused (409) and dropped.

use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::params::VersionType::{self, External, ExternalGte};
use elasticsearch::{BulkOperation, Elasticsearch};
use esbook::{Cluster, Needs, bulk, doc, doc::Outcome};
use harness::{cli::Args, report, report::Claims};
use serde_json::json;

const INDEX: &str = "products";
const ROWS: usize = 40;
const UPDATES: usize = 160; // after the 40 inserts, each to a row chosen at random
const BATCH: usize = 5;

// ANCHOR: source
/// One change of the source's log: row `id` now has `price`, at `version`.
#[derive(Debug, Clone)]
struct Change {
    id: String,
    version: i64,
    price: i64,
    /// The queue will hand this change out a second time, late.
    redelivered: bool,
}

/// The source's change log, in commit order: 40 inserts, then 160 updates to random rows. A
/// row's version only ever grows.
fn change_log() -> Vec<Change> {
    let mut versions: BTreeMap<String, i64> = BTreeMap::new();
    let updates = (0..UPDATES).map(|_| fastrand::usize(0..ROWS));
    let rows = (0..ROWS).chain(updates).map(|row| format!("row-{row:02}"));
    rows.map(|id| {
        let version = versions.entry(id.clone()).or_default();
        *version += 1;
        let (price, redelivered) =
            (fastrand::i64(1..1000), fastrand::u32(0..10) == 0);
        Change {
            id,
            version: *version,
            price,
            redelivered,
        }
    })
    .collect()
}

/// The source's rows as they are now: each row's newest change.
fn rows(log: &[Change]) -> BTreeMap<&str, &Change> {
    log.iter()
        .map(|change| (change.id.as_str(), change))
        .collect()
}
// ANCHOR_END: source

// ANCHOR: worker
type Queue = Arc<Mutex<VecDeque<Change>>>;

/// Takes batches off the queue until it is empty, each as one `_bulk`; each item carries the
/// row's version if `versions` is set.
async fn worker(
    client: Elasticsearch,
    index: String,
    queue: Queue,
    versions: Option<VersionType>,
) -> Result<Synced> {
    let mut seen = Synced::default();
    loop {
        let batch: Vec<Change> = {
            let mut queue = queue.lock().expect("the queue");
            let n = queue.len().min(BATCH);
            let batch: Vec<Change> = queue.drain(..n).collect();
            // Taken, but its ack will be lost: the queue hands it out again, later.
            let again = batch.iter().filter(|c| c.redelivered).cloned();
            queue.extend(again.map(|c| Change {
                redelivered: false,
                ..c
            }));
            batch
        };
        if batch.is_empty() {
            return Ok(seen);
        }
        // Transit time: batches taken in one order land in another.
        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..3000))).await;
        let items = batch.iter().map(|change| {
            let row = json!({ "price": change.price, "version": change.version });
            let item = BulkOperation::index(row).id(&change.id);
            match versions {
                None => item,
                Some(versions) => {
                    item.version(change.version).version_type(versions)
                }
            }
        });
        let answer =
            bulk::send(&client, &index, items.map(Into::into).collect()).await?;
        for item in &answer.items {
            match item.outcome()? {
                Outcome::Written(_) => seen.written += 1,
                // The index has this version or a newer one: nothing to do.
                Outcome::Conflict(_) => seen.dropped += 1,
            }
        }
        seen.batches += 1;
    }
}
// ANCHOR_END: worker

// ANCHOR: sync
/// Sends the whole log into a fresh `index` with `workers` workers at once, then compares
/// every row of the source with its document.
async fn sync(
    cluster: &Cluster,
    index: &str,
    log: &[Change],
    (mode, versions): (&'static str, Option<VersionType>),
    workers: u32,
) -> Result<Synced> {
    doc::fresh_index(&cluster.client, index).await?;
    let queue: Queue = Arc::new(Mutex::new(log.iter().cloned().collect()));
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let client = cluster.client.clone();
        running.spawn(worker(client, index.into(), queue.clone(), versions));
    }
    let mut total = Synced {
        mode,
        workers,
        versioned: versions.is_some(),
        ..Synced::default()
    };
    while let Some(joined) = running.join_next().await {
        let seen = joined.context("a worker panicked")??;
        total.batches += seen.batches;
        total.written += seen.written;
        total.dropped += seen.dropped;
    }
    let rows = rows(log);
    let ids: Vec<&str> = rows.keys().copied().collect();
    let docs = bulk::read_all(&cluster.client, index, &ids).await?; // all must exist
    for (id, row) in rows {
        let doc = &docs[id];
        if doc.number("version")? != row.version
            || doc.number("price")? != row.price
        {
            total.stale += 1;
        }
        // With external versions, `_version` is the row's version.
        if versions.is_some() && doc.version != row.version {
            total.version_mismatches += 1;
        }
    }
    let verdict = if total.equal() {
        "equals"
    } else {
        "differs from"
    };
    println!(
        "\n{mode}: {} deliveries in {} bulks by {workers} workers: {} written, {} refused \
         (409) and dropped\n  {} of {ROWS} rows stale: the index {verdict} the source",
        total.written + total.dropped,
        total.batches,
        total.written,
        total.dropped,
        total.stale,
    );
    Ok(total)
}
// ANCHOR_END: sync

const MODES: [(&str, Option<VersionType>); 3] = [
    ("none", None),
    ("external", Some(External)),
    ("external_gte", Some(ExternalGte)),
];

const USAGE: &str = "usage: cargo run --example external_sync -- \
                     [--mode all|none|external|external_gte] [--workers N]";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let mut args = Args::from_env(USAGE)?;
        let names = ["all", "none", "external", "external_gte"];
        let mode = args.choice("mode", "all", &names)?;
        let workers = args.number("workers", 4, 1..=32)?;
        args.finish()?;
        let cluster = Cluster::connect(Needs::Core).await?;
        println!("Connected to {cluster}\n");
        let log = change_log();
        let twice = log.iter().filter(|c| c.redelivered).count();
        let changes = log.len();
        println!(
            "The source: {ROWS} rows, {changes} changes in its log; {twice} of them will \
             be delivered twice"
        );
        let mut claims = Claims::new();
        for m in MODES.into_iter().filter(|m| mode == "all" || mode == m.0) {
            let started = Instant::now();
            let synced = sync(&cluster, INDEX, &log, m, workers).await?;
            synced.report(&cluster, started.elapsed(), &log);
            synced.check(&mut claims, &log);
        }
        claims.into_result()
    })
    .await
}

/// What a sync did, and how its index compares with the source.
#[derive(Debug, Default)]
struct Synced {
    mode: &'static str,
    workers: u32,
    versioned: bool,
    batches: u64,
    written: u64,
    /// Items refused with a 409 (stale or duplicate), and dropped.
    dropped: u64,
    stale: usize,
    version_mismatches: usize,
}

impl Synced {
    fn equal(&self) -> bool {
        self.stale == 0 && self.version_mismatches == 0
    }

    /// The chapter's claims about one sync, checked quietly.
    fn check(&self, claims: &mut Claims, log: &[Change]) {
        let mode = self.mode;
        let mut check =
            |holds, what| claims.check(holds, format!("{mode}: {what}"));
        let sent: u64 = log.iter().map(|c| 1 + c.redelivered as u64).sum();
        check(
            self.written + self.dropped == sent,
            "every change was delivered",
        );
        if self.versioned {
            check(self.dropped > 0, "stale changes came back as 409s");
            check(self.equal(), "the index equals the source");
        } else {
            check(self.dropped == 0, "every delivery was written");
            check(self.stale > 0, "the index ends with stale rows");
        }
    }

    /// The sync's machine-readable result.
    fn report(&self, cluster: &Cluster, elapsed: Duration, log: &[Change]) {
        let fields = json!({
            "example": "external_sync",
            "mode": self.mode,
            "workers": self.workers,
            "rows": rows(log).len(),
            "changes": log.len(),
            "deliveries": self.written + self.dropped,
            "written": self.written,
            "dropped": self.dropped,
            "stale_rows": self.stale,
            "missing_rows": 0, // sync() fails on a missing row
            "version_mismatches": self.version_mismatches,
            "equals_source": self.equal(),
        });
        report::result(cluster, elapsed, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    async fn run(mode: &str, workers: u32, index: &str) -> (Claims, Synced) {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let log = change_log();
        let mode = MODES.into_iter().find(|m| m.0 == mode).expect("a mode");
        let synced = sync(&cluster, index, &log, mode, workers)
            .await
            .expect("the sync runs");
        let mut claims = Claims::new();
        synced.check(&mut claims, &log);
        (claims, synced)
    }

    /// One worker: no parallel reordering, yet the late redeliveries alone make the unversioned
    /// index stale, and external versions still make it equal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_worker_with_redeliveries_needs_versions_too() {
        let (claims, synced) = run("none", 1, "test-sync-one-none").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert!(synced.stale > 0);
        let (claims, synced) = run("external_gte", 1, "test-sync-one-gte").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(synced.stale, 0);
    }

    /// The recorded run has the shape the chapter describes: stale rows without versions, none
    /// with either external type, the same deliveries each time.
    #[test]
    fn the_recorded_run_is_stale_without_versions_and_equal_with_them() {
        let none = recorded::result("external_sync", "mode", "none");
        assert!(
            none["stale_rows"].as_u64().unwrap() > 0,
            "no stale rows without versions"
        );
        assert_eq!(
            (none["dropped"].as_u64(), none["equals_source"].as_bool()),
            (Some(0), Some(false))
        );
        assert_eq!(none["written"], none["deliveries"]);
        for mode in ["external", "external_gte"] {
            let run = recorded::result("external_sync", "mode", mode);
            assert_eq!(run["stale_rows"], 0, "{mode}");
            assert_eq!(run["equals_source"], true, "{mode}");
            assert!(run["dropped"].as_u64().unwrap() > 0, "{mode}: no 409");
            assert_eq!(
                run["deliveries"], none["deliveries"],
                "{mode}: the same deliveries"
            );
        }
    }

    /// Every number chapter 13 quotes about the pipeline is the example's, or its run's.
    #[test]
    fn the_chapter_quotes_the_pipeline_and_its_run() {
        let chapter = recorded::chapter("ch13-00-external-versions.md");
        let chapter = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        let none = recorded::result("external_sync", "mode", "none");
        let rows =
            recorded::quoted(&chapter, r"\*\*The source\*\*: (\d+) product rows");
        assert_eq!(rows, ROWS.to_string());
        assert_eq!(rows, none["rows"].to_string());
        let updates =
            recorded::quoted(&chapter, r"(\d+) updates to rows chosen at random");
        assert_eq!(updates, UPDATES.to_string());
        let changes = recorded::quoted(&chapter, r"change log of (\d+) changes");
        assert_eq!(changes, none["changes"].to_string());
        assert_eq!(
            recorded::quoted(&chapter, r"batches of (\d+) changes"),
            BATCH.to_string()
        );
        assert_eq!(
            recorded::quoted(&chapter, r"workers \((\d+) by default\)"),
            none["workers"].to_string()
        );
        assert_eq!(
            recorded::quoted(&chapter, r"recorded run, \*\*(\d+)\*\* of the"),
            none["stale_rows"].to_string()
        );
        let dropped = [
            recorded::quoted(&chapter, r"dropped (\d+) deliveries with `external`"),
            recorded::quoted(&chapter, r"and (\d+) with `external_gte`"),
        ];
        assert_eq!(
            dropped,
            ["external", "external_gte"].map(|m| recorded::result(
                "external_sync",
                "mode",
                m
            )["dropped"]
                .to_string())
        );
    }
}
