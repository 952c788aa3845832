//! Chapter 6, parts 2 and 3: the lost-update race (the notebook's second and third experiments).
//!
//! N clients each increment one counter M times, all at once (5 x 50 by default, as in the
//! notebook), with one of three strategies:
//!
//! - `none`: GET, add one, index without conditions. Increments are lost, a different number
//!   every run.
//! - `occ`: GET with `_seq_no`/`_primary_term`, index with `if_seq_no`/`if_primary_term`; on a 409
//!   read again and retry, a bounded number of times, with backoff and jitter.
//! - `server`: a scripted `_update` (`ctx._source.counter += 1`) with `retry_on_conflict`:
//!   Elasticsearch does the read-modify-write itself and retries on conflict; a 409 that still
//!   comes back is retried by the client like any other.
//!
//! Run it: `cargo run --example counter_race` (all three strategies), or for instance
//! `cargo run --example counter_race -- --strategy occ --clients 10 --per-client 20`.
//! Flags: `--strategy all|none|occ|server`, `--clients N`, `--per-client M`,
//! `--max-attempts K` (client-side tries per increment), `--retry-on-conflict R` (server).
//!
//! Each strategy ends with a `RESULT {json}` line. The run exits non-zero if a claim fails:
//! `none` must lose updates (with more than one client); `occ` and `server` must end with
//! `final == acknowledged`, and with at least the default `--max-attempts`,
//! `acknowledged == expected`.

use std::future::Future;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use elasticsearch::{Elasticsearch, IndexParts, UpdateParts};
use esbook::cli::Args;
use esbook::doc::{self, Outcome};
use esbook::report::{self, Claims};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs};
use serde_json::json;

const INDEX: &str = "conc_demo";
const DOC_ID: &str = "1";

/// The race's settings; the defaults are the notebook's.
#[derive(Debug, Clone, Copy)]
struct Race {
    clients: u32,
    per_client: u32,
    /// Client-side retry policy of the `occ` strategy.
    backoff: Backoff,
    /// `retry_on_conflict` of the `server` strategy (the notebook used 10).
    retry_on_conflict: u32,
}

impl Default for Race {
    fn default() -> Race {
        Race {
            clients: 5,
            per_client: 50,
            backoff: Backoff::default(),
            retry_on_conflict: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    None,
    Occ,
    Server,
}

impl Strategy {
    const ALL: [Strategy; 3] = [Strategy::None, Strategy::Occ, Strategy::Server];

    fn name(self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::Occ => "occ",
            Strategy::Server => "server",
        }
    }

    /// The scripted update needs Painless; the others run on any Elasticsearch.
    fn needs(self) -> Needs {
        match self {
            Strategy::Server => Needs::Scripting,
            Strategy::None | Strategy::Occ => Needs::Core,
        }
    }
}

/// What one client saw while doing its increments.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Increments Elasticsearch acknowledged (a 2xx for the write that carried them).
    acknowledged: u64,
    /// Writes that came back as a 409 version conflict: at once (`occ`), or after the server's
    /// own `retry_on_conflict` retries ran out (`server`). Each was retried by the client.
    conflicts: u64,
    /// Increments given up on after the retry bound.
    failed: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.acknowledged += other.acknowledged;
        self.conflicts += other.conflicts;
        self.failed += other.failed;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    esbook::run_main(async {
        let mut args = Args::from_env(&usage())?;
        let defaults = Race::default();
        let mut names = vec!["all"];
        names.extend(Strategy::ALL.map(Strategy::name));
        let strategy = args.choice("strategy", "all", &names)?;
        let race = Race {
            clients: args.number("clients", defaults.clients, 1..=100)?,
            per_client: args.number(
                "per-client",
                defaults.per_client,
                1..=10_000,
            )?,
            backoff: Backoff {
                max_attempts: args.number(
                    "max-attempts",
                    defaults.backoff.max_attempts,
                    1..=1000,
                )?,
                ..defaults.backoff
            },
            retry_on_conflict: args.number(
                "retry-on-conflict",
                defaults.retry_on_conflict,
                0..=100,
            )?,
        };
        args.finish()?;
        let strategies: Vec<Strategy> = Strategy::ALL
            .into_iter()
            .filter(|s| strategy == "all" || strategy == s.name())
            .collect();

        let cluster = Cluster::connect(Needs::Core).await?;
        let mut claims = Claims::new();
        for strategy in strategies {
            // The cluster at hand may not run scripts; `for_needs` finds one that does.
            let cluster = cluster.for_needs(strategy.needs()).await?;
            println!(
                "\n== strategy {}: {} clients x {} increments on {cluster}",
                strategy.name(),
                race.clients,
                race.per_client
            );
            run_race(&cluster, INDEX, strategy, race, &mut claims).await?;
        }
        claims.into_result()
    })
    .await
}

