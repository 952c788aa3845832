//! Chapter 19: a write that times out although the server applied it; sending it again
//! counts it twice; an operation id makes sending it again harmless.
//!
//! Run it: `cargo run --example ambiguous_failure` (on an Elasticsearch with Painless). You
//! should see `counter=1` after a timeout, 2 after sending it again, a `noop` for the second
//! attempt with an id, and three increments under the fault: 9 without ids, 3 with them.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use elasticsearch::params::Refresh;
use elasticsearch::{Elasticsearch, UpdateParts};
use esbook::{Cluster, Needs, doc, indices};
use harness::history::{self, History, Outcome};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "ambiguous";
const COUNTER: &str = "1";
/// The client's deadline for each increment: past it, the increment's fate is unknown.
const DEADLINE: Duration = Duration::from_millis(1000);
/// Increments in part 4, and the attempts each may take.
const INCREMENTS: u32 = 3;
const ATTEMPTS: u32 = 3;

// ANCHOR: increment
/// One increment, `refresh=wait_for`, the client's deadline; with an id, the script below.
async fn increment(
    client: &Elasticsearch,
    index: &str,
    op: Option<&str>,
) -> Result<Outcome> {
    let script = match op {
        None => json!({ "source": "ctx._source.counter += 1" }),
        Some(op) => json!({ "source": IDEMPOTENT, "params": { "op": op } }),
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
// ANCHOR_END: increment

// ANCHOR: script
/// With an operation id, the script first checks whether that operation was already
/// applied; if so it changes nothing (`ctx.op = 'none'`, answered as `"result": "noop"`).
const IDEMPOTENT: &str = "
    if (ctx._source.ops.contains(params.op)) {
        ctx.op = 'none';
    } else {
        ctx._source.counter += 1;
        ctx._source.ops.add(params.op);
    }";
// ANCHOR_END: script

/// Chapter 19's four parts; what they saw, for `check` and `report` below.
async fn ambiguous_failure(client: &Elasticsearch, index: &str) -> Result<Value> {
    // ANCHOR: timeout
    println!("-- 1. A write that fails, and is applied (deadline {DEADLINE:?})");
    fault_on(client, index).await?;
    let first = increment(client, index, None).await?;
    let after = doc::read(client, index, COUNTER).await?.number("counter")?;
    println!("POST /{index}/_update/{COUNTER}?refresh=wait_for");
    println!("  -> {}", first.brief());
    println!("GET /{index}/_doc/{COUNTER}: counter={after}");
    // ANCHOR_END: timeout

    // ANCHOR: again
    println!("\n-- 2. Sending it again counts it twice");
    fault_off(client, index).await?;
    let again = increment(client, index, None).await?;
    let twice = doc::read(client, index, COUNTER).await?.number("counter")?;
    println!("the fault clears; sent again -> {}", again.brief());
    println!("GET /{index}/_doc/{COUNTER}: counter={twice}");
    // ANCHOR_END: again

    // ANCHOR: with_id
    println!("\n-- 3. With an operation id, sending it again is harmless");
    fault_on(client, index).await?;
    let mut attempts = Vec::new();
    for attempt in 1..=2 {
        let outcome = increment(client, index, Some("inc-1")).await?;
        println!("attempt {attempt} of inc-1 -> {}", outcome.brief());
        attempts.push(outcome.brief());
    }
    let once = doc::read(client, index, COUNTER).await?.number("counter")?;
    println!("GET /{index}/_doc/{COUNTER}: counter={once}");
    // ANCHOR_END: with_id

    // ANCHOR: runs
    println!("\n-- 4. {INCREMENTS} increments, each sent until acknowledged");
    let mut runs = Vec::new();
    for with_ids in [false, true] {
        let (history, last) = until_acknowledged(client, index, with_ids).await?;
        let (n, counts) = (history.attempts().len(), history.counts());
        let name = if with_ids { "with ids" } else { "without ids" };
        let counter = &last["counter"];
        println!("{name:11}: counter={counter} after {n} attempts: {counts}");
        runs.push(history::counter_run(&history, &last));
    }
    fault_off(client, index).await?;
    // ANCHOR_END: runs

    Ok(json!({
        "first": first.kind(), "after": after, "again": again.kind(), "twice": twice,
        "attempts": attempts, "once": once, "without_ids": runs[0], "with_ids": runs[1],
    }))
}

// ANCHOR: until_acknowledged
/// Part 4: each increment sent until acknowledged, [`ATTEMPTS`] times at most.
async fn until_acknowledged(
    client: &Elasticsearch,
    index: &str,
    with_ids: bool,
) -> Result<(History, Value)> {
    fault_on(client, index).await?;
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
    Ok((history, doc::read(client, index, COUNTER).await?.source))
}
// ANCHOR_END: until_acknowledged

/// The fault on: a fresh index without periodic refresh (a `refresh=wait_for` request waits
/// for a refresh that never comes), and the counter at 0 with no operation recorded.
async fn fault_on(client: &Elasticsearch, index: &str) -> Result<()> {
    doc::fresh_index(client, index).await?;
    doc::put(client, index, COUNTER, json!({ "counter": 0, "ops": [] })).await?;
    indices::put_settings(client, index, json!({ "refresh_interval": "-1" })).await
}

/// The fault off: refreshes every 200 ms, and one now, which answers every waiting request.
async fn fault_off(client: &Elasticsearch, index: &str) -> Result<()> {
    indices::put_settings(client, index, json!({ "refresh_interval": "200ms" }))
        .await?;
    indices::refresh(client, index).await
}

const USAGE: &str = "usage: cargo run --example ambiguous_failure (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Scripting, |cluster| async move {
        let started = Instant::now();
        let seen = ambiguous_failure(&cluster.client, INDEX).await?;
        let claims = check(&seen);
        report(&cluster, &seen, started.elapsed());
        Ok(claims)
    })
    .await
}

