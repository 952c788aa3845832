//! Chapter 19: a write the client sees fail, which the server applied anyway; why sending it
//! again counts it twice; and an operation id that makes sending it again harmless.
//!
//! The fault is made deterministic: the index's refreshes are switched off
//! (`refresh_interval: -1`) and each increment is sent with `refresh=wait_for` and a short
//! client deadline. Elasticsearch applies the increment, then holds the answer until a refresh
//! that never comes; the client's deadline fires first.
//!
//! 1. One scripted increment (`ctx._source.counter += 1`) times out, and the counter is 1.
//! 2. The client sends it again once the fault has cleared: acknowledged, and the counter is 2.
//!    One increment, counted twice.
//! 3. The same increment with an operation id, which the script records in the document and
//!    checks first: the second attempt is a `noop`, even with the fault still on.
//! 4. Three increments, each sent until acknowledged (three attempts at most), with the fault on
//!    throughout: without ids the counter ends at 9 and the client saw no success at all; with
//!    ids it ends at exactly 3.
//!
//! Run it: `cargo run --example ambiguous_failure`. Scripts need the Painless module; the
//! example finds an Elasticsearch that has it. It exits non-zero if any of this does not hold.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use elasticsearch::params::Refresh;
use elasticsearch::{Elasticsearch, UpdateParts};
use harness::history::{self, History, Outcome};
use harness::report::{self, Claims};
use esbook::{Cluster, Needs};
use esbook::{doc, indices};
use serde_json::json;

const INDEX: &str = "ambiguous";
const COUNTER: &str = "1";
/// The client's deadline for each increment: past it, the increment's fate is unknown.
const DEADLINE: Duration = Duration::from_millis(1000);
/// The refresh interval while the fault is off: short, so that a `refresh=wait_for` request is
/// answered well within the deadline (the default is one second).
const REFRESH_ON: &str = "200ms";
/// Increments in part 4, and the attempts each may take.
const INCREMENTS: u32 = 3;
const ATTEMPTS: u32 = 3;

const USAGE: &str = "usage: cargo run --example ambiguous_failure (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Scripting, |cluster| async move {
        ambiguous_failure(&cluster, INDEX).await
    })
    .await
}

async fn ambiguous_failure(cluster: &Cluster, index: &str) -> Result<Claims> {
    let started = Instant::now();
    let client = &cluster.client;
    let mut claims = Claims::new();
    doc::fresh_index(client, index).await?;

    println!("-- 1. A write that fails, and is applied");
    reset(client, index).await?;
    refreshes(client, index, false).await?;
    // ANCHOR: timeout
    let sent = client
        .update(UpdateParts::IndexId(index, COUNTER))
        .refresh(Refresh::WaitFor)
        .request_timeout(DEADLINE)
        .body(json!({
            "script": { "source": "ctx._source.counter += 1", "lang": "painless" }
        }))
        .send()
        .await;
    let first = history::outcome(sent).await?;
    let after = counter(client, index).await?;
    // ANCHOR_END: timeout
    println!(
        "POST /{index}/_update/{COUNTER}?refresh=wait_for, deadline {}ms -> {}",
        DEADLINE.as_millis(),
        first.brief()
    );
    println!("GET /{index}/_doc/{COUNTER}: counter={after}");
    claims.check(
        matches!(first, Outcome::Indeterminate(_)),
        "the client's deadline fired: the increment's outcome is unknown to it",
    );
    claims.check(after == 1, "the server applied it all the same: counter=1");

    println!("\n-- 2. Sending it again counts it twice");
    refreshes(client, index, true).await?;
    let again = increment(client, index, None).await?;
    let twice = counter(client, index).await?;
    println!(
        "the fault clears; the same request again -> {}; counter={twice}",
        again.brief()
    );
    claims.check(
        matches!(again, Outcome::Acknowledged(_)) && twice == 2,
        "one increment, sent twice, counted twice: counter=2",
    );

    println!("\n-- 3. With an operation id, sending it again is harmless");
    reset(client, index).await?;
    refreshes(client, index, false).await?;
    let mut attempts = Vec::new();
    for _ in 0..2 {
        attempts.push(increment(client, index, Some("inc-1")).await?);
    }
    let once = counter(client, index).await?;
    for (n, outcome) in attempts.iter().enumerate() {
        println!(
            "attempt {} of increment inc-1 (fault on) -> {}",
            n + 1,
            describe(outcome)
        );
    }
    println!("counter={once}");
    claims.check(
        matches!(attempts[0], Outcome::Indeterminate(_)),
        "the first attempt times out, as before",
    );
    claims.check(
        matches!(&attempts[1], Outcome::Acknowledged(body) if body["result"] == "noop")
            && once == 1,
        "the second is a noop, answered at once: the script found inc-1 already applied; counter=1",
    );

    println!(
        "\n-- 4. {INCREMENTS} increments, each sent until acknowledged ({ATTEMPTS} attempts at most), fault on throughout"
    );
    let naive = until_acknowledged(client, index, false).await?;
    let idempotent = until_acknowledged(client, index, true).await?;
    refreshes(client, index, true).await?;
    for (name, run) in [("without ids", &naive), ("with ids", &idempotent)] {
        let counts = run.history.counts();
        println!(
            "{name:11}: counter={} after {} attempts: acknowledged={} indeterminate={}",
            run.final_count,
            run.history.attempts().len(),
            counts.acknowledged,
            counts.indeterminate
        );
    }
    let naive_counts = naive.history.counts();
    claims.check(
        naive.final_count == u64::from(INCREMENTS * ATTEMPTS) && naive_counts.acknowledged == 0,
        format!(
            "without ids: {INCREMENTS} increments counted {} times, and the client saw none succeed",
            naive.final_count
        ),
    );
    let exact = history::check_ids(
        &idempotent.history,
        idempotent.final_count,
        &idempotent.ops,
    );
    claims.check(
        exact.holds() && idempotent.final_count == u64::from(INCREMENTS),
        format!(
            "with ids: exactly {INCREMENTS}, every increment acknowledged (its retry a noop)"
        ),
    );

    println!();
    let idem_counts = idempotent.history.counts();
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "ambiguous_failure",
            "deadline_ms": DEADLINE.as_millis() as u64,
            "timed_out_then_counter": after,
            "resent_counter": twice,
            "with_id_counter": once,
            "increments": INCREMENTS,
            "without_ids": {
                "attempts": naive.history.attempts().len(),
                "acknowledged": naive_counts.acknowledged,
                "indeterminate": naive_counts.indeterminate,
                "final": naive.final_count,
            },
            "with_ids": {
                "attempts": idempotent.history.attempts().len(),
                "acknowledged": idem_counts.acknowledged,
                "indeterminate": idem_counts.indeterminate,
                "final": idempotent.final_count,
            },
        }),
    );
    Ok(claims)
}