fn usage() -> String {
    let names: Vec<&str> = Strategy::ALL.map(Strategy::name).to_vec();
    format!(
        "usage: cargo run --example counter_race -- [--strategy all|{}] [--clients N] \
         [--per-client M] [--max-attempts K] [--retry-on-conflict R]",
        names.join("|")
    )
}

/// Runs one strategy's race on a fresh `index`, prints its `RESULT` line and checks its claims.
async fn run_race(
    cluster: &Cluster,
    index: &str,
    strategy: Strategy,
    race: Race,
    claims: &mut Claims,
) -> Result<Tally> {
    doc::fresh_index(&cluster.client, index).await?;
    doc::put(&cluster.client, index, DOC_ID, json!({ "counter": 0 })).await?;
    let started = Instant::now();

    // ANCHOR: spawn
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..race.clients {
        let client = cluster.client.clone();
        let index = index.to_string();
        clients.spawn(async move {
            let mut tally = Tally::default();
            for _ in 0..race.per_client {
                tally += match strategy {
                    Strategy::None => {
                        increment_without_occ(&client, &index).await?
                    }
                    Strategy::Occ => {
                        increment_with_occ(&client, &index, race.backoff).await?
                    }
                    Strategy::Server => {
                        let retries = race.retry_on_conflict;
                        increment_on_server(&client, &index, retries, race.backoff)
                            .await?
                    }
                };
            }
            anyhow::Ok(tally)
        });
    }
    let mut total = Tally::default();
    while let Some(joined) = clients.join_next().await {
        total += joined.context("a client task panicked")??;
    }
    // ANCHOR_END: spawn

    let elapsed = started.elapsed();
    let expected = u64::from(race.clients) * u64::from(race.per_client);
    let final_count = doc::read(&cluster.client, index, DOC_ID)
        .await?
        .number("counter")? as u64;
    println!(
        "{}: counter={final_count}, expected={expected}, acknowledged={}, conflicts={}, failed={} in {:.2}s",
        strategy.name(),
        total.acknowledged,
        total.conflicts,
        total.failed,
        elapsed.as_secs_f64()
    );
    let mut result = json!({
        "example": "counter_race",
        "strategy": strategy.name(),
        "clients": race.clients,
        "per_client": race.per_client,
        "expected": expected,
        "final": final_count,
        "acknowledged": total.acknowledged,
        "conflicts": total.conflicts,
        "failed": total.failed,
    });
    match strategy {
        Strategy::None => {}
        Strategy::Occ => result["max_attempts"] = json!(race.backoff.max_attempts),
        Strategy::Server => {
            result["retry_on_conflict"] = json!(race.retry_on_conflict);
            result["max_attempts"] = json!(race.backoff.max_attempts);
        }
    }
    report::result(cluster, elapsed, result);

    let defaults = Race::default();
    match strategy {
        Strategy::None if race.clients > 1 => {
            claims.check(
                total.acknowledged == expected,
                format!(
                    "none: every one of the {expected} writes was acknowledged"
                ),
            );
            claims.check(
                final_count < expected,
                format!("none: updates were lost, the counter ({final_count}) is below {expected}"),
            );
        }
        Strategy::None => claims.check(
            final_count == expected,
            "none: a single client has nobody to race, so nothing is lost",
        ),
        Strategy::Occ | Strategy::Server => {
            claims.check(
                final_count == total.acknowledged,
                format!(
                    "{}: the counter ({final_count}) equals the acknowledged increments ({})",
                    strategy.name(),
                    total.acknowledged
                ),
            );
            // The client's bounded retries are what make every increment land; with fewer
            // tries than the default, giving up is allowed (and counted), losing is not.
            if race.backoff.max_attempts >= defaults.backoff.max_attempts {
                claims.check(
                    total.acknowledged == expected,
                    format!(
                        "{}: every increment landed, {expected} of {expected}",
                        strategy.name()
                    ),
                );
            } else {
                println!(
                    "note: with --max-attempts {} (below the default), {} increments gave up",
                    race.backoff.max_attempts, total.failed
                );
            }
        }
    }
    Ok(total)
}

