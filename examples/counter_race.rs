//! Chapter 6, parts 2 and 3: the lost-update race, the notebook's second and third experiments.
//!
//! Five clients increment one counter fifty times each, all at once: without OCC, with OCC
//! (a write on condition of the `_seq_no`/`_primary_term` read, retried from a fresh read on a
//! 409), and on the server (a scripted `_update` with `retry_on_conflict`).
//!
//! Run it: `cargo run --example counter_race` (or `-- --strategy occ --clients 10 --per-client
//! 25`; `--max-attempts K` and `--retry-on-conflict R` too). You should see the counter below
//! 250 without OCC (a different number every run), and exactly 250 with OCC and on the server.
//!
//! `harness::race::run` starts the clients; chapter 16's benchmark includes this file and races
//! the very functions below.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use elasticsearch::{Elasticsearch, IndexParts, UpdateParts};
use esbook::retry::{Backoff, Tally, until_written};
use esbook::{Cluster, Needs, doc};
use harness::race::{self, Contender, Race, Step};
use harness::report::{self, Claims};
use serde_json::json;

const INDEX: &str = "conc_demo";

// ANCHOR: none
/// The notebook's `read_modify_write_no_occ`: GET, add one, write back
/// unconditionally.
async fn increment_without_occ(
    client: &Elasticsearch,
    index: &str,
    id: &str,
) -> Result<Tally> {
    let seen = doc::read(client, index, id).await?;
    let next = seen.number("counter")? + 1;
    let written = doc::put(client, index, id, json!({ "counter": next })).await?;
    Ok(Tally::written(&written))
}
// ANCHOR_END: none

// ANCHOR: occ
/// The notebook's `occ_increment`: the same GET, with `_seq_no` and
/// `_primary_term`, then a write on condition that they still hold. A 409
/// means another client wrote in between: the whole read-and-write is tried
/// again, a bounded number of times (`until_written`).
async fn increment_with_occ(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    backoff: Backoff,
) -> Result<Tally> {
    until_written(backoff, || async {
        let seen = doc::read(client, index, id).await?;
        let response = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "counter": seen.number("counter")? + 1 }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await
}
// ANCHOR_END: occ

// ANCHOR: server
/// The notebook's scripted update: the server reads, runs the script and
/// writes on condition of what it read, redoing all three up to
/// `retry_on_conflict` times. A 409 that outlasts those is retried here.
async fn increment_on_server(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    retry_on_conflict: u32,
    backoff: Backoff,
) -> Result<Tally> {
    until_written(backoff, || async {
        let response = client
            .update(UpdateParts::IndexId(index, id))
            .retry_on_conflict(i64::from(retry_on_conflict))
            .body(json!({
                "script": { "source": "ctx._source.counter += 1", "lang": "painless" }
            }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await
}
// ANCHOR_END: server

// ANCHOR: strategy
/// The three ways to increment. `race::run` gives each of its clients one
/// task, which calls `increment` `per_client` times in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    None,
    Occ,
    Server,
}

impl Contender for Strategy {
    fn increment<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
        race: &'a Race,
    ) -> Step<'a, Tally> {
        Box::pin(async move {
            match self {
                Strategy::None => increment_without_occ(client, index, id).await,
                Strategy::Occ => {
                    increment_with_occ(client, index, id, race.backoff).await
                }
                Strategy::Server => {
                    let retries = race.retry_on_conflict;
                    increment_on_server(client, index, id, retries, race.backoff)
                        .await
                }
            }
        })
    }

    fn name(&self) -> &str {
        match self {
            Strategy::None => "none",
            Strategy::Occ => "occ",
            Strategy::Server => "server",
        }
    }

    /// Scripts need Painless, which not every Elasticsearch has.
    fn needs(&self) -> Needs {
        match self {
            Strategy::Server => Needs::Scripting,
            Strategy::None | Strategy::Occ => Needs::Core,
        }
    }

    fn loses_increments(&self) -> bool {
        *self == Strategy::None
    }
}
// ANCHOR_END: strategy

// ANCHOR: main
#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let (chosen, race) =
            Race::from_env("counter_race", &["none", "occ", "server"])?;
        let cluster = Cluster::connect(Needs::Core).await?;
        let mut claims = Claims::new();
        let all = [Strategy::None, Strategy::Occ, Strategy::Server];
        for strategy in all
            .into_iter()
            .filter(|s| chosen == "all" || chosen == s.name())
        {
            // Scripts need Painless: `for_needs` finds a server that has it.
            let cluster = cluster.for_needs(strategy.needs()).await?;
            let run = race::run(&cluster, INDEX, Arc::new(strategy), race).await?;
            println!(
                "\n== {}: {} clients x {} increments on {cluster}\n{}",
                strategy.name(),
                race.clients,
                race.per_client,
                run.summary(strategy.name())
            );
            report(&cluster, strategy, race, &run, &mut claims);
        }
        claims.into_result()
    })
    .await
}
// ANCHOR_END: main

