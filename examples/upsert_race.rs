//! Chapter 10: a counter that may not exist yet.
//!
//! N clients each add 1 to a counter M times, all at once (5 x 50 by default), starting from
//! *no document at all*. Four ways to do it:
//!
//! - `none`: GET; if there is no counter, index `{"counter": 1}`, else index the value read plus
//!   one. Increments are lost twice over: several clients find no counter and each "creates"
//!   it, and then the read-modify-writes overwrite each other.
//! - `occ`: the same decision, with a condition on each branch: `_create` when there was no
//!   document, `if_seq_no`/`if_primary_term` when there was; on a 409, read again and retry.
//! - `upsert`: one `_update` with a script (`ctx._source.counter += params.by`) and an `upsert`
//!   document (`{"counter": 1}`) for when there is none, with `retry_on_conflict`.
//! - `scripted_upsert`: the same with `scripted_upsert: true`, so the one script handles both
//!   cases.
//!
//! Then `compilations`: why the increment travels in `params` and not in the script's text.
//! Scripts are compiled and cached by their source: five updates with the amount written into
//! the source compile five scripts; five with the amount in `params` compile at most one.
//!
//! Run it: `cargo run --example upsert_race`, or for instance
//! `cargo run --example upsert_race -- --strategy upsert --retry-on-conflict 0 --max-attempts 1`.
//! Flags: `--strategy all|none|occ|upsert|scripted_upsert|compilations`, `--clients N`,
//! `--per-client M`, `--max-attempts K` (client-side tries per increment),
//! `--retry-on-conflict R` (server-side retries of the upserts).
//!
//! The race itself (the clients, the bounded retry loop `until_written`, the counting) is
//! chapter 6's, from `esbook/src/race.rs`; this example brings the four strategies, each a
//! `Contender`, whose race starts from an index with no counter in it.
//!
//! The scripted strategies need an Elasticsearch with Painless; the output names the server
//! each one ran on. It exits non-zero if a claim fails: `none` must lose increments (with more
//! than one client); the others must end with the counter equal to the acknowledged
//! increments, exactly N x M with the default `--max-attempts`, and exactly one write that
//! created the document.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use elasticsearch::nodes::NodesStatsParts;
use elasticsearch::{CreateParts, Elasticsearch, IndexParts, UpdateParts};
use harness::cli::Args;
use esbook::doc;
use esbook::retry::{Tally, until_written};
use harness::race::{self, Contender, DOC_ID, Race, Step};
use harness::report::{self, Claims};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs};
use serde_json::{Value, json};

const INDEX: &str = "conc_demo";

/// The four ways of this chapter, each a contender in chapter 6's race (`esbook::race`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpsertStrategy {
    None,
    Occ,
    Upsert,
    ScriptedUpsert,
}

impl UpsertStrategy {
    const ALL: [UpsertStrategy; 4] = [
        UpsertStrategy::None,
        UpsertStrategy::Occ,
        UpsertStrategy::Upsert,
        UpsertStrategy::ScriptedUpsert,
    ];
}

impl Contender for UpsertStrategy {
    fn name(&self) -> &str {
        match self {
            UpsertStrategy::None => "none",
            UpsertStrategy::Occ => "occ",
            UpsertStrategy::Upsert => "upsert",
            UpsertStrategy::ScriptedUpsert => "scripted_upsert",
        }
    }

    fn needs(&self) -> Needs {
        match self {
            UpsertStrategy::None | UpsertStrategy::Occ => Needs::Core,
            UpsertStrategy::Upsert | UpsertStrategy::ScriptedUpsert => {
                Needs::Scripting
            }
        }
    }

