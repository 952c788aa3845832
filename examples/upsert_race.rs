//! Chapter 10: a counter that may not exist yet.
//!
//! Five clients add 1 to a counter fifty times each, all at once, starting from *no document at
//! all*, in four ways: `none` (GET, then write 1 or the value read plus one), `occ` (the same
//! decision, `_create` or `if_seq_no` on a condition, retried on a 409), `upsert` and
//! `scripted_upsert` (one `_update` that creates or increments, with `retry_on_conflict`). Then
//! `compilations`: why the amount travels in `params`, not in the script's source.
//!
//! Run it: `cargo run --example upsert_race` (or `-- --strategy upsert --retry-on-conflict 0
//! --max-attempts 1`; `--help` for the rest). You should see the counter below 250 for `none`,
//! exactly 250 with one creation for the others, and fewer compilations with `params`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use elasticsearch::{CreateParts, Elasticsearch, IndexParts, UpdateParts};
use esbook::retry::{Tally, until_written};
use esbook::{Cluster, Needs, doc};
use harness::race::{self, Contender, DOC_ID, FromNothing, Race, Step};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "conc_demo";

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
    backoff: esbook::retry::Backoff,
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
    strategy: Strategy,
    race: &Race,
) -> Result<Tally> {
    let body = match strategy {
        // The script runs only on an existing counter; a new one is `upsert`.
        Strategy::Upsert => json!({
            "script": {
                "source": "ctx._source.counter += params.by",
                "params": { "by": 1 }
            },
            "upsert": { "counter": 1 }
        }),
        // The script runs in both cases; on a missing counter it runs on the
        // `upsert` document (here `{}`), with `ctx.op` set to "create".
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

// ANCHOR: strategy
/// The four ways, each a contender in chapter 6's race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    None,
    Occ,
    Upsert,
    ScriptedUpsert,
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
                Strategy::None => {
                    increment_without_condition(client, index, id).await
                }
                Strategy::Occ => {
                    increment_with_occ(client, index, id, race.backoff).await
                }
                _ => increment_by_upsert(client, index, id, *self, race).await,
            }
        })
    }

    fn name(&self) -> &str {
        ["none", "occ", "upsert", "scripted_upsert"][*self as usize]
    }

    fn needs(&self) -> Needs {
        match self {
            Strategy::None | Strategy::Occ => Needs::Core,
            Strategy::Upsert | Strategy::ScriptedUpsert => Needs::Scripting,
        }
    }

    fn loses_increments(&self) -> bool {
        *self == Strategy::None
    }
}
// ANCHOR_END: strategy

const ALL: [Strategy; 4] = [
    Strategy::None,
    Strategy::Occ,
    Strategy::Upsert,
    Strategy::ScriptedUpsert,
];

// ANCHOR: main
#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let names = ["none", "occ", "upsert", "scripted_upsert", "compilations"];
        let (chosen, race) = Race::from_env("upsert_race", &names)?;
        let wanted = |part: &str| chosen == "all" || chosen == part;
        let cluster = Cluster::connect(Needs::Core).await?;
        // Asked once, so that every scripted part runs on the same server.
        let scripting = cluster.for_needs(Needs::Scripting);
        let scripting = if names[2..].iter().any(|p| wanted(p)) {
            Some(scripting.await?)
        } else {
            None
        };
        let mut claims = Claims::new();
        for strategy in ALL.into_iter().filter(|s| wanted(s.name())) {
            let cluster = match (strategy.needs(), &scripting) {
                (Needs::Scripting, Some(scripting)) => scripting,
                _ => &cluster,
            };
            let run = race::run(cluster, INDEX, Arc::new(FromNothing(strategy)), race);
            let run = run.await?;
            println!(
                "\n== strategy {}: {} clients x {} increments, from no document, on {cluster}\n{}",
                strategy.name(),
                race.clients,
                race.per_client,
                run.summary_with_creations(strategy.name())
            );
            report(cluster, strategy, race, &run, &mut claims);
        }
        if let (true, Some(scripting)) = (wanted("compilations"), &scripting) {
            println!("\n== compilations: the amount in the source, or in params, on {scripting}");
            compilations(scripting, INDEX, &mut claims).await?;
        }
        claims.into_result()
    })
    .await
}
// ANCHOR_END: main