/// The machine-readable line of one strategy's run (`OCC_RESULTS=1`), and the checks of what
/// the chapter claims (see `race::Run::check`).
fn report(
    cluster: &Cluster,
    strategy: Strategy,
    race: Race,
    run: &race::Run,
    claims: &mut Claims,
) {
    let mut result = run.result_fields("counter_race", &strategy, &race);
    result["client_cpu_ms"] = json!(run.cpu.as_millis() as u64);
    report::result(cluster, run.elapsed, result);
    run.check(strategy.name(), strategy.loses_increments(), &race, claims);
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    async fn race(strategy: Strategy, index: &str) -> (Claims, Tally) {
        let cluster = Cluster::connect(strategy.needs()).await.expect("a cluster");
        let mut claims = Claims::new();
        let run = race::run(&cluster, index, Arc::new(strategy), Race::default())
            .await
            .expect("the race runs");
        run.check(
            strategy.name(),
            strategy.loses_increments(),
            &Race::default(),
            &mut claims,
        );
        (claims, run.total)
    }

    /// 5 clients x 50 conditional writes with retries: exactly 250, and the race really was a
    /// race (some writes conflicted).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn with_occ_every_increment_lands() {
        let (claims, tally) = race(Strategy::Occ, "test-race-occ").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(tally.acknowledged, 250);
        assert!(
            tally.conflicts > 0,
            "no conflict at all: the clients did not race"
        );
    }

    /// The recorded race says what chapter 6.2 says: without OCC all 250 writes acknowledged
    /// and the counter below 250; with OCC and on the server exactly 250, and OCC saw conflicts.
    #[test]
    fn the_recorded_race_has_the_shape_the_chapter_describes() {
        let none = recorded::result("counter_race", "strategy", "none");
        assert_eq!(
            (none["clients"].as_u64(), none["per_client"].as_u64()),
            (Some(5), Some(50))
        );
        assert!(
            none["final"].as_u64().unwrap() < 250,
            "without OCC the counter ends below 250"
        );
        assert_eq!(none["acknowledged"], 250);
        for strategy in ["occ", "server"] {
            let run = recorded::result("counter_race", "strategy", strategy);
            assert_eq!(run["final"], 250, "{strategy}");
            assert_eq!(run["acknowledged"], 250, "{strategy}");
            assert_eq!(run["failed"], 0, "{strategy}");
        }
        let occ = recorded::result("counter_race", "strategy", "occ");
        assert!(
            occ["conflicts"].as_u64().unwrap() > 0,
            "the OCC run saw no conflict"
        );
        let chapter = recorded::chapter("ch06-02-counter-race.md");
        let quoted = |pattern| recorded::quoted(&chapter, pattern);
        assert_eq!(
            quoted(r"ended at\s+(\d+), far below"),
            none["final"].to_string()
        );
        assert_eq!(
            quoted(r"(\d+) writes came back as 409"),
            occ["conflicts"].to_string()
        );
        let server = recorded::result("counter_race", "strategy", "server");
        let chapter = recorded::chapter("ch06-03-scripted-update.md");
        let shows = recorded::quoted(&chapter, r"the recorded\s+run shows (\d+)\)");
        assert_eq!(shows, server["conflicts"].to_string());
        let output = recorded::output("counter_race");
        assert!(
            !output.contains("RESULT") && !output.contains("claim holds"),
            "{output}"
        );
    }

    /// With both retries off, every increment is either acknowledged or reported as given up,
    /// and the numbers chapter 6.3 quotes are the recorded run's.
    #[test]
    fn without_retries_the_server_reports_every_conflict() {
        let name = "counter_race_strategy_server_retryonconflict_0_maxattempts_1";
        let run = recorded::result(name, "strategy", "server");
        assert_eq!(run["retry_on_conflict"], 0);
        assert_eq!(run["max_attempts"], 1);
        assert_eq!(run["final"], run["acknowledged"]);
        let (acknowledged, failed) =
            (run["acknowledged"].as_u64(), run["failed"].as_u64());
        assert_eq!(
            acknowledged.unwrap() + failed.unwrap(),
            250,
            "acknowledged or given up"
        );
        assert!(
            failed.unwrap() > 0,
            "without retries some conflicts reach the client"
        );
        let chapter = recorded::chapter("ch06-03-scripted-update.md");
        let quoted = |pattern| recorded::quoted(&chapter, pattern);
        assert_eq!(
            quoted(r"(\d+) of the 250 updates came back as 409"),
            failed.unwrap().to_string()
        );
        assert_eq!(
            quoted(r"the counter ends at (\d+)"),
            run["final"].to_string()
        );
    }
}
