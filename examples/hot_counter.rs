//! Chapter 15: hot documents.
//!
//! One counter that every client increments is OCC's worst case: every increment of every
//! client competes for the same `_seq_no`. This example runs the same clients and the same
//! increments (10 clients x 25 increments by default, as in chapter 7) three ways, one after the
//! other, on the same server:
//!
//! - `single`: one counter document, chapter 6's OCC loop (read, write `if_seq_no`, retry).
//! - `sharded`: the same loop on one of N counter documents chosen at random (16 by default),
//!   the total summed on read with one realtime `_mget` ([`esbook::counter::ShardedCounter`];
//!   with N = 1 it is exactly the `single` design).
//! - `events`: no counter document at all; each increment creates its own small document
//!   (create-only, so nothing to conflict with), and the total is a count. Searches see only
//!   refreshed writes: the example turns automatic refresh off to show the count before and
//!   after a refresh.
//!
//! Each design must count exactly; the table compares conflicts per increment and wall time
//! with the single document's, as ratios measured in the same run (nothing about time is
//! asserted: it depends on the machine).
//!
//! Run it: `cargo run --example hot_counter`, or e.g.
//! `cargo run --example hot_counter -- --clients 20 --per-client 10 --shards 32`.
//! Flags: `--design all|single|sharded|events`, `--clients N`, `--per-client M`, `--shards S`.
//! It exits non-zero if a design does not count exactly, if the sharded counter did not have
//! fewer conflicts than the single document, or if the events did conflict.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::indices::IndicesPutMappingParts;
use elasticsearch::{CreateParts, Elasticsearch};
use harness::cli::Args;
use esbook::counter::ShardedCounter;
use esbook::doc::{self, Outcome};
use esbook::indices;
use harness::report::{self, Claims};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs};
use serde_json::json;

const INDEX: &str = "hot";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Design {
    Single,
    Sharded,
    Events,
}

impl Design {
    const ALL: [Design; 3] = [Design::Single, Design::Sharded, Design::Events];

    fn name(self) -> &'static str {
        match self {
            Design::Single => "single",
            Design::Sharded => "sharded",
            Design::Events => "events",
        }
    }
}

/// The load: the same for every design.
#[derive(Debug, Clone, Copy)]
struct Load {
    clients: u32,
    per_client: u32,
    shards: u32,
    backoff: Backoff,
}

impl Default for Load {
    fn default() -> Load {
        Load {
            clients: 10,
            per_client: 25,
            shards: 16,
            backoff: Backoff::default(),
        }
    }
}

/// What one design's run measured.
#[derive(Debug, Default, Clone, Copy)]
struct Measured {
    expected: u64,
    landed: u64,
    failed: u64,
    conflicts: u64,
    total: i64,
    wall: Duration,
}

impl Measured {
    fn conflicts_per_increment(&self) -> f64 {
        self.conflicts as f64 / self.expected.max(1) as f64
    }
}

fn usage() -> String {
    "usage: cargo run --example hot_counter -- [--design all|single|sharded|events] \
     [--clients N] [--per-client M] [--shards S]"
        .to_string()
}

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let mut args = Args::from_env(&usage())?;
        let mut names = vec!["all"];
        names.extend(Design::ALL.map(Design::name));
        let design = args.choice("design", "all", &names)?;
        let defaults = Load::default();
        let load = Load {
            clients: args.number("clients", defaults.clients, 1..=100)?,
            per_client: args.number("per-client", defaults.per_client, 1..=10_000)?,
            shards: args.number("shards", defaults.shards, 1..=1000)?,
            backoff: defaults.backoff,
        };
        args.finish()?;
        let cluster = Cluster::connect(Needs::Core).await?;
        println!(
            "Connected to {cluster}\n\n{} clients x {} increments, {} shards for the sharded \
             counter",
            load.clients, load.per_client, load.shards
        );
        warm_up(&cluster, INDEX, load).await?;
        let mut claims = Claims::new();
        let mut measured = Vec::new();
        for d in Design::ALL {
            if design == "all" || design == d.name() {
                measured.push((d, run(&cluster, INDEX, d, load, &mut claims).await?));
            }
        }
        compare(&measured, load, &mut claims);
        claims.into_result()
    })
    .await
}