/// One strategy's `RESULT` line (`OCC_RESULTS=1`), and the checks of what the chapter claims:
/// chapter 6's (see `race::Run::check`), and exactly one creation unless nothing was checked.
fn report(
    cluster: &Cluster,
    strategy: Strategy,
    race: Race,
    run: &race::Run,
    claims: &mut Claims,
) {
    let t = run.total;
    let mut result = run.result_fields("upsert_race", &strategy, &race);
    result["created"] = json!(t.created);
    result["written_as_new"] = json!(t.written_as_new);
    result["create_conflicts"] = json!(t.create_conflicts);
    report::result(cluster, run.elapsed, result);
    run.check(strategy.name(), strategy.loses_increments(), &race, claims);
    if !strategy.loses_increments() {
        let created =
            format!("{}: exactly one write created the counter", strategy.name());
        claims.check(t.created == 1, format!("{created} ({} did)", t.created));
    }
}

/// The same five amounts added twice, written into the script's source, then passed in
/// `params`; counts the scripts the cluster compiled for each series.
async fn compilations(
    cluster: &Cluster,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let (client, started) = (&cluster.client, Instant::now());
    doc::fresh_index(client, index).await?;
    doc::put(client, index, DOC_ID, json!({ "counter": 0 })).await?;
    // Amounts this node has (almost surely) never seen in a script, so that the first series
    // shows compilations and not a cache an earlier run filled; ten fit a 32-bit counter.
    let amounts: Vec<u64> =
        (0..5).map(|_| fastrand::u64(1_000..200_000_000)).collect();
    let before = race::script_compilations(client).await?;
    for &amount in &amounts {
        // ANCHOR: hard_coded
        let script = json!({
            "source": format!("ctx._source.counter += {amount}")
        });
        // ANCHOR_END: hard_coded
        update_with(client, index, script).await?;
    }
    let between = race::script_compilations(client).await?;
    for &amount in &amounts {
        // ANCHOR: params
        let script = json!({
            "source": "ctx._source.counter += params.by",
            "params": { "by": amount }
        });
        // ANCHOR_END: params
        update_with(client, index, script).await?;
    }
    let (hard_coded, with_params) = (
        between - before,
        race::script_compilations(client).await? - between,
    );
    let counter = doc::read(client, index, DOC_ID).await?.number("counter")? as u64;
    let due: u64 = 2 * amounts.iter().sum::<u64>();
    println!(
        "5 updates with the amount in the source (\"ctx._source.counter += N\", 5 different N): \
         {hard_coded} scripts compiled\n\
         5 updates with the amount in params (\"ctx._source.counter += params.by\"): \
         {with_params} scripts compiled\n\
         the counter is {counter}; the ten amounts add up to {due}"
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "upsert_race", "strategy": "compilations", "updates": 5,
            "hard_coded_compilations": hard_coded, "params_compilations": with_params,
        }),
    );
    claims.check(counter == due, "both series added their amounts");
    claims.check(
        hard_coded >= 5,
        format!("each new source compiled: {hard_coded} for 5"),
    );
    claims.check(
        with_params <= 1,
        format!("one source, compiled once at most: {with_params}"),
    );
    Ok(())
}