// ANCHOR: script
/// The increment's script. With an operation id it first checks whether that
/// operation was already applied; if so it changes nothing (`ctx.op = 'none'`,
/// answered as `"result": "noop"`).
const IDEMPOTENT_INCREMENT: &str = "
    if (ctx._source.ops.contains(params.op)) {
        ctx.op = 'none';
    } else {
        ctx._source.counter += 1;
        ctx._source.ops.add(params.op);
    }";

/// One increment with `refresh=wait_for` and the client's deadline; with `op`,
/// the idempotent script.
async fn increment(
    client: &Elasticsearch,
    index: &str,
    op: Option<&str>,
) -> Result<Outcome> {
    let script = match op {
        None => json!({ "source": "ctx._source.counter += 1", "lang": "painless" }),
        Some(op) => json!({
            "source": IDEMPOTENT_INCREMENT,
            "lang": "painless",
            "params": { "op": op }
        }),
    };
    let sent = client
        .update(UpdateParts::IndexId(index, COUNTER))
        .refresh(Refresh::WaitFor)
        .request_timeout(DEADLINE)
        .body(json!({ "script": script }))
        .send()
        .await;
    history::outcome(sent).await
}
// ANCHOR_END: script

/// What part 4 left: the history, the counter, and the ids the document lists.
struct Run {
    history: History,
    final_count: u64,
    ops: Vec<String>,
}

// ANCHOR: until_acknowledged
/// Part 4: [`INCREMENTS`] increments, each sent again after every failure until
/// acknowledged, [`ATTEMPTS`] times at most.
async fn until_acknowledged(
    client: &Elasticsearch,
    index: &str,
    with_ids: bool,
) -> Result<Run> {
    reset(client, index).await?;
    refreshes(client, index, false).await?;
    let mut history = History::new();
    for n in 1..=INCREMENTS {
        let op = format!("inc-{n}");
        for _ in 0..ATTEMPTS {
            let id = with_ids.then_some(op.as_str());
            let outcome = increment(client, index, id).await?;
            history.record(&op, "the node", &outcome);
            if matches!(outcome, Outcome::Acknowledged(_)) {
                break;
            }
        }
    }
    // ANCHOR_END: until_acknowledged
    let source = doc::read(client, index, COUNTER).await?.source;
    Ok(Run {
        history,
        final_count: source["counter"].as_u64().unwrap_or_default(),
        ops: source["ops"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|op| op.as_str().map(str::to_string))
            .collect(),
    })
}

/// An outcome, with the `result` of an acknowledged update.
fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Acknowledged(body) => {
            format!("acknowledged: result={}", body["result"])
        }
        other => other.brief(),
    }
}

/// The counter back at 0, with no operation recorded.
async fn reset(client: &Elasticsearch, index: &str) -> Result<()> {
    doc::put(client, index, COUNTER, json!({ "counter": 0, "ops": [] })).await?;
    Ok(())
}

/// The counter as a realtime GET sees it.
async fn counter(client: &Elasticsearch, index: &str) -> Result<u64> {
    Ok(doc::read(client, index, COUNTER).await?.number("counter")? as u64)
}

/// Switches the index's periodic refresh on (every [`REFRESH_ON`]) or off. Switching it on
/// also refreshes now, which answers every request still waiting for a refresh.
async fn refreshes(client: &Elasticsearch, index: &str, on: bool) -> Result<()> {
    let interval = if on { REFRESH_ON } else { "-1" };
    indices::put_settings(client, index, json!({ "refresh_interval": interval }))
        .await?;
    if on {
        indices::refresh(client, index).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timed-out increment is applied; sent again it counts twice; with an operation id the
    /// retry is a noop, and three increments under the fault end at exactly 3 (9 without ids).
    #[tokio::test]
    async fn an_operation_id_makes_a_retry_harmless() {
        let cluster = Cluster::connect(Needs::Scripting).await.expect("a cluster");
        let claims = ambiguous_failure(&cluster, "test-ambiguous-failure")
            .await
            .expect("the demonstrations run");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