// ANCHOR: none
/// GET, add one, write back unconditionally: the read-modify-write that
/// loses updates.
async fn increment_without_occ(
    client: &Elasticsearch,
    index: &str,
) -> Result<Tally> {
    let seen = doc::read(client, index, DOC_ID).await?;
    let next = seen.number("counter")? + 1;
    doc::put(client, index, DOC_ID, json!({ "counter": next })).await?;
    Ok(Tally {
        acknowledged: 1,
        ..Tally::default()
    })
}
// ANCHOR_END: none

// ANCHOR: occ
/// GET with `_seq_no`/`_primary_term`, then write on condition they still
/// hold. A conflict means another client wrote in between: the whole
/// read-and-write is tried again (see `until_written`).
async fn increment_with_occ(
    client: &Elasticsearch,
    index: &str,
    backoff: Backoff,
) -> Result<Tally> {
    until_written(backoff, || async {
        let seen = doc::read(client, index, DOC_ID).await?;
        let response = client
            .index(IndexParts::IndexId(index, DOC_ID))
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

// ANCHOR: retry
/// Runs `attempt` until it is written; after each version conflict waits a
/// little (backoff with jitter) and tries again, `backoff.max_attempts` times
/// at most. Counts what happened.
async fn until_written<F, Fut>(backoff: Backoff, mut attempt: F) -> Result<Tally>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome>>,
{
    let mut tally = Tally::default();
    for tried in 1..=backoff.max_attempts {
        match attempt().await? {
            Outcome::Written(_) => {
                tally.acknowledged = 1;
                return Ok(tally);
            }
            Outcome::Conflict(_) => {
                tally.conflicts += 1;
                tokio::time::sleep(backoff.delay(tried)).await;
            }
        }
    }
    tally.failed = 1;
    Ok(tally)
}
// ANCHOR_END: retry

// ANCHOR: server
/// Let Elasticsearch do the read-modify-write: a scripted update, retried by
/// the server up to `retry_on_conflict` times when another write slips in
/// between its own read and write. If even those retries run out, the 409
/// reaches us, and we retry like any other conflict.
async fn increment_on_server(
    client: &Elasticsearch,
    index: &str,
    retry_on_conflict: u32,
    backoff: Backoff,
) -> Result<Tally> {
    until_written(backoff, || async {
        let response = client
            .update(UpdateParts::IndexId(index, DOC_ID))
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn race(strategy: Strategy, index: &str) -> (Claims, Tally) {
        let cluster = Cluster::connect(strategy.needs()).await.expect("a cluster");
        let mut claims = Claims::new();
        let tally =
            run_race(&cluster, index, strategy, Race::default(), &mut claims)
                .await
                .expect("the race runs");
        (claims, tally)
    }

    /// 5 clients x 50 unconditional read-modify-writes: all acknowledged, yet the counter ends
    /// below 250.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn without_occ_updates_are_lost() {
        let (claims, _) = race(Strategy::None, "test-race-none").await;
        assert!(claims.all_hold(), "{claims:?}");
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

    /// 5 clients x 50 scripted updates with retry_on_conflict=10: exactly 250.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn scripted_update_with_retry_on_conflict_counts_every_increment() {
        let (claims, tally) = race(Strategy::Server, "test-race-server").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(tally.acknowledged, 250);
    }
}