/// Chapter 19's claims, held against what the run saw (a failed one is named by its text).
fn check(s: &Value) -> Claims {
    let mut claims = Claims::new();
    harness::check_each!(claims;
        s["first"] == "indeterminate" && s["after"] == 1,
        s["again"] == "acknowledged" && s["twice"] == 2,
        s["attempts"][0].as_str().is_some_and(|a| a.starts_with("indeterminate")),
        s["attempts"][1].as_str().is_some_and(|a| a.contains("result=noop")) && s["once"] == 1,
        s["without_ids"]["final"] == INCREMENTS * ATTEMPTS && s["without_ids"]["acknowledged"] == 0,
        s["with_ids"]["exact_ids"] == true && s["with_ids"]["final"] == INCREMENTS,
        s["with_ids"]["acknowledged"] == INCREMENTS,
    );
    claims
}

/// The `RESULT` line (printed only with `OCC_RESULTS=1`).
fn report(cluster: &Cluster, s: &Value, elapsed: Duration) {
    report::result(
        cluster,
        elapsed,
        json!({
            "example": "ambiguous_failure",
            "deadline_ms": DEADLINE.as_millis() as u64,
            "timed_out_then_counter": s["after"],
            "resent_counter": s["twice"],
            "with_id_counter": s["once"],
            "increments": INCREMENTS,
            "without_ids": s["without_ids"],
            "with_ids": s["with_ids"],
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded::{self, quoted};

    /// The recorded run is chapter 19's: 1 after the timeout, 2 after sending it again, 1 with
    /// an id; 9 without ids and exactly 3 with them; and the chapter quotes those numbers.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let run =
            recorded::result("ambiguous_failure", "example", "ambiguous_failure");
        let (naive, ids) = (&run["without_ids"], &run["with_ids"]);
        assert_eq!(run["timed_out_then_counter"], 1);
        assert_eq!(run["resent_counter"], 2);
        assert_eq!(run["with_id_counter"], 1);
        assert_eq!(
            (&naive["final"], &naive["acknowledged"]),
            (&json!(9), &json!(0))
        );
        assert_eq!(
            (&ids["final"], &ids["acknowledged"]),
            (&json!(3), &json!(3))
        );
        assert_eq!(ids["exact_ids"], true);

        let chapter = recorded::chapter("ch19-00-ambiguous-failures.md");
        let says = |pattern: &str| quoted(&chapter, pattern);
        assert_eq!(
            says(r"shows\s+`counter=(\d+)`"),
            run["timed_out_then_counter"].to_string()
        );
        let resent = r"Acknowledged, and the counter\s+is (\d+)";
        assert_eq!(says(resent), run["resent_counter"].to_string());
        let with_id = r"nothing to wait for\), and the counter is (\d+)";
        assert_eq!(says(with_id), run["with_id_counter"].to_string());
        assert_eq!(says(r"the counter says (\d+)"), naive["final"].to_string());
        assert_eq!(
            says(r"the counter is exactly (\d+)"),
            ids["final"].to_string()
        );
        let high = naive["acknowledged"].as_u64().unwrap()
            + naive["indeterminate"].as_u64().unwrap();
        assert_eq!(says(r"(\d+) lies\s+between"), naive["final"].to_string());
        let low = r"lies\s+between (\d+) \(acknowledged\)";
        assert_eq!(says(low), naive["acknowledged"].to_string());
        assert_eq!(
            says(r"\(acknowledged\) and (\d+) \(acknowledged plus"),
            high.to_string()
        );

        let output = recorded::output("ambiguous_failure");
        let counters = recorded::quoted_all(&output, r"counter=(\d+)");
        assert_eq!(counters, ["1", "2", "1", "9", "3"]);
    }
}