    fn increment<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
        race: &'a Race,
    ) -> Step<'a, Tally> {
        Box::pin(async move {
            match self {
                UpsertStrategy::None => {
                    increment_without_condition(client, index, id).await
                }
                UpsertStrategy::Occ => {
                    increment_with_occ(client, index, id, race.backoff).await
                }
                UpsertStrategy::Upsert | UpsertStrategy::ScriptedUpsert => {
                    increment_by_upsert(client, index, id, *self, race).await
                }
            }
        })
    }

    /// A fresh index with no counter in it: the race starts from nothing.
    fn prepare<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        _ids: &'a [String],
    ) -> Step<'a, ()> {
        Box::pin(doc::fresh_index(client, index))
    }

    /// A counter that was never written counts zero.
    fn count<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
    ) -> Step<'a, u64> {
        Box::pin(async move {
            match doc::find(client, index, id).await? {
                Some(counter) => Ok(counter.number("counter")? as u64),
                None => Ok(0),
            }
        })
    }

    fn loses_increments(&self) -> bool {
        *self == UpsertStrategy::None
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let mut args = Args::from_env(&usage())?;
        let chosen = args.choice("strategy", "all", &choices())?;
        let race = Race::from_args(&mut args)?;
        args.finish()?;

        let cluster = Cluster::connect(Needs::Core).await?;
        let wanted = |part: &str| chosen == "all" || chosen == part;
        // The cluster at hand may not run scripts; `for_needs` finds one that does. Asked
        // once, so that every scripted part runs on the same server (on the container path,
        // in the same container).
        let scripting = if wanted("upsert")
            || wanted("scripted_upsert")
            || wanted("compilations")
        {
            Some(cluster.for_needs(Needs::Scripting).await?)
        } else {
            None
        };
        let mut claims = Claims::new();
        for strategy in UpsertStrategy::ALL {
            if !wanted(strategy.name()) {
                continue;
            }
            let cluster = match (strategy.needs(), &scripting) {
                (Needs::Scripting, Some(scripting)) => scripting,
                _ => &cluster,
            };
            println!(
                "\n== strategy {}: {} clients x {} increments, from no document, on {cluster}",
                strategy.name(),
                race.clients,
                race.per_client
            );
            run_race(cluster, INDEX, strategy, race, &mut claims).await?;
        }
        if let (true, Some(scripting)) = (wanted("compilations"), &scripting) {
            println!(
                "\n== compilations: the amount in the source, or in params, on {scripting}"
            );
            compilations(scripting, INDEX, &mut claims).await?;
        }
        claims.into_result()
    })
    .await
}

/// What `--strategy` accepts.
fn choices() -> Vec<&'static str> {
    let mut names = vec!["all"];
    names.extend(UpsertStrategy::ALL.iter().map(|s| s.name()));
    names.push("compilations");
    names
}

fn usage() -> String {
    format!(
        "usage: cargo run --example upsert_race -- [--strategy {}] {}",
        choices().join("|"),
        Race::FLAGS
    )
}

/// Runs one strategy's race on a fresh `index` (no counter in it), prints its `RESULT` line
/// and checks its claims.
async fn run_race(
    cluster: &Cluster,
    index: &str,
    strategy: UpsertStrategy,
    race: Race,
    claims: &mut Claims,
) -> Result<Tally> {
    let run = race::run(cluster, index, Arc::new(strategy), race).await?;
    let (total, expected, final_count) = (run.total, run.expected, run.counted);
    println!(
        "{}: counter={final_count}, expected={expected}, acknowledged={}, created={}, \
         written_as_new={}, conflicts={} (creation collisions {}), failed={} in {:.2}s",
        strategy.name(),
        total.acknowledged,
        total.created,
        total.written_as_new,
        total.conflicts,
        total.create_conflicts,
        total.failed,
        run.elapsed.as_secs_f64()
    );
    let mut result = json!({
        "example": "upsert_race",
        "strategy": strategy.name(),
        "clients": race.clients,
        "per_client": race.per_client,
        "expected": expected,
        "final": final_count,
        "acknowledged": total.acknowledged,
        "created": total.created,
        "written_as_new": total.written_as_new,
        "conflicts": total.conflicts,
        "create_conflicts": total.create_conflicts,
        "failed": total.failed,
    });
    if strategy != UpsertStrategy::None {
        result["max_attempts"] = json!(race.backoff.max_attempts);
    }
    if strategy.needs() == Needs::Scripting {
        result["retry_on_conflict"] = json!(race.retry_on_conflict);
    }
    report::result(cluster, run.elapsed, result);

    let name = strategy.name();
    if strategy.loses_increments() {
        if race.clients > 1 {
            claims.check(
                total.acknowledged == expected,
                format!(
                    "none: every one of the {expected} writes was acknowledged"
                ),
            );
            claims.check(
                final_count < expected,
                format!("none: increments were lost, the counter ({final_count}) is below {expected}"),
            );
        } else {
            claims.check(
                final_count == expected,
                "none: a single client has nobody to race, so nothing is lost",
            );
        }
        return Ok(total);
    }
    claims.check(
        final_count == total.acknowledged,
        format!(
            "{name}: the counter ({final_count}) equals the acknowledged increments ({})",
            total.acknowledged
        ),
    );
    claims.check(
        total.created == 1,
        format!(
            "{name}: exactly one write created the counter ({} did)",
            total.created
        ),
    );
    if race.backoff.max_attempts >= Race::default().backoff.max_attempts {
        claims.check(
            total.acknowledged == expected,
            format!("{name}: every increment landed, {expected} of {expected}"),
        );
    } else {
        claims.check(
            total.acknowledged + total.failed == expected,
            format!(
                "{name}: every increment was acknowledged or reported as given up: {} + {} = {expected}",
                total.acknowledged, total.failed
            ),
        );
    }
    Ok(total)
}