/// A scripted `_update` of the counter with `script`, which must go through.
async fn update_with(
    client: &Elasticsearch,
    index: &str,
    script: Value,
) -> Result<()> {
    let update = client.update(UpdateParts::IndexId(index, DOC_ID));
    let response = update.body(json!({ "script": script })).send().await?;
    doc::expect_success(response, "a scripted update").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use harness::recorded;

    /// The recorded run says what chapter 10 says: GET-then-write loses increments and all five
    /// clients wrote a new counter; the conditional client and both upserts end at exactly 250
    /// with one creation; the numbers the chapter quotes are the run's.
    #[test]
    fn the_recorded_race_has_the_shape_the_chapter_describes() {
        let by = |strategy| recorded::result("upsert_race", "strategy", strategy);
        let chapter = recorded::chapter("ch10-00-upserts.md");
        let quoted = |pattern| recorded::quoted(&chapter, pattern);
        let none = by("none");
        assert_eq!(
            (none["clients"].as_u64(), none["per_client"].as_u64()),
            (Some(5), Some(50))
        );
        assert_eq!(none["acknowledged"], 250);
        assert!(
            none["final"].as_u64().unwrap() < 250,
            "none must lose increments"
        );
        assert_eq!(
            none["written_as_new"], 5,
            "the prose says all five wrote a new counter"
        );
        assert_eq!(none["created"], 1);
        assert_eq!(
            quoted(r"counter ended at (\d+), far below 250"),
            none["final"].to_string()
        );
        for strategy in ["occ", "upsert", "scripted_upsert"] {
            let run = by(strategy);
            assert_eq!(run["final"], 250, "{strategy}");
            assert_eq!(run["acknowledged"], 250, "{strategy}");
            assert_eq!(run["created"], 1, "{strategy}");
            assert_eq!(run["failed"], 0, "{strategy}");
        }
        let occ = by("occ");
        assert!(occ["conflicts"].as_u64().unwrap() > 0);
        assert_eq!(
            occ["create_conflicts"], 4,
            "the prose says four creation collisions"
        );
        let collisions =
            quoted(r"\((\d+) in the recorded run, one for\s+each client");
        assert_eq!(collisions, occ["create_conflicts"].to_string());
        let (upsert, scripted) = (by("upsert"), by("scripted_upsert"));
        assert_eq!(
            (
                upsert["retry_on_conflict"].as_u64(),
                scripted["retry_on_conflict"].as_u64()
            ),
            (Some(10), Some(10))
        );
        let reached = quoted(r"`conflicts` is (\d+) for `upsert`");
        assert_eq!(reached, upsert["conflicts"].to_string());
        let reached =
            quoted(r"and (\d+) for `scripted_upsert` in the recorded run");
        assert_eq!(reached, scripted["conflicts"].to_string());
        let compiled = by("compilations");
        assert_eq!(compiled["updates"], 5);
        assert_eq!(compiled["hard_coded_compilations"], 5);
        assert_eq!(
            compiled["params_compilations"], 0,
            "the race had compiled that source"
        );
        let output = recorded::output("upsert_race");
        assert!(
            !output.contains("RESULT") && !output.contains("claim holds"),
            "{output}"
        );
    }

    /// Without either retry, conflicts reach the client and are reported, four of them creation
    /// collisions; nothing is lost silently.
    #[test]
    fn without_retries_the_upsert_reports_every_conflict() {
        let name = "upsert_race_strategy_upsert_retryonconflict_0_maxattempts_1";
        let run = recorded::result(name, "strategy", "upsert");
        assert_eq!(
            (
                run["retry_on_conflict"].as_u64(),
                run["max_attempts"].as_u64()
            ),
            (Some(0), Some(1))
        );
        assert_eq!(run["final"], run["acknowledged"]);
        let failed = run["failed"].as_u64().unwrap();
        assert_eq!(run["acknowledged"].as_u64().unwrap() + failed, 250);
        assert!(failed > 0);
        assert_eq!(run["create_conflicts"], 4, "the prose says four collisions");
        let chapter = recorded::chapter("ch10-00-upserts.md");
        let quoted =
            recorded::quoted(&chapter, r"(\d+) increments came back as 409");
        assert_eq!(quoted, failed.to_string());
        let collisions =
            recorded::quoted(&chapter, r"collisions`; (\d+) in the recorded run");
        assert_eq!(collisions, run["create_conflicts"].to_string());
    }
}
