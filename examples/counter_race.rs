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
//! The strategies and the clients that run them live in `esbook/src/race.rs`, which the
//! contention benchmark (`benches/contention.rs`, chapter 16) runs too; this example runs
//! the race once per strategy and checks what it claims.
//!
//! Each strategy ends with a `RESULT {json}` line, with the race's wall time (`elapsed_ms`)
//! and the CPU time this process spent on it (`client_cpu_ms`). The run exits non-zero if a claim fails:
//! `none` must lose updates (with more than one client); `occ` and `server` must end with
//! `final == acknowledged`, and with at least the default `--max-attempts`,
//! `acknowledged == expected`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use esbook::cli::Args;
use esbook::race::{self, Contender, Race, Strategy};
use esbook::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::json;

const INDEX: &str = "conc_demo";

#[tokio::main]
async fn main() -> ExitCode {
    esbook::run_main(async {
        let mut args = Args::from_env(&usage())?;
        let mut names = vec!["all"];
        names.extend(Strategy::ALL.iter().map(|s| s.name()));
        let strategy = args.choice("strategy", "all", &names)?;
        let race = Race::from_args(&mut args)?;
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
    let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
    format!(
        "usage: cargo run --example counter_race -- [--strategy all|{}] {}",
        names.join("|"),
        Race::FLAGS
    )
}

/// Runs one strategy's race on a fresh `index`, prints its `RESULT` line and checks its claims.
async fn run_race(
    cluster: &Cluster,
    index: &str,
    strategy: Strategy,
    race: Race,
    claims: &mut Claims,
) -> Result<race::Run> {
    let run = race::run(cluster, index, Arc::new(strategy), race).await?;
    let (total, expected, final_count) = (run.total, run.expected, run.counted);
    println!(
        "{}: counter={final_count}, expected={expected}, acknowledged={}, conflicts={}, failed={} in {:.2}s, client CPU {:.2}s",
        strategy.name(),
        total.acknowledged,
        total.conflicts,
        total.failed,
        run.elapsed.as_secs_f64(),
        run.cpu.as_secs_f64(),
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
    result["client_cpu_ms"] = json!(run.cpu.as_millis() as u64);
    report::result(cluster, run.elapsed, result);

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
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn race(strategy: Strategy, index: &str) -> (Claims, race::Tally) {
        let cluster = Cluster::connect(strategy.needs()).await.expect("a cluster");
        let mut claims = Claims::new();
        let run = run_race(&cluster, index, strategy, Race::default(), &mut claims)
            .await
            .expect("the race runs");
        (claims, run.total)
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