// ANCHOR: none
/// GET; no counter yet: write 1; else write what was read plus one. No
/// condition on either write.
async fn increment_without_condition(
    client: &Elasticsearch,
    index: &str,
    id: &str,
) -> Result<Tally> {
    let (next, written_as_new) = match doc::find(client, index, id).await? {
        None => (1, 1),
        Some(seen) => (seen.number("counter")? + 1, 0),
    };
    let written = doc::put(client, index, id, json!({ "counter": next })).await?;
    Ok(Tally {
        written_as_new,
        ..Tally::written(&written)
    })
}
// ANCHOR_END: none

// ANCHOR: occ
/// The same decision, each branch on a condition: `_create` if there was
/// no counter (409 if someone created it meanwhile), `if_seq_no` if there
/// was one (409 if someone changed it meanwhile). A 409 means: read again.
async fn increment_with_occ(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    backoff: Backoff,
) -> Result<Tally> {
    // Which branch the last attempt, the one that counted, took.
    let written_as_new = AtomicBool::new(false);
    let mut tally = until_written(backoff, || async {
        let response = match doc::find(client, index, id).await? {
            None => {
                written_as_new.store(true, Ordering::Relaxed);
                client
                    .create(CreateParts::IndexId(index, id))
                    .body(json!({ "counter": 1 }))
                    .send()
                    .await?
            }
            Some(seen) => {
                written_as_new.store(false, Ordering::Relaxed);
                client
                    .index(IndexParts::IndexId(index, id))
                    .if_seq_no(seen.seq_no)
                    .if_primary_term(seen.primary_term)
                    .body(json!({ "counter": seen.number("counter")? + 1 }))
                    .send()
                    .await?
            }
        };
        doc::outcome(response).await
    })
    .await?;
    if written_as_new.load(Ordering::Relaxed) {
        tally.written_as_new = tally.acknowledged;
    }
    Ok(tally)
}
// ANCHOR_END: occ

// ANCHOR: upsert
/// One request: Elasticsearch inserts the `upsert` document if there is no
/// counter, else runs the script on it; `retry_on_conflict` redoes it when
/// another write slipped in (a creation included).
async fn increment_by_upsert(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    strategy: UpsertStrategy,
    race: &Race,
) -> Result<Tally> {
    let body = match strategy {
        // The script runs only on an existing counter; a new one is `upsert`.
        UpsertStrategy::Upsert => json!({
            "script": {
                "source": "ctx._source.counter += params.by",
                "params": { "by": 1 }
            },
            "upsert": { "counter": 1 }
        }),
        // The script runs in both cases, on an empty document if there is none.
        _ => json!({
            "scripted_upsert": true,
            "script": {
                "source": concat!(
                    "ctx._source.counter = ",
                    "(ctx._source.counter ?: 0) + params.by"
                ),
                "params": { "by": 1 }
            },
            "upsert": {}
        }),
    };
    until_written(race.backoff, || async {
        let response = client
            .update(UpdateParts::IndexId(index, id))
            .retry_on_conflict(i64::from(race.retry_on_conflict))
            .body(body.clone())
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await
}
// ANCHOR_END: upsert

/// Compilations of scripts so far, summed over the cluster's nodes.
async fn compilations_so_far(client: &Elasticsearch) -> Result<u64> {
    let response = client
        .nodes()
        .stats(NodesStatsParts::Metric(&["script"]))
        .send()
        .await?;
    let stats = doc::expect_success(response, "reading script statistics").await?;
    let nodes = stats["nodes"]
        .as_object()
        .context("node statistics without nodes")?;
    Ok(nodes
        .values()
        .filter_map(|node| node["script"]["compilations"].as_u64())
        .sum())
}

/// The same five increments twice: the amount written into the script's source, then passed in
/// `params`. Counts how many scripts the cluster compiled for each.
async fn compilations(
    cluster: &Cluster,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    const UPDATES: u64 = 5;
    let started = Instant::now();
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;
    doc::put(client, index, DOC_ID, json!({ "counter": 0 })).await?;
    // Amounts this node has (almost surely) never seen in a script, so that the first series
    // really shows compilations and not a cache filled by an earlier run. Small enough that
    // ten of them fit the counter's 32-bit integer.
    let amounts: Vec<u64> = (0..UPDATES)
        .map(|_| fastrand::u64(1_000..200_000_000))
        .collect();

    let before = compilations_so_far(client).await?;
    for &amount in &amounts {
        // ANCHOR: hard_coded
        let script = json!({
            "source": format!("ctx._source.counter += {amount}")
        });
        // ANCHOR_END: hard_coded
        update_with(client, index, script).await?;
    }
    let between = compilations_so_far(client).await?;
    for &amount in &amounts {
        // ANCHOR: params
        let script = json!({
            "source": "ctx._source.counter += params.by",
            "params": { "by": amount }
        });
        // ANCHOR_END: params
        update_with(client, index, script).await?;
    }
    let after = compilations_so_far(client).await?;
    let counter = doc::read(client, index, DOC_ID).await?.number("counter")?;
    let due: u64 = 2 * amounts.iter().sum::<u64>();

    let hard_coded = between - before;
    let with_params = after - between;
    println!(
        "{UPDATES} updates with the amount in the source (\"ctx._source.counter += N\", \
         {UPDATES} different N): {hard_coded} scripts compiled"
    );
    println!(
        "{UPDATES} updates with the amount in params (\"ctx._source.counter += params.by\"): \
         {with_params} scripts compiled"
    );
    println!("the counter is {counter}; the ten amounts add up to {due}");
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "upsert_race",
            "strategy": "compilations",
            "updates": UPDATES,
            "hard_coded_compilations": hard_coded,
            "params_compilations": with_params,
        }),
    );
    claims.check(
        counter as u64 == due,
        "both series added their amounts: the difference is cost, not correctness",
    );
    claims.check(
        hard_coded >= UPDATES,
        format!("each new source is a new script: {hard_coded} compilations for {UPDATES} updates"),
    );
    claims.check(
        with_params <= 1,
        format!(
            "one source with params is compiled once at most: {with_params} compilation(s) for {UPDATES} updates"
        ),
    );
    Ok(())
}