/// Runs `load` with `design` on a fresh `index`, prints its `RESULT` line and checks that it
/// counted exactly.
async fn run(
    cluster: &Cluster,
    index: &str,
    design: Design,
    load: Load,
    claims: &mut Claims,
) -> Result<Measured> {
    let started = Instant::now();
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;
    let counter = ShardedCounter::new(
        index,
        "visits",
        if design == Design::Sharded {
            load.shards
        } else {
            1
        },
    );
    // Everything a design needs before its first increment (documents, mappings) is done
    // here, outside the timed part.
    match design {
        Design::Single | Design::Sharded => counter.create(client).await?,
        Design::Events => prepare_events(client, index).await?,
    }
    println!("\n== {}", design.name());

    let clock = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for client_no in 0..load.clients {
        let (client, counter, index) =
            (client.clone(), counter.clone(), index.to_string());
        clients.spawn(async move {
            let mut seen = Measured::default();
            for n in 0..load.per_client {
                match design {
                    // ANCHOR: increment
                    Design::Single | Design::Sharded => {
                        let done = counter.increment(&client, load.backoff).await?;
                        seen.landed += done.acknowledged;
                        seen.failed += done.failed;
                        seen.conflicts += done.conflicts;
                    }
                    // ANCHOR_END: increment
                    Design::Events => {
                        let id = format!("visit-{client_no}-{n}");
                        match record_event(&client, &index, &id).await? {
                            Outcome::Written(_) => seen.landed += 1,
                            Outcome::Conflict(_) => seen.conflicts += 1,
                        }
                    }
                }
            }
            anyhow::Ok(seen)
        });
    }
    let mut measured = Measured {
        expected: u64::from(load.clients) * u64::from(load.per_client),
        ..Measured::default()
    };
    while let Some(joined) = clients.join_next().await {
        let seen = joined.context("a client task panicked")??;
        measured.landed += seen.landed;
        measured.failed += seen.failed;
        measured.conflicts += seen.conflicts;
    }
    measured.wall = clock.elapsed();

    let mut before_refresh = None;
    measured.total = match design {
        Design::Single | Design::Sharded => counter.total(client).await?,
        Design::Events => {
            // ANCHOR: count
            let all = json!({ "match_all": {} });
            let unrefreshed = indices::count(client, index, all.clone()).await?;
            indices::refresh(client, index).await?;
            let counted = indices::count(client, index, all).await?;
            // ANCHOR_END: count
            println!(
                "count right after the increments: {unrefreshed}; after a refresh: {counted}"
            );
            before_refresh = Some(unrefreshed as i64);
            counted as i64
        }
    };
    println!(
        "{}: total={} expected={} landed={} failed={} conflicts={} ({:.2} per increment) \
         wall={}ms",
        design.name(),
        measured.total,
        measured.expected,
        measured.landed,
        measured.failed,
        measured.conflicts,
        measured.conflicts_per_increment(),
        measured.wall.as_millis()
    );
    let mut result = json!({
        "example": "hot_counter",
        "design": design.name(),
        "clients": load.clients,
        "per_client": load.per_client,
        "documents": match design {
            Design::Events => json!(measured.landed),
            _ => json!(counter.shards),
        },
        "expected": measured.expected,
        "total": measured.total,
        "landed": measured.landed,
        "failed": measured.failed,
        "conflicts": measured.conflicts,
        "conflicts_per_increment": round2(measured.conflicts_per_increment()),
        "wall_ms": measured.wall.as_millis() as u64,
    });
    if let Some(unrefreshed) = before_refresh {
        result["count_before_refresh"] = json!(unrefreshed);
    }
    report::result(cluster, started.elapsed(), result);

    claims.check(
        measured.total == measured.expected as i64
            && measured.landed == measured.expected
            && measured.failed == 0,
        format!(
            "{}: exactly {} counted, every increment landed",
            design.name(),
            measured.expected
        ),
    );
    if let Some(unrefreshed) = before_refresh {
        claims.check(
            measured.conflicts == 0,
            "events: no increment conflicted: create-only documents have nothing to collide on",
        );
        claims.check(
            unrefreshed < measured.total,
            format!(
                "events: a count sees only refreshed writes ({unrefreshed} before the refresh, \
                 {} after)",
                measured.total
            ),
        );
    }
    Ok(measured)
}

// ANCHOR: event
/// One increment as its own document, created with a client-chosen id: it cannot meet another
/// client's write, and a retry after a lost answer is a 409 "already exists", not a double count.
async fn record_event(
    client: &Elasticsearch,
    index: &str,
    id: &str,
) -> Result<Outcome> {
    let response = client
        .create(CreateParts::IndexId(index, id))
        .body(json!({ "n": 1 }))
        .send()
        .await?;
    doc::outcome(response).await
}
// ANCHOR_END: event

