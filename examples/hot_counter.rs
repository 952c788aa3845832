//! Chapter 15: hot documents.
//!
//! Ten clients make 25 increments each, all at once, three ways in turn: `single` (one counter
//! document, chapter 6's OCC loop), `sharded` (the same loop on one of 16 documents picked at
//! random, `esbook::counter::ShardedCounter`) and `events` (each increment creates a document;
//! the total is a count). Run it: `cargo run --example hot_counter` (or `-- --design sharded
//! --clients 20 --per-client 10 --shards 32`). You should see exactly 250 each time, many
//! conflicts for the single document, several times fewer sharded, none for the events (whose
//! count is 0 until a refresh), and a table of conflicts and wall time against the single's.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use anyhow::Result;
use elasticsearch::{CreateParts, Elasticsearch};
use esbook::doc::{self, Outcome};
use esbook::retry::Tally;
use esbook::{Cluster, Needs, indices};
use harness::cli::Args;
use harness::race::{self, Contender, Race, Run, Sharded, Step};
use harness::report::{self, Claims};
use serde_json::json;

const INDEX: &str = "hot";

// ANCHOR: event
/// Design 3: no counter document. Each increment creates an (empty) document
/// of its own, with an id the client chooses (`visit-0`, `visit-1`, ...);
/// the total is a count (and what it was before the refresh is kept).
#[derive(Debug, Default)]
struct Events {
    next_id: AtomicU64,
    before_refresh: AtomicU64,
}

impl Contender for Events {
    /// A create of a new id has nothing to collide with; sent again after a
    /// lost answer, it is a 409 "already exists", not a second count.
    fn increment<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        _counter: &'a str,
        _race: &'a Race,
    ) -> Step<'a, Tally> {
        Box::pin(async move {
            let id = format!("visit-{}", self.next_id.fetch_add(1, Relaxed));
            let response = client
                .create(CreateParts::IndexId(index, &id))
                .body(json!({}))
                .send()
                .await?;
            Ok(match doc::outcome(response).await? {
                Outcome::Written(answer) => Tally::written(&answer),
                Outcome::Conflict(error) => Tally::conflict(&error),
            })
        })
    }
    // ANCHOR_END: event
    // ANCHOR: count
    /// The total is a count, and a count is a search: it sees only what the
    /// last refresh made visible.
    fn count<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        _counter: &'a str,
    ) -> Step<'a, u64> {
        Box::pin(async move {
            let all = || json!({ "match_all": {} });
            let unrefreshed = indices::count(client, index, all()).await?;
            self.before_refresh.store(unrefreshed, Relaxed);
            indices::refresh(client, index).await?;
            let counted = indices::count(client, index, all()).await?;
            println!("a count saw {unrefreshed} before a refresh, {counted} after");
            Ok(counted)
        })
    }

    /// Automatic refresh off: what a count sees depends only on explicit
    /// refreshes, not on timing.
    fn prepare<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        _ids: &'a [String],
    ) -> Step<'a, ()> {
        Box::pin(async move {
            doc::fresh_index(client, index).await?;
            let no_refresh = json!({ "refresh_interval": "-1" });
            indices::put_settings(client, index, no_refresh).await
        })
    }
    // ANCHOR_END: count

    fn name(&self) -> &str {
        "events"
    }
}

// ANCHOR: main
#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let (chosen, race, shards) = flags()?;
        let cluster = Cluster::connect(Needs::Core).await?;
        let (n, m) = (race.clients, race.per_client);
        println!("Connected to {cluster}\n\n{n} clients x {m} increments\n");
        warm_up(&cluster, race).await?;
        let events = Arc::new(Events::default());
        let designs: [(&str, Arc<dyn Contender>); 3] = [
            // Design 1: one shard is one document, with chapter 6's loop.
            ("single", Arc::new(Sharded { shards: 1 })),
            // Design 2: the same loop, on one of `shards` documents (16 by default).
            ("sharded", Arc::new(Sharded { shards })),
            ("events", events.clone()),
        ];
        let mut runs = Vec::new();
        for (name, design) in designs {
            if chosen == "all" || chosen == name {
                let run = race::run(&cluster, INDEX, design, race).await?;
                println!("{}", run.summary(name));
                runs.push((name, run));
            }
        }
        println!("\n{}", race::compare(&runs));
        report(&cluster, &runs, (race, shards), &events)
    })
    .await
}
// ANCHOR_END: main