/// A scripted `_update` of the counter with `script`, which must go through.
async fn update_with(
    client: &Elasticsearch,
    index: &str,
    script: Value,
) -> Result<()> {
    let response = client
        .update(UpdateParts::IndexId(index, DOC_ID))
        .body(json!({ "script": script }))
        .send()
        .await?;
    doc::expect_success(response, "a scripted update").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn race(
        cluster: &Cluster,
        strategy: UpsertStrategy,
        index: &str,
    ) -> (Claims, Tally) {
        let mut claims = Claims::new();
        let tally =
            run_race(cluster, index, strategy, Race::default(), &mut claims)
                .await
                .expect("the race runs");
        (claims, tally)
    }

    async fn connect(needs: Needs) -> Cluster {
        Cluster::connect(needs).await.expect("a cluster")
    }

    /// 5 clients x 50 increments from no document, GET then create-or-update without
    /// conditions: all acknowledged, yet the counter ends below 250.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn get_then_write_loses_increments() {
        let cluster = connect(Needs::Core).await;
        let (claims, _) =
            race(&cluster, UpsertStrategy::None, "test-upsert-none").await;
        assert!(claims.all_hold(), "{claims:?}");
    }

    /// The same with `_create` for a missing counter and `if_seq_no` for an existing one,
    /// retried on 409: exactly 250, one creation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn conditional_create_or_update_counts_every_increment() {
        let cluster = connect(Needs::Core).await;
        let (claims, tally) =
            race(&cluster, UpsertStrategy::Occ, "test-upsert-occ").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!((tally.acknowledged, tally.created), (250, 1));
    }

    /// `_update` with `upsert` and with `scripted_upsert`, `retry_on_conflict=10`: exactly
    /// 250 each, one creation each; then the amount in `params` compiles at most one script
    /// where the amount in the source compiles one per amount. (One test, so that no other
    /// script compiles on the node while the compilations are counted.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn upserts_count_every_increment_and_params_spare_compilations() {
        let cluster = connect(Needs::Scripting).await;
        for (strategy, index) in [
            (UpsertStrategy::Upsert, "test-upsert-upsert"),
            (UpsertStrategy::ScriptedUpsert, "test-upsert-scripted"),
        ] {
            let (claims, tally) = race(&cluster, strategy, index).await;
            assert!(claims.all_hold(), "{claims:?}");
            assert_eq!((tally.acknowledged, tally.created), (250, 1));
        }
        let mut claims = Claims::new();
        compilations(&cluster, "test-upsert-compilations", &mut claims)
            .await
            .expect("the updates run");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