/// Maps the events' one field (as the counter documents' field is mapped by their creation,
/// before the clock starts), and turns the automatic refresh off, so that what a search sees
/// depends only on explicit refreshes.
async fn prepare_events(client: &Elasticsearch, index: &str) -> Result<()> {
    let response = client
        .indices()
        .put_mapping(IndicesPutMappingParts::Index(&[index]))
        .body(json!({ "properties": { "n": { "type": "long" } } }))
        .send()
        .await?;
    doc::expect_success(response, "mapping the events").await?;
    indices::put_settings(client, index, json!({ "refresh_interval": "-1" })).await
}

/// A short untimed round of both kinds of write, so that the first design measured does not
/// pay alone for a server that has just started (caches, JIT).
async fn warm_up(cluster: &Cluster, index: &str, load: Load) -> Result<()> {
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;
    prepare_events(client, index).await?;
    let counter = ShardedCounter::new(index, "warm-up", 1);
    counter.create(client).await?;
    let mut clients = tokio::task::JoinSet::new();
    for client_no in 0..load.clients {
        let (client, counter, index) =
            (client.clone(), counter.clone(), index.to_string());
        clients.spawn(async move {
            for n in 0..5 {
                counter.increment(&client, load.backoff).await?;
                record_event(&client, &index, &format!("warm-{client_no}-{n}"))
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = clients.join_next().await {
        joined.context("a warm-up task panicked")??;
    }
    Ok(())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The designs side by side, as ratios against the single document of the same run.
fn compare(measured: &[(Design, Measured)], load: Load, claims: &mut Claims) {
    let Some((_, single)) = measured.iter().find(|(d, _)| *d == Design::Single)
    else {
        return;
    };
    println!(
        "\n{:<8} {:>9} {:>10} {:>14} {:>8} {:>16}",
        "design",
        "conflicts",
        "per incr.",
        "vs single",
        "wall ms",
        "wall vs single"
    );
    for (design, m) in measured {
        let conflicts_ratio = if single.conflicts == 0 {
            "-".to_string()
        } else {
            format!("{:.2}x", m.conflicts as f64 / single.conflicts as f64)
        };
        println!(
            "{:<8} {:>9} {:>10.2} {:>14} {:>8} {:>15.2}x",
            design.name(),
            m.conflicts,
            m.conflicts_per_increment(),
            conflicts_ratio,
            m.wall.as_millis(),
            m.wall.as_secs_f64() / single.wall.as_secs_f64()
        );
    }
    if let Some((_, sharded)) = measured.iter().find(|(d, _)| *d == Design::Sharded)
        && load.clients > 1
        && load.shards > 1
    {
        claims.check(
            sharded.conflicts < single.conflicts,
            format!(
                "sharded: fewer conflicts than the single document ({} against {}) for the \
                 same {} increments",
                sharded.conflicts, single.conflicts, single.expected
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn measure(design: Design, index: &str) -> (Claims, Measured) {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let mut claims = Claims::new();
        let measured = run(&cluster, index, design, Load::default(), &mut claims)
            .await
            .expect("the load runs");
        (claims, measured)
    }

    /// Ten clients on one document: exactly 250, paid for in conflicts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_single_document_counts_exactly_and_conflicts() {
        let (claims, m) = measure(Design::Single, "test-hot-single").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert!(
            m.conflicts > 0,
            "ten clients on one document never collided"
        );
    }

    /// The same clients on 16 shard documents: exactly 250, with fewer conflicts than the
    /// single document measured in the same test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_sharded_counter_counts_exactly_with_fewer_conflicts() {
        let (claims, sharded) = measure(Design::Sharded, "test-hot-sharded").await;
        assert!(claims.all_hold(), "{claims:?}");
        let (_, single) = measure(Design::Single, "test-hot-sharded").await;
        assert!(
            sharded.conflicts < single.conflicts,
            "{sharded:?} vs {single:?}"
        );
    }

    /// One created document per increment: no conflict at all, and the count is exact once
    /// refreshed (and not before).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn events_never_conflict_and_count_exactly_after_a_refresh() {
        let (claims, m) = measure(Design::Events, "test-hot-events").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!((m.conflicts, m.total), (0, 250));
    }
}