/// `--design`, and the race the flags ask for: 10 clients x 25 increments by default.
fn flags() -> Result<(String, Race, u32)> {
    let mut args = Args::from_env(
        "usage: cargo run --example hot_counter -- [--design all|single|sharded|events] \
         [--clients N] [--per-client M] [--shards S]",
    )?;
    let designs = ["all", "single", "sharded", "events"];
    let design = args.choice("design", "all", &designs)?;
    let race = Race {
        clients: args.number("clients", 10, 1..=100)?,
        per_client: args.number("per-client", 25, 1..=10_000)?,
        ..Race::default()
    };
    let shards = args.number("shards", 16, 1..=1000)?;
    args.finish()?;
    Ok((design, race, shards))
}

/// An untimed round, so that the first design measured does not pay for a cold server.
async fn warm_up(cluster: &Cluster, mut race: Race) -> Result<()> {
    race.per_client = 5;
    let single = Arc::new(Sharded { shards: 1 });
    race::run(cluster, INDEX, single, race).await.map(drop)
}

/// The `RESULT` lines (`OCC_RESULTS=1`) and the checks:
/// every increment counted; none of the events conflicted or was counted before the refresh.
fn report(
    cluster: &Cluster,
    runs: &[(&str, Run)],
    (race, shards): (Race, u32),
    events: &Events,
) -> Result<usize> {
    let mut claims = Claims::new();
    let single = runs.iter().find(|(name, _)| *name == "single");
    for (design, run) in runs {
        let (t, ms) = (run.total, run.elapsed.as_millis() as u64);
        let mut result = json!({
            "example": "hot_counter", "design": design,
            "clients": race.clients, "per_client": race.per_client,
            "documents": match *design {
                "single" => 1, "sharded" => u64::from(shards), _ => t.acknowledged,
            },
            "expected": run.expected, "total": run.counted, "landed": t.acknowledged,
            "failed": t.failed, "conflicts": t.conflicts,
            "conflicts_per_increment": run.conflicts_per_increment(), "wall_ms": ms,
        });
        run.check(design, false, &race, &mut claims);
        if *design == "events" {
            let unrefreshed = events.before_refresh.load(Relaxed);
            result["count_before_refresh"] = json!(unrefreshed);
            claims.check(t.conflicts == 0, "events: no create conflicted");
            let unseen = format!("events: {unrefreshed} seen before the refresh");
            claims.check(unrefreshed == 0, unseen);
        }
        let sharded = single.filter(|_| *design == "sharded" && shards > 1);
        if let Some((_, one)) = sharded {
            let (n, of) = (t.conflicts, one.total.conflicts);
            let fewer = format!("sharded: fewer conflicts: {n} < {of}");
            claims.check(n < of || of == 0, fewer);
        }
        report::result(cluster, run.elapsed, result);
    }
    claims.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;
    use serde_json::Value;

    /// Runs `design` with the example's default load (10 clients x 25 increments) on `index`,
    /// and checks that every increment was counted.
    async fn measure(design: Arc<dyn Contender>, index: &str) -> Run {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let race = Race {
            clients: 10,
            per_client: 25,
            ..Race::default()
        };
        let run = race::run(&cluster, index, design, race)
            .await
            .expect("the load runs");
        let mut claims = Claims::new();
        run.check("design", false, &race, &mut claims);
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!((run.counted, run.total.failed), (250, 0));
        run
    }

    /// Ten clients on one document: exactly 250, paid for in conflicts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_single_document_counts_exactly_and_conflicts() {
        let run = measure(Arc::new(Sharded { shards: 1 }), "test-hot-single").await;
        assert!(
            run.total.conflicts > 0,
            "ten clients on one document never collided"
        );
    }

    /// The recorded run has the shape chapter 15 describes: exact totals for the three designs;
    /// more than one conflict per increment for the single document, several times fewer
    /// sharded, none for the events, whose count before the refresh was 0; no `RESULT` or
    /// per-claim line in what the book shows.
    #[test]
    fn the_recorded_run_has_the_shape_the_chapter_describes() {
        let by = |design| recorded::result("hot_counter", "design", design);
        let (single, sharded, events) = (by("single"), by("sharded"), by("events"));
        for run in [&single, &sharded, &events] {
            assert_eq!(
                (run["clients"].as_u64(), run["per_client"].as_u64()),
                (Some(10), Some(25))
            );
            assert_eq!(run["total"], 250, "{run}");
            assert_eq!(
                (run["landed"].as_u64(), run["failed"].as_u64()),
                (Some(250), Some(0))
            );
            assert!(run["wall_ms"].is_u64(), "{run}: no wall time");
        }
        assert_eq!(single["documents"], 1);
        assert_eq!(sharded["documents"], 16);
        let conflicts = |run: &Value| run["conflicts"].as_u64().unwrap();
        assert!(
            conflicts(&single) > 250,
            "the prose says more than one conflict per increment for the single document"
        );
        assert!(
            conflicts(&sharded) * 4 < conflicts(&single),
            "the prose says several times fewer conflicts for the sharded counter"
        );
        assert_eq!(conflicts(&events), 0);
        assert_eq!(events["count_before_refresh"], 0);
        let output = recorded::output("hot_counter");
        assert!(
            !output.contains("RESULT") && !output.contains("claim holds"),
            "{output}"
        );
    }

    /// Every number chapter 15 quotes from the recorded run is the run's: the ratios are the
    /// table's, as the recorded output prints it.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let by = |design| recorded::result("hot_counter", "design", design);
        let (single, sharded, events) = (by("single"), by("sharded"), by("events"));
        let chapter = recorded::chapter("ch15-00-hot-documents.md");
        let quoted = |pattern| recorded::quoted(&chapter, pattern);
        let output = recorded::output("hot_counter");
        let row = r"\nsharded\s+\d+\s+[\d.]+\s+";
        let conflicts_ratio =
            recorded::quoted(&output, &format!(r"{row}([\d.]+)x"));
        let wall =
            recorded::quoted(&output, &format!(r"{row}[\d.]+x\s+\d+\s+([\d.]+)x"));
        assert_eq!(quoted(r"All three count\s+\*\*exactly (\d+)\*\*"), "250");
        assert_eq!(
            quoted(r"\*\*single\*\*: (\d+) conflicts"),
            single["conflicts"].to_string()
        );
        assert_eq!(
            quoted(r"\*\*single\*\*: \d+ conflicts for (\d+) increments"),
            single["expected"].to_string()
        );
        assert_eq!(
            quoted(r"\*\*sharded\*\*: (\d+) conflicts"),
            sharded["conflicts"].to_string()
        );
        assert_eq!(
            quoted(r"(\d\.\d\d) times the\s+single document's conflicts"),
            conflicts_ratio
        );
        assert_eq!(quoted(r"(\d\.\d\d) times its\s+wall time"), wall);
        assert_eq!(
            quoted(r"With (\d+) documents for \d+ clients"),
            sharded["documents"].to_string()
        );
        assert_eq!(
            quoted(r"With \d+ documents for (\d+) clients"),
            sharded["clients"].to_string()
        );
        assert_eq!(
            quoted(r"N documents \((\d+) here\)"),
            sharded["documents"].to_string()
        );
        assert_eq!(
            quoted(r"count right after the increments\s+is \*\*(\d+)\*\*"),
            events["count_before_refresh"].to_string()
        );
    }
}
